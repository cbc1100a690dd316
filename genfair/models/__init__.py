"""Generative models: one small protocol, optional abilities, and the model families; the built-in
ones are the YAML files of ``configs/model/`` that name their config class (:func:`registered_models`)."""

from typing import TYPE_CHECKING

from genfair._lazy import lazy_exports

if TYPE_CHECKING:  # the public names, each imported on first use (genfair._lazy)
    from genfair.models._analytic_config import AnalyticModelConfig, build_analytic_model
    from genfair.models._class_gaussian import ClassGaussianModel, per_class_sum, psd_sqrt
    from genfair.models._ddpm import DDPM
    from genfair.models._deep_config import DDPMConfig, DeepModelConfig, VAEConfig, build_model
    from genfair.models._gaussian_mixture import GaussianMixtureModel
    from genfair.models._custom import CustomModelConfig, check_model_protocol, import_target
    from genfair.models._protocols import (
        AdversarialTraining,
        BiasedSampler,
        ClosedFormFit,
        GenerativeModel,
        ModelCapabilities,
        ReparameterizedSampler,
        SteppedSampler,
    )
    from genfair.models._registry import registered_model_configs, registered_models
    from genfair.models._saving import load_model, save_model
    from genfair.models._vae import VAE

__all__ = [
    "DDPM",
    "AdversarialTraining",
    "CustomModelConfig",
    "check_model_protocol",
    "import_target",
    "AnalyticModelConfig",
    "BiasedSampler",
    "ClassGaussianModel",
    "ClosedFormFit",
    "DDPMConfig",
    "DeepModelConfig",
    "GaussianMixtureModel",
    "GenerativeModel",
    "ModelCapabilities",
    "ReparameterizedSampler",
    "SteppedSampler",
    "VAE",
    "VAEConfig",
    "build_analytic_model",
    "build_model",
    "load_model",
    "per_class_sum",
    "psd_sqrt",
    "registered_model_configs",
    "registered_models",
    "save_model",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)

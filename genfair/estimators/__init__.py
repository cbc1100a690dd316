"""Estimators of a loop's generations: the model's own fit, hypernetworks (with or without the
PLE penalty) and the anchored loop form; ``estimator=...`` on the command line.

Example:
    >>> from genfair.estimators import EstimatorConfig, build_fit
    >>> from genfair.models import ClassGaussianModel
    >>> fit = build_fit(EstimatorConfig(name="ple", steps=50), model=ClassGaussianModel(2, 2, replicates=100),
    ...                 sample_shape=(2,))
"""

from typing import TYPE_CHECKING

from genfair._lazy import lazy_exports

if TYPE_CHECKING:  # the public names, each imported on first use (genfair._lazy)
    from genfair.estimators._adversarial_fit import AdversarialFit
    from genfair.estimators._build import build_fit
    from genfair.estimators._config import (
        BASES,
        ESTIMATORS,
        Base,
        EarlyStoppingConfig,
        EstimatorConfig,
        PLEOptions,
        SubsampleConfig,
    )
    from genfair.estimators._evidence import EVIDENCE_KEYS
    from genfair.estimators._fits import AnchoredFit, GradientFit
    from genfair.estimators._hypernetwork_fit import HypernetworkFit
    from genfair.estimators._kinds import MLE, PLE, Anchor, BuiltInEstimator, FitParts, HyperMLE
    from genfair.estimators._plugin import CustomEstimatorConfig, Estimator, PluginFit
    from genfair.estimators._registry import registered_estimators
    from genfair.estimators._step_checkpoints import StepCheckpoints

__all__ = [
    "BASES",
    "ESTIMATORS",
    "EVIDENCE_KEYS",
    "MLE",
    "PLE",
    "AdversarialFit",
    "Anchor",
    "AnchoredFit",
    "Base",
    "BuiltInEstimator",
    "CustomEstimatorConfig",
    "EarlyStoppingConfig",
    "Estimator",
    "EstimatorConfig",
    "FitParts",
    "GradientFit",
    "HyperMLE",
    "HypernetworkFit",
    "PLEOptions",
    "PluginFit",
    "StepCheckpoints",
    "SubsampleConfig",
    "build_fit",
    "registered_estimators",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)

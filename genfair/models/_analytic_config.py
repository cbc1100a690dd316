"""How ``model=gaussian`` and ``model=class_mixture`` are configured (one config class, which both
``configs/model/gaussian.yaml`` and ``class_mixture.yaml`` register) and built.

torch is imported inside the functions that use it: the command line checks a config
without importing torch (docs/architecture.md, section 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from genfair.data import ClassMixtureData, GaussianData, stratified_counts
from genfair.errors import ConfigError, check_choice, check_positive_int
from genfair.models._registry import registered_target

if TYPE_CHECKING:
    from genfair.models._class_gaussian import ClassGaussianModel

__all__ = ["AnalyticModelConfig", "build_analytic_model"]


@dataclass
class AnalyticModelConfig:
    """Labelled Gaussian classes refit in closed form (:class:`ClassGaussianModel`).

    Args:
        name: ``gaussian`` (one Gaussian, needs ``data=gaussian``) or ``class_mixture``: the models
            whose YAML registers this class (``model.name`` may switch between them).
        _target_: this class, ``package.module.Name``, as the YAMLs register it (``None`` is
            filled in with it). A model of your own runs with ``model=custom``.
        estimator: ``mle`` (covariance divided by n) or ``unbiased`` (by n - 1). For a Gaussian,
            ``unbiased`` is also the exact solution of the PLE constraint (Mayer et al. 2024).
        min_class_samples: fewest samples with which a class refits its covariance (>= 2).
    """

    name: str = "class_mixture"
    _target_: str | None = None
    estimator: str = "mle"
    min_class_samples: int = 2

    def __post_init__(self) -> None:
        self._target_ = registered_target(self)
        check_choice("estimator", self.estimator, ["mle", "unbiased"])
        check_positive_int("min_class_samples", self.min_class_samples, minimum=2)


def build_analytic_model(
    config: AnalyticModelConfig, *, data: GaussianData | ClassMixtureData, replicates: int, n_real: int
) -> ClassGaussianModel:
    """The model for ``data``, checked against generation 0's class counts before any work."""
    from genfair.models._class_gaussian import ClassGaussianModel

    if config.name == "gaussian" and not isinstance(data, GaussianData):
        raise ConfigError("model=gaussian fits one Gaussian and needs data=gaussian; use model=class_mixture")
    if isinstance(data, ClassMixtureData):
        for name, count in zip(data.classes, stratified_counts(n_real, data.proportions)):
            if count < config.min_class_samples:
                raise ConfigError(
                    f"class {name!r} gets {count} of loop.n_real={n_real} real samples at generation 0; "
                    f"it needs at least model.min_class_samples={config.min_class_samples}: "
                    "raise loop.n_real or its data.proportions"
                )
    return ClassGaussianModel(
        len(data.classes),
        data.dim,
        replicates=replicates,
        estimator=config.estimator,
        min_class_samples=config.min_class_samples,
    )

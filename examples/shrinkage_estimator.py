"""An estimator plug-in (``estimator=custom``): the model's closed-form fit, shrunk towards the
weights fitted on generation 0's real data.

    genfair experiment=class_mixture_mad estimator=custom \
        estimator._target_=examples.shrinkage_estimator.ShrinkTowardsFirst +estimator.weight=0.5

Each generation g >= 1: ``theta_g = (1 - weight) * fit(X_g) + weight * theta_0``. For the class
Gaussians every parameter (shares, means, covariances) mixes convexly, so the shares stay on the
simplex and the covariances positive definite. The protocol: ``genfair.estimators.Estimator``.
"""

from __future__ import annotations

import torch
from torch import nn

from genfair.errors import ConfigError
from genfair.models import ClosedFormFit

__all__ = ["ShrinkTowardsFirst"]


class ShrinkTowardsFirst:
    """Closed-form fit, then every parameter moved ``weight`` of the way to generation 0's.

    Args:
        weight: in [0, 1]; 0 is the model's own fit, 1 keeps generation 0's weights forever.
    """

    def __init__(self, weight: float = 0.5) -> None:
        if not 0.0 <= float(weight) <= 1.0:
            raise ConfigError(f"estimator.weight must lie in [0, 1], got {weight!r}")
        self.weight = float(weight)

    def fit(self, model: nn.Module, train, generator: torch.Generator, context) -> nn.Module:
        if not isinstance(model, ClosedFormFit):
            raise ConfigError(f"ShrinkTowardsFirst needs a model with a closed-form fit, got {type(model).__name__}")
        model.fit(train.x, train.y)
        if context.reference is not None:
            with torch.no_grad():
                for name, value in model.named_parameters():
                    value.mul_(1.0 - self.weight).add_(context.reference[name].to(value), alpha=self.weight)
        return model

"""``build_fit``: the loop's fit for an ``estimator=...`` config."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from genfair.estimators._config import EstimatorConfig
from genfair.estimators._fits import _Remedial
from genfair.estimators._kinds import FitParts
from genfair.estimators._plugin import CustomEstimatorConfig, PluginFit
from genfair.models import ModelCapabilities
from genfair.loops import Fit
from genfair.remedies import RemedyConfig

__all__ = ["build_fit"]


def build_fit(
    config: EstimatorConfig | CustomEstimatorConfig,
    *,
    model: nn.Module | ModelCapabilities,
    sample_shape: Sequence[int],
    remedy: RemedyConfig | None = None,
    classes: int | None = None,
    minority: int = 0,
    features: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Fit:
    """The loop's fit for ``config`` on ``model`` (or on any model with these capabilities, where
    the fit is built before the model), chosen by what the model declares
    (:class:`~genfair.models.ModelCapabilities`): its constrained parameters (``CONSTRAINTS``,
    e.g. ``{"covs": "psd"}``), whether it holds independent replicates (``PER_REPLICATE``),
    whether it has a closed-form fit (else ``mle`` and ``anchor`` train by gradient steps) and
    whether it has no likelihood and trains by its ``adversarial_losses``
    (:class:`AdversarialFit`, ``estimator=mle`` without a remedy only).

    ``remedy``: the fairness remedy of every generation's training, for ``classes`` classes
    (default: the model's ``num_classes``, else 1) whose ``minority`` MinDiff compares with the
    rest; ``features``: where SMOTE looks for neighbours (``(n, *sample_shape) -> (n, d)``;
    default: the samples themselves). A user's estimator (``estimator=custom``,
    :class:`CustomEstimatorConfig`) is its own fit, checked after every generation
    (:class:`PluginFit`)."""
    if isinstance(config, CustomEstimatorConfig):
        return PluginFit(config)
    can = model if isinstance(model, ModelCapabilities) else ModelCapabilities.of(model)
    classes = classes or can.num_classes or 1
    remedial = _Remedial(remedy, classes=classes, minority=minority, features=features)
    parts = FitParts(capabilities=can, sample_shape=tuple(sample_shape), classes=classes, remedy=remedy, remedial=remedial)
    return config.kind.build(config, parts)

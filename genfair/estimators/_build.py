"""``build_fit``: the loop's fit for an ``estimator=...`` config."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from genfair.estimators._adversarial_fit import AdversarialFit
from genfair.estimators._config import EstimatorConfig
from genfair.estimators._fits import AnchoredFit, GradientFit, _Remedial
from genfair.estimators._hypernetwork_fit import HypernetworkFit
from genfair.estimators._plugin import CustomEstimatorConfig, PluginFit
from genfair.models import ModelCapabilities
from genfair.loops import Fit, fit_closed_form
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
    if can.adversarial:
        return AdversarialFit(config, remedy=remedy)
    remedial = _Remedial(remedy, classes=classes, minority=minority, features=features)
    if config.uses_hypernetwork:
        return HypernetworkFit(
            config, sample_shape=sample_shape, num_classes=classes if can.num_classes is not None else None,
            positive=can.positive, per_replicate=can.per_replicate, remedy=remedial,
        )
    if not can.closed_form:
        return GradientFit(config, remedy=remedial)
    if config.name == "mle" and not remedial.active:
        return fit_closed_form
    return AnchoredFit(config, positive=can.positive, per_replicate=can.per_replicate, remedy=remedial)

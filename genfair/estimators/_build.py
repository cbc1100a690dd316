"""``build_fit``: the loop's fit for an ``estimator=...`` config."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from genfair.estimators._adversarial_fit import AdversarialFit
from genfair.estimators._config import EstimatorConfig
from genfair.estimators._fits import AnchoredFit, GradientFit, _Remedial
from genfair.estimators._hypernetwork_fit import HypernetworkFit
from genfair.hypernets import Positivity
from genfair.loops import Fit, fit_closed_form
from genfair.remedies import RemedyConfig

__all__ = ["build_fit"]


def build_fit(
    config: EstimatorConfig,
    *,
    sample_shape: Sequence[int],
    num_classes: int | None,
    positive: Mapping[str, Positivity],
    per_replicate: bool,
    closed_form: bool = True,
    adversarial: bool = False,
    remedy: RemedyConfig | None = None,
    classes: int | None = None,
    minority: int = 0,
    features: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Fit:
    """The loop's fit for ``config`` (``positive``: the model's constrained parameters, e.g.
    ``{"covs": "psd"}``; ``per_replicate``: the model holds independent replicates;
    ``closed_form``: the model has a closed-form fit, else ``mle`` and ``anchor`` train by
    gradient steps; ``adversarial``: the model has no likelihood and trains by its
    ``adversarial_losses``, :class:`AdversarialFit`, ``estimator=mle`` without a remedy only).

    ``remedy``: the fairness remedy of every generation's training, for ``classes`` classes
    whose ``minority`` MinDiff compares with the rest; ``features``: where SMOTE looks for
    neighbours (``(n, *sample_shape) -> (n, d)``; default: the samples themselves)."""
    if adversarial:
        return AdversarialFit(config, remedy=remedy)
    remedial = _Remedial(remedy, classes=classes or num_classes or 1, minority=minority, features=features)
    if config.uses_hypernetwork:
        return HypernetworkFit(
            config, sample_shape=sample_shape, num_classes=num_classes, positive=positive,
            per_replicate=per_replicate, remedy=remedial,
        )
    if not closed_form:
        return GradientFit(config, remedy=remedial)
    if config.name == "mle" and not remedial.active:
        return fit_closed_form
    return AnchoredFit(config, positive=positive, per_replicate=per_replicate, remedy=remedial)


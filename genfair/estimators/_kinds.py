"""The built-in estimators, ``estimator=mle|hyper_mle|ple|anchor``. Each is registered by its YAML,
``configs/estimator/<name>.yaml``, whose ``_target_`` names its class here
(:func:`~genfair.estimators.registered_estimators`); the class says what the estimator is
(whether it trains through a hypernetwork, adds the anchor to generation 0, pays PLE's penalty)
and builds the loop's fit from the estimator's config and what the model declares. Adding a
built-in estimator is its class (here or in a file of its own) and its YAML.

This module imports no torch: the config reads the flags before any work, and ``build`` imports
the fits it builds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genfair.estimators._config import EstimatorConfig
    from genfair.estimators._fits import _Remedial
    from genfair.loops import Fit
    from genfair.models import ModelCapabilities
    from genfair.remedies import RemedyConfig

__all__ = ["MLE", "PLE", "Anchor", "BuiltInEstimator", "FitParts", "HyperMLE"]


@dataclass(frozen=True)
class FitParts:
    """What a built-in estimator's fit is built from besides its config: the model's
    capabilities, a sample's shape, the number of classes, the remedy's config and the remedy
    applied to each step's losses."""

    capabilities: ModelCapabilities
    sample_shape: tuple[int, ...]
    classes: int
    remedy: RemedyConfig | None
    remedial: _Remedial


class BuiltInEstimator:
    """A built-in estimator: its flags and :meth:`build`. A model trained by its adversarial
    losses (no likelihood) gets :class:`~genfair.estimators.AdversarialFit`, which takes only
    ``mle``; every other model gets :meth:`likelihood_fit`."""

    hypernetwork: bool = False  # theta_g = H(X_g), a hypernetwork reading the training set
    anchors: bool = False  # from generation 1 on, + lam * D(theta_g, theta_0)
    penalised: bool = False  # PLE's weight-discrepancy penalty, lam * D(H(X), H(Y))

    def uses_hypernetwork(self, config: EstimatorConfig) -> bool:
        return self.hypernetwork

    def build(self, config: EstimatorConfig, parts: FitParts) -> Fit:
        if parts.capabilities.adversarial:
            from genfair.estimators._adversarial_fit import AdversarialFit

            return AdversarialFit(config, remedy=parts.remedy)
        if self.uses_hypernetwork(config):
            return _hypernetwork_fit(config, parts)
        return self.likelihood_fit(config, parts)

    def likelihood_fit(self, config: EstimatorConfig, parts: FitParts) -> Fit:
        """The fit of the model's own weights: Adam steps on its likelihood where it has no
        closed form, else its closed form as the start of the anchored or remedied steps."""
        from genfair.estimators._fits import AnchoredFit, GradientFit

        can = parts.capabilities
        if not can.closed_form:
            return GradientFit(config, remedy=parts.remedial)
        return AnchoredFit(config, positive=can.positive, per_replicate=can.per_replicate, remedy=parts.remedial)


class MLE(BuiltInEstimator):
    """``mle``: the model's own fit, closed form where it has one (and no remedy reweights it)."""

    def likelihood_fit(self, config: EstimatorConfig, parts: FitParts) -> Fit:
        from genfair.loops import fit_closed_form

        if parts.capabilities.closed_form and not parts.remedial.active:
            return fit_closed_form
        return super().likelihood_fit(config, parts)


class HyperMLE(BuiltInEstimator):
    """``hyper_mle``: ``theta_g = H(X_g)``, H trained by maximum likelihood."""

    hypernetwork = True


class PLE(BuiltInEstimator):
    """``ple``: ``theta_g = H(X_g)``, H trained with the weight-discrepancy penalty."""

    hypernetwork = True
    penalised = True


class Anchor(BuiltInEstimator):
    """``anchor``: the loop form, the fit plus ``lam * D(theta_g, theta_0)`` from generation 1 on,
    through a hypernetwork when ``estimator.hypernetwork`` says so."""

    anchors = True

    def uses_hypernetwork(self, config: EstimatorConfig) -> bool:
        return config.hypernetwork


def _hypernetwork_fit(config: EstimatorConfig, parts: FitParts) -> Fit:
    from genfair.estimators._hypernetwork_fit import HypernetworkFit

    can = parts.capabilities
    return HypernetworkFit(
        config, sample_shape=parts.sample_shape, num_classes=parts.classes if can.num_classes is not None else None,
        positive=can.positive, per_replicate=can.per_replicate, remedy=parts.remedial,
    )

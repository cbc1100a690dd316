"""What the prior studies measure of a fitted mixture against each set's true parameters.

Component names: a fitted two-component mixture's components are matched to the true ones per
set by the permutation minimising the squared distance between fitted and true means
(``genfair.studies._gmm_estimators.match_components``, here with each set's own truth), so the
minority's estimated weight is not biased toward small values by its own name.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from genfair.studies._gmm_estimators import MixtureEstimate, match_components
from genfair.studies._prior_config import PriorStudyConfig

__all__ = ["loop_measures", "parameters_of", "wright_fisher_drift"]


def parameters_of(estimate: MixtureEstimate, truth: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The estimate's values of the prior's parameters, ``{name: (R,)}``: ``mean``, ``variance``
    for one component; ``minority_weight``, ``majority_mean``, ``minority_mean``,
    ``majority_variance``, ``minority_variance`` for two (components matched per set)."""
    if estimate.means.shape[1] == 1:
        return {"mean": _numpy(estimate.means[:, 0, 0]), "variance": _numpy(estimate.variances[:, 0, 0])}
    matched = _matched(estimate, truth)
    return {
        "minority_weight": _numpy(matched.weights[:, 1]),
        "majority_mean": _numpy(matched.means[:, 0, 0]),
        "minority_mean": _numpy(matched.means[:, 1, 0]),
        "majority_variance": _numpy(matched.variances[:, 0, 0]),
        "minority_variance": _numpy(matched.variances[:, 1, 0]),
    }


def loop_measures(
    fitted: MixtureEstimate,
    truth: Mapping[str, torch.Tensor],
    *,
    config: PriorStudyConfig,
    source,
    kl_generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """``{"metric/all": (R,)}`` of one generation's fits against each chain's truth.

    One component: ``variance_ratio`` = sigma_hat^2 / sigma^2, its log, ``mean_error`` = mu_hat - mu
    and the exact ``kl`` = KL(truth || fit) = log(sigma_hat / sigma) + (sigma^2 + (mu - mu_hat)^2)
    / (2 sigma_hat^2) - 1/2. Two: ``kl`` by Monte Carlo (``config.kl_samples`` draws of each
    chain's truth, the same draws for every arm and generation), the minority's weight, mean and
    variance, and ``weight_drift_sq`` = (w_hat - w)^2 (see :func:`wright_fisher_drift`).
    """
    if fitted.means.shape[1] == 1:
        mean, variance = fitted.means[:, 0, 0], fitted.variances[:, 0, 0]
        mu, sigma_sq = truth["mean"], truth["variance"]
        ratio = variance / sigma_sq
        kl = 0.5 * ratio.log() + (sigma_sq + (mu - mean).square()) / (2 * variance) - 0.5
        return {"variance_ratio/all": ratio, "log_variance_ratio/all": ratio.log(), "mean_error/all": mean - mu, "kl/all": kl}
    matched = _matched(fitted, truth)
    x = source.prior.sample(truth, config.kl_samples, generator=kl_generator)  # (R, S, 1)
    kl = (_truth_model(truth).log_prob(x) - fitted.as_model().log_prob(x)).mean(1)
    weight = matched.weights[:, 1]
    return {
        "kl/all": kl,
        "minority_weight/all": weight,
        "minority_mean/all": matched.means[:, 1, 0],
        "minority_variance/all": matched.variances[:, 1, 0],
        "weight_drift_sq/all": (weight - truth["minority_weight"]).square(),
    }


def wright_fisher_drift(weights: np.ndarray, *, n: int, generation: int) -> float:
    """E[(p_g - p)^2] averaged over chains of true minority weights ``weights``, for shares refit
    from counts of n samples: p_0 is a binomial share of the real set and every generation
    resamples, so Var[p_g] = p (1 - p) (1 - (1 - 1/n)^(g + 1)) (Wright-Fisher drift)."""
    p = np.asarray(weights, dtype=np.float64)
    return float(np.mean(p * (1 - p)) * (1 - (1 - 1 / n) ** (generation + 1)))


def _matched(estimate: MixtureEstimate, truth: Mapping[str, torch.Tensor]) -> MixtureEstimate:
    true_means = torch.stack([truth["majority_mean"], truth["minority_mean"]], dim=1)[..., None]  # (R, 2, 1)
    return estimate.permuted(match_components(estimate.means, true_means))


def _truth_model(truth: Mapping[str, torch.Tensor]):
    from genfair.models import GaussianMixtureModel

    weights = torch.stack([1 - truth["minority_weight"], truth["minority_weight"]], dim=1)
    model = GaussianMixtureModel(2, 1, replicates=weights.shape[0])
    MixtureEstimate(
        weights,
        torch.stack([truth["majority_mean"], truth["minority_mean"]], dim=1)[..., None],
        torch.stack([truth["majority_variance"], truth["minority_variance"]], dim=1)[..., None],
        torch.ones(weights.shape[0], dtype=torch.bool),
    ).load_into(model)
    return model


def _numpy(values: torch.Tensor) -> np.ndarray:
    return values.detach().cpu().numpy().astype(np.float64)


"""The three estimators of the GMM study, each a map from data sets to mixture parameters.

- ``hyper_mle`` and ``ple``: a hypernetwork H around :class:`GaussianMixtureModel`, trained as
  an *amortised estimator* for one set size n: every step draws fresh sets X of n samples
  from the true mixture and minimises ``NLL(X; H(X)) + lam * D(H(X), H(Y))`` averaged over the
  sets (Mayer et al., Eq. 5; lam = 0 is ``hyper_mle``). After training, H is frozen and applied
  to any set of size n, like a closed-form estimator: test sets, and each generation of a
  self-consuming loop.
- ``em``: scikit-learn's ``GaussianMixture`` (diagonal covariances) refit on each set.

Label switching: a component is named after the true component it matches, by the permutation
of the fitted components that minimises the summed squared distance between fitted and true
means (:func:`match_components`). In 1-D with two components this names the component with the
larger mean the minority (true mean 2). Weights play no part in the matching, so the minority's
estimated weight is not biased towards small values by its own name, as "the lighter
component" would be.
"""

from __future__ import annotations

import itertools
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from genfair.models import GaussianMixtureModel
from genfair.hypernets import HyperNetwork, PLEConfig, PLEObjective
from genfair.training import take_step

__all__ = [
    "MixtureEstimate",
    "TrainedHyperNetwork",
    "em_estimate",
    "hyper_estimate",
    "match_components",
    "train_hypernetwork",
]

# The hypernetwork computes in float32 (about 1.5x faster than float64 on a CPU); its outputs
# are cast to float64 before any metric is computed.
_HYPER_DTYPE = torch.float32


@dataclass(frozen=True)
class MixtureEstimate:
    """Fitted mixtures of R data sets, float64: ``weights (R, K)``, ``means (R, K, d)``,
    ``variances (R, K, d)``; ``converged (R,)`` says whether each fit met its tolerance
    (always True for a hypernetwork)."""

    weights: torch.Tensor
    means: torch.Tensor
    variances: torch.Tensor
    converged: torch.Tensor

    def as_model(self) -> GaussianMixtureModel:
        """A :class:`GaussianMixtureModel` holding these R mixtures."""
        r, k, d = self.means.shape
        model = GaussianMixtureModel(k, d, replicates=r)
        self.load_into(model)
        return model

    @torch.no_grad()
    def load_into(self, model: GaussianMixtureModel) -> None:
        model.weights.copy_(self.weights)
        model.means.copy_(self.means)
        model.variances.copy_(self.variances)

    def flat(self) -> torch.Tensor:
        """``(R, K * (1 + 2d))``: weights, means, variances joined, in the target's parameter order."""
        return torch.cat([self.weights, self.means.flatten(1), self.variances.flatten(1)], dim=1)

    def permuted(self, order: torch.Tensor) -> MixtureEstimate:
        """Components reordered per set: ``order (R, K)`` lists, for each slot, the component it takes."""
        rows = torch.arange(order.shape[0])[:, None]
        return MixtureEstimate(self.weights[rows, order], self.means[rows, order], self.variances[rows, order], self.converged)


@dataclass(frozen=True)
class TrainedHyperNetwork:
    """A trained amortised estimator and its training record: ``nll`` and ``discrepancy`` are
    the means over the last 10 % of steps; ``sets_per_step`` sets of ``set_size`` samples each."""

    hnet: HyperNetwork
    lam: float
    set_size: int
    sets_per_step: int
    nll: float
    discrepancy: float
    seconds: float


def match_components(means: torch.Tensor, true_means: torch.Tensor) -> torch.Tensor:
    """For each set, which fitted component plays each true component: ``(R, K)`` indices.

    The permutation minimising ``sum_k ||means[perm[k]] - true_means[k]||^2`` (all K!
    permutations are tried; K is small). means: ``(R, K, d)``, true_means: ``(K, d)``, or
    ``(R, K, d)`` for a truth of its own per set.
    """
    k = true_means.shape[-2]
    perms = torch.tensor(list(itertools.permutations(range(k))), dtype=torch.int64)  # (P, K)
    truth = true_means[:, None] if true_means.dim() == 3 else true_means  # (R, 1, K, d) or (K, d)
    cost = (means[:, perms] - truth).square().sum((-2, -1))  # (R, P)
    return perms[cost.argmin(dim=1)]


def train_hypernetwork(
    truth: GaussianMixtureModel,
    *,
    set_size: int,
    lam: float,
    steps: int,
    samples_per_step: int,
    lr: float,
    hidden: int,
    embedding_dim: int,
    discrepancy: str,
    init_seed: int,
    data_generator: torch.Generator,
    ple_generator: torch.Generator,
) -> TrainedHyperNetwork:
    """Train H for sets of ``set_size`` samples of ``truth`` (see the module docstring).

    Every step draws ``max(1, round(samples_per_step / set_size))`` fresh sets, so the cost of
    a step does not grow with n. Adam with a cosine decay of ``lr`` to 0 over ``steps``.
    ``init_seed`` fixes the hypernetwork's initial weights (the same for every lam: common
    random numbers), ``data_generator`` the training sets, ``ple_generator`` the own samples Y.
    A NaN or infinite objective raises :class:`FloatingPointError` naming n, lam, the step and the
    value (:func:`genfair.training.take_step`).
    """
    target = GaussianMixtureModel(truth.num_components, truth.dim).to(_HYPER_DTYPE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        hnet = HyperNetwork(
            target,
            sample_shape=(truth.dim,),
            head="dense",
            positive={"weights": "softmax", "variances": "softplus"},
            hidden=hidden,
            embedding_dim=embedding_dim,
            per_replicate=True,
        )
    objective = PLEObjective(PLEConfig(lam=lam, discrepancy=discrepancy))
    optimiser = torch.optim.Adam(hnet.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    sets = max(1, round(samples_per_step / set_size))
    tail = max(1, steps // 10)
    nll, gap = [], []
    start = time.perf_counter()
    what = f"gmm_ple hypernetwork (n={set_size}, lam={lam:g})"
    for step in range(steps):
        x = truth.sample(sets * set_size, generator=data_generator).reshape(sets, set_size, truth.dim)
        terms = objective(hnet, x.to(_HYPER_DTYPE), generator=ple_generator)
        take_step(terms.total, optimiser, what=what, step=step, steps=steps)
        schedule.step()
        objective.update_multiplier(terms)
        nll.append(terms.nll.item())
        gap.append(terms.discrepancy.item())
    hnet.requires_grad_(False)
    return TrainedHyperNetwork(
        hnet, float(lam), set_size, sets, float(np.mean(nll[-tail:])), float(np.mean(gap[-tail:])), time.perf_counter() - start
    )


@torch.no_grad()
def hyper_estimate(hnet: HyperNetwork, x: torch.Tensor) -> MixtureEstimate:
    """H(X) for every set of ``x (R, n, d)``, as float64."""
    weights = {name: value.to(torch.float64) for name, value in hnet(x.to(_HYPER_DTYPE)).items()}
    converged = torch.ones(x.shape[0], dtype=torch.bool)
    return MixtureEstimate(weights["weights"], weights["means"], weights["variances"], converged)


def em_estimate(
    x: torch.Tensor, *, num_components: int, n_init: int, tol: float, max_iter: int, generator: torch.Generator
) -> MixtureEstimate:
    """scikit-learn's EM (``GaussianMixture``, diagonal covariances, k-means initialisation) on
    each set of ``x (R, n, d)``; set r's ``random_state`` is drawn from ``generator``.

    ``tol`` is scikit-learn's threshold on the change of the mean per-sample log-likelihood. On
    this study's heavily overlapping mixture the likelihood is nearly flat along a ridge, and
    scikit-learn's default 1e-3 stops after a handful of iterations, far from the maximum.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    states = torch.randint(0, 2**31 - 1, (x.shape[0],), generator=generator).tolist()
    weights, means, variances, converged = [], [], [], []
    for data, state in zip(x.detach().cpu().numpy(), states):
        mixture = GaussianMixture(
            num_components, covariance_type="diag", n_init=n_init, tol=tol, max_iter=max_iter, random_state=state
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # counted in ``converged`` instead
            mixture.fit(data)
        weights.append(mixture.weights_)
        means.append(mixture.means_)
        variances.append(mixture.covariances_)
        converged.append(mixture.converged_)
    as_tensor = lambda values: torch.from_numpy(np.stack(values)).to(torch.float64)  # noqa: E731
    return MixtureEstimate(as_tensor(weights), as_tensor(means), as_tensor(variances), torch.tensor(converged))

"""What a hypernetwork fit reports about itself each generation: is the PLE penalty a visible part
of the loss, and does H read its input as much as a maximum-likelihood fit reads its data?

A constant H satisfies the PLE constraint trivially (the reviewers' objection to Mayer et al.,
arXiv 2405.13977), and a penalty of 1e-13 of the loss changes nothing. The values below, one per
generation in the run's metrics.csv, show either at a glance.

Sensitivities are relative rms changes of all generated weights between two disjoint halves A and
B of the generation's training set X_g (one random split, shared by both):

  - H's:   ``rms(H(A) - H(B)) / rms(H(A))`` (``genfair.hypernets.input_sensitivity``, "disjoint");
  - the MLE's: two copies of the model start at the fitted weights ``theta_g`` and take
    ``reference_steps`` full-batch Adam steps (the estimator's ``lr``) on the model's own loss,
    one on A and one on B, under the same random numbers, so the two differ only by their data;
    ``rms(theta_A - theta_B) / rms(theta_A)``. Short, so it is cheap; a full maximum-likelihood
    fit of a half would move further still (it grows with the steps), so the ratio of the two
    sensitivities is an upper bound on how much of the MLE's data dependence H has.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from genfair.data import Batch
from genfair.hypernets import HyperNetwork, PLEObjective, input_sensitivity
from genfair.training import take_step

__all__ = ["EVIDENCE_KEYS", "fit_evidence"]

EVIDENCE_KEYS: tuple[str, ...] = (
    "ple_nll/all",
    "ple_discrepancy/all",
    "ple_penalty/all",
    "ple_penalty_ratio/all",
    "h_sensitivity/all",
    "mle_sensitivity/all",
    "sensitivity_ratio/all",
)
DRAWS = 8  # synthetic sets Y behind the reported D (one batched call)


def fit_evidence(
    hnet: HyperNetwork,
    objective: PLEObjective,
    model: nn.Module,
    data: Batch,
    *,
    conditional: bool,
    generator: torch.Generator,
    vectorise: bool,
    reference_steps: int,
    lr: float,
    what: str,
    error: Callable[[str], Exception] = FloatingPointError,
) -> dict[str, torch.Tensor]:
    """The evidence of a trained single-set H on its generation's training set ``data (1, n, ...)``,
    ``{key: (1,) float64}`` (see the module docstring; ``mle_sensitivity`` and
    ``sensitivity_ratio`` only with ``reference_steps > 0``):

      ``ple_nll``: the likelihood term at the estimate, mean per-sample NLL(X_g; H(X_g)) in nats;
      ``ple_discrepancy``: D(H(X_g), H(Y)), ``Y ~ p(.; H(X_g))``, averaged over ``DRAWS`` draws
      (computed for ``lam = 0`` too, as the control's value);
      ``ple_penalty``: the penalty the objective pays, ``lam * D`` (0 for ``hyper_mle``);
      ``ple_penalty_ratio``: ``ple_penalty / |ple_nll|``;
      ``h_sensitivity``, ``mle_sensitivity``, ``sensitivity_ratio``: H's, the MLE's, H's / MLE's.

    ``what`` names the fit (``"estimator ple"``); a NaN or infinite loss of the MLE reference
    steps raises ``error(message)`` (:func:`genfair.training.take_step`).
    """
    x, labels = data.x[0], data.y[0]
    probe = PLEObjective(dataclasses.replace(objective.config, lam=1.0, constraint="penalty"))  # D even when lam = 0
    stacked = x.expand(DRAWS, *x.shape)
    with torch.no_grad():
        terms = probe.sets(hnet, stacked, labels.expand(DRAWS, -1) if conditional else None,
                           generator=generator, vectorise=vectorise)
    nll, discrepancy = float(terms.nll), float(terms.discrepancy)
    penalty = objective.config.lam * discrepancy
    order = torch.randperm(x.shape[0], generator=generator)
    h = input_sensitivity(hnet, data.x, data.y if conditional else None, order=order)["disjoint"]
    values = {
        "ple_nll/all": nll,
        "ple_discrepancy/all": discrepancy,
        "ple_penalty/all": penalty,
        "ple_penalty_ratio/all": penalty / max(abs(nll), 1e-12),
        "h_sensitivity/all": h,
    }
    if reference_steps > 0:
        mle = mle_sensitivity(model, data, order, steps=reference_steps, lr=lr, generator=generator, what=what, error=error)
        values.update({"mle_sensitivity/all": mle, "sensitivity_ratio/all": h / max(mle, 1e-12)})
    return {key: torch.tensor([value], dtype=torch.float64) for key, value in values.items()}


def mle_sensitivity(
    model: nn.Module,
    data: Batch,
    order: torch.Tensor,
    *,
    steps: int,
    lr: float,
    generator: torch.Generator,
    what: str,
    error: Callable[[str], Exception] = FloatingPointError,
) -> float:
    """``rms(theta_A - theta_B) / rms(theta_A)`` after ``steps`` full-batch Adam steps from the
    model's weights on the halves ``order[:n//2]`` and ``order[n//2:2*(n//2)]`` of ``data``,
    both under one seed drawn from ``generator``; the model itself is not changed. Every step
    goes through :func:`genfair.training.take_step`: a NaN or infinite loss raises
    ``error("{what} (mle_sensitivity's reference fit): loss is nan at step k of steps")``."""
    half = data.x.shape[1] // 2
    seed = int(torch.randint(2**62, (1,), generator=generator))
    fitted = []
    for index in (order[:half], order[half : 2 * half]):
        copy_ = copy.deepcopy(model).train()
        optimiser = torch.optim.Adam(copy_.parameters(), lr=lr)
        x, y = data.x[:, index.to(data.x.device)], data.y[:, index.to(data.y.device)]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # common random numbers: the halves differ only by their data
            for step in range(steps):
                take_step(copy_.loss(x, y).mean(), optimiser, what=f"{what} (mle_sensitivity's reference fit)",
                          step=step, steps=steps, error=error)
        fitted.append(torch.cat([p.detach().flatten() for p in copy_.parameters()]))
    a, b = fitted
    return float((a - b).square().mean().sqrt() / a.square().mean().sqrt().clamp(min=1e-12))

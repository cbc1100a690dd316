"""Loss-side remedies: per-sample weights, Group DRO, the MinDiff penalty, hard example mining.

Each turns a batch's per-sample losses ``(n,)`` and classes ``(n,)`` into the scalar to minimise.
"""

from __future__ import annotations

import math

import torch

from genfair.fairness import mmd2, reweighing_factors

__all__ = ["GroupDRO", "class_weights", "hard_example_loss", "mindiff_loss"]


def class_weights(labels: torch.Tensor, *, groups: torch.Tensor | None = None, weighting: str) -> torch.Tensor:
    """Per-sample weights ``(n,)`` of a training set: ``inverse_frequency``, ``n / (K n_y)``
    (every present class weighs the same in total), or ``kamiran_calders`` with ``groups``."""
    if weighting == "kamiran_calders":
        return reweighing_factors(labels if groups is None else groups, labels)
    counts = torch.bincount(labels).to(torch.float64)
    present = int((counts > 0).sum())
    return len(labels) / (present * counts[labels])


class GroupDRO:
    """Group DRO (Sagawa et al. 2020, Algorithm 1): group weights ``q`` updated by exponentiated
    gradient, ``q_g <- q_g exp(eta * loss_g)``, normalised; the loss is ``sum_g q_g loss_g`` with
    ``loss_g`` the batch mean of group g plus ``C / sqrt(n_g)`` (size adjustment, ``n_g`` the
    group's training size). Groups absent from a batch keep their weight and leave the sum.
    ``history`` holds ``q`` after every step.

    The weights are kept as logarithms, ``log q_g += eta * loss_g``, normalised by log-sum-exp,
    and the loss weighs the present groups by the softmax of their own log-weights: the
    multiplicative form underflows to ``0 / 0`` when the present groups' losses stay negative (a
    Gaussian decoder's NLL) while an absent group's weight stays put."""

    def __init__(self, num_groups: int, *, step_size: float, size_adjustment: float = 0.0,
                 group_sizes: torch.Tensor | None = None) -> None:
        self.log_q = torch.full((num_groups,), -math.log(num_groups), dtype=torch.float64)
        self.step_size, self.size_adjustment = step_size, size_adjustment
        sizes = group_sizes if group_sizes is not None else torch.ones(num_groups)
        self.adjustment = size_adjustment / sizes.to(torch.float64).clamp_min(1).sqrt()
        self.history: list[list[float]] = []

    @property
    def q(self) -> torch.Tensor:
        """The group weights ``(groups,)``, summing to 1."""
        return self.log_q.exp()

    def __call__(self, losses: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        num_groups = len(self.log_q)
        counts = torch.bincount(groups, minlength=num_groups)
        present = counts > 0
        sums = torch.zeros(num_groups, dtype=losses.dtype, device=losses.device).index_add(0, groups, losses)
        means = sums / counts.clamp_min(1).to(losses.dtype)
        adjusted = means + self.adjustment.to(device=losses.device, dtype=losses.dtype)
        with torch.no_grad():  # the weights live on the CPU, in float64, whatever the losses' device
            step = self.step_size * adjusted.detach().to(device="cpu", dtype=torch.float64) * present.cpu()
            log_q = self.log_q + step
            self.log_q = log_q - torch.logsumexp(log_q, 0)
        self.history.append(self.q.tolist())
        weights = torch.softmax(self.log_q[present.cpu()], 0).to(device=losses.device, dtype=losses.dtype)
        return (weights * adjusted[present]).sum()

    def worst_group(self) -> int:
        return int(self.log_q.argmax())


def mindiff_loss(
    losses: torch.Tensor, groups: torch.Tensor, *, minority: int, weight: float, kernel: str, length: float,
    quantity: torch.Tensor | None = None,
) -> torch.Tensor:
    """``mean(losses) + weight * MMD²(q_minority, q_rest)`` of a chosen per-sample quantity ``q``
    (the losses themselves by default); no penalty in a batch without both sides."""
    q = losses if quantity is None else quantity
    inside = groups == minority
    if not bool(inside.any()) or bool(inside.all()):
        return losses.mean()
    return losses.mean() + weight * mmd2(q[inside], q[~inside], kernel=kernel, length=length)


def hard_example_loss(losses: torch.Tensor, *, keep: float) -> torch.Tensor:
    """The mean of the ``ceil(keep * n)`` highest losses of the forwarded batch (the rest get no
    gradient)."""
    count = max(1, math.ceil(keep * len(losses)))
    return losses.topk(count).values.mean()

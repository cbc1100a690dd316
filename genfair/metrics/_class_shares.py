"""Class shares of generated samples measured by a classifier, corrected for its errors.

A classifier assigns each of n generated samples a class in [0, K). Its raw shares q_k (the
fraction predicted as k, counted with ``bincount(minlength=K)`` so a vanished class has share 0)
are biased by its mistakes: with C the held-out confusion counts (rows the true class, columns the
predicted one) and A = C row-normalised, A[t, k] = P(predict k | true t), in expectation

    q = A^T p                                                                                (1)

for the true shares p (the classical misclassification correction; Teo et al. 2023, CLEAM, show
how far uncorrected shares from a classifier can be off). :func:`corrected_shares` solves (1) for
p with the pseudo-inverse (the exact solve when A is invertible, the minimum-norm least-squares one
when it is not), then projects the solution onto the probability simplex {p : p >= 0, sum p = 1}
in the Euclidean norm (2), by the exact sort-based algorithm of Held et al. (1974) (see Condat
2016, Algorithm 1):

    p* = max(p - tau, 0),  tau = (sum_{i<=rho} s_i - 1)/rho,  s sorted descending,
    rho = max{j : s_j - (sum_{i<=j} s_i - 1)/j > 0}                                         (2)

Because the rows of A sum to 1, the solve of (1) already sums to 1 when q does; (2) then changes
it only when some entry is negative (noise, typically of a class that is rare or absent).

Fairness discrepancy (Choi et al. 2020): ||p - p_target||_2 (or the l1 / total-variation distance)
over all K classes, and the representation ratio p_g / p_target,g of one group.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from genfair.errors import ConfigError, check_choice, check_positive_int
from genfair.metrics._array_like import as_tensor

__all__ = ["as_labels", "corrected_shares", "fairness_discrepancy", "raw_shares", "representation_ratio"]

Norm = Literal["l2", "l1", "tv"]


def as_labels(name: str, labels: Any, num_classes: int) -> torch.Tensor:
    """``labels`` (a tensor or array-like ``(n,)`` of integers in [0, num_classes)) as an int64 CPU
    tensor, or a :class:`ConfigError` naming ``name``."""
    labels = as_tensor(name, labels)
    if labels.dim() != 1:
        raise ConfigError(f"{name} must have shape (n,), got shape {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.is_complex() or labels.dtype == torch.bool:
        raise ConfigError(f"{name} must hold integer classes, got dtype {labels.dtype}")
    labels = labels.to(device="cpu", dtype=torch.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0].item()
        raise ConfigError(f"{name} must be classes in [0, {num_classes}), got {bad}")
    return labels


def raw_shares(predicted: Any, num_classes: int) -> torch.Tensor:
    """Fraction of ``predicted (n,)`` (n >= 1) in each class, float64 ``(num_classes,)``; absent classes get 0."""
    num_classes = check_positive_int("num_classes", num_classes)
    predicted = as_labels("predicted", predicted, num_classes)
    if len(predicted) == 0:
        raise ConfigError("predicted must hold at least one sample, got 0")
    return torch.bincount(predicted, minlength=num_classes).double() / len(predicted)


def corrected_shares(predicted: Any, confusion: Any) -> torch.Tensor:
    """The class shares of the samples behind ``predicted (n,)``, corrected for the classifier's errors.

    Args:
        predicted: ``(n,)`` the classifier's predicted class of each generated sample, in [0, K).
        confusion: ``(K, K)`` counts on held-out real data, rows the true class, columns the
            predicted one; every row needs at least one sample.

    Returns ``(K,)`` float64 on the simplex: (1) solved, then projected by (2).
    """
    confusion = as_confusion(confusion)
    return correct_shares(raw_shares(predicted, confusion.shape[0]), confusion)


def as_confusion(confusion: Any) -> torch.Tensor:
    """``confusion`` as a float64 ``(K, K)`` tensor of nonnegative counts with no empty row."""
    confusion = as_tensor("confusion", confusion)
    if confusion.dim() != 2 or confusion.shape[0] != confusion.shape[1] or confusion.shape[0] == 0:
        raise ConfigError(f"confusion must have shape (K, K), got shape {tuple(confusion.shape)}")
    confusion = confusion.detach().to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(confusion).all() or (confusion < 0).any():
        raise ConfigError(f"confusion must hold nonnegative counts, got {confusion.tolist()}")
    empty = (confusion.sum(1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ConfigError(f"confusion must have held-out samples of every true class (rows), rows {empty} are empty")
    return confusion


def correct_shares(observed: torch.Tensor, confusion: torch.Tensor) -> torch.Tensor:
    """(1) then (2), batched: ``observed (..., K)`` raw shares, ``confusion (..., K, K)`` counts -> ``(..., K)``."""
    rates = confusion / confusion.sum(-1, keepdim=True)  # A[t, k] = P(predict k | true t)
    solved = (torch.linalg.pinv(rates.mT) @ observed.unsqueeze(-1)).squeeze(-1)
    return _project_to_simplex(solved)


def _project_to_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row of ``v (..., K)`` onto the probability simplex, (2)."""
    s = v.sort(dim=-1, descending=True).values
    cumulative = s.cumsum(-1) - 1
    j = torch.arange(1, v.shape[-1] + 1, dtype=v.dtype)
    rho = ((s - cumulative / j) > 0).sum(-1, keepdim=True)  # the condition holds exactly for j <= rho
    tau = cumulative.gather(-1, rho - 1) / rho
    return (v - tau).clamp(min=0)


def representation_ratio(shares: Any, target_shares: Any, *, group: int) -> float:
    """``shares[group] / target_shares[group]``: 1 is fair, 0 a vanished group; NaN for a zero target."""
    shares, target = _share_pair(shares, target_shares)
    if isinstance(group, bool) or not isinstance(group, int) or not 0 <= group < len(shares):
        raise ConfigError(f"group must be a class index in [0, {len(shares)}), got {group!r}")
    return float(_ratio(shares[group], target[group]))


def fairness_discrepancy(shares: Any, target_shares: Any, *, norm: Norm = "l2") -> float:
    """Distance between the full K-vectors of generated and target shares (Choi et al. 2020).

    ``norm``: ``"l2"`` ||p - t||_2 (Choi et al.), ``"l1"`` sum |p - t|, ``"tv"`` half of l1.
    A vanished class enters with share 0.
    """
    shares, target = _share_pair(shares, target_shares)
    return float(_discrepancy(shares, target, norm=norm))


def _share_pair(shares: Any, target_shares: Any) -> tuple[torch.Tensor, torch.Tensor]:
    shares = as_tensor("shares", shares).to(torch.float64)
    target = as_tensor("target_shares", target_shares).to(torch.float64)
    if shares.dim() != 1 or target.shape != shares.shape:
        raise ConfigError(
            f"shares and target_shares must both have shape (K,), got {tuple(shares.shape)} and {tuple(target.shape)}"
        )
    return shares, target


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, NaN where the denominator is 0 or NaN."""
    nan = torch.full_like(denominator, float("nan"))
    return torch.where(denominator == 0, nan, numerator / torch.where(denominator == 0, 1.0, denominator))


def _discrepancy(shares: torch.Tensor, target: torch.Tensor, *, norm: Norm) -> torch.Tensor:
    """Fairness discrepancy of ``shares (..., K)`` against ``target (K,)`` -> ``(...)``."""
    check_choice("norm", norm, ("l2", "l1", "tv"))
    gap = shares - target
    if norm == "l2":
        return gap.square().sum(-1).sqrt()
    elif norm == "l1":
        return gap.abs().sum(-1)
    elif norm == "tv":
        return gap.abs().sum(-1) / 2
    else:  # unreachable after check_choice; kept so a new option cannot fall through silently
        raise ConfigError(f"norm must be one of ['l2', 'l1', 'tv'], got {norm!r}")

"""A bootstrap stratified by class, and percentile intervals from its replicates.

Resampling with replacement within each class keeps every class's count in every resample (Davison
& Hinkley 1997, ch. 3), so a resample never loses a minority class: a rare class's statistics
stay defined in every replicate, and the pooled statistics keep the design's class mix. The
held-out confusion matrix of a classifier is resampled the same way: each true class's row is a
multinomial draw of its own size from its own rates, which is a stratified bootstrap of the
held-out (true, predicted) pairs.

Randomness is an argument: a ``torch.Generator``, e.g. ``genfair.seeding.torch_generator(seed,
generation, "bootstrap")``, so each generation's bootstrap can be re-run alone.

The percentile interval (Efron & Tibshirani 1993, ch. 13) of B replicates theta*_b at level
1 - alpha is [q_{alpha/2}, q_{1-alpha/2}] of the replicates (linear interpolation between order
statistics).
"""

from __future__ import annotations

from typing import Any

import torch

from genfair.errors import ConfigError, check_number, check_positive_int
from genfair.metrics._array_like import as_tensor
from genfair.metrics._class_shares import as_confusion, as_labels

__all__ = ["percentile_interval", "resample_confusion", "stratified_resample"]


def stratified_resample(
    labels: Any, num_classes: int, *, generator: torch.Generator, replicates: int = 1
) -> torch.Tensor:
    """Indices of ``replicates`` bootstrap resamples of ``labels (n,)``, drawn within each class.

    Returns ``(replicates, n)`` int64: position i of a resample holds a random index (with
    replacement) among the samples of class ``labels[i]``, so ``labels[index] == labels`` row by
    row and every class keeps its count.
    """
    num_classes = check_positive_int("num_classes", num_classes)
    replicates = check_positive_int("replicates", replicates)
    labels = as_labels("labels", labels, num_classes)
    _check_generator(generator)
    index = torch.empty(replicates, len(labels), dtype=torch.int64)
    for c in range(num_classes):
        members = (labels == c).nonzero().flatten()
        if len(members) == 0:
            continue
        draws = torch.randint(len(members), (replicates, len(members)), generator=generator)
        index[:, members] = members[draws]
    return index


def resample_confusion(confusion: Any, *, generator: torch.Generator, replicates: int = 1) -> torch.Tensor:
    """Bootstrap resamples of held-out confusion counts ``(K, K)`` (rows the true class).

    Row t of each resample is Multinomial(N_t, C[t] / N_t) with N_t = sum_k C[t, k]: the row
    totals (the held-out class sizes) stay fixed. Counts must be whole numbers.
    Returns ``(replicates, K, K)`` float64 counts.
    """
    replicates = check_positive_int("replicates", replicates)
    confusion = as_confusion(confusion)
    if not torch.equal(confusion, confusion.round()):
        raise ConfigError(f"confusion must hold whole counts to be resampled, got {confusion.tolist()}")
    _check_generator(generator)
    k = confusion.shape[0]
    out = torch.zeros(replicates, k, k, dtype=torch.float64)
    for t in range(k):
        total = int(confusion[t].sum())
        draws = torch.multinomial(
            (confusion[t] / total).expand(replicates, k), total, replacement=True, generator=generator
        )  # (replicates, N_t) predicted classes
        out[:, t].scatter_add_(1, draws, torch.ones(replicates, total, dtype=torch.float64))
    return out


def percentile_interval(replicates: Any, *, level: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """(lo, hi): the percentile interval at ``level`` of ``replicates (B, ...)`` (a tensor or
    array-like), each a float64 tensor ``(...)``.

    A NaN among a statistic's replicates makes its interval NaN (the statistic was undefined in some
    resample, so no honest interval exists).
    """
    level = check_level(level)
    replicates = as_tensor("replicates", replicates).to(torch.float64)
    if replicates.dim() == 0 or len(replicates) == 0:
        raise ConfigError(f"replicates must have shape (B, ...) with B >= 1, got shape {tuple(replicates.shape)}")
    alpha = 1 - level
    bounds = torch.quantile(replicates, torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.float64), dim=0)
    return bounds[0], bounds[1]


def check_level(level: Any) -> float:
    """Return ``level`` if it is a number in (0, 1), else raise :class:`ConfigError`."""
    check_number("level", level, above=0, below=1)
    return float(level)


def _check_generator(generator: Any) -> None:
    if not isinstance(generator, torch.Generator):
        raise ConfigError(
            "generator must be a torch.Generator (e.g. genfair.seeding.torch_generator(seed, generation, "
            f"'bootstrap')), got {type(generator).__name__}"
        )

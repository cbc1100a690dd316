"""Resampling remedies: class-balanced mini-batches, an oversampled epoch, and SMOTE.

- ``oversample`` at batch level: every mini-batch holds ``round(batch_size * share_k)`` samples
  of class k (largest remainder), drawn with replacement within the class; at epoch level the
  training set is first resampled (with replacement within each class) to the shares, and
  batches are then drawn from it uniformly.
- ``smote`` (Chawla et al. 2002): a new sample of class c lies on the segment between a random
  sample of class c and one of its ``k`` nearest neighbours of the same class,
  ``x_i + u (x_j - x_i)``, ``u ~ U(0, 1)``. Neighbours are found in ``space`` (for images, the
  evaluation classifier's features, where distances mean something; raw pixels otherwise) and
  the interpolation is done on the samples themselves, so the new images can be trained on
  directly: a choice, since the feature space has no decoder (docs/references.md §4 asks for neighbours
  in an embedding; pixel averages of two near neighbours of one digit stay digit-like).
"""

from __future__ import annotations

import torch

from genfair.data import Batch, stratified_counts
from genfair.errors import ConfigError

__all__ = ["balanced_batch", "oversample_epoch", "smote"]


def balanced_batch(labels: torch.Tensor, batch_size: int, shares: list[float], *, generator: torch.Generator) -> torch.Tensor:
    """Indices ``(batch_size,)`` into ``labels (n,)``: exactly ``stratified_counts(batch_size,
    shares)[k]`` of class k, with replacement within the class."""
    counts = stratified_counts(batch_size, list(shares))
    parts = []
    for k, count in enumerate(counts):
        members = (labels == k).nonzero().flatten()
        if count and len(members) == 0:
            raise ConfigError(f"oversample needs samples of class {k} (share {shares[k]}), but the training set has none")
        if count:
            parts.append(members[torch.randint(len(members), (count,), generator=generator)])
    return torch.cat(parts)


def oversample_epoch(train: Batch, shares: list[float], *, generator: torch.Generator) -> Batch:
    """The training set (one replicate) resampled to ``shares`` at its own size."""
    index = balanced_batch(train.y[0], train.n, shares, generator=generator)
    return train.select(index)


def smote(
    train: Batch,
    *,
    k: int,
    target_share: float | None,
    generator: torch.Generator,
    space: torch.Tensor | None = None,
) -> Batch:
    """``train`` (one replicate) with SMOTE samples appended (see the module docstring).

    Args:
        k: neighbours among which each partner is drawn (capped at the class size minus 1).
        target_share: the smallest class's share after SMOTE; ``None``: every class is filled up
            to the size of the largest.
        space: ``(n, d)`` where neighbours are searched (default: the flattened samples).

    A class with a single sample gets copies of it (no neighbour to interpolate with).
    """
    x, y = train.x[0], train.y[0]
    space = x.reshape(len(x), -1).to(torch.float64) if space is None else space.to(torch.float64)
    counts = torch.bincount(y)
    largest = int(counts.max())
    if target_share is None:
        wanted = {c: largest - int(n) for c, n in enumerate(counts.tolist()) if 0 < n < largest}
    else:
        c = int(torch.where(counts > 0, counts, counts.max() + 1).argmin())
        others = int(counts.sum()) - int(counts[c])
        total = int(round(others * target_share / (1 - target_share)))
        wanted = {c: max(total - int(counts[c]), 0)}
    new_x, new_y = [x], [y]
    for c, extra in wanted.items():
        members = (y == c).nonzero().flatten()
        if extra == 0:
            continue
        anchor = torch.randint(len(members), (extra,), generator=generator)
        if len(members) == 1:  # no neighbour to interpolate with (a class a loop nearly lost): copies
            partner = anchor
        else:
            neighbours = min(k, len(members) - 1)
            distances = torch.cdist(space[members], space[members])
            distances.fill_diagonal_(float("inf"))
            nearest = distances.topk(neighbours, largest=False).indices  # (members, neighbours)
            partner = nearest[anchor, torch.randint(neighbours, (extra,), generator=generator)]
        u = torch.rand(extra, *([1] * (x.dim() - 1)), generator=generator, dtype=x.dtype)
        a, b = x[members[anchor]], x[members[partner]]
        new_x.append(a + u * (b - a))
        new_y.append(torch.full((extra,), c, dtype=y.dtype))
    return Batch(torch.cat(new_x)[None], torch.cat(new_y)[None])

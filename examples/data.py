"""A data source from your own code for ``genfair data=custom`` (see docs/guides/wrapping-models.md,
"Bring your own data"): scikit-learn's 8x8 digits 1 (the majority) and 7 (a 10 % minority)::

    genfair data=custom data._target_=examples.data.OnesAndSevens +data.minority_share=0.1

What genfair asks of a source: ``group_names``, ``shares``, ``sample_shape``, ``draw``,
``training_pool`` and ``heldout`` (``genfair.data.CustomData``).
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from genfair.data import Batch, stratified_counts


class OnesAndSevens:
    """Digits 1 and 7, each split once into a training pool and a held-out part.

    Args:
        minority_share: the share of 7s in every draw (the 1s take the rest).
        holdout: the share of each class kept apart for evaluation.
        split_seed: the seed of that split.
    """

    def __init__(self, *, minority_share: float = 0.1, holdout: float = 0.25, split_seed: int = 0) -> None:
        if not 0 < minority_share < 1:
            raise ValueError(f"minority_share must lie in (0, 1), got {minority_share!r}")
        self.group_names = ("1", "7")
        self.shares = (1 - minority_share, minority_share)
        self.sample_shape = (1, 8, 8)
        digits = load_digits()
        images = torch.as_tensor(digits.images, dtype=torch.float32)[:, None] / 16  # (N, 1, 8, 8) in [0, 1]
        targets = torch.as_tensor(digits.target)
        split = torch.Generator().manual_seed(split_seed)
        self._train, self._held = [], []
        for digit in (1, 7):
            members = images[targets == digit]
            members = members[torch.randperm(len(members), generator=split)]
            kept = int(round(holdout * len(members)))
            self._held.append(members[:kept])
            self._train.append(members[kept:])

    def draw(self, replicates: int, n: int, *, generator: torch.Generator) -> Batch:
        """x ``(replicates, n, 1, 8, 8)`` in [0, 1], y ``(replicates, n)``: each replicate draws
        ``stratified_counts(n, shares)[k]`` images of class k without replacement."""
        counts = stratified_counts(n, list(self.shares))
        parts = []
        for count, pool in zip(counts, self._train):
            keys = torch.rand(replicates, len(pool), generator=generator, device=generator.device)
            parts.append(pool[keys.argsort(dim=1)[:, :count].cpu()])
        y = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts)).expand(replicates, -1)
        return Batch(torch.cat(parts, dim=1), y.contiguous())

    def training_pool(self) -> Batch:
        """Every training image: x ``(1, N, 1, 8, 8)``, y ``(1, N)``."""
        return _labelled(self._train)

    def heldout(self) -> Batch:
        """Every held-out image: x ``(1, m, 1, 8, 8)``, y ``(1, m)``."""
        return _labelled(self._held)


def _labelled(pools: list[torch.Tensor]) -> Batch:
    y = torch.repeat_interleave(torch.arange(len(pools)), torch.tensor([len(p) for p in pools]))
    return Batch(torch.cat(pools)[None], y[None])

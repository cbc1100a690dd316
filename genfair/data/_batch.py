"""The labelled sample container that flows through a self-consuming loop."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Batch"]


@dataclass(frozen=True)
class Batch:
    """Samples of ``replicates`` independent chains, with their class labels.

    Attributes:
        x: ``(replicates, n, *sample_shape)`` samples.
        y: ``(replicates, n)`` int64 class indices (all zero for unlabelled data).
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[:2] != self.y.shape:
            raise ValueError(
                f"x and y must share their (replicates, n) dimensions, got x {tuple(self.x.shape)} "
                f"and y {tuple(self.y.shape)}"
            )

    @property
    def replicates(self) -> int:
        return self.x.shape[0]

    @property
    def n(self) -> int:
        return self.x.shape[1]

    def class_counts(self, num_classes: int) -> torch.Tensor:
        """``(replicates, num_classes)`` sample counts per class; a vanished class counts 0."""
        if num_classes == 1:
            return torch.full((self.replicates, 1), self.n, dtype=torch.int64, device=self.y.device)
        rows = num_classes * torch.arange(self.replicates, device=self.y.device)[:, None]
        flat = torch.bincount((self.y + rows).reshape(-1), minlength=self.replicates * num_classes)
        return flat.reshape(self.replicates, num_classes)

    def select(self, index: torch.Tensor) -> Batch:
        """The samples ``index`` (a 1-D index into the n samples) of every replicate."""
        return Batch(self.x[:, index.to(self.x.device)], self.y[:, index.to(self.y.device)])

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        """Join batches along the sample dimension (same replicates)."""
        return Batch(torch.cat([b.x for b in batches], dim=1), torch.cat([b.y for b in batches], dim=1))

"""The set encoder: a data set -> one embedding, invariant to the order of its samples.

Eq. (6) of Mayer et al. (arXiv 2405.13977): ``h2(mean_i h1(x_i))``, a per-sample MLP ``h1``,
mean pooling and an MLP ``h2`` (ending in a LayerNorm, so the embedding has unit second moment).
Labels, when given, are one-hot encoded beside each sample. With ``set_size_input``, the log of the
set size n is joined to the pooled features before ``h2`` (as ``sbi``'s permutation-invariant
embedding appends the number of trials): a mean over the set forgets n, which an estimator
trained over a range of set sizes needs (a variance's MLE divides by n, Bessel's by n - 1).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.functional import one_hot

from ._errors import HyperNetworkError, check_positive_int

__all__ = ["SetEncoder"]


class SetEncoder(nn.Module):
    """``x (*B, n, *sample_shape)`` (and labels ``(*B, n)``) -> embedding ``(*B, embedding_dim)``.

    Args:
        sample_shape: shape of one sample, e.g. ``(64,)`` or ``(1, 8, 8)``.
        num_classes: if set, labels are one-hot encoded and joined to each sample.
        hidden: width of the per-sample MLP ``h1``.
        embedding_dim: width of the set embedding (the output of ``h2``).
        set_size_input: join ``log(n)`` of each set to its pooled features, so the embedding
            depends on the set size (for estimators trained over a range of sizes).
    """

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        *,
        num_classes: int | None = None,
        hidden: int = 64,
        embedding_dim: int = 32,
        set_size_input: bool = False,
    ) -> None:
        super().__init__()
        self.sample_shape = tuple(int(s) for s in sample_shape)
        if not self.sample_shape or any(s < 1 for s in self.sample_shape):
            raise HyperNetworkError(f"sample_shape must be a non-empty tuple of positive sizes, got {sample_shape!r}")
        self.num_classes = None if num_classes is None else check_positive_int("num_classes", num_classes)
        self.set_size_input = bool(set_size_input)
        inputs = math.prod(self.sample_shape) + (self.num_classes or 0)
        self.h1 = nn.Sequential(nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        pooled = hidden + int(self.set_size_input)
        # The closing LayerNorm gives the embedding unit second moment whatever the data's scale, so
        # the heads' outputs start at their intended scale (see genfair.hypernets._heads).
        self.h2 = nn.Sequential(
            nn.Linear(pooled, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim), nn.LayerNorm(embedding_dim)
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        k = len(self.sample_shape)
        if x.dim() < k + 1 or tuple(x.shape[-k:]) != self.sample_shape:
            raise HyperNetworkError(
                f"x has shape {tuple(x.shape)}; this hypernetwork takes sets of samples of shape "
                f"{self.sample_shape}: (n, *sample_shape) or (sets, n, *sample_shape)"
            )
        features = x.reshape(*x.shape[: x.dim() - k], -1)  # (*B, n, prod(sample_shape))
        if self.num_classes is not None:
            if labels is None or labels.shape != features.shape[:-1]:
                raise HyperNetworkError(
                    f"labels must have shape {tuple(features.shape[:-1])} for this class-aware hypernetwork, "
                    f"got {None if labels is None else tuple(labels.shape)}"
                )
            features = torch.cat([features, one_hot(labels, self.num_classes).to(features.dtype)], dim=-1)
        pooled = self.h1(features).mean(dim=-2)  # mean over the set: permutation invariant
        if self.set_size_input:  # log n beside the mean, the same for every set of the batch
            log_n = pooled.new_full((*pooled.shape[:-1], 1), math.log(features.shape[-2]))
            pooled = torch.cat([pooled, log_n], dim=-1)
        return self.h2(pooled)

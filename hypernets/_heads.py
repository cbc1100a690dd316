"""Read-out heads: a set embedding -> one flat vector holding every generated value.

``ChunkedHead`` (genfair's default) generates the flat vector in chunks of ``chunk_size`` with
one shared generator, told apart by learned chunk embeddings; its cost grows like
``2 * chunk_dim * sqrt(numel)`` parameters. ``DenseHead`` is the authors' design (torchhyper):
one ``Linear(embedding_dim, numel_t)`` per target tensor, ``(embedding_dim + 1) * numel``
parameters. Both start with unit-variance outputs, or exactly zero ones for a residual
hypernetwork (``zero_init``), so that a freshly wrapped model is the unwrapped one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genfair.errors import check_positive_int

__all__ = ["ChunkedHead", "DenseHead", "auto_chunk_size"]


def auto_chunk_size(numel: int) -> int:
    """The power of two nearest above ``sqrt(numel)``, capped at 4096: it balances the chunk
    embeddings (``numel / chunk_size`` rows) against the generator's output layer."""
    return min(4096, 2 ** math.ceil(math.log2(max(1.0, math.sqrt(numel)))))


class ChunkedHead(nn.Module):
    """``z (*B, embedding_dim)`` -> ``(*B, numel)``.

    Chunk ``c`` is ``out(silu(chunk_embedding[c] + proj(z)))``, a vector of ``chunk_size`` values;
    chunks are concatenated and the padding beyond ``numel`` dropped.
    """

    def __init__(
        self, numel: int, *, embedding_dim: int, chunk_size: int | None = None, chunk_dim: int = 16, zero_init: bool
    ) -> None:
        super().__init__()
        self.numel = check_positive_int("numel", numel)
        self.chunk_size = auto_chunk_size(numel) if chunk_size is None else check_positive_int("chunk_size", chunk_size)
        chunks = math.ceil(numel / self.chunk_size)
        self.chunk_embedding = nn.Parameter(torch.randn(chunks, check_positive_int("chunk_dim", chunk_dim)))
        self.proj = nn.Linear(embedding_dim, chunk_dim)
        self.out = nn.Linear(chunk_dim, self.chunk_size)
        if zero_init:
            nn.init.zeros_(self.out.weight)
        else:
            nn.init.normal_(self.out.weight, std=1.0 / math.sqrt(chunk_dim))
        nn.init.zeros_(self.out.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        hidden = nn.functional.silu(self.chunk_embedding + self.proj(z)[..., None, :])  # (*B, chunks, chunk_dim)
        return self.out(hidden).flatten(-2)[..., : self.numel]


class DenseHead(nn.Module):
    """``z (*B, embedding_dim)`` -> ``(*B, numel)``: one linear map per target tensor."""

    def __init__(self, sizes: list[int], *, embedding_dim: int, zero_init: bool) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(embedding_dim, size) for size in sizes)
        for head in self.heads:
            if zero_init:
                nn.init.zeros_(head.weight)
            else:
                nn.init.normal_(head.weight, std=1.0 / math.sqrt(embedding_dim))
            nn.init.zeros_(head.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(z) for head in self.heads], dim=-1)

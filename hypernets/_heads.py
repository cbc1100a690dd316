"""Read-out heads: a set embedding -> one flat vector holding every generated value.

``ChunkedHead`` (genfair's default) generates the flat vector in chunks of ``chunk_size`` with
one shared generator, told apart by learned chunk embeddings; its cost grows like
``2 * chunk_dim * sqrt(numel)`` parameters. ``DenseHead`` is the authors' design (torchhyper):
one ``Linear(embedding_dim, numel_t)`` per target tensor, ``(embedding_dim + 1) * numel``
parameters. Both start with unit-variance outputs (the set embedding they read has unit second
moment, see ``SetEncoder``), or exactly zero ones for a residual hypernetwork (``zero_init``), so
that a freshly wrapped model is the unwrapped one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._errors import check_positive_int

__all__ = ["ChunkedHead", "DenseHead", "auto_chunk_size"]


def auto_chunk_size(numel: int) -> int:
    """The power of two nearest above ``sqrt(numel)``, capped at 4096: it balances the chunk
    embeddings (``numel / chunk_size`` rows) against the generator's output layer."""
    return min(4096, 2 ** math.ceil(math.log2(max(1.0, math.sqrt(numel)))))


class ChunkedHead(nn.Module):
    """``z (*B, embedding_dim)`` -> ``(*B, numel)``.

    Chunk ``c`` is ``out(rms_norm(silu(chunk_embedding[c] + proj(z))))``, a vector of
    ``chunk_size`` values; chunks are concatenated and the padding beyond ``numel`` dropped. The
    RMS normalisation (no learned scale) gives every chunk's hidden vector the squared norm
    ``chunk_dim``, so with ``out.weight ~ N(0, 1 / chunk_dim)`` every output starts with variance
    exactly 1, whatever the chunk embeddings and the data.
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

    def forward(
        self, z: torch.Tensor, *, gain: torch.Tensor | None = None, base: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The generated values, ``base + gain * values`` when given (``(numel,)`` each)."""
        hidden = nn.functional.silu(self.chunk_embedding + self.proj(z)[..., None, :])  # (*B, chunks, chunk_dim)
        hidden = nn.functional.rms_norm(hidden, hidden.shape[-1:])
        if gain is None and base is None:
            return self.out(hidden).flatten(-2)[..., : self.numel]
        gain = hidden.new_ones(()) if gain is None else gain
        return _ChunkReadout.apply(hidden, self.out.weight, self.out.bias, gain, base, self.numel)


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

    def forward(
        self, z: torch.Tensor, *, gain: torch.Tensor | None = None, base: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The generated values, ``base + gain * values`` when given (``(numel,)`` each)."""
        values = torch.cat([head(z) for head in self.heads], dim=-1)
        if gain is not None:
            values = values * gain
        return values if base is None else values + base


class _ChunkReadout(torch.autograd.Function):
    """``base + gain * (hidden @ weight.T + bias).flatten(-2)[..., :numel]``, the chunked head's hot
    path, with the least memory traffic: the matrix product writes one output buffer that is
    updated in place, and the backward fills one padded gradient buffer. Composed of ordinary ops,
    the same value costs three more passes over all values and three more fresh buffers (the
    products' gradients and the padding's zero fill), which on a CPU cost as much as the matrix
    products themselves.

    ``hidden (*B, chunks, chunk_dim)``, ``weight (chunk_size, chunk_dim)``, ``bias (chunk_size,)``,
    ``gain`` and ``base`` ``(numel,)``; ``base`` may be ``None``; ``gain`` is a constant."""

    @staticmethod
    def forward(hidden, weight, bias, gain, base, numel):  # noqa: ANN001, ANN205 (autograd.Function)
        rows = torch.addmm(bias, hidden.reshape(-1, hidden.shape[-1]), weight.T)  # (B * chunks, chunk_size)
        out = rows.view(*hidden.shape[:-2], -1)[..., :numel]  # (*B, numel), a view
        if base is None:
            return out.mul_(gain)
        return torch.addcmul(base, out, gain, out=out) if out.dim() == 1 else out.mul_(gain).add_(base)

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: ANN001, ANN205
        hidden, weight, _, gain, base, numel = inputs
        ctx.save_for_backward(hidden, weight, gain)
        ctx.numel, ctx.has_base = numel, base is not None

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        hidden, weight, gain = ctx.saved_tensors
        chunks, chunk_size = hidden.shape[-2], weight.shape[0]
        padded = grad.new_empty(*grad.shape[:-1], chunks * chunk_size)
        torch.mul(grad, gain, out=padded[..., : ctx.numel])
        padded[..., ctx.numel :].zero_()
        rows = padded.view(-1, chunk_size)  # every chunk of every set
        grad_hidden = grad_weight = grad_bias = grad_base = None
        if ctx.needs_input_grad[0]:
            grad_hidden = (rows @ weight).view(hidden.shape)
        if ctx.needs_input_grad[1]:
            grad_weight = (hidden.reshape(-1, hidden.shape[-1]).T @ rows).T  # faster than rows.T @ hidden
        if ctx.needs_input_grad[2]:
            grad_bias = rows.sum(0)
        if ctx.has_base and ctx.needs_input_grad[4]:
            grad_base = grad if grad.dim() == 1 else grad.reshape(-1, ctx.numel).sum(0)
        return grad_hidden, grad_weight, grad_bias, None, grad_base, None

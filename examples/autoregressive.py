"""An autoregressive model with an exact likelihood: a masked MLP with Gaussian conditionals
(MADE; Germain, Gregor, Murray & Larochelle 2015, "MADE: Masked Autoencoder for Distribution
Estimation"), written against genfair's model protocol.

Run it in the loop from the repository root::

    genfair model=custom model._target_=examples.autoregressive.MADE '+model.hidden=[128]'

The model, on D values per sample in raster order (the 8x8 digits flattened: D = 64):
  - chain rule  p(x | c) = prod_d p(x_d | x_<d, c);
  - conditional p(x_d | x_<d, c) = N(x_d; mu_d, sigma_d^2), with mu_d and
                sigma_d = min_scale + softplus(r_d) two outputs of one MLP that sees only x_<d
                (and the class c);
  - masks       every unit k of hidden layer l has a degree m_l(k) in 1 .. D - 1 (the inputs
                it may see: x_1 .. x_m); the inputs have degrees 1 .. D. A hidden weight is kept
                iff m_l(k) >= m_{l-1}(j), an output weight of value d iff d > m_L(k) (the masks
                of Germain et al.'s deep MADE, Sec. 4), so output d depends on x_<d only (x_1's
                outputs on nothing but the biases and the class). Degrees are assigned cyclically, m_l(k) =
                1 + k mod (D - 1) (deterministic; Germain et al. draw them at random);
  - likelihood  ``loss`` = -log p(x | c) - log p(c) per sample, in nats: the sum of the D Gaussian
                negative log densities, exact; with ``num_classes`` the one-hot class joins the
                first hidden layer (unmasked: every output may see it) and the class shares
                p(c) = softmax(class_logits) are learned, so ``loss`` is the joint, as genfair's
                VAE's;
  - sampling    sequential, x_1 first: x_d = mu_d(x_<d) + sigma_d(x_<d) * eps_d with
                eps ~ N(0, I), one network pass per value (D passes), all eps drawn at once from
                the generator; differentiable in every weight (``rsample``).
The floor ``min_scale`` keeps the likelihood bounded on values that are constant in the data
(the digits' border pixels are always 0).

Shapes (one replicate): ``loss(x (1, n, *sample_shape), labels (1, n)) -> (1, n)``;
``sample(n, labels=(1, n)) -> (1, n, *sample_shape)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.functional import linear, softplus

from genfair.devices import multinomial, randn
from genfair.models import GenerativeModel, ReparameterizedSampler

__all__ = ["MADE"]

_LOG_2PI = math.log(2 * math.pi)


class MADE(nn.Module, GenerativeModel, ReparameterizedSampler):
    """Masked MLP with Gaussian conditionals (see the module docstring).

    Args:
        sample_shape: one sample's shape, e.g. ``(64,)`` or ``(1, 8, 8)``; flattened to D values.
        hidden: widths of the masked hidden layers (ReLU).
        num_classes: condition on this many classes (``None``: unconditional; labels are then
            accepted and ignored).
        min_scale: floor of every conditional's standard deviation, in data units.

    Example:
        >>> made = MADE(sample_shape=(64,), hidden=(32,))
        >>> made.loss(torch.rand(1, 5, 64)).shape
        torch.Size([1, 5])
        >>> made.sample(3, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([1, 3, 64])
    """

    def __init__(
        self,
        *,
        sample_shape: Sequence[int],
        hidden: Sequence[int] = (128,),
        num_classes: int | None = None,
        min_scale: float = 0.01,
    ) -> None:
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if not hidden or min(hidden) < 1 or min_scale <= 0 or (num_classes is not None and num_classes < 1):
            raise ValueError(
                f"need one or more hidden widths >= 1, min_scale > 0 and num_classes None or >= 1, got "
                f"hidden={hidden!r}, min_scale={min_scale!r}, num_classes={num_classes!r}"
            )
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.num_classes = num_classes
        self.min_scale = float(min_scale)
        dim = math.prod(self.sample_shape)
        if dim < 2:
            raise ValueError(f"sample_shape must hold at least 2 values, got {self.sample_shape}")
        degrees = [torch.arange(1, dim + 1)]  # the inputs' degrees 1 .. D
        degrees += [1 + torch.arange(width) % (dim - 1) for width in hidden]  # the hidden units' 1 .. D - 1
        layers = []
        for previous, current in zip(degrees[:-1], degrees[1:]):
            layers.append(_MaskedLinear(current[:, None] >= previous[None, :]))  # hidden: m_l(k) >= m_{l-1}(j)
        outputs = torch.cat([degrees[0], degrees[0]])  # mu_d and r_d both have degree d
        layers.append(_MaskedLinear(outputs[:, None] > degrees[-1][None, :]))  # output: d > m_L(k), strictly
        self.layers = nn.ModuleList(layers)
        self.label_in = nn.Linear(num_classes, hidden[0], bias=False) if num_classes is not None else None
        self.class_logits = nn.Parameter(torch.zeros(num_classes)) if num_classes is not None else None

    def conditionals(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and standard deviation of every ``p(x_d | x_<d, c)``: x ``(n, D)``, labels
        ``(n,)`` -> ``((n, D), (n, D))``; column d depends on ``x[:, :d]`` only."""
        h = self.layers[0](x)
        if self.label_in is not None:
            h = h + self.label_in(self._one_hot(labels, h.dtype))
        for layer in self.layers[1:]:
            h = layer(torch.relu(h))
        mean, raw = h.chunk(2, dim=-1)
        return mean, self.min_scale + softplus(raw)

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample ``-log p(x, c)`` in nats: x ``(1, n, *sample_shape)``, labels ``(1, n)`` -> ``(1, n)``."""
        flat = x[0].reshape(x.shape[1], -1).to(self.layers[0].weight.dtype)
        labels = self._labels(labels, flat.shape[0])
        mean, scale = self.conditionals(flat, labels)
        nll = (0.5 * ((flat - mean) / scale).square() + scale.log() + 0.5 * _LOG_2PI).sum(-1)  # sum_d -log N(x_d; mu_d, sigma_d^2)
        if self.class_logits is not None:
            nll = nll - self.class_logits.log_softmax(-1)[labels]
        return nll[None]

    @torch.no_grad()
    def sample(self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(1, n, *sample_shape)``: c ~ p(c) unless ``labels (1, n)`` are given,
        then x_1, ..., x_D in turn; every draw from ``generator``."""
        return self.rsample(n, labels=labels, generator=generator)

    def rsample(self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Like :meth:`sample`, differentiable in every weight (the classes carry no gradient)."""
        labels = self._labels(labels, n)
        if labels is None and self.class_logits is not None:
            labels = multinomial(self.class_logits.detach().softmax(-1), n, generator=generator)
        weight = self.layers[0].weight
        dim = weight.shape[1]
        eps = randn((n, dim), generator=generator, dtype=weight.dtype, device=weight.device)
        position = torch.arange(dim, device=weight.device)
        x = torch.zeros(n, dim, dtype=weight.dtype, device=weight.device)
        for d in range(dim):  # x_d from x_<d, which are already drawn; no in-place writes (autograd, vmap)
            mean, scale = self.conditionals(x, labels)
            x = torch.where(position == d, mean + scale * eps, x)
        return x.reshape(1, n, *self.sample_shape)

    def _labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """``(1, n)`` -> ``(n,)``; ``None`` for an unconditional model."""
        if labels is not None and tuple(labels.shape) != (1, n):
            raise ValueError(f"labels must have shape (1, {n}), got {tuple(labels.shape)}")
        if self.num_classes is None or labels is None:
            return None
        return labels[0].long().to(self.layers[0].weight.device)

    def _one_hot(self, labels: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        if labels is None:
            raise ValueError(f"labels (1, n) are required: this model is conditional on {self.num_classes} classes")
        # A comparison, not F.one_hot: it runs under torch.func.vmap (the hypernetwork estimators).
        return (labels[:, None] == torch.arange(self.num_classes, device=labels.device)).to(dtype)


class _MaskedLinear(nn.Linear):
    """``y = x (W * M)^T + b``: a Linear layer whose weight is multiplied by the fixed 0/1 ``mask
    (out, in)`` (a buffer rebuilt by the constructor, not saved)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight * self.mask, self.bias)

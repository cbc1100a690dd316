"""A small normalizing flow with affine couplings (RealNVP; Dinh, Sohl-Dickstein & Bengio 2017,
"Density estimation using Real NVP"), written against genfair's model protocol.

Run it in the loop from the repository root::

    genfair model=custom model._target_=examples.flow.RealNVP +model.couplings=4 +model.hidden=64

The model, on D values per sample (the 8x8 digits flattened: D = 64; they are real numbers in
[0, 1], so no dequantisation is needed):
  - base       p(z) = N(0, I_D), a standard Gaussian;
  - flow       z = f(x) = f_K o ... o f_1 (x), an invertible map made of K affine couplings;
  - coupling   f_k keeps the values where its binary mask b_k is 1 and moves the others
               (Dinh et al., Eq. 9; s_k and t_k are one MLP with two outputs):
                   y = b * x + (1 - b) * (x * exp(s(b * x, c)) + t(b * x, c)),
               log |det df_k/dx| = sum_d (1 - b_d) * s_d(b * x, c)       (Eq. 6: the Jacobian is
               triangular, its diagonal is 1 on kept values and exp(s) on moved ones);
               inverse x = b * y + (1 - b) * (y - t(b * y, c)) * exp(-s(b * y, c))   (Eq. 8);
  - likelihood log p(x | c) = log N(f(x); 0, I) + sum_k log |det df_k/dx|   (change of
               variables, Eq. 3), exact; ``loss`` is -log p(x | c) - log p(c), per sample, in nats;
  - classes    (``num_classes`` set) the one-hot class c joins every coupling's MLP input, and
               the class shares p(c) = softmax(class_logits) are learned, so ``loss`` is the
               joint -log p(x, c), as genfair's VAE's.
The scale is bounded, s = scale_bound * tanh(raw / scale_bound), so that values that are
constant in the data (the digits' border pixels are always 0) cannot shrink to a point and send
the likelihood to infinity: every value is moved by about half the couplings, so log p(x) is
at most about K / 2 * scale_bound nats per value above the base's. Each coupling's last layer
starts at zero, so the untrained flow is the identity. Coupling k moves the values whose flat
index has bit k // 2 equal to 1 - k % 2 (the parity of the index, then its complement, then
pairs, ...), so consecutive couplings move complementary halves.

Shapes (one replicate): ``loss(x (1, n, *sample_shape), labels (1, n)) -> (1, n)``;
``sample(n, labels=(1, n)) -> (1, n, *sample_shape)``; ``rsample`` is ``sample``, differentiable
in every weight (samples are a smooth function of the base draws).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from genfair.devices import multinomial, randn
from genfair.models import GenerativeModel, ReparameterizedSampler

__all__ = ["RealNVP"]

_LOG_2PI = math.log(2 * math.pi)


class RealNVP(nn.Module, GenerativeModel, ReparameterizedSampler):
    """Affine-coupling flow with a standard Gaussian base (see the module docstring).

    Args:
        sample_shape: one sample's shape, e.g. ``(64,)`` or ``(1, 8, 8)``; flattened to D values.
        couplings: K, the number of affine couplings (>= 2, so that every value is moved).
        hidden: width of the two hidden layers of every coupling's MLP.
        num_classes: condition on this many classes (``None``: unconditional; labels are then
            accepted and ignored).
        scale_bound: the largest |s| of a coupling, in nats per value.

    Example:
        >>> flow = RealNVP(sample_shape=(64,), couplings=4, hidden=32)
        >>> flow.loss(torch.rand(1, 5, 64)).shape
        torch.Size([1, 5])
        >>> flow.sample(3, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([1, 3, 64])
    """

    def __init__(
        self,
        *,
        sample_shape: Sequence[int],
        couplings: int = 4,
        hidden: int = 64,
        num_classes: int | None = None,
        scale_bound: float = 2.0,
    ) -> None:
        super().__init__()
        if couplings < 2 or hidden < 1 or scale_bound <= 0 or (num_classes is not None and num_classes < 1):
            raise ValueError(
                f"need couplings >= 2, hidden >= 1, scale_bound > 0 and num_classes None or >= 1, got "
                f"couplings={couplings!r}, hidden={hidden!r}, scale_bound={scale_bound!r}, num_classes={num_classes!r}"
            )
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.num_classes = num_classes
        self.scale_bound = float(scale_bound)
        dim = math.prod(self.sample_shape)
        if dim < 2:
            raise ValueError(f"sample_shape must hold at least 2 values to couple, got {self.sample_shape}")
        bits = (dim - 1).bit_length()  # every bit below this one is 0 for some index and 1 for another
        index = torch.arange(dim)
        masks = [((index >> ((k // 2) % bits)) & 1) == (k % 2) for k in range(couplings)]  # True: kept
        self.register_buffer("masks", torch.stack(masks).float(), persistent=False)  # (K, D), rebuilt, not saved
        self.nets = nn.ModuleList(_coupling_net(dim, num_classes or 0, hidden) for _ in range(couplings))
        self.class_logits = nn.Parameter(torch.zeros(num_classes)) if num_classes is not None else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``z = f(x)`` and ``log |det df/dx|``: x ``(n, D)`` -> ``((n, D), (n,))``."""
        context = self._one_hot(labels)
        log_det = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for mask, net in zip(self.masks, self.nets):
            s, t = self._scale_shift(net, mask, x, context)
            x = mask * x + (1 - mask) * (x * s.exp() + t)  # Eq. 9
            log_det = log_det + ((1 - mask) * s).sum(-1)  # Eq. 6
        return x, log_det

    def inverse(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``x = f^-1(z)``: z ``(n, D)`` -> ``(n, D)``, the couplings undone last to first (Eq. 8)."""
        context = self._one_hot(labels)
        for mask, net in zip(reversed(self.masks), reversed(self.nets)):
            s, t = self._scale_shift(net, mask, z, context)
            z = mask * z + (1 - mask) * (z - t) * (-s).exp()
        return z

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample ``-log p(x, c)`` in nats: x ``(1, n, *sample_shape)``, labels ``(1, n)`` -> ``(1, n)``."""
        flat = x[0].reshape(x.shape[1], -1).to(self.masks.dtype)
        labels = self._labels(labels, flat.shape[0])
        z, log_det = self(flat, labels)
        log_p = -0.5 * (z.square() + _LOG_2PI).sum(-1) + log_det  # Eq. 3
        if self.class_logits is not None:
            log_p = log_p + self.class_logits.log_softmax(-1)[labels]
        return -log_p[None]

    @torch.no_grad()
    def sample(self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(1, n, *sample_shape)``: c ~ p(c) unless ``labels (1, n)`` are given,
        z ~ N(0, I), x = f^-1(z); every draw from ``generator``."""
        return self.rsample(n, labels=labels, generator=generator)

    def rsample(self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Like :meth:`sample`, differentiable in every weight (the classes carry no gradient)."""
        labels = self._labels(labels, n)
        if labels is None and self.class_logits is not None:
            labels = multinomial(self.class_logits.detach().softmax(-1), n, generator=generator)
        z = randn((n, self.masks.shape[1]), generator=generator, dtype=self.masks.dtype, device=self.masks.device)
        return self.inverse(z, labels).reshape(1, n, *self.sample_shape)

    def _scale_shift(
        self, net: nn.Module, mask: torch.Tensor, x: torch.Tensor, context: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A coupling's bounded log-scale s and shift t, ``(n, D)`` each, from the kept values."""
        inputs = mask * x if context is None else torch.cat([mask * x, context], dim=-1)
        raw, t = net(inputs).chunk(2, dim=-1)
        return self.scale_bound * torch.tanh(raw / self.scale_bound), t

    def _labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """``(1, n)`` -> ``(n,)``; ``None`` for an unconditional flow."""
        if labels is not None and tuple(labels.shape) != (1, n):
            raise ValueError(f"labels must have shape (1, {n}), got {tuple(labels.shape)}")
        if self.num_classes is None or labels is None:
            return None
        return labels[0].long().to(self.masks.device)

    def _one_hot(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        if self.num_classes is None:
            return None
        if labels is None:
            raise ValueError(f"labels (1, n) are required: this flow is conditional on {self.num_classes} classes")
        # A comparison, not F.one_hot: it runs under torch.func.vmap (the hypernetwork estimators).
        return (labels[:, None] == torch.arange(self.num_classes, device=labels.device)).to(self.masks.dtype)


def _coupling_net(dim: int, classes: int, hidden: int) -> nn.Sequential:
    """The MLP ``(n, D + classes) -> (n, 2 D)`` of one coupling (raw scale, shift); its last layer
    starts at zero, so the coupling starts as the identity."""
    net = nn.Sequential(
        nn.Linear(dim + classes, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2 * dim)
    )
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net

"""A variational autoencoder (Kingma & Welling 2014) that follows genfair's model protocol.

The model of a single training set (replicates R = 1):
  - prior        p(z) = N(0, I_latent);
  - decoder      p(x | z, y) = N(x; mu(z, y), diag(sigma^2)), a Gaussian with a learned
                 per-value scale ``sigma = min_scale + softplus(raw_scale)``;
  - encoder      q(z | x, y) = N(z; m(x, y), diag(exp(log_var(x, y))));
  - class shares p(y) = softmax(class_logits), learned (class-conditional models only).
``loss`` is the per-sample negative ELBO of the joint (in nats; Kingma & Welling, Eq. 3):
    -log p(x, y) <= E_q[-log p(x | z, y)] + KL(q(z | x, y) || p(z)) - log p(y),
the expectation estimated with one reparameterised draw of z, the KL term in closed form.

Why Gaussian and not Bernoulli: the loss is then a bound on the log density of real-valued
data, in nats, comparable across models and with genfair's analytic models; and samples
``mu + sigma * eps`` are reparameterised, so ``rsample`` is differentiable in every weight
(a Bernoulli draw is not). Digits scaled to [0, 1] work as they are; samples are not clipped.
The floor ``min_scale`` keeps the likelihood bounded on pixels that are constant in the data
(the digits' border), where a free scale would shrink to 0 and the loss diverge.

Architecture: the encoder maps ``(n, features [+ classes])`` to ``(n, 2 * latent)`` and the
decoder ``(n, latent [+ classes])`` to ``(n, prod(sample_shape))``, so loss and sampling are the
same for every architecture (see :func:`_build_networks`):
  - ``"mlp"``: samples flattened; hidden layers Linear, [BatchNorm1d,] ReLU; the decoder mirrors
    the encoder's widths.
  - ``"conv"``: images ``(C, H, W)``; the encoder is one Conv2d(kernel 4, stride 2, padding 1),
    [BatchNorm2d,] ReLU per entry of ``hidden`` (its channels; each halves H and W), then a
    Linear to ``2 * latent``; the decoder a Linear from ``latent [+ classes]`` to the smallest
    feature map, [BatchNorm2d,] ReLU, then ConvTranspose2d layers (each doubling H and W) through
    the channels of ``hidden`` in reverse to C, its output flattened. Class-conditional: the
    one-hot label enters the encoder as ``classes`` extra constant input channels (one per class,
    all ones in the label's channel) and the decoder joined to z, as in the MLP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn.functional import softplus

from genfair.devices import multinomial, randn
from genfair.errors import ConfigError, check_choice, check_positive_int
from genfair.models._deep_config import ARCHITECTURES
from genfair.models._labels import check_class_labels
from genfair.models._protocols import GenerativeModel, ReparameterizedSampler

__all__ = ["VAE"]

Architecture = Literal["mlp", "conv"]
_LOG_2PI = math.log(2 * math.pi)


class VAE(nn.Module, GenerativeModel, ReparameterizedSampler):
    """A VAE with a Gaussian decoder; optionally class-conditional (see the module docstring).

    Args:
        sample_shape: shape of one sample, e.g. ``(64,)`` for 8x8 digits or ``(1, 8, 8)``;
            ``(channels, height, width)`` for ``"conv"``, height and width divisible by
            ``2 ** len(hidden)``.
        hidden: widths (``"mlp"``) or channels (``"conv"``) of the encoder's hidden layers; the
            decoder takes them in reverse.
        latent_dim: dimension of z.
        batch_norm: a BatchNorm1d after every hidden Linear (as in the MNIST VAE of Mayer et al.);
            for ``"conv"``, a BatchNorm2d after every hidden (transposed) convolution.
        num_classes: if set, the one-hot label is joined to the encoder's input and to the
            decoder's latent, and the class shares are learned; ``None``: unconditional (labels
            are accepted and ignored, like a one-class model).
        architecture: ``"mlp"`` or ``"conv"`` (see the module docstring).
        min_scale: floor of the decoder's standard deviation, in data units.

    Shapes (R = 1): ``loss(x (1, n, *sample_shape), labels (1, n)) -> (1, n)``;
    ``sample(n) -> (1, n, *sample_shape)``.

    Example:
        >>> vae = VAE(sample_shape=(64,), hidden=(128, 128), latent_dim=8)
        >>> vae.loss(torch.rand(1, 32, 64)).shape
        torch.Size([1, 32])
        >>> vae.sample(5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([1, 5, 64])
        >>> conv = VAE(sample_shape=(1, 8, 8), hidden=(16, 32), latent_dim=8, architecture="conv")
        >>> conv.sample(5).shape
        torch.Size([1, 5, 1, 8, 8])
    """

    def __init__(
        self,
        *,
        sample_shape: Sequence[int],
        hidden: tuple[int, ...] = (256, 256),
        latent_dim: int = 16,
        batch_norm: bool = False,
        num_classes: int | None = None,
        architecture: Architecture = "mlp",
        min_scale: float = 0.01,
    ) -> None:
        super().__init__()
        self.sample_shape = _check_shape("sample_shape", sample_shape)
        self.hidden = _check_shape("hidden", hidden)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        if not isinstance(batch_norm, bool):
            raise ConfigError(f"batch_norm must be True or False, got {batch_norm!r}")
        self.batch_norm = batch_norm
        self.num_classes = None if num_classes is None else check_positive_int("num_classes", num_classes)
        self.architecture = check_choice("architecture", architecture, ARCHITECTURES)
        ok = isinstance(min_scale, (int, float)) and not isinstance(min_scale, bool) and min_scale > 0
        if not ok:
            raise ConfigError(f"min_scale must be a number > 0, got {min_scale!r}")
        self.min_scale = float(min_scale)
        if architecture == "conv":
            _check_conv_shape(self.sample_shape, self.hidden)
        features = math.prod(self.sample_shape)
        self.encoder, self.decoder = _build_networks(
            architecture, self.sample_shape, self.hidden, latent_dim, batch_norm, self.num_classes or 0
        )
        self.raw_scale = nn.Parameter(torch.full((features,), _softplus_inverse(1.0)))  # sigma starts at 1 + min_scale
        self.class_logits = nn.Parameter(torch.zeros(self.num_classes)) if self.num_classes is not None else None

    @property
    def replicates(self) -> int:
        return 1

    def loss(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Per-sample negative ELBO in nats, ``x (1, n, *sample_shape)`` -> ``(1, n)``;
        ``generator`` draws the one z per sample."""
        flat = self._flatten(x)
        labels = self._check_labels(labels, flat.shape[0], required=True)
        stats = self.encoder(self._join(flat, labels))
        mean, log_var = stats.chunk(2, dim=-1)
        eps = randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        z = mean + (0.5 * log_var).exp() * eps
        scale = self.scale()
        residual = (flat - self.decoder(self._join(z, labels))) / scale
        nll = 0.5 * (residual.square() + _LOG_2PI).sum(-1) + scale.log().sum()  # -log N(x; mu, sigma^2)
        kl = 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(-1)  # KL(N(m, v) || N(0, I))
        if self.class_logits is not None:
            nll = nll - self.class_logits.log_softmax(-1)[labels]
        return (nll + kl)[None]

    @torch.no_grad()
    def sample(
        self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` samples ``(1, n, *sample_shape)``: y ~ p(y) unless ``labels (1, n)`` are given,
        z ~ N(0, I), x ~ N(mu(z, y), sigma^2). In training mode BatchNorm uses the statistics of
        the decoded batch (and updates its running ones); call ``eval()`` to use the running ones."""
        return self._draw(n, labels, generator)

    def rsample(
        self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Like :meth:`sample`, differentiable in the decoder's weights and scale (the classes are
        discrete draws and carry no gradient)."""
        return self._draw(n, labels, generator)

    def scale(self) -> torch.Tensor:
        """The decoder's standard deviation per value, ``(prod(sample_shape),)``."""
        return self.min_scale + softplus(self.raw_scale)

    def _draw(self, n: int, labels: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
        n = check_positive_int("n", n)
        labels = self._check_labels(labels, n, required=False)
        if labels is None and self.class_logits is not None:
            labels = multinomial(self.class_logits.detach().softmax(-1), n, generator=generator)
        like = self.raw_scale
        z = randn((n, self.latent_dim), generator=generator, dtype=like.dtype, device=like.device)
        eps = randn((n, like.shape[0]), generator=generator, dtype=like.dtype, device=like.device)
        x = self.decoder(self._join(z, labels)) + self.scale() * eps
        return x.reshape(1, n, *self.sample_shape)

    def _flatten(self, x: torch.Tensor) -> torch.Tensor:
        """``(1, n, *sample_shape)`` -> ``(n, prod(sample_shape))``."""
        if x.dim() != 2 + len(self.sample_shape) or x.shape[0] != 1 or tuple(x.shape[2:]) != self.sample_shape:
            raise ConfigError(
                f"x must have shape (1, n, {', '.join(map(str, self.sample_shape))}) (one replicate, n samples), "
                f"got {tuple(x.shape)}"
            )
        return x[0].reshape(x.shape[1], -1).to(self.raw_scale.dtype)

    def _check_labels(self, labels: torch.Tensor | None, n: int, *, required: bool) -> torch.Tensor | None:
        return check_class_labels(
            labels, n, num_classes=self.num_classes, required=required, model="VAE", device=self.raw_scale.device
        )

    def _join(self, features: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Append the one-hot label to each row (conditional models)."""
        if self.num_classes is None:
            return features
        one_hot = labels[:, None] == torch.arange(self.num_classes, device=labels.device)  # vmap-safe, unlike F.one_hot
        return torch.cat([features, one_hot.to(features.dtype)], dim=-1)


def _build_networks(
    architecture: Architecture,
    sample_shape: tuple[int, ...],
    hidden: tuple[int, ...],
    latent_dim: int,
    batch_norm: bool,
    classes: int,
) -> tuple[nn.Module, nn.Module]:
    """Encoder ``(n, features + classes) -> (n, 2 * latent_dim)`` and decoder
    ``(n, latent_dim + classes) -> (n, features)`` for the chosen architecture,
    ``features = prod(sample_shape)``."""
    features = math.prod(sample_shape)
    if architecture == "mlp":
        encoder = _mlp([features + classes, *hidden, 2 * latent_dim], batch_norm)
        decoder = _mlp([latent_dim + classes, *reversed(hidden), features], batch_norm)
        return encoder, decoder
    if architecture == "conv":
        encoder = _ConvEncoder(sample_shape, hidden, 2 * latent_dim, batch_norm, classes)
        decoder = _ConvDecoder(sample_shape, hidden, latent_dim + classes, batch_norm)
        return encoder, decoder
    raise ConfigError(f"architecture must be one of {list(ARCHITECTURES)}, got {architecture!r}")


class _ConvEncoder(nn.Module):
    """``(n, C*H*W + classes)`` -> ``(n, outputs)``: the image, the one-hot label as constant
    channels, stride-2 convolutions (each halves H and W), a Linear."""

    def __init__(
        self, sample_shape: tuple[int, ...], hidden: tuple[int, ...], outputs: int, batch_norm: bool, classes: int
    ) -> None:
        super().__init__()
        self.sample_shape, self.classes = sample_shape, classes
        channels, height, width = sample_shape
        layers: list[nn.Module] = []
        for a, b in zip([channels + classes, *hidden[:-1]], hidden):
            layers.append(nn.Conv2d(a, b, kernel_size=4, stride=2, padding=1))
            layers.extend([nn.BatchNorm2d(b), nn.ReLU()] if batch_norm else [nn.ReLU()])
        self.convs = nn.Sequential(*layers)
        scale = 2 ** len(hidden)
        self.out = nn.Linear(hidden[-1] * (height // scale) * (width // scale), outputs)

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        n = flat.shape[0]
        images = flat[:, : flat.shape[1] - self.classes].reshape(n, *self.sample_shape)
        if self.classes:
            label = flat[:, flat.shape[1] - self.classes :, None, None]  # (n, classes, 1, 1), one-hot
            images = torch.cat([images, label.expand(-1, -1, *self.sample_shape[1:])], dim=1)
        return self.out(self.convs(images).flatten(1))


class _ConvDecoder(nn.Module):
    """``(n, inputs)`` -> ``(n, C*H*W)``: a Linear to the smallest feature map, then stride-2
    transposed convolutions (each doubles H and W) through ``hidden`` in reverse to C channels."""

    def __init__(self, sample_shape: tuple[int, ...], hidden: tuple[int, ...], inputs: int, batch_norm: bool) -> None:
        super().__init__()
        channels, height, width = sample_shape
        scale = 2 ** len(hidden)
        self.start = (hidden[-1], height // scale, width // scale)
        self.project = nn.Linear(inputs, math.prod(self.start))
        first: list[nn.Module] = [nn.BatchNorm2d(hidden[-1]), nn.ReLU()] if batch_norm else [nn.ReLU()]
        layers: list[nn.Module] = list(first)
        widths = [*reversed(hidden), channels]
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.ConvTranspose2d(a, b, kernel_size=4, stride=2, padding=1))
            if i < len(widths) - 2:
                layers.extend([nn.BatchNorm2d(b), nn.ReLU()] if batch_norm else [nn.ReLU()])
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        maps = self.project(z).reshape(z.shape[0], *self.start)
        return self.deconvs(maps).flatten(1)


def _check_conv_shape(sample_shape: tuple[int, ...], hidden: tuple[int, ...]) -> None:
    if len(sample_shape) != 3:
        raise ConfigError(
            f"sample_shape must be (channels, height, width) for architecture='conv', got {sample_shape!r}"
        )
    factor = 2 ** len(hidden)
    if sample_shape[1] % factor or sample_shape[2] % factor:
        raise ConfigError(
            f"sample_shape height and width must be divisible by 2 ** len(hidden) = {factor} for "
            f"architecture='conv' (each of the {len(hidden)} hidden layers halves them), got {sample_shape!r}"
        )


def _mlp(widths: list[int], batch_norm: bool) -> nn.Sequential:
    """Linear layers of the given widths; every hidden one followed by [BatchNorm1d,] ReLU."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.extend([nn.BatchNorm1d(b), nn.ReLU()] if batch_norm else [nn.ReLU()])
    return nn.Sequential(*layers)


def _check_shape(name: str, value: Sequence[int]) -> tuple[int, ...]:
    ok = isinstance(value, (tuple, list)) and len(value) > 0
    ok = ok and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in value)
    if not ok:
        raise ConfigError(f"{name} must be a non-empty tuple of positive integers, got {value!r}")
    return tuple(value)


def _softplus_inverse(y: float) -> float:
    return y + math.log(-math.expm1(-y))

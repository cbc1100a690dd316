"""A generative adversarial network (Goodfellow et al. 2014, "Generative Adversarial Nets") with
the non-saturating generator loss, written against genfair's model protocol for models without a
likelihood (:class:`genfair.models.AdversarialTraining`).

Run it in the loop from the repository root (unconditional: the loop labels its samples with
the evaluation classifier; a GAN trains by ``estimator=mle`` only, so one arm)::

    genfair model=custom model._target_=examples.gan.GAN model.conditional=false loop.synthetic_labels=counts 'arms={mle:{estimator.name:mle}}' compare.baseline=null

The model, on D values per sample (the 8x8 digits flattened: D = 64, in [0, 1]):
  - generator      G: z ~ N(0, I_latent) -> x = sigmoid(MLP(z)), a sample in [0, 1]^D;
  - discriminator  D: x -> logit(P(x is real)), an MLP with LeakyReLU(0.2);
  - losses         on a batch of n real samples and n draws z (Goodfellow et al., Eq. 1 and the
                   non-saturating generator loss of their Sec. 3), with softplus(u) = log(1 + e^u):
                       discriminator:  mean -log sigma(D(x)) - log(1 - sigma(D(G(z))))
                                       = mean softplus(-D(x)) + softplus(D(G(z)))
                       generator:      mean -log sigma(D(G(z))) = mean softplus(-D(G(z)))
                   ``adversarial_losses`` returns them keyed by the submodule each trains
                   (``"generator"``, ``"discriminator"``); genfair's fit takes each loss's
                   gradient with respect to that submodule's weights only and steps both at once.
There is no likelihood, hence no ``loss``: the hypernetwork estimators and the remedies, which
need per-sample likelihoods, refuse this model.

Shapes (one replicate): ``adversarial_losses(x (1, n, *sample_shape)) -> {name: scalar}``;
``sample(n) -> (1, n, *sample_shape)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.functional import softplus

from genfair.devices import randn
from genfair.models import AdversarialTraining

__all__ = ["GAN"]


class GAN(nn.Module, AdversarialTraining):
    """An unconditional GAN of two MLPs (see the module docstring); ``num_classes`` is ``None``.

    Args:
        sample_shape: one sample's shape, e.g. ``(64,)`` or ``(1, 8, 8)``; flattened to D values.
        latent_dim: dimension of z.
        hidden: width of the two hidden layers of each network.

    Example:
        >>> gan = GAN(sample_shape=(64,), latent_dim=8, hidden=32)
        >>> sorted(gan.adversarial_losses(torch.rand(1, 5, 64), generator=torch.Generator().manual_seed(0)))
        ['discriminator', 'generator']
        >>> gan.sample(3).shape
        torch.Size([1, 3, 64])
    """

    num_classes = None  # unconditional: the loop labels the samples with its classifier

    def __init__(self, *, sample_shape: Sequence[int], latent_dim: int = 16, hidden: int = 128) -> None:
        super().__init__()
        if latent_dim < 1 or hidden < 1:
            raise ValueError(f"latent_dim and hidden must be >= 1, got latent_dim={latent_dim!r}, hidden={hidden!r}")
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.latent_dim = int(latent_dim)
        dim = math.prod(self.sample_shape)
        self.generator = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim), nn.Sigmoid()
        )
        self.discriminator = nn.Sequential(
            nn.Linear(dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1)
        )

    def adversarial_losses(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Each player's scalar loss on the real batch ``x (1, n, *sample_shape)`` and n fresh
        draws of z from ``generator`` (labels are ignored: the model is unconditional)."""
        weight = self.discriminator[0].weight
        real = x[0].reshape(x.shape[1], -1).to(weight.dtype)
        fake = self._generate(real.shape[0], generator)
        return {
            # The generator's samples enter the discriminator's loss as data (detached): its
            # gradient would be dropped by the fit anyway, detaching skips computing it.
            "discriminator": (softplus(-self.discriminator(real)) + softplus(self.discriminator(fake.detach()))).mean(),
            "generator": softplus(-self.discriminator(fake)).mean(),
        }

    @torch.no_grad()
    def sample(self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(1, n, *sample_shape)``, x = G(z) with z from ``generator``
        (``labels (1, n)`` are ignored: the model is unconditional)."""
        return self._generate(n, generator).reshape(1, n, *self.sample_shape)

    def _generate(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """G(z) for n draws z ~ N(0, I): ``(n, D)``."""
        weight = self.generator[0].weight
        z = randn((n, self.latent_dim), generator=generator, dtype=weight.dtype, device=weight.device)
        return self.generator(z)

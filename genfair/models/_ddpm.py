"""A denoising diffusion model (Ho et al. 2020) on diffusers' ``UNet2DModel``, following genfair's
model protocol.

The model of a single training set (replicates R = 1), pixels ``x`` in [0, 1] mapped to
``x0 = 2 x - 1`` in [-1, 1]:
  - forward process  q(x_t | x0) = N(sqrt(abar_t) x0, (1 - abar_t) I), t = 0 .. T-1
    (Ho et al., Eq. 4; ``abar_t`` from the ``beta_schedule`` of diffusers' ``DDPMScheduler``);
  - noise predictor  eps_theta(x_t, t, y), a small ``UNet2DModel`` of plain ResNet blocks
    (``DownBlock2D`` / ``UpBlock2D``; diffusers' default mid block with one attention layer);
    class-conditional through its ``num_class_embeds`` embedding when ``num_classes`` is set;
  - class shares     p(y) = softmax(class_logits), learned (class-conditional models only).

``loss`` is the per-sample denoising loss L_simple (Ho et al., Eq. 14), with one draw of
t ~ Uniform{0, .., T-1} and eps ~ N(0, I) per sample:
    ||eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t, y)||^2  - log p(y),
the squared error *summed* over the C * H * W pixels (the norm of Eq. 14, not a mean). It is
the variational bound -log p(x0) <= sum_t L_t up to per-t weights and constants (Eq. 12): a
denoising loss, not a log-likelihood in nats, so it is not comparable with the VAE's.

``sample`` runs ``sample_steps`` reverse steps from x_T ~ N(0, I) with diffusers' ``DDIMScheduler``
(``"ddim"``, eta = 0: deterministic given x_T; Song et al. 2021) or ``DDPMScheduler``
(``"ddpm"``, ancestral; Ho et al., Algorithm 2), both with "trailing" timesteps so that the first
step is at t = T-1, where x_T is pure noise (Lin et al. 2024, Table 2). For ``"ddim"`` let
``sample_steps`` divide T (20 or 50 of 1000): diffusers' DDIM step jumps T // sample_steps noise
levels, which otherwise lands up to one level off the next timestep. The schedulers clip their
predicted x0 to [-1, 1]; samples are returned in data units, clamped to [0, 1].
A fresh scheduler is built on every call, so no scheduler state is shared between calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from genfair.devices import multinomial, randint, randn
from genfair.errors import ConfigError, check_choice, check_positive_int
from genfair.models._deep_config import BETA_SCHEDULES, SAMPLERS
from genfair.models._labels import check_class_labels
from genfair.models._protocols import GenerativeModel, SteppedSampler
from genfair.models._vae import _check_shape  # a non-empty tuple (or list, as OmegaConf gives) of sizes

if TYPE_CHECKING:
    from diffusers import DDIMScheduler, DDPMScheduler

__all__ = ["DDPM"]

Sampler = Literal["ddpm", "ddim"]
BetaSchedule = Literal["linear", "scaled_linear", "squaredcos_cap_v2"]


class DDPM(nn.Module, GenerativeModel, SteppedSampler):
    """A DDPM with an epsilon-predicting UNet; optionally class-conditional (see the module docstring).

    Args:
        sample_shape: ``(channels, height, width)`` of one image, e.g. ``(1, 8, 8)`` for digits;
            height and width divisible by ``2 ** (len(block_out_channels) - 1)``.
        block_out_channels: channels of the UNet's levels (one down/up block each), every one
            divisible by ``norm_num_groups``.
        layers_per_block: ResNet layers per down block (up blocks get one more, as in diffusers).
        norm_num_groups: groups of the UNet's GroupNorm layers.
        num_classes: if set, the UNet embeds the label (``num_class_embeds``) and the class shares
            are learned; ``None``: unconditional (labels are accepted and ignored).
        num_train_timesteps: T, the number of noise levels.
        beta_schedule: diffusers' schedule of the betas: ``"linear"`` (Ho et al., 1e-4 to 0.02),
            ``"scaled_linear"`` or ``"squaredcos_cap_v2"`` (the cosine schedule of Nichol & Dhariwal).
        sampler: ``"ddim"`` (deterministic given the starting noise) or ``"ddpm"`` (ancestral).
        sample_steps: reverse steps per ``sample`` call, at most ``num_train_timesteps``
            (``max_sample_steps``); a call may ask for another number (``steps``, the
            :class:`SteppedSampler` ability PLE's ``sample_steps`` uses).

    Shapes (R = 1): ``loss(x (1, n, C, H, W), labels (1, n)) -> (1, n)``;
    ``sample(n) -> (1, n, C, H, W)`` in [0, 1].

    Example:
        >>> ddpm = DDPM(sample_shape=(1, 8, 8), block_out_channels=(8, 16), norm_num_groups=4, sample_steps=5)
        >>> ddpm.loss(torch.rand(1, 32, 1, 8, 8)).shape
        torch.Size([1, 32])
        >>> ddpm.sample(5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([1, 5, 1, 8, 8])
    """

    def __init__(
        self,
        *,
        sample_shape: Sequence[int],
        block_out_channels: Sequence[int] = (32, 64),
        layers_per_block: int = 1,
        norm_num_groups: int = 8,
        num_classes: int | None = None,
        num_train_timesteps: int = 1000,
        beta_schedule: BetaSchedule = "linear",
        sampler: Sampler = "ddim",
        sample_steps: int = 50,
    ) -> None:
        super().__init__()
        self.sample_shape = _check_shape("sample_shape", sample_shape)
        self.block_out_channels = _check_shape("block_out_channels", block_out_channels)
        self.layers_per_block = check_positive_int("layers_per_block", layers_per_block)
        self.norm_num_groups = check_positive_int("norm_num_groups", norm_num_groups)
        self.num_classes = None if num_classes is None else check_positive_int("num_classes", num_classes)
        self.num_train_timesteps = check_positive_int("num_train_timesteps", num_train_timesteps, minimum=2)
        self.beta_schedule = check_choice("beta_schedule", beta_schedule, BETA_SCHEDULES)
        self.sampler = check_choice("sampler", sampler, SAMPLERS)
        self.sample_steps = self._check_steps("sample_steps", sample_steps)
        _check_unet_shapes(self.sample_shape, self.block_out_channels, self.norm_num_groups)
        # imported here, not at the top: diffusers takes seconds to import, genfair.models is
        # imported by every run, and most runs use no diffusion model
        from diffusers import UNet2DModel

        channels, height, width = self.sample_shape
        levels = len(self.block_out_channels)
        self.unet = UNet2DModel(
            sample_size=(height, width),
            in_channels=channels,
            out_channels=channels,
            block_out_channels=self.block_out_channels,
            layers_per_block=self.layers_per_block,
            norm_num_groups=self.norm_num_groups,
            down_block_types=("DownBlock2D",) * levels,
            up_block_types=("UpBlock2D",) * levels,
            num_class_embeds=self.num_classes,
        )
        self.class_logits = nn.Parameter(torch.zeros(self.num_classes)) if self.num_classes is not None else None
        # abar_t of the forward process (Ho et al., Eq. 4); derived from the config, so not saved
        abar = self._scheduler("ddpm").alphas_cumprod
        self.register_buffer("alphas_cumprod", abar.clone(), persistent=False)

    @property
    def replicates(self) -> int:
        return 1

    def loss(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Per-sample L_simple ``(1, n)`` (squared error summed over pixels) ``- log p(y)`` for
        ``x (1, n, C, H, W)`` in [0, 1]; ``generator`` draws each sample's t and eps."""
        x0 = 2.0 * self._images(x) - 1.0  # [0, 1] -> [-1, 1]
        n = x0.shape[0]
        labels = self._check_labels(labels, n, required=True)
        t = randint(self.num_train_timesteps, (n,), generator=generator, device=x0.device)
        eps = randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        abar = self.alphas_cumprod.to(x0.dtype)[t].reshape(n, 1, 1, 1)
        noisy = abar.sqrt() * x0 + (1.0 - abar).sqrt() * eps  # x_t ~ q(x_t | x0), Eq. 4
        predicted = self.unet(noisy, t, class_labels=labels).sample
        loss = (predicted - eps).square().flatten(1).sum(-1)  # ||eps - eps_theta||^2, Eq. 14
        if self.class_logits is not None:
            loss = loss - self.class_logits.log_softmax(-1)[labels]
        return loss[None]

    @property
    def max_sample_steps(self) -> int:
        """The most reverse steps ``sample`` takes: one per noise level, T."""
        return self.num_train_timesteps

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        steps: int | None = None,
    ) -> torch.Tensor:
        """``n`` images ``(1, n, C, H, W)`` in [0, 1] (clamped): y ~ p(y) unless ``labels (1, n)``
        are given, then ``steps`` (default ``sample_steps``) reverse steps from x_T ~ N(0, I).
        Every random draw (classes, x_T, the ancestral sampler's noise) comes from ``generator``."""
        n = check_positive_int("n", n)
        steps = self.sample_steps if steps is None else self._check_steps("steps", steps)
        labels = self._check_labels(labels, n, required=False)
        if labels is None and self.class_logits is not None:
            labels = multinomial(self.class_logits.detach().softmax(-1), n, generator=generator)
        like = self.unet.conv_in.weight
        scheduler = self._scheduler(self.sampler)
        scheduler.set_timesteps(steps, device=like.device)
        x = randn((n, *self.sample_shape), generator=generator, dtype=like.dtype, device=like.device)
        for t in scheduler.timesteps:
            predicted = self.unet(x, t.expand(n), class_labels=labels).sample
            x = scheduler.step(predicted, t, x, generator=generator).prev_sample
        return ((x + 1.0) / 2.0).clamp(0.0, 1.0)[None]

    def _scheduler(self, sampler: Sampler) -> DDPMScheduler | DDIMScheduler:
        """A fresh diffusers scheduler of the ``sampler``'s kind for this model's noise schedule."""
        from diffusers import DDIMScheduler, DDPMScheduler

        if sampler == "ddim":
            kind = DDIMScheduler
        elif sampler == "ddpm":
            kind = DDPMScheduler
        else:
            raise ConfigError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
        return kind(
            num_train_timesteps=self.num_train_timesteps,
            beta_schedule=self.beta_schedule,
            timestep_spacing="trailing",
        )

    def _check_steps(self, name: str, steps: int) -> int:
        """``steps`` if it is a number of reverse steps the schedulers take: 1 to T."""
        check_positive_int(name, steps)
        if steps > self.num_train_timesteps:
            raise ConfigError(f"{name} must be at most num_train_timesteps={self.num_train_timesteps}, got {steps}")
        return steps

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        """``(1, n, C, H, W)`` -> ``(n, C, H, W)`` in the UNet's dtype."""
        if x.dim() != 5 or x.shape[0] != 1 or tuple(x.shape[2:]) != self.sample_shape:
            raise ConfigError(
                f"x must have shape (1, n, {', '.join(map(str, self.sample_shape))}) (one replicate, n samples), "
                f"got {tuple(x.shape)}"
            )
        return x[0].to(self.unet.conv_in.weight.dtype)

    def _check_labels(self, labels: torch.Tensor | None, n: int, *, required: bool) -> torch.Tensor | None:
        return check_class_labels(
            labels, n, num_classes=self.num_classes, required=required, model="DDPM", device=self.unet.conv_in.weight.device
        )


def _check_unet_shapes(sample_shape: tuple[int, ...], channels: tuple[int, ...], groups: int) -> None:
    """What ``UNet2DModel`` needs: (C, H, W) images, H and W halved ``levels - 1`` times, GroupNorm."""
    if len(sample_shape) != 3:
        raise ConfigError(f"sample_shape must be (channels, height, width), got {sample_shape!r}")
    bad = [c for c in channels if c % groups]
    if bad:
        raise ConfigError(
            f"block_out_channels must all be divisible by norm_num_groups={groups}, "
            f"got {list(channels)} ({bad} are not)"
        )
    factor = 2 ** (len(channels) - 1)
    if sample_shape[1] % factor or sample_shape[2] % factor:
        raise ConfigError(
            f"sample_shape height and width must be divisible by 2 ** (len(block_out_channels) - 1) = {factor} "
            f"(each of the {len(channels)} levels but the last halves them), got {sample_shape!r}"
        )

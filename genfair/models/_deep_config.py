"""How ``model=vae`` and ``model=ddpm`` are configured and built: their config dataclasses, which
``configs/model/vae.yaml`` and ``ddpm.yaml`` register (``genfair.models.registered_models``), and
:func:`build_model`, which builds the model of any config that builds its own (:class:`DeepModelConfig`).

The configs are plain dataclasses (usable as Hydra structured-config schemas: only str, int,
float, bool and lists of them); values are checked in ``__post_init__``, and what depends on
the data (the sample shape, the number of classes) is given to :func:`build_model`.
OmegaConf hands lists where the models take tuples: both are accepted.

torch is imported inside the functions that use it: the command line checks a config
without importing torch (docs/architecture.md, section 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from genfair.errors import ConfigError, check_choice, check_positive_int
from genfair.models._custom import CustomModelConfig
from genfair.models._registry import registered_model_configs, registered_target

if TYPE_CHECKING:
    from torch import nn

    from genfair.models._ddpm import DDPM
    from genfair.models._vae import VAE

__all__ = [
    "ARCHITECTURES", "BETA_SCHEDULES", "SAMPLERS", "DDPMConfig", "DeepModelConfig", "VAEConfig", "build_model", "deep_configs",
]

# The models' options, here so that a config is checked without importing torch or diffusers.
ARCHITECTURES: tuple[str, ...] = ("mlp", "conv")  # VAE
SAMPLERS: tuple[str, ...] = ("ddpm", "ddim")  # DDPM
BETA_SCHEDULES: tuple[str, ...] = ("linear", "scaled_linear", "squaredcos_cap_v2")  # DDPM: those both schedulers know


@dataclass
class VAEConfig:
    """A variational autoencoder with a Gaussian decoder (:class:`~genfair.models.VAE`).

    Args:
        name: ``"vae"``.
        _target_: this class, ``package.module.Name``, as ``configs/model/vae.yaml`` registers it
            (``None`` is filled in with it). A model of your own runs with ``model=custom``.
        architecture: ``"mlp"`` or ``"conv"`` (images ``(C, H, W)``, H and W divisible by
            ``2 ** len(hidden)``).
        hidden: widths (mlp) or channels (conv) of the encoder's hidden layers.
        latent_dim: dimension of z.
        batch_norm: BatchNorm after every hidden layer.
        conditional: condition on the class label and learn the class shares (when the data
            have classes).
        min_scale: floor of the decoder's standard deviation, in data units.

    Example:
        >>> model = VAEConfig(hidden=[32], latent_dim=4).build(sample_shape=(64,), num_classes=2)
        >>> model.num_classes
        2
    """

    name: str = "vae"
    _target_: str | None = None
    architecture: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    latent_dim: int = 16
    batch_norm: bool = False
    conditional: bool = True
    min_scale: float = 0.01

    def __post_init__(self) -> None:
        self._target_ = registered_target(self)
        check_choice("architecture", self.architecture, ARCHITECTURES)
        _check_sizes("hidden", self.hidden)
        check_positive_int("latent_dim", self.latent_dim)
        _check_bool("batch_norm", self.batch_norm)
        _check_bool("conditional", self.conditional)
        ok = isinstance(self.min_scale, (int, float)) and not isinstance(self.min_scale, bool) and self.min_scale > 0
        if not ok:
            raise ConfigError(f"min_scale must be a number > 0, got {self.min_scale!r}")

    def build(self, *, sample_shape: Sequence[int], num_classes: int | None) -> VAE:
        """The VAE for samples of ``sample_shape``; conditional on ``num_classes`` classes only
        when ``conditional`` (and ``num_classes`` is not ``None``)."""
        from genfair.models._vae import VAE

        return VAE(
            sample_shape=tuple(sample_shape),
            hidden=tuple(self.hidden),
            latent_dim=self.latent_dim,
            batch_norm=self.batch_norm,
            num_classes=num_classes if self.conditional else None,
            architecture=self.architecture,
            min_scale=float(self.min_scale),
        )


@dataclass
class DDPMConfig:
    """A denoising diffusion model on a small UNet (:class:`~genfair.models.DDPM`).

    Args:
        name: ``"ddpm"``.
        _target_: this class, ``package.module.Name``, as ``configs/model/ddpm.yaml`` registers it
            (``None`` is filled in with it). A model of your own runs with ``model=custom``.
        block_out_channels: channels of the UNet's levels, each divisible by ``norm_num_groups``;
            image height and width must be divisible by ``2 ** (levels - 1)``.
        layers_per_block: ResNet layers per down block.
        norm_num_groups: groups of the UNet's GroupNorm layers.
        conditional: condition on the class label and learn the class shares (when the data
            have classes).
        num_train_timesteps: T, the number of noise levels.
        beta_schedule: ``"linear"``, ``"scaled_linear"`` or ``"squaredcos_cap_v2"``.
        sampler: ``"ddim"`` (deterministic given the starting noise) or ``"ddpm"`` (ancestral).
        sample_steps: reverse steps per sample call, at most ``num_train_timesteps``.

    Example:
        >>> config = DDPMConfig(block_out_channels=[8, 16], norm_num_groups=4, conditional=False)
        >>> config.build(sample_shape=(1, 8, 8), num_classes=10).num_classes is None
        True
    """

    name: str = "ddpm"
    _target_: str | None = None
    block_out_channels: list[int] = field(default_factory=lambda: [32, 64])
    layers_per_block: int = 1
    norm_num_groups: int = 8
    conditional: bool = True
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    sampler: str = "ddim"
    sample_steps: int = 50

    def __post_init__(self) -> None:
        self._target_ = registered_target(self)
        channels = _check_sizes("block_out_channels", self.block_out_channels)
        groups = check_positive_int("norm_num_groups", self.norm_num_groups)
        bad = [c for c in channels if c % groups]
        if bad:
            raise ConfigError(
                f"block_out_channels must all be divisible by norm_num_groups={groups}, "
                f"got {list(channels)} ({bad} are not)"
            )
        check_positive_int("layers_per_block", self.layers_per_block)
        _check_bool("conditional", self.conditional)
        check_positive_int("num_train_timesteps", self.num_train_timesteps, minimum=2)
        check_choice("beta_schedule", self.beta_schedule, BETA_SCHEDULES)
        check_choice("sampler", self.sampler, SAMPLERS)
        check_positive_int("sample_steps", self.sample_steps)
        if self.sample_steps > self.num_train_timesteps:
            raise ConfigError(
                f"sample_steps must be at most num_train_timesteps={self.num_train_timesteps}, got {self.sample_steps}"
            )

    def build(self, *, sample_shape: Sequence[int], num_classes: int | None) -> DDPM:
        """The DDPM for images of ``sample_shape`` ``(C, H, W)``; conditional on ``num_classes``
        classes only when ``conditional`` (and ``num_classes`` is not ``None``)."""
        from genfair.models._ddpm import DDPM

        return DDPM(
            sample_shape=tuple(sample_shape),
            block_out_channels=tuple(self.block_out_channels),
            layers_per_block=self.layers_per_block,
            norm_num_groups=self.norm_num_groups,
            num_classes=num_classes if self.conditional else None,
            num_train_timesteps=self.num_train_timesteps,
            beta_schedule=self.beta_schedule,
            sampler=self.sampler,
            sample_steps=self.sample_steps,
        )


class DeepModelConfig(Protocol):
    """A config that builds its own model (a deep model's: :class:`VAEConfig`, :class:`DDPMConfig`,
    another registered one, :class:`CustomModelConfig`): a dataclass whose ``name`` says which
    model, and ``build`` for the untrained model."""

    name: str

    def build(self, *, sample_shape: Sequence[int], num_classes: int | None) -> nn.Module: ...


def deep_configs() -> dict[str, type]:
    """``{class name: class}`` of the configs :func:`build_model` builds (those whose class has a
    ``build`` method among the registered ones, ``genfair.models.registered_models``, then
    :class:`CustomModelConfig`): what a checkpoint's ``config_class`` may name (``genfair.models.load_model``)."""
    registered = [c for c in registered_model_configs().values() if callable(getattr(c, "build", None))]
    return {config_class.__name__: config_class for config_class in [*registered, CustomModelConfig]}


def build_model(config: DeepModelConfig, *, sample_shape: Sequence[int], num_classes: int | None) -> nn.Module:
    """The untrained model ``config`` describes, for samples of ``sample_shape`` and data with
    ``num_classes`` classes (``None``: unlabelled data)."""
    configs = deep_configs()
    if isinstance(config, tuple(configs.values())):
        return config.build(sample_shape=sample_shape, num_classes=num_classes)
    raise ConfigError(f"config must be one of {list(configs)}, got {type(config).__name__}")


def _check_sizes(name: str, value: Any) -> tuple[int, ...]:
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0  # list, tuple, ListConfig
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    if not ok:
        raise ConfigError(f"{name} must be a non-empty list of positive integers, got {value!r}")
    return tuple(value)


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")

"""The variance-bias study's config (``genfair study=variance_bias``), in a module without torch
so that a config is checked without importing it; the study: ``genfair.studies._variance_bias``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from genfair.errors import USER_ERRORS, ConfigError, check_choice, check_number, check_positive_int
from genfair.hypernets import PLEConfig
from genfair.studies._runner import StudyConfig

__all__ = ["DTYPE_NAMES", "VarianceBiasArm", "VarianceBiasConfig", "default_arms"]

DTYPE_NAMES: tuple[str, ...] = ("float32", "float64")


@dataclass
class VarianceBiasArm:
    """The PLE options of one arm: the fields of :class:`hypernets.PLEConfig` (see its docstring),
    typed for Hydra, with the same defaults except ``lam = 0``: with ``constraint = "penalty"``
    that is plain maximum likelihood."""

    lam: float = 0.0
    discrepancy: str = "draw"
    normalize: str = "parameter"
    constraint: str = "penalty"
    rho: float = 10.0
    dual_lr: float = 0.05
    detach_target: bool = False
    detach_samples: bool = False

    def ple_config(self) -> PLEConfig:
        return PLEConfig(**dataclasses.asdict(self))


def default_arms() -> dict[str, VarianceBiasArm]:
    """``hyper_mle``; the penalty (Eq. 5) with lam in {0.1, 1, 10, 100} for the per-draw and the
    expectation-level discrepancy; ``ple_constrained``, the constraint enforced (Eq. 4)."""
    arms = {"hyper_mle": VarianceBiasArm(lam=0.0)}
    for discrepancy in ("draw", "expectation"):
        for lam in (0.1, 1.0, 10.0, 100.0):
            arms[f"ple_{discrepancy}_lam_{lam:g}"] = VarianceBiasArm(lam=lam, discrepancy=discrepancy)
    arms["ple_constrained"] = VarianceBiasArm(constraint="augmented_lagrangian", rho=10.0, dual_lr=0.05)
    return arms


@dataclass
class VarianceBiasConfig(StudyConfig):
    """Configuration of the variance-bias study (``genfair study=variance_bias``, or
    ``experiment=variance_bias``; on the command line each key is ``study.<key>``).

    Attributes:
        n: points per set.
        dim: dimension of the points; only 1 for now (the code averages over the diagonal of
            the covariance, ``sigma^2 I``, but the generated covariance is positive entrywise).
        variance_range: ``[low, high]``; each set's ``sigma^2`` is log-uniform on it.
        mean_range: each coordinate of each set's true mean is uniform on ``[-mean_range, mean_range]``.
        sets_per_step: training sets per optimiser step (the hypernetwork's batch of sets).
        steps: optimiser steps per arm (Adam, cosine-decayed learning rate).
        lr: Adam's initial learning rate.
        hidden, embedding_dim: widths of the hypernetwork's set encoder.
        test_sets: fresh sets on which every arm's estimates are measured (the same for all).
        probe_sets: test sets given to the input-sensitivity probe.
        dtype: ``float32`` or ``float64``, the precision of the model and the hypernetwork.
        arms: ``{name: VarianceBiasArm}``; see :func:`default_arms`.
        only: names of the arms to run (empty: all of them).
    """

    n: int = 10
    dim: int = 1
    variance_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    mean_range: float = 1.0
    sets_per_step: int = 128
    steps: int = 1500
    lr: float = 3e-3
    hidden: int = 32
    embedding_dim: int = 32
    test_sets: int = 50_000
    probe_sets: int = 2_000
    dtype: str = "float32"
    arms: dict[str, VarianceBiasArm] = field(default_factory=default_arms)
    only: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_positive_int("n", self.n, minimum=2)
        if self.dim != 1:
            # The hypernetwork generates ClassGaussianModel's full covariance entrywise through
            # softplus, which needs every entry > 0: off-diagonal zeros need another parametrisation.
            raise ConfigError(f"dim must be 1 (the only dimension this study supports so far), got {self.dim!r}")
        for name in ("sets_per_step", "steps", "hidden", "embedding_dim", "test_sets"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("probe_sets", self.probe_sets)
        check_choice("dtype", self.dtype, DTYPE_NAMES)
        low_high = list(self.variance_range)
        if len(low_high) != 2 or not all(_is_number(v) and v > 0 for v in low_high) or low_high[0] > low_high[1]:
            raise ConfigError(f"variance_range must be [low, high] with 0 < low <= high, got {low_high!r}")
        check_number("mean_range", self.mean_range, at_least=0)
        check_number("lr", self.lr, above=0)
        if not self.arms:
            raise ConfigError("arms must name at least one arm, got {}")
        for name, arm in self.arms.items():
            try:
                arm.ple_config()
            except USER_ERRORS as error:
                raise ConfigError(f"arms.{name}.{error}") from None
        for name in self.only:
            check_choice("only", name, list(self.arms))

    def selected_arms(self) -> dict[str, VarianceBiasArm]:
        return {k: v for k, v in self.arms.items() if not self.only or k in self.only}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

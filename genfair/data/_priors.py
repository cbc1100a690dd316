"""Priors over data-generating distributions: every drawn set first draws its distribution.

An estimator trained on sets of one distribution can memorise it instead of reading its input
(a constant H then fits as well as any). Neural Bayes estimators and amortised simulation-based
inference avoid this by drawing the distribution's parameters from a prior for every training
set (Sainsbury-Dale, Zammit-Mangion & Huser 2024; REFERENCES.md section 6). A prior here has

  - ``draw_parameters(sets, generator=...)``: ``{name: (sets,)}`` float64 true parameters;
  - ``sample(parameters, n, generator=...)``: ``(sets, n, 1)`` samples, set b from parameters b;
  - ``draw_sets(sets, n, generator=...)``: both, a :class:`PriorDraw` with the samples' labels
    (the observed class for :class:`ClassGaussianPrior`, all 0 for unlabelled data);
  - ``fixed(parameters)``: a data source for ``genfair.loops.simulate`` whose chain r always
    draws from parameters r (a loop started from held-out draws of the prior).

Ranges are ``[low, high]`` lists in YAML (``configs/study/*_prior.yaml``), checked on
construction. torch is imported inside the methods that draw (the command line checks a config
without torch; docs/architecture.md, section 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import TYPE_CHECKING, Any, ClassVar

from genfair.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from genfair.data._batch import Batch

__all__ = ["ClassGaussianPrior", "GaussianPrior", "MixturePrior", "PriorDraw", "PriorSource", "check_range"]


def check_range(key: str, value: Any, *, lower: float | None = None, upper: float | None = None, closed: bool = True) -> tuple[float, float]:
    """``value`` as ``(low, high)``: two finite numbers, ``low < high``, inside the parameter's
    domain ``[lower, upper]`` (open bounds when ``closed`` is false); else a one-line
    :class:`~genfair.errors.ConfigError` naming ``key``, the value and what is allowed."""
    low_end, high_end = ("-inf" if lower is None else f"{lower:g}"), ("inf" if upper is None else f"{upper:g}")
    domain = f"{'[' if closed else '('}{low_end}, {high_end}{']' if closed else ')'}"
    allowed = f"two numbers [low, high] with low < high inside {domain}"
    pair = None if isinstance(value, str) or not hasattr(value, "__iter__") else list(value)  # a list or OmegaConf's ListConfig
    if pair is None or len(pair) != 2 or not all(isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) for v in pair):
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")
    low, high = float(pair[0]), float(pair[1])
    below = (lambda v, b: v < b) if closed else (lambda v, b: v <= b)
    if not low < high or (lower is not None and below(low, lower)) or (upper is not None and below(upper, high)):
        raise ConfigError(f"{key} must be {allowed}, got {[low, high]}")
    return low, high


@dataclass(frozen=True)
class PriorDraw:
    """Sets drawn from a prior: ``x (sets, n, 1)``, their labels ``(sets, n)`` int64 and each
    set's true ``parameters {name: (sets,)}``."""

    x: torch.Tensor
    labels: torch.Tensor
    parameters: dict[str, torch.Tensor]


class _Prior:
    """What every prior shares: ``sample``, ``draw_sets`` and ``fixed`` from its own
    ``draw_parameters`` and ``sample_labelled`` (samples and the component each came from);
    ``LABELLED`` says whether the component is observed (a class label) or latent."""

    LABELLED: ClassVar[bool] = False
    group_names: ClassVar[tuple[str, ...]] = ("all",)

    def sample(self, parameters: Mapping[str, torch.Tensor], n: int, *, generator: torch.Generator) -> torch.Tensor:
        return self.sample_labelled(parameters, n, generator=generator)[0]

    def draw_sets(self, sets: int, n: int, *, generator: torch.Generator) -> PriorDraw:
        parameters = self.draw_parameters(sets, generator=generator)
        return PriorDraw(*self._observed(parameters, n, generator), parameters)

    def _observed(self, parameters: Mapping[str, torch.Tensor], n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x, components = self.sample_labelled(parameters, n, generator=generator)
        return x, components if self.LABELLED else components.zero_()

    def fixed(self, parameters: Mapping[str, torch.Tensor]) -> PriorSource:
        return PriorSource(self, dict(parameters))


@dataclass
class GaussianPrior(_Prior):
    """N(mean, variance) with ``mean ~ U(mean)`` and ``log variance ~ U(log variance[0], log
    variance[1])`` (log-uniform: every scale in the range equally likely).

    Attributes:
        mean: ``[low, high]`` of the uniform prior on the mean.
        variance: ``[low, high]`` (> 0) of the log-uniform prior on the variance.
    """

    mean: list[float] = field(default_factory=lambda: [-2.0, 2.0])
    variance: list[float] = field(default_factory=lambda: [0.5, 2.0])
    PARAMETERS: ClassVar[tuple[str, ...]] = ("mean", "variance")

    def __post_init__(self) -> None:
        check_range("mean", self.mean)
        check_range("variance", self.variance, lower=0, closed=False)

    def draw_parameters(self, sets: int, *, generator: torch.Generator) -> dict[str, torch.Tensor]:
        mean = _uniform(self.mean, sets, generator)
        variance = _uniform([math.log(v) for v in self.variance], sets, generator).exp()
        return {"mean": mean, "variance": variance}

    def sample_labelled(
        self, parameters: Mapping[str, torch.Tensor], n: int, *, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        sets = parameters["mean"].shape[0]
        z = torch.randn(sets, n, 1, generator=generator, dtype=torch.float64)
        x = parameters["mean"][:, None, None] + parameters["variance"].sqrt()[:, None, None] * z
        return x, torch.zeros(sets, n, dtype=torch.int64)


@dataclass
class MixturePrior(_Prior):
    """A two-component 1-D mixture ``(1 - w) N(loc, v_major) + w N(loc + gap, v_minor)``: the
    minority (weight ``w``) always sits ``gap`` to the right of the majority.

    Attributes:
        minority_weight: ``[low, high]`` inside (0, 1) of the uniform prior on w.
        location_sd: the majority's location ``loc ~ N(0, location_sd^2)``.
        gap: ``[low, high]`` (> 0) of the uniform prior on the distance between the means.
        log_variance: ``[low, high]`` of the uniform prior on each component's log variance
            (drawn independently for the two).
    """

    minority_weight: list[float] = field(default_factory=lambda: [0.05, 0.5])
    location_sd: float = 1.0
    gap: list[float] = field(default_factory=lambda: [1.0, 4.0])
    log_variance: list[float] = field(default_factory=lambda: [-math.log(2), math.log(2)])
    PARAMETERS: ClassVar[tuple[str, ...]] = ("minority_weight", "majority_mean", "minority_mean", "majority_variance", "minority_variance")

    def __post_init__(self) -> None:
        check_range("minority_weight", self.minority_weight, lower=0, upper=1, closed=False)
        if not isinstance(self.location_sd, Real) or isinstance(self.location_sd, bool) or not 0 <= self.location_sd < math.inf:
            raise ConfigError(f"location_sd must be a finite number >= 0, got {self.location_sd!r}")
        check_range("gap", self.gap, lower=0, closed=False)
        check_range("log_variance", self.log_variance)

    def draw_parameters(self, sets: int, *, generator: torch.Generator) -> dict[str, torch.Tensor]:
        import torch

        weight = _uniform(self.minority_weight, sets, generator)
        location = self.location_sd * torch.randn(sets, generator=generator, dtype=torch.float64)
        gap = _uniform(self.gap, sets, generator)
        variances = _uniform(self.log_variance, 2 * sets, generator).exp().reshape(sets, 2)
        return {
            "minority_weight": weight,
            "majority_mean": location,
            "minority_mean": location + gap,
            "majority_variance": variances[:, 0],
            "minority_variance": variances[:, 1],
        }

    def sample_labelled(
        self, parameters: Mapping[str, torch.Tensor], n: int, *, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``(sets, n, 1)`` and their components ``(sets, n)`` (0 majority, 1 minority)."""
        import torch

        sets = parameters["minority_weight"].shape[0]
        minority = torch.rand(sets, n, generator=generator, dtype=torch.float64) < parameters["minority_weight"][:, None]
        z = torch.randn(sets, n, generator=generator, dtype=torch.float64)
        mean = torch.where(minority, parameters["minority_mean"][:, None], parameters["majority_mean"][:, None])
        variance = torch.where(minority, parameters["minority_variance"][:, None], parameters["majority_variance"][:, None])
        return (mean + variance.sqrt() * z)[..., None], minority.to(torch.int64)


@dataclass
class ClassGaussianPrior(MixturePrior):
    """The two Gaussians of :class:`MixturePrior` with each sample's class observed (label 0 the
    majority, 1 the minority), as ``data=class_mixture`` labels them: a prior over class-Gaussian
    sources (class shares, means and variances)."""

    LABELLED: ClassVar[bool] = True
    group_names: ClassVar[tuple[str, ...]] = ("majority", "minority")


class PriorSource:
    """A data source for ``genfair.loops.simulate`` whose replicate r always draws from
    ``parameters[*][r]``: every chain of a loop has its own true distribution (labelled like
    the prior's draws)."""

    sample_shape = (1,)

    def __init__(self, prior: GaussianPrior | MixturePrior, parameters: dict[str, torch.Tensor]) -> None:
        self.prior = prior
        self.parameters = parameters
        self.group_names = prior.group_names

    @property
    def replicates(self) -> int:
        return int(next(iter(self.parameters.values())).shape[0])

    def draw(self, replicates: int, n: int, *, generator: torch.Generator) -> Batch:
        from genfair.data._batch import Batch

        if replicates != self.replicates:
            raise ConfigError(f"replicates must be {self.replicates}, one per fixed distribution, got {replicates}")
        return Batch(*self.prior._observed(self.parameters, n, generator))


def _uniform(bounds: Sequence[float], size: int, generator: torch.Generator) -> torch.Tensor:
    import torch

    low, high = float(bounds[0]), float(bounds[1])
    return low + (high - low) * torch.rand(size, generator=generator, dtype=torch.float64)

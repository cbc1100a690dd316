"""The settings of a self-consuming loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genfair.errors import check_choice, check_positive_int, check_unit_interval

__all__ = ["LOOP_KINDS", "LoopConfig", "LoopKind"]

LoopKind = Literal["fully_synthetic", "augment", "fresh", "accumulate"]
LOOP_KINDS: tuple[str, ...] = ("fully_synthetic", "augment", "fresh", "accumulate")


@dataclass
class LoopConfig:
    """A self-consuming loop (Alemohammad et al. 2024; Gerstgrasser et al. 2024 for accumulate).

    Generation 0 trains on ``n_real`` real samples. Generation g >= 1 trains on:
      - ``fully_synthetic``: ``n_synthetic`` samples of generation g-1's model;
      - ``augment``: generation 0's real set plus ``n_synthetic`` samples of generation g-1;
      - ``fresh``: a new draw of ``n_real`` real samples plus ``n_synthetic`` samples of g-1;
      - ``accumulate``: generation 0's real set plus every synthetic set drawn so far
        (``n_real + g * n_synthetic`` samples).

    Args:
        kind: one of :data:`LOOP_KINDS`.
        generations: number of generations, counting generation 0.
        n_real: real samples per draw.
        n_synthetic: synthetic samples drawn from each generation's model.
        sampling_bias: lambda in (0, 1]; 1 samples the model as it is (for a Gaussian,
            samples come from N(mu, lambda * Sigma)).
        replicates: independent chains run together.
        checkpoint_every: a fit trained by gradient steps (the deep models', the hypernetworks')
            saves the generation in progress every this many steps into the run directory
            (``arms/<arm>/in_progress/``), and a killed run restarts the generation from there,
            ending with the same results; ``None`` (default): only finished generations are saved.
            It does not change the results, so a run may be resumed with another value.
    """

    kind: str = "fully_synthetic"
    generations: int = 10
    n_real: int = 100
    n_synthetic: int = 100
    sampling_bias: float = 1.0
    replicates: int = 100
    checkpoint_every: int | None = None

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, LOOP_KINDS)
        check_positive_int("generations", self.generations)
        check_positive_int("n_real", self.n_real)
        check_positive_int("n_synthetic", self.n_synthetic)
        check_unit_interval("sampling_bias", self.sampling_bias)
        check_positive_int("replicates", self.replicates)
        if self.checkpoint_every is not None:
            check_positive_int("checkpoint_every", self.checkpoint_every)

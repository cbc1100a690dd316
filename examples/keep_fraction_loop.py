"""A loop-kind plug-in (``loop=custom``): generation g trains on the real set plus a fixed
fraction of every past generation's synthetic set.

    genfair experiment=class_mixture_mad loop=custom \
        loop.training_set._target_=examples.keep_fraction_loop.KeepFraction +loop.training_set.fraction=0.5

Generation g >= 1: generation 0's ``n_real`` real samples, then from each synthetic set drawn so
far (generations 0..g-1) its first ``round(fraction * n_synthetic)`` samples (a synthetic set is
in random order, so its first samples are a random subset), so ``n_real + g * round(fraction *
n_synthetic)`` samples. ``fraction = 1`` is ``loop.kind=accumulate``. The protocol:
``genfair.loops.TrainingSetRule``.
"""

from __future__ import annotations

from genfair.data import Batch
from genfair.errors import ConfigError

__all__ = ["KeepFraction"]


class KeepFraction:
    """The real set plus the first ``fraction`` of every past synthetic set (see the module docstring).

    Args:
        fraction: in (0, 1], the share of each synthetic set kept.
    """

    keeps_history = True  # compose reads every past synthetic set

    def __init__(self, fraction: float = 0.5) -> None:
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
            raise ConfigError(f"loop.training_set.fraction must lie in (0, 1], got {fraction!r}")
        self.fraction = float(fraction)

    def kept(self, n_synthetic: int) -> int:
        return max(1, round(self.fraction * n_synthetic))

    def size(self, generation: int, *, n_real: int, n_synthetic: int) -> int:
        return n_real + generation * self.kept(n_synthetic)

    def compose(self, generation: int, *, real: Batch, synthetic: list[Batch], draw_real, generator) -> Batch:
        parts = [real]
        for batch in synthetic:
            keep = self.kept(batch.x.shape[1])
            parts.append(Batch(batch.x[:, :keep], batch.y[:, :keep]))
        return Batch.concat(parts)

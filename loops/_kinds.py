"""The built-in loop kinds (Alemohammad et al. 2024; Gerstgrasser et al. 2024 for accumulate):
rules of the :class:`~genfair.loops.TrainingSetRule` protocol, like a user's. Each is registered
by its YAML, ``configs/loop/<kind>.yaml``, which names it (``training_set: {_target_:
genfair.loops.Accumulate}``); see :func:`~genfair.loops.registered_kinds`."""

from __future__ import annotations

from genfair.data import Batch

__all__ = ["Accumulate", "Augment", "Fresh", "FullySynthetic"]


class FullySynthetic:
    """``n_synthetic`` samples of generation g-1's model."""

    keeps_history = False

    def size(self, generation: int, *, n_real: int, n_synthetic: int) -> int:
        return n_synthetic

    def compose(self, generation, *, real, synthetic, draw_real, generator) -> Batch:
        return synthetic[-1]


class Augment:
    """Generation 0's real set plus ``n_synthetic`` samples of generation g-1."""

    keeps_history = False

    def size(self, generation: int, *, n_real: int, n_synthetic: int) -> int:
        return n_real + n_synthetic

    def compose(self, generation, *, real, synthetic, draw_real, generator) -> Batch:
        return Batch.concat([real, synthetic[-1]])


class Fresh:
    """A new draw of ``n_real`` real samples plus ``n_synthetic`` samples of generation g-1."""

    keeps_history = False

    def size(self, generation: int, *, n_real: int, n_synthetic: int) -> int:
        return n_real + n_synthetic

    def compose(self, generation, *, real, synthetic, draw_real, generator) -> Batch:
        return Batch.concat([draw_real(), synthetic[-1]])


class Accumulate:
    """Generation 0's real set plus every synthetic set drawn so far (``n_real + g * n_synthetic``)."""

    keeps_history = True

    def size(self, generation: int, *, n_real: int, n_synthetic: int) -> int:
        return n_real + generation * n_synthetic

    def compose(self, generation, *, real, synthetic, draw_real, generator) -> Batch:
        return Batch.concat([real, *synthetic])

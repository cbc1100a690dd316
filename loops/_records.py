"""The records a self-consuming loop passes around: what a fit and a measure return, what a
generation produced, and the protocols of where a loop keeps its generations.

They live apart from the loop (``genfair.loops._simulate``) so that what the loop calls through a
protocol (the store in ``genfair.loops._store``, a fit's checkpoint) imports the records and not
the loop: the loop calls down into them, never back up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from genfair.data import Batch

__all__ = [
    "Fit",
    "FitCheckpoint",
    "FitContext",
    "FitOutput",
    "FinishedGeneration",
    "GenerationRecord",
    "GenerationStore",
    "Labeller",
    "LoopResult",
    "Measure",
    "Measurement",
]


class FitCheckpoint(Protocol):
    """Where a fit trained by gradient steps keeps the state of the generation in progress (see
    ``genfair.loops.RunStore.fit_checkpoint``): ``save`` it after every ``every`` steps; ``load`` returns
    ``(steps done, tensors)`` saved for this generation by a run that was killed, or ``None``."""

    every: int

    def load(self) -> tuple[int, dict[str, torch.Tensor]] | None: ...

    def save(self, step: int, tensors: dict[str, torch.Tensor]) -> None: ...


@dataclass(frozen=True)
class FitContext:
    """What a fit may need beyond its training set: the generation, the ``state_dict`` of the
    model fitted at generation 0 on real data (``None`` during generation 0), which an anchored
    fit stays close to (a resumed loop restores it from its store), and where to checkpoint the
    generation in progress (``None``: nowhere; see ``LoopConfig.checkpoint_every``)."""

    generation: int
    reference: dict[str, torch.Tensor] | None
    checkpoint: FitCheckpoint | None = None


@dataclass(frozen=True)
class Measurement:
    """What a ``measure`` may return instead of a plain dict: the values, and for some keys a
    confidence interval ``(lo, hi)`` computed by the measure itself (a bootstrap over the samples
    of a single-replicate deep model, where there are no replicates to summarise), and
    ``artifacts``: what the measure made besides numbers (e.g. ``"grid"``, a ``(classes, k, C, H,
    W)`` sample grid), which the loop hands on in the generation's record but never stores."""

    values: Mapping[str, torch.Tensor]
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    artifacts: Mapping[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class FitOutput:
    """What a fit may return instead of the bare model: the fitted model and diagnostics of the
    fit itself (``{"metric/group": (replicates,)}``, e.g. the PLE penalty's share of the loss),
    which the loop adds to the generation's record beside what ``measure`` returns; ``logs``:
    what the fit recorded along the way (e.g. ``{"group_dro_weights": [[q_c] per step]}``), which
    the loop hands on in the record's ``artifacts`` but never stores."""

    model: nn.Module
    values: Mapping[str, torch.Tensor] = field(default_factory=dict)
    logs: Mapping[str, Any] = field(default_factory=dict)


Fit = Callable[[nn.Module, Batch, torch.Generator, FitContext], "nn.Module | FitOutput"]
Measure = Callable[[nn.Module, Batch, torch.Generator], "Mapping[str, torch.Tensor] | Measurement"]
Labeller = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GenerationRecord:
    """What one generation measured: ``values["metric/group"]`` is ``(replicates,)`` float64;
    ``intervals["metric/group"]``, where the measure gave one, is ``(2,)`` float64 ``(lo, hi)``;
    ``seconds`` is the wall time of fit, measure and sample (writing to disk excluded).

    ``values`` is kept in sorted key order, so a record restored from a checkpoint (safetensors
    returns its keys sorted) is identical to the one the loop measured, and so are the files
    written from it.

    ``artifacts`` holds what the generation made besides numbers, for whoever runs the loop to write:
    ``"measure"`` (:attr:`Measurement.artifacts`) and ``"fit"`` (:attr:`FitOutput.logs`). It is not
    stored: a record restored from disk has none (its files were written when it was made).
    """

    generation: int
    values: dict[str, np.ndarray]
    seconds: float
    intervals: dict[str, np.ndarray] = field(default_factory=dict)
    artifacts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", dict(sorted(self.values.items())))
        object.__setattr__(self, "intervals", dict(sorted(self.intervals.items())))


@dataclass(frozen=True)
class LoopResult:
    records: list[GenerationRecord]
    model: nn.Module

    def values(self, key: str) -> np.ndarray:
        """``(generations, replicates)`` values of ``"metric/group"``."""
        if key not in self.records[0].values:
            raise KeyError(f"no metric {key!r}; available: {sorted(self.records[0].values)}")
        return np.stack([record.values[key] for record in self.records])


@dataclass(frozen=True)
class FinishedGeneration:
    """One generation that ``genfair.loops.loop_generations`` has finished (and saved, with a store).

    ``record``: what it measured. ``model``: the model fitted at this generation; for a generation
    restored from the store, the model holding the last restored generation's state. ``lost``: the
    classes of which the synthetic samples drawn at this generation hold no sample in any
    replicate (see ``on_lost_classes`` of ``genfair.loops.simulate``). ``restored``: read back
    from the store rather than run now (its record has no artifacts and its lost classes are not
    known: they were reported when it ran).
    """

    record: GenerationRecord
    model: nn.Module
    lost: tuple[str, ...] = ()
    restored: bool = False


class GenerationStore(Protocol):
    """Where a loop keeps finished generations, so a killed run can resume (see ``genfair.loops.RunStore``)."""

    def resume(self, model: nn.Module, *, limit: int) -> tuple[list[GenerationRecord], list[Batch]]: ...

    def save(self, record: GenerationRecord, model: nn.Module, synthetic: Batch) -> None: ...

    def model_state(self, generation: int) -> dict[str, torch.Tensor]: ...

    def fit_checkpoint(self, generation: int, *, every: int) -> FitCheckpoint: ...

"""Finished generations on disk, so that a killed loop resumes where it stopped."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

from genfair.checkpoint import load_tensors, read_json, save_tensors, write_json
from genfair.data import Batch
from genfair.errors import ConfigError
from genfair.loops._records import GenerationRecord

__all__ = ["InProgress", "RunStore"]


class RunStore:
    """One directory per finished generation, ``generation_0007/``, holding:

    - ``metrics.safetensors``: every replicate's value of every metric (float64);
    - ``intervals.safetensors``: the ``(lo, hi)`` intervals the measure gave, if any;
    - ``model.safetensors``: the fitted model's ``state_dict``;
    - ``synthetic.safetensors``: the samples drawn for the next generation (``x``, ``y``);
    - ``record.json``: generation, seconds, and the sha256 of the three files.

    A generation is written into ``generation_0007.partial/`` and renamed when complete, so a
    killed run never leaves a half-written generation behind. Synthetic sets that no later
    generation needs are pruned, except for ``accumulate`` loops, which train on all of them.

    With ``LoopConfig.checkpoint_every``, the fit of the generation in progress saves its state
    into ``in_progress/`` (see :class:`InProgress`), removed once that generation is saved.
    """

    def __init__(self, directory: Path, *, keep_all_synthetic: bool) -> None:
        self.directory = Path(directory)
        self.keep_all_synthetic = keep_all_synthetic

    def finished(self) -> list[int]:
        """Generations with a complete directory, which must run 0, 1, ..., k without gaps."""
        found = sorted(int(p.name.split("_")[1]) for p in self.directory.glob("generation_[0-9]*") if p.suffix == "")
        if found != list(range(len(found))):
            raise ConfigError(f"{self.directory} holds generations {found}: not a contiguous run from 0")
        return found

    def resume(self, model: nn.Module, *, limit: int | None = None) -> tuple[list[GenerationRecord], list[Batch]]:
        """Load the finished generations' records, the last model (into ``model``) and the
        synthetic sets the next generation needs.

        ``limit``: load at most this many generations. A run asked for fewer generations than
        it once finished reports the first ``limit`` and leaves the later ones on disk, untouched,
        for a later run that asks for them again.
        """
        finished = self.finished()
        generations = finished[:limit]
        records = [self._record(g) for g in generations]
        if not generations:
            return records, []
        last = generations[-1]
        model.load_state_dict(self._tensors(last, "model"))
        if len(generations) < len(finished):  # no generation follows: no synthetic set is needed
            return records, []
        needed = generations if self.keep_all_synthetic else [last]
        synthetic = []
        for g in needed:
            tensors = self._tensors(g, "synthetic")
            synthetic.append(Batch(tensors["x"], tensors["y"]))
        return records, synthetic

    def save(self, record: GenerationRecord, model: nn.Module, synthetic: Batch) -> None:
        final = self._path(record.generation)
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        digests = {
            "metrics": save_tensors(partial / "metrics.safetensors", {k: torch.from_numpy(v) for k, v in record.values.items()}),
            "model": save_tensors(partial / "model.safetensors", dict(model.state_dict())),
            "synthetic": save_tensors(partial / "synthetic.safetensors", {"x": synthetic.x, "y": synthetic.y}),
        }
        if record.intervals:
            intervals = {k: torch.from_numpy(v) for k, v in record.intervals.items()}
            digests["intervals"] = save_tensors(partial / "intervals.safetensors", intervals)
        write_json(partial / "record.json", {"generation": record.generation, "seconds": record.seconds, "sha256": digests})
        partial.rename(final)
        if not self.keep_all_synthetic and record.generation > 0:
            (self._path(record.generation - 1) / "synthetic.safetensors").unlink(missing_ok=True)
        shutil.rmtree(self.directory / "in_progress", ignore_errors=True)  # its generation is now finished

    def fit_checkpoint(self, generation: int, *, every: int) -> InProgress:
        """Where the fit of ``generation`` saves its state every ``every`` steps."""
        return InProgress(self.directory / "in_progress", generation, every=every)

    def model_state(self, generation: int) -> dict[str, torch.Tensor]:
        """The ``state_dict`` of a finished generation's fitted model (checked against its sha256)."""
        return self._tensors(generation, "model")

    def _path(self, generation: int) -> Path:
        return self.directory / f"generation_{generation:04d}"

    def _record(self, generation: int) -> GenerationRecord:
        values = {k: v.numpy() for k, v in self._tensors(generation, "metrics").items()}
        saved = read_json(self._path(generation) / "record.json")
        intervals = {}
        if "intervals" in saved["sha256"]:
            intervals = {k: v.numpy() for k, v in self._tensors(generation, "intervals").items()}
        return GenerationRecord(generation, values, float(saved["seconds"]), intervals)

    def _tensors(self, generation: int, name: str) -> dict[str, torch.Tensor]:
        record = read_json(self._path(generation) / "record.json")
        return load_tensors(self._path(generation) / f"{name}.safetensors", sha256=record["sha256"][name])


class InProgress:
    """The state of a generation's fit between two of its gradient steps, in ``directory``:

    - ``state_step_000040.safetensors``: the tensors the fit saved (weights, optimiser moments,
      generator and RNG states; see ``genfair.estimators``), named after the steps done;
    - ``state.json``: ``{"generation", "step", "file", "sha256"}``, written last: the commit.

    A save writes the new tensors under a new name, then ``state.json`` (atomically), then
    deletes the older tensors, so a kill at any moment leaves a ``state.json`` that names a
    complete file. A checkpoint of another generation (one killed after that generation was
    saved but before its checkpoint was removed) is ignored. Loading checks the sha256: a
    truncated or altered file raises :class:`ConfigError` naming it.
    """

    def __init__(self, directory: Path, generation: int, *, every: int) -> None:
        self.directory, self.generation, self.every = Path(directory), generation, every

    def __repr__(self) -> str:
        return f"generation {self.generation} in {self.directory}"

    def load(self) -> tuple[int, dict[str, torch.Tensor]] | None:
        """``(steps done, tensors)`` of this generation's checkpoint, or ``None`` if there is none."""
        path = self.directory / "state.json"
        if not path.exists():
            return None
        saved = read_json(path)
        keys = ("generation", "step", "file", "sha256")
        if not isinstance(saved, dict) or any(key not in saved for key in keys) or "/" in str(saved["file"]):
            raise ConfigError(f"{path} is not an in-generation checkpoint record (it needs {list(keys)}): it was altered")
        if saved["generation"] != self.generation:
            return None
        return int(saved["step"]), load_tensors(self.directory / saved["file"], sha256=saved["sha256"])

    def save(self, step: int, tensors: dict[str, torch.Tensor]) -> None:
        """Save the state after ``step`` steps of this generation's fit (see the class docstring)."""
        name = f"state_step_{step:06d}.safetensors"
        digest = save_tensors(self.directory / name, tensors)
        write_json(self.directory / "state.json", {"generation": self.generation, "step": step, "file": name, "sha256": digest})
        for old in self.directory.glob("state_step_*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

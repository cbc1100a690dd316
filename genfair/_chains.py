"""The independent chains of a deep-model arm: ``loop.replicates = R`` runs R self-consuming
loops per arm, each its own real draw, initialisation, label draws and training noise.

Chain r of every arm draws from the ``genfair.seeding`` children keyed by ``(g, stream, r)``
(replicate 0: the single chain of a one-replicate run), so replicate r of arm A and replicate r
of arm B share their random numbers (common random numbers, what makes paired differences
precise), and chain r is the same whatever R is.

Chains are independent, so they run as separate jobs: in this process one after another
(``workers = 1``), or in a pool of ``workers`` processes with one torch thread each. A chain run
in this process hands the run its state after every generation (:func:`run_chains` yields it);
one in a worker, only at its end.

Why not one batched computation (stacked weights under ``torch.func.vmap``)? Measured on 2 CPU
cores with the default VAE (batch 64): eight chains stepped one after another cost 8.1x one
chain per step, and a vmap over stacked weights does not run on models whose ``loss`` validates
its labels or one-hot encodes them (data-dependent control flow), which a user's model may well do; independent jobs
work for every model and use every core (see the replicates benchmark in ``docs/results/benchmarks.md``).

Where chain r lives: ``arms/<arm>/`` with one replicate (the layout of earlier runs, so they
resume), ``arms/<arm>/replicate_<r>/`` with several.
"""

from __future__ import annotations

import logging
import os
from logging.handlers import QueueHandler, QueueListener
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from genfair._arm_parts import chain_parts, initial_model, prepare_evaluations
from genfair.checkpoint import save_tensors, write_json
from genfair.errors import GenerationFailed
from genfair.loops import GenerationRecord, RunStore, loop_generations, training_rule
from genfair.models import save_model
from genfair.plots import save_sample_grid
from genfair.progress import format_duration

__all__ = [
    "BOOTSTRAP_COLUMNS", "ChainJob", "ChainResult", "bootstrap_rows", "chain_dir", "combine", "log_chain_progress",
    "run_chain", "run_chains", "run_in_workers", "usable_cores",
]

log = logging.getLogger("genfair")


@dataclass(frozen=True)
class ChainJob:
    """One chain to run: ``arm`` (a :class:`genfair.experiment.Arm`), its ``replicate`` index
    (``None``: the one chain of a batched model, which holds every replicate), the root
    ``seed``, the run directory, the device name, and the lost-class entries that a previous
    run of this directory recorded for the chain (``earlier_lost``; those of generations it
    restores are kept)."""

    arm: object
    replicate: int | None
    seed: int
    run_dir: Path
    device: str = "cpu"
    earlier_lost: tuple[dict, ...] = ()


@dataclass(frozen=True)
class ChainResult:
    """What one chain has produced: its finished generations' records (values ``(replicates,)``
    per key; a chain of a deep arm: ``(1,)``, with the measure's bootstrap intervals), the classes
    its synthetic samples lost (``[{"generation": g, "lost": [names]}]``, oldest first), its
    failure ``(generation, reason)`` if a generation broke, and whether the chain has ended
    (``done``; ``False``: its state after a generation, the last record that generation's)."""

    arm: str
    replicate: int | None
    records: list[GenerationRecord]
    lost: list[dict] = field(default_factory=list)
    failure: tuple[int, str] | None = None
    done: bool = True


def chain_dir(run_dir: Path, arm: str, replicate: int | None, replicates: int) -> Path:
    """Where chain ``replicate`` of ``arm`` keeps its generations (see the module docstring)."""
    base = Path(run_dir) / "arms" / arm
    return base if replicate is None or replicates == 1 else base / f"replicate_{replicate:02d}"


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_chains(jobs: Sequence[ChainJob], *, workers: int, evaluations: Mapping[str, object]) -> Iterator[ChainResult]:
    """Run ``jobs`` and yield what they produce: in this process (``workers == 1``, or one job)
    each chain's state after every generation it runs (``done=False``, see :func:`run_chain`) and
    then its end; in a pool of ``min(workers, len(jobs))`` spawned processes with one torch
    thread each, each chain's end as it finishes. ``evaluations``: each arm's prepared
    evaluation, by arm name (a worker prepares its own)."""
    if workers == 1 or len(jobs) == 1:
        for job in jobs:
            yield from run_chain(job, evaluation=evaluations[job.arm.name])
        return
    yield from run_in_workers(jobs, workers=workers, run_one=_chain_in_worker)


def run_in_workers(
    jobs: Sequence[ChainJob], *, workers: int, run_one: Callable[[ChainJob], ChainResult]
) -> Iterator[ChainResult]:
    """Run ``run_one`` (a module-level function, which a spawned process can import) on each of
    ``jobs`` in a pool of ``min(workers, len(jobs))`` spawned processes with one torch thread
    each, and yield each result as it finishes. The workers' log records are handled by this
    process's handlers."""
    context = get_context("spawn")  # a fresh interpreter: no forked torch or OpenMP state
    records = context.Queue()  # the workers' log records, handled here by this process's handlers
    listener = QueueListener(records, _Relay())
    listener.start()
    try:
        with ProcessPoolExecutor(
            min(workers, len(jobs)), mp_context=context, initializer=_start_worker, initargs=(records, log.level)
        ) as pool:
            futures = [pool.submit(run_one, job) for job in jobs]
            for future in as_completed(futures):
                yield future.result()
    finally:
        listener.stop()


def _chain_in_worker(job: ChainJob) -> ChainResult:
    """Run a chain to its end in a worker, logging a line per generation (the worker's log
    records reach the command's log), and return its end."""
    for result in run_chain(job):
        if not result.done:
            log_chain_progress(job.arm, result)
    return result


def _start_worker(records, level: int) -> None:
    """A worker's set-up: one torch thread, and genfair's log records sent to the command's
    process (which prints them and writes them to its log file)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    root = logging.getLogger()
    root.handlers[:] = [QueueHandler(records)]
    log.setLevel(level or logging.INFO)
    logging.getLogger("genfair.metrics._classifier").setLevel(logging.WARNING)  # the command's process loaded it, and said so


class _Relay(logging.Handler):
    """Hands a worker's record to the logger of the same name in this process."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


def run_chain(job: ChainJob, *, evaluation: object | None = None) -> Iterator[ChainResult]:
    """Run one chain (in this process or a worker's): build its parts (``genfair._arm_parts``),
    then run their loop (``genfair.loops.loop_generations``), resuming after the last generation
    its directory holds.

    Yields the chain's state after every generation it runs (``done=False``), once that
    generation's own files are written: the loop's store, the sample grid (chain 0, where the
    measure drew one) and the remedy's log; then the chain's end (``done=True``), once its model
    is saved. A failed generation ends the chain (:attr:`ChainResult.failure`), not raised, with
    the generations finished before it. ``evaluation``: the arm's prepared evaluation (``None``
    in a worker: prepared there, its classifier cached by the run that started it).
    """
    arm, replicate = job.arm, job.replicate
    if evaluation is None:
        evaluation = prepare_evaluations([arm])[arm.name]
    parts = chain_parts(arm, replicate=replicate, seed=job.seed, device=torch.device(job.device), evaluation=evaluation)
    directory = chain_dir(job.run_dir, arm.name, replicate, arm.loop.replicates)
    store = RunStore(directory, keep_all_synthetic=training_rule(arm.loop).keeps_history)
    done = len(store.finished())
    if done:
        where = "" if replicate is None else f" replicate {replicate}"
        log.info("arm %s%s: resuming after generation %d", arm.name, where, done - 1)
    lost = [entry for entry in job.earlier_lost if entry["generation"] < min(done, arm.loop.generations)]
    records: list[GenerationRecord] = []
    model = parts.model
    generations = loop_generations(
        data=arm.data, model=parts.model, config=parts.loop, seed=job.seed, measure=parts.measure, fit=parts.fit,
        store=store, label_synthetic=parts.labeller, replicate=parts.replicate, verifier=parts.verifier,
    )
    try:
        for finished in generations:
            records.append(finished.record)
            model = finished.model
            if finished.restored:
                continue
            if finished.lost:
                warn_lost(_where(job), finished.record.generation, finished.lost)
                if finished.record.generation not in {entry["generation"] for entry in lost}:
                    lost.append({"generation": finished.record.generation, "lost": list(finished.lost)})
            _write_generation_files(job, directory, finished.record)
            yield ChainResult(arm.name, replicate, list(records), list(lost), done=False)
    except GenerationFailed as error:
        # The finished generations, also those a resumed run restored before failing at its first
        # new one, read into a fresh model (a user's fit may have left the model reshaped).
        records = store.resume(initial_model(arm), limit=arm.loop.generations)[0]
        generation = error.generation if error.generation >= 0 else len(records)  # -1: raised by a measure, which has no generation
        yield ChainResult(arm.name, replicate, records, lost, (generation, error.reason))
        return
    if replicate is not None:  # a deep chain keeps its last model (genfair.models.load_model)
        model_dir = directory / "model" if arm.loop.replicates > 1 else job.run_dir / "arms" / arm.name / "model"
        save_model(model_dir, model, arm.model, sample_shape=arm.data.sample_shape)
    yield ChainResult(arm.name, replicate, records, lost)


def _where(job: ChainJob) -> str:
    """``arm`` or ``arm replicate r`` (an arm of several chains), as the log names a chain."""
    arm, replicate = job.arm, job.replicate
    return arm.name + (f" replicate {replicate}" if replicate is not None and arm.loop.replicates > 1 else "")


def _write_generation_files(job: ChainJob, directory: Path, record: GenerationRecord) -> None:
    """A generation's own files: chain 0's sample grid, and the remedy's log (Group DRO's class
    weights after every step)."""
    arm, names = job.arm, job.arm.data.group_names
    grid = record.artifacts["measure"].get("grid")
    if not job.replicate and grid is not None:
        path = job.run_dir / "samples" / arm.name / f"generation_{record.generation:04d}"
        save_tensors(path.with_suffix(".safetensors"), {"grid": grid.cpu().contiguous()})
        save_sample_grid(path.with_suffix(".png"), grid.cpu(), row_labels=list(names),
                         title=f"{arm.name}, generation {record.generation}")
    if record.artifacts["fit"]:
        write_json(
            directory / "remedy" / f"generation_{record.generation:04d}.json",
            {"remedy": arm.remedy.name, "classes": list(names), **record.artifacts["fit"]},
        )


def log_chain_progress(arm: object, chain: ChainResult) -> None:
    """A line for the last generation of ``chain`` (an arm's chain of several, or one run in a
    worker, whose line reaches the command's log), with the time the chain has left."""
    record = chain.records[-1]
    left = arm.loop.generations - record.generation - 1
    seconds = [r.seconds for r in chain.records]
    log.info(
        "arm %s · replicate %d of %d · generation %d (%d of %d) · %.1f s · chain done in about %s",
        arm.name, (chain.replicate or 0) + 1, arm.loop.replicates, record.generation, record.generation + 1,
        arm.loop.generations, record.seconds, format_duration(left * sum(seconds) / len(seconds)),
    )


def warn_lost(where: str, generation: int, lost: tuple[str, ...]) -> None:
    log.warning(
        "arm %s · generation %d: the synthetic samples hold no %s (degraded run); counted in the labels drawn for the next training set, not in the classifier-corrected share of metrics.csv",
        where, generation, ", ".join(f"class {name!r}" for name in lost),
    )


def combine(results: Sequence[ChainResult]) -> list[GenerationRecord]:
    """One arm's records from its chains (ordered by replicate): generation g's values are the
    chains' values side by side, ``(R,)`` per key, over the generations every chain finished.
    With one chain its bootstrap intervals stay; with several they are dropped here (the
    across-replicate interval replaces them; ``bootstrap.csv`` keeps them)."""
    results = sorted(results, key=lambda result: result.replicate)
    finished = min(len(result.records) for result in results)
    if len(results) == 1:
        return results[0].records[:finished]
    combined = []
    for g in range(finished):
        records = [result.records[g] for result in results]
        keys = sorted(set().union(*(record.values for record in records)))
        values = {
            key: _stack([record.values.get(key) for record in records]) for key in keys
        }
        combined.append(GenerationRecord(g, values, sum(record.seconds for record in records)))
    return combined


def _stack(values: list) -> np.ndarray:
    """Chains' ``(1,)`` values side by side; a key one chain lacks is NaN there."""
    return np.concatenate([np.full(1, np.nan) if v is None else np.asarray(v, dtype=np.float64) for v in values])


BOOTSTRAP_COLUMNS = ("arm", "replicate", "generation", "group", "metric", "value", "boot_lo", "boot_hi")


def bootstrap_rows(results: Sequence[ChainResult]) -> list[dict]:
    """Rows of ``bootstrap.csv``: every chain's own value of every key with the measure's
    bootstrap interval over its evaluation samples (which describes that chain only)."""
    rows = []
    for result in sorted(results, key=lambda result: (result.arm, result.replicate)):
        for record in result.records:
            for key, interval in record.intervals.items():
                metric, group = key.split("/", 1)
                rows.append({
                    "arm": result.arm, "replicate": result.replicate, "generation": record.generation,
                    "group": group, "metric": metric, "value": float(record.values[key][0]),
                    "boot_lo": float(interval[0]), "boot_hi": float(interval[1]),
                })
    return rows

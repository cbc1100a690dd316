"""The independent chains of a deep-model arm: ``loop.replicates = R`` runs R self-consuming
loops per arm, each its own real draw, initialisation, label draws and training noise.

Chain r of every arm draws from the ``genfair.seeding`` children keyed by ``(g, stream, r)``
(replicate 0: the single chain of a one-replicate run), so replicate r of arm A and replicate r
of arm B share their random numbers (common random numbers, what makes paired differences
precise), and chain r is the same whatever R is.

Chains are independent, so they run as separate jobs: in this process one after another
(``workers = 1``), or in a pool of ``workers`` processes with one torch thread each. Why not one
batched computation (stacked weights under ``torch.func.vmap``)? Measured on 2 CPU cores with the
default VAE (batch 64): eight chains stepped one after another cost 8.1x one chain per step, and a
vmap over stacked weights does not run on models whose ``loss`` validates its labels or one-hot
encodes them (data-dependent control flow), which a user's model may well do; independent jobs
work for every model and use every core (see the replicates benchmark in ``docs/results/benchmarks.md``).

Where chain r lives: ``arms/<arm>/`` with one replicate (the layout of earlier runs, so they
resume), ``arms/<arm>/replicate_<r>/`` with several.
"""

from __future__ import annotations

import logging
import os
from logging.handlers import QueueHandler, QueueListener
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from genfair.loops import GenerationRecord
from genfair.seeding import child_seed

__all__ = [
    "BOOTSTRAP_COLUMNS", "ChainJob", "ChainResult", "bootstrap_rows", "chain_dir", "combine", "init_seed",
    "run_chains", "usable_cores",
]

log = logging.getLogger("genfair")


@dataclass(frozen=True)
class ChainJob:
    """One chain to run: ``arm`` (a :class:`genfair.experiment.Arm`), its ``replicate`` index,
    the root ``seed``, the run directory and the device name."""

    arm: object
    replicate: int
    seed: int
    run_dir: Path
    device: str = "cpu"


@dataclass(frozen=True)
class ChainResult:
    """What one chain produced: its finished generations' records (values ``(1,)`` per key,
    with the measure's bootstrap intervals), the classes its synthetic samples lost
    (``(generation, names)``), and its failure ``(generation, reason)`` if a generation broke."""

    arm: str
    replicate: int
    records: list[GenerationRecord]
    lost: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    failure: tuple[int, str] | None = None


def chain_dir(run_dir: Path, arm: str, replicate: int, replicates: int) -> Path:
    """Where chain ``replicate`` of ``arm`` keeps its generations (see the module docstring)."""
    base = Path(run_dir) / "arms" / arm
    return base if replicates == 1 else base / f"replicate_{replicate:02d}"


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_chains(
    jobs: Sequence[ChainJob], *, workers: int, run_one: Callable[[ChainJob], ChainResult]
) -> Iterator[ChainResult]:
    """Run ``jobs`` with ``run_one`` and yield each result as it finishes: in this process when
    ``workers == 1`` (or one job), else in a pool of ``min(workers, len(jobs))`` spawned processes
    with one torch thread each."""
    if workers == 1 or len(jobs) == 1:
        for job in jobs:
            yield run_one(job)
        return
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


def init_seed(seed: int, replicate: int) -> int:
    """The seed of chain ``replicate``'s initial weights (the same in every arm)."""
    return int(child_seed(seed, 0, "fit", replicate=replicate).generate_state(1)[0])


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

"""Run one or more arms of a self-consuming-loop experiment into a run directory.

This is what the ``genfair`` command does after Hydra has composed the config; it takes plain
dataclasses, so a notebook can call it directly. Every arm takes one path (see
:func:`run_experiment` and docs/architecture.md): its chains are built from its config
(``genfair._arm_parts``), run by ``genfair.loops.simulate`` (``genfair._chains``) and reported
in one place. Arms differ in what they build: an analytic model (Gaussian data, closed forms,
metrics against the known truth) holds every replicate at once, one chain; a deep model (VAE,
DDPM, a user's) on images holds one, a chain per replicate, measured by
``genfair.evaluation.ImageEvaluation`` with bootstrap intervals, with sample grids and the
"minority fidelity across generations" figure.

Faults (``summary.json`` ``status``):
  - ``failed``: an arm's generation raised :class:`~genfair.errors.GenerationFailed` (a NaN or
    infinite loss or parameter). That arm stops; its finished generations stay on disk and in
    ``metrics.csv``; summary.json records ``arms.<arm>.failure = {"generation", "reason"}``. The
    other arms still run (they are independent), then :func:`run_experiment` raises the first
    failure, naming its arm (the ``genfair`` command exits with status 3).
  - ``degraded``: some generation's synthetic samples lost a class in every replicate (see
    ``on_lost_classes`` in ``genfair.loops.simulate``); the run completes, logs a warning and records
    ``arms.<arm>.degraded = [{"generation": g, "lost": [...]}, ...]``.
  - ``complete``: neither.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genfair._arm import Arm
from genfair._arm_checks import check_arm, check_comparison
from genfair._arm_parts import batched, extra_metric_names, headline_metrics, minority, prepare_evaluations
from genfair._chains import (
    BOOTSTRAP_COLUMNS, ChainJob, ChainResult, bootstrap_rows, combine, log_chain_progress, run_chains, usable_cores,
)
from genfair._outputs import RunOutputs, write_metrics_csv, write_replicates
from genfair._run_dir import check_run_dir, fingerprint, versions
from genfair._run_figures import image_figures, metric_figures, write_comparisons
from genfair.comparisons import CompareConfig
from genfair.devices import resolve_device
from genfair.errors import ConfigError, GenerationFailed, check_positive_int
from genfair.factors import ArmFactorsConfig, place_arms
from genfair.progress import format_duration
from genfair.loops import GenerationRecord
from genfair.run_lock import hold_run_dir

__all__ = ["Arm", "ExperimentResult", "run_experiment"]

log = logging.getLogger("genfair")


@dataclass(frozen=True)
class ExperimentResult:
    run_dir: Path
    records: dict[str, list[GenerationRecord]]
    summary: dict[str, Any]


def run_experiment(
    arms: Sequence[Arm],
    *,
    seed: int,
    run_dir: Path,
    config: dict | None = None,
    device: str | torch.device = "auto",
    workers: int | None = 1,
    compare: CompareConfig | None = None,
    arm_factors: ArmFactorsConfig | None = None,
) -> ExperimentResult:
    """Run every arm's loop with the same root ``seed`` (common random numbers) into ``run_dir``.

    ``device``: where deep models (and their hypernetworks, training sets and samples) compute,
    ``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N`` (see
    ``genfair.devices``); analytic models always run on the CPU, where their batched closed forms
    are fast. Random draws come from CPU generators on any device.

    ``workers``: processes that run a deep experiment's chains (every arm's ``loop.replicates``
    independent chains, see ``genfair._chains``), each with one torch thread; 1 (default) runs
    them here one after another, ``None`` uses every core this process may run on. It does not
    change the results (each chain's random numbers depend only on the seed and its index).

    ``compare``: how the arms are compared (``genfair.comparisons``): every arm against
    ``compare.baseline`` (default the first arm), replicate by replicate, written to
    ``comparisons.csv`` with the declared primary endpoint first, in summary.json
    (``comparisons.primary``) and ``figures/paired_differences.png``. Done for every deep
    experiment with two or more arms and ``loop.replicates >= 2``; an analytic one (thousands of
    replicates, whose across-replicate intervals already answer) when ``compare.baseline`` is
    set. Naming a baseline with one replicate, or a baseline, metric or group that does not
    exist, is refused before any work. A deep run also draws ``figures/forest.png`` (the primary
    rows) and ``figures/change_from_generation_0.png`` (each arm's change per replicate). The
    device is recorded in summary.json but is not part of the fingerprint: a run may be resumed
    on another device (its later generations then round as that device does).

    ``arm_factors``: how the arms decompose into factors (``genfair.factors``), checked before
    any work; the minority-fidelity and change figures then draw one column per level of its
    facet and one colour per level of the other factors.

    The call holds ``run_dir``'s lock throughout (``genfair.run_lock``): a directory that another
    run holds is refused with ``RunDirInUse`` before anything is read or written.

    Everything is checked before any work. An arm whose generation fails stops there, the
    other arms run, and then the first failure is raised (see the module docstring). Results are rewritten after each generation; a run
    started again in the same directory resumes after the last finished generation of each arm,
    and refuses to run if the directory holds a different experiment (only ``loop.generations``
    may change, to extend a run, and ``loop.checkpoint_every``). With ``loop.checkpoint_every``,
    a deep arm killed inside a generation restarts that generation from its last checkpoint.

    Example:
        >>> arm = Arm("mle", GaussianData(), AnalyticModelConfig(name="gaussian"),
        ...           LoopConfig(generations=3, n_real=10, n_synthetic=10, replicates=500))
        >>> result = run_experiment([arm], seed=0, run_dir=Path(tmp_path))  # doctest: +SKIP
    """
    with hold_run_dir(run_dir):  # one writer per run directory, from its check to its last file (genfair.run_lock)
        # 1. Check everything before any work; each arm's model says how its replicates are laid out.
        models = _check_arms(arms, seed)
        device = resolve_device(device)
        compare = check_comparison(arms, compare)
        factors = place_arms(arm_factors, [arm.name for arm in arms]) if arm_factors is not None else None
        workers = usable_cores() if workers is None else check_positive_int("workers", workers)
        if any(batched(model) for model in models.values()):  # batched closed forms: fast on the CPU, every replicate at once
            device, workers = torch.device("cpu"), 1
        run_dir = Path(run_dir)
        identity = fingerprint(arms, seed)
        previous = check_run_dir(run_dir, identity)
        # 2. Prepare how each arm is measured, and claim the directory (so a kill leaves it resumable).
        evaluations = prepare_evaluations(arms)
        outputs = RunOutputs(run_dir, _header(arms, seed=seed, config=config, identity=identity, device=device,
                                              evaluation=evaluations[arms[0].name]))
        if previous is None:
            outputs.write()
        # 3. Run every arm's chains: one per replicate, or one for a model that holds them all.
        jobs = [
            ChainJob(arm, replicate, seed, run_dir, str(device), _earlier_lost(previous, arm.name, replicate))
            for arm in arms
            for replicate in ([None] if batched(models[arm.name]) else range(arm.loop.replicates))
        ]
        failures = _run_jobs(arms, jobs, outputs=outputs, evaluations=evaluations, workers=workers)
        # 4. Compare the arms, summarise and draw.
        comparisons = None
        if compare is not None and not failures:
            comparisons = write_comparisons(outputs.records, arms, compare, run_dir, seed=seed,
                                            minority=outputs.header["minority"])
        rows = outputs.finish(comparisons)
        metric_figures(run_dir, rows, outputs.header["headline_metrics"])
        if outputs.header["family"] == "images":
            image_figures(arms, rows, run_dir, minority=outputs.header["minority"], factors=factors, records=outputs.records)
        log.info("results in %s", run_dir)
        if failures:
            raise failures[0]
        return ExperimentResult(run_dir, outputs.records, outputs.summary)


def _check_arms(arms: Sequence[Arm], seed: int) -> dict[str, nn.Module]:
    """Each arm checked (``genfair._arm_checks``), with its initial model."""
    if not arms or len({arm.name for arm in arms}) != len(arms):
        raise ConfigError(f"arms must be a non-empty list with unique names, got {[arm.name for arm in arms]}")
    bad = [arm.name for arm in arms if not re.fullmatch(r"[A-Za-z0-9_.=-]+", arm.name)]
    if bad:  # arm names become directory names and the first part of "arm/metric/group" keys
        raise ConfigError(f"arm names may hold letters, digits and _ . = - only, got {bad}")
    check_positive_int("seed", seed, minimum=0)
    families = {arm.metric_family for arm in arms}
    if len(families) > 1 and "images" in families:
        raise ConfigError(f"arms mix deep models on images with analytic models ({sorted(families)}); run them apart")
    return {arm.name: check_arm(arm) for arm in arms}


def _header(arms: Sequence[Arm], *, seed: int, config: dict | None, identity: dict, device: torch.device,
            evaluation: Any) -> dict[str, Any]:
    """summary.json's fixed part: what the run is."""
    data = arms[0].data
    header = {
        "seed": seed,
        "config": config if config is not None else identity,
        "fingerprint": identity,
        "versions": versions(),
        "family": arms[0].metric_family,
        "device": str(device),
        "headline_metrics": headline_metrics(arms[0]),
        "groups": list(data.group_names),
        "minority": minority(data),
    }
    named = [extra_metric_names(arm) for arm in arms]
    extra = list(dict.fromkeys(name for names, _ in named for name in names))
    unit_interval = list(dict.fromkeys(name for _, names in named for name in names))
    if extra:  # a user's metrics: drawn like the headline ones; those in [0, 1] get logit-scale intervals
        header["headline_metrics"] += [name for name in extra if name not in header["headline_metrics"]]
        header["unit_interval_metrics"] = unit_interval
    classifier = evaluation.summary()
    if classifier is not None:
        header["classifier"] = classifier
    return header


def _earlier_lost(previous: dict | None, arm: str, replicate: int | None) -> tuple[dict, ...]:
    """The lost-class entries a previous run of this directory recorded for a chain: an arm's
    ``degraded`` for a batched chain, else its replicate's ``lost_by_replicate``."""
    earlier = ((previous or {}).get("arms") or {}).get(arm, {})
    if replicate is None:
        return tuple(earlier.get("degraded", []))
    return tuple((earlier.get("lost_by_replicate") or {}).get(str(replicate), []))


def _run_jobs(
    arms: Sequence[Arm], jobs: Sequence[ChainJob], *, outputs: RunOutputs, evaluations: Mapping[str, Any], workers: int,
) -> list[GenerationFailed]:
    """Run the chains and report what they yield, in one place: a generation of a chain run in
    this process (a one-chain arm's is reported, :func:`_report`; another's is logged), and each
    arm once its chains have ended. Returns the arms' failures."""
    by_name = {arm.name: arm for arm in arms}
    expected = {arm.name: sum(job.arm.name == arm.name for job in jobs) for arm in arms}
    results: dict[str, list[ChainResult]] = {arm.name: [] for arm in arms}
    failures: list[GenerationFailed] = []
    for result in run_chains(jobs, workers=workers, evaluations=evaluations):
        arm = by_name[result.arm]
        if not result.done:  # a generation finished
            if expected[arm.name] == 1:
                _report(outputs, arm, [result], progress=True)
            else:
                log_chain_progress(arm, result)
            continue
        results[arm.name].append(result)
        if result.replicate is not None:
            _log_chain_done(arm, result, results, arms, workers=workers, jobs=len(jobs))
        if len(results[arm.name]) < expected[arm.name]:
            continue
        failure = _report(outputs, arm, results[arm.name])
        if failure is not None:
            failures.append(failure)
        write_replicates(outputs.run_dir / "replicates.npz", outputs.records)
    if any(job.replicate is not None for job in jobs):
        rows = [row for name in results for row in bootstrap_rows(results[name])]
        write_metrics_csv(outputs.run_dir / "bootstrap.csv", rows, columns=BOOTSTRAP_COLUMNS)
    return failures


def _report(outputs: RunOutputs, arm: Arm, chains: list[ChainResult], *, progress: bool = False) -> GenerationFailed | None:
    """Write what ``arm``'s chains returned: their lost classes, their records (one arm's,
    combined across chains) and, once they have all finished, the first failure among them,
    which is returned. ``progress``: a generation of a one-chain arm, logged."""
    _record_lost(outputs, arm, chains)
    records = combine(chains)
    outputs.update(arm.name, records)
    if progress:
        _log_progress(arm, records[-1], outputs.header)
        return None
    failed = sorted((c.failure[0], c.replicate or 0, c.failure[1]) for c in chains if c.failure is not None)
    if not failed:
        return None
    generation, replicate, reason = failed[0]
    where = f" (replicate {replicate})" if arm.loop.replicates > 1 and len(chains) > 1 else ""
    failure = GenerationFailed(generation, reason + where, arm=arm.name)
    log.error("%s", failure)
    outputs.record_failure(arm.name, generation, reason + where)
    return failure


def _record_lost(outputs: RunOutputs, arm: Arm, chains: list[ChainResult]) -> None:
    """Report an arm's lost classes: ``degraded``, the generations whose synthetic samples lost a
    class in every chain, and for chains of one replicate each, per replicate
    (``lost_by_replicate``)."""
    if not any(chain.lost for chain in chains):
        return
    if len(chains) == 1 and chains[0].replicate is None:  # a batched chain reports a class lost in every replicate
        outputs.record_lost(arm.name, chains[0].lost)
        return
    lost = {chain.replicate: chain.lost for chain in chains}
    sets = [{(e["generation"], name) for e in lost.get(r, []) for name in e["lost"]} for r in range(arm.loop.replicates)]
    by_generation: dict[int, list[str]] = {}
    for generation, name in sorted(set.intersection(*sets)):
        by_generation.setdefault(generation, []).append(name)
    degraded = [{"generation": g, "lost": names} for g, names in sorted(by_generation.items())]
    outputs.record_lost(arm.name, degraded, by_replicate=lost)


def _log_chain_done(arm: Arm, result: ChainResult, results: Mapping[str, list[ChainResult]], arms: Sequence[Arm], *,
                    workers: int, jobs: int) -> None:
    finished = sum(len(chains) for chains in results.values())
    log.info(
        "arm %s · replicate %d of %d · %d generations · %.1f s · %d of %d chains done%s",
        arm.name, result.replicate + 1, arm.loop.replicates, len(result.records),
        sum(record.seconds for record in result.records), finished, jobs,
        f" · run done in about {format_duration(_time_left(arms, results, workers))}" if finished < jobs else "",
    )


def _time_left(arms: Sequence[Arm], results: Mapping[str, list[ChainResult]], workers: int) -> float:
    """Seconds until every chain has run, estimated from the chains that have: each chain left
    takes its arm's mean so far (an arm with none finished: the slowest arm's), ``workers`` at a
    time."""
    took = {
        name: float(np.mean([sum(record.seconds for record in chain.records) for chain in chains]))
        for name, chains in results.items() if chains
    }
    slowest = max(took.values())
    left = [took.get(arm.name, slowest) for arm in arms for _ in range(arm.loop.replicates - len(results[arm.name]))]
    return sum(left) / max(min(workers, len(left)), 1)


def _log_progress(arm: Arm, record: GenerationRecord, header: dict) -> None:
    shown = []
    for key, values in record.values.items():
        metric, group = key.split("/", 1)
        if metric in header["headline_metrics"][:2] and group == header["minority"]:
            mean = float("nan") if np.isnan(values).all() else float(np.nanmean(values))
            if key in record.intervals:
                lo, hi = record.intervals[key]
                shown.append(f"{key} {mean:.3g} [{lo:.3g}, {hi:.3g}]")
            else:
                shown.append(f"{key} mean {mean:.4g}")
    log.info(
        "arm %s · generation %d (%d of %d) · %.3f s · %s",  # 0-based, like metrics.csv and arms/
        arm.name, record.generation, record.generation + 1, arm.loop.generations, record.seconds, ", ".join(shown),
    )

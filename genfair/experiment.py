"""Run one or more arms of a self-consuming-loop experiment into a run directory.

This is what the ``genfair`` command does after Hydra has composed the config; it takes plain
dataclasses, so a notebook can call it directly. Two families of arms:

  - ``analytic``: Gaussian data and models refit in closed form (or by the estimators of
    ``genfair.estimators``), many replicates at once, metrics against the known truth;
  - ``images``: a deep model (``VAEConfig``, ``DDPMConfig``) on real images (``DigitsData``,
    ``ImageFileData``), one replicate, measured by ``genfair.evaluation.ImageEvaluation`` with
    bootstrap intervals; sample grids per generation and the "minority fidelity across
    generations" figure.

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

import dataclasses
import json
import logging
import math
import os
import platform
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genfair._chains import (
    BOOTSTRAP_COLUMNS,
    ChainJob,
    ChainResult,
    bootstrap_rows,
    chain_dir,
    combine,
    init_seed,
    run_chains,
    usable_cores,
)
from genfair._outputs import RunOutputs, write_metrics_csv, write_minority_table, write_replicates
from genfair.comparisons import (
    CompareConfig,
    changes_from_generation_0,
    check_compare,
    paired_comparisons,
    write_comparisons_csv,
)
from genfair.factors import ArmFactors, ArmFactorsConfig, place_arms
from genfair.checkpoint import check_writable_dir, load_tensors, read_json, save_tensors, write_json
from genfair.data import ClassMixtureData, CustomData, DigitsData, GaussianData, ImageFileData
from genfair.devices import resolve_device
from genfair.errors import ConfigError, GenerationFailed, check_positive_int
from genfair.estimators import EstimatorConfig, build_fit
from genfair.evaluation import EvaluationConfig, ImageEvaluation
from genfair.metrics import class_gaussian_metrics, load_or_train_classifier
from genfair.models import (
    AdversarialTraining,
    AnalyticModelConfig,
    BiasedSampler,
    ClosedFormFit,
    CustomModelConfig,
    DDPMConfig,
    GenerativeModel,
    VAEConfig,
    build_analytic_model,
    build_model,
    check_model_protocol,
    save_model,
)
from genfair.plots import (
    save_change_figure,
    save_fidelity_figure,
    save_forest_figure,
    save_metric_figure,
    save_paired_figure,
    save_sample_grid,
    save_samples_across_generations,
)
from genfair.progress import format_duration
from genfair.remedies import RemedyConfig
from genfair.run_lock import holds_run_dir
from genfair.loops import (
    ClassifierVerifier,
    GenerationRecord,
    LoopConfig,
    RunStore,
    Verifier,
    check_curation,
    check_label_policy,
    gaussian_verifier,
    simulate,
    training_set_size,
)

__all__ = ["Arm", "ExperimentResult", "run_experiment"]

log = logging.getLogger("genfair")

HEADLINE = {
    "gaussian": ["w2_sq", "trace_cov", "mean_sq_err"],
    "class_mixture": ["share", "extinct", "w2_sq", "trace_cov"],
    "images": ["share", "precision", "recall", "coverage", "density", "fd", "kid", "train_share"],
}
IMAGE_SOURCES = (DigitsData, ImageFileData, CustomData)


@dataclass(frozen=True)
class Arm:
    """One arm of an experiment: the data, the model, the loop it runs, its estimator, the
    fairness remedy of its training and, for deep models on images, how its generations are
    measured."""

    name: str
    data: GaussianData | ClassMixtureData | DigitsData | ImageFileData | CustomData
    model: AnalyticModelConfig | VAEConfig | DDPMConfig | CustomModelConfig
    loop: LoopConfig
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    remedy: RemedyConfig = field(default_factory=RemedyConfig)

    @property
    def family(self) -> str:
        """``gaussian`` or ``class_mixture`` (analytic), or ``images`` (a deep model)."""
        return self.model.name if isinstance(self.model, AnalyticModelConfig) else "images"


@dataclass(frozen=True)
class ExperimentResult:
    run_dir: Path
    records: dict[str, list[GenerationRecord]]
    summary: dict[str, Any]


@holds_run_dir  # one writer per run directory, from its check to its last file (genfair.run_lock)
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
    if not arms or len({arm.name for arm in arms}) != len(arms):
        raise ConfigError(f"arms must be a non-empty list with unique names, got {[arm.name for arm in arms]}")
    bad = [arm.name for arm in arms if not re.fullmatch(r"[A-Za-z0-9_.=-]+", arm.name)]
    if bad:  # arm names become directory names and the first part of "arm/metric/group" keys
        raise ConfigError(f"arm names may hold letters, digits and _ . = - only, got {bad}")
    check_positive_int("seed", seed, minimum=0)
    device = resolve_device(device)
    families = {arm.family for arm in arms}
    if len(families) > 1 and "images" in families:
        raise ConfigError(f"arms mix deep models on images with analytic models ({sorted(families)}); run them apart")
    for arm in arms:
        _check_arm(arm)
    if arms[0].family != "images":
        device = torch.device("cpu")
    compare = _check_comparison(arms, compare)
    factors = place_arms(arm_factors, [arm.name for arm in arms]) if arm_factors is not None else None
    models = {arm.name: _build(arm, seed).to(device) for arm in arms if arm.family != "images"}
    workers = usable_cores() if workers is None else check_positive_int("workers", workers)
    run_dir = Path(run_dir)
    fingerprint = _fingerprint(arms, seed)
    previous = _check_run_dir(run_dir, fingerprint)
    fresh = previous is None
    family = arms[0].family
    data = arms[0].data
    header: dict[str, Any] = {
        "seed": seed,
        "config": config if config is not None else fingerprint,
        "fingerprint": fingerprint,
        "versions": _versions(),
        "family": family,
        "device": str(device),
        "headline_metrics": HEADLINE[family],
        "groups": list(data.group_names),
        "minority": _minority(data),
    }
    evaluations = _evaluations(arms) if family == "images" else {}
    if evaluations:
        header["classifier"] = _classifier_summary(next(iter(evaluations.values())))
    outputs = RunOutputs(run_dir, header)
    if fresh:  # claim the directory before the first generation, so a kill leaves it resumable
        outputs.write()
    if family == "images":
        failures = _run_image_arms(
            arms, seed=seed, run_dir=run_dir, outputs=outputs, evaluations=evaluations, previous=previous,
            device=device, workers=workers,
        )
    else:
        failures = []
        for arm in arms:
            earlier = ((previous or {}).get("arms") or {}).get(arm.name, {})
            degraded = list(earlier.get("degraded", []))
            try:
                _run_arm(arm, models[arm.name], seed=seed, run_dir=run_dir, outputs=outputs, degraded=degraded)
            except GenerationFailed as error:
                failures.append(_arm_failed(arm.name, error.generation, error.reason, outputs))
            write_replicates(run_dir / "replicates.npz", outputs.records)
    comparisons = None
    if compare is not None and not failures:
        comparisons = _write_comparisons(outputs, arms, compare, run_dir, seed)
    rows = outputs.finish(comparisons)
    for metric in header["headline_metrics"]:
        save_metric_figure(run_dir / "figures" / f"{metric}.png", [("", rows)], metric=metric)
    if family == "images":
        _image_figures(arms, rows, run_dir, minority=header["minority"], factors=factors, outputs=outputs)
    log.info("results in %s", run_dir)
    if failures:
        raise failures[0]
    return ExperimentResult(run_dir, outputs.records, outputs.summary)


def _run_arm(
    arm: Arm,
    model,
    *,
    seed: int,
    run_dir: Path,
    outputs: RunOutputs,
    degraded: list[dict],
) -> list[GenerationRecord]:
    """Run one analytic arm's loop (all its replicates at once); ``degraded``: the lost-class
    entries a previous run of this directory recorded (those of generations this run restores
    are kept)."""
    data, names = arm.data, arm.data.group_names

    def measure(fitted, train, generator):
        return class_gaussian_metrics(
            fitted,
            true_means=data.true_means(),
            true_covariances=data.true_covariances(),
            counts=train.class_counts(len(names)),
            classes=names,
        )

    def on_generation(finished: list[GenerationRecord]) -> None:
        outputs.update(arm.name, finished)
        _log_progress(arm, finished[-1], outputs.header)

    def on_lost_classes(generation: int, lost: tuple[str, ...]) -> None:
        _warn_lost(arm.name, generation, lost)
        degraded.append({"generation": generation, "lost": list(lost)})
        outputs.record_lost(arm.name, degraded)  # written with the generation

    store = RunStore(run_dir / "arms" / arm.name, keep_all_synthetic=arm.loop.kind == "accumulate")
    done = len(store.finished())
    if done:
        log.info("arm %s: resuming after generation %d", arm.name, done - 1)
    degraded[:] = [entry for entry in degraded if entry["generation"] < min(done, arm.loop.generations)]
    if degraded:
        outputs.record_lost(arm.name, degraded)
    fit = build_fit(
        arm.estimator,
        sample_shape=data.sample_shape,
        num_classes=len(names),
        positive=getattr(model, "CONSTRAINTS", {}),
        per_replicate=getattr(model, "PER_REPLICATE", False),
        closed_form=isinstance(model, ClosedFormFit),
        remedy=arm.remedy,
        classes=len(names),
        minority=list(names).index(_minority(data)),
    )
    try:
        result = simulate(
            data=data, model=model, config=arm.loop, seed=seed, measure=measure, fit=fit, store=store,
            on_generation=on_generation, on_lost_classes=on_lost_classes, verifier=_verifier(arm),
        )
    except GenerationFailed:
        # Report the finished generations, also those restored by a resumed run that failed at its
        # first new generation (on_generation never fired); this reloads the last good weights.
        outputs.update(arm.name, store.resume(model, limit=arm.loop.generations)[0])
        raise
    outputs.update(arm.name, result.records)  # an arm finished before a restart runs no generation, so on_generation never fires
    return result.records


def _run_image_arms(
    arms: Sequence[Arm],
    *,
    seed: int,
    run_dir: Path,
    outputs: RunOutputs,
    evaluations: dict[str, ImageEvaluation],
    previous: dict | None,
    device: torch.device,
    workers: int,
) -> list[GenerationFailed]:
    """Run every deep arm's chains (see ``genfair._chains``) and report each arm when its chains
    have finished: ``metrics.csv`` across replicates, ``bootstrap.csv`` per chain, lost classes
    and failures in the summary. With one chain per arm and ``workers = 1`` every generation is
    reported as it finishes."""
    by_name = {arm.name: arm for arm in arms}
    lost: dict[str, dict[int, list[dict]]] = {arm.name: {} for arm in arms}
    for arm in arms:  # a restarted run keeps the lost classes of the generations it restores
        earlier = ((previous or {}).get("arms") or {}).get(arm.name, {})
        for replicate, entries in (earlier.get("lost_by_replicate") or {}).items():
            directory = chain_dir(run_dir, arm.name, int(replicate), arm.loop.replicates)
            done = len(RunStore(directory, keep_all_synthetic=False).finished())
            lost[arm.name][int(replicate)] = [e for e in entries if e["generation"] < min(done, arm.loop.generations)]
    jobs = [ChainJob(arm, r, seed, run_dir, str(device)) for arm in arms for r in range(arm.loop.replicates)]
    if workers == 1:
        def run_one(job: ChainJob) -> ChainResult:
            arm = job.arm
            report = _report_generation(arm, outputs, lost[arm.name]) if arm.loop.replicates == 1 else None
            return _run_chain(job, evaluation=evaluations[_evaluation_key(arm)], on_generation=report)
    else:
        run_one = _run_chain
    results: dict[str, list[ChainResult]] = {arm.name: [] for arm in arms}
    failures: list[GenerationFailed] = []
    for result in run_chains(jobs, workers=workers, run_one=run_one):
        arm = by_name[result.arm]
        entries = lost[arm.name].setdefault(result.replicate, [])
        known = {entry["generation"] for entry in entries}
        entries.extend({"generation": g, "lost": list(names)} for g, names in result.lost if g not in known)
        results[arm.name].append(result)
        finished = sum(len(chains) for chains in results.values())
        log.info(
            "arm %s · replicate %d of %d · %d generations · %.1f s · %d of %d chains done%s",
            arm.name, result.replicate + 1, arm.loop.replicates, len(result.records),
            sum(record.seconds for record in result.records), finished, len(jobs),
            f" · run done in about {format_duration(_time_left(arms, results, workers))}" if finished < len(jobs) else "",
        )
        if len(results[arm.name]) < arm.loop.replicates:
            continue
        chains = results[arm.name]
        _record_lost(arm, lost[arm.name], outputs)
        outputs.update(arm.name, combine(chains))
        failed = sorted((r.failure[0], r.replicate, r.failure[1]) for r in chains if r.failure is not None)
        if failed:
            generation, replicate, reason = failed[0]
            where = f" (replicate {replicate})" if arm.loop.replicates > 1 else ""
            failures.append(_arm_failed(arm.name, generation, reason + where, outputs))
        write_replicates(run_dir / "replicates.npz", outputs.records)
    rows = [row for name in results for row in bootstrap_rows(results[name])]
    write_metrics_csv(run_dir / "bootstrap.csv", rows, columns=BOOTSTRAP_COLUMNS)
    return failures


def _report_generation(arm: Arm, outputs: RunOutputs, lost: dict[int, list[dict]]):
    """The per-generation report of a one-chain arm run in this process."""

    def report(finished: list[GenerationRecord], new_lost: list[tuple[int, tuple[str, ...]]]) -> None:
        entries = lost.setdefault(0, [])
        known = {entry["generation"] for entry in entries}
        entries.extend({"generation": g, "lost": list(names)} for g, names in new_lost if g not in known)
        _record_lost(arm, lost, outputs)
        outputs.update(arm.name, finished)
        _log_progress(arm, finished[-1], outputs.header)

    return report


def _record_lost(arm: Arm, lost: dict[int, list[dict]], outputs: RunOutputs) -> None:
    """Report a deep arm's lost classes: per replicate (``lost_by_replicate``), and ``degraded``,
    the generations whose synthetic samples lost a class in every chain."""
    if not any(lost.values()):
        return
    chains = [{(e["generation"], name) for e in lost.get(r, []) for name in e["lost"]} for r in range(arm.loop.replicates)]
    everywhere = set.intersection(*chains) if chains else set()
    by_generation: dict[int, list[str]] = {}
    for generation, name in sorted(everywhere):
        by_generation.setdefault(generation, []).append(name)
    degraded = [{"generation": g, "lost": names} for g, names in sorted(by_generation.items())]
    outputs.record_lost(arm.name, degraded, by_replicate=lost)


def _run_chain(
    job: ChainJob,
    *,
    evaluation: ImageEvaluation | None = None,
    on_generation: Callable[[list[GenerationRecord], list[tuple[int, tuple[str, ...]]]], None] | None = None,
) -> ChainResult:
    """Run chain ``job.replicate`` of a deep arm (in this process or a worker's): build its model
    from the chain's initialisation seed, fit, measure and sample every generation, and save its
    last model; sample grids come from replicate 0."""
    arm, replicate = job.arm, job.replicate
    data, names = arm.data, arm.data.group_names
    if evaluation is None:  # a worker: the classifier is cached by the run that started it
        evaluation = ImageEvaluation.prepare(data, arm.evaluation, conditional=arm.model.conditional)
    device = torch.device(job.device)
    directory = chain_dir(job.run_dir, arm.name, replicate, arm.loop.replicates)
    with torch.random.fork_rng(devices=[]):  # the initial weights: the same in every arm
        torch.manual_seed(init_seed(job.seed, replicate))
        model = build_model(arm.model, sample_shape=data.sample_shape, num_classes=len(names)).to(device)
    fit = build_fit(
        arm.estimator,
        sample_shape=data.sample_shape,
        num_classes=len(names) if model.num_classes is not None else None,
        positive=getattr(model, "CONSTRAINTS", {}),
        per_replicate=getattr(model, "PER_REPLICATE", False),
        closed_form=isinstance(model, ClosedFormFit),
        adversarial=isinstance(model, AdversarialTraining) and not isinstance(model, GenerativeModel),
        remedy=arm.remedy,
        classes=len(names),
        minority=list(names).index(_minority(data)),
        features=evaluation.classifier.model.features,
    )
    lost: list[tuple[int, tuple[str, ...]]] = []
    reported = 0

    def after_generation(finished: list[GenerationRecord]) -> None:
        nonlocal reported
        record = finished[-1]
        grid = record.artifacts["measure"].get("grid")
        if replicate == 0 and grid is not None:
            _save_grid(job.run_dir, arm.name, record.generation, grid.cpu(), names)
        if record.artifacts["fit"]:  # Group DRO's class weights after every step
            write_json(
                directory / "remedy" / f"generation_{record.generation:04d}.json",
                {"remedy": arm.remedy.name, "classes": list(names), **record.artifacts["fit"]},
            )
        if on_generation is not None:
            on_generation(finished, lost[reported:])
            reported = len(lost)
        else:  # a chain of several, or one in a worker: a line per generation (a worker's reaches the command's log)
            left = arm.loop.generations - record.generation - 1
            seconds = [r.seconds for r in finished]
            log.info(
                "arm %s · replicate %d of %d · generation %d (%d of %d) · %.1f s · chain done in about %s",
                arm.name, replicate + 1, arm.loop.replicates, record.generation, record.generation + 1,
                arm.loop.generations, record.seconds, format_duration(left * sum(seconds) / len(seconds)),
            )

    def on_lost_classes(generation: int, names_lost: tuple[str, ...]) -> None:
        _warn_lost(f"{arm.name}" + (f" replicate {replicate}" if arm.loop.replicates > 1 else ""), generation, names_lost)
        lost.append((generation, names_lost))

    store = RunStore(directory, keep_all_synthetic=arm.loop.kind == "accumulate")
    done = len(store.finished())
    if done:
        log.info("arm %s replicate %d: resuming after generation %d", arm.name, replicate, done - 1)
    try:
        result = simulate(
            data=data, model=model, config=dataclasses.replace(arm.loop, replicates=1), seed=job.seed,
            measure=evaluation.measure, fit=fit, store=store, on_generation=after_generation,
            label_synthetic=evaluation.labeller, on_lost_classes=on_lost_classes, replicate=replicate,
            verifier=_verifier(arm),
        )
    except GenerationFailed as error:
        records = store.resume(model, limit=arm.loop.generations)[0]
        if on_generation is not None and records:
            on_generation(records, lost[reported:])
        return ChainResult(arm.name, replicate, records, lost, (error.generation, error.reason))
    if on_generation is not None and result.records and not reported and done:
        on_generation(result.records, [])  # a chain finished before a restart runs no generation
    model_dir = directory / "model" if arm.loop.replicates > 1 else job.run_dir / "arms" / arm.name / "model"
    save_model(model_dir, result.model, arm.model, sample_shape=data.sample_shape)  # the last generation's model (genfair.models.load_model)
    return ChainResult(arm.name, replicate, result.records, lost)


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


def _arm_failed(name: str, generation: int, reason: str, outputs: RunOutputs) -> GenerationFailed:
    failure = GenerationFailed(generation, reason, arm=name)
    log.error("%s", failure)
    outputs.record_failure(name, generation, reason)
    return failure


def _warn_lost(where: str, generation: int, lost: tuple[str, ...]) -> None:
    log.warning(
        "arm %s · generation %d: the synthetic samples hold no %s (degraded run); counted in the labels drawn for the next training set, not in the classifier-corrected share of metrics.csv",
        where, generation, ", ".join(f"class {name!r}" for name in lost),
    )


# What each family's measure reports (the metric part of its "metric/group" keys), for checking a
# declared primary endpoint before the run.
MEASURED = {
    "images": ("share", "share_raw", "precision", "recall", "density", "coverage", "fd", "kid", "train_share",
               "representation_ratio", "fairness_discrepancy"),
    "gaussian": ("mean_sq_err", "trace_cov", "w2_sq", "share", "extinct"),
    "class_mixture": ("mean_sq_err", "trace_cov", "w2_sq", "share", "extinct"),
}  # fmt: skip


def _check_comparison(arms: Sequence[Arm], compare: CompareConfig | None) -> CompareConfig | None:
    """The comparison this run makes (``None``: none), checked before any work."""
    requested = compare is not None and compare.baseline is not None
    compare = compare or CompareConfig()
    replicates = {arm.loop.replicates for arm in arms}
    if len(arms) < 2 and (not requested or compare.baseline == arms[0].name):
        return None  # one arm: nothing to compare it with
    if not requested and (arms[0].family != "images" or min(replicates) < 2):
        return None
    if len(replicates) > 1:
        raise ConfigError(f"paired comparisons need every arm to run the same loop.replicates, got {sorted(replicates)}")
    check_compare(compare, [arm.name for arm in arms], replicates.pop())
    family, data = arms[0].family, arms[0].data
    if compare.primary_metric not in MEASURED[family]:
        raise ConfigError(
            f"compare.primary_metric must be one of {list(MEASURED[family])} (what a {family} run measures), "
            f"got {compare.primary_metric!r}"
        )
    groups = ["minority", "all", *data.group_names]
    if compare.primary_group not in groups:
        raise ConfigError(f"compare.primary_group must be one of {groups}, got {compare.primary_group!r}")
    last = min(arm.loop.generations for arm in arms) - 1
    if compare.relative_to == "generation_0" and compare.primary_first > last:
        raise ConfigError(
            f"compare.primary_first must be a generation after 0 that the run measures (1..{last}) with "
            f"compare.relative_to 'generation_0', got {compare.primary_first}"
        )
    return compare


def _write_comparisons(outputs: RunOutputs, arms: Sequence[Arm], compare: CompareConfig, run_dir: Path, seed: int) -> dict:
    """Write comparisons.csv and its figure; return the summary's ``comparisons`` entry, the
    primary endpoint first (see :func:`run_experiment`)."""
    generations, values = _replicate_values(outputs, arms)
    try:
        result = paired_comparisons(
            values, generations=generations, minority=outputs.header["minority"], config=compare,
            arms=[arm.name for arm in arms], seed=seed,
        )
    except ConfigError as error:  # what the values hold (an arm lost generation 0 in every chain): the run stands
        log.error("comparisons.csv not written: %s", error)
        return {"error": str(error), "file": None}
    write_comparisons_csv(run_dir / "comparisons.csv", result)
    shown = [m for m in ("coverage", "recall", "precision", "share") if f"{m}/{result.group}" in values[arms[0].name]]
    save_paired_figure(run_dir / "figures" / "paired_differences.png", result, metrics=shown or [compare.primary_metric],
                       group=result.group, title=f"class {result.group}: paired differences to {result.baseline}")
    if arms[0].family == "images":
        save_forest_figure(run_dir / "figures" / "forest.png", list(result.primary.values()))
    replicates = arms[0].loop.replicates
    form = " change from generation 0" if compare.relative_to == "generation_0" else ""
    for arm, row in result.primary.items():
        log.info(
            "primary endpoint %s/%s%s over generations %s: %s - %s = %+.3g [%.3g, %.3g], sign-flip p = %.3g (n = %d of %d replicates)",
            row["metric"], row["group"], form, row["generation"], arm, result.baseline, row["mean_diff"], row["lo"],
            row["hi"], row["p_signflip"], row["n"], replicates,
        )
    return {
        "baseline": result.baseline,
        "relative_to": compare.relative_to,
        "primary": {arm: {k: v for k, v in row.items() if k not in ("endpoint",)} for arm, row in result.primary.items()},
        **({"start": result.start} if result.start else {}),
        "adjustment": "Holm (p_*_holm) and Benjamini-Hochberg (q_*_bh) over every exploratory cell, and over the primary rows",
        "file": "comparisons.csv",
    }


def _replicate_values(outputs: RunOutputs, arms: Sequence[Arm]) -> tuple[list[int], dict[str, dict[str, np.ndarray]]]:
    """The generations every arm finished and ``values[arm]["metric/group"]`` ``(G, R)``, the
    replicates' values (:func:`genfair.comparisons.paired_comparisons`'s input)."""
    records = {arm.name: outputs.records.get(arm.name, []) for arm in arms}
    finished = min(len(chain) for chain in records.values())  # 0 when an arm failed in generation 0
    generations = [record.generation for record in records[arms[0].name][:finished]]
    values = {
        name: {key: np.stack([r.values[key] for r in chain[:finished]]) for key in chain[0].values}
        for name, chain in records.items()
    } if finished else {}  # fmt: skip
    return generations, values


def _check_arm(arm: Arm) -> None:
    """Data and model must belong to the same family, and the model must have what the loop
    asks of it (biased sampling), before anything is written."""
    images = isinstance(arm.data, IMAGE_SOURCES)
    if isinstance(arm.data, CustomData):
        arm.data.check()  # the user's source has what the runner asks of it, before any work
    if arm.family == "images" and not images:
        raise ConfigError(
            f"model={arm.model.name} needs image data (data=digits, data=image_files or data=custom), "
            f"got {type(arm.data).__name__} (in arm {arm.name!r})"
        )
    if arm.family != "images" and images:
        raise ConfigError(
            f"model={arm.model.name} is an analytic model for data=gaussian or data=class_mixture; "
            f"for {type(arm.data).__name__} use model=vae or model=ddpm (in arm {arm.name!r})"
        )
    if arm.family != "images" and arm.remedy.name != "none" and arm.loop.replicates != 1:
        raise ConfigError(
            f"remedy={arm.remedy.name} trains one replicate at a time: set loop.replicates=1 for an analytic "
            f"model (a deep model's replicates are separate chains and take any remedy), got "
            f"{arm.loop.replicates} (in arm {arm.name!r})"
        )
    if arm.family == "images":  # a real draw larger than the training pools fails here, not mid-run
        arm.data.draw(1, arm.loop.n_real, generator=torch.Generator().manual_seed(0))
        classes = len(arm.data.group_names)
        model = build_model(arm.model, sample_shape=arm.data.sample_shape, num_classes=classes)
        check_model_protocol(
            model, estimator=arm.estimator.name, uses_hypernetwork=arm.estimator.uses_hypernetwork,
            remedy=arm.remedy.name, num_classes=classes if arm.model.conditional else None, where=f" (in arm {arm.name!r})",
        )
    else:
        model = _build(arm, 0)
    if arm.loop.sampling_bias != 1.0 and not isinstance(model, BiasedSampler):
        raise ConfigError(
            f"loop.sampling_bias={arm.loop.sampling_bias} needs a model with biased sampling; "
            f"model={arm.model.name} ({type(model).__name__}) has none: use loop.sampling_bias=1.0 (in arm {arm.name!r})"
        )
    # The label policy and the curation (simulate checks them too, but only when the arm starts).
    relabelled = arm.family == "images" and not (arm.model.conditional and arm.evaluation.synthetic_labels != "classifier")
    try:
        check_label_policy(arm.loop, num_classes=len(arm.data.group_names), relabelled=relabelled)
        check_curation(arm.loop, replicates=1 if arm.family == "images" else arm.loop.replicates,
                       relabelled=relabelled, has_verifier=True)
    except ConfigError as error:
        raise ConfigError(f"{error} (in arm {arm.name!r})") from None
    if arm.family == "images" and arm.loop.curation.rule != "none" and _verifier_config(arm) == arm.evaluation.classifier:
        raise ConfigError(
            f"loop.curation.verifier_seed={arm.loop.curation.verifier_seed} and verifier_width="
            f"{arm.loop.curation.verifier_width} rebuild the evaluation classifier (evaluation.classifier): the "
            f"verifier must differ from it in seed or width (in arm {arm.name!r})"
        )
    _check_memory(arm)


def _verifier_config(arm: Arm):
    """The deep arms' verifier: the evaluation classifier's design with ``loop.curation``'s seed and width."""
    curation = arm.loop.curation
    return dataclasses.replace(arm.evaluation.classifier, seed=curation.verifier_seed, width=curation.verifier_width)


def _verifier(arm: Arm) -> Verifier | None:
    """What ``loop.curation`` keeps samples by: ``None`` without curation; the fitted class Gaussians
    for analytic models; for deep models a classifier trained once on the real training pool,
    separate from the evaluation classifier (see :func:`_verifier_config`), cached under its own key."""
    if arm.loop.curation.rule == "none":
        return None
    if arm.family != "images":
        return gaussian_verifier
    trained = load_or_train_classifier(arm.data, config=_verifier_config(arm), cache_dir=arm.evaluation.cache_dir)
    return ClassifierVerifier(trained.model.logits)


def _check_memory(arm: Arm) -> None:
    """Refuse sizes whose largest training set (float64, and d x d per sample for the analytic
    fit's outer products) alone would exceed this machine's memory, before anything is written."""
    loop = arm.loop
    n = max(training_set_size(loop, g) for g in range(loop.generations))
    per_sample = math.prod(arm.data.sample_shape)
    if arm.family != "images":
        per_sample *= per_sample + 1
    needed = 8 * loop.replicates * n * per_sample  # a deep arm's chains hold theirs each
    available = _physical_memory()
    if available is not None and needed > available:
        raise ConfigError(
            f"loop.replicates={loop.replicates} x {n} samples (loop.n_real={loop.n_real}, "
            f"loop.n_synthetic={loop.n_synthetic}, loop.kind={loop.kind}) of shape {tuple(arm.data.sample_shape)} "
            f"need about {needed / 2**30:.3g} GiB per training set, more than this machine's "
            f"{available / 2**30:.3g} GiB of memory; lower loop.n_real, loop.n_synthetic or loop.replicates "
            f"(in arm {arm.name!r})"
        )


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX
        return None


def _build(arm: Arm, seed: int):
    """An analytic arm's model (a deep arm's chains build their own, see :func:`_run_chain`)."""
    return build_analytic_model(arm.model, data=arm.data, replicates=arm.loop.replicates, n_real=arm.loop.n_real)


def _evaluation_key(arm: Arm) -> str:
    described = {"data": dataclasses.asdict(arm.data), "evaluation": dataclasses.asdict(arm.evaluation)}
    return json.dumps({**described, "conditional": getattr(arm.model, "conditional", False)}, sort_keys=True)


def _evaluations(arms: Sequence[Arm]) -> dict[str, ImageEvaluation]:
    """One evaluation per distinct (data, evaluation, conditional) among the arms."""
    evaluations: dict[str, ImageEvaluation] = {}
    for arm in arms:
        key = _evaluation_key(arm)
        if key not in evaluations:
            evaluations[key] = ImageEvaluation.prepare(arm.data, arm.evaluation, conditional=arm.model.conditional)
    return evaluations


def _classifier_summary(evaluation: ImageEvaluation) -> dict[str, Any]:
    trained = evaluation.classifier
    return {
        "heldout_accuracy": float(trained.heldout_accuracy),
        "per_class_accuracy": [float(a) for a in trained.per_class_accuracy],
        "confusion": [[int(c) for c in row] for row in trained.confusion.tolist()],
    }


def _save_grid(run_dir: Path, arm: str, generation: int, grid: torch.Tensor, names: Sequence[str]) -> None:
    path = run_dir / "samples" / arm / f"generation_{generation:04d}"
    save_tensors(path.with_suffix(".safetensors"), {"grid": grid.contiguous()})
    save_sample_grid(path.with_suffix(".png"), grid, row_labels=list(names), title=f"{arm}, generation {generation}")


def _image_figures(
    arms: Sequence[Arm], rows: list[dict], run_dir: Path, *, minority: str, factors: ArmFactors | None, outputs: RunOutputs
) -> None:
    """The "minority fidelity across generations" figure (small multiples with ``factors``), each
    arm's change from generation 0, the arms' minority table and each arm's samples across
    generations."""
    data = arms[0].data
    shares = list(data.shares)
    majority = data.group_names[max(range(len(shares)), key=shares.__getitem__)]
    save_fidelity_figure(
        run_dir / "figures" / "minority_fidelity.png",
        rows,
        minority=minority,
        majority=majority,
        target_share=shares[list(data.group_names).index(minority)],
        title=f"minority fidelity across generations (class {minority}; bands: {_band(arms)})",
        factors=factors,
    )
    generations, values = _replicate_values(outputs, arms)
    metrics = [m for m in ("share", "precision", "recall", "coverage") if f"{m}/{minority}" in values.get(arms[0].name, {})]
    if 0 in generations and metrics:
        save_change_figure(run_dir / "figures" / "change_from_generation_0.png",
                           changes_from_generation_0(values, generations=generations), group=minority, metrics=metrics,
                           factors=factors)  # fmt: skip
    last = max(arm.loop.generations for arm in arms) - 1
    shown = sorted({0, last // 2, max(last - 1, 0), last})
    write_minority_table(run_dir / "minority_table.md", rows, minority=minority, majority=majority, generations=shown)
    for arm in arms:
        paths = sorted((run_dir / "samples" / arm.name).glob("generation_*.safetensors"))
        if paths:
            grids = [load_tensors(path)["grid"] for path in paths]
            save_samples_across_generations(
                run_dir / "figures" / f"samples_{arm.name}.png",
                grids,
                class_names=data.group_names,
                title=f"{arm.name}: samples across generations",
            )


def _band(arms: Sequence[Arm]) -> str:
    """What the figures' bands are: the across-replicate interval, or one chain's bootstrap."""
    replicates = arms[0].loop.replicates
    if replicates > 1:
        return f"95 % t-interval across {replicates} replicates, logit scale for bounded metrics"
    return "95 % bootstrap CI over one chain's samples"


def _fingerprint(arms: Sequence[Arm], seed: int) -> dict[str, Any]:
    """What must match for a run directory to be resumed: everything but ``loop.generations``,
    ``loop.checkpoint_every`` and the device."""
    described = {}
    for arm in arms:
        loop = dataclasses.asdict(arm.loop)
        loop.pop("generations")
        loop.pop("checkpoint_every")  # where a generation is checkpointed does not change its results
        for key, default in (("synthetic_labels", "counts"), ("synthetic_shares", None)):
            if loop[key] == default:  # absent at their defaults, so runs from before these options still resume
                loop.pop(key)
        if arm.loop.curation.rule == "none":
            loop.pop("curation")
        described[arm.name] = {
            "data": dataclasses.asdict(arm.data),
            "model": dataclasses.asdict(arm.model),
            "loop": loop,
            "estimator": dataclasses.asdict(arm.estimator),
            "evaluation": dataclasses.asdict(arm.evaluation) if arm.family == "images" else None,
        }
        if arm.remedy.name != "none":  # absent for none, so runs from before remedies still resume
            described[arm.name]["remedy"] = dataclasses.asdict(arm.remedy)
    # Through JSON, as summary.json stores it (tuples become lists), so a run matches its own directory.
    return json.loads(json.dumps({"seed": seed, "arms": described}))


def _check_run_dir(run_dir: Path, fingerprint: dict) -> dict | None:
    """The summary of the run that ``run_dir`` holds (``None`` if none), after checking that it is
    the same experiment and that it (or the folder it would be made in) is writable."""
    check_writable_dir(run_dir, key="hydra.run.dir")
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        if (run_dir / "arms").exists():
            raise ConfigError(f"{run_dir} holds generations but no summary.json; refusing to overwrite it")
        return None
    summary = read_json(summary_path)
    previous = summary.get("fingerprint") if isinstance(summary, dict) else None
    if previous != fingerprint:
        differences = _differences(previous or {}, fingerprint)
        raise ConfigError(
            f"{run_dir} holds a different experiment ({'; '.join(differences[:5])}); "
            "choose another hydra.run.dir or restore the original settings"
        )
    return summary


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} there, {new!r} now"]


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


def _minority(data) -> str:
    """The group with the smallest share (the first of them on a tie)."""
    shares = list(data.shares)
    return data.group_names[min(range(len(shares)), key=shares.__getitem__)]


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("genfair", "torch", "numpy", "scipy", "hydra-core", "diffusers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions

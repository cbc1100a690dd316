"""Run one or more arms of a self-consuming-loop experiment into a run directory.

This is what the ``genfair`` command does after Hydra has composed the config; it takes plain
dataclasses, so a notebook can call it directly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from genfair._outputs import headline_numbers, record_rows, write_metrics_csv, write_replicates
from genfair.checkpoint import read_json, write_json
from genfair.data import ClassMixtureData, GaussianData
from genfair.errors import ConfigError, check_positive_int
from genfair.estimators import EstimatorConfig, HypernetworkFit, build_fit
from genfair.metrics import class_gaussian_metrics
from genfair.models import AnalyticModelConfig, ClassGaussianModel, build_analytic_model
from genfair.seeding import torch_generator
from hypernets import input_sensitivity
from genfair.plots import save_metric_figure
from loops import GenerationRecord, LoopConfig, RunStore, simulate

__all__ = ["Arm", "ExperimentResult", "run_experiment"]

log = logging.getLogger("genfair")

HEADLINE = {
    "gaussian": ["w2_sq", "trace_cov", "mean_sq_err"],
    "class_mixture": ["share", "extinct", "w2_sq", "trace_cov"],
}


@dataclass(frozen=True)
class Arm:
    """One arm of an experiment: the data, the model, the loop it runs and its estimator."""

    name: str
    data: GaussianData | ClassMixtureData
    model: AnalyticModelConfig
    loop: LoopConfig
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)


@dataclass(frozen=True)
class ExperimentResult:
    run_dir: Path
    records: dict[str, list[GenerationRecord]]
    summary: dict[str, Any]


def run_experiment(arms: Sequence[Arm], *, seed: int, run_dir: Path, config: dict | None = None) -> ExperimentResult:
    """Run every arm's loop with the same root ``seed`` (common random numbers) into ``run_dir``.

    Everything is checked before any work. Results are rewritten after each generation; a run
    started again in the same directory resumes after the last finished generation of each arm,
    and refuses to run if the directory holds a different experiment (only ``loop.generations``
    may change, to extend a run).

    Example:
        >>> arm = Arm("mle", GaussianData(), AnalyticModelConfig(name="gaussian"),
        ...           LoopConfig(generations=3, n_real=10, n_synthetic=10, replicates=500))
        >>> result = run_experiment([arm], seed=0, run_dir=Path(tmp_path))  # doctest: +SKIP
    """
    if not arms or len({arm.name for arm in arms}) != len(arms):
        raise ConfigError(f"arms must be a non-empty list with unique names, got {[arm.name for arm in arms]}")
    check_positive_int("seed", seed, minimum=0)
    models = {arm.name: _build(arm) for arm in arms}
    run_dir = Path(run_dir)
    fingerprint = _fingerprint(arms, seed)
    _check_run_dir(run_dir, fingerprint)
    fresh = not (run_dir / "summary.json").exists()
    family = arms[0].model.name
    summary: dict[str, Any] = {
        "status": "running",
        "seed": seed,
        "config": config if config is not None else fingerprint,
        "fingerprint": fingerprint,
        "versions": _versions(),
        "headline_metrics": HEADLINE[family],
        "groups": list(arms[0].data.classes),
        "minority": _minority(arms[0].data),
        "arms": {},
    }
    outputs = _Outputs(run_dir, summary)
    if fresh:  # claim the directory before the first generation, so a kill leaves it resumable
        outputs.write()
    for arm in arms:
        _run_arm(arm, models[arm.name], seed=seed, run_dir=run_dir, outputs=outputs)
        write_replicates(run_dir / "replicates.npz", outputs.records)
    summary["status"] = "complete"
    rows = outputs.write()
    for metric in summary["headline_metrics"]:
        save_metric_figure(run_dir / "figures" / f"{metric}.png", [("", rows)], metric=metric)
    log.info("results in %s", run_dir)
    return ExperimentResult(run_dir, outputs.records, summary)


class _Outputs:
    """The run's result files, rewritten after every generation from cached per-generation rows."""

    def __init__(self, run_dir: Path, summary: dict) -> None:
        self.run_dir, self.summary = run_dir, summary
        self.records: dict[str, list[GenerationRecord]] = {}
        self._rows: dict[tuple[str, int], list[dict]] = {}

    def update(self, arm: str, finished: list[GenerationRecord]) -> None:
        self.records[arm] = finished
        for record in finished:
            if (arm, record.generation) not in self._rows:
                self._rows[(arm, record.generation)] = record_rows(arm, record)
        self.summary["arms"][arm] = {"generation_seconds": [r.seconds for r in finished]}
        self.write()

    def write(self) -> list[dict]:
        rows = [row for key in self._rows for row in self._rows[key]]
        self.summary["headline"] = headline_numbers(rows, self.summary["headline_metrics"])
        write_metrics_csv(self.run_dir / "metrics.csv", rows)
        write_json(self.run_dir / "summary.json", self.summary)
        return rows


def _run_arm(arm: Arm, model, *, seed: int, run_dir: Path, outputs: _Outputs) -> list[GenerationRecord]:
    data, classes = arm.data, arm.data.classes

    def measure(fitted, train):
        return class_gaussian_metrics(
            fitted,
            true_means=data.true_means(),
            true_covariances=data.true_covariances(),
            counts=train.class_counts(len(classes)),
            classes=classes,
        )

    def on_generation(finished: list[GenerationRecord]) -> None:
        outputs.update(arm.name, finished)
        _log_progress(arm, finished[-1], outputs.summary)

    store = RunStore(run_dir / "arms" / arm.name, keep_all_synthetic=arm.loop.kind == "accumulate")
    done = len(store.finished())
    if done:
        log.info("arm %s: resuming after generation %d", arm.name, done - 1)
    fit = build_fit(
        arm.estimator,
        sample_shape=(data.dim,),
        num_classes=len(classes),
        positive=ClassGaussianModel.CONSTRAINTS,
        per_replicate=True,
    )
    result = simulate(
        data=data, model=model, config=arm.loop, seed=seed, measure=measure, fit=fit, store=store, on_generation=on_generation
    )
    outputs.update(arm.name, result.records)  # an arm finished before a restart runs no generation, so on_generation never fires
    if isinstance(fit, HypernetworkFit) and fit.hypernetwork is not None:
        # The degeneracy probe: a constant hypernetwork would score 0 (see hypernets.input_sensitivity).
        real = data.draw(arm.loop.replicates, arm.loop.n_real, generator=torch_generator(seed, 0, "real"))
        probe = input_sensitivity(fit.hypernetwork, real.x, real.y, generator=torch_generator(seed, 0, "measure"))
        outputs.summary["arms"][arm.name]["input_sensitivity"] = probe
        outputs.write()
    return result.records


def _build(arm: Arm):
    return build_analytic_model(arm.model, data=arm.data, replicates=arm.loop.replicates, n_real=arm.loop.n_real)


def _fingerprint(arms: Sequence[Arm], seed: int) -> dict[str, Any]:
    """What must match for a run directory to be resumed: everything but ``loop.generations``."""
    described = {}
    for arm in arms:
        loop = dataclasses.asdict(arm.loop)
        loop.pop("generations")
        described[arm.name] = {
            "data": dataclasses.asdict(arm.data),
            "model": dataclasses.asdict(arm.model),
            "loop": loop,
            "estimator": dataclasses.asdict(arm.estimator),
        }
    # Through JSON, as summary.json stores it (tuples become lists), so a run matches its own directory.
    return json.loads(json.dumps({"seed": seed, "arms": described}))


def _check_run_dir(run_dir: Path, fingerprint: dict) -> None:
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        if (run_dir / "arms").exists():
            raise ConfigError(f"{run_dir} holds generations but no summary.json; refusing to overwrite it")
        return
    previous = read_json(summary_path).get("fingerprint")
    if previous != fingerprint:
        differences = _differences(previous or {}, fingerprint)
        raise ConfigError(
            f"{run_dir} holds a different experiment ({'; '.join(differences[:5])}); "
            "choose another hydra.run.dir or restore the original settings"
        )


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} there, {new!r} now"]


def _log_progress(arm: Arm, record: GenerationRecord, summary: dict) -> None:
    shown = []
    for key, values in record.values.items():
        metric, group = key.split("/", 1)
        if metric in summary["headline_metrics"][:2] and group == summary["minority"]:
            shown.append(f"{key} mean {np.nanmean(values) if not np.isnan(values).all() else float('nan'):.4g}")
    log.info(
        "arm %s · generation %d/%d · %.3f s · %s",
        arm.name, record.generation + 1, arm.loop.generations, record.seconds, ", ".join(shown),
    )


def _minority(data: GaussianData | ClassMixtureData) -> str:
    if isinstance(data, ClassMixtureData):
        return data.classes[min(range(len(data.proportions)), key=lambda k: data.proportions[k])]
    return data.classes[0]


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("genfair", "torch", "numpy", "scipy", "hydra-core", "diffusers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions

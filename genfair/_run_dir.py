"""A run directory's identity: the fingerprint that must match for a run to resume there, the
check that the directory holds the same experiment (or none), and the package versions that
``summary.json`` records."""

from __future__ import annotations

import dataclasses
import json
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfair.checkpoint import check_writable_dir, read_json
from genfair.errors import ConfigError
from genfair.estimators import EstimatorConfig

if TYPE_CHECKING:
    from genfair._arm import Arm

__all__ = ["check_run_dir", "fingerprint", "versions"]


def fingerprint(arms: Sequence[Arm], seed: int) -> dict[str, Any]:
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
        if arm.loop.built_in:  # the kind names its rule; absent, as before the kinds had their nodes
            loop.pop("training_set")
        if arm.loop.curation.rule == "none":
            loop.pop("curation")
        evaluation = dataclasses.asdict(arm.evaluation)
        extra_metrics = evaluation.pop("extra_metrics")
        described[arm.name] = {
            "data": dataclasses.asdict(arm.data),
            "model": dataclasses.asdict(arm.model),
            "loop": loop,
            "estimator": _estimator(arm.estimator),
            "evaluation": evaluation if arm.metric_family == "images" else None,
        }
        if extra_metrics:  # absent without them, so runs from before this option still resume
            described[arm.name]["extra_metrics"] = extra_metrics
        if arm.remedy.name != "none":  # absent for none, so runs from before remedies still resume
            described[arm.name]["remedy"] = dataclasses.asdict(arm.remedy)
    # Through JSON, as summary.json stores it (tuples become lists), so a run matches its own directory.
    return json.loads(json.dumps({"seed": seed, "arms": described}))


def _estimator(config: object) -> dict[str, Any]:
    """The estimator's config with ``ple``'s options among its own keys, as they were before
    they moved to ``estimator.ple``, without its built-in class (which its name picks) and
    without the options added since while they are off (early stopping, PLE's own sample
    steps): runs from before still resume."""
    described = dataclasses.asdict(config)
    if isinstance(config, EstimatorConfig):
        del described["_target_"]  # the name's registered class, absent as before the estimators had one
        described.update(described.pop("ple"))
        if not config.early_stopping.active:
            del described["early_stopping"]
        if config.ple.sample_steps is None:
            del described["sample_steps"]
    return described


def check_run_dir(run_dir: Path, fingerprint: dict) -> dict | None:
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



def versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("genfair", "torch", "numpy", "scipy", "hydra-core", "diffusers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions

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
    ``loop.checkpoint_every``, the device and the built-in classes that the names pick (the
    model's and the estimator's ``_target_``), and without the options that are off
    (:func:`_without_off_options`)."""
    described = {}
    for arm in arms:
        loop = dataclasses.asdict(arm.loop)
        loop.pop("generations")
        loop.pop("checkpoint_every")  # where a generation is checkpointed does not change its results
        evaluation = dataclasses.asdict(arm.evaluation)
        extra_metrics = evaluation.pop("extra_metrics")
        model = dataclasses.asdict(arm.model)
        model.pop("_target_", None)  # a built-in's registered config class, which its name picks
        described[arm.name] = {
            "data": dataclasses.asdict(arm.data),
            "model": model,
            "loop": loop,
            "estimator": _estimator(arm.estimator),
            "evaluation": evaluation if arm.metric_family == "images" else None,
            "extra_metrics": extra_metrics,
            "remedy": dataclasses.asdict(arm.remedy),
        }
    # Through JSON, as summary.json stores it (tuples become lists), so a run matches its own directory.
    return _without_off_options(json.loads(json.dumps({"seed": seed, "arms": described})))


def _estimator(config: object) -> dict[str, Any]:
    """The estimator's config with ``ple``'s options among its own keys, as they were before
    they moved to ``estimator.ple``, and without its built-in class (which its name picks)."""
    described = dataclasses.asdict(config)
    if isinstance(config, EstimatorConfig):
        del described["_target_"]  # the name's registered class, absent as before the estimators had one
        described.update(described.pop("ple"))
    return described


def _without_off_options(identity: dict[str, Any]) -> dict[str, Any]:
    """``identity`` without each option added after runs were made that lack it, wherever it is
    off (at the value that changes nothing), and without a built-in loop kind's rule node (its
    kind names it): runs from before an option still resume, whether their fingerprint left it
    out or recorded it off. Applied to a stored fingerprint too, so both forms match."""
    from genfair.loops import registered_kinds

    arms = {}
    for name, described in identity.get("arms", {}).items():
        described = dict(described)
        loop = dict(described.get("loop") or {})
        estimator = dict(described.get("estimator") or {})
        for part, key, off in ((loop, "synthetic_labels", "counts"), (loop, "synthetic_shares", None),
                               (estimator, "sample_steps", None)):
            if key in part and part[key] == off:
                del part[key]
        if loop.get("kind") in registered_kinds():
            loop.pop("training_set", None)
        if (loop.get("curation") or {}).get("rule") == "none":
            del loop["curation"]
        if isinstance(estimator.get("early_stopping"), dict) and not estimator["early_stopping"].get("validation"):
            del estimator["early_stopping"]
        if not described.get("extra_metrics", True):
            del described["extra_metrics"]
        if (described.get("remedy") or {}).get("name") == "none":
            del described["remedy"]
        arms[name] = {**described, "loop": loop, "estimator": estimator}
    return {**identity, "arms": arms}


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
    previous = _without_off_options(previous) if isinstance(previous, dict) else None
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

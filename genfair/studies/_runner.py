"""The study runner: one ``summary.json`` layout for every study.

A study is a config dataclass (a subclass of :class:`StudyConfig`) and a function
``run(config, *, seed, run_dir) -> StudyResult`` that writes its own tables and figures into
``run_dir`` and returns its numbers and the files it wrote. :func:`run_study` runs it and writes
``summary.json`` around it, the same keys for every study (:data:`SUMMARY_KEYS`):

- ``study``: the study's name in ``genfair.studies.STUDIES``;
- ``status``: ``running`` while it runs, then ``complete`` or ``failed``;
- ``seed``, ``config`` (the study's config, every field), ``overrides`` (the command line's, or
  ``[]`` from Python), ``versions`` (Python and the packages that compute);
- ``fingerprint``: ``{"study", "config"}``, what makes two runs the same study apart from the
  seed (``genfair-aggregate`` compares them);
- ``seconds``: wall-clock time of the run;
- ``results``: the study's numbers (its :attr:`StudyResult.results`), ``null`` until complete;
- ``files``: the files the study wrote, relative to ``run_dir`` (``summary.json`` aside);
- ``error``: the one-line message of a failed run, else ``null``.

A study that returns :attr:`StudyResult.rows` also gets ``metrics.csv``, in the format of the
loop experiments' (``genfair._outputs.CSV_COLUMNS``: one row per arm, generation, group and
metric). So a sweep of a study over seeds (``genfair -m experiment=<study> 'seed=range(8)'``)
is summarised and compared arm against arm, seeds paired, by ``genfair-aggregate SWEEP_DIR
--baseline ARM``, as the experiments' sweeps are.
"""

from __future__ import annotations

import dataclasses
import importlib
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from genfair.checkpoint import write_json
from genfair.run_lock import hold_run_dir

__all__ = ["SUMMARY_KEYS", "Study", "StudyConfig", "StudyResult", "run_study"]

SUMMARY_KEYS = (
    "study", "status", "seed", "config", "fingerprint", "overrides", "versions", "seconds", "results", "files", "error",
)
_REQUIRED_COLUMNS = ("arm", "generation", "group", "metric", "mean", "n")  # what genfair._outputs.read_metrics_csv parses
_PACKAGES = ("genfair", "torch", "numpy", "scikit-learn", "hydra-core")


@dataclass
class StudyConfig:
    """The base of every study's config dataclass: the type of the ``study`` node of the
    ``genfair`` command's config, whose options (``study=<name>``) are its subclasses."""


@dataclass(frozen=True)
class StudyResult:
    """What a study's ``run`` returns to :func:`run_study`.

    Attributes:
        results: the study's numbers, written under ``results`` in ``summary.json`` (JSON
            values: dicts, lists, strings, numbers; NaN and infinities are written ``null``).
        files: the files the study wrote, inside its ``run_dir``.
        rows: its headline numbers as ``metrics.csv`` rows: ``arm``, ``generation`` (0 for a
            study without generations), ``group``, ``metric``, ``mean``, ``n`` (the values behind
            the mean) and, where known, ``se``, ``lo``, ``hi``, ...; :func:`run_study` writes them.
    """

    results: dict[str, Any]
    files: tuple[Path, ...]
    rows: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Study:
    """A registered study (``genfair.studies.STUDIES``): its config class and its ``run``, the
    function or its dotted path (``package.module.function``, imported when the study runs, so
    that the command line checks a study's config without importing the study's code)."""

    config: type[StudyConfig]
    run: Callable[..., StudyResult] | str

    def runner(self) -> Callable[..., StudyResult]:
        """``run``, imported if it is a dotted path."""
        if callable(self.run):
            return self.run
        module, _, name = self.run.rpartition(".")
        return getattr(importlib.import_module(module), name)


def run_study(
    config: StudyConfig, *, seed: int, run_dir: Path | str, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """Run the study that ``config`` configures and write its ``summary.json``.

    ``summary.json`` says ``running`` before the study starts, and ``complete`` with its results
    and files after it; if the study raises, it says ``failed`` with the error's message and the
    error propagates.

    Args:
        config: an instance of a registered study's config class (``genfair.studies.STUDIES``).
        seed: the root seed; the study derives its streams from it (``genfair.seeding``).
        run_dir: where the study writes (created if missing); held by this call alone
            (``genfair.run_lock``: a directory another run holds is refused with ``RunDirInUse``).
        overrides: the command line's overrides, recorded in the summary.

    Returns:
        the summary as written, with the keys :data:`SUMMARY_KEYS`.

    Example:
        >>> from genfair.studies import VarianceBiasConfig, run_study
        >>> config = VarianceBiasConfig(steps=5, sets_per_step=8, test_sets=50, probe_sets=10, only=["hyper_mle"])
        >>> run_study(config, seed=0, run_dir=tmp_path)["status"]  # doctest: +SKIP
        'complete'
    """
    with hold_run_dir(run_dir):  # one writer per run directory (genfair.run_lock)
        name, study = _registered(config)
        run_dir = Path(run_dir)
        started = time.perf_counter()
        summary: dict[str, Any] = {
            "study": name,
            "status": "running",
            "seed": seed,
            "config": dataclasses.asdict(config),
            "fingerprint": {"study": name, "config": dataclasses.asdict(config)},
            "overrides": list(overrides),
            "versions": _versions(),
            "seconds": None,
            "results": None,
            "files": [],
            "error": None,
        }
        write_json(run_dir / "summary.json", summary)
        try:
            result = study.runner()(config, seed=seed, run_dir=run_dir)
        except Exception as error:
            summary.update(status="failed", seconds=round(time.perf_counter() - started, 2), error=" ".join(str(error).split()))
            write_json(run_dir / "summary.json", summary)
            raise
        files = list(result.files)
        if result.rows:
            files.append(_write_rows(run_dir / "metrics.csv", result.rows))
        summary.update(
            status="complete",
            seconds=round(time.perf_counter() - started, 2),
            results=result.results,
            files=[_relative(path, run_dir) for path in files],
        )
        write_json(run_dir / "summary.json", summary)
        return summary


def _write_rows(path: Path, rows: Sequence[dict]) -> Path:
    """``metrics.csv`` of :attr:`StudyResult.rows` (columns ``CSV_COLUMNS``; the statistics a row
    lacks are left empty, read as NaN). A row without the columns every reader needs is refused."""
    for row in rows:
        missing = [key for key in _REQUIRED_COLUMNS if key not in row]
        if missing:
            raise ValueError(f"StudyResult.rows: every row needs {list(_REQUIRED_COLUMNS)}, got a row without {missing}: {row}")
    from genfair._outputs import write_metrics_csv  # numpy and the loop's records: not needed to check a config

    write_metrics_csv(path, list(rows))
    return path


def _registered(config: StudyConfig) -> tuple[str, Study]:
    """The name and entry of ``STUDIES`` whose config class ``config`` is an instance of."""
    from genfair.studies._registry import STUDIES

    for name, study in STUDIES.items():
        if isinstance(config, study.config):
            return name, study
    known = [study.config.__name__ for study in STUDIES.values()]
    raise TypeError(f"config must be the config of a study in genfair.studies.STUDIES ({known}), got {type(config).__name__}")


def _relative(path: Path, run_dir: Path) -> str:
    """``path`` relative to ``run_dir`` (``figures/x.png``); a study writes inside its run directory."""
    return Path(path).resolve().relative_to(run_dir.resolve()).as_posix()


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions

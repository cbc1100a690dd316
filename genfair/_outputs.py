"""A run directory's result files: ``metrics.csv``, ``replicates.npz``, ``summary.json``.

- ``metrics.csv``: one row per (arm, generation, group, metric) with the columns of
  :data:`CSV_COLUMNS`; statistics are across replicates (see ``summarize_replicates``).
  ``lo`` / ``hi`` bound a 95 % confidence interval: the one the measure computed where it
  gave one (deep models, one replicate: a bootstrap over samples stratified by class, see
  ``genfair.evaluation``; a deep arm with one chain), else the t-interval of the mean across
  replicates, ``mean -+ t_{0.975, n-1} se`` (NaN with one replicate), on the logit scale for
  metrics that lie in [0, 1] so that it stays there (``genfair.metrics.mean_interval``).
- ``bootstrap.csv`` (deep models): every chain's own value of every metric with the bootstrap
  interval over its evaluation samples (``boot_lo``, ``boot_hi``), which describes that chain
  only; the across-replicate ``lo`` / ``hi`` of ``metrics.csv`` describe the arm.
- ``replicates.npz``: one float64 array ``(generations, replicates)`` per ``"arm/metric/group"``
  key; NaN where a value is undefined (an extinct class's fidelity). Plain arrays: load with
  ``numpy.load(path, allow_pickle=False)``. Assembled when each arm finishes from the
  per-generation files under ``arms/`` (written atomically every generation).
- ``summary.json``: status, config, seed, package versions, per-arm ``generation_seconds`` and
  headline numbers (the last generation's summary of each headline metric and group).
- ``minority_table.md`` (image experiments): the arms side by side, one row per arm and
  generation shown, ``value [lo, hi]`` of the minority's share, precision, recall and coverage
  and the majority's recall (see :func:`write_minority_table`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genfair.checkpoint import write_bytes_atomic, write_json
from genfair.evaluation import in_unit_interval
from genfair.metrics import mean_interval, summarize_replicates
from genfair.loops import GenerationRecord

__all__ = [
    "CSV_COLUMNS",
    "ArmReport",
    "RunOutputs",
    "headline_numbers",
    "read_metrics_csv",
    "record_rows",
    "write_metrics_csv",
    "write_minority_table",
    "write_replicates",
]

CSV_COLUMNS = ("arm", "generation", "group", "metric", "mean", "se", "median", "q05", "q95", "n", "lo", "hi")
_FLOAT_COLUMNS = ("mean", "se", "median", "q05", "q95", "lo", "hi")


def record_rows(arm: str, record: GenerationRecord, *, bounded: Sequence[str] = ()) -> list[dict]:
    """The ``metrics.csv`` rows of one arm's generation; ``bounded``: metrics besides the built-in
    ones that lie in [0, 1] (a user's metric declared so), whose intervals take the logit scale."""
    rows = []
    for key, values in record.values.items():
        metric, group = key.split("/", 1)
        summary = summarize_replicates(values)
        if key in record.intervals:
            lo, hi = (float(v) for v in record.intervals[key])
        else:
            lo, hi = mean_interval(summary, bounded=in_unit_interval(metric, group, declared=bounded))
        summary = summary.as_dict()
        row = {"arm": arm, "generation": record.generation, "group": group, "metric": metric, **summary}
        rows.append({**row, "lo": lo, "hi": hi})
    return rows


def headline_numbers(rows: list[dict], metrics: list[str]) -> dict[str, dict[str, dict]]:
    """``{arm: {"metric/group": last generation's summary}}`` for the headline ``metrics``."""
    last: dict[tuple[str, str, str], dict] = {}
    for row in rows:
        if row["metric"] in metrics:
            last[(row["arm"], row["metric"], row["group"])] = row  # rows are in generation order
    headline: dict[str, dict[str, dict]] = {}
    for (arm, metric, group), row in last.items():
        stats = {k: row[k] for k in ("generation", "mean", "se", "median", "q05", "q95", "n", "lo", "hi")}
        headline.setdefault(arm, {})[f"{metric}/{group}"] = stats
    return headline


def write_metrics_csv(path: Path, rows: list[dict], *, columns: Sequence[str] = CSV_COLUMNS) -> None:
    """Write ``metrics.csv`` (or another table of ``columns``) atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, text.getvalue().encode())


def write_minority_table(
    path: Path, rows: list[dict], *, minority: str, majority: str, generations: Sequence[int]
) -> None:
    """A Markdown table of ``rows`` (``metrics.csv`` rows): for each of ``generations`` and each
    arm, the minority's share, precision, recall and coverage and the majority's recall, as
    ``value [lo, hi]`` (``–`` where the run has no value: a lost class, a generation not run)."""
    columns = [
        ("share", minority, f"{minority} share"),
        ("precision", minority, f"{minority} precision"),
        ("recall", minority, f"{minority} recall"),
        ("coverage", minority, f"{minority} coverage"),
        ("recall", majority, f"{majority} recall"),
    ]
    found = {(r["arm"], int(r["generation"]), r["metric"], r["group"]): r for r in rows}
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    lines = [
        "| generation | arm | " + " | ".join(title for *_, title in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for generation in generations:
        for arm in arms:
            cells = [_cell(found.get((arm, generation, metric, group))) for metric, group, _ in columns]
            lines.append(f"| {generation} | {arm} | " + " | ".join(cells) + " |")
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())


def _cell(row: dict | None) -> str:
    if row is None or not np.isfinite(float(row["mean"])):
        return "–"
    lo, hi = float(row["lo"]), float(row["hi"])
    interval = f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
    return f"{float(row['mean']):.2f}{interval}"


def write_replicates(path: Path, records: Mapping[str, list[GenerationRecord]]) -> None:
    """Write ``replicates.npz`` atomically: ``"arm/metric/group"`` -> ``(generations, replicates)``."""
    arrays = {
        f"{arm}/{key}": np.stack([record.values[key] for record in arm_records])
        for arm, arm_records in records.items()
        if arm_records
        for key in arm_records[0].values
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def read_metrics_csv(path: Path) -> list[dict]:
    """Rows of a ``metrics.csv`` with numbers parsed (``generation`` and ``n`` as int; files
    written before ``lo`` / ``hi`` existed get NaN there)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in _FLOAT_COLUMNS:
            row[column] = float(row.get(column) or "nan")
        row["generation"], row["n"] = int(row["generation"]), int(row["n"])
    return rows


@dataclass
class ArmReport:
    """What ``summary.json`` says of one arm (``arms.<arm>``); empty entries are left out.

    Attributes:
        generation_seconds: wall-clock seconds of each finished generation (a deep arm with
            several chains: their sum over chains).
        degraded: ``[{"generation", "lost"}]``, the generations whose synthetic samples lost a
            class (a deep arm with several chains: lost in every chain).
        lost_by_replicate: ``{"r": [{"generation", "lost"}]}``, each deep chain's lost classes.
        failure: ``{"generation", "reason"}`` of an arm that stopped on a fault.
    """

    generation_seconds: list[float] = field(default_factory=list)
    degraded: list[dict] = field(default_factory=list)
    lost_by_replicate: dict[str, list[dict]] = field(default_factory=dict)
    failure: dict | None = None

    def as_dict(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if value}


class RunOutputs:
    """A run's ``metrics.csv`` and ``summary.json``, rewritten after every generation from cached
    per-generation rows. The summary is built here and only here (:attr:`summary`): the run's
    fixed description (``header``), then what the run reports through :meth:`update`,
    :meth:`record_lost`, :meth:`record_failure` and :meth:`finish`."""

    def __init__(self, run_dir: Path, header: dict) -> None:
        self.run_dir, self.header = run_dir, header
        self.records: dict[str, list[GenerationRecord]] = {}
        self.arms: dict[str, ArmReport] = {}
        self.status = "running"
        self.comparisons: dict | None = None
        self._rows: dict[tuple[str, int], list[dict]] = {}

    @property
    def rows(self) -> list[dict]:
        """Every ``metrics.csv`` row reported so far, arm by arm, in generation order."""
        return [row for key in self._rows for row in self._rows[key]]

    @property
    def summary(self) -> dict:
        """``summary.json``: ``status``, the header, ``arms``, ``headline`` and, once
        :meth:`finish` gave them, ``comparisons``."""
        return self._summary(self.rows)

    def _summary(self, rows: list[dict]) -> dict:
        summary = {"status": self.status, **self.header}
        summary["arms"] = {name: report.as_dict() for name, report in self.arms.items()}
        summary["headline"] = headline_numbers(rows, self.header["headline_metrics"])
        if self.comparisons is not None:
            summary["comparisons"] = self.comparisons
        return summary

    def update(self, arm: str, finished: list[GenerationRecord]) -> None:
        """Report ``arm``'s finished generations (all of them, oldest first) and write."""
        self.records[arm] = finished
        for record in finished:
            if (arm, record.generation) not in self._rows:
                self._rows[(arm, record.generation)] = record_rows(
                    arm, record, bounded=self.header.get("unit_interval_metrics", ()))
        self._arm(arm).generation_seconds = [r.seconds for r in finished]
        self.write()

    def record_lost(self, arm: str, degraded: list[dict], *, by_replicate: Mapping[int, list[dict]] | None = None) -> None:
        """Report the classes ``arm``'s synthetic samples lost (see :class:`ArmReport`); written
        with the next :meth:`update` or :meth:`write`."""
        report = self._arm(arm)
        report.degraded = list(degraded)
        if by_replicate is not None:
            report.lost_by_replicate = {str(r): list(by_replicate[r]) for r in sorted(by_replicate) if by_replicate[r]}

    def record_failure(self, arm: str, generation: int, reason: str) -> None:
        """Report that ``arm`` stopped at ``generation`` and write."""
        self._arm(arm).failure = {"generation": generation, "reason": reason}
        self.write()

    def finish(self, comparisons: dict | None = None) -> list[dict]:
        """Set the final status (``failed`` if an arm failed, else ``degraded`` if one lost a
        class, else ``complete``) and the comparisons, write, and return the rows."""
        reports = self.arms.values()
        failed, degraded = any(r.failure for r in reports), any(r.degraded for r in reports)
        self.status = "failed" if failed else "degraded" if degraded else "complete"
        self.comparisons = comparisons
        return self.write()

    def write(self) -> list[dict]:
        rows = self.rows
        write_metrics_csv(self.run_dir / "metrics.csv", rows)
        write_json(self.run_dir / "summary.json", self._summary(rows))
        return rows

    def _arm(self, name: str) -> ArmReport:
        return self.arms.setdefault(name, ArmReport())

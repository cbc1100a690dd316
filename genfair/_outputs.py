"""A run directory's result files: ``metrics.csv``, ``replicates.npz``, ``summary.json``.

- ``metrics.csv``: one row per (arm, generation, group, metric) with the columns of
  :data:`CSV_COLUMNS`; statistics are across replicates (see ``summarize_replicates``).
- ``replicates.npz``: one float64 array ``(generations, replicates)`` per ``"arm/metric/group"``
  key; NaN where a value is undefined (an extinct class's fidelity). Plain arrays: load with
  ``numpy.load(path, allow_pickle=False)``. Assembled when each arm finishes from the
  per-generation files under ``arms/`` (written atomically every generation).
- ``summary.json``: status, config, seed, package versions, per-arm ``generation_seconds`` and
  headline numbers (the last generation's summary of each headline metric and group).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from genfair.checkpoint import write_bytes_atomic
from genfair.metrics import summarize_replicates
from loops import GenerationRecord

__all__ = [
    "CSV_COLUMNS",
    "headline_numbers",
    "read_metrics_csv",
    "record_rows",
    "write_metrics_csv",
    "write_replicates",
]

CSV_COLUMNS = ("arm", "generation", "group", "metric", "mean", "se", "median", "q05", "q95", "n")


def record_rows(arm: str, record: GenerationRecord) -> list[dict]:
    """The ``metrics.csv`` rows of one arm's generation."""
    rows = []
    for key, values in record.values.items():
        metric, group = key.split("/", 1)
        summary = summarize_replicates(values).as_dict()
        rows.append({"arm": arm, "generation": record.generation, "group": group, "metric": metric, **summary})
    return rows


def headline_numbers(rows: list[dict], metrics: list[str]) -> dict[str, dict[str, dict]]:
    """``{arm: {"metric/group": last generation's summary}}`` for the headline ``metrics``."""
    last: dict[tuple[str, str, str], dict] = {}
    for row in rows:
        if row["metric"] in metrics:
            last[(row["arm"], row["metric"], row["group"])] = row  # rows are in generation order
    headline: dict[str, dict[str, dict]] = {}
    for (arm, metric, group), row in last.items():
        stats = {k: row[k] for k in ("generation", "mean", "se", "median", "q05", "q95", "n")}
        headline.setdefault(arm, {})[f"{metric}/{group}"] = stats
    return headline


def write_metrics_csv(path: Path, rows: list[dict]) -> None:
    """Write ``metrics.csv`` atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, text.getvalue().encode())


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
    """Rows of a ``metrics.csv`` with numbers parsed (``generation`` and ``n`` as int)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in ("mean", "se", "median", "q05", "q95"):
            row[column] = float(row[column])
        row["generation"], row["n"] = int(row["generation"]), int(row["n"])
    return rows

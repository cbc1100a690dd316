"""``genfair-aggregate SWEEP_DIR [--out DIR]``: one experiment run over several seeds (a Hydra
multirun such as ``genfair -m seed=0,1,2,3``), summarized across seeds.

Every run directory under ``SWEEP_DIR`` (a folder holding ``summary.json`` and ``metrics.csv``,
at any depth) is one seed. Finished runs count, ``complete`` and ``degraded`` alike (a run whose
samples lost a class is a result, and leaving it out would bias the aggregate towards the seeds
where the minority survived; its undefined values are left out of ``n_seeds``); runs still
``running`` or ``failed`` are skipped with a warning.
The runs must be the same experiment apart from the seed (their ``summary.json`` fingerprints
equal once ``seed`` is removed) and must have distinct seeds. Written into ``--out`` (default
``SWEEP_DIR/aggregate``):

- ``metrics.csv``: one row per (arm, generation, group, metric) with the columns of
  :data:`AGGREGATE_COLUMNS`. Each run contributes one number, its ``mean`` (the mean across its
  replicates, or the value of a one-replicate deep run); ``mean`` and ``se`` are the mean and
  standard error of those numbers across seeds, ``n_seeds`` how many were finite, and
  ``lo`` / ``hi`` the 95 % t-interval ``mean -+ t_{0.975, n_seeds - 1} se`` (NaN with one seed).
- ``paired_vs_<arm>.csv`` (with ``--baseline ARM``): the same columns for the paired
  differences ``arm - ARM`` of every other arm, seed by seed. The arms of one run share their
  random numbers (common random numbers), so the paired interval is far narrower than the two
  arms' own intervals suggest; a seed enters where both values are finite.
- ``summary.json``: the runs and seeds used, the runs skipped, the common fingerprint.
- ``figures/<metric>.png`` for each headline metric, and ``figures/minority_fidelity.png`` for
  deep image runs: the runs' figures, but the mean across seeds with its t-interval as the band.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from genfair._outputs import read_metrics_csv, write_metrics_csv
from genfair.checkpoint import read_json, write_json
from genfair.errors import USER_ERRORS, ConfigError
from genfair.plots import save_fidelity_figure, save_metric_figure

__all__ = ["AGGREGATE_COLUMNS", "Aggregate", "aggregate", "aggregate_main", "aggregate_rows", "paired_rows"]

AGGREGATE_COLUMNS = ("arm", "generation", "group", "metric", "mean", "se", "n_seeds", "lo", "hi")
CONFIDENCE = 0.95
FINISHED = ("complete", "degraded")
_KIND = "aggregate"  # summary.json's "kind" in an output folder, which later scans pass over


@dataclass(frozen=True)
class Aggregate:
    """What :func:`aggregate` wrote: the output folder, the runs used (``(folder, seed)`` pairs),
    the runs skipped (``(folder, status)`` pairs) and the files written."""

    out: Path
    runs: tuple[tuple[Path, int], ...]
    skipped: tuple[tuple[Path, str], ...]
    paths: tuple[Path, ...]


def aggregate_main(argv: list[str] | None = None) -> None:
    """Entry point of ``genfair-aggregate``."""
    parser = argparse.ArgumentParser(prog="genfair-aggregate", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder (e.g. multirun/<date>/<time>)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: SWEEP_DIR/aggregate)")
    parser.add_argument("--baseline", default=None, help="an arm: also write paired differences of every arm to it")
    args = parser.parse_args(argv)
    try:
        result = aggregate(
            args.sweep_dir, out=args.out, baseline=args.baseline, warn=lambda line: print(line, file=sys.stderr)
        )
    except USER_ERRORS as error:
        print(f"genfair-aggregate: error: {error}", file=sys.stderr)
        sys.exit(2)
    seeds = [seed for _, seed in result.runs]
    print(f"{len(result.runs)} runs (seeds {seeds}), {len(result.skipped)} skipped -> {result.out}", file=sys.stderr)
    for path in result.paths:
        print(path)


def aggregate(sweep_dir: Path, *, out: Path | None = None, baseline: str | None = None, warn=None) -> Aggregate:
    """Summarize the runs under ``sweep_dir`` across seeds into ``out`` (see the module docstring).

    Args:
        baseline: an arm of the runs; also write ``paired_vs_<baseline>.csv``.
        warn: called with one line per skipped run (default: nothing).

    Raises:
        ConfigError: no runs, no complete run, runs of different experiments or with equal seeds.
    """
    sweep_dir = Path(sweep_dir)
    out = Path(out) if out is not None else sweep_dir / "aggregate"
    if not sweep_dir.is_dir():
        raise ConfigError(f"SWEEP_DIR must be a directory, got {str(sweep_dir)!r}")
    found = _find_runs(sweep_dir)
    if not found:
        raise ConfigError(f"no run directories (summary.json with metrics.csv) under {sweep_dir}")
    runs, skipped = [], []
    for run_dir, summary in found:
        status = summary.get("status", "unknown")
        if status in FINISHED:
            runs.append((run_dir, summary))
        else:
            skipped.append((run_dir, str(status)))
            if warn is not None:
                warn(f"genfair-aggregate: warning: skipping {run_dir} (status {status!r}, not finished)")
    if not runs:
        raise ConfigError(f"none of the {len(found)} run directories under {sweep_dir} is finished (complete or degraded)")
    fingerprint = _common_fingerprint(runs)
    runs.sort(key=lambda pair: pair[1]["seed"])
    per_seed = [read_metrics_csv(run_dir / "metrics.csv") for run_dir, _ in runs]
    rows = aggregate_rows(per_seed)
    arms = list(dict.fromkeys(row["arm"] for row in rows))
    if baseline is not None and baseline not in arms:
        raise ConfigError(f"--baseline must be one of the runs' arms {arms}, got {baseline!r}")
    first = runs[0][1]
    record = {
        "kind": _KIND,
        "sweep_dir": str(sweep_dir),
        "runs": [{"dir": _relative(run_dir, sweep_dir), "seed": summary["seed"]} for run_dir, summary in runs],
        "seeds": [summary["seed"] for _, summary in runs],
        "degraded": [_relative(run_dir, sweep_dir) for run_dir, summary in runs if summary["status"] == "degraded"],
        "skipped": [{"dir": _relative(run_dir, sweep_dir), "status": status} for run_dir, status in skipped],
        "interval": f"{CONFIDENCE * 100:.0f} % t-interval across seeds (scipy.stats.t, n_seeds - 1 degrees of freedom)",
        "fingerprint": fingerprint,
        **{key: first.get(key) for key in ("family", "headline_metrics", "groups", "minority")},
        "config": first.get("config"),
    }
    paths = [_write_csv(out / "metrics.csv", rows), out / "summary.json"]
    if baseline is not None:
        paths.insert(1, _write_csv(out / f"paired_vs_{baseline}.csv", paired_rows(per_seed, baseline)))
    write_json(out / "summary.json", record)
    paths += _figures(out / "figures", rows, first, n_seeds=len(runs))
    return Aggregate(
        out,
        tuple((run_dir, summary["seed"]) for run_dir, summary in runs),
        tuple(skipped),
        tuple(paths),
    )


def aggregate_rows(runs: list[list[dict]]) -> list[dict]:
    """Rows of :data:`AGGREGATE_COLUMNS`, one per (arm, generation, group, metric) found in any of
    ``runs`` (each a list of ``metrics.csv`` rows, one run per seed), in first-seen order.

    Across the finite ``mean`` values x_1..x_n of the seeds: ``mean`` = x̄, ``se`` = s / sqrt(n)
    with s the sample standard deviation (ddof 1), ``lo``/``hi`` = x̄ -+ t_{0.975, n-1} se;
    ``se``, ``lo`` and ``hi`` are NaN for n < 2 and everything but ``n_seeds`` for n = 0.
    """
    values: dict[tuple, list[float]] = {}
    for rows in runs:
        for row in rows:
            key = (row["arm"], row["generation"], row["group"], row["metric"])
            values.setdefault(key, []).append(float(row["mean"]))
    return [_across_seeds(key, seeds) for key, seeds in values.items()]


def paired_rows(runs: list[list[dict]], baseline: str) -> list[dict]:
    """Rows of :data:`AGGREGATE_COLUMNS` for the differences ``arm - baseline`` of every other
    arm, per (generation, group, metric): each seed contributes its own difference (where both
    values are finite), summarized as in :func:`aggregate_rows`."""
    values: dict[tuple, list[float]] = {}
    for rows in runs:
        reference = {(r["generation"], r["group"], r["metric"]): float(r["mean"]) for r in rows if r["arm"] == baseline}
        for row in rows:
            key = (row["generation"], row["group"], row["metric"])
            if row["arm"] != baseline and key in reference:
                values.setdefault((row["arm"], *key), []).append(float(row["mean"]) - reference[key])
    return [_across_seeds(key, seeds) for key, seeds in values.items()]


def _across_seeds(key: tuple, seeds: list[float]) -> dict:
    """One row: mean, standard error and t-interval of the finite values among ``seeds``."""
    arm, generation, group, metric = key
    x = np.asarray([v for v in seeds if math.isfinite(v)])
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    se = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * se if n > 1 else math.nan
    return {"arm": arm, "generation": generation, "group": group, "metric": metric,
            "mean": mean, "se": se, "n_seeds": n, "lo": mean - half, "hi": mean + half}  # fmt: skip


def _find_runs(sweep_dir: Path) -> list[tuple[Path, dict]]:
    """``(run folder, its summary.json)`` for every run under ``sweep_dir``, sorted by path;
    earlier outputs of this command (``"kind": "aggregate"``) are passed over."""
    found = []
    for path in sorted(sweep_dir.rglob("summary.json")):
        if not (path.parent / "metrics.csv").is_file():
            continue
        summary = read_json(path)  # an unreadable one raises ConfigError naming it
        if summary.get("kind") == _KIND:
            continue
        if "fingerprint" not in summary or "seed" not in summary:
            raise ConfigError(f"{path} has no fingerprint or seed: not a run of a genfair loop experiment")
        found.append((path.parent, summary))
    return found


def _common_fingerprint(runs: list[tuple[Path, dict]]) -> dict:
    """The runs' fingerprint without ``seed``; refuses runs of different experiments or equal seeds."""
    reference_dir, reference = runs[0]
    common = {k: v for k, v in reference["fingerprint"].items() if k != "seed"}
    seeds: dict[Any, Path] = {}
    for run_dir, summary in runs:
        fingerprint = {k: v for k, v in summary["fingerprint"].items() if k != "seed"}
        key = _first_difference(common, fingerprint)
        if key is not None:
            raise ConfigError(
                f"{run_dir} and {reference_dir} are different experiments (they differ in {key}); "
                "aggregate only runs that differ in the seed"
            )
        if summary["seed"] in seeds:
            raise ConfigError(
                f"{run_dir} and {seeds[summary['seed']]} have the same seed {summary['seed']}; "
                "each seed may enter the aggregate once"
            )
        seeds[summary["seed"]] = run_dir
    return common


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """The dotted name of the first key where ``a`` and ``b`` differ (``None`` when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):
            found = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if found is not None:
                return found
        return None
    return None if a == b else (prefix.rstrip(".") or "fingerprint")


def _figures(folder: Path, rows: list[dict], summary: dict, *, n_seeds: int) -> list[Path]:
    paths = []
    available = {row["metric"] for row in rows}
    for metric in summary.get("headline_metrics") or []:
        if metric in available:
            title = f"{metric} across generations (mean over {n_seeds} seeds, {CONFIDENCE * 100:.0f} % t-interval)"
            paths.append(save_metric_figure(folder / f"{metric}.png", [("", rows)], metric=metric, title=title))
    if summary.get("family") == "images":
        groups, minority = list(summary["groups"]), summary["minority"]
        shares = list(summary["config"]["data"]["proportions"])
        majority = groups[max(range(len(shares)), key=shares.__getitem__)]
        title = (
            f"minority fidelity across generations (class {minority}; mean over {n_seeds} seeds, "
            f"bands: {CONFIDENCE * 100:.0f} % t-interval across seeds)"
        )
        paths.append(
            save_fidelity_figure(
                folder / "minority_fidelity.png", rows, minority=minority, majority=majority,
                target_share=shares[groups.index(minority)], title=title,
            )
        )  # fmt: skip
    return paths


def _write_csv(path: Path, rows: list[dict]) -> Path:
    write_metrics_csv(path, rows, columns=AGGREGATE_COLUMNS)
    return path


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

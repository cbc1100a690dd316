"""``genfair-aggregate SWEEP_DIR [--out DIR] [--baseline ARM]``: one experiment run over several
seeds (a Hydra multirun such as ``genfair -m seed=0,1,2,3``), summarized across seeds. A study
swept over seeds (``genfair -m experiment=variance_bias 'seed=range(8)'``) is aggregated the same
way: every study run writes ``metrics.csv`` (``genfair.studies.run_study``); its values sit at
generation 0 unless the study has generations, so its primary endpoint needs
``--primary-first 0``.

Every run directory under ``SWEEP_DIR`` (a folder holding ``summary.json`` and ``metrics.csv``,
at any depth) is one seed. Finished runs count, ``complete`` and ``degraded`` alike (a run whose
samples lost a class is a result, and leaving it out would bias the aggregate towards the seeds
where the minority survived; its undefined values are left out of ``n_seeds``); runs still
``running`` or ``failed`` are skipped with a warning. A run directory that a ``genfair`` process
holds (``genfair.run_lock``, read without taking the lock) is still running whatever its
``summary.json`` says, and the warning names that process; one whose summary says ``running``
but which no process holds was stopped, and the warning says that its command resumes it.
The runs must be the same experiment apart from the seed (their ``summary.json`` fingerprints
equal once ``seed`` is removed) and must have distinct seeds. Written into ``--out`` (default
``SWEEP_DIR/aggregate``):

- ``metrics.csv``: one row per (arm, generation, group, metric) with the columns of
  :data:`AGGREGATE_COLUMNS`. Each run contributes one number, its ``mean`` (the mean across its
  replicates, or the value of a one-replicate deep run); ``mean`` and ``se`` are the mean and
  standard error of those numbers across seeds, ``n_seeds`` how many were finite, and
  ``lo`` / ``hi`` a 95 % interval (NaN with one seed): the t-interval
  ``mean -+ t_{0.975, n_seeds - 1} se``, except for the metrics in [0, 1]
  (:func:`genfair.evaluation.in_unit_interval`: shares, precision, recall, coverage, fractions of
  chains, downstream rates; not density), whose interval is that t-interval on the logit scale,
  mapped back (:func:`genfair.metrics.logit_interval`), so it stays in [0, 1].
- ``paired_vs_<arm>.csv`` (with ``--baseline ARM``): the same columns for the paired
  differences ``arm - ARM`` of every other arm, seed by seed (plain t-intervals: a difference
  of bounded metrics lies in [-1, 1], and its mean's interval is left unbounded). The arms of one
  run share their random numbers (common random numbers), so the paired interval is far
  narrower than the two arms' own intervals suggest; a seed enters where both values are finite.
- ``comparisons.csv`` (with ``--baseline ARM``): :func:`genfair.comparisons.paired_comparisons`
  with one value per seed (each run's ``mean``), seeds paired: the primary endpoint first, then
  every (arm, metric, group, generation) cell with its paired t-test, sign-flip test and Holm /
  Benjamini–Hochberg adjusted p-values (see :data:`genfair.comparisons.COMPARISON_COLUMNS`).
  The primary endpoint is ``--primary-metric`` / ``--primary-group`` when given (chosen after
  the runs: ``summary.json`` says so), else the runs' declared ``compare`` config when their
  ``config`` has one, else ``coverage`` of the minority (the first
  headline metric when the runs have no coverage) over generations 1 .. G-1 (generation 0 when
  the runs have no other); ``summary.json`` says which and where it came from. With
  ``--relative-to generation_0`` (or the runs' declared ``compare.relative_to``) each seed's
  endpoint is its change from its own generation 0 and the arms are compared by the paired
  difference of those changes, with generation 0's difference as a ``start`` row (see
  :mod:`genfair.comparisons`); a seed without a generation-0 value drops out of the pair
  (``n`` counts the seeds left), an arm without any is refused before anything is written.
  ``figures/forest.png``: the primary rows of ``comparisons.csv`` as a forest plot.
  ``figures/paired_vs_<arm>.png``: the minority's paired differences across generations.
- ``summary.json``: the runs and seeds used, the runs skipped, the common fingerprint.
- ``figures/<metric>.png`` for each headline metric, and ``figures/minority_fidelity.png`` for
  deep image runs: the runs' figures, but the mean across seeds with its interval as the band
  (logit-scale t-interval for bounded metrics, as in ``metrics.csv``); small multiples when the
  runs declare ``arm_factors`` (:mod:`genfair.factors`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from genfair._outputs import read_metrics_csv, write_metrics_csv
from genfair.checkpoint import read_json, write_json
from genfair.comparisons import (
    RELATIVE_TO,
    CompareConfig,
    PairedComparisons,
    check_compare,
    paired_comparisons,
    write_comparisons_csv,
)
from genfair.errors import USER_ERRORS, ConfigError
from genfair.evaluation import in_unit_interval
from genfair.factors import ArmFactors, ArmFactorsConfig, place_arms
from genfair.metrics import logit_interval
from genfair.plots import save_fidelity_figure, save_forest_figure, save_metric_figure, save_paired_figure
from genfair.run_lock import LockHolder, lock_holder

__all__ = [
    "AGGREGATE_COLUMNS",
    "Aggregate",
    "aggregate",
    "aggregate_main",
    "aggregate_rows",
    "paired_rows",
]

AGGREGATE_COLUMNS = ("arm", "generation", "group", "metric", "mean", "se", "n_seeds", "lo", "hi")
CONFIDENCE = 0.95
_BOUND_TOLERANCE = 1e-9  # a bounded value this far outside [0, 1] is rounding, clipped back
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
    parser.add_argument(
        "--baseline", default=None, help="an arm: also write paired differences of every arm to it and comparisons.csv"
    )
    parser.add_argument("--primary-metric", default=None, help="comparisons.csv's primary metric (default: see docs)")
    parser.add_argument("--primary-group", default=None, help="its group, or 'minority' (the default)")
    parser.add_argument("--primary-first", type=int, default=None, help="its first generation (default 1; a study: 0)")
    parser.add_argument("--primary-last", type=int, default=None, help="its last generation (default: the last)")
    parser.add_argument(
        "--relative-to", choices=RELATIVE_TO, default=None,
        help="none: the endpoint's level; generation_0: each seed's change from its generation 0 (default: none)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    keys = ("primary_metric", "primary_group", "primary_first", "primary_last", "relative_to")
    given = {key: getattr(args, key) for key in keys if getattr(args, key) is not None}
    if args.baseline is None and given:
        parser.error("--primary-metric, --primary-group, --primary-first, --primary-last and --relative-to need --baseline ARM")
    try:
        compare = None
        if given:
            compare = CompareConfig(**given)
        result = aggregate(
            args.sweep_dir, out=args.out, baseline=args.baseline, compare=compare,
            warn=lambda line: print(line, file=sys.stderr),
        )  # fmt: skip
    except USER_ERRORS as error:
        print(f"genfair-aggregate: error: {error}", file=sys.stderr)
        sys.exit(2)
    seeds = [seed for _, seed in result.runs]
    print(f"{len(result.runs)} runs (seeds {seeds}), {len(result.skipped)} skipped -> {result.out}", file=sys.stderr)
    for path in result.paths:
        print(path)


def aggregate(
    sweep_dir: Path,
    *,
    out: Path | None = None,
    baseline: str | None = None,
    compare: CompareConfig | None = None,
    warn=None,
) -> Aggregate:
    """Summarize the runs under ``sweep_dir`` across seeds into ``out`` (see the module docstring).

    Args:
        baseline: an arm of the runs; also write ``paired_vs_<baseline>.csv``, ``comparisons.csv``
            and ``figures/paired_vs_<baseline>.png``.
        compare: the primary endpoint and test settings of ``comparisons.csv`` (its ``baseline``
            is replaced by ``baseline``); ``None``: the runs' declared ``compare`` config, else
            coverage of the minority (see the module docstring).
        warn: called with one line per skipped run (default: nothing).

    Raises:
        ConfigError: before anything is written: no runs, no complete run, runs of different
            experiments or with equal seeds, a bounded metric outside [0, 1]; with ``baseline``:
            an unknown arm, one arm only, fewer than 2 seeds, a primary metric or group the runs
            did not measure.
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
        holder = lock_holder(run_dir)
        if status in FINISHED and holder is None:
            runs.append((run_dir, summary))
        else:
            skipped.append((run_dir, "running" if holder is not None else str(status)))
            if warn is not None:
                warn(f"genfair-aggregate: warning: skipping {run_dir} ({_unfinished(status, holder)})")
    if not runs:
        raise ConfigError(f"none of the {len(found)} run directories under {sweep_dir} is finished (complete or degraded)")
    fingerprint = _common_fingerprint(runs)
    runs.sort(key=lambda pair: pair[1]["seed"])
    per_seed = [read_metrics_csv(run_dir / "metrics.csv") for run_dir, _ in runs]
    declared = runs[0][1].get("unit_interval_metrics") or ()  # the runs' own metrics in (0, 1), as their metrics.csv had them
    for (run_dir, _), rows in zip(runs, per_seed):
        _check_bounded(rows, run_dir / "metrics.csv", declared=declared)
    rows = aggregate_rows(per_seed, declared=declared)
    arms = list(dict.fromkeys(row["arm"] for row in rows))
    first = runs[0][1]
    factors = _declared_factors(first, arms)
    comparisons, declared = None, None
    if baseline is not None:
        if baseline not in arms:
            raise ConfigError(f"--baseline must be one of the runs' arms {arms}, got {baseline!r}")
        compare, declared = _compare_config(compare, baseline, first, per_seed)
        check_compare(compare, arms, len(runs), replicates_key="the number of finished runs (seeds)")
        comparisons = _paired_across_seeds(per_seed, compare, arms=arms, minority=first.get("minority"))
    record = {
        "kind": _KIND,
        "sweep_dir": str(sweep_dir),
        "runs": [{"dir": _relative(run_dir, sweep_dir), "seed": summary["seed"]} for run_dir, summary in runs],
        "seeds": [summary["seed"] for _, summary in runs],
        "degraded": [_relative(run_dir, sweep_dir) for run_dir, summary in runs if summary["status"] == "degraded"],
        "skipped": [{"dir": _relative(run_dir, sweep_dir), "status": status} for run_dir, status in skipped],
        "interval": (
            f"{CONFIDENCE * 100:.0f} % t-interval across seeds (scipy.stats.t, n_seeds - 1 degrees of freedom); "
            "for metrics in [0, 1] (genfair.evaluation.in_unit_interval): that t-interval on the logit scale, "
            "mapped back (delta method: expit(logit(mean) -+ t se / (mean (1 - mean))))"
        ),
        "fingerprint": fingerprint,
        **{key: first.get(key) for key in ("family", "headline_metrics", "groups", "minority")},
        "config": first.get("config"),
    }
    paths = [_write_csv(out / "metrics.csv", rows), out / "summary.json"]
    if comparisons is not None:
        record["comparisons"] = _comparisons_record(comparisons, declared)
        paths[1:1] = [
            _write_csv(out / f"paired_vs_{baseline}.csv", paired_rows(per_seed, baseline)),
            write_comparisons_csv(out / "comparisons.csv", comparisons),
        ]
    write_json(out / "summary.json", record)
    paths += _figures(out / "figures", rows, first, n_seeds=len(runs), factors=factors)
    if comparisons is not None:
        paths += _paired_figure(out / "figures" / f"paired_vs_{baseline}.png", comparisons, first)
        paths.append(save_forest_figure(out / "figures" / "forest.png", list(comparisons.primary.values())))
    return Aggregate(
        out,
        tuple((run_dir, summary["seed"]) for run_dir, summary in runs),
        tuple(skipped),
        tuple(paths),
    )


def _unfinished(status: str, holder: LockHolder | None) -> str:
    """Why a run is skipped: who still runs it, or that it stopped, or its status."""
    if holder is not None:
        return f"still running: {holder.describe()}"
    if status == "running":
        return "status 'running', but no process holds it: the run was stopped; its command resumes it"
    return f"status {status!r}, not finished"


def aggregate_rows(runs: list[list[dict]], *, declared: Collection[str] = ()) -> list[dict]:
    """Rows of :data:`AGGREGATE_COLUMNS`, one per (arm, generation, group, metric) found in any of
    ``runs`` (each a list of ``metrics.csv`` rows, one run per seed), in first-seen order.

    Across the finite ``mean`` values x_1..x_n of the seeds: ``mean`` = x̄, ``se`` = s / sqrt(n)
    with s the sample standard deviation (ddof 1), ``lo``/``hi`` = x̄ -+ t_{0.975, n-1} se;
    ``se``, ``lo`` and ``hi`` are NaN for n < 2 and everything but ``n_seeds`` for n = 0.
    For the metrics in [0, 1] (:func:`genfair.evaluation.in_unit_interval`, with ``declared`` the
    runs' own metrics declared in (0, 1)), ``lo``/``hi`` are :func:`genfair.metrics.logit_interval`
    instead, inside [0, 1].
    """
    values: dict[tuple, list[float]] = {}
    for rows in runs:
        for row in rows:
            key = (row["arm"], row["generation"], row["group"], row["metric"])
            values.setdefault(key, []).append(float(row["mean"]))
    return [_across_seeds(key, seeds, bounded=in_unit_interval(key[3], key[2], declared=declared))
            for key, seeds in values.items()]


def paired_rows(runs: list[list[dict]], baseline: str) -> list[dict]:
    """Rows of :data:`AGGREGATE_COLUMNS` for the differences ``arm - baseline`` of every other
    arm, per (generation, group, metric): each seed contributes its own difference (where both
    values are finite), summarized as in :func:`aggregate_rows` with the plain t-interval."""
    values: dict[tuple, list[float]] = {}
    for rows in runs:
        reference = {(r["generation"], r["group"], r["metric"]): float(r["mean"]) for r in rows if r["arm"] == baseline}
        for row in rows:
            key = (row["generation"], row["group"], row["metric"])
            if row["arm"] != baseline and key in reference:
                values.setdefault((row["arm"], *key), []).append(float(row["mean"]) - reference[key])
    return [_across_seeds(key, seeds) for key, seeds in values.items()]


def _across_seeds(key: tuple, seeds: list[float], *, bounded: bool = False) -> dict:
    """One row: mean, standard error and interval (:func:`genfair.metrics.logit_interval` for a bounded
    metric, else the t-interval) of the finite values among ``seeds``."""
    arm, generation, group, metric = key
    x = np.asarray([v for v in seeds if math.isfinite(v)])
    if bounded:
        x = np.clip(x, 0.0, 1.0)  # _check_bounded let only rounding past the bounds through
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    se = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    quantile = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) if n > 1 else math.nan
    lo, hi = logit_interval(mean, se, quantile) if bounded else (mean - quantile * se, mean + quantile * se)
    return {"arm": arm, "generation": generation, "group": group, "metric": metric,
            "mean": mean, "se": se, "n_seeds": n, "lo": lo, "hi": hi}  # fmt: skip


def _check_bounded(rows: list[dict], path: Path, *, declared: Collection[str] = ()) -> None:
    """Refuse a value of a bounded metric outside [0, 1] (beyond rounding) in ``path``'s ``rows``."""
    for row in rows:
        value = float(row["mean"])
        outside = not -_BOUND_TOLERANCE <= value <= 1 + _BOUND_TOLERANCE
        if in_unit_interval(row["metric"], row["group"], declared=declared) and math.isfinite(value) and outside:
            raise ConfigError(
                f"{path}: {row['metric']} must lie in [0, 1] (a bounded metric), got {value!r} "
                f"(arm {row['arm']}, generation {row['generation']}, group {row['group']})"
            )


def _compare_config(
    given: CompareConfig | None, baseline: str, summary: dict, runs: list[list[dict]]
) -> tuple[CompareConfig, str]:
    """The :class:`CompareConfig` of ``comparisons.csv`` and where its primary endpoint came from."""
    declared = (summary.get("config") or {}).get("compare")
    if given is not None:
        note = f" (the runs declared {declared})" if isinstance(declared, dict) else " (the runs declared none)"
        return dataclasses.replace(given, baseline=baseline), "command line, after the runs" + note
    if isinstance(declared, dict):
        names = {f.name for f in dataclasses.fields(CompareConfig)}
        known = {key: value for key, value in declared.items() if key in names and key != "baseline"}
        return CompareConfig(**known, baseline=baseline), "declared in the runs' config (compare)"
    metrics = list(dict.fromkeys(row["metric"] for rows in runs for row in rows))
    fallback = [m for m in (summary.get("headline_metrics") or []) if m in metrics] + metrics
    metric = "coverage" if "coverage" in metrics or not fallback else fallback[0]
    first = 1 if any(row["generation"] >= 1 for rows in runs for row in rows) else 0  # runs of generation 0 only
    default = CompareConfig(baseline=baseline, primary_metric=metric, primary_first=first)
    return default, "default, not declared before the runs"


def _paired_across_seeds(
    runs: list[list[dict]], compare: CompareConfig, *, arms: list[str], minority: str | None
) -> PairedComparisons:
    """:func:`paired_comparisons` with seed s as replicate s: ``values[arm]["metric/group"]`` is
    ``(G, S)``, the runs' ``mean`` (NaN where a run has no row)."""
    generations = sorted({row["generation"] for rows in runs for row in rows})
    keys = {arm: list(dict.fromkeys(f"{r['metric']}/{r['group']}" for rows in runs for r in rows if r["arm"] == arm))
            for arm in arms}  # fmt: skip
    values = {arm: {key: np.full((len(generations), len(runs)), np.nan) for key in keys[arm]} for arm in arms}
    position = {generation: i for i, generation in enumerate(generations)}
    for seed, rows in enumerate(runs):
        for row in rows:
            values[row["arm"]][f"{row['metric']}/{row['group']}"][position[row["generation"]], seed] = float(row["mean"])
    return paired_comparisons(values, generations=generations, minority=minority, config=compare, arms=arms)


def _comparisons_record(comparisons: PairedComparisons, source: str) -> dict:
    """``summary.json``'s account of ``comparisons.csv``: baseline, primary endpoint, tests."""
    config = comparisons.config
    first = next(iter(comparisons.primary.values()))
    change = ", minus each seed's generation 0 (change from generation 0)" if config.relative_to == "generation_0" else ""
    return {
        "file": "comparisons.csv",
        "baseline": comparisons.baseline,
        "primary": f"{config.primary_metric} of {comparisons.group}, mean over generations {first['generation']}{change}",
        "relative_to": config.relative_to,
        "primary_source": source,
        "unit": "seed (each run's mean), paired across arms",
        "tests": "paired t-test and sign-flip permutation test (exact for n <= 16 pairs); primary rows (one per "
        f"arm) at {1 - config.level:.2g}, Holm and BH over the primary rows; exploratory cells: Holm (p_*_holm) "
        "and Benjamini-Hochberg (q_*_bh) over all of them",
        "interval": f"{config.level * 100:g} % t-interval of the mean paired difference",
    }


def _paired_figure(path: Path, comparisons: PairedComparisons, summary: dict) -> list[Path]:
    """``figures/paired_vs_<baseline>.png`` for the headline metrics the primary group has."""
    measured = {row["metric"] for row in comparisons.rows if row["group"] == comparisons.group}
    metrics = [m for m in (summary.get("headline_metrics") or []) if m in measured] or sorted(measured)
    if not metrics:
        return []
    title = (
        f"paired difference to {comparisons.baseline} across seeds (group {comparisons.group}; "
        f"band: {comparisons.config.level * 100:g} % t-interval)"
    )
    return [save_paired_figure(path, comparisons, metrics=metrics, group=comparisons.group, title=title)]


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


def _declared_factors(summary: dict, arms: list[str]) -> ArmFactors | None:
    """The runs' ``arm_factors`` with every arm placed (``None`` when they declare none); a
    declaration the arms do not fit is refused before anything is written."""
    declared = (summary.get("config") or {}).get("arm_factors") or {}
    config = ArmFactorsConfig(**{key: declared[key] for key in ("levels", "pattern", "facet") if key in declared})
    return place_arms(config, arms)


def _figures(folder: Path, rows: list[dict], summary: dict, *, n_seeds: int, factors: ArmFactors | None = None) -> list[Path]:
    paths = []
    available = {row["metric"] for row in rows}
    for metric in summary.get("headline_metrics") or []:
        if metric in available:
            bounded = in_unit_interval(metric, declared=summary.get("unit_interval_metrics") or ())
            interval = "logit-scale t-interval" if bounded else "t-interval"
            title = f"{metric} across generations (mean over {n_seeds} seeds, {CONFIDENCE * 100:.0f} % {interval})"
            paths.append(save_metric_figure(folder / f"{metric}.png", [("", rows)], metric=metric, title=title))
    if summary.get("family") == "images":
        groups, minority = list(summary["groups"]), summary["minority"]
        shares = list(summary["config"]["data"]["proportions"])
        majority = groups[max(range(len(shares)), key=shares.__getitem__)]
        title = (
            f"minority fidelity across generations (class {minority}; mean over {n_seeds} seeds, "
            f"bands: {CONFIDENCE * 100:.0f} % logit-scale t-interval across seeds)"
        )
        paths.append(
            save_fidelity_figure(
                folder / "minority_fidelity.png", rows, minority=minority, majority=majority,
                target_share=shares[groups.index(minority)], title=title, factors=factors,
            )
        )  # fmt: skip
    return paths


def _write_csv(path: Path, rows: list[dict]) -> Path:
    write_metrics_csv(path, rows, columns=AGGREGATE_COLUMNS)
    return path


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

"""``genfair-plot RUN_DIR [RUN_DIR ...]``: overlay the metrics of several runs in one figure.

With ``--facet FACTOR`` each metric's figure has one panel per level of FACTOR, a factor the runs
declared (``arm_factors`` in their config), and one colour per level of the other factors, the
same in every panel; ``--facet-by-prefix SEP`` does the same without declared factors, one panel
per part of the arms' names before the first SEP (``fresh-ple``: panel ``fresh``, colour ``ple``).

A run directory that a ``genfair`` process still holds (``genfair.run_lock``, read without taking
the lock) is plotted as far as it has got, with a warning naming that process.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genfair._outputs import read_metrics_csv
from genfair.checkpoint import read_json
from genfair.errors import USER_ERRORS, ConfigError
from genfair.run_lock import lock_holder

__all__ = ["overlay", "plot_main"]

_ALIASES = ("minority", "majority")


def plot_main(argv: list[str] | None = None) -> None:
    """Entry point of ``genfair-plot``: one PNG per metric, every run's arms and groups overlaid."""
    parser = argparse.ArgumentParser(prog="genfair-plot", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories (each holds metrics.csv)")
    parser.add_argument(
        "--metric", action="append",
        help="metric to plot (repeatable); default: the headline metrics that every run has, with one meaning",
    )  # fmt: skip
    parser.add_argument(
        "--groups",
        help="comma-separated groups to draw: 'minority' and 'majority' (each run's own), or names of metrics.csv's "
        "group column (a class, 'all' for every sample pooled, 'minority_to_majority'); default: minority,majority",
    )
    parser.add_argument("--out", type=Path, default=Path("overlay"), help="output directory (default: ./overlay)")
    facets = parser.add_mutually_exclusive_group()
    facets.add_argument("--facet", help="one panel per level of this factor of the runs' arm_factors, colours for the others")
    facets.add_argument("--facet-by-prefix", metavar="SEP", help="one panel per arm-name part before SEP, colours for the rest")
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        holder = lock_holder(run_dir)
        if holder is not None:
            print(f"genfair-plot: warning: {run_dir} is still running ({holder.describe()}); plotting the generations "
                  "it has finished", file=sys.stderr)
    try:
        groups = [g.strip() for g in args.groups.split(",") if g.strip()] if args.groups is not None else None
        paths = overlay(args.run_dirs, metrics=args.metric, out=args.out, groups=groups, facet=args.facet,
                        facet_by_prefix=args.facet_by_prefix)  # fmt: skip
    except USER_ERRORS as error:
        print(f"genfair-plot: error: {error}", file=sys.stderr)
        sys.exit(2)
    for path in paths:
        print(path)


def overlay(
    run_dirs: list[Path], *, metrics: list[str] | None, out: Path, groups: list[str] | None = None,
    facet: str | None = None, facet_by_prefix: str | None = None,
) -> list[Path]:
    """One PNG per metric in ``out``, the runs of ``run_dirs`` overlaid; ``groups`` as ``--groups``
    (``None``: each run's minority and majority, or its only group); ``facet`` /
    ``facet_by_prefix`` as ``--facet`` / ``--facet-by-prefix`` (small multiples, see the module
    docstring), checked before anything is written."""
    from genfair.plots import save_metric_figure  # here: matplotlib is slow to import
    from genfair.plots._curves import metric_label

    runs = []
    for run_dir in run_dirs:
        if not (run_dir / "metrics.csv").exists():
            raise ConfigError(f"run directory {run_dir} has no metrics.csv")
        runs.append((run_dir, read_metrics_csv(run_dir / "metrics.csv"), read_json(run_dir / "summary.json")))
    if not metrics:
        metrics = _common_headline(runs, metric_label)
    available = {row["metric"] for _, rows, _ in runs for row in rows}
    for metric in metrics:
        if metric not in available:
            raise ConfigError(f"--metric must be one of {sorted(available)}, got {metric!r}")
    if groups is not None:
        _check_groups(groups, runs)
    if facet is not None or facet_by_prefix is not None:
        return _faceted(runs, metrics, out, groups, facet=facet, separator=facet_by_prefix)
    paths = []
    for metric in metrics:
        drawn = [_groups(groups, rows, summary, metric) for _, rows, summary in runs]
        named = [(run_dir.name, rows) for run_dir, rows, _ in runs]
        paths.append(save_metric_figure(out / f"{metric}.png", named, metric=metric, groups=drawn))
    return paths


def _faceted(
    runs: list[tuple[Path, list[dict], dict]], metrics: list[str], out: Path, groups: list[str] | None,
    *, facet: str | None, separator: str | None,
) -> list[Path]:
    """One small-multiples PNG per metric (``genfair.plots.faceted_metric_figure``); every run's
    arms are placed before the first figure is drawn."""
    from genfair.factors import ArmFactorsConfig, place_arms, split_arms
    from genfair.plots import faceted_metric_figure
    from genfair.plots._facets import save_figure

    placed = []
    for run_dir, rows, summary in runs:
        arms = list(dict.fromkeys(row["arm"] for row in rows))
        if separator is not None:
            placed.append(split_arms(arms, separator))
            continue
        declared = (summary.get("config") or {}).get("arm_factors") or {}
        config = ArmFactorsConfig(**{k: v for k, v in declared.items() if k in ("levels", "pattern", "facet")})
        placed.append(place_arms(config, arms, facet=facet, key=f"{run_dir.name}: arm_factors"))
    paths = []
    for metric in metrics:
        drawn = [_groups(groups, rows, summary, metric) for _, rows, summary in runs]
        named = [(run_dir.name, rows, placement) for (run_dir, rows, _), placement in zip(runs, placed)]
        paths.append(save_figure(out / f"{metric}.png", faceted_metric_figure(named, metric=metric, groups=drawn)))
    return paths


def _common_headline(runs: list[tuple[Path, list[dict], dict]], metric_label) -> list[str]:
    """The first run's headline metrics that every run has as a headline metric, with the same
    meaning in each (an image run's "share" is not an analytic run's)."""
    first = runs[0][2].get("headline_metrics") or []
    common = [
        metric
        for metric in first
        if all(metric in (summary.get("headline_metrics") or []) for _, _, summary in runs)
        and len({metric_label(metric, rows) for _, rows, _ in runs}) == 1
    ]
    if not common:
        listed = "; ".join(f"{run_dir.name} ({summary.get('family')}): {summary.get('headline_metrics')}" for run_dir, _, summary in runs)
        raise ConfigError(f"the runs have no headline metric in common with one meaning ({listed}); choose one with --metric")
    return common


def _check_groups(groups: list[str], runs: list[tuple[Path, list[dict], dict]]) -> None:
    present = list(dict.fromkeys(row["group"] for _, rows, _ in runs for row in rows))
    allowed = [*_ALIASES, *present]
    for group in groups:
        if group not in allowed:
            raise ConfigError(f"--groups must name groups among {allowed}, got {group!r}")


def _groups(requested: list[str] | None, rows: list[dict], summary: dict, metric: str) -> list[str]:
    """The groups of one run to draw: ``requested`` with ``minority`` / ``majority`` resolved to the
    run's own (dropped where it has none), by default its minority and majority."""
    from genfair.plots._curves import default_groups

    roles = _minority_majority(summary)
    if requested is None:
        resolved = [g for g in (roles.get("minority"), roles.get("majority")) if g is not None]
        present = {row["group"] for row in rows if row["metric"] == metric}
        return resolved if resolved and set(resolved) <= present else default_groups(rows, metric)
    resolved = [roles.get(g) if g in _ALIASES else g for g in requested]
    return list(dict.fromkeys(g for g in resolved if g is not None))


def _minority_majority(summary: dict) -> dict[str, str]:
    """``{"minority": name, "majority": name}`` of a run with two classes or more (summary.json's
    ``minority``; the majority is the class with the largest share of ``data.proportions``)."""
    groups, minority = list(summary.get("groups") or []), summary.get("minority")
    shares = ((summary.get("config") or {}).get("data") or {}).get("proportions")
    if minority is None or len(groups) < 2 or not shares or len(shares) != len(groups):
        return {}
    return {"minority": minority, "majority": groups[max(range(len(shares)), key=shares.__getitem__)]}

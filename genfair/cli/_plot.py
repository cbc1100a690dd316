"""``genfair-plot RUN_DIR [RUN_DIR ...]``: overlay the metrics of several runs in one figure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genfair._outputs import read_metrics_csv
from genfair.checkpoint import read_json
from genfair.errors import USER_ERRORS, ConfigError
from genfair.plots import save_metric_figure

__all__ = ["plot_main"]


def plot_main(argv: list[str] | None = None) -> None:
    """Entry point of ``genfair-plot``: one PNG per metric, every run's arms and groups overlaid."""
    parser = argparse.ArgumentParser(prog="genfair-plot", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories (each holds metrics.csv)")
    parser.add_argument("--metric", action="append", help="metric to plot (repeatable); default: the headline metrics")
    parser.add_argument("--out", type=Path, default=Path("overlay"), help="output directory (default: ./overlay)")
    args = parser.parse_args(argv)
    try:
        paths = overlay(args.run_dirs, metrics=args.metric, out=args.out)
    except USER_ERRORS as error:
        print(f"genfair-plot: error: {error}", file=sys.stderr)
        sys.exit(2)
    for path in paths:
        print(path)


def overlay(run_dirs: list[Path], *, metrics: list[str] | None, out: Path) -> list[Path]:
    runs = []
    for run_dir in run_dirs:
        if not (run_dir / "metrics.csv").exists():
            raise ConfigError(f"run directory {run_dir} has no metrics.csv")
        runs.append((run_dir.name, read_metrics_csv(run_dir / "metrics.csv")))
    if not metrics:
        metrics = read_json(run_dirs[0] / "summary.json")["headline_metrics"]
    available = {row["metric"] for _, rows in runs for row in rows}
    for metric in metrics:
        if metric not in available:
            raise ConfigError(f"--metric must be one of {sorted(available)}, got {metric!r}")
    return [save_metric_figure(out / f"{metric}.png", runs, metric=metric) for metric in metrics]

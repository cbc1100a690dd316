"""Metrics across generations: the median over replicates with a 5-95 % band."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

__all__ = ["METRIC_LABELS", "plot_curves", "save_metric_figure"]

METRIC_LABELS = {
    "share": "class share in the training set",
    "extinct": "fraction of chains that lost the class",
    "w2_sq": "squared 2-Wasserstein distance to the truth",
    "mean_sq_err": "squared error of the mean",
    "trace_cov": "trace of the fitted covariance",
}
_LINESTYLES = ("-", "--", ":", "-.")


def plot_curves(ax, rows: Sequence[dict], *, metric: str, label_prefix: str = "", colors=None) -> None:
    """Draw one line per (arm, group) of ``metric`` on ``ax``: the median across replicates, and
    a band from the 5 % to the 95 % quantile. Groups differ by line style, arms by colour.

    Args:
        rows: ``metrics.csv`` rows (dicts with arm, generation, group, metric, median, q05, q95).
        label_prefix: prepended to each legend label (e.g. the run's name when overlaying runs).
        colors: an iterator of colours to draw from (shared across calls when overlaying).
    """
    selected = [row for row in rows if row["metric"] == metric]
    arms = list(dict.fromkeys(row["arm"] for row in selected))
    groups = list(dict.fromkeys(row["group"] for row in selected))
    colors = colors if colors is not None else iter(f"C{i}" for i in itertools.count())
    for arm in arms:
        color = next(colors)
        for group, style in zip(groups, itertools.cycle(_LINESTYLES)):
            curve = sorted((r for r in selected if r["arm"] == arm and r["group"] == group), key=lambda r: r["generation"])
            if not curve:
                continue
            x = [r["generation"] for r in curve]
            label = " · ".join(part for part in (label_prefix, arm, group) if part)
            ax.plot(x, [r["median"] for r in curve], style, color=color, label=label)
            ax.fill_between(x, [r["q05"] for r in curve], [r["q95"] for r in curve], color=color, alpha=0.15, linewidth=0)
    ax.set_xlabel("generation")
    ax.set_ylabel(f"{metric}: {METRIC_LABELS.get(metric, metric)}")
    ax.grid(alpha=0.3)


def save_metric_figure(path: Path, runs: Sequence[tuple[str, Sequence[dict]]], *, metric: str, title: str = "") -> Path:
    """One figure of ``metric`` across generations, overlaying ``runs`` (``(label, rows)`` pairs)."""
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    ax = figure.add_subplot()
    colors = iter(f"C{i}" for i in itertools.count())
    for label, rows in runs:
        plot_curves(ax, rows, metric=metric, label_prefix=label, colors=colors)
    ax.set_title(title or f"{metric} across generations (median, 5-95 % band across replicates)", fontsize=10)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path

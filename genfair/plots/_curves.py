"""Metrics across generations: the median over replicates with a 5-95 % band, or, for a single
replicate (a deep model), the value with its confidence interval."""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from genfair.checkpoint import write_bytes_atomic

__all__ = ["METRIC_LABELS", "plot_curves", "save_metric_figure"]

METRIC_LABELS = {
    "share": "class share in the training set",
    "extinct": "fraction of chains that lost the class",
    "w2_sq": "squared 2-Wasserstein distance to the truth",
    "mean_sq_err": "squared error of the mean",
    "trace_cov": "trace of the fitted covariance",
}
_LINESTYLES = ("-", "--", ":", "-.")
# 0/1 indicators, whose median is uninformative: drawn as the mean with a 95 % confidence band.
FRACTION_METRICS = frozenset({"extinct"})


def plot_curves(ax, rows: Sequence[dict], *, metric: str, label_prefix: str = "", colors=None) -> None:
    """Draw one line per (arm, group) of ``metric`` on ``ax``: the median across replicates, and
    a band from the 5 % to the 95 % quantile (for the 0/1 metrics of :data:`FRACTION_METRICS`:
    the mean, i.e. the fraction of replicates, with a 95 % normal confidence band; for a single
    replicate: the value with the ``lo``-``hi`` interval of ``metrics.csv``; for rows that
    summarize several seeds and carry ``n_seeds`` instead of ``n``, written by ``genfair-aggregate``:
    the mean across seeds with its ``lo``-``hi`` t-interval).
    Groups differ by line style, arms by colour.

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
            centre, low, high = _line_and_band(curve, fraction=metric in FRACTION_METRICS)
            ax.plot(x, centre, style, color=color, label=label)
            ax.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
    ax.set_xlabel("generation")
    ax.set_ylabel(f"{metric}: {METRIC_LABELS.get(metric, metric)}")
    ax.grid(alpha=0.3)


def _line_and_band(curve: list[dict], *, fraction: bool) -> tuple[list[float], list[float], list[float]]:
    if "n_seeds" in curve[0]:  # across seeds (genfair-aggregate): the mean with its t-interval
        return [r["mean"] for r in curve], [r["lo"] for r in curve], [r["hi"] for r in curve]
    if all(r["n"] <= 1 for r in curve) and "lo" in curve[0]:  # one replicate: its own interval
        return [r["mean"] for r in curve], [r["lo"] for r in curve], [r["hi"] for r in curve]
    if fraction:
        mean = [r["mean"] for r in curve]
        half = [0.0 if math.isnan(r["se"]) else 1.96 * r["se"] for r in curve]  # se is NaN for n = 1
        return mean, [m - h for m, h in zip(mean, half)], [m + h for m, h in zip(mean, half)]
    return [r["median"] for r in curve], [r["q05"] for r in curve], [r["q95"] for r in curve]


def save_metric_figure(path: Path, runs: Sequence[tuple[str, Sequence[dict]]], *, metric: str, title: str = "") -> Path:
    """One figure of ``metric`` across generations, overlaying ``runs`` (``(label, rows)`` pairs)."""
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    ax = figure.add_subplot()
    colors = iter(f"C{i}" for i in itertools.count())
    for label, rows in runs:
        plot_curves(ax, rows, metric=metric, label_prefix=label, colors=colors)
    single = all(row.get("n", 2) <= 1 for _, rows in runs for row in rows if row["metric"] == metric)
    if single:
        summary = "value, 95 % bootstrap CI"
    else:
        summary = "mean, 95 % CI" if metric in FRACTION_METRICS else "median, 5-95 % band across replicates"
    ax.set_title(title or f"{metric} across generations ({summary})", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    if len(labels) <= 12:
        ax.legend(fontsize=8)
    else:  # many arms: the legend goes below the axes, and the figure grows to hold it
        figure.set_size_inches(7, 4.2 + 0.16 * math.ceil(len(labels) / 3))
        figure.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=6)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    write_bytes_atomic(path, buffer.getvalue())
    return path

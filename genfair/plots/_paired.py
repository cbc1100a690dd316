"""Paired differences to a baseline arm across generations, with their t-intervals."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from genfair.checkpoint import write_bytes_atomic
from genfair.comparisons import PairedComparisons
from genfair.errors import ConfigError
from genfair.plots._curves import arm_colors

__all__ = ["save_paired_figure"]


def save_paired_figure(
    path: Path, result: PairedComparisons, *, metrics: Sequence[str], group: str, title: str = ""
) -> Path:
    """One panel per metric of ``metrics``: for each non-baseline arm (one colour each), the mean
    paired difference ``arm - baseline`` of ``group`` across generations with its t-interval as a
    band (the ``lo``-``hi`` of ``comparisons.csv``), and a zero line; the legend below the panels.

    Args:
        result: what :func:`genfair.comparisons.paired_comparisons` returned.
        metrics: the metrics to draw, in panel order (each must have rows for ``group``).
        group: a group name; ``"minority"`` means the primary group ``result.group`` when the
            rows have no group of that name.
        title: the figure's title (default: the baseline, group, n and interval).
    """
    if group == "minority" and not any(row["group"] == "minority" for row in result.rows):
        group = result.group
    rows = [row for row in result.rows if row["group"] == group]
    available = list(dict.fromkeys(row["metric"] for row in rows))
    missing = [metric for metric in metrics if metric not in available]
    if missing or not metrics:
        raise ConfigError(
            f"metrics must be a non-empty list of the compared metrics of group {group!r} {available}, "
            f"got {list(metrics)}"
        )
    arms = list(dict.fromkeys(row["arm"] for row in rows))
    colors = arm_colors(len(arms))
    columns = 2 if len(metrics) == 4 else min(len(metrics), 3)
    figure = Figure(figsize=(4.2 * columns, 3.4 * math.ceil(len(metrics) / columns) + 0.6), layout="constrained")
    axes = figure.subplots(math.ceil(len(metrics) / columns), columns, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        for index, arm in enumerate(arms):
            curve = sorted((r for r in rows if r["metric"] == metric and r["arm"] == arm), key=lambda r: r["generation"])
            x = [r["generation"] for r in curve]
            ax.plot(x, [r["mean_diff"] for r in curve], "o-", color=colors[index], markersize=3, label=arm)
            low = [r["lo"] if math.isfinite(r["lo"]) else r["mean_diff"] for r in curve]  # no interval: n < 2
            high = [r["hi"] if math.isfinite(r["hi"]) else r["mean_diff"] for r in curve]
            ax.fill_between(x, low, high, color=colors[index], alpha=0.18, linewidth=0)
        ax.axhline(0.0, color="0.3", linewidth=0.9, linestyle="--")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("generation")
        ax.set_ylabel(f"{metric}: arm − {result.baseline}")
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6), fontsize=8)
    ns = sorted({r["n"] for r in rows if r["metric"] in metrics})
    n_text = f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}-{ns[-1]}" if ns else "n = 0"
    figure.suptitle(
        title
        or f"paired difference to {result.baseline} (group {group}; mean over {n_text} pairs, "
        f"band: {result.config.level * 100:g} % t-interval)",
        fontsize=10,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    write_bytes_atomic(path, buffer.getvalue())
    return path

"""Metrics across generations: the median over replicates with a 5-95 % band, or, for a single
replicate (a deep model), the value with its confidence interval."""

from __future__ import annotations

import io
import itertools
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from genfair.checkpoint import write_bytes_atomic
from genfair.errors import ConfigError

__all__ = [
    "IMAGE_METRICS",
    "METRIC_LABELS",
    "POOLED_GROUPS",
    "arm_colors",
    "default_groups",
    "metric_figure",
    "metric_label",
    "plot_curves",
    "save_metric_figure",
]

# What each metric of metrics.csv measures, as an axis label. The image runs' "share" is another
# quantity than the analytic runs' (see IMAGE_LABELS); a metric missing here is labelled by its name.
METRIC_LABELS = {
    "share": "class share of the training set (the fitted class weight)",
    "extinct": "fraction of chains that lost the class",
    "w2_sq": "squared 2-Wasserstein distance to the truth",
    "mean_sq_err": "squared error of the fitted mean",
    "trace_cov": "trace of the fitted covariance",
    "train_share": "class share of the training set",
    "share_raw": "share of generated images (classifier, uncorrected)",
    "precision": "precision (fidelity)",
    "recall": "recall (diversity)",
    "density": "density (fidelity)",
    "coverage": "coverage (diversity)",
    "fd": "Fréchet distance (classifier features)",
    "kid": "kernel inception distance (classifier features)",
    "representation_ratio": "generated share / real share",
    "fairness_discrepancy": "L2 distance of generated to real class shares",
}
IMAGE_LABELS = {"share": "share of generated images (classifier, confusion-corrected)"}
# Metrics that only image runs (deep models measured by a classifier) report.
IMAGE_METRICS = frozenset({"train_share", "share_raw", "precision", "recall", "density", "coverage", "fd", "kid"})
# Groups that are not a class: every sample pooled, and the minority-to-majority ratio.
POOLED_GROUPS = ("all", "minority_to_majority")
_LINESTYLES = ("-", "--", ":", "-.")
# 0/1 indicators, whose median is uninformative: drawn as the mean with a 95 % confidence band.
FRACTION_METRICS = frozenset({"extinct"})


def arm_colors(count: int) -> list:
    """``count`` distinct colours, one per arm: matplotlib's ``C0``-``C9`` for up to 10 arms,
    ``tab20`` for up to 20 (the 16 arms of ``experiment=fairness_x_madness``), else evenly spaced
    hues of ``turbo``; ``C{i}`` repeats after 10, so two arms would share a colour."""
    from matplotlib import colormaps

    if count <= 10:
        return [f"C{i}" for i in range(count)]
    if count <= 20:
        return [colormaps["tab20"](i) for i in range(count)]
    return [colormaps["turbo"](i / (count - 1)) for i in range(count)]


def metric_label(metric: str, rows: Sequence[dict]) -> str:
    """The axis label of ``metric`` in a run whose ``metrics.csv`` rows are ``rows`` (an image run,
    one with any of :data:`IMAGE_METRICS`, measures another "share" than an analytic run)."""
    if any(row["metric"] in IMAGE_METRICS for row in rows):
        return IMAGE_LABELS.get(metric) or METRIC_LABELS.get(metric, metric)
    return METRIC_LABELS.get(metric, metric)


def default_groups(rows: Sequence[dict], metric: str) -> list[str]:
    """The groups drawn when none are asked for: the classes (not :data:`POOLED_GROUPS`), or the
    pooled group when a run has no other (a one-class Gaussian reports ``all`` only)."""
    groups = list(dict.fromkeys(row["group"] for row in rows if row["metric"] == metric))
    return [g for g in groups if g not in POOLED_GROUPS] or groups


def plot_curves(
    ax, rows: Sequence[dict], *, metric: str, label_prefix: str = "", colors=None, groups: Sequence[str] | None = None
) -> None:
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
        groups: the groups to draw, in order (default: :func:`default_groups`).
    """
    selected = [row for row in rows if row["metric"] == metric]
    arms = list(dict.fromkeys(row["arm"] for row in selected))
    groups = list(groups) if groups is not None else default_groups(rows, metric)
    colors = colors if colors is not None else iter(arm_colors(len(arms)))
    for arm in arms:
        color = next(colors)
        for group, style in zip(groups, itertools.cycle(_LINESTYLES)):
            curve = sorted((r for r in selected if r["arm"] == arm and r["group"] == group), key=lambda r: r["generation"])
            if not curve:
                continue
            x = [r["generation"] for r in curve]
            label = " · ".join(part for part in (label_prefix, arm, group) if part)
            centre, low, high = _line_and_band(curve, fraction=metric in FRACTION_METRICS)
            ax.plot(x, centre, style, color=color, label=label, marker="." if len(x) < 3 else None)
            ax.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
    ax.set_xlabel("generation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole numbers
    ax.set_ylabel(textwrap.fill(metric_label(metric, rows), 36))  # the title names the metric's key
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


def save_metric_figure(
    path: Path,
    runs: Sequence[tuple[str, Sequence[dict]]],
    *,
    metric: str,
    title: str = "",
    groups: Sequence[Sequence[str]] | None = None,
) -> Path:
    """Save :func:`metric_figure` as a PNG at ``path``."""
    figure = metric_figure(runs, metric=metric, title=title, groups=groups)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def metric_figure(
    runs: Sequence[tuple[str, Sequence[dict]]],
    *,
    metric: str,
    title: str = "",
    groups: Sequence[Sequence[str]] | None = None,
) -> Figure:
    """One figure of ``metric`` across generations, overlaying ``runs`` (``(label, rows)`` pairs);
    the legend below the axes.

    Args:
        groups: for each run, the groups to draw (default: :func:`default_groups` of each).

    Raises :class:`ConfigError` when ``metric`` means different things in the runs (the "share"
    of an image run and of an analytic run).
    """
    labels = {metric_label(metric, rows) for _, rows in runs}
    if len(labels) > 1:
        raise ConfigError(f"metric {metric!r} means different things in these runs ({' / '.join(sorted(labels))}); plot them apart")
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    ax = figure.add_subplot()
    curves = sum(len({row["arm"] for row in rows if row["metric"] == metric}) for _, rows in runs)
    colors = iter(arm_colors(curves))  # one per arm of each run
    for index, (label, rows) in enumerate(runs):
        plot_curves(ax, rows, metric=metric, label_prefix=label, colors=colors, groups=None if groups is None else groups[index])
    drawn = [row for _, rows in runs for row in rows if row["metric"] == metric]
    if all(row.get("n", 2) <= 1 for row in drawn):  # one replicate: its own interval, where it has one
        summary = "value, 95 % bootstrap CI" if any(math.isfinite(row.get("lo", math.nan)) for row in drawn) else "value"
    else:
        summary = "mean, 95 % CI" if metric in FRACTION_METRICS else "median, 5-95 % band across replicates"
    ax.set_title(title or f"{metric} across generations ({summary})", fontsize=10)
    handles, names = ax.get_legend_handles_labels()
    if handles:  # below the axes, where it covers no data; the figure grows to hold it
        fits = int(7 * 120 // (6 * max(map(len, names)) + 50))  # entries of this length a row holds (~6 px a character)
        columns = max(1, min(4, len(names), fits))
        figure.set_size_inches(7, 4.2 + 0.2 * math.ceil(len(names) / columns))
        figure.legend(handles, names, loc="outside lower center", ncol=columns, fontsize=7 if len(names) > 12 else 8)
    return figure

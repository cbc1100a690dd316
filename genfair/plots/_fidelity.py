"""The default experiment's figure: how the minority class fares across generations, per arm."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from genfair.checkpoint import write_bytes_atomic
from genfair.factors import ArmFactors
from genfair.plots._curves import arm_colors
from genfair.plots._facets import draw_band, each_arm, facet_grid, legend_once

__all__ = ["FIDELITY_PANELS", "faceted_fidelity_figure", "fidelity_figure", "save_fidelity_figure"]

# (metric, axis label); "share" is the confusion-corrected share of the generated images that
# are of the minority class ({minority} is filled in).
FIDELITY_PANELS: tuple[tuple[str, str], ...] = (
    ("share", "share of generated images of class {minority}\n(classifier, confusion-corrected)"),
    ("precision", "precision (fidelity)"),
    ("recall", "recall (diversity)"),
    ("coverage", "coverage (diversity)"),
)


def save_fidelity_figure(
    path: Path, rows: Sequence[dict], *, minority: str, majority: str, target_share: float, title: str = "",
    factors: ArmFactors | None = None,
) -> Path:
    """Save :func:`fidelity_figure` as a PNG at ``path``, or :func:`faceted_fidelity_figure`
    when the arms are placed in ``factors``."""
    if factors is not None:
        figure = faceted_fidelity_figure(rows, factors, minority=minority, majority=majority, target_share=target_share, title=title)
    else:
        figure = fidelity_figure(rows, minority=minority, majority=majority, target_share=target_share, title=title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def fidelity_figure(rows: Sequence[dict], *, minority: str, majority: str, target_share: float, title: str = "") -> Figure:
    """"Minority fidelity across generations": one panel per metric of :data:`FIDELITY_PANELS`,
    one colour per arm; the minority as solid lines with their ``lo``-``hi`` confidence bands, the
    majority as thin dotted lines for reference (not in the share panel, whose y-axis spans the
    minority's shares, bands and real share, drawn as a grey line); the legend (arms, then line
    styles) below the panels.

    Args:
        rows: ``metrics.csv`` rows of a run with one replicate per arm (a deep model).
        minority, majority: group names.
        target_share: the minority's share in the real training data.
    """
    arms = list(dict.fromkeys(row["arm"] for row in rows))
    colors = arm_colors(len(arms))
    figure = Figure(figsize=(10, 6.4), layout="constrained")
    axes = figure.subplots(2, 2, sharex=True).ravel()
    for ax, (metric, label) in zip(axes, FIDELITY_PANELS):
        for index, arm in enumerate(arms):
            color = colors[index]
            for group, style, width in ((minority, "-", 1.8), (majority, ":", 1.0)):
                curve = _curve(rows, arm, metric, group)
                if not curve or (metric == "share" and group == majority):
                    continue  # the share panel's y-axis spans the minority's lines, bands and real share
                x = [r["generation"] for r in curve]
                ax.plot(x, [r["mean"] for r in curve], style, color=color, linewidth=width)
                if group == minority:
                    low = [r["lo"] if math.isfinite(r["lo"]) else r["mean"] for r in curve]
                    high = [r["hi"] if math.isfinite(r["hi"]) else r["mean"] for r in curve]
                    ax.fill_between(x, low, high, color=color, alpha=0.18, linewidth=0)
        if metric == "share":
            ax.axhline(target_share, color="0.5", linewidth=1, linestyle="--")
        ax.set_ylabel(label.format(minority=minority))
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole numbers
    for ax in axes[2:]:
        ax.set_xlabel("generation")
    # One entry per arm (its colour) and one per line style, below the panels: readable for any
    # number of arms.
    entries = [(Line2D([], [], color=color, linewidth=1.8), arm) for color, arm in zip(colors, arms)]
    entries += [
        (Line2D([], [], color="0.2", linewidth=1.8), f"{minority} (minority, 95 % band)"),
        (Line2D([], [], color="0.2", linewidth=1.0, linestyle=":"), f"{majority} (majority)"),
        (Line2D([], [], color="0.5", linewidth=1.0, linestyle="--"), f"real share of {minority}"),
    ]
    handles, labels = zip(*entries)
    figure.legend(handles, labels, loc="outside lower center", ncol=min(len(entries), 6), fontsize=8)
    figure.suptitle(
        title or f"minority fidelity across generations (class {minority}; bands: 95 % bootstrap CI)", fontsize=11
    )
    return figure


def faceted_fidelity_figure(
    rows: Sequence[dict], factors: ArmFactors, *, minority: str, majority: str, target_share: float, title: str = ""
) -> Figure:
    """"Minority fidelity across generations" for many arms: one row of panels per metric of
    :data:`FIDELITY_PANELS` (shared y-axis), one column per level of ``factors.facet``, each arm
    in its column in the colour of its other levels (the same in every panel); the minority solid
    with its ``lo``-``hi`` band, the majority thin and dotted (not in the share row, which holds
    the real share as a grey line). Each minority line's ``gid`` is ``"<arm>/<minority>"``.

    Args:
        rows: ``metrics.csv`` rows (mean, lo, hi per arm, generation, group, metric).
        factors: where each arm sits (:func:`genfair.factors.place_arms`).
    """
    grid = facet_grid(factors, [label.format(minority=minority) for _, label in FIDELITY_PANELS])
    arms = list(dict.fromkeys(row["arm"] for row in rows))

    def draw(ax, row: int, arm: str) -> None:
        metric = FIDELITY_PANELS[row][0]
        for group, style, width in ((minority, "-", 1.6), (majority, ":", 0.9)):
            curve = _curve(rows, arm, metric, group)
            if curve and not (metric == "share" and group == majority):
                x = [r["generation"] for r in curve]
                draw_band(ax, x, [r["mean"] for r in curve], [r["lo"] for r in curve], [r["hi"] for r in curve],
                          style=grid.style(arm), gid=f"{arm}/{group}", linestyle=style, linewidth=width,
                          band=group == minority)  # fmt: skip

    each_arm(grid, arms, len(FIDELITY_PANELS), draw)
    for ax in grid.axes[0]:
        ax.axhline(target_share, color="0.5", linewidth=1, linestyle="--")
    legend_once(grid, [
        (Line2D([], [], color="0.2", linewidth=1.6), f"{minority} (minority, band)"),
        (Line2D([], [], color="0.2", linewidth=0.9, linestyle=":"), f"{majority} (majority)"),
        (Line2D([], [], color="0.5", linewidth=1.0, linestyle="--"), f"real share of {minority}"),
    ])  # fmt: skip
    grid.figure.suptitle(textwrap.fill(title or f"minority fidelity across generations (class {minority})", 110), fontsize=10)
    return grid.figure


def _curve(rows: Sequence[dict], arm: str, metric: str, group: str) -> list[dict]:
    selected = (r for r in rows if r["arm"] == arm and r["metric"] == metric and r["group"] == group)
    return sorted(selected, key=lambda r: r["generation"])

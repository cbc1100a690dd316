"""Small multiples for many arms: one column per level of the facet factor, one colour per level
of the other factors, the same colour for the same level in every panel, shared y-axes per
metric, the legend once (``genfair.factors`` places the arms)."""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from genfair.checkpoint import write_bytes_atomic
from genfair.errors import ConfigError
from genfair.factors import COLOURS, MARKERS, ArmFactors
from genfair.plots._curves import arm_colors

__all__ = ["FacetGrid", "draw_band", "each_arm", "facet_grid", "faceted_metric_figure", "legend_once", "level_styles", "save_figure"]


def level_styles(levels: Sequence[str]) -> dict[str, tuple[object, str | None]]:
    """``{level: (colour, marker)}``: :func:`genfair.plots._curves.arm_colors` for up to
    :data:`genfair.factors.COLOURS` levels (no marker); beyond, the 10 colours repeat and level i
    gets marker ``MARKERS[i // 10]`` (``genfair.factors.place_arms`` refuses more than 40)."""
    levels = list(levels)
    if len(levels) <= COLOURS:
        return {level: (colour, None) for level, colour in zip(levels, arm_colors(len(levels)))}
    colours = arm_colors(COLOURS)
    return {level: (colours[i % COLOURS], MARKERS[i // COLOURS]) for i, level in enumerate(levels)}


@dataclass(frozen=True)
class FacetGrid:
    """A figure of ``len(metrics)`` rows x one column per facet level; ``axes[row][column]``."""

    figure: Figure
    axes: list[list]
    factors: ArmFactors
    styles: dict[str, tuple[object, str | None]]

    def ax(self, row: int, arm: str):
        """The panel of ``arm`` in metric row ``row``."""
        return self.axes[row][self.factors.columns().index(self.factors.column(arm))]

    def style(self, arm: str) -> tuple[object, str | None]:
        return self.styles[self.factors.colour(arm)]


def facet_grid(factors: ArmFactors, row_labels: Sequence[str], *, width: float = 3.2, height: float = 2.5) -> FacetGrid:
    """The empty grid: rows share their y-axis (one metric each), every panel the x-axis
    (generations, whole numbers); columns titled ``facet = level``; y labels on the first column."""
    columns = factors.columns()
    # at least 8 inches wide: the title and the legend fit over two columns too
    figure = Figure(figsize=(max(8.0, width * len(columns) + 1.0), height * len(row_labels) + 1.2), layout="constrained")
    axes = figure.subplots(len(row_labels), len(columns), sharex=True, sharey="row", squeeze=False)
    for row, label in enumerate(row_labels):
        axes[row][0].set_ylabel(label, fontsize=8)
        for ax in axes[row]:
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=7)
    for column, level in enumerate(columns):
        if factors.facet is not None:
            axes[0][column].set_title(f"{factors.facet} = {level}", fontsize=9)
        axes[-1][column].set_xlabel("generation", fontsize=8)
    return FacetGrid(figure, [list(row) for row in axes], factors, level_styles(factors.colours()))


def legend_once(grid: FacetGrid, extra: Sequence[tuple[Line2D, str]] = ()) -> None:
    """One legend below the panels: each colour level (its colour and marker), then ``extra``."""
    colour_factors = [f for f in grid.factors.levels if f != grid.factors.facet]
    entries = [
        (Line2D([], [], color=colour, marker=marker, linewidth=1.8), level or "all arms")
        for level, (colour, marker) in grid.styles.items()
    ]
    entries += list(extra)
    handles, labels = zip(*entries)
    title = " x ".join(colour_factors) if colour_factors else None
    grid.figure.legend(handles, labels, loc="outside lower center", ncol=min(len(entries), 6), fontsize=8, title=title)


def draw_band(ax, x: Sequence[int], centre: Sequence[float], low: Sequence[float], high: Sequence[float],
              *, style: tuple[object, str | None], gid: str, linestyle: str = "-", linewidth: float = 1.6,
              band: bool = True) -> None:  # fmt: skip
    """One curve with its band (a NaN bound: no band there); the line's ``gid`` names it (``arm/group``)."""
    colour, marker = style
    ax.plot(x, centre, linestyle, color=colour, marker=marker, markersize=3, linewidth=linewidth, gid=gid)
    if band:
        low = [lo if math.isfinite(lo) else c for lo, c in zip(low, centre)]
        high = [hi if math.isfinite(hi) else c for hi, c in zip(high, centre)]
        ax.fill_between(x, low, high, color=colour, alpha=0.15, linewidth=0)


def save_figure(path: Path, figure: Figure) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def each_arm(grid: FacetGrid, arms: Sequence[str], rows: int, draw: Callable[[object, int, str], None]) -> None:
    """``draw(ax, row, arm)`` for every arm placed by ``grid.factors`` in every metric row."""
    for arm in arms:
        if arm in grid.factors.placement:
            for row in range(rows):
                draw(grid.ax(row, arm), row, arm)


def faceted_metric_figure(
    runs: Sequence[tuple[str, Sequence[dict], ArmFactors]], *, metric: str, groups: Sequence[Sequence[str]], title: str = ""
) -> Figure:
    """``genfair-plot --facet``: ``metric`` across generations, one panel per facet level, each
    arm in its level's colour (:func:`genfair.plots._curves.plot_curves`'s line and band), groups
    by line style; several runs are told apart by the label prefix (the run's name).

    Args:
        runs: ``(label, metrics.csv rows, placement)`` per run; the placements must share their
            facet's levels and colour levels (the union is drawn).
        groups: for each run, the groups to draw.
    """
    from genfair.plots._curves import _LINESTYLES, metric_label, plot_curves

    factors = _union([placement for _, _, placement in runs])
    grid = facet_grid(factors, [metric_label(metric, runs[0][1])], width=3.6, height=3.2)
    for (label, rows, placement), drawn in zip(runs, groups):
        for arm in placement.placement:
            colour, marker = grid.styles[placement.colour(arm)]
            ax = grid.axes[0][factors.columns().index(placement.column(arm))]
            arm_rows = [row for row in rows if row["arm"] == arm]
            before = len(ax.get_lines())
            plot_curves(ax, arm_rows, metric=metric, label_prefix=label if len(runs) > 1 else "", colors=iter([colour]), groups=drawn)
            for line in ax.get_lines()[before:]:  # beyond 10 colour levels, the marker tells them apart
                line.set_marker(marker or line.get_marker())
            ax.set_ylabel("")
    grid.axes[0][0].set_ylabel(metric_label(metric, runs[0][1]), fontsize=8)
    styles = zip(dict.fromkeys(g for run_groups in groups for g in run_groups), itertools.cycle(_LINESTYLES))
    legend_once(grid, [(Line2D([], [], color="0.2", linestyle=style), f"group {group}") for group, style in styles])
    grid.figure.suptitle(title or f"{metric} across generations, by {factors.facet or 'arm'}", fontsize=10)
    return grid.figure


def _union(placements: Sequence[ArmFactors]) -> ArmFactors:
    """One :class:`ArmFactors` holding every run's arms (later runs' new levels appended)."""
    first = placements[0]
    levels = {f: list(values) for f, values in first.levels.items()}
    placement: dict[str, dict[str, str]] = {}
    for other in placements:
        if list(other.levels) != list(levels) or other.facet != first.facet:
            raise ConfigError(f"--facet: the runs must share their factors {list(levels)} and facet {first.facet!r}, got {list(other.levels)}")
        for f, values in other.levels.items():
            levels[f] += [v for v in values if v not in levels[f]]
        placement.update(other.placement)
    return ArmFactors({f: tuple(v) for f, v in levels.items()}, placement, first.facet)

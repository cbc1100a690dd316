"""The loop's effect, drawn: each arm's change from generation 0, per replicate, across
generations (the endpoint of ``compare.relative_to = generation_0``), faceted like the
minority-fidelity figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from genfair.errors import ConfigError
from genfair.factors import ArmFactors
from genfair.plots._facets import draw_band, each_arm, facet_grid, legend_once, save_figure

__all__ = ["change_figure", "save_change_figure"]


def save_change_figure(path: Path, rows: Sequence[dict], **kwargs) -> Path:
    """Save :func:`change_figure` as a PNG at ``path``."""
    return save_figure(path, change_figure(rows, **kwargs))


def change_figure(
    rows: Sequence[dict], *, group: str, metrics: Sequence[str], factors: ArmFactors | None = None, title: str = ""
) -> Figure:
    """One row of panels per metric of ``metrics`` and one column per level of ``factors.facet``
    (one column without factors): for each arm, the mean over replicates of x_{g,r} - x_{0,r}
    with its t-interval as the band, in its colour level's colour (one colour per arm without
    factors), and a zero line (no change). Each line's ``gid`` is ``"<arm>/<metric>"``.

    Args:
        rows: :func:`genfair.comparisons.changes_from_generation_0` rows (arm, metric, group,
            generation, n, mean, lo, hi).
        group: the group drawn (the minority's name).
        metrics: the metrics to draw, each with rows of ``group``.
        factors: where each arm sits; ``None``: every arm its own colour, one column.
    """
    selected = [row for row in rows if row["group"] == group]
    available = list(dict.fromkeys(row["metric"] for row in selected))
    if not metrics or any(metric not in available for metric in metrics):
        raise ConfigError(f"metrics must be a non-empty list of the metrics of group {group!r} {available}, got {list(metrics)}")
    arms = list(dict.fromkeys(row["arm"] for row in selected))
    if factors is None:
        factors = ArmFactors({"arm": tuple(arms)}, {arm: {"arm": arm} for arm in arms}, None)
    grid = facet_grid(factors, [f"{metric} of {group}:\nchange from generation 0" for metric in metrics])

    def draw(ax, row: int, arm: str) -> None:
        curve = sorted((r for r in selected if r["arm"] == arm and r["metric"] == metrics[row]), key=lambda r: r["generation"])
        if curve:
            x = [r["generation"] for r in curve]
            draw_band(ax, x, [r["mean"] for r in curve], [r["lo"] for r in curve], [r["hi"] for r in curve],
                      style=grid.style(arm), gid=f"{arm}/{metrics[row]}")  # fmt: skip

    each_arm(grid, arms, len(metrics), draw)
    for ax in (ax for row in grid.axes for ax in row):
        ax.axhline(0.0, color="0.3", linewidth=0.9, linestyle="--")
    legend_once(grid)
    ns = sorted({r["n"] for r in selected if r["generation"] != 0 and r["metric"] in metrics})
    n_text = f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}-{ns[-1]}" if ns else "n = 0"
    grid.figure.suptitle(
        title or f"change from generation 0 (mean over {n_text} replicates, band: 95 % t-interval of the mean change)",
        fontsize=10,
    )
    return grid.figure

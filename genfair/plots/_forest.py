"""A forest plot of declared contrasts: one row per contrast of ``comparisons.csv``, its estimate,
its interval, and its adjusted p-value marked, as trial reports show their results."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from genfair.errors import ConfigError
from genfair.plots._facets import save_figure

__all__ = ["forest_figure", "save_forest_figure"]

ADJUSTED = "p_signflip_holm"  # the adjusted p-value marked (Holm over the primary rows, genfair.comparisons)


def save_forest_figure(path: Path, rows: Sequence[dict], *, title: str = "") -> Path:
    """Save :func:`forest_figure` as a PNG at ``path``."""
    return save_figure(path, forest_figure(rows, title=title))


def forest_figure(rows: Sequence[dict], *, title: str = "") -> Figure:
    """One row per contrast of ``rows`` (top to bottom in their order): a dot at ``mean_diff``, a
    line from ``lo`` to ``hi`` (the t-interval at the row's ``level``), and the adjusted p-value
    ``p_signflip_holm`` written at the right; the dot is filled when that p is below
    ``1 - level``, hollow otherwise; a zero line. Artists are named by ``gid``:
    ``interval:<arm>``, ``estimate:<arm>`` and ``p:<arm>``.

    Args:
        rows: rows of :data:`genfair.comparisons.COMPARISON_COLUMNS` (e.g. the ``primary``
            rows of ``comparisons.csv``), numbers as floats.
    """
    if not rows:
        raise ConfigError("rows must hold at least one contrast of comparisons.csv, got none")
    figure = Figure(figsize=(7.5, 1.2 + 0.32 * len(rows)), layout="constrained")
    ax = figure.add_subplot()
    for index, row in enumerate(rows):
        y = len(rows) - 1 - index
        alpha = 1 - float(row["level"])
        p = float(row[ADJUSTED])
        significant = math.isfinite(p) and p < alpha
        arm = row["arm"]
        ax.plot([float(row["lo"]), float(row["hi"])], [y, y], color="0.25", linewidth=1.4, gid=f"interval:{arm}")
        ax.plot([float(row["mean_diff"])], [y], "o", color="C3" if significant else "0.25", markersize=6,
                markerfacecolor="C3" if significant else "white", gid=f"estimate:{arm}")  # fmt: skip
        text = f"p_adj = {p:.3g}" if math.isfinite(p) else "p_adj: n/a"
        ax.annotate(text, (1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=8, gid=f"p:{arm}")
    ax.axvline(0.0, color="0.5", linewidth=0.9, linestyle="--")
    ax.set_yticks(range(len(rows)), [f"{row['arm']} − {row['baseline']}" for row in reversed(rows)], fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    first = rows[0]
    change = " change from generation 0" if first.get("relative_to") == "generation_0" else ""
    ax.set_xlabel(f"{first['metric']} of {first['group']}{change}, generations {first['generation']}: arm − baseline", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    figure.suptitle(
        title or f"declared contrasts: mean paired difference, {float(first['level']) * 100:g} % t-interval, "
        f"Holm-adjusted sign-flip p (filled: p_adj < {1 - float(first['level']):.2g})",
        fontsize=9,
    )
    return figure

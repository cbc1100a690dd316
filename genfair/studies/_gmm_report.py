"""The GMM study's table files and figure."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Sequence
from pathlib import Path

from genfair.checkpoint import write_bytes_atomic
from genfair.studies._gmm_config import GmmPleConfig

__all__ = ["save_gmm_figure", "write_rows"]

_STATS = ("group", "metric", "mean", "se", "median", "q05", "q95", "n")
_PANELS = (
    ("kl", "all", "KL(data || model), nats"),
    ("weight", "minority", "minority weight"),
    ("variance", "minority", "minority variance"),
)


def write_rows(path: Path, rows: Sequence[dict], *, first: tuple[str, ...]) -> None:
    """Write ``rows`` as CSV, atomically: columns ``first`` then group, metric and the summary
    statistics across sets (mean, se, median, q05, q95, and n, the number of sets)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=[*first, *_STATS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, text.getvalue().encode())


def save_gmm_figure(
    path: Path,
    size_rows: Sequence[dict],
    loop_rows: Sequence[dict],
    *,
    sensitivity: dict[str, dict[str, dict[str, float]]],
    lams: dict[str, float],
    config: GmmPleConfig,
) -> Path:
    """Top row: KL, minority weight and variance, and the input sensitivity (relative change of
    the estimate between disjoint halves) against the set size n. Bottom row: KL, minority
    weight and variance across generations of the self-consuming loop at n = ``loop_size``,
    and the lam ablation at that n: input sensitivity and minority-weight error against lam.
    Lines are means over test sets (top) or chains (bottom) with 95 % confidence bands
    (mean +- 1.96 SE); dashed grey lines mark the truth.

    Args:
        sensitivity: ``{arm: {str(n): {"disjoint": ..., ...}}}`` (the summary's input_sensitivity).
        lams: ``{arm: lam}`` of the hypernetwork arms at ``loop_size``.
    """
    from matplotlib.figure import Figure  # here, not at import: the genfair command imports the studies' configs

    figure = Figure(figsize=(17, 7.5))
    # Fixed margins rather than constrained layout, which costs seconds for eight panels.
    axes = figure.subplots(2, 4, gridspec_kw=dict(left=0.05, right=0.99, bottom=0.07, top=0.93, wspace=0.28, hspace=0.28))
    arms = list(dict.fromkeys([row["arm"] for row in size_rows] + [row["arm"] for row in loop_rows]))
    colors = dict(zip(arms, (f"C{i}" for i in itertools.count())))
    truth = {"weight": config.weights[config.minority], "variance": config.variances[config.minority]}
    for column, (metric, group, label) in enumerate(_PANELS):
        for ax, rows, by in ((axes[0, column], size_rows, "set_size"), (axes[1, column], loop_rows, "generation")):
            for arm in arms:
                chosen = [r for r in rows if r["arm"] == arm and r["metric"] == metric and r["group"] == group]
                curve = sorted(chosen, key=lambda r: r[by])
                if curve:
                    x, mean, se = ([r[key] for r in curve] for key in (by, "mean", "se"))
                    _line(ax, x, mean, se, color=colors[arm], label=arm)
            if metric in truth:
                ax.axhline(truth[metric], color="grey", linestyle="--", linewidth=1)
            if metric == "kl":
                ax.set_yscale("log")
            ax.set_ylabel(label)
        axes[0, column].set_xscale("log")
        axes[0, column].set_xlabel("set size n")
        axes[1, column].set_xlabel(f"generation (fully synthetic loop, n = {config.loop_size})")
    _sensitivity_panels(axes[0, 3], axes[1, 3], sensitivity, lams, size_rows, colors, config)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].legend(fontsize=8)
    mixture = " + ".join(f"{w:g} N({m:g}, {v:g})" for w, m, v in zip(config.weights, config.means, config.variances))
    figure.suptitle(f"GMM {mixture}: mean with 95 % CI over test sets (top) and loop chains (bottom)", fontsize=11)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _line(ax, x: list, mean: list[float], se: list[float], *, color: str, label: str) -> None:
    """Mean with a 95 % band (+- 1.96 SE); a single point is drawn as a marker."""
    ax.plot(x, mean, "o-" if len(x) > 1 else "o", color=color, label=label, markersize=3)
    low = [m - 1.96 * s for m, s in zip(mean, se)]
    high = [m + 1.96 * s for m, s in zip(mean, se)]
    ax.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)


def _sensitivity_panels(top, bottom, sensitivity, lams, size_rows, colors, config: GmmPleConfig) -> None:
    """Top: input sensitivity (disjoint halves) against n per arm. Bottom: at n = loop_size,
    sensitivity and |mean minority weight - truth| against lam (lam = 0 drawn at the axis' left
    end, as hyper_mle), with EM's values as horizontal lines."""
    for arm, by_size in sensitivity.items():
        sizes = sorted(by_size, key=int)
        style = "o-" if len(sizes) > 1 else "o"
        top.plot([int(n) for n in sizes], [by_size[n]["disjoint"] for n in sizes], style, color=colors[arm], label=arm, markersize=3)
    top.set_xscale("log")
    top.set_yscale("log")
    top.set_xlabel("set size n")
    top.set_ylabel("input sensitivity: rms(H(A) - H(B)) / rms(H(A))")
    n = str(config.loop_size)
    weight = {r["arm"]: r["mean"] for r in size_rows if r["set_size"] == config.loop_size and r["metric"] == "weight"}
    target = config.weights[config.minority]
    ordered = sorted(lams, key=lams.get)
    positive = [lams[arm] for arm in ordered if lams[arm] > 0]
    floor = min(positive) / 10 if positive else 1e-3  # where lam = 0 is drawn on the log axis
    x = [lams[arm] if lams[arm] > 0 else floor for arm in ordered]
    bottom.plot(x, [sensitivity[arm][n]["disjoint"] for arm in ordered], "o-", color="k", label="input sensitivity (disjoint)")
    bottom.plot(x, [abs(weight[arm] - target) for arm in ordered], "s--", color="C3", label="|minority weight - truth|")
    if "em" in sensitivity:
        bottom.axhline(sensitivity["em"][n]["disjoint"], color="k", linestyle=":", linewidth=1, label="em: sensitivity")
        bottom.axhline(abs(weight["em"] - target), color="C3", linestyle=":", linewidth=1, label="em: weight error")
    bottom.set_xscale("log")
    bottom.set_yscale("log")
    bottom.set_xlabel(f"lam at n = {config.loop_size} (hyper_mle, lam = 0, drawn at {floor:g})")
    bottom.legend(fontsize=7)

"""The MinDiff case study's figure: FPR per slice and the sensitive slice's FPR gap, with
bootstrap intervals, baseline against the remedies."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from genfair.checkpoint import write_bytes_atomic

if TYPE_CHECKING:
    from genfair.fairness._mindiff_case_study import DownstreamMindiffConfig

__all__ = ["save_fpr_figure"]


def save_fpr_figure(path: Path, results: dict, config: DownstreamMindiffConfig) -> Path:
    """Two panels from the case study's ``results`` (see ``run_downstream_mindiff``), written
    atomically. Left: FPR of each negative slice at the decision threshold in replicate 0, one
    marker per arm, error bars the 95 % bootstrap interval. Right: the sensitive slice's FPR gap to
    the other negatives pooled, per arm and replicate (dots: decision threshold; hollow: the
    threshold matching the baseline's overall FPR), with intervals, and the mean over replicates
    (black bar)."""
    from matplotlib.figure import Figure  # here, not at import: the genfair command imports the studies' configs

    replicates = results["replicates"]
    arms = list(replicates[0]["arms"])
    figure = Figure(figsize=(13, 4.8), layout="constrained")
    slices_axis, gap_axis = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})

    first = replicates[0]["arms"]
    slices = list(first[arms[0]]["decision"]["fpr"])
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        entry = first[arm]["decision"]["fpr"]
        xs = [k - 0.4 + width * (i + 0.5) for k in range(len(slices))]
        values = [entry[s]["value"] for s in slices]
        lower = [entry[s]["value"] - entry[s]["lo"] for s in slices]
        upper = [entry[s]["hi"] - entry[s]["value"] for s in slices]
        slices_axis.errorbar(xs, values, yerr=[lower, upper], fmt="o", color=f"C{i}", capsize=2, markersize=4, label=arm)
    slices_axis.set_xticks(range(len(slices)), [f"{s}{' (sensitive)' if s == config.sensitive else ''}" for s in slices])
    slices_axis.set_xlabel("negative slice (digit)")
    slices_axis.set_ylabel(f"FPR at threshold {config.threshold:g}")
    train = results.get("train_sizes") or {}
    slices_axis.set_title(
        f"replicate 0: FPR per slice ({config.sensitive}: {train.get(config.sensitive, '?')} training images)",
        fontsize=10,
    )
    slices_axis.legend(fontsize=8)
    slices_axis.grid(alpha=0.3)

    for i, arm in enumerate(arms):
        for rule, offset, face in (("decision", -0.15, f"C{i}"), ("matched", 0.15, "none")):
            for r, replicate in enumerate(replicates):
                gap = replicate["arms"][arm][rule]["gap_to_rest"]
                x = i + offset + 0.04 * (r - (len(replicates) - 1) / 2)
                gap_axis.errorbar(
                    x, gap["value"], yerr=[[gap["value"] - gap["lo"]], [gap["hi"] - gap["value"]]], fmt="o",
                    color=f"C{i}", markerfacecolor=face, capsize=1.5, markersize=4, alpha=0.8,
                )
            mean = results["across_replicates"][arm][rule]["gap_to_rest"]["mean"]
            gap_axis.hlines(mean, i + offset - 0.1, i + offset + 0.1, color="k", linewidth=2)
    gap_axis.axhline(0, color="0.5", linewidth=1)
    gap_axis.set_xticks(range(len(arms)), arms, rotation=20, fontsize=8)
    gap_axis.set_ylabel(f"FPR({config.sensitive}) - FPR(other negatives)")
    gap_axis.set_title("FPR gap per replicate: dots at the decision threshold, hollow at matched overall FPR", fontsize=9)
    gap_axis.grid(alpha=0.3)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    write_bytes_atomic(path, buffer.getvalue())
    return path

"""The variance-bias study's figure: relative bias ± 1.96 SE, the lam ablation and every arm."""

from __future__ import annotations

import io
from pathlib import Path

from genfair.checkpoint import write_bytes_atomic

__all__ = ["save_relative_bias_figure"]

_MARKERS = {"draw": "o", "expectation": "s"}


def save_relative_bias_figure(path: Path, results: dict) -> Path:
    """Two panels from the variance-bias study's ``results`` (see ``run_variance_bias``), written atomically.

    Left: the penalty arms (``lam > 0``) against lam, one line per discrepancy form, with the
    minimiser of each arm's expected objective (hollow markers; see ``_variance_bias_theory``);
    right: every arm and reference, labelled with its input sensitivity (0: a constant H). Both
    mark the MLE's -1/n and Bessel's 0; error bars are 1.96 SE.
    """
    from matplotlib.figure import Figure  # here, not at import: the genfair command imports the studies' configs

    n = results["n"]
    arms, references = results["arms"], results["references"]
    figure = Figure(figsize=(11, 4.6), layout="constrained")
    ablation, overview = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.15]})

    for (discrepancy, marker), color in zip(_MARKERS.items(), ("C0", "C1")):
        penalty = [
            arm for arm in arms.values()
            if arm["constraint"] == "penalty" and arm["discrepancy"] == discrepancy and arm["lam"] > 0
        ]
        points = sorted((arm["lam"], arm["relative_bias"], 1.96 * arm["se"]) for arm in penalty)
        if points:
            lam, bias, half = zip(*points)
            label = f"penalty, {discrepancy}"
            ablation.errorbar(lam, bias, yerr=half, marker=marker, color=color, capsize=3, label=label)
        theory = sorted((arm["lam"], arm["theory"]["relative_bias"]) for arm in penalty if arm.get("theory"))
        if theory:
            lam, bias = zip(*theory)
            ablation.plot(lam, bias, marker=marker, color=color, linestyle="--", markerfacecolor="none", alpha=0.6,
                          label=f"theory, {discrepancy}")
    for name, style in (("hyper_mle", ":"), ("ple_constrained", "-.")):
        if name in arms:
            ablation.axhline(arms[name]["relative_bias"], color="0.4", linestyle=style, linewidth=1, label=name)
    _reference_lines(ablation.axhline, n)
    ablation.set_xscale("log")
    ablation.set_xlabel("penalty weight lam")
    ablation.set_ylabel("relative bias  E[sigma_hat^2 / sigma^2] - 1")
    ablation.set_title(f"lam ablation (n = {n})", fontsize=10)
    ablation.legend(fontsize=8)
    ablation.grid(alpha=0.3)

    rows = [(name, stats, "C7") for name, stats in references.items()]
    rows += [(name, stats, "C0") for name, stats in arms.items()]
    for position, (name, stats, color) in enumerate(rows):
        overview.errorbar(stats["relative_bias"], position, xerr=1.96 * stats["se"], fmt="o", color=color, capsize=3)
    labels = [f"{name}  [{_sensitivity(stats)}]" for name, stats, _ in rows]
    overview.set_yticks(range(len(rows)), labels, fontsize=8)
    overview.invert_yaxis()
    _reference_lines(overview.axvline, n)
    overview.set_xlabel("relative bias ± 1.96 SE (grey: references) [input sensitivity]")
    overview.set_title(f"every arm, {results['test_sets']} test sets", fontsize=10)
    overview.legend(fontsize=8, loc="lower right")
    overview.grid(alpha=0.3)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _sensitivity(stats: dict) -> str:
    return "-" if stats.get("sensitivity") is None else f"{stats['sensitivity']:.2f}"


def _reference_lines(draw, n: int) -> None:
    draw(-1.0 / n, color="C3", linestyle="--", linewidth=1, label=f"MLE: -1/n = {-1.0 / n:.3f}")
    draw(0.0, color="k", linewidth=1, label="Bessel (PLE theory): 0")

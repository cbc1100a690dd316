"""What a run draws and compares once its arms have finished: the paired comparisons of the arms
(``comparisons.csv``, ``figures/paired_differences.png``), the per-metric figures, and for image
experiments the minority-fidelity figure, the minority table and each arm's samples across
generations."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genfair._outputs import write_minority_table
from genfair.checkpoint import load_tensors
from genfair.comparisons import CompareConfig, paired_comparisons, write_comparisons_csv
from genfair.loops import GenerationRecord
from genfair.plots import save_fidelity_figure, save_metric_figure, save_paired_figure, save_samples_across_generations

__all__ = ["image_figures", "metric_figures", "write_comparisons"]

log = logging.getLogger("genfair")


def metric_figures(run_dir: Path, rows: list[dict], metrics: Sequence[str]) -> None:
    """``figures/<metric>.png`` for each of ``metrics``, every arm's curve."""
    for metric in metrics:
        save_metric_figure(run_dir / "figures" / f"{metric}.png", [("", rows)], metric=metric)


def write_comparisons(
    records: Mapping[str, list[GenerationRecord]], arms: Sequence[Any], compare: CompareConfig, run_dir: Path, *,
    seed: int, minority: str,
) -> dict:
    """Write comparisons.csv and its figure; return the summary's ``comparisons`` entry, the
    primary endpoint first (see :func:`genfair.experiment.run_experiment`)."""
    generations = [record.generation for record in records[arms[0].name]]
    finished = min(len(records[arm.name]) for arm in arms)
    values = {
        arm.name: {key: np.stack([r.values[key] for r in records[arm.name][:finished]]) for key in records[arm.name][0].values}
        for arm in arms
    }
    result = paired_comparisons(
        values, generations=generations[:finished], minority=minority, config=compare,
        arms=[arm.name for arm in arms], seed=seed,
    )
    write_comparisons_csv(run_dir / "comparisons.csv", result)
    shown = [m for m in ("coverage", "recall", "precision", "share") if f"{m}/{result.group}" in values[arms[0].name]]
    save_paired_figure(run_dir / "figures" / "paired_differences.png", result, metrics=shown or [compare.primary_metric],
                       group=result.group, title=f"class {result.group}: paired differences to {result.baseline}")
    for arm, row in result.primary.items():
        log.info(
            "primary endpoint %s/%s over generations %s: %s - %s = %+.3g [%.3g, %.3g], sign-flip p = %.3g (n = %d)",
            row["metric"], row["group"], row["generation"], arm, result.baseline, row["mean_diff"], row["lo"], row["hi"],
            row["p_signflip"], row["n"],
        )
    return {
        "baseline": result.baseline,
        "primary": {arm: {k: v for k, v in row.items() if k not in ("endpoint",)} for arm, row in result.primary.items()},
        "adjustment": "Holm (p_*_holm) and Benjamini-Hochberg (q_*_bh) over every exploratory cell",
        "file": "comparisons.csv",
    }



def image_figures(arms: Sequence[Any], rows: list[dict], run_dir: Path, *, minority: str) -> None:
    """The "minority fidelity across generations" figure, the arms' minority table and each
    arm's samples across generations."""
    data = arms[0].data
    shares = list(data.shares)
    majority = data.group_names[max(range(len(shares)), key=shares.__getitem__)]
    save_fidelity_figure(
        run_dir / "figures" / "minority_fidelity.png",
        rows,
        minority=minority,
        majority=majority,
        target_share=shares[list(data.group_names).index(minority)],
        title=f"minority fidelity across generations (class {minority}; bands: {_band(arms)})",
    )
    last = max(arm.loop.generations for arm in arms) - 1
    shown = sorted({0, last // 2, max(last - 1, 0), last})
    write_minority_table(run_dir / "minority_table.md", rows, minority=minority, majority=majority, generations=shown)
    for arm in arms:
        paths = sorted((run_dir / "samples" / arm.name).glob("generation_*.safetensors"))
        if paths:
            grids = [load_tensors(path)["grid"] for path in paths]
            save_samples_across_generations(
                run_dir / "figures" / f"samples_{arm.name}.png",
                grids,
                class_names=data.group_names,
                title=f"{arm.name}: samples across generations",
            )


def _band(arms: Sequence[Any]) -> str:
    """What the figures' bands are: the across-replicate interval, or one chain's bootstrap."""
    replicates = arms[0].loop.replicates
    if replicates > 1:
        return f"95 % t-interval across {replicates} replicates, logit scale for bounded metrics"
    return "95 % bootstrap CI over one chain's samples"

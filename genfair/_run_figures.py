"""What a run draws and compares once its arms have finished: the paired comparisons of the arms
(``comparisons.csv``, ``figures/paired_differences.png``), the per-metric figures, and for image
experiments the minority-fidelity figure (small multiples by factor), each arm's change from
generation 0, the forest plot of the primary rows, the minority table and each arm's samples
across generations."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genfair._outputs import write_minority_table
from genfair.checkpoint import load_tensors
from genfair.comparisons import CompareConfig, changes_from_generation_0, paired_comparisons, write_comparisons_csv
from genfair.errors import ConfigError
from genfair.factors import ArmFactors
from genfair.loops import GenerationRecord
from genfair.plots import (
    save_change_figure,
    save_fidelity_figure,
    save_forest_figure,
    save_metric_figure,
    save_paired_figure,
    save_samples_across_generations,
)

__all__ = ["image_figures", "metric_figures", "replicate_values", "write_comparisons"]

log = logging.getLogger("genfair")


def metric_figures(run_dir: Path, rows: list[dict], metrics: Sequence[str]) -> None:
    """``figures/<metric>.png`` for each of ``metrics``, every arm's curve."""
    for metric in metrics:
        save_metric_figure(run_dir / "figures" / f"{metric}.png", [("", rows)], metric=metric)


def write_comparisons(
    records: Mapping[str, list[GenerationRecord]], arms: Sequence[Any], compare: CompareConfig, run_dir: Path, *,
    seed: int, minority: str,
) -> dict:
    """Write comparisons.csv and its figures; return the summary's ``comparisons`` entry, the
    primary endpoint first (see :func:`genfair.experiment.run_experiment`)."""
    generations, values = replicate_values(records, arms)
    try:
        result = paired_comparisons(
            values, generations=generations, minority=minority, config=compare, arms=[arm.name for arm in arms], seed=seed,
        )
    except ConfigError as error:  # what the values hold (an arm lost generation 0 in every chain): the run stands
        log.error("comparisons.csv not written: %s", error)
        return {"error": str(error), "file": None}
    write_comparisons_csv(run_dir / "comparisons.csv", result)
    shown = [m for m in ("coverage", "recall", "precision", "share") if f"{m}/{result.group}" in values[arms[0].name]]
    save_paired_figure(run_dir / "figures" / "paired_differences.png", result, metrics=shown or [compare.primary_metric],
                       group=result.group, title=f"class {result.group}: paired differences to {result.baseline}")
    if arms[0].metric_family == "images":
        save_forest_figure(run_dir / "figures" / "forest.png", list(result.primary.values()))
    replicates = arms[0].loop.replicates
    form = " change from generation 0" if compare.relative_to == "generation_0" else ""
    for arm, row in result.primary.items():
        log.info(
            "primary endpoint %s/%s%s over generations %s: %s - %s = %+.3g [%.3g, %.3g], sign-flip p = %.3g (n = %d of %d replicates)",
            row["metric"], row["group"], form, row["generation"], arm, result.baseline, row["mean_diff"], row["lo"],
            row["hi"], row["p_signflip"], row["n"], replicates,
        )
    return {
        "baseline": result.baseline,
        "relative_to": compare.relative_to,
        "primary": {arm: {k: v for k, v in row.items() if k not in ("endpoint",)} for arm, row in result.primary.items()},
        **({"start": result.start} if result.start else {}),
        "adjustment": "Holm (p_*_holm) and Benjamini-Hochberg (q_*_bh) over every exploratory cell, and over the primary rows",
        "file": "comparisons.csv",
    }


def replicate_values(
    records: Mapping[str, list[GenerationRecord]], arms: Sequence[Any]
) -> tuple[list[int], dict[str, dict[str, np.ndarray]]]:
    """The generations every arm finished and ``values[arm]["metric/group"]`` ``(G, R)``, the
    replicates' values (:func:`genfair.comparisons.paired_comparisons`'s input)."""
    chains = {arm.name: records.get(arm.name, []) for arm in arms}
    finished = min(len(chain) for chain in chains.values())  # 0 when an arm failed in generation 0
    generations = [record.generation for record in chains[arms[0].name][:finished]]
    values = {
        name: {key: np.stack([r.values[key] for r in chain[:finished]]) for key in chain[0].values}
        for name, chain in chains.items()
    } if finished else {}  # fmt: skip
    return generations, values


def image_figures(
    arms: Sequence[Any], rows: list[dict], run_dir: Path, *, minority: str, factors: ArmFactors | None,
    records: Mapping[str, list[GenerationRecord]],
) -> None:
    """The "minority fidelity across generations" figure (small multiples with ``factors``), each
    arm's change from generation 0, the arms' minority table and each arm's samples across
    generations."""
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
        factors=factors,
    )
    generations, values = replicate_values(records, arms)
    metrics = [m for m in ("share", "precision", "recall", "coverage") if f"{m}/{minority}" in values.get(arms[0].name, {})]
    if 0 in generations and metrics:
        save_change_figure(run_dir / "figures" / "change_from_generation_0.png",
                           changes_from_generation_0(values, generations=generations), group=minority, metrics=metrics,
                           factors=factors)  # fmt: skip
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

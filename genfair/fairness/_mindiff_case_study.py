"""The MinDiff case study on real digits (``genfair experiment=downstream_mindiff``), a study of a
downstream classifier rather than of the self-consuming loop (registered in
``genfair.studies.STUDIES`` as ``downstream_mindiff``).

TensorFlow Model Remediation's case study (``docs/references.md`` §4), rebuilt offline: a binary
classifier ("is the digit odd?") whose slices are the ten digits, one negative digit (8 by
default) made rare in training (``sensitive_share``, 2 % by default), so the classifier calls
too many held-out 8s odd: a false-positive-rate gap between the sensitive slice and the other
negative slices. Every arm trains the same :class:`genfair.fairness.DownstreamClassifier` on the
same training set from the same initial weights (common random numbers): ``baseline`` without a
remedy, ``mindiff`` with MinDiff on the predicted scores of the sensitive slice's negatives
against the other negatives (the case study's weight 1.5, Gaussian kernel, length 0.1), and the
other classifier-side remedies as extra rows. ``replicates`` training sets (and initialisations)
are drawn; the held-out images are the same for all of them.

Measured on the held-out real images, per replicate and arm, at two thresholds: the decision
threshold (0.5), and, as in the case study, the threshold of ``threshold_grid`` at which the
arm's overall FPR is closest to the baseline's at 0.5 (chosen on the held-out images themselves,
as the case study does):

  - FPR per negative slice, and overall (with accuracy, a point value without interval);
  - ``gap_to_rest`` = FPR(sensitive) - FPR(the other negative slices pooled) (the case study's
    "sensitive vs majority" comparison, what MinDiff's penalty matches) and ``gap_to_best`` =
    FPR(sensitive) - min FPR over the other negative slices;
  - ``gap_reduction`` = baseline's ``gap_to_rest`` at 0.5 minus the arm's (at each threshold).

Every interval is a percentile interval of a stratified bootstrap (``bootstrap`` resamples,
within each slice) of the statistic itself; all arms of a replicate share one
:class:`~genfair.fairness.MetricFrame` over their stacked scores, so the resamples are paired and
the interval of a reduction accounts for the correlation between arms. Across replicates:
the mean and its standard error (the spread due to the training set and initialisation).

Outputs in ``run_dir``: ``fpr_by_slice.csv`` (one row per replicate, arm, threshold rule, slice
or gap) and ``figures/fpr_by_slice.png``; run through ``genfair.studies.run_study``, also
``summary.json`` with the numbers under ``results``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

from genfair.checkpoint import write_bytes_atomic
from genfair.fairness._downstream import binary_target, train_downstream
from genfair.fairness._frame import MetricFrame
from genfair.fairness._mindiff_config import DownstreamArm, DownstreamMindiffConfig
from genfair.fairness._mindiff_case_study_figure import save_fpr_figure
from genfair.fairness._slices import accuracy_at, false_positive_rate
from genfair.seeding import torch_generator
from genfair.studies._runner import StudyResult

__all__ = ["DownstreamArm", "DownstreamMindiffConfig", "run_downstream_mindiff"]

log = logging.getLogger("genfair")
TABLE_COLUMNS = ("replicate", "arm", "rule", "threshold", "slice", "metric", "value", "lo", "hi")


def run_downstream_mindiff(config: DownstreamMindiffConfig, *, seed: int, run_dir: Path) -> StudyResult:
    """Train every arm on every replicate's training set, evaluate by slice; write the table and figure.

    Seeds (``genfair.seeding``, replicate r as the generation): stream ``real`` draws the
    training set, ``fit`` the initial weights and mini-batches (the same for every arm),
    ``bootstrap`` the resamples (the same for every arm: paired intervals).

    Returns:
        ``results``: ``{"heldout_sizes", "train_sizes", "replicates": [{"arms": {arm: {rule:
        {"threshold", "accuracy", "overall_fpr", "fpr", "gap_to_rest", "gap_to_best",
        "gap_reduction"}}}, "baseline_overall_fpr", "training"}], "across_replicates"}``;
        ``files``: the table and the figure.
    """
    run_dir = Path(run_dir)
    data = config.data()
    names = data.group_names
    held = data.heldout()
    y_held = binary_target(held.y[0], names, config.positive)
    negatives = [n for n in names if n not in config.positive]
    results: dict[str, Any] = {
        "heldout_sizes": {n: int((held.y[0] == k).sum()) for k, n in enumerate(names)},
        "train_sizes": None,
        "replicates": [],
    }
    rows: list[dict] = []
    for r in range(config.replicates):
        train = data.draw(1, config.n_train, generator=torch_generator(seed, r, "real"))
        results["train_sizes"] = dict(zip(names, train.class_counts(len(names))[0].tolist()))
        scores, training = {}, {}
        for name, arm in config.arms.items():
            arm_started = time.perf_counter()
            trained = train_downstream(
                train.x[0], train.y[0], class_names=names, config=config.classifier_for(arm),
                generator=torch_generator(seed, r, "fit"),
            )
            scores[name] = trained.model.scores(held.x[0])
            training[name] = {
                "final_loss": trained.final_loss, "final_penalty": trained.final_penalty,
                "mindiff_label": trained.mindiff_label, "seconds": round(time.perf_counter() - arm_started, 2),
            }
        result = _evaluate(scores, y_held, held.y[0], names, negatives, config, torch_generator(seed, r, "bootstrap"))
        result["training"] = training
        results["replicates"].append(result)
        rows += _rows(r, result)
        log.info(
            "downstream_mindiff replicate %d: FPR gap to rest at %g %s", r, config.threshold,
            {name: round(a["decision"]["gap_to_rest"]["value"], 3) for name, a in result["arms"].items()},
        )
    results["across_replicates"] = _across(results["replicates"], list(config.arms))
    table, figure = run_dir / "fpr_by_slice.csv", run_dir / "figures" / "fpr_by_slice.png"
    _write_table(table, rows)
    save_fpr_figure(figure, results, config)
    return StudyResult(results=results, files=(table, figure))


def _fpr_column(y_true: torch.Tensor, scores: torch.Tensor, *, column: int, threshold: float) -> float:
    return false_positive_rate(y_true, scores[:, column], threshold=threshold)


def _negatives(y_true: torch.Tensor, scores: torch.Tensor) -> float:
    return float((y_true == 0).sum())


def _evaluate(
    scores: dict[str, torch.Tensor],
    y_true: torch.Tensor,
    groups: torch.Tensor,
    names: tuple[str, ...],
    negatives: list[str],
    config: DownstreamMindiffConfig,
    generator: torch.Generator,
) -> dict[str, Any]:
    """One replicate: thresholds, FPR per slice and the gaps, each with a paired bootstrap interval."""
    arms = list(scores)
    stacked = torch.stack([scores[a] for a in arms], dim=1)  # (n, arms)
    baseline_fpr = false_positive_rate(y_true, scores[config.baseline], threshold=config.threshold)
    thresholds = {a: {"decision": config.threshold, "matched": _matched(y_true, scores[a], baseline_fpr, config)} for a in arms}
    metrics: dict[str, Any] = {"negatives": _negatives}
    for column, a in enumerate(arms):
        for rule, t in thresholds[a].items():
            metrics[f"{a}|{rule}"] = partial(_fpr_column, column=column, threshold=t)
    frame = MetricFrame(
        metrics, y_true=y_true, y_pred=stacked, groups=groups, group_names=names,
        bootstrap=config.bootstrap, level=config.level, generator=generator,
    )
    by_group_ci, overall_ci = frame.by_group_ci, frame.overall_ci
    rest = [n for n in negatives if n != config.sensitive]

    def gap_to_rest(key: str, overall, by_group) -> float:
        counts = [by_group["negatives"][n] for n in rest]
        pooled = sum(c * by_group[key][n] for c, n in zip(counts, rest)) / sum(counts)
        return by_group[key][config.sensitive] - pooled

    def gap_to_best(key: str, overall, by_group) -> float:
        return by_group[key][config.sensitive] - min(by_group[key][n] for n in rest)

    reference = f"{config.baseline}|decision"
    out: dict[str, Any] = {"arms": {}, "baseline_overall_fpr": baseline_fpr}
    for a in arms:
        out["arms"][a] = {}
        for rule, t in thresholds[a].items():
            key = f"{a}|{rule}"
            statistics = {
                "gap_to_rest": partial(gap_to_rest, key),
                "gap_to_best": partial(gap_to_best, key),
                "gap_reduction": lambda o, g, key=key: gap_to_rest(reference, o, g) - gap_to_rest(key, o, g),
            }
            entry = {
                "threshold": t,
                "accuracy": accuracy_at(y_true, scores[a], threshold=t),
                "overall_fpr": _value(frame.overall[key], overall_ci[key]),
                "fpr": {n: _value(frame.by_group[key][n], by_group_ci[key][n]) for n in negatives},
            }
            for stat, function in statistics.items():
                entry[stat] = _value(frame.derived(function), frame.derived_ci(function))
            out["arms"][a][rule] = entry
    return out


def _matched(y_true: torch.Tensor, scores: torch.Tensor, target: float, config: DownstreamMindiffConfig) -> float:
    """The threshold of the grid whose overall FPR is closest to ``target`` (ties: closest to 0.5)."""
    return min(
        config.threshold_grid,
        key=lambda t: (abs(false_positive_rate(y_true, scores, threshold=t) - target), abs(t - config.threshold)),
    )


def _value(value: float, interval) -> dict[str, float]:
    return {"value": value, "lo": interval.lo, "hi": interval.hi}


def _rows(replicate: int, result: dict[str, Any]) -> list[dict]:
    rows = []
    for arm, rules in result["arms"].items():
        for rule, entry in rules.items():
            common = {"replicate": replicate, "arm": arm, "rule": rule, "threshold": entry["threshold"]}
            rows.append({**common, "slice": "all", "metric": "accuracy", "value": entry["accuracy"]})
            rows.append({**common, "slice": "all", "metric": "fpr", **entry["overall_fpr"]})
            rows += [{**common, "slice": n, "metric": "fpr", **v} for n, v in entry["fpr"].items()]
            for stat in ("gap_to_rest", "gap_to_best", "gap_reduction"):
                rows.append({**common, "slice": "sensitive", "metric": f"fpr_{stat}", **entry[stat]})
    return rows


def _across(replicates: list[dict], arms: list[str]) -> dict[str, Any]:
    """Per arm and threshold rule: the mean over replicates of each gap and its standard error."""
    out: dict[str, Any] = {}
    for a in arms:
        out[a] = {}
        for rule in ("decision", "matched"):
            out[a][rule] = {}
            for stat in ("accuracy", "overall_fpr", "gap_to_rest", "gap_to_best", "gap_reduction"):
                values = [r["arms"][a][rule][stat] for r in replicates]
                values = torch.tensor([v["value"] if isinstance(v, dict) else v for v in values], dtype=torch.float64)
                se = float(values.std() / math.sqrt(len(values))) if len(values) > 1 else math.nan
                out[a][rule][stat] = {"mean": float(values.mean()), "se": se}
            out[a][rule]["threshold_mean"] = sum(r["arms"][a][rule]["threshold"] for r in replicates) / len(replicates)
    return out


def _write_table(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, buffer.getvalue().encode())

"""Sliced evaluation of a binary classifier, Fairness Indicators style.

Per slice (a class) and overall, at every threshold t (an image is predicted positive when its
score is ``>= t``): accuracy, false-positive rate FPR = FP / (FP + TN), false-negative rate
FNR = FN / (FN + TP) and true-positive rate TPR = TP / (TP + FN) = 1 - FNR; a rate is NaN on a
slice without the examples it divides by (FPR on a slice without negatives). Each value has an
interval (:class:`~genfair.fairness.MetricFrame`: stratified bootstrap or jackknife); each slice
its gap to the best slice (highest accuracy and TPR, lowest FPR and FNR), with the gap's own
interval (the best slice re-chosen in every replicate), and the largest gap (best minus worst
slice, the ``all`` entry of ``gaps``). Slices with fewer than ``min_slice_size`` examples are
flagged, as Fairness Indicators does.

Example:
    >>> report = evaluate_slices(torch.tensor([0.9, 0.2, 0.7, 0.4]), torch.tensor([1, 0, 0, 0]),
    ...                          torch.tensor([0, 0, 1, 1]), group_names=["a", "b"], thresholds=[0.5])
    >>> report.values["fpr@0.5"]
    {'all': 0.3333333333333333, 'a': 0.0, 'b': 0.5}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from genfair.errors import ConfigError
from genfair.fairness._frame import Interval, MetricFrame
from genfair.metrics._array_like import as_tensor

__all__ = [
    "SLICE_METRICS",
    "SliceReport",
    "accuracy_at",
    "evaluate_slices",
    "false_negative_rate",
    "false_positive_rate",
    "true_positive_rate",
]


def accuracy_at(y_true: Any, scores: Any, *, threshold: float) -> float:
    """Share of ``(scores >= threshold) == y_true``; NaN without examples. ``y_true (n,)`` binary
    labels and ``scores (n,)``: tensors, NumPy arrays or lists, as are the rates' below."""
    y_true, scores = as_tensor("y_true", y_true), as_tensor("scores", scores)
    if len(y_true) == 0:
        return math.nan
    return float(((scores >= threshold).long() == y_true).double().mean())


def false_positive_rate(y_true: Any, scores: Any, *, threshold: float) -> float:
    """FP / (FP + TN): the share of negatives scored ``>= threshold``; NaN without negatives."""
    y_true, scores = as_tensor("y_true", y_true), as_tensor("scores", scores)
    negatives = y_true == 0
    return float((scores[negatives] >= threshold).double().mean()) if bool(negatives.any()) else math.nan


def true_positive_rate(y_true: Any, scores: Any, *, threshold: float) -> float:
    """TP / (TP + FN): the share of positives scored ``>= threshold``; NaN without positives."""
    y_true, scores = as_tensor("y_true", y_true), as_tensor("scores", scores)
    positives = y_true == 1
    return float((scores[positives] >= threshold).double().mean()) if bool(positives.any()) else math.nan


def false_negative_rate(y_true: Any, scores: Any, *, threshold: float) -> float:
    """FN / (FN + TP) = 1 - TPR; NaN without positives."""
    return 1.0 - true_positive_rate(y_true, scores, threshold=threshold)


# name -> (function, higher is better)
SLICE_METRICS = {
    "accuracy": (accuracy_at, True),
    "fpr": (false_positive_rate, False),
    "fnr": (false_negative_rate, False),
    "tpr": (true_positive_rate, True),
}


@dataclass(frozen=True)
class SliceReport:
    """What :func:`evaluate_slices` measured; every mapping holds every slice and ``all``.

    Attributes:
        values: ``{"fpr@0.5": {"all": ..., slice: ...}, ...}`` (keys ``<metric>@<t:g>``).
        intervals: the same keys, :class:`Interval` each.
        gaps: ``{"fpr@0.5": {slice: gap to the best slice, "all": best minus worst}, ...}``.
        gap_intervals: the same keys, :class:`Interval` each.
        sizes: examples per slice and ``all``.
        small: per slice, whether it has fewer than ``min_slice_size`` examples.
        frame: the underlying :class:`MetricFrame` (for other statistics, e.g. ``derived_ci``).
    """

    values: dict[str, dict[str, float]]
    intervals: dict[str, dict[str, Interval]]
    gaps: dict[str, dict[str, float]]
    gap_intervals: dict[str, dict[str, Interval]]
    sizes: dict[str, int]
    small: dict[str, bool]
    frame: MetricFrame

    def flat(self, prefix: str = "down_") -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
        """``({"<prefix><metric>@<t>/<slice>": value, "<prefix><metric>_gap@<t>/<slice>": gap,
        "<prefix>slice_size/<slice>": n, "<prefix>small_slice/<slice>": 0 or 1}, intervals)``,
        the ``metric/group`` keys of a loop's measurement."""
        values: dict[str, float] = {}
        intervals: dict[str, tuple[float, float]] = {}
        for key, by_slice in self.values.items():
            metric, at = key.split("@")
            for name, value in by_slice.items():
                values[f"{prefix}{key}/{name}"] = value
                ci = self.intervals[key][name]
                intervals[f"{prefix}{key}/{name}"] = (ci.lo, ci.hi)
            for name, gap in self.gaps[key].items():
                values[f"{prefix}{metric}_gap@{at}/{name}"] = gap
                ci = self.gap_intervals[key][name]
                intervals[f"{prefix}{metric}_gap@{at}/{name}"] = (ci.lo, ci.hi)
        for name, size in self.sizes.items():
            values[f"{prefix}slice_size/{name}"] = float(size)
        for name, small in self.small.items():
            values[f"{prefix}small_slice/{name}"] = float(small)
        return values, intervals


def evaluate_slices(
    scores: Any,
    y_true: Any,
    groups: Any,
    *,
    group_names: Sequence[str],
    thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    metrics: Sequence[str] = tuple(SLICE_METRICS),
    interval: str = "bootstrap",
    bootstrap: int = 0,
    buckets: int = 20,
    level: float = 0.95,
    min_slice_size: int = 0,
    generator: torch.Generator | None = None,
) -> SliceReport:
    """Sliced metrics of ``scores (n,)`` in [0, 1] against binary labels ``y_true (n,)``, slices
    ``groups (n,)`` in ``[0, len(group_names))`` (see the module docstring); tensors, NumPy arrays
    or lists. ``bootstrap = 0`` with ``interval = "bootstrap"`` gives NaN intervals."""
    for name in metrics:
        if name not in SLICE_METRICS:
            raise ConfigError(f"metrics must be among {list(SLICE_METRICS)}, got {name!r}")
    if not len(thresholds) or not all(0 < t < 1 for t in thresholds):
        raise ConfigError(f"thresholds must be a non-empty list of numbers in (0, 1), got {list(thresholds)}")
    y_true = as_tensor("y_true", y_true).long()
    functions = {
        f"{name}@{t:g}": partial(SLICE_METRICS[name][0], threshold=float(t)) for t in thresholds for name in metrics
    }
    higher = {f"{name}@{t:g}": SLICE_METRICS[name][1] for t in thresholds for name in metrics}
    frame = MetricFrame(
        functions, y_true=y_true, y_pred=scores, groups=groups, group_names=group_names, bootstrap=bootstrap,
        level=level, generator=generator, interval=interval, buckets=buckets,
    )
    by_group_ci, overall_ci = frame.by_group_ci, frame.overall_ci
    values = {m: {"all": frame.overall[m], **frame.by_group[m]} for m in functions}
    intervals = {m: {"all": overall_ci[m], **by_group_ci[m]} for m in functions}
    gaps, gap_intervals = {}, {}
    difference, difference_ci = frame.difference(), frame.difference_ci()
    to_best = {h: frame.gap_to_best(higher_is_better=h) for h in (True, False)}
    to_best_ci = {h: frame.gap_to_best_ci(higher_is_better=h) for h in (True, False)}
    for m in functions:
        gaps[m] = {**to_best[higher[m]][m], "all": difference[m]}
        gap_intervals[m] = {**to_best_ci[higher[m]][m], "all": difference_ci[m]}
    sizes = {"all": len(y_true), **frame.sizes}
    small = {name: size < min_slice_size for name, size in frame.sizes.items()}
    return SliceReport(values, intervals, gaps, gap_intervals, sizes, small, frame)

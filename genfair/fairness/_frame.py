"""A MetricFrame-like object: any metric, overall and per group, with stratified-bootstrap intervals.

Like fairlearn's ``MetricFrame`` (overall, by_group, difference, ratio and their ``_ci``
twins), with two differences that its users asked for:

  - every result has the same shape whatever the data: ``by_group`` always holds every group
    named in ``group_names`` (NaN for a group with no samples), ``difference``/``ratio`` always
    one number per metric;
  - the bootstrap resamples *within* each group (a resample keeps every group's size), so it
    never breaks or silently drops a small group when a resample happens to miss it (fairlearn
    issue 1441); the intervals are percentile intervals over ``bootstrap`` resamples.

A metric is any function ``metric(y_true (k,), y_pred (k,)) -> float`` of one group's samples
(accuracy, a false-positive rate at a threshold, a loss, ...); it may return NaN where it is
undefined (a false-positive rate without negatives).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from genfair.errors import ConfigError, check_choice, check_positive_int
from genfair.metrics import percentile_interval, stratified_resample

__all__ = ["Interval", "MetricFrame"]

Metric = Callable[[torch.Tensor, torch.Tensor], float]


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float


class MetricFrame:
    """Metrics of ``y_pred`` against ``y_true``, overall and per group.

    Args:
        metrics: ``{name: metric(y_true, y_pred) -> float}``.
        y_true, y_pred: ``(n,)`` tensors (labels, scores or predictions: whatever the metrics take).
        groups: ``(n,)`` integer group codes in ``[0, len(group_names))``.
        group_names: one name per group code, in order.
        bootstrap: resamples for the ``_ci`` intervals (0: no intervals; they are then NaN).
        level: coverage of the intervals.
        generator: draws the resamples (``genfair.seeding.torch_generator(seed, g, "bootstrap")``).

    Example:
        >>> def accuracy(t, p): return float((t == p).double().mean())
        >>> frame = MetricFrame({"accuracy": accuracy}, y_true=torch.tensor([1, 0, 1, 1]),
        ...                     y_pred=torch.tensor([1, 0, 0, 1]), groups=torch.tensor([0, 0, 1, 1]),
        ...                     group_names=["a", "b"])
        >>> frame.by_group["accuracy"], frame.difference()["accuracy"]
        ({'a': 1.0, 'b': 0.5}, 0.5)
    """

    def __init__(
        self,
        metrics: Mapping[str, Metric],
        *,
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        groups: torch.Tensor,
        group_names: Sequence[str],
        bootstrap: int = 0,
        level: float = 0.95,
        generator: torch.Generator | None = None,
    ) -> None:
        if not metrics or not all(callable(m) for m in metrics.values()):
            raise ConfigError(f"metrics must be a non-empty {{name: function}} mapping, got {dict(metrics)!r}")
        names = [str(g) for g in group_names]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"group_names must be unique names, got {list(group_names)}")
        n = len(groups)
        if len(y_true) != n or len(y_pred) != n or n == 0:
            raise ConfigError(f"y_true, y_pred and groups must have one entry per sample, got {len(y_true)}, {len(y_pred)}, {n}")
        if groups.dtype.is_floating_point or bool(((groups < 0) | (groups >= len(names))).any()):
            raise ConfigError(f"groups must be integer codes in [0, {len(names)}), got values {groups.unique().tolist()[:10]}")
        check_positive_int("bootstrap", bootstrap, minimum=0)
        if bootstrap and generator is None:
            raise ConfigError("generator is required when bootstrap > 0 (randomness is an argument)")
        self.metrics, self.group_names, self.level = dict(metrics), tuple(names), level
        self.y_true, self.y_pred, self.groups = y_true, y_pred, groups
        self.sizes = {name: int((groups == k).sum()) for k, name in enumerate(names)}
        self.overall, self.by_group = self._evaluate(torch.arange(n))
        self._replicates = []
        if bootstrap:
            index = stratified_resample(groups, len(names), generator=generator, replicates=bootstrap)
            self._replicates = [self._evaluate(row) for row in index]

    # ----------------------------------------------------------------------------- point values
    def difference(self, method: Literal["between_groups", "to_overall"] = "between_groups") -> dict[str, float]:
        """Per metric: the largest minus the smallest group value (``between_groups``), or the
        largest absolute gap of a group to the overall value (``to_overall``); NaN groups ignored."""
        check_choice("method", method, ["between_groups", "to_overall"])
        return {m: _difference(self.by_group[m], self.overall[m], method) for m in self.metrics}

    def ratio(self, method: Literal["between_groups", "to_overall"] = "between_groups") -> dict[str, float]:
        """Per metric: the smallest over the largest group value, or the smallest ratio of a group's
        value to the overall one (taken so that it is at most 1); NaN groups ignored."""
        check_choice("method", method, ["between_groups", "to_overall"])
        return {m: _ratio(self.by_group[m], self.overall[m], method) for m in self.metrics}

    def gap_to_best(self, *, higher_is_better: bool = True) -> dict[str, dict[str, float]]:
        """Per metric and group: the best group's value minus this group's (``>= 0``; for an error
        rate, ``higher_is_better=False`` makes the lowest value the best)."""
        out = {}
        for m, values in self.by_group.items():
            finite = [v for v in values.values() if not math.isnan(v)]
            best = (max if higher_is_better else min)(finite) if finite else math.nan
            out[m] = {g: abs(best - v) for g, v in values.items()}
        return out

    # ------------------------------------------------------------------------------- intervals
    @property
    def overall_ci(self) -> dict[str, Interval]:
        return {m: self._interval([r[0][m] for r in self._replicates]) for m in self.metrics}

    @property
    def by_group_ci(self) -> dict[str, dict[str, Interval]]:
        return {
            m: {g: self._interval([r[1][m][g] for r in self._replicates]) for g in self.group_names}
            for m in self.metrics
        }

    def difference_ci(self, method: Literal["between_groups", "to_overall"] = "between_groups") -> dict[str, Interval]:
        return {
            m: self._interval([_difference(r[1][m], r[0][m], method) for r in self._replicates]) for m in self.metrics
        }

    def ratio_ci(self, method: Literal["between_groups", "to_overall"] = "between_groups") -> dict[str, Interval]:
        return {m: self._interval([_ratio(r[1][m], r[0][m], method) for r in self._replicates]) for m in self.metrics}

    # --------------------------------------------------------------------------------- helpers
    def _evaluate(self, index: torch.Tensor) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        t, p, g = self.y_true[index], self.y_pred[index], self.groups[index]
        overall = {m: float(f(t, p)) for m, f in self.metrics.items()}
        by_group: dict[str, dict[str, float]] = {m: {} for m in self.metrics}
        for k, name in enumerate(self.group_names):
            members = g == k
            for m, f in self.metrics.items():
                by_group[m][name] = float(f(t[members], p[members])) if bool(members.any()) else math.nan
        return overall, by_group

    def _interval(self, values: list[float]) -> Interval:
        if not values:
            return Interval(math.nan, math.nan)
        lo, hi = percentile_interval(torch.tensor(values, dtype=torch.float64), level=self.level)
        return Interval(float(lo), float(hi))


def _difference(values: Mapping[str, float], overall: float, method: str) -> float:
    finite = [v for v in values.values() if not math.isnan(v)]
    if not finite:
        return math.nan
    if method == "between_groups":
        return max(finite) - min(finite)
    return max(abs(v - overall) for v in finite)


def _ratio(values: Mapping[str, float], overall: float, method: str) -> float:
    finite = [v for v in values.values() if not math.isnan(v)]
    if not finite:
        return math.nan
    if method == "between_groups":
        return min(finite) / max(finite) if max(finite) != 0 else math.nan
    ratios = [min(v, overall) / max(v, overall) for v in finite if max(v, overall) != 0]
    return min(ratios) if ratios else math.nan

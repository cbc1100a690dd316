"""A MetricFrame-like object: any metric, overall and per group, with stratified-bootstrap or
jackknife intervals.

Like fairlearn's ``MetricFrame`` (overall, by_group, difference, ratio and their ``_ci``
twins), with two differences that its users asked for:

  - every result has the same shape whatever the data: ``by_group`` always holds every group
    named in ``group_names`` (NaN for a group with no samples), ``difference``/``ratio`` always
    one number per metric;
  - the bootstrap resamples *within* each group (a resample keeps every group's size), so it
    never breaks or silently drops a small group when a resample happens to miss it (fairlearn
    issue 1441); the intervals are percentile intervals over ``bootstrap`` resamples.

``interval="jackknife"`` gives Fairness Indicators' other interval (TFMA's delete-one-bucket
jackknife): each group's samples are dealt into ``buckets`` buckets (B = 20 by default; randomly
with ``generator``, else round-robin in data order), so every bucket holds about 1/B of every
group; replicate b leaves bucket b out. With theta the full-data value, theta_b the replicates
and theta_bar their mean,

    se^2 = (B - 1) / B * sum_b (theta_b - theta_bar)^2,     interval = theta -+ z se,

z = Phi^{-1}((1 + level) / 2) (a normal interval; TFMA uses Student's t with B - 1 degrees of
freedom, which is 4 % wider at B = 20). A group with fewer than B samples lies in fewer buckets
(the other replicates leave it whole).

Every ``_ci`` (and :meth:`MetricFrame.derived_ci`, for any statistic of the per-group values, e.g.
the gap between two named groups) recomputes its statistic on each replicate, so the interval of
a difference is the interval of the difference itself, not a combination of two intervals.

A metric is any function ``metric(y_true (k,), y_pred (k,)) -> float`` of one group's samples
(accuracy, a false-positive rate at a threshold, a loss, ...); it may return NaN where it is
undefined (a false-positive rate without negatives).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from genfair.errors import ConfigError, check_choice, check_number, check_positive_int
from genfair.fairness._downstream_config import INTERVALS
from genfair.metrics import percentile_interval, stratified_resample
from genfair.metrics._array_like import as_tensor

__all__ = ["Interval", "MetricFrame"]

Metric = Callable[[torch.Tensor, torch.Tensor], float]
# A statistic of one evaluation: (overall {metric: value}, by_group {metric: {group: value}}) -> value.
Statistic = Callable[[Mapping[str, float], Mapping[str, Mapping[str, float]]], float]


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float


class MetricFrame:
    """Metrics of ``y_pred`` against ``y_true``, overall and per group.

    Args:
        metrics: ``{name: metric(y_true, y_pred) -> float}``.
        y_true, y_pred: ``(n,)`` labels, scores or predictions (whatever the metrics take): tensors,
            NumPy arrays or lists; the metrics get them as tensors.
        groups: ``(n,)`` integer group codes in ``[0, len(group_names))`` (a tensor, array or list).
        group_names: one name per group code, in order.
        bootstrap: resamples for the ``_ci`` intervals of ``interval="bootstrap"`` (0: no
            intervals; they are then NaN).
        level: coverage of the intervals.
        generator: draws the resamples (``genfair.seeding.torch_generator(seed, g, "bootstrap")``),
            or deals the jackknife's buckets (optional there).
        interval: ``bootstrap`` (percentile, stratified by group) or ``jackknife`` (see the module
            docstring).
        buckets: the jackknife's buckets B (at least 2).

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
        y_true: Any,
        y_pred: Any,
        groups: Any,
        group_names: Sequence[str],
        bootstrap: int = 0,
        level: float = 0.95,
        generator: torch.Generator | None = None,
        interval: Literal["bootstrap", "jackknife"] = "bootstrap",
        buckets: int = 20,
    ) -> None:
        if not metrics or not all(callable(m) for m in metrics.values()):
            raise ConfigError(f"metrics must be a non-empty {{name: function}} mapping, got {dict(metrics)!r}")
        names = [str(g) for g in group_names]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"group_names must be unique names, got {list(group_names)}")
        y_true, y_pred, groups = as_tensor("y_true", y_true), as_tensor("y_pred", y_pred), as_tensor("groups", groups)
        n = len(groups)
        if len(y_true) != n or len(y_pred) != n or n == 0:
            raise ConfigError(f"y_true, y_pred and groups must have one entry per sample, got {len(y_true)}, {len(y_pred)}, {n}")
        if groups.dtype.is_floating_point or bool(((groups < 0) | (groups >= len(names))).any()):
            raise ConfigError(f"groups must be integer codes in [0, {len(names)}), got values {groups.unique().tolist()[:10]}")
        check_positive_int("bootstrap", bootstrap, minimum=0)
        check_choice("interval", interval, INTERVALS)
        check_number("level", level, above=0, below=1)
        check_positive_int("buckets", buckets, minimum=2)
        if interval == "bootstrap" and bootstrap and generator is None:
            raise ConfigError("generator is required when bootstrap > 0 (randomness is an argument)")
        self.metrics, self.group_names, self.level = dict(metrics), tuple(names), level
        self.interval, self.buckets = interval, buckets
        self.y_true, self.y_pred, self.groups = y_true, y_pred, groups
        self.sizes = {name: int((groups == k).sum()) for k, name in enumerate(names)}
        self.overall, self.by_group = self._evaluate(torch.arange(n))
        self._replicates = []
        if interval == "jackknife":
            bucket = jackknife_buckets(groups, len(names), buckets, generator=generator)
            self._replicates = [self._evaluate((bucket != b).nonzero().flatten()) for b in range(buckets)]
        elif bootstrap:
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
        return {m: _gaps(values, higher_is_better) for m, values in self.by_group.items()}

    def derived(self, statistic: Statistic) -> float:
        """Any statistic of the per-group values, ``statistic(overall, by_group) -> float`` (e.g. the
        FPR gap between two named groups), on the full data."""
        return float(statistic(self.overall, self.by_group))

    # ------------------------------------------------------------------------------- intervals
    @property
    def overall_ci(self) -> dict[str, Interval]:
        return {m: self._interval([r[0][m] for r in self._replicates], self.overall[m]) for m in self.metrics}

    @property
    def by_group_ci(self) -> dict[str, dict[str, Interval]]:
        return {
            m: {g: self._interval([r[1][m][g] for r in self._replicates], self.by_group[m][g]) for g in self.group_names}
            for m in self.metrics
        }

    def difference_ci(self, method: Literal["between_groups", "to_overall"] = "between_groups") -> dict[str, Interval]:
        point = self.difference(method)
        return {
            m: self._interval([_difference(r[1][m], r[0][m], method) for r in self._replicates], point[m])
            for m in self.metrics
        }

    def ratio_ci(self, method: Literal["between_groups", "to_overall"] = "between_groups") -> dict[str, Interval]:
        point = self.ratio(method)
        return {
            m: self._interval([_ratio(r[1][m], r[0][m], method) for r in self._replicates], point[m])
            for m in self.metrics
        }

    def gap_to_best_ci(self, *, higher_is_better: bool = True) -> dict[str, dict[str, Interval]]:
        """Intervals of :meth:`gap_to_best`, the best group re-chosen in every replicate."""
        point = self.gap_to_best(higher_is_better=higher_is_better)
        return {
            m: {
                g: self._interval([_gaps(r[1][m], higher_is_better)[g] for r in self._replicates], point[m][g])
                for g in self.group_names
            }
            for m in self.metrics
        }

    def derived_ci(self, statistic: Statistic) -> Interval:
        """The interval of :meth:`derived`, the statistic recomputed on every replicate."""
        values = [float(statistic(overall, by_group)) for overall, by_group in self._replicates]
        return self._interval(values, self.derived(statistic))

    # --------------------------------------------------------------------------------- helpers
    def _evaluate(self, index: torch.Tensor) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        t, p, g = self.y_true[index], self.y_pred[index], self.groups[index]
        overall = {m: float(f(t, p)) for m, f in self.metrics.items()}
        by_group: dict[str, dict[str, float]] = {m: {} for m in self.metrics}
        for k, name in enumerate(self.group_names):
            members = (g == k).nonzero().flatten()
            t_k, p_k = t[members], p[members]  # once per group, whatever the number of metrics
            for m, f in self.metrics.items():
                by_group[m][name] = float(f(t_k, p_k)) if len(members) else math.nan
        return overall, by_group

    def _interval(self, values: list[float], point: float) -> Interval:
        """The interval from the replicates ``values`` of a statistic whose full-data value is
        ``point``; NaN when there are no replicates or any of them (or ``point``) is NaN."""
        if not values:
            return Interval(math.nan, math.nan)
        replicates = torch.tensor(values, dtype=torch.float64)
        if self.interval == "bootstrap":
            lo, hi = percentile_interval(replicates, level=self.level)
            return Interval(float(lo), float(hi))
        half = _normal_quantile(self.level) * jackknife_se(replicates)
        return Interval(point - half, point + half)


def jackknife_buckets(groups: Any, num_groups: int, buckets: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n,)`` int64 bucket of each sample in ``[0, buckets)``: each group's samples dealt
    round-robin, in a random order drawn from ``generator`` (data order if ``None``), so every
    bucket holds ``floor`` or ``ceil`` of ``n_g / buckets`` of every group g. ``groups (n,)``:
    integer codes in ``[0, num_groups)``, a tensor, array or list."""
    groups = as_tensor("groups", groups)
    bucket = torch.empty(len(groups), dtype=torch.int64)
    for k in range(num_groups):
        members = (groups == k).nonzero().flatten()
        if generator is not None:
            members = members[torch.randperm(len(members), generator=generator)]
        bucket[members] = torch.arange(len(members)) % buckets
    return bucket


def jackknife_se(replicates: Any) -> float:
    """The delete-one jackknife standard error of ``B`` leave-one-out values ``(B,)`` (a tensor,
    array or list): ``sqrt((B - 1) / B * sum_b (theta_b - mean)^2)`` (Efron & Tibshirani 1993, eq. 11.5)."""
    replicates = as_tensor("replicates", replicates)
    replicates = replicates if replicates.is_floating_point() else replicates.double()
    b = len(replicates)
    return float(((b - 1) / b * (replicates - replicates.mean()).square().sum()).sqrt())


def _normal_quantile(level: float) -> float:
    return statistics.NormalDist().inv_cdf((1 + level) / 2)


def _gaps(values: Mapping[str, float], higher_is_better: bool) -> dict[str, float]:
    finite = [v for v in values.values() if not math.isnan(v)]
    best = (max if higher_is_better else min)(finite) if finite else math.nan
    return {g: abs(best - v) for g, v in values.items()}


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

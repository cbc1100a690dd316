"""Summaries of a metric across replicates: the columns of ``metrics.csv``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["UNIT_INTERVAL_METRICS", "ReplicateSummary", "in_unit_interval", "mean_interval", "summarize_replicates"]


@dataclass(frozen=True)
class ReplicateSummary:
    """mean, standard error of the mean, median, 5 % and 95 % quantiles, and ``n`` (the number of
    replicates with a defined value: NaN entries, e.g. an extinct class's fidelity, are left out)."""

    mean: float
    se: float
    median: float
    q05: float
    q95: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize_replicates(values: np.ndarray) -> ReplicateSummary:
    """Summarise ``values (replicates,)``; all NaN (or empty) gives NaN statistics with ``n = 0``."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[~np.isnan(finite)]
    n = int(finite.size)
    if n == 0:
        nan = float("nan")
        return ReplicateSummary(nan, nan, nan, nan, nan, 0)
    se = float(finite.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    q05, median, q95 = np.quantile(finite, [0.05, 0.5, 0.95])
    return ReplicateSummary(float(finite.mean()), se, float(median), float(q05), float(q95), n)


# Metrics whose values lie in [0, 1] (shares, rates, fractions of samples); downstream rates are
# ``down_<rate>@<threshold>`` (their gaps, in [-1, 1], are not listed).
UNIT_INTERVAL_METRICS = frozenset({"share", "train_share", "precision", "recall", "coverage", "extinct"})
_DOWNSTREAM_RATES = ("down_accuracy@", "down_fpr@", "down_fnr@", "down_tpr@")


def in_unit_interval(metric: str) -> bool:
    """Whether ``metric`` (the part of a ``metric/group`` key before the slash) lies in [0, 1]."""
    return metric in UNIT_INTERVAL_METRICS or metric.startswith(_DOWNSTREAM_RATES)


def mean_interval(summary: ReplicateSummary, *, level: float = 0.95, bounded: bool = False) -> tuple[float, float]:
    """The t-interval of the mean across replicates, ``mean -+ t_{(1+level)/2, n-1} se`` (NaN for
    n < 2). ``bounded``: the metric lies in [0, 1], and the interval is intersected with [0, 1];
    the true mean lies there, so the intersection covers it exactly when the t-interval does
    (the same coverage, without impossible values)."""
    if summary.n < 2:
        return float("nan"), float("nan")
    from scipy import stats  # here, not at the top: scipy.stats takes ~1 s, which every CLI start would pay

    half = float(stats.t.ppf(0.5 + level / 2, summary.n - 1)) * summary.se
    lo, hi = summary.mean - half, summary.mean + half
    return (max(lo, 0.0), min(hi, 1.0)) if bounded else (lo, hi)

"""Summaries of a metric across replicates: the columns of ``metrics.csv``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["ReplicateSummary", "logit_interval", "mean_interval", "summarize_replicates"]


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


def logit_interval(mean: float, se: float, quantile: float) -> tuple[float, float]:
    """The t-interval of a mean in [0, 1] on the logit scale, mapped back (the delta method; the
    interval Stata's ``proportion`` reports):

        lo, hi = expit(logit(m) -+ q se / (m (1 - m)))

    with m the mean, se its standard error and q the t quantile; se / (m (1 - m)) is the
    standard error of logit(m) to first order. The interval lies in [0, 1], contains m, is
    asymmetric near a bound and close to m -+ q se away from the bounds. At m = 0 or 1 (every
    value at the bound, se = 0) it is [m, m]; NaN when m or se is NaN or m is outside [0, 1].
    """
    if not (0.0 <= mean <= 1.0) or math.isnan(se):
        return math.nan, math.nan
    if mean in (0.0, 1.0):
        return mean, mean
    centre, half = math.log(mean / (1 - mean)), quantile * se / (mean * (1 - mean))
    return _expit(centre - half), _expit(centre + half)


def mean_interval(summary: ReplicateSummary, *, level: float = 0.95, bounded: bool = False) -> tuple[float, float]:
    """The t-interval of the mean across replicates, ``mean -+ t_{(1+level)/2, n-1} se`` (NaN for
    n < 2); for a metric in [0, 1] (``bounded``) the same interval on the logit scale, mapped
    back (:func:`logit_interval`), so it never leaves [0, 1]."""
    from scipy import stats  # scipy costs every command ~1 s at import; only runs need it

    if summary.n < 2:
        return float("nan"), float("nan")
    quantile = float(stats.t.ppf(0.5 + level / 2, summary.n - 1))
    if bounded:
        return logit_interval(summary.mean, summary.se, quantile)
    return summary.mean - quantile * summary.se, summary.mean + quantile * summary.se


def _expit(x: float) -> float:
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)

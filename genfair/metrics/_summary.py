"""Summaries of a metric across replicates: the columns of ``metrics.csv``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["ReplicateSummary", "summarize_replicates"]


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

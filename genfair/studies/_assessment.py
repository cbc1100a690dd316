"""The assessment of an amortised estimator on held-out draws from its prior: ``assessment.csv``.

An estimator that reads its data set has low risk against the truth *and* responds to it; one
that memorised its training distribution can have low risk near the prior's centre and no
response. Calibration alone cannot tell them apart (the prior passes simulation-based
calibration), so each row reports risk and response side by side, as neural Bayes estimators
are assessed (Sainsbury-Dale, Zammit-Mangion & Huser 2024), for one arm, one parameter and one
set size, over N held-out draws with true values ``t``, the arm's estimates ``e`` and the
refit's (MLE or EM on the same sets) ``r``:

    rmse          = sqrt(mean_i (e_i - t_i)^2)
    bias          = mean_i (e_i - t_i)
    slope_truth   = cov(e, t) / var(t)             the least-squares slope of e on t
    corr_truth    = cov(e, t) / (sd(e) sd(t))      Pearson's correlation
    slope_refit   = cov(e, r) / var(r)
    rmse_refit    = sqrt(mean_i (r_i - t_i)^2)
    rmse_constant = sqrt(mean_i (t_i - mean t)^2)  the best constant estimator on these draws

(population moments, divisor N). A constant estimator has slopes 0, an undefined correlation
(``nan``) and RMSE at least ``rmse_constant``; the refit has ``slope_refit`` 1.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genfair.checkpoint import write_bytes_atomic

__all__ = ["ASSESSMENT_COLUMNS", "assessment_row", "write_assessment", "write_table"]

ASSESSMENT_COLUMNS = (
    "arm", "parameter", "set_size", "draws", "rmse", "bias", "slope_truth", "corr_truth", "slope_refit",
    "rmse_refit", "rmse_constant", "in_prior",
)


def assessment_row(
    estimates: Sequence[float] | np.ndarray,
    truth: Sequence[float] | np.ndarray,
    refit: Sequence[float] | np.ndarray,
    *,
    arm: str,
    parameter: str,
    set_size: int,
    in_prior: bool = True,
) -> dict:
    """One row of ``assessment.csv`` (see the module docstring) from ``(N,)`` arrays of the arm's
    estimates, the true values and the refit's estimates on the same N draws. ``in_prior``:
    whether the draws came from the training prior (``False`` for draws outside its ranges)."""
    e, t, r = (np.asarray(a, dtype=np.float64).ravel() for a in (estimates, truth, refit))
    if not e.size or e.shape != t.shape or e.shape != r.shape:
        raise ValueError(f"estimates, truth and refit must be equal-length non-empty arrays, got {e.shape}, {t.shape}, {r.shape}")
    return {
        "arm": arm,
        "parameter": parameter,
        "set_size": int(set_size),
        "draws": int(e.size),
        "rmse": _rms(e - t),
        "bias": float(np.mean(e - t)),
        "slope_truth": _slope(e, t),
        "corr_truth": _correlation(e, t),
        "slope_refit": _slope(e, r),
        "rmse_refit": _rms(r - t),
        "rmse_constant": _rms(t - t.mean()),
        "in_prior": bool(in_prior),
    }


def write_assessment(path: Path, rows: Sequence[dict]) -> Path:
    """Write ``rows`` (from :func:`assessment_row`) as ``assessment.csv``."""
    return write_table(path, rows, columns=ASSESSMENT_COLUMNS)


def write_table(path: Path, rows: Sequence[dict], *, columns: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as CSV, atomically: ``columns`` (default: every key of the rows, in the
    order they first appear; a row without one leaves it empty), floats with 6 significant digits."""
    text = io.StringIO()
    fields = list(columns or dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    write_bytes_atomic(Path(path), text.getvalue().encode())
    return Path(path)


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values**2)))


def _slope(y: np.ndarray, x: np.ndarray) -> float:
    """Least-squares slope of y on x; ``nan`` when x does not vary."""
    spread = np.mean((x - x.mean()) ** 2)
    return float(np.mean((x - x.mean()) * (y - y.mean())) / spread) if spread > 0 else math.nan


def _correlation(y: np.ndarray, x: np.ndarray) -> float:
    """Pearson's correlation; ``nan`` when either does not vary (a constant estimator)."""
    spread = math.sqrt(np.mean((x - x.mean()) ** 2) * np.mean((y - y.mean()) ** 2))
    return float(np.mean((x - x.mean()) * (y - y.mean())) / spread) if spread > 0 else math.nan

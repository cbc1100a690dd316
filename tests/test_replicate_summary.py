"""The across-replicate summary of metrics.csv: the t-interval of the mean, kept in [0, 1] for
metrics that lie there."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from genfair._outputs import record_rows
from genfair.evaluation import in_unit_interval
from genfair.loops import GenerationRecord
from genfair.metrics import RATIO_GROUP, mean_interval, summarize_replicates


def test_the_interval_is_the_t_interval_of_the_mean():
    values = np.array([0.2, 0.5, 0.9, 0.4])
    half = stats.t.ppf(0.975, 3) * values.std(ddof=1) / 2
    lo, hi = mean_interval(summarize_replicates(values))
    assert (lo, hi) == (pytest.approx(values.mean() - half), pytest.approx(values.mean() + half))


def test_a_bounded_metric_gets_the_logit_scale_interval():
    """(0, 0, 0.1): the t-interval starts below 0; the logit-scale one is
    expit(logit(m) -+ t se / (m (1 - m))), inside (0, 1) and around the mean."""
    values = np.array([0.0, 0.0, 0.1])
    summary = summarize_replicates(values)
    assert mean_interval(summary)[0] < 0
    m, se = values.mean(), values.std(ddof=1) / np.sqrt(3)
    half = stats.t.ppf(0.975, 2) * se / (m * (1 - m))
    expit = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expected = (expit(np.log(m / (1 - m)) - half), expit(np.log(m / (1 - m)) + half))
    lo, hi = mean_interval(summary, bounded=True)
    assert (lo, hi) == (pytest.approx(expected[0]), pytest.approx(expected[1]))
    assert 0 < lo < m < hi < 1
    assert mean_interval(summarize_replicates(np.array([1.0, 1.0, 1.0])), bounded=True) == (1.0, 1.0)


def test_one_replicate_has_no_interval():
    assert all(np.isnan(mean_interval(summarize_replicates(np.array([0.3])))))


@pytest.mark.parametrize(
    "metric, bounded",
    [("coverage", True), ("share", True), ("recall", True), ("precision", True), ("train_share", True),
     ("extinct", True), ("accept_rate", True), ("down_fpr@0.5", True),
     ("share_raw", True), ("density", False), ("fd", False), ("kid", False), ("representation_ratio", False),
     ("w2_sq", False), ("down_fpr_gap@0.5", False), ("ple_penalty_ratio", False)],
)
def test_which_metrics_lie_in_the_unit_interval(metric, bounded):
    """The metrics whose metrics.csv intervals take the logit scale, as recorded runs have them
    (a change here changes the intervals of every run's metrics.csv)."""
    assert in_unit_interval(metric) is bounded


@pytest.mark.parametrize("metric", ["precision", "recall", "coverage", "share"])
def test_the_minority_over_the_majority_is_not_bounded_by_its_metric(metric):
    """``<metric>/minority_to_majority`` is a ratio (1.145 for precision in a shrunk default run):
    its metrics.csv row takes the plain t-interval, which the logit scale would leave NaN."""
    values = np.array([0.9, 1.2, 1.4, 1.05])
    record = GenerationRecord(0, {f"{metric}/{RATIO_GROUP}": values, f"{metric}/minority": values / 2}, 0.0)
    rows = {row["group"]: row for row in record_rows("arm", record)}
    ratio, minority = rows[RATIO_GROUP], rows["minority"]
    summary = summarize_replicates(values)
    assert (ratio["lo"], ratio["hi"]) == mean_interval(summary, bounded=False)
    assert np.isfinite([ratio["lo"], ratio["hi"]]).all()
    assert (minority["lo"], minority["hi"]) == mean_interval(summarize_replicates(values / 2), bounded=True)
    assert in_unit_interval(metric) and not in_unit_interval(metric, RATIO_GROUP)

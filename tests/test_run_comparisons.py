"""The runner's paired comparisons: comparisons.csv from the arms' replicates, the declared primary
endpoint first, and the refusals of a comparison that cannot be made, before anything is written."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import stats

from genfair.comparisons import CompareConfig
from genfair.data import ClassMixtureData
from genfair.errors import ConfigError
from genfair.experiment import Arm, run_experiment
from genfair.loops import LoopConfig
from genfair.models import AnalyticModelConfig

DATA = ClassMixtureData(class_names=["big", "small"], proportions=[0.8, 0.2])


def _arms(replicates: int = 12) -> list[Arm]:
    loop = LoopConfig(generations=4, n_real=30, n_synthetic=30, replicates=replicates)
    return [
        Arm("mle", DATA, AnalyticModelConfig(estimator="mle"), loop),
        Arm("unbiased", DATA, AnalyticModelConfig(estimator="unbiased"), loop),
    ]


def test_comparisons_csv_holds_the_primary_endpoint_from_the_paired_replicates(tmp_path):
    compare = CompareConfig(baseline="mle", primary_metric="trace_cov", primary_group="minority", primary_first=1)
    result = run_experiment(_arms(), seed=0, run_dir=tmp_path, compare=compare)
    with open(tmp_path / "comparisons.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    primary = rows[0]
    assert (primary["endpoint"], primary["arm"], primary["metric"], primary["group"]) == (
        "primary", "unbiased", "trace_cov", "small"
    )
    assert primary["generation"] == "1-3" and all(row["endpoint"] == "exploratory" for row in rows[1:])
    x = np.stack([r.values["trace_cov/small"] for r in result.records["unbiased"]])[1:].mean(axis=0)
    y = np.stack([r.values["trace_cov/small"] for r in result.records["mle"]])[1:].mean(axis=0)
    finite = np.isfinite(x) & np.isfinite(y)
    assert float(primary["n"]) == finite.sum()
    assert float(primary["mean_diff"]) == pytest.approx((x - y)[finite].mean(), rel=1e-9)
    assert float(primary["p_t"]) == pytest.approx(stats.ttest_rel(x[finite], y[finite]).pvalue, rel=1e-9)
    assert result.summary["comparisons"]["primary"]["unbiased"]["baseline"] == "mle"
    assert (tmp_path / "figures" / "paired_differences.png").is_file()


def test_a_run_relative_to_generation_0_compares_each_replicates_change(tmp_path, caplog):
    compare = CompareConfig(baseline="mle", primary_metric="trace_cov", primary_group="small", relative_to="generation_0")
    with caplog.at_level("INFO", logger="genfair"):
        result = run_experiment(_arms(), seed=0, run_dir=tmp_path, compare=compare)
    with open(tmp_path / "comparisons.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    primary, start = rows[0], rows[1]
    assert (primary["endpoint"], primary["relative_to"], primary["generation"]) == ("primary", "generation_0", "1-3")
    assert (start["endpoint"], start["relative_to"], start["generation"]) == ("start", "none", "0")
    arrays = {arm: np.stack([r.values["trace_cov/small"] for r in result.records[arm]]) for arm in ("mle", "unbiased")}
    change = {arm: a[1:].mean(axis=0) - a[0] for arm, a in arrays.items()}  # (R,): generations 1-3 minus 0
    d = change["unbiased"] - change["mle"]
    finite = np.isfinite(d)
    assert float(primary["n"]) == finite.sum()
    assert float(primary["mean_diff"]) == pytest.approx(d[finite].mean(), rel=1e-9)
    assert float(start["mean_diff"]) == pytest.approx(np.nanmean(arrays["unbiased"][0] - arrays["mle"][0]), rel=1e-9)
    recorded = result.summary["comparisons"]
    assert recorded["relative_to"] == "generation_0" and recorded["primary"]["unbiased"]["relative_to"] == "generation_0"
    assert recorded["start"]["unbiased"]["generation"] == "0"
    logged = [m for m in caplog.messages if m.startswith("primary endpoint")]
    assert logged and "change from generation 0 over generations 1-3" in logged[0] and "of 12 replicates" in logged[0]


def test_a_deep_free_run_without_a_declared_baseline_compares_nothing(tmp_path):
    run_experiment(_arms(), seed=0, run_dir=tmp_path)
    assert not (tmp_path / "comparisons.csv").exists()


@pytest.mark.parametrize(
    "compare, replicates, words",
    [
        (CompareConfig(baseline="magic"), 12, ["compare.baseline", "'magic'", "mle"]),
        (CompareConfig(baseline="mle"), 1, ["loop.replicates", ">= 2", "got 1"]),
        (CompareConfig(baseline="mle", primary_metric="coverage"), 12, ["compare.primary_metric", "'coverage'", "trace_cov"]),
        (CompareConfig(baseline="mle", primary_metric="share", primary_group="tiny"), 12,
         ["compare.primary_group", "'tiny'", "small"]),
        (CompareConfig(baseline="mle", primary_metric="share", relative_to="generation_0", primary_first=4), 12,
         ["compare.primary_first", "(1..3)", "got 4"]),
    ],
    ids=["unknown-baseline", "one-replicate", "unmeasured-metric", "unknown-group", "relative-window-past-the-run"],
)
def test_a_comparison_that_cannot_be_made_is_refused_before_anything_is_written(compare, replicates, words, tmp_path):
    with pytest.raises(ConfigError) as raised:
        run_experiment(_arms(replicates), seed=0, run_dir=tmp_path / "run", compare=compare)
    assert all(word in str(raised.value) for word in words), str(raised.value)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "run").exists()

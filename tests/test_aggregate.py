"""``genfair-aggregate``: runs of one experiment over several seeds, summarized across seeds.

Hand-written run directories check the numbers (mean, standard error and t-interval across
seeds) and the refusals; two end-to-end tests run a real 2-seed sweep through Hydra's joblib and
submitit_local launchers and aggregate it with the installed command.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from _commands import run_command

from _fixtures import read_csv


def _read_metrics(path: Path) -> dict[tuple, dict]:
    return {(r["arm"], int(r["generation"]), r["group"], r["metric"]): r for r in read_csv(path)}

from genfair.cli import aggregate, aggregate_main

BIN = Path(sys.executable).parent
GENFAIR = str(BIN / "genfair") if (BIN / "genfair").exists() else shutil.which("genfair")
GENFAIR_AGGREGATE = (
    str(BIN / "genfair-aggregate") if (BIN / "genfair-aggregate").exists() else shutil.which("genfair-aggregate")
)
CSV_HEADER = "arm,generation,group,metric,mean,se,median,q05,q95,n,lo,hi"
AGGREGATE_HEADER = "arm,generation,group,metric,mean,se,n_seeds,lo,hi"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T_975_2 = 4.302652729911275  # Student's t, 97.5 % quantile, 2 degrees of freedom (tables: 4.3027)
SWEEP = ["experiment=class_mixture_mad", "loop.generations=2", "loop.replicates=50", "seed=0,1"]


def _write_run(
    run_dir: Path,
    *,
    seed: int,
    values: dict[tuple, float],
    status: str = "complete",
    dim: int = 2,
    family: str = "class_mixture",
    groups: tuple[str, str] = ("majority", "minority"),
    proportions: tuple[float, float] = (0.95, 0.05),
    unit_interval_metrics: tuple[str, ...] = (),
) -> Path:
    """A run directory as ``genfair`` leaves it: ``values`` maps (arm, generation, group, metric)
    to the run's ``mean``; the other statistics are filler that aggregation must ignore."""
    run_dir.mkdir(parents=True)
    lines = [CSV_HEADER]
    for (arm, generation, group, metric), mean in values.items():
        lines.append(f"{arm},{generation},{group},{metric},{mean},99,99,99,99,7,99,99")
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")
    metrics = list(dict.fromkeys(metric for *_, metric in values))
    summary = {
        "status": status,
        "seed": seed,
        "config": {"data": {"proportions": list(proportions)}, "seed": seed},
        "fingerprint": {"seed": seed, "arms": {"mle": {"data": {"dim": dim, "proportions": list(proportions)}}}},
        "family": family,
        "headline_metrics": metrics,
        "groups": list(groups),
        "minority": groups[1],
        "arms": {},
    }
    if unit_interval_metrics:  # a run's own metrics declared in (0, 1), as genfair records them
        summary["unit_interval_metrics"] = list(unit_interval_metrics)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def _three_seeds(sweep: Path) -> None:
    # trace_cov, not share: values 1, 2, 4 are no share, and a share's interval is the bounded
    # one (test_bounded_metrics_get_logit_scale_intervals_inside_0_1).
    trace, w2 = ("mle", 0, "minority", "trace_cov"), ("mle", 0, "minority", "w2_sq")
    _write_run(sweep / "0", seed=0, values={trace: 1.0, w2: 0.5})
    _write_run(sweep / "1", seed=1, values={trace: 2.0, w2: float("nan")})  # an extinct class: NaN
    _write_run(sweep / "nested" / "2", seed=2, values={trace: 4.0, w2: 1.5, ("mle", 1, "minority", "trace_cov"): 3.0})


def test_mean_se_and_t_interval_across_seeds(tmp_path):
    _three_seeds(tmp_path)
    result = aggregate(tmp_path)
    assert result.out == tmp_path / "aggregate"
    assert [seed for _, seed in result.runs] == [0, 1, 2] and result.skipped == ()
    assert (tmp_path / "aggregate" / "metrics.csv").read_text().splitlines()[0] == AGGREGATE_HEADER
    rows = _read_metrics(tmp_path / "aggregate" / "metrics.csv")
    # trace_cov over seeds: 1, 2, 4 -> mean 7/3, sample variance 7/3, se sqrt(7/9).
    share = rows[("mle", 0, "minority", "trace_cov")]
    mean, se = 7 / 3, math.sqrt(7) / 3
    assert float(share["mean"]) == pytest.approx(mean, rel=1e-12)
    assert float(share["se"]) == pytest.approx(se, rel=1e-12)
    assert int(share["n_seeds"]) == 3
    assert float(share["lo"]) == pytest.approx(mean - T_975_2 * se, rel=1e-9)
    assert float(share["hi"]) == pytest.approx(mean + T_975_2 * se, rel=1e-9)
    # A NaN seed is left out: w2 over 0.5, 1.5 -> mean 1, se 0.5, t_{0.975, 1} = 12.706.
    w2 = rows[("mle", 0, "minority", "w2_sq")]
    assert (int(w2["n_seeds"]), float(w2["mean"]), float(w2["se"])) == (2, 1.0, 0.5)
    assert float(w2["hi"]) == pytest.approx(1.0 + 12.706204736174707 * 0.5, rel=1e-9)
    # A row that only one seed has: its value, no interval.
    once = rows[("mle", 1, "minority", "trace_cov")]
    assert (int(once["n_seeds"]), float(once["mean"])) == (1, 3.0)
    assert all(math.isnan(float(once[column])) for column in ("se", "lo", "hi"))
    summary = json.loads((tmp_path / "aggregate" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1, 2]
    assert [run["dir"] for run in summary["runs"]] == ["0", "1", str(Path("nested") / "2")]
    assert "seed" not in summary["fingerprint"] and summary["fingerprint"]["arms"]["mle"]["data"]["dim"] == 2
    for metric in ("trace_cov", "w2_sq"):
        assert (tmp_path / "aggregate" / "figures" / f"{metric}.png").read_bytes()[:8] == PNG_SIGNATURE
    assert not (tmp_path / "aggregate" / "figures" / "minority_fidelity.png").exists()
    # Aggregating again passes over the earlier output instead of counting it as a run.
    assert [seed for _, seed in aggregate(tmp_path).runs] == [0, 1, 2]


def test_unfinished_runs_are_skipped_with_a_warning_and_degraded_ones_count(tmp_path, capsys):
    # Shares in [0, 1] (a share of 3 is now refused as a bounded metric out of range); the
    # skipped runs' values are never read.
    _write_run(tmp_path / "0", seed=0, values={("mle", 0, "minority", "share"): 0.1})
    _write_run(tmp_path / "1", seed=1, values={("mle", 0, "minority", "share"): 0.3}, status="degraded")
    _write_run(tmp_path / "2", seed=2, values={("mle", 0, "minority", "share"): 100.0}, status="running")
    _write_run(tmp_path / "3", seed=3, values={("mle", 0, "minority", "share"): 100.0}, status="failed", dim=3)
    aggregate_main([str(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert f"genfair-aggregate: warning: skipping {tmp_path / '2'} (status 'running'" in err
    assert f"skipping {tmp_path / '3'} (status 'failed'" in err
    assert float(_read_metrics(tmp_path / "out" / "metrics.csv")[("mle", 0, "minority", "share")]["mean"]) == pytest.approx(0.2)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["degraded"] == ["1"]
    assert summary["skipped"] == [{"dir": "2", "status": "running"}, {"dir": "3", "status": "failed"}]


def _refusal(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        aggregate_main(argv)
    assert exit_info.value.code == 2
    *warnings, err = capsys.readouterr().err.strip().splitlines()  # the error: one line, last
    assert err.startswith("genfair-aggregate: error: ")
    assert all(line.startswith("genfair-aggregate: warning: ") for line in warnings)
    return err


def test_different_experiments_are_refused_naming_the_key(tmp_path, capsys):
    _write_run(tmp_path / "0", seed=0, values={("mle", 0, "minority", "share"): 1.0})
    _write_run(tmp_path / "1", seed=1, values={("mle", 0, "minority", "share"): 1.0}, dim=3)
    err = _refusal([str(tmp_path)], capsys)
    assert "arms.mle.data.dim" in err and "different experiments" in err
    assert not (tmp_path / "aggregate").exists()


def test_equal_seeds_are_refused(tmp_path, capsys):
    _write_run(tmp_path / "0", seed=5, values={("mle", 0, "minority", "share"): 1.0})
    _write_run(tmp_path / "1", seed=5, values={("mle", 0, "minority", "share"): 2.0})
    assert "same seed 5" in _refusal([str(tmp_path)], capsys)


def test_no_runs_are_refused(tmp_path, capsys):
    (tmp_path / "empty" / "0").mkdir(parents=True)
    assert "no run directories" in _refusal([str(tmp_path / "empty")], capsys)
    assert "must be a directory" in _refusal([str(tmp_path / "missing")], capsys)
    _write_run(tmp_path / "running" / "0", seed=0, values={("mle", 0, "minority", "share"): 1.0}, status="running")
    assert "none of the 1 run directories" in _refusal([str(tmp_path / "running")], capsys)


def test_image_runs_get_the_minority_fidelity_figure(tmp_path):
    values = {
        ("ple", generation, group, metric): 0.1 * (1 + generation) + (0.5 if group == "3" else 0.0)
        for generation in range(3)
        for group in ("3", "6")
        for metric in ("share", "precision", "recall", "coverage")
    }
    for seed in (0, 1):
        shifted = {key: value + 0.01 * seed for key, value in values.items()}
        _write_run(
            tmp_path / str(seed), seed=seed, values=shifted, family="images", groups=("3", "6"), proportions=(0.9, 0.1)
        )
    paths = aggregate(tmp_path).paths
    figure = tmp_path / "aggregate" / "figures" / "minority_fidelity.png"
    assert figure in paths and figure.read_bytes()[:8] == PNG_SIGNATURE


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = run_command(command, cwd)
    assert result.returncode == 0, f"exit {result.returncode}\n--- stderr ---\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr
    return result


def _sweep_and_aggregate(tmp_path: Path, launcher: list[str]) -> None:
    sweep = tmp_path / "sweep"
    _run([GENFAIR, "-m", *launcher, *SWEEP, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    for job in ("0", "1"):  # one run directory per job: multirun/<date>/<time>/<job number>
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert (summary["status"], summary["seed"], summary["config"]["threads"]) == ("complete", int(job), 1)
    printed = _run([GENFAIR_AGGREGATE, str(sweep)], cwd=tmp_path).stdout.split()
    assert str(sweep / "aggregate" / "metrics.csv") in printed
    rows = _read_metrics(sweep / "aggregate" / "metrics.csv")
    assert {int(row["n_seeds"]) for row in rows.values()} == {2}
    assert {arm for arm, *_ in rows} == {"mle", "unbiased"} and {g for _, g, *_ in rows} == {0, 1}
    seeds = [_read_metrics(sweep / job / "metrics.csv")[("mle", 1, "minority", "share")] for job in ("0", "1")]
    expected = (float(seeds[0]["mean"]) + float(seeds[1]["mean"])) / 2
    assert float(rows[("mle", 1, "minority", "share")]["mean"]) == pytest.approx(expected, rel=1e-12)
    assert json.loads((sweep / "aggregate" / "summary.json").read_text())["seeds"] == [0, 1]
    for metric in ("share", "extinct", "w2_sq", "trace_cov"):
        assert (sweep / "aggregate" / "figures" / f"{metric}.png").read_bytes()[:8] == PNG_SIGNATURE


def test_joblib_sweep_then_aggregate(tmp_path):
    _sweep_and_aggregate(tmp_path, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])


@pytest.mark.slow  # ~30 s on 2 busy cores: submitit starts each job in two fresh interpreters
def test_submitit_local_sweep_then_aggregate(tmp_path):
    _sweep_and_aggregate(tmp_path, ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"])


def test_paired_differences_to_a_baseline_arm_by_hand(tmp_path):
    """Two arms sharing each seed's noise: their own intervals are wide, the paired one is not.
    (An unbounded metric, trace_cov: values up to 7.25 are no share.)"""
    arm_values = {0: (1.0, 1.5), 1: (4.0, 4.75), 2: (7.0, 7.25), 3: (2.0, float("nan"))}
    for seed, (mle, ple) in arm_values.items():
        _write_run(tmp_path / str(seed), seed=seed,
                   values={("mle", 0, "minority", "trace_cov"): mle, ("ple", 0, "minority", "trace_cov"): ple})
    aggregate(tmp_path, baseline="mle")
    paired = _read_metrics(tmp_path / "aggregate" / "paired_vs_mle.csv")
    assert set(paired) == {("ple", 0, "minority", "trace_cov")}  # no row for the baseline itself
    row = paired[("ple", 0, "minority", "trace_cov")]
    diffs = np.array([0.5, 0.75, 0.25])  # seed 3's ple value is NaN: it leaves the pair out
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    assert int(row["n_seeds"]) == 3
    assert float(row["mean"]) == pytest.approx(0.5)
    assert (float(row["lo"]), float(row["hi"])) == pytest.approx((0.5 - half, 0.5 + half))
    own = _read_metrics(tmp_path / "aggregate" / "metrics.csv")[("ple", 0, "minority", "trace_cov")]
    assert float(own["hi"]) - float(own["lo"]) > 10 * 2 * half


def test_an_unknown_baseline_arm_is_refused(tmp_path, capsys):
    _write_run(tmp_path / "0", seed=0, values={("mle", 0, "minority", "share"): 1.0})
    err = _refusal([str(tmp_path), "--baseline", "none"], capsys)
    assert "--baseline must be one of the runs' arms ['mle'], got 'none'" in err
    assert not (tmp_path / "aggregate").exists()


def test_bounded_metrics_get_logit_scale_intervals_inside_0_1(tmp_path, capsys):
    """Coverage 0.01, 0.02, 0.2 over 3 seeds: the plain t-interval reaches below 0; the logit-scale
    one, expit(logit(m) -+ t se / (m (1 - m))), stays inside (0, 1) around the mean."""
    coverage = (0.01, 0.02, 0.2)
    for seed, value in enumerate(coverage):
        values = {("mle", 0, "minority", "coverage"): value, ("mle", 0, "minority", "density"): value,
                  ("mle", 0, "minority", "extinct"): 0.0}  # fmt: skip
        _write_run(tmp_path / str(seed), seed=seed, values=values)
    aggregate(tmp_path)
    rows = _read_metrics(tmp_path / "aggregate" / "metrics.csv")
    m = sum(coverage) / 3
    se = float(np.std(coverage, ddof=1)) / math.sqrt(3)
    half = T_975_2 * se / (m * (1 - m))
    logit, expit = math.log(m / (1 - m)), lambda z: 1 / (1 + math.exp(-z))
    row = rows[("mle", 0, "minority", "coverage")]
    assert float(row["mean"]) == pytest.approx(m, rel=1e-12) and float(row["se"]) == pytest.approx(se, rel=1e-12)
    assert (float(row["lo"]), float(row["hi"])) == pytest.approx((expit(logit - half), expit(logit + half)), rel=1e-9)
    assert 0 < float(row["lo"]) < m < float(row["hi"]) < 1
    # density is not bounded: the plain t-interval, which here leaves [0, 1].
    density = rows[("mle", 0, "minority", "density")]
    assert float(density["lo"]) == pytest.approx(m - T_975_2 * se, rel=1e-9) and float(density["lo"]) < 0
    # Every seed at the bound: [0, 0].
    extinct = rows[("mle", 0, "minority", "extinct")]
    assert (float(extinct["mean"]), float(extinct["lo"]), float(extinct["hi"])) == (0.0, 0.0, 0.0)
    # A bounded metric outside [0, 1] is refused, naming the file; the minority over the majority is not bounded.
    _write_run(tmp_path / "ratio" / "0", seed=0, values={("mle", 0, "minority_to_majority", "coverage"): 1.5})
    _write_run(tmp_path / "ratio" / "1", seed=1, values={("mle", 0, "minority_to_majority", "coverage"): 1.7})
    aggregate(tmp_path / "ratio")
    ratio = _read_metrics(tmp_path / "ratio" / "aggregate" / "metrics.csv")[("mle", 0, "minority_to_majority", "coverage")]
    assert (float(ratio["lo"]), float(ratio["hi"])) == pytest.approx((1.6 - 12.706205 * 0.1, 1.6 + 12.706205 * 0.1), rel=1e-6)
    # A run's own metric declared in (0, 1) (summary.json's unit_interval_metrics) gets the same interval.
    for seed, value in enumerate(coverage):
        _write_run(tmp_path / "plugin" / str(seed), seed=seed, values={("mle", 0, "minority", "kept"): value},
                   unit_interval_metrics=("kept",))
    aggregate(tmp_path / "plugin")
    kept = _read_metrics(tmp_path / "plugin" / "aggregate" / "metrics.csv")[("mle", 0, "minority", "kept")]
    assert (float(kept["lo"]), float(kept["hi"])) == (float(row["lo"]), float(row["hi"]))
    _write_run(tmp_path / "bad_plugin" / "0", seed=0, values={("mle", 0, "minority", "kept"): 1.5},
               unit_interval_metrics=("kept",))
    assert "kept must lie in [0, 1] (a bounded metric), got 1.5" in _refusal([str(tmp_path / "bad_plugin")], capsys)
    _write_run(tmp_path / "bad" / "0", seed=0, values={("mle", 0, "minority", "coverage"): 1.5})
    err = _refusal([str(tmp_path / "bad")], capsys)
    assert f"{tmp_path / 'bad' / '0' / 'metrics.csv'}: coverage must lie in [0, 1] (a bounded metric), got 1.5" in err


def _two_arm_sweep(sweep: Path, seeds: int = 4) -> dict:
    """Arms mle and ple over ``seeds`` seeds, generations 0-2, coverage and recall of classes 3
    (the minority) and 6; ple's minority coverage is higher by 0.01 (1 + seed) (1 + generation)."""
    values = {}
    for seed in range(seeds):
        run = {}
        for generation in range(3):
            for group in ("3", "6"):
                for metric in ("coverage", "recall"):
                    base = 0.2 + 0.1 * seed + 0.05 * generation + (0.3 if group == "6" else 0.0)
                    lift = 0.01 * (1 + seed) * (1 + generation) if (metric, group) == ("coverage", "3") else 0.0
                    run[("mle", generation, group, metric)] = base
                    run[("ple", generation, group, metric)] = base + lift + 0.001 * (seed % 2)
        _write_run(sweep / str(seed), seed=seed, values=run, groups=("6", "3"), proportions=(0.9, 0.1))
        values[seed] = run
    return values


def test_baseline_writes_comparisons_csv_across_seeds(tmp_path, capsys):
    from genfair.comparisons import COMPARISON_COLUMNS, holm

    values = _two_arm_sweep(tmp_path)
    result = aggregate(tmp_path, baseline="mle")
    out = tmp_path / "aggregate"
    assert {out / "paired_vs_mle.csv", out / "comparisons.csv", out / "figures" / "paired_vs_mle.png"} <= set(result.paths)
    assert (out / "figures" / "paired_vs_mle.png").read_bytes()[:8] == PNG_SIGNATURE
    with open(out / "comparisons.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == COMPARISON_COLUMNS
    # The primary endpoint first: the minority's (class 3) coverage averaged over generations 1-2
    # per seed, then paired across the 4 seeds.
    primary, exploratory = rows[0], rows[1:]
    assert (primary["endpoint"], primary["arm"], primary["metric"], primary["group"]) == ("primary", "ple", "coverage", "3")
    assert (primary["generation"], primary["n"]) == ("1-2", "4")
    per_seed = {arm: [np.mean([values[s][(arm, g, "3", "coverage")] for g in (1, 2)]) for s in range(4)] for arm in ("mle", "ple")}
    d = np.subtract(per_seed["ple"], per_seed["mle"])
    assert float(primary["mean_diff"]) == pytest.approx(d.mean(), rel=1e-9)
    assert float(primary["p_t"]) == pytest.approx(stats.ttest_rel(per_seed["ple"], per_seed["mle"]).pvalue, rel=1e-6)
    assert float(primary["p_signflip"]) == 0.125  # 4 positive differences: 2 of 16 flips
    # Exploratory: 1 arm x 2 metrics x 2 groups x 3 generations, Holm over all 12.
    assert [row["endpoint"] for row in exploratory] == ["exploratory"] * 12
    adjusted = holm([float(row["p_signflip"]) for row in exploratory])
    np.testing.assert_allclose([float(row["p_signflip_holm"]) for row in exploratory], adjusted, equal_nan=True)
    # The same cells as paired_vs_mle.csv, with the same means and t-intervals.
    paired = _read_metrics(out / "paired_vs_mle.csv")
    for row in exploratory:
        same = paired[("ple", int(row["generation"]), row["group"], row["metric"])]
        for a, b in (("mean_diff", "mean"), ("lo", "lo"), ("hi", "hi")):
            assert float(row[a]) == pytest.approx(float(same[b]), rel=1e-9, abs=1e-12)
    record = json.loads((out / "summary.json").read_text())["comparisons"]
    assert record["baseline"] == "mle" and record["primary_source"] == "default, not declared before the runs"
    # A primary endpoint chosen on the command line is used and recorded as such.
    aggregate_main([str(tmp_path), "--baseline", "mle", "--primary-metric", "recall", "--primary-group", "6"])
    first = next(csv.DictReader(open(out / "comparisons.csv", newline="")))
    assert (first["metric"], first["group"], float(first["mean_diff"])) == ("recall", "6", pytest.approx(0.0005))
    assert json.loads((out / "summary.json").read_text())["comparisons"]["primary_source"].startswith("command line")
    # A primary endpoint declared in the runs' config (a compare section) is used.
    for seed in range(4):
        summary = json.loads((tmp_path / str(seed) / "summary.json").read_text())
        summary["config"]["compare"] = {"primary_metric": "recall", "primary_group": "minority", "primary_first": 2}
        (tmp_path / str(seed) / "summary.json").write_text(json.dumps(summary))
    aggregate(tmp_path, baseline="mle")
    first = next(csv.DictReader(open(out / "comparisons.csv", newline="")))
    assert (first["metric"], first["group"], first["generation"]) == ("recall", "3", "2-2")
    assert json.loads((out / "summary.json").read_text())["comparisons"]["primary_source"].startswith("declared")
    capsys.readouterr()
    # Refusals, before anything is written.
    err = _refusal([str(tmp_path), "--baseline", "mle", "--primary-metric", "fd", "--out", str(tmp_path / "x")], capsys)
    assert "compare.primary_metric must be one of the measured metrics ['coverage', 'recall'], got 'fd'" in err
    assert not (tmp_path / "x").exists()


def test_comparisons_need_two_seeds(tmp_path, capsys):
    _two_arm_sweep(tmp_path, seeds=1)
    err = _refusal([str(tmp_path), "--baseline", "mle"], capsys)
    assert err.endswith("the number of finished runs (seeds) must be an integer >= 2 for paired inference (compare), got 1")
    assert not (tmp_path / "aggregate").exists()


def test_a_study_swept_over_seeds_is_compared_arm_against_arm(tmp_path, capsys):
    """A study's runs write metrics.csv and a fingerprint, so genfair-aggregate pairs them by
    seed: the primary endpoint's mean difference is the mean over seeds of each run's own
    difference, computed here from the summaries; a run of another config is refused."""
    from genfair.studies import VarianceBiasConfig, run_study

    config = VarianceBiasConfig(steps=5, sets_per_step=8, test_sets=50, probe_sets=10, only=["hyper_mle"])
    summaries = [run_study(config, seed=seed, run_dir=tmp_path / "sweep" / str(seed)) for seed in range(3)]
    aggregate_main([str(tmp_path / "sweep"), "--baseline", "closed_form_mle", "--primary-metric", "relative_bias",
                    "--primary-group", "all", "--primary-first", "0"])  # fmt: skip
    with open(tmp_path / "sweep" / "aggregate" / "comparisons.csv", newline="") as handle:
        primary = {r["arm"]: r for r in csv.DictReader(handle) if r["endpoint"] == "primary"}
    assert set(primary) == {"closed_form_unbiased", "constant", "hyper_mle"}
    by_hand = [s["results"]["arms"]["hyper_mle"]["relative_bias"] - s["results"]["references"]["closed_form_mle"]["relative_bias"]
               for s in summaries]  # fmt: skip
    assert float(primary["hyper_mle"]["mean_diff"]) == pytest.approx(np.mean(by_hand), rel=1e-9)
    assert int(primary["hyper_mle"]["n"]) == 3 and primary["hyper_mle"]["generation"] == "0-0"

    run_study(VarianceBiasConfig(steps=6, sets_per_step=8, test_sets=50, probe_sets=10, only=["hyper_mle"]),
              seed=3, run_dir=tmp_path / "sweep" / "3")  # fmt: skip
    with pytest.raises(SystemExit):
        aggregate_main([str(tmp_path / "sweep"), "--out", str(tmp_path / "again")])
    assert "differ in config.steps" in capsys.readouterr().err


def test_primary_generations_are_checked_before_anything_is_written(tmp_path, capsys):
    _two_arm_sweep(tmp_path, seeds=2)
    err = _refusal([str(tmp_path), "--baseline", "mle", "--primary-first", "-1"], capsys)
    assert err.endswith("compare.primary_first must be an integer >= 0, got -1")
    err = _refusal([str(tmp_path), "--baseline", "mle", "--primary-first", "2", "--primary-last", "1"], capsys)
    assert err.endswith("compare.primary_last must be an integer >= 2, got 1")
    with pytest.raises(SystemExit):
        aggregate_main([str(tmp_path), "--primary-first", "0"])
    assert "need --baseline ARM" in capsys.readouterr().err
    assert not (tmp_path / "aggregate").exists()


def test_relative_to_generation_0_compares_each_seeds_change_by_hand(tmp_path, capsys):
    """ple's minority coverage is mle's plus 0.01 (1 + s)(1 + g) + 0.001 (s % 2): the change over
    generations 1-2 from generation 0 differs by 0.01 (1 + s)(2.5 - 1) = 0.015 (1 + s) per seed s
    (the constant 0.001 (s % 2) cancels), generation 0 by 0.01 (1 + s) + 0.001 (s % 2)."""
    _two_arm_sweep(tmp_path)
    aggregate_main([str(tmp_path), "--baseline", "mle", "--relative-to", "generation_0"])
    out = tmp_path / "aggregate"
    with open(out / "comparisons.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    primary, start = rows[0], rows[1]
    assert (primary["endpoint"], primary["relative_to"], primary["generation"], primary["n"]) == ("primary", "generation_0", "1-2", "4")
    d = 0.015 * np.arange(1, 5)
    assert float(primary["mean_diff"]) == pytest.approx(d.mean(), rel=1e-9)
    assert float(primary["se"]) == pytest.approx(d.std(ddof=1) / 2, rel=1e-9)
    assert (start["endpoint"], start["relative_to"], start["generation"]) == ("start", "none", "0")
    assert float(start["mean_diff"]) == pytest.approx(np.mean([0.01, 0.021, 0.03, 0.041]), rel=1e-9)
    record = json.loads((out / "summary.json").read_text())["comparisons"]
    assert record["relative_to"] == "generation_0" and "change from generation 0" in record["primary"]
    assert (out / "figures" / "forest.png").read_bytes()[:8] == PNG_SIGNATURE
    # Seed 3's ple lost its generation 0: that seed leaves the pair, n = 3.
    lines = (tmp_path / "3" / "metrics.csv").read_text().splitlines()
    kept = [line for line in lines if not line.startswith("ple,0,3,coverage,")]
    (tmp_path / "3" / "metrics.csv").write_text("\n".join(kept) + "\n")
    aggregate_main([str(tmp_path), "--baseline", "mle", "--relative-to", "generation_0"])
    first = next(csv.DictReader(open(out / "comparisons.csv", newline="")))
    assert first["n"] == "3" and float(first["mean_diff"]) == pytest.approx(d[:3].mean(), rel=1e-9)
    # Every seed's ple without generation 0 (a lost arm): refused before anything is written.
    for seed in range(3):
        lines = (tmp_path / str(seed) / "metrics.csv").read_text().splitlines()
        (tmp_path / str(seed) / "metrics.csv").write_text("\n".join(l for l in lines if not l.startswith("ple,0,3,coverage,")) + "\n")
    capsys.readouterr()
    err = _refusal([str(tmp_path), "--baseline", "mle", "--relative-to", "generation_0", "--out", str(tmp_path / "x")], capsys)
    assert err.endswith("needs a finite generation-0 value of coverage/3 in some replicate of every arm, got none in ['ple']")
    err = _refusal([str(tmp_path), "--baseline", "mle", "--relative-to", "generation_0", "--primary-first", "0",
                    "--out", str(tmp_path / "x")], capsys)  # fmt: skip
    assert err.endswith("compare.primary_first must be >= 1 with compare.relative_to 'generation_0' (a change from "
                        "generation 0 over generations that include it), got 0")  # fmt: skip
    assert not (tmp_path / "x").exists()


def test_factored_image_runs_get_small_multiples_and_a_bad_declaration_is_refused_before_writing(tmp_path, capsys, monkeypatch):
    import genfair.cli._aggregate as module

    arms = ["fresh-mle", "fresh-ple", "augment-mle", "augment-ple"]
    values = {(arm, g, group, metric): 0.1 + 0.01 * g + (0.5 if group == "3" else 0.0)
              for arm in arms for g in range(2) for group in ("3", "6") for metric in ("share", "precision", "recall", "coverage")}  # fmt: skip
    factors = {"levels": {"loop": ["fresh", "augment"], "estimator": ["mle", "ple"]}, "pattern": "{loop}-{estimator}"}
    for seed in (0, 1):
        run = _write_run(tmp_path / str(seed), seed=seed, values=values, family="images", groups=("3", "6"), proportions=(0.9, 0.1))
        summary = json.loads((run / "summary.json").read_text())
        summary["config"]["arm_factors"] = factors
        (run / "summary.json").write_text(json.dumps(summary))
    drawn = []
    monkeypatch.setattr(module, "save_fidelity_figure", lambda path, rows, **kw: drawn.append(kw["factors"]) or path)
    aggregate(tmp_path)
    (placed,) = drawn
    assert placed.facet == "loop" and placed.column("augment-ple") == "augment" and placed.colour("augment-ple") == "ple"
    for seed in (0, 1):  # a declaration that misses the arm "augment-ple"'s level
        summary = json.loads((tmp_path / str(seed) / "summary.json").read_text())
        summary["config"]["arm_factors"]["levels"]["estimator"] = ["mle"]
        (tmp_path / str(seed) / "summary.json").write_text(json.dumps(summary))
    err = _refusal([str(tmp_path), "--out", str(tmp_path / "x")], capsys)
    assert err.endswith("arm_factors: arm 'fresh-ple' must match arm_factors.pattern '{loop}-{estimator}' with levels of arm_factors.levels, got no match")
    assert not (tmp_path / "x").exists()

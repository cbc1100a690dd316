"""Plug-ins through ``_target_`` (docs/architecture.md, "Where to add each thing"): the three
examples of ``examples/`` run end to end through the ``genfair`` command, each checked against
the built-in it generalises; and the protocols' refusals, before any work where the plug-in can
be checked then, else as the failure of one arm while the others finish.

Every command runs at once in the module-scoped fixture ``cli``, from the repository root (where
``examples.<file>.<Name>`` and ``tests._plugin_cases.<Name>`` import, as a user's module does).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _commands import run_commands
from _fixtures import read_csv

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GENFAIR = str(BIN / "genfair") if (BIN / "genfair").exists() else shutil.which("genfair")
# A shrunk class_mixture_mad: 4 generations of 40 replicates, each run one arm unless it says.
TINY = ["experiment=class_mixture_mad", "loop.generations=4", "loop.replicates=40", "arms={}"]
SHRINK = ["estimator=custom", "estimator._target_=examples.shrinkage_estimator.ShrinkTowardsFirst"]
MEAN_DIST = "+evaluation.extra_metrics=[{_target_:examples.class_mean_distance.ClassMeanDistance,samples:50}]"
KEEP = ["loop=custom", "loop.training_set._target_=examples.keep_fraction_loop.KeepFraction"]
RUNS = {
    # The examples, and the built-in each equals at one setting of its option.
    "shrink": [*SHRINK, "+estimator.weight=0.5"],
    "shrink_0": [*SHRINK, "+estimator.weight=0.0"],
    "mle": [],
    "mean_dist": [MEAN_DIST],
    "keep_half": [*KEEP, "+loop.training_set.fraction=0.5"],
    "keep_all": [*KEEP, "+loop.training_set.fraction=1.0"],
    "accumulate": ["loop.kind=accumulate"],
    "unit_share": ["+evaluation.extra_metrics=[{_target_:tests._plugin_cases.UnitShare}]"],
}
# Refused before any work, in one line (exit 2): (overrides, words of the line).
REFUSALS = {
    "estimator_import": (["estimator=custom", "estimator._target_=examples.no_such_module.Fit"],
                         ["estimator._target_=examples.no_such_module.Fit", "cannot import"]),
    "estimator_not_callable": (["estimator=custom", "estimator._target_=examples.shrinkage_estimator.__all__"],
                               ["estimator._target_=examples.shrinkage_estimator.__all__", "must be a class or function"]),
    "estimator_no_fit": (["estimator=custom", "estimator._target_=collections.OrderedDict"],
                         ["estimator._target_=collections.OrderedDict", "has no method 'fit"]),
    "metric_no_bounds": (["+evaluation.extra_metrics=[{_target_:tests._plugin_cases.NoBounds}]"],
                         ["evaluation.extra_metrics[0]._target_=tests._plugin_cases.NoBounds", "bounds must be declared"]),
    "metric_import": (["+evaluation.extra_metrics=[{_target_:tests._plugin_cases.Nope}]"],
                      ["evaluation.extra_metrics[0]._target_=tests._plugin_cases.Nope", "has no 'Nope'"]),
    "loop_no_compose": (["loop=custom", "loop.training_set._target_=tests._plugin_cases.NoCompose"],
                        ["loop.training_set._target_=tests._plugin_cases.NoCompose", "missing: ['compose']"]),
}
# An arm stops at run time (exit 3), the other finishes: (overrides, words of the line, the arm, its generation).
FAILURES = {
    "estimator_shapes": (
        ["estimator=custom", "estimator._target_=tests._plugin_cases.ShapeBreaker", "+estimator.break_at=99",
         "arms={bad:{estimator.break_at:2},good:{estimator.break_at:99}}"],
        ["arm bad failed at generation 2", "estimator._target_=tests._plugin_cases.ShapeBreaker", "'means'", "expected shape"],
        "bad", 2,
    ),
    "metric_shape": (
        ["+evaluation.extra_metrics=[{_target_:tests._plugin_cases.WrongShapeMetric}]"],
        ["arm main failed at generation 0", "tests._plugin_cases.WrongShapeMetric", "shape ()", "expected (40,)"],
        "main", 0,
    ),
    "loop_size": (
        ["loop=custom", "loop.training_set._target_=tests._plugin_cases.Truncating", "+loop.training_set.break_at=99",
         "arms={bad:{loop.training_set.break_at:1},good:{loop.training_set.break_at:99}}"],
        ["arm bad failed at generation 1", "loop.training_set._target_=tests._plugin_cases.Truncating", "expected (40, 200)"],
        "bad", 1,
    ),
    "loop_labels": (
        ["loop=custom", "loop.training_set._target_=tests._plugin_cases.Relabelling"],
        ["arm main failed at generation 1", "tests._plugin_cases.Relabelling", "class labels [5, 6]", "outside the data's classes 0..1"],
        "main", 1,
    ),
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    root = tmp_path_factory.mktemp("plugins")
    overrides = {**RUNS, **{k: v[0] for k, v in REFUSALS.items()}, **{k: v[0] for k, v in FAILURES.items()}}
    jobs = {name: ([GENFAIR, *TINY, *extra, f"hydra.run.dir={root / name}"], REPO) for name, extra in overrides.items()}
    results = run_commands(jobs, timeout=600)
    return {name: (results[name], root / name) for name in jobs}


def _ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr


def test_the_shrinkage_estimator_runs_and_at_weight_0_is_the_models_own_fit(cli):
    for name in ("shrink", "shrink_0", "mle"):
        _ok(cli[name][0])
    mle = (cli["mle"][1] / "metrics.csv").read_bytes()
    assert (cli["shrink_0"][1] / "metrics.csv").read_bytes() == mle
    assert (cli["shrink"][1] / "metrics.csv").read_bytes() != mle
    shrunk = {(r["generation"], r["group"], r["metric"]): float(r["mean"]) for r in read_csv(cli["shrink"][1] / "metrics.csv")}
    plain = {(r["generation"], r["group"], r["metric"]): float(r["mean"]) for r in read_csv(cli["mle"][1] / "metrics.csv")}
    # Pulled towards generation 0's fit, the minority's W2 to its truth grows less than the MLE's.
    assert shrunk[("3", "minority", "w2_sq")] < plain[("3", "minority", "w2_sq")]
    summary = json.loads((cli["shrink"][1] / "summary.json").read_text())
    assert summary["fingerprint"]["arms"]["main"]["estimator"] == {
        "name": "custom", "target": "examples.shrinkage_estimator.ShrinkTowardsFirst", "kwargs": {"weight": 0.5}}


def test_the_extra_metric_is_written_drawn_and_leaves_the_built_in_metrics_alone(cli):
    result, run = cli["mean_dist"]
    _ok(result)
    rows = read_csv(run / "metrics.csv")
    extra = [r for r in rows if r["metric"] == "mean_dist"]
    assert {(r["generation"], r["group"]) for r in extra} == {(str(g), c) for g in range(4) for c in ("majority", "minority", "all")}
    assert all(math.isfinite(float(r["mean"])) and float(r["mean"]) >= 0 for r in extra)
    assert (run / "figures" / "mean_dist.png").is_file()
    with np.load(run / "replicates.npz") as arrays:
        assert arrays["main/mean_dist/minority"].shape == (4, 40)
    built_in = [r for r in rows if r["metric"] != "mean_dist"]
    assert built_in == read_csv(cli["mle"][1] / "metrics.csv")


def test_an_extra_metric_declared_in_0_1_gets_the_logit_scale_interval(cli):
    from genfair.metrics import mean_interval, summarize_replicates

    result, run = cli["unit_share"]
    _ok(result)
    with np.load(run / "replicates.npz") as arrays:
        values = arrays["main/class0_share/all"]
    row = next(r for r in read_csv(run / "metrics.csv") if r["metric"] == "class0_share" and r["generation"] == "3")
    logit = mean_interval(summarize_replicates(values[3]), bounded=True)
    plain = mean_interval(summarize_replicates(values[3]), bounded=False)
    assert logit != plain
    assert (float(row["lo"]), float(row["hi"])) == pytest.approx(logit, rel=1e-12)


def test_keeping_every_sample_of_every_generation_is_accumulate(cli):
    for name in ("keep_half", "keep_all", "accumulate"):
        _ok(cli[name][0])
    accumulate = (cli["accumulate"][1] / "metrics.csv").read_bytes()
    assert (cli["keep_all"][1] / "metrics.csv").read_bytes() == accumulate
    assert (cli["keep_half"][1] / "metrics.csv").read_bytes() != accumulate
    # Every past synthetic set is kept on disk (keeps_history), as accumulate keeps them.
    assert len(list((cli["keep_half"][1] / "arms" / "main").glob("**/synthetic*"))) == len(
        list((cli["accumulate"][1] / "arms" / "main").glob("**/synthetic*")))


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_plugin_that_breaks_its_protocol_is_refused_before_any_work(cli, name):
    result, run = cli[name]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("genfair: error: "), lines
    for words in REFUSALS[name][1]:
        assert words in lines[0], (words, lines[0])
    assert not (run / "summary.json").exists()


@pytest.mark.parametrize("name", list(FAILURES))
def test_a_plugin_that_fails_at_run_time_stops_its_arm_and_the_others_finish(cli, name):
    result, run = cli[name]
    _, words, arm, generation = FAILURES[name]
    assert result.returncode == 3, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("genfair: error: ") and "Traceback" not in result.stderr
    for word in words:
        assert word in line, (word, line)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["arms"][arm]["failure"]["generation"] == generation
    finished = {r["generation"] for r in read_csv(run / "metrics.csv") if r["arm"] == arm}
    assert finished == {str(g) for g in range(generation)}
    for other in set(summary["arms"]) - {arm}:
        assert {r["generation"] for r in read_csv(run / "metrics.csv") if r["arm"] == other} == {"0", "1", "2", "3"}

"""The GMM study (``genfair experiment=gmm_ple``): its config checks, component matching, the
EM estimator, a tiny run through the library and through the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from _fixtures import read_csv as _read_csv
from genfair._outputs import read_metrics_csv
from genfair.errors import ConfigError
from genfair.studies import STUDIES, GmmPleConfig, run_gmm_ple, run_study
from genfair.studies._gmm_estimators import em_estimate, hyper_estimate, match_components, train_hypernetwork
from genfair.studies._gmm_ple import _truth

BIN = Path(sys.executable).parent
GENFAIR = str(BIN / "genfair") if (BIN / "genfair").exists() else shutil.which("genfair")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = dict(
    sample_sizes=[20, 40],
    loop_size=40,
    test_sets=6,
    kl_samples=500,
    ablation_lams=[1.0],
    steps=8,
    samples_per_step=200,
    hidden=8,
    embedding_dim=8,
    em_max_iter=50,
    probe_sets=2,
    generations=2,
    chains=3,
)
TINY_OVERRIDES = [f"study.{key}={json.dumps(value).replace(' ', '')}" for key, value in TINY.items()]
ARMS = {"hyper_mle", "ple", "em"}


# ------------------------------------------------------------------------------------- config
def test_defaults_are_the_papers_setting():
    config = GmmPleConfig()
    assert (config.weights, config.means, config.variances) == ([0.8, 0.2], [0.0, 2.0], [1.0, 1.0])
    assert config.lam == 0.1 and config.kl_samples == 100_000 and config.minority == 1
    assert config.hyper_arms(config.loop_size) == {"hyper_mle": 0.0, "ple": 0.1, "ple_lam0.01": 0.01, "ple_lam1": 1.0}
    assert config.hyper_arms(50) == {"hyper_mle": 0.0, "ple": 0.1}
    assert STUDIES["gmm_ple"].config is GmmPleConfig and STUDIES["gmm_ple"].runner() is run_gmm_ple


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weights": [0.5, 0.6]}, r"weights must be at least two numbers in \(0, 1\) summing to 1, got \[0.5, 0.6\]"),
        ({"means": [0.0]}, r"means must be 2 numbers, one per component of weights, got \[0.0\]"),
        ({"variances": [1.0, 0.0]}, r"variances must be 2 numbers > 0, .* got \[1.0, 0.0\]"),
        ({"sample_sizes": [50, 2]}, r"sample_sizes must hold integers >= 4, got \[50, 2\]"),
        ({"loop_size": 300}, r"loop_size must be one of sample_sizes \[50, 200, 1000\], got 300"),
        ({"lam": 0.0}, r"lam must be a number > 0 \(lam = 0 is the hyper_mle arm\), got 0.0"),
        ({"ablation_lams": [0.1]}, r"ablation_lams must be distinct numbers > 0 other than lam=0.1, got \[0.1\]"),
        ({"discrepancy": "l1"}, r"discrepancy must be one of \['draw', 'expectation'\], got 'l1'"),
        ({"chains": 1}, r"chains must be an integer >= 2, got 1"),
        ({"em_tol": -1.0}, r"em_tol must be a number > 0, got -1.0"),
    ],
)
def test_bad_config_values_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GmmPleConfig(**kwargs)


# --------------------------------------------------------------------------------- estimators
def test_match_components_names_the_minority_by_its_mean():
    true_means = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    means = torch.tensor([[[1.9], [0.1]], [[-0.3], [2.5]], [[1.0], [1.2]]], dtype=torch.float64)
    order = match_components(means, true_means)
    assert order.tolist() == [[1, 0], [0, 1], [0, 1]]  # in 1-D: the larger mean plays the minority


def test_em_recovers_a_well_separated_mixture_in_any_component_order():
    config = GmmPleConfig(means=[0.0, 8.0], variances=[1.0, 0.25])
    truth = _truth(config)
    x = truth.sample(4 * 2000, generator=torch.Generator().manual_seed(0)).reshape(4, 2000, 1)
    estimate = em_estimate(x, num_components=2, n_init=1, tol=1e-6, max_iter=500, generator=torch.Generator().manual_seed(1))
    matched = estimate.permuted(match_components(estimate.means, truth.means[0]))
    n = 2000  # standard errors: weight sqrt(p(1-p)/n), minority mean sqrt(v/(n p)), variance v sqrt(2/(n p))
    assert bool(estimate.converged.all())
    assert torch.all((matched.weights[:, 1] - 0.2).abs() <= 5 * (0.16 / n) ** 0.5)
    assert torch.all((matched.means[:, 1, 0] - 8.0).abs() <= 5 * (0.25 / (0.2 * n)) ** 0.5)
    assert torch.all((matched.variances[:, 1, 0] - 0.25).abs() <= 5 * 0.25 * (2 / (0.2 * n)) ** 0.5)


def test_hypernetwork_training_is_seeded_and_reads_sets_as_sets():
    truth = _truth(GmmPleConfig())

    def train(lam: float):
        return train_hypernetwork(
            truth, set_size=30, lam=lam, steps=5, samples_per_step=300, lr=0.01, hidden=8, embedding_dim=8,
            discrepancy="draw", init_seed=3, data_generator=torch.Generator().manual_seed(4),
            ple_generator=torch.Generator().manual_seed(5),
        )

    a, b, ple = train(0.0), train(0.0), train(1.0)
    assert a.sets_per_step == 10 and a.discrepancy == 0.0 and ple.discrepancy > 0
    x = truth.sample(3 * 30, generator=torch.Generator().manual_seed(6)).reshape(3, 30, 1)
    first, second = hyper_estimate(a.hnet, x), hyper_estimate(b.hnet, x)
    assert torch.equal(first.flat(), second.flat())  # same seeds, same estimator
    assert first.weights.dtype == torch.float64
    # H(X) = R(h2(mean_i h1(x_i))) (Eq. 6): the order of a set's samples does not matter (up to the
    # float32 rounding of a sum taken in another order, ~1e-7 to 1e-6), the set does. After 5 steps
    # the set's effect is small (3e-4 to 4e-4 between these sets) but well above that rounding.
    shuffled = hyper_estimate(a.hnet, x[:, torch.randperm(30, generator=torch.Generator().manual_seed(7))])
    torch.testing.assert_close(shuffled.flat(), first.flat(), rtol=0, atol=1e-5)
    rows = first.flat()
    assert (rows[0] - rows[1]).abs().max() > 1e-4 and (rows[1] - rows[2]).abs().max() > 1e-4


# ------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[dict, Path]:
    run_dir = tmp_path_factory.mktemp("tiny")
    return run_study(GmmPleConfig(**TINY), seed=0, run_dir=run_dir), run_dir


def test_tiny_study_writes_every_result_file(tiny_run):
    summary, tmp_path = tiny_run
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(summary, default=str))
    assert summary["status"] == "complete" and summary["config"] == dataclasses.asdict(GmmPleConfig(**TINY))
    assert summary["files"] == ["estimators.csv", "figures/gmm_ple.png", "metrics.csv"]
    summary = summary["results"]
    assert set(summary["sizes"]) == ARMS | {"ple_lam1"}
    assert set(summary["sizes"]["ple_lam1"]["kl/all"]) == {"40"}  # ablation arms: loop size only
    assert set(summary["sizes"]["ple"]["kl/all"]) == {"20", "40"}
    for arm in ARMS:
        for n in ("20", "40"):
            probe = summary["input_sensitivity"][arm][n]
            # relative changes of the estimate between two inputs: 0 for an estimator that ignores its data
            assert set(probe) == {"disjoint", "component_0_vs_1"} and all(v > 0 for v in probe.values())
    assert set(summary["training"]["40"]) == {"hyper_mle", "ple", "ple_lam1"}

    sizes = _read_csv(tmp_path / "estimators.csv")
    assert list(sizes[0])[:4] == ["arm", "set_size", "group", "metric"]
    assert {(r["metric"], r["group"]) for r in sizes} >= {("kl", "all"), ("weight", "minority"), ("variance", "minority")}
    assert all(r["n"] == "6" for r in sizes)
    rows = _read_csv(tmp_path / "metrics.csv")
    assert len(read_metrics_csv(tmp_path / "metrics.csv")) == len(rows)  # what genfair-aggregate reads
    probes = {r["arm"]: float(r["mean"]) for r in rows if r["metric"] == "sensitivity"}
    assert probes == {arm: summary["input_sensitivity"][arm]["40"]["disjoint"] for arm in ARMS | {"ple_lam1"}}
    assert all(r["generation"] == "0" for r in rows if r["metric"] == "sensitivity")
    loop = [r for r in rows if r["metric"] != "sensitivity"]
    assert {r["arm"] for r in loop} == ARMS | {"ple_lam1"} and {r["generation"] for r in loop} == {"0", "1"}
    assert all(r["n"] == "3" for r in loop)
    weight = {(r["arm"], r["generation"]): float(r["mean"]) for r in loop if r["metric"] == "weight"}
    for arm in ARMS | {"ple_lam1"}:  # generation 1 re-estimates on generation 0's samples
        assert weight[arm, "1"] != weight[arm, "0"], arm
    assert (tmp_path / "figures" / "gmm_ple.png").read_bytes()[:8] == PNG_SIGNATURE


def test_same_seed_same_numbers(tiny_run, tmp_path):
    """Randomness is an argument: a second run with the same seed agrees exactly; another seed differs."""
    summary, run_dir = tiny_run
    summary = summary["results"]
    again = run_gmm_ple(GmmPleConfig(**TINY), seed=0, run_dir=tmp_path / "again").results
    other = run_gmm_ple(GmmPleConfig(**{**TINY, "sample_sizes": [40], "ablation_lams": []}), seed=1, run_dir=tmp_path / "other").results
    assert (tmp_path / "again" / "estimators.csv").read_text() == (run_dir / "estimators.csv").read_text()
    assert again["loop"] == summary["loop"] and again["input_sensitivity"] == summary["input_sensitivity"]
    assert other["sizes"]["em"]["kl/all"]["40"] != summary["sizes"]["em"]["kl/all"]["40"]


# ------------------------------------------------------------------------------------- CLI
def test_shipped_experiment_runs_the_study_at_its_defaults():
    """configs/experiment/gmm_ple.yaml picks study=gmm_ple, whose node has every field (so each
    can be overridden on the command line) at the dataclass's defaults."""
    from hydra import compose, initialize_config_module

    from genfair.cli import register_configs, study_config

    register_configs()
    with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=gmm_ple"])
    assert set(cfg.study) == {f.name for f in dataclasses.fields(GmmPleConfig)}
    assert study_config(cfg) == GmmPleConfig()


def _cli(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("GENFAIR_DEBUG", "HYDRA_FULL_ERROR")}
    env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([GENFAIR, *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_runs_the_experiment_and_refuses_a_bad_value(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    commands = [
        ["experiment=gmm_ple", f"hydra.run.dir={good}", *TINY_OVERRIDES],
        ["experiment=gmm_ple", f"hydra.run.dir={bad}", *TINY_OVERRIDES, "study.loop_size=7"],
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        ok, refused = pool.map(lambda arguments: _cli(arguments, tmp_path), commands)

    assert ok.returncode == 0, ok.stderr[-4000:]
    summary = json.loads((good / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["study"] == "gmm_ple" and summary["config"]["loop_size"] == 40
    assert summary["overrides"] == ["experiment=gmm_ple", *TINY_OVERRIDES]
    assert (good / "estimators.csv").is_file() and (good / "metrics.csv").is_file()

    stderr = refused.stderr.strip()
    assert refused.returncode == 2, stderr
    assert stderr.startswith("genfair: error: study.loop_size must be one of sample_sizes [20, 40], got 7")
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr
    assert not (bad / "summary.json").exists()


@pytest.mark.slow
def test_trained_hypernetworks_depend_on_their_input():
    """The degeneracy probe on a properly trained H (n = 200, 600 steps): its output changes
    between disjoint halves of a set, and more between single-component batches."""
    from genfair.hypernets import input_sensitivity

    truth = _truth(GmmPleConfig())
    trained = train_hypernetwork(
        truth, set_size=200, lam=0.0, steps=600, samples_per_step=6400, lr=0.01, hidden=32, embedding_dim=32,
        discrepancy="draw", init_seed=0, data_generator=torch.Generator().manual_seed(1),
        ple_generator=torch.Generator().manual_seed(2),
    )
    generator = torch.Generator().manual_seed(3)
    components = truth.draw_components(400, generator=generator)
    x = truth.sample(400, components=components, generator=generator)
    probe = input_sensitivity(trained.hnet, x, components, generator=generator)
    assert probe["disjoint"] > 0.01 and probe["class_0_vs_1"] > probe["disjoint"]
    assert np.isfinite(trained.nll)

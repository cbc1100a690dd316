"""Deep models on real images in the self-consuming loop: every model x loop kind x estimator
runs, the experiment writes its files with bootstrap intervals, labels follow the documented
rule, bad combinations are refused, and a resumed run ends where an uninterrupted one does."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
import torch

from genfair.data import DigitsData
from genfair.errors import ConfigError
from genfair.estimators import ESTIMATORS, EstimatorConfig, build_fit
from genfair.evaluation import EvaluationConfig
from genfair.experiment import Arm, run_experiment
from genfair.models import AnalyticModelConfig, DDPMConfig, ModelCapabilities, VAEConfig, build_model
from genfair.loops import LOOP_KINDS, LoopConfig, simulate

DATA = DigitsData(classes=[3, 6], proportions=[0.8, 0.2])
TINY_VAE = VAEConfig(hidden=[32], latent_dim=4)
TINY_CONV = VAEConfig(architecture="conv", hidden=[8, 16], latent_dim=4, conditional=False)
TINY_DDPM = DDPMConfig(block_out_channels=[8, 16], norm_num_groups=4, num_train_timesteps=50, sample_steps=2)
TINY_EVAL = EvaluationConfig(samples=60, bootstrap=10, grid=2)
TINY_LOOP = LoopConfig(generations=2, n_real=40, n_synthetic=40, replicates=1)
STEPS = EstimatorConfig(steps=3, lr=1e-3, batch_size=16)


def _estimator(name: str) -> EstimatorConfig:
    return EstimatorConfig(name=name, steps=2, lr=1e-3, batch_size=16, hidden=16, embedding_dim=8)


@pytest.mark.parametrize(
    "model_config, kind, estimator",
    [
        pytest.param(model, kind, estimator, id=f"{tag}-{kind}-{estimator}")
        for (tag, model), kind, estimator in itertools.product(
            [("vae", TINY_VAE), ("ddpm", TINY_DDPM)], LOOP_KINDS, ESTIMATORS
        )
    ],
)
def test_every_model_runs_in_every_loop_kind_with_every_estimator(model_config, kind, estimator):
    torch.manual_seed(0)
    model = build_model(model_config, sample_shape=DATA.sample_shape, num_classes=2)
    fit = build_fit(
        _estimator(estimator), sample_shape=DATA.sample_shape, model=ModelCapabilities(positive={}, per_replicate=False, closed_form=False, adversarial=False, num_classes=2)
    )
    config = LoopConfig(kind=kind, generations=3, n_real=20, n_synthetic=20, replicates=1)

    def measure(fitted, train, generator):
        return {"train_size/all": torch.tensor([float(train.n)])}

    result = simulate(data=DATA, model=model, config=config, seed=0, measure=measure, fit=fit)
    sizes = result.values("train_size/all")[:, 0].tolist()
    expected = {
        "fully_synthetic": [20, 20, 20],
        "augment": [20, 40, 40],
        "fresh": [20, 40, 40],
        "accumulate": [20, 40, 60],
    }[kind]
    assert sizes == expected
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One tiny experiment per model family, run once for the tests below."""
    root = tmp_path_factory.mktemp("image_runs")
    arms = {
        "vae": [Arm("mle", DATA, TINY_VAE, TINY_LOOP, STEPS, TINY_EVAL),
                Arm("ple", DATA, TINY_VAE, TINY_LOOP, EstimatorConfig(name="ple", steps=3, lr=1e-3, batch_size=16,
                                                                       hidden=16, embedding_dim=8), TINY_EVAL)],
        "conv": [Arm("mle", DATA, TINY_CONV, TINY_LOOP, STEPS, TINY_EVAL)],
        "ddpm": [Arm("mle", DATA, TINY_DDPM, TINY_LOOP, STEPS, TINY_EVAL)],
    }
    for name, family in arms.items():
        run_experiment(family, seed=0, run_dir=root / name)
    return {name: root / name for name in arms}


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("family", ["vae", "conv", "ddpm"])
def test_image_experiment_writes_metrics_with_intervals_grids_and_figures(runs, family):
    run = runs[family]
    rows = _rows(run)
    assert list(rows[0]) == ["arm", "generation", "group", "metric", "mean", "se", "median", "q05", "q95", "n", "lo", "hi"]
    metrics = {r["metric"] for r in rows}
    assert {"precision", "recall", "density", "coverage", "fd", "kid", "share", "representation_ratio",
            "fairness_discrepancy", "train_share"} <= metrics
    groups = {r["group"] for r in rows}
    assert {"3", "6", "all", "minority_to_majority"} <= groups
    for row in rows:
        if row["metric"] in ("share", "precision") and row["group"] == "3":
            assert float(row["lo"]) <= float(row["mean"]) <= float(row["hi"]), row
    figures = run / "figures"
    assert (figures / "minority_fidelity.png").is_file()
    for arm in {r["arm"] for r in rows}:
        assert (figures / f"samples_{arm}.png").is_file()
        assert sorted(p.name for p in (run / "samples" / arm).glob("*.png")) == [
            "generation_0000.png", "generation_0001.png"
        ]


def test_the_last_model_of_each_arm_reloads_with_its_config(runs):
    from genfair.checkpoint import load_tensors
    from genfair.models import load_model

    model = load_model(runs["ddpm"] / "arms" / "mle" / "model")
    last = load_tensors(runs["ddpm"] / "arms" / "mle" / "generation_0001" / "model.safetensors")
    assert all(torch.equal(value, last[name]) for name, value in model.state_dict().items())


def test_image_summary_records_the_classifier_and_the_minority(runs):
    import json

    summary = json.loads((runs["vae"] / "summary.json").read_text())
    assert summary["family"] == "images"
    assert summary["minority"] == "6"
    assert summary["classifier"]["heldout_accuracy"] >= 0.95
    assert sum(map(sum, summary["classifier"]["confusion"])) == len(DATA.heldout().y[0])


def test_unconditional_model_synthetic_labels_come_from_the_classifier(runs):
    """The conv VAE is unconditional: its synthetic set is labelled by the evaluation classifier."""
    from genfair.checkpoint import load_tensors
    from genfair.metrics import load_or_train_classifier

    synthetic = load_tensors(runs["conv"] / "arms" / "mle" / "generation_0001" / "synthetic.safetensors")
    classifier = load_or_train_classifier(DATA, config=TINY_EVAL.classifier)
    assert torch.equal(synthetic["y"][0], classifier.model.predict(synthetic["x"][0]))


def test_a_resumed_image_run_ends_where_an_uninterrupted_one_does(tmp_path):
    arm = Arm("mle", DATA, TINY_VAE, LoopConfig(generations=3, n_real=40, n_synthetic=40, replicates=1), STEPS, TINY_EVAL)
    run_experiment([arm], seed=3, run_dir=tmp_path / "whole")
    short = Arm("mle", DATA, TINY_VAE, LoopConfig(generations=2, n_real=40, n_synthetic=40, replicates=1), STEPS, TINY_EVAL)
    run_experiment([short], seed=3, run_dir=tmp_path / "resumed")
    run_experiment([arm], seed=3, run_dir=tmp_path / "resumed")
    assert (tmp_path / "whole" / "metrics.csv").read_bytes() == (tmp_path / "resumed" / "metrics.csv").read_bytes()


def _replicated(replicates: int, name: str = "mle") -> Arm:
    loop = LoopConfig(generations=2, n_real=40, n_synthetic=40, replicates=replicates)
    return Arm(name, DATA, TINY_VAE, loop, STEPS, TINY_EVAL)


def _values(result, key: str):
    return [record.values[key] for record in result.records["mle"]]


def test_a_replicate_chain_does_not_depend_on_how_many_chains_run(tmp_path):
    """Chain r draws from streams keyed by (seed, r) only: replicate 0 of an R = 3 run is the
    one-replicate run, and replicates 0 and 1 are the same in R = 2 and R = 3 (same process, so
    bitwise), while the chains differ from each other."""
    one = run_experiment([_replicated(1)], seed=5, run_dir=tmp_path / "one")
    two = run_experiment([_replicated(2)], seed=5, run_dir=tmp_path / "two")
    three = run_experiment([_replicated(3)], seed=5, run_dir=tmp_path / "three")
    for key in ("coverage/6", "recall/3", "train_share/6"):
        for a, b, c in zip(_values(one, key), _values(two, key), _values(three, key)):
            assert a[0] == c[0] and list(b) == list(c[:2]), key
    assert len({float(v) for v in _values(three, "fd/all")[1]}) == 3  # three different chains
    assert (tmp_path / "three" / "arms" / "mle" / "replicate_02" / "generation_0001").is_dir()


def test_replicated_deep_runs_report_across_replicate_t_intervals(tmp_path):
    """metrics.csv: mean and se across chains and the 95 % t-interval (within [0, 1] for a
    bounded metric); bootstrap.csv: each chain's own bootstrap interval."""
    from scipy import stats

    from genfair._outputs import read_metrics_csv
    from genfair.metrics import logit_interval

    result = run_experiment([_replicated(3)], seed=2, run_dir=tmp_path)
    rows = {(r["generation"], r["metric"], r["group"]): r for r in read_metrics_csv(tmp_path / "metrics.csv")}
    for metric, group, bounded in (("fd", "all", False), ("coverage", "6", True)):
        values = result.records["mle"][1].values[f"{metric}/{group}"]
        row = rows[(1, metric, group)]
        quantile, se = stats.t.ppf(0.975, 2), values.std(ddof=1) / 3**0.5
        lo, hi = values.mean() - quantile * se, values.mean() + quantile * se
        if bounded:
            lo, hi = logit_interval(values.mean(), se, quantile)
        assert row["n"] == 3 and row["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert (row["lo"], row["hi"]) == (pytest.approx(lo, rel=1e-9, abs=1e-12), pytest.approx(hi, rel=1e-9, abs=1e-12))
    with open(tmp_path / "bootstrap.csv", newline="") as handle:
        chains = [r for r in csv.DictReader(handle) if r["metric"] == "coverage" and r["group"] == "6"]
    assert sorted({int(r["replicate"]) for r in chains}) == [0, 1, 2]
    assert all(float(r["boot_lo"]) <= float(r["value"]) <= float(r["boot_hi"]) for r in chains)


@pytest.mark.slow
def test_chains_in_worker_processes_equal_chains_run_here(tmp_path):
    """workers=2 runs the chains in spawned processes: the same results, byte for byte."""
    run_experiment([_replicated(3)], seed=1, run_dir=tmp_path / "here", workers=1)
    run_experiment([_replicated(3)], seed=1, run_dir=tmp_path / "pool", workers=2)
    assert (tmp_path / "here" / "metrics.csv").read_bytes() == (tmp_path / "pool" / "metrics.csv").read_bytes()
    assert (tmp_path / "here" / "bootstrap.csv").read_bytes() == (tmp_path / "pool" / "bootstrap.csv").read_bytes()


@pytest.mark.parametrize(
    "arm, words",
    [
        (Arm("a", DATA, AnalyticModelConfig(), TINY_LOOP), ["model=class_mixture", "model=vae"]),
        (Arm("a", DigitsData(), TINY_VAE, LoopConfig(sampling_bias=0.7)), ["loop.sampling_bias=0.7", "biased sampling"]),
        (Arm("a", DigitsData(), TINY_CONV, TINY_LOOP, STEPS, EvaluationConfig(synthetic_labels="model")),
         ["synthetic_labels=model", "conditional"]),
    ],
    ids=["analytic-model-on-images", "sampling-bias", "model-labels-unconditional"],
)
def test_bad_image_arms_fail_before_any_work(arm, words, tmp_path):
    with pytest.raises(ConfigError) as raised:
        run_experiment([arm], seed=0, run_dir=tmp_path / "run")
    assert all(word in str(raised.value) for word in words), str(raised.value)
    assert not (tmp_path / "run").exists()  # nothing written

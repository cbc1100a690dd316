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
from genfair.models import AnalyticModelConfig, DDPMConfig, VAEConfig, build_model
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
        _estimator(estimator), sample_shape=DATA.sample_shape, num_classes=2, positive={}, per_replicate=False, closed_form=False
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
    assert "input_sensitivity" in summary["arms"]["ple"]


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


def test_a_restarted_finished_run_keeps_its_hypernetwork_probe(tmp_path):
    """A restart finds every generation done and trains no hypernetwork: the probe measured by
    the first run stays in summary.json."""
    arm = Arm("ple", DATA, TINY_VAE, LoopConfig(generations=1, n_real=40, n_synthetic=40, replicates=1),
              _estimator("ple"), TINY_EVAL)
    first = run_experiment([arm], seed=0, run_dir=tmp_path).summary["arms"]["ple"]["input_sensitivity"]
    again = run_experiment([arm], seed=0, run_dir=tmp_path).summary["arms"]["ple"]["input_sensitivity"]
    assert again == first and first["disjoint"] >= 0


@pytest.mark.parametrize(
    "arm, words",
    [
        (Arm("a", DATA, AnalyticModelConfig(), TINY_LOOP), ["model=class_mixture", "model=vae"]),
        (Arm("a", DigitsData(), TINY_VAE, LoopConfig(replicates=4)), ["loop.replicates", "got 4"]),
        (Arm("a", DigitsData(), TINY_CONV, TINY_LOOP, STEPS, EvaluationConfig(synthetic_labels="model")),
         ["synthetic_labels=model", "conditional"]),
    ],
    ids=["analytic-model-on-images", "replicates", "model-labels-unconditional"],
)
def test_bad_image_arms_fail_before_any_work(arm, words, tmp_path):
    with pytest.raises(ConfigError) as raised:
        run_experiment([arm], seed=0, run_dir=tmp_path / "run")
    assert all(word in str(raised.value) for word in words), str(raised.value)
    assert not (tmp_path / "run" / "arms").exists()

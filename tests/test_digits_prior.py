"""The digits prior study (``genfair experiment=digits_prior``): the share prior is honoured, H is
given each set's size, the assessment and the share response are computed right on hand-made
cases, the amortised loop never trains H, a saved H is reused only for its own setting, and the
experiment runs shrunk through the command line."""

from __future__ import annotations

import csv
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _commands import run_command

from genfair.data import Batch
from genfair.errors import ConfigError
from genfair.seeding import torch_generator
from genfair.studies import DigitsPriorConfig, SharePrior
from genfair.studies import _digits_prior_estimators as estimators_module
from genfair.studies._digits_prior import load_or_train
from genfair.studies._digits_prior_assessment import assess, response_slope, share_response
from genfair.studies._digits_prior_estimators import build_estimators, build_hypernetwork, hyper_estimate, train_amortised
from genfair.studies._digits_prior_loop import run_loop
from genfair.studies._share_prior import SharePriorSource

BIN = Path(sys.executable).parent
GENFAIR = str(BIN / "genfair") if (BIN / "genfair").exists() else shutil.which("genfair")
TINY = dict(set_size_range=[10, 20], loop_size=12, assessment_sizes=[12], assessment_draws=4, response_shares=[0.0, 0.25, 1.0],
            response_sets=2, samples=12, vae_hidden=[8], latent_dim=2, hidden=8, embedding_dim=4, steps=3, sets_per_step=4,
            ple_lams=[0.1], refit_steps=2, refit_batch=8, generations=3, chains=2, bootstrap=2, k=2)  # fmt: skip
SHRUNK = [f"study.{key}={str(value).replace(' ', '')}" for key, value in TINY.items()]


@pytest.fixture(scope="module")
def source() -> SharePriorSource:
    return SharePriorSource([3, 6], SharePrior())


class _ExactMeasure:
    """A measure whose generated share is the model's own minority share, exactly (no classifier)."""

    names = ("3", "6")

    def share(self, model, generator):
        return float(model.class_logits.softmax(-1)[1])

    def loop_values(self, model, generator, *, target_shares):
        share = self.share(model, generator)
        return {"share/3": 1 - share, "share/6": share, "coverage/6": 0.5}


def _with_share(share: float):
    """A tiny VAE whose minority share is ``share`` (clamped away from 0 and 1)."""
    model = estimators_module.build_vae(DigitsPriorConfig(**TINY))
    p = min(max(share, 1e-6), 1 - 1e-6)
    with torch.no_grad():
        model.class_logits.copy_(torch.tensor([math.log(1 - p), math.log(p)]))
    return model.requires_grad_(False)


# ------------------------------------------------------------------------------------ the prior
@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"minority_share": [0.5, 0.2]}, "prior.minority_share must be two numbers [low, high] with low < high inside [0, 1], got [0.5, 0.2]"),
        ({"minority_share": [0.3, 0.3]}, "prior.minority_share must be two numbers [low, high] with low < high inside [0, 1], got [0.3, 0.3]"),
        ({"minority_share": [-0.1, 0.5]}, "prior.minority_share must be two numbers [low, high] with low < high inside [0, 1], got [-0.1, 0.5]"),
        ({"minority_share": [0.0, 1.5]}, "prior.minority_share must be two numbers [low, high] with low < high inside [0, 1], got [0.0, 1.5]"),
        ({"alpha": 0}, "prior.alpha must be a number > 0 (a Beta shape), got 0"),
    ],
)
def test_a_bad_prior_is_refused_in_one_line_naming_the_key(prior, message):
    with pytest.raises(ConfigError) as raised:
        SharePrior(**prior)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"set_size_range": [50, 20]}, "set_size_range must be [low, high], integers with 2 <= low <= high, got [50, 20]"),
        ({"loop_size": 200}, "loop_size must lie in set_size_range [25, 125], got 200"),
        ({"response_shares": [0.0, 1.2]}, "response_shares must be distinct shares in [0, 1], got [0.0, 1.2]"),
        ({"ple_lams": [0.0]}, "ple_lams must be distinct numbers > 0 (lam 0 is hyper_mle), got [0.0]"),
    ],
)
def test_bad_study_values_are_refused_in_one_line(kwargs, message):
    with pytest.raises(ConfigError) as raised:
        DigitsPriorConfig(**kwargs)
    assert str(raised.value) == message


def test_shares_follow_the_prior(source):
    """Uniform(0, 1) reaches both ends; a Beta(2, 5) on [0.1, 0.5] has its mean and range
    (tolerances: 5 standard errors of 4000 draws)."""
    g = torch.Generator().manual_seed(0)
    uniform = source.shares(4000, generator=g).numpy()
    assert uniform.min() < 0.01 and uniform.max() > 0.99
    assert abs(uniform.mean() - 0.5) < 5 * math.sqrt(1 / 12 / 4000)
    beta = SharePriorSource([3, 6], SharePrior(minority_share=[0.1, 0.5], alpha=2.0, beta=5.0)).shares(4000, generator=g).numpy()
    sd = 0.4 * math.sqrt(2 * 5 / (7**2 * 8))
    assert beta.min() >= 0.1 and beta.max() <= 0.5 and abs(beta.mean() - (0.1 + 0.4 * 2 / 7)) < 5 * sd / math.sqrt(4000)


def test_training_draws_every_set_from_its_own_distribution_and_varies_the_size(source, monkeypatch):
    """Fails if the prior is ignored (all sets of a step at one share) or the size is fixed."""
    seen: list[tuple[int, torch.Tensor]] = []
    real_sets = estimators_module.PLEObjective.sets

    def recording(self, hnet, x, labels=None, **kwargs):
        seen.append((x.shape[1], labels.float().mean(dim=1)))
        return real_sets(self, hnet, x, labels, **kwargs)

    monkeypatch.setattr(estimators_module.PLEObjective, "sets", recording)
    config = DigitsPriorConfig(**{**TINY, "steps": 8, "sets_per_step": 16, "set_size_range": [10, 100]})
    hnet = build_hypernetwork(config, init_seed=0)
    train_amortised(hnet, source, config, lam=0.0, data_generator=torch.Generator().manual_seed(1),
                    ple_generator=torch.Generator().manual_seed(2))  # fmt: skip
    shares = torch.cat([s for _, s in seen])
    assert len(seen) == 8 and len({n for n, _ in seen}) >= 4  # a fresh size most steps
    assert shares.std() > 0.2 and shares.min() < 0.15 and shares.max() > 0.85  # Uniform(0, 1): sd 0.29
    assert all(s.std() > 0.1 for _, s in seen)  # within every step, too


def test_h_is_given_the_set_size(source):
    """A set and the same set twice have the same mean features: only the size tells them apart."""
    config = DigitsPriorConfig(**TINY)
    hnet = build_hypernetwork(config, init_seed=0)
    head = hnet.head.heads[hnet.generated.index("class_logits")]
    torch.nn.init.normal_(head.weight)  # a trained-looking head (a fresh residual one outputs its base)
    data = source.draw_sets(torch.tensor([0.3]), 10, generator=torch.Generator().manual_seed(0))
    twice = Batch(torch.cat([data.x, data.x], dim=1), torch.cat([data.y, data.y], dim=1))
    once, doubled = hyper_estimate(hnet, data), hyper_estimate(hnet, twice)
    assert not torch.allclose(once.class_logits, doubled.class_logits)


# ------------------------------------------------------------------- assessment and response
def test_response_slope_on_hand_made_cases():
    assert response_slope([0, 0, 1, 1], [0.1, 0.1, 0.9, 0.9]) == pytest.approx(0.8)
    assert response_slope([0, 0.5, 1], [0.4, 0.4, 0.4]) == 0.0  # the constant's
    assert response_slope([0, 0.5, 1], [0.0, 0.5, 1.0]) == pytest.approx(1.0)
    assert math.isnan(response_slope([0.3, 0.3], [0.1, 0.2]))


def test_assessment_rows_use_the_truth_the_refit_and_the_constant_right(source):
    """Three hand-made estimators on the same draws: the set's own share (the refit), a constant
    0.5, and 0.25 + share / 2; every statistic checked against numpy on the draws."""
    config = DigitsPriorConfig(**{**TINY, "assessment_draws": 30})
    own = lambda d, g: _with_share(float(d.y.float().mean()))  # noqa: E731
    estimators = {"refit": own, "constant": lambda d, g: _with_share(0.5), "half": lambda d, g: _with_share(0.25 + float(d.y.float().mean()) / 2)}
    rows = {(r["arm"], r["parameter"]): r for r in assess(estimators, source, _ExactMeasure(), config, root=3)}
    t = source.shares(30, generator=torch_generator(3, 0, "real")).numpy()  # the draws' true shares
    refit = rows[("refit", "share/6")]
    assert refit["slope_refit"] == pytest.approx(1.0) and refit["rmse"] == pytest.approx(refit["rmse_refit"])
    constant = rows[("constant", "share/6")]
    assert constant["slope_truth"] == pytest.approx(0.0, abs=1e-9) and constant["slope_refit"] == pytest.approx(0.0, abs=1e-9)
    assert constant["rmse"] == pytest.approx(math.sqrt(np.mean((0.5 - t) ** 2)), rel=1e-4)
    assert constant["rmse_constant"] == pytest.approx(t.std(), rel=1e-6) and constant["bias"] == pytest.approx(0.5 - t.mean(), rel=1e-4)
    half = rows[("half", "share/6")]
    assert half["slope_refit"] == pytest.approx(0.5, rel=1e-4) and half["rmse_refit"] == pytest.approx(refit["rmse"])
    assert 0.4 < half["slope_truth"] < 0.6  # the set's share is Binomial(12, t) / 12 around t
    assert {p for _, p in rows} == {"share/6", "weight/6"}


def test_share_response_holds_every_input_share_exactly(source):
    config = DigitsPriorConfig(**TINY)
    own = lambda d, g: _with_share(float(d.y.float().mean()))  # noqa: E731
    rows, slopes = share_response({"refit": own, "constant": lambda d, g: _with_share(0.4)}, source, _ExactMeasure(), config, root=0)
    by_arm = {(r["arm"], r["input_share"]): r for r in rows}
    assert sorted(by_arm) == [(a, s) for a in ("constant", "refit") for s in (0.0, 0.25, 1.0)]
    assert [by_arm[("refit", s)]["generated_share"] for s in (0.0, 0.25, 1.0)] == pytest.approx([0.0, 0.25, 1.0], abs=1e-5)
    assert slopes["refit"] == pytest.approx(1.0, abs=1e-5) and slopes["constant"] == pytest.approx(0.0, abs=1e-9)
    assert all(r["sets"] == 2 for r in rows)


# ------------------------------------------------------------------------- the amortised loop
def test_the_amortised_loop_never_trains_h(source, monkeypatch):
    """H's tensors byte for byte the same after the loop, no optimiser step, one forward pass per
    generation and chain."""
    config = DigitsPriorConfig(**TINY)
    hnet = build_hypernetwork(config, init_seed=0)
    hnet.requires_grad_(False)
    before = {k: v.clone() for k, v in hnet.state_dict().items()}
    steps, forwards = [], []
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: steps.append(1))
    hnet.register_forward_hook(lambda *args: forwards.append(1))
    estimators = {k: v for k, v in build_estimators(config, {"hyper_mle": hnet}).items() if k != "refit"}
    values = run_loop(estimators, source, _ExactMeasure(), config, root=0)
    assert values["hyper_mle"]["share/6"].shape == (config.generations, config.chains)
    assert not steps and len(forwards) == config.generations * config.chains
    after = hnet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert np.all(values["hyper_mle"]["share_change/6"][0] == 0)


# ------------------------------------------------------------------------- the command line
def _read(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_experiment_runs_shrunk_through_the_command_line(tmp_path):
    first = tmp_path / "first"
    result = run_command([GENFAIR, "experiment=digits_prior", *SHRUNK, f"hydra.run.dir={first}"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assessment, response = _read(first / "assessment.csv"), _read(first / "share_response.csv")
    assert {"arm", "parameter", "set_size", "rmse", "bias", "slope_truth", "corr_truth", "slope_refit", "rmse_refit",
            "rmse_constant"} <= set(assessment[0])  # fmt: skip
    assert {(r["arm"], r["parameter"]) for r in assessment} >= {(a, "share/6") for a in ("refit", "hyper_mle", "ple_lam0.1")}
    assert all(r["draws"] == "4" for r in assessment)
    assert {"arm", "input_share", "generated_share", "sets"} <= set(response[0])
    assert {(r["arm"], float(r["input_share"])) for r in response} == {
        (a, s) for a in ("refit", "hyper_mle", "ple_lam0.1") for s in (0.0, 0.25, 1.0)
    }
    primary = [r for r in _read(first / "comparisons.csv") if r["endpoint"] == "primary"]
    assert {(r["arm"], r["baseline"], r["metric"], r["group"], r["generation"]) for r in primary} == {
        (a, "refit", "share_change", "6", "2-2") for a in ("hyper_mle", "ple_lam0.1")
    }

    control = [r for r in _read(first / "comparisons_control.csv") if r["endpoint"] == "control"]
    assert [(r["arm"], r["baseline"], r["metric"]) for r in control] == [("ple_lam0.1", "hyper_mle", "share_change")]
    assert len(_read(first / "chains.csv")) == 3 * 2 * 3 * len({r["key"] for r in _read(first / "chains.csv")})
    assert sorted(p.name for p in (first / "hypernetworks").iterdir()) == [
        "hyper_mle.json", "hyper_mle.safetensors", "ple_lam0p1.json", "ple_lam0p1.safetensors"
    ]


def test_a_saved_h_is_reused_for_its_own_setting_only(source, tmp_path):
    """Loaded (not retrained) for the same setting; refused in one line, before any training, for
    another prior, another target, or tensors that fail their checksum."""
    config = DigitsPriorConfig(**TINY)
    run = lambda c: load_or_train(c, source, seed=0, root=5, directory=tmp_path)  # noqa: E731
    trained, records = run(config)
    assert all(r.seconds > 0 for r in records.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hyper_mle.json", "hyper_mle.safetensors", "ple_lam0p1.json", "ple_lam0p1.safetensors"]
    loaded, again = run(config)
    assert all(r.seconds == 0.0 for r in again.values())
    for arm in trained:
        assert all(torch.equal(a, b) for a, b in zip(trained[arm].state_dict().values(), loaded[arm].state_dict().values()))
    for change, key in (({"prior": SharePrior(minority_share=[0.05, 0.5])}, "prior.minority_share: [0.0, 1.0] saved, [0.05, 0.5] now"),
                        ({"latent_dim": 3}, "target.latent_dim: 2 saved, 3 now")):
        with pytest.raises(ConfigError) as raised:
            run(DigitsPriorConfig(**{**TINY, **change}))
        assert f"was trained for another setting ({key})" in str(raised.value) and "\n" not in str(raised.value)
    (tmp_path / "hyper_mle.json").unlink()  # hyper_mle would be trained again, but only after every check
    blob = tmp_path / "ple_lam0p1.safetensors"
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1  # one bit flipped
    blob.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="does not match its recorded sha256"):
        run(config)
    assert not (tmp_path / "hyper_mle.json").exists()  # refused before any training


def test_a_set_size_beyond_a_class_pool_is_refused_before_any_work(tmp_path):
    from genfair.studies import run_digits_prior

    with pytest.raises(ConfigError) as raised:
        run_digits_prior(DigitsPriorConfig(set_size_range=[25, 140]), seed=0, run_dir=tmp_path)
    assert str(raised.value) == (
        "set_size_range must end at most at 136 (the smaller class pool of digits [3, 6], what a set of share 0 or 1 "
        "needs), got [25, 140]"
    )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("study.prior.minority_share=[0.5,0.2]",
         "study.prior.minority_share must be two numbers [low, high] with low < high inside [0, 1], got [0.5, 0.2]"),
        ("study.prior.minority_share=[]", "study.prior.minority_share must be two numbers [low, high] with low < high inside [0, 1], got []"),
        ("study.prior.beta=-1", "study.prior.beta must be a number > 0 (a Beta shape), got -1.0"),
    ],
)
def test_the_command_line_names_the_prior_key(override, message):
    from hydra import compose, initialize_config_module

    from genfair.cli import register_configs, study_config

    register_configs()
    with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=digits_prior", override])
    with pytest.raises(ConfigError) as raised:
        study_config(cfg)
    assert str(raised.value) == message

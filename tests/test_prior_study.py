"""Amortised estimators over a prior: the priors, the set size given to H, the assessment's
statistics, saving and refusing a trained H, and the loop that applies H without retraining."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genfair.data import ClassGaussianPrior, GaussianPrior, MixturePrior
from genfair.errors import ConfigError
from genfair.hypernets import HyperNetwork
from genfair.models import GaussianMixtureModel
from genfair.studies import GaussianPriorConfig, GmmPriorConfig, assessment_row, load_estimator, save_estimator, train_over_prior
from genfair.studies._prior_measures import wright_fisher_drift
from genfair.studies._prior_report import endpoint_rows


def _hnet(components: int = 1, *, set_size_input: bool = True, residual: bool = True) -> HyperNetwork:
    torch.manual_seed(0)
    return HyperNetwork(
        GaussianMixtureModel(components, 1).to(torch.float32), sample_shape=(1,), head="dense", per_replicate=True,
        set_size_input=set_size_input, residual=residual, positive={"weights": "softmax", "variances": "softplus"}, hidden=8, embedding_dim=8,
    )


# ------------------------------------------------------------------------------ the priors
@pytest.mark.parametrize("prior", [GaussianPrior(), MixturePrior()], ids=["gaussian", "mixture"])
def test_every_set_of_a_draw_comes_from_its_own_distribution(prior):
    """Sets of one draw have different parameters, and each set's samples follow its own: the
    sample mean of set b tracks set b's true mean (a prior ignored, every set from one
    distribution, has parameters that do not vary and fails both)."""
    draw = prior.draw_sets(300, 2000, generator=torch.Generator().manual_seed(1))
    for name, values in draw.parameters.items():
        assert values.shape == (300,) and values.std() > 0.1 * values.abs().mean(), name
    if isinstance(prior, GaussianPrior):
        true_mean = draw.parameters["mean"]
    else:
        w = draw.parameters["minority_weight"]
        true_mean = (1 - w) * draw.parameters["majority_mean"] + w * draw.parameters["minority_mean"]
    sample_mean = draw.x[..., 0].mean(1)
    # The sample mean's sd is at most sqrt(max variance / n) < 0.05 here; the means spread over ~1.
    assert (sample_mean - true_mean).abs().max() < 5 * math.sqrt(2 * 4 / 2000)
    assert np.corrcoef(sample_mean, true_mean)[0, 1] > 0.99


def test_the_mixture_draws_its_minority_at_its_weight():
    prior = MixturePrior(gap=[6.0, 8.0], log_variance=[-2.0, -1.0])  # separated: the side names the component
    draw = prior.draw_sets(200, 4000, generator=torch.Generator().manual_seed(2))
    p = draw.parameters
    share = (draw.x[..., 0] > ((p["majority_mean"] + p["minority_mean"]) / 2)[:, None]).double().mean(1)
    se = (p["minority_weight"] * (1 - p["minority_weight"]) / 4000).sqrt()
    assert ((share - p["minority_weight"]).abs() / se).max() < 4.5  # binomial, 200 sets


def test_a_class_gaussian_prior_labels_each_sample_with_its_class_and_a_mixture_hides_it():
    parameters = ClassGaussianPrior(gap=[6.0, 8.0], log_variance=[-2.0, -1.0]).draw_parameters(50, generator=torch.Generator().manual_seed(3))
    for prior, labelled in ((ClassGaussianPrior(), True), (MixturePrior(), False)):
        draw = prior.fixed(parameters).draw(50, 400, generator=torch.Generator().manual_seed(4))
        right = draw.x[..., 0] > ((parameters["majority_mean"] + parameters["minority_mean"]) / 2)[:, None]
        if labelled:
            assert torch.equal(draw.y, right.to(torch.int64))  # 5 sd apart: the side is the class
            assert prior.fixed(parameters).group_names == ("majority", "minority")
        else:
            assert not draw.y.any() and right.any()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(minority_weight=[0.5, 0.1]), "minority_weight must be two numbers [low, high] with low < high inside (0, 1), got [0.5, 0.1]"),
        (dict(minority_weight=[0.2, 1.0]), "minority_weight must be two numbers [low, high] with low < high inside (0, 1), got [0.2, 1.0]"),
        (dict(gap=[0.0, 2.0]), "gap must be two numbers [low, high] with low < high inside (0, inf), got [0.0, 2.0]"),
        (dict(gap=[2.0, 2.0]), "gap must be two numbers [low, high] with low < high inside (0, inf), got [2.0, 2.0]"),
        (dict(location_sd=-1.0), "location_sd must be a finite number >= 0, got -1.0"),
    ],
)
def test_a_bad_mixture_prior_is_refused_naming_the_key_the_value_and_the_range(kwargs, message):
    with pytest.raises(ConfigError) as raised:
        MixturePrior(**kwargs)
    assert str(raised.value) == message


def test_a_variance_range_reaching_zero_is_refused():
    with pytest.raises(ConfigError, match=r"variance must be .* inside \(0, inf\), got \[0.0, 1.0\]"):
        GaussianPrior(variance=[0.0, 1.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(set_sizes=[1, 50]), r"set_sizes must be .* inside \[2, inf\], got \[1.0, 50.0\]"),
        (dict(set_sizes=[50, 20]), r"set_sizes must be .*low < high.*got \[50.0, 20.0\]"),
        (dict(sets=100_000), r"sets x set_sizes\[1\] = 100000 x 400 samples per step exceeds 10,000,000"),
        (dict(loop_size=500), r"loop_size must lie in set_sizes \[20, 400\]"),
        (dict(primary_arm="refit", primary_baseline="refit"), r"primary_baseline"),
        (dict(lams=[0.0]), r"lams must be distinct numbers > 0"),
        (dict(lams=[0.1, float("inf")]), r"lams must be distinct numbers > 0 \(lam 0 is hyper_mle\), got \[0.1, inf\]"),
        (dict(lams=[0.1, 0.1]), r"lams must be distinct numbers > 0"),
    ],
)
def test_a_bad_study_setting_is_refused_in_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GaussianPriorConfig(**kwargs)


# ------------------------------------------------------------------------------ the set size given to H
def test_h_reads_the_set_size():
    """A set and the same set twice over have the same mean embedding; only the set size tells
    them apart, and an H given it answers differently (an H without it cannot)."""
    x = torch.randn(3, 10, 1)
    doubled = torch.cat([x, x], dim=1)
    with_n, without_n = _hnet(set_size_input=True, residual=False), _hnet(set_size_input=False, residual=False)
    gap = lambda h: (h.flat(h(x)) - h.flat(h(doubled))).abs().max()  # noqa: E731
    assert gap(without_n) < 1e-6
    assert gap(with_n) > 1e-4


class _RecordingPrior:
    """A prior that records every draw the trainer asks of it."""

    def __init__(self, prior):
        self.prior, self.calls = prior, []

    def draw_sets(self, sets, n, *, generator):
        draw = self.prior.draw_sets(sets, n, generator=generator)
        self.calls.append((n, draw.parameters["mean"].clone()))
        return draw


def test_training_draws_fresh_distributions_and_set_sizes_every_step():
    prior = _RecordingPrior(GaussianPrior())
    hnet = _hnet()
    train_over_prior(
        hnet, prior, lam=0.0, steps=12, sets=5, set_sizes=(4, 30), lr=1e-3,
        data_generator=torch.Generator().manual_seed(0), ple_generator=torch.Generator().manual_seed(1), what="test",
    )
    sizes = [n for n, _ in prior.calls]
    means = torch.cat([m for _, m in prior.calls])
    assert len(prior.calls) == 12 and all(4 <= n <= 30 for n in sizes) and len(set(sizes)) > 3
    assert len(set(means.tolist())) == 12 * 5  # every set of every step its own distribution
    assert not any(p.requires_grad for p in hnet.parameters())  # frozen after training


# ------------------------------------------------------------------------------ the assessment
def test_assessment_statistics_match_hand_computed_values():
    truth = [1.0, 2.0, 3.0, 4.0]
    estimates = [1.5, 1.5, 3.5, 3.5]  # errors 0.5, -0.5, 0.5, -0.5
    refit = [1.0, 3.0, 3.0, 5.0]
    row = assessment_row(estimates, truth, refit, arm="a", parameter="p", set_size=10)
    assert row["rmse"] == pytest.approx(0.5)
    assert row["bias"] == pytest.approx(0.0)
    # cov(e, t) = mean((t - 2.5)(e - 2.5)) = (1.5 + 0.5 + 0.5 + 1.5) / 4 = 1; var(t) = 1.25
    assert row["slope_truth"] == pytest.approx(1 / 1.25)
    assert row["corr_truth"] == pytest.approx(1 / math.sqrt(1.25 * 1.0))  # var(e) = 1
    # cov(e, r) = mean((r - 3)(e - 2.5)) = (2 + 0 + 0 + 2) / 4 = 1; var(r) = 2
    assert row["slope_refit"] == pytest.approx(0.5)
    assert row["rmse_refit"] == pytest.approx(math.sqrt((0 + 1 + 0 + 1) / 4))
    assert row["rmse_constant"] == pytest.approx(math.sqrt(1.25))  # sd of the truth, divisor N


def test_a_constant_estimator_has_no_response_and_the_constant_risk():
    truth = np.linspace(0, 1, 11)
    row = assessment_row(np.full(11, truth.mean()), truth, truth, arm="constant", parameter="p", set_size=5)
    assert row["slope_truth"] == 0 and row["slope_refit"] == 0 and math.isnan(row["corr_truth"])
    assert row["rmse"] == pytest.approx(row["rmse_constant"])


# ------------------------------------------------------------------------------ endpoints
def test_the_primary_endpoint_is_the_paired_difference_of_changes_from_generation_0():
    config = GaussianPriorConfig(generations=3, chains=4)
    arms = ["refit", "unbiased", "hyper_mle", "ple", "ple_lam1"]
    base = np.array([[0.0, 1.0, 2.0, 3.0], [9.0, 9.0, 9.0, 9.0], [1.0, 2.0, 4.0, 3.0]])  # (generations, chains)
    values = {arm: {"log_variance_ratio": base + i} for i, arm in enumerate(arms)}
    values["ple"]["log_variance_ratio"] = base + np.array([[5.0], [0.0], [0.0]]) + np.array([0.0, 0.1, 0.2, 0.3])
    rows = endpoint_rows(values, config=config, seed=0)
    primary = next(r for r in rows if r["role"] == "primary")
    # ple's changes (last - first): [1, 1, 2, 0] - 5 + 0 = [-4, -4, -3, -5]; hyper_mle's: [1, 1, 2, 0]
    assert (primary["arm"], primary["baseline"], primary["n"]) == ("ple", "hyper_mle", 4)
    assert primary["mean_diff"] == pytest.approx(-5.0)
    start = next(r for r in rows if r["role"] == "start")  # generation 0: ple 5 + base + offsets, hyper_mle base + 2
    assert start["mean_diff"] == pytest.approx(np.mean([5 - 2, 5.1 - 2, 5.2 - 2, 5.3 - 2]))


def test_wright_fisher_drift_is_the_binomial_variance_compounded():
    # p = 0.2, n = 10: generation 0 alone is a binomial share, p (1 - p) / n
    assert wright_fisher_drift(np.array([0.2]), n=10, generation=0) == pytest.approx(0.2 * 0.8 / 10)
    assert wright_fisher_drift(np.array([0.2, 0.5]), n=10, generation=2) == pytest.approx(
        (0.16 + 0.25) / 2 * (1 - 0.9**3)
    )


# ------------------------------------------------------------------------------ saving a trained H
def _saved(tmp_path, description):
    hnet = _hnet()
    record = train_over_prior(
        hnet, GaussianPrior(), lam=0.0, steps=2, sets=3, set_sizes=(4, 8), lr=1e-3,
        data_generator=torch.Generator().manual_seed(0), ple_generator=torch.Generator().manual_seed(1), what="test",
    )
    save_estimator(tmp_path / "h", hnet, record, description=description)
    return hnet


def test_a_saved_h_loads_back_identical(tmp_path):
    saved = _saved(tmp_path, {"prior": {"mean": [0, 1]}})
    fresh = _hnet()
    assert load_estimator(tmp_path / "h", fresh, description={"prior": {"mean": [0, 1]}}) is not None
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(), fresh.state_dict().values()))


def test_a_saved_h_for_another_prior_is_refused_naming_the_key(tmp_path):
    _saved(tmp_path, {"prior": {"mean": [0, 1]}})
    with pytest.raises(ConfigError, match=r"trained for another setting \(prior.mean: \[0, 1\] saved, \[0, 2\] now\)"):
        load_estimator(tmp_path / "h", _hnet(), description={"prior": {"mean": [0, 2]}})


def test_a_saved_h_that_fails_its_checksum_is_not_loaded(tmp_path):
    _saved(tmp_path, {"prior": 1})
    path = tmp_path / "h.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    fresh = _hnet()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(ConfigError, match="does not match its recorded sha256"):
        load_estimator(tmp_path / "h", fresh, description={"prior": 1})
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())


# ------------------------------------------------------------------------------ the amortised loop
def test_the_amortised_loop_applies_h_and_never_trains_it(monkeypatch, tmp_path):
    from genfair.studies import _amortised, _prior_study

    config = GmmPriorConfig(
        steps=2, sets=3, set_sizes=[5, 20], assess_sizes=[10], loop_size=10, heldout_draws=5, sampling_points=0,
        generations=3, chains=4, kl_samples=100, em_max_iter=5, hidden=4, embedding_dim=4,
    )
    _prior_study.run_gmm_prior(config, seed=0, run_dir=tmp_path)  # trains and saves the three H
    saved = {p.name: p.read_bytes() for p in (tmp_path / "estimators").iterdir()}

    def refuse(*args, **kwargs):
        raise AssertionError("a hypernetwork was trained in a run that had it saved")

    monkeypatch.setattr(_prior_study, "train_over_prior", refuse)
    monkeypatch.setattr(_amortised, "take_step", refuse)
    applied = []
    real = _prior_study.hyper_estimate
    monkeypatch.setattr(_prior_study, "hyper_estimate", lambda h, x: applied.append(x.shape) or real(h, x))
    again = _prior_study.run_gmm_prior(config, seed=0, run_dir=tmp_path)
    assert {p.name: p.read_bytes() for p in (tmp_path / "estimators").iterdir()} == saved
    # the loop applies each of the 3 H once per generation to the 4 chains' sets of loop_size
    assert applied.count(torch.Size([4, 10, 1])) == 3 * 3
    assert again.results["training"]["ple"]["seconds"] == 0.0


def test_endpoints_csv_keeps_the_columns_of_its_later_rows(tmp_path):
    from genfair.studies._assessment import write_table

    write_table(tmp_path / "t.csv", [{"role": "primary", "mean_diff": 0.5}, {"role": "wright_fisher", "predicted": 0.25}])
    assert (tmp_path / "t.csv").read_text().splitlines() == ["role,mean_diff,predicted", "primary,0.5,", "wright_fisher,,0.25"]

"""``remedy=...`` in the loop: every remedy trains with every estimator, model and loop kind; a
remedy changes what a fit learns in the direction it promises; Group DRO's class weights are
logged per generation; SMOTE on images searches neighbours in the classifier's feature space;
bad combinations are refused before any work."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from genfair.data import ClassMixtureData, DigitsData
from genfair.errors import ConfigError
from genfair.estimators import ESTIMATORS, EstimatorConfig, build_fit
from genfair.evaluation import EvaluationConfig
from genfair.experiment import Arm, run_experiment
from genfair.models import AnalyticModelConfig, ClassGaussianModel, DDPMConfig, ModelCapabilities, VAEConfig, build_model
from genfair.remedies import REMEDIES, GroupDRO, RemedyConfig
from genfair.loops import LOOP_KINDS, FitContext, LoopConfig, fit_closed_form, simulate

MIXTURE = ClassMixtureData(proportions=[0.9, 0.1], dim=2)
DIGITS = DigitsData(classes=[3, 6], proportions=[0.8, 0.2])
TINY_VAE = VAEConfig(hidden=[32], latent_dim=4)
TINY_DDPM = DDPMConfig(block_out_channels=[8, 16], norm_num_groups=4, num_train_timesteps=50, sample_steps=2)


def _analytic_fit(estimator: str, remedy: str, **options):
    config = EstimatorConfig(name=estimator, steps=5, lr=0.01, batch_size=32, hidden=16, embedding_dim=8)
    return build_fit(
        config, sample_shape=MIXTURE.sample_shape, model=ModelCapabilities(positive=ClassGaussianModel.CONSTRAINTS, per_replicate=True, closed_form=True, adversarial=False, num_classes=2),
        remedy=RemedyConfig(name=remedy, **options), classes=2, minority=1,
    )


def _mixture_loop(fit, *, kind: str = "fully_synthetic", seed: int = 0):
    model = ClassGaussianModel(num_classes=2, dim=2, replicates=1)
    config = LoopConfig(kind=kind, generations=2, n_real=100, n_synthetic=100, replicates=1)

    def measure(fitted, train, generator):
        counts = train.class_counts(2).double()
        return {
            "share/minority": fitted.shares.detach()[:, 1].clone(),  # what the fit learned
            "sample_share/minority": counts[:, 1] / counts.sum(1),  # the closed-form fit of the same set
        }

    return simulate(data=MIXTURE, model=model, config=config, seed=seed, measure=measure, fit=fit)


@pytest.mark.parametrize(
    "estimator, remedy", [pytest.param(e, r, id=f"{e}-{r}") for e, r in itertools.product(ESTIMATORS, REMEDIES)]
)
def test_every_remedy_trains_with_every_estimator(estimator, remedy):
    """Without a remedy, mle is the closed-form fit (the sample share, exactly), and so is anchor at
    generation 0 (nothing to anchor to yet); a remedy, a hypernetwork, or anchor from generation 1 on
    trains by gradient steps, which move the learned share off the sample share."""
    result = _mixture_loop(_analytic_fit(estimator, remedy))
    shares, sample = result.values("share/minority"), result.values("sample_share/minority")
    assert ((shares > 0) & (shares < 1)).all()
    trained = [remedy != "none" or estimator not in ("mle", "anchor"), remedy != "none" or estimator != "mle"]
    for g in (0, 1):
        assert (shares[g] != sample[g]).all() if trained[g] else (shares[g] == sample[g]).all(), g


@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_a_remedy_trains_in_every_loop_kind(kind):
    """Oversampling to equal shares starts from each generation's closed-form fit (the minority's
    sample share, about 0.1) and its class-balanced batches pull the learned share up, towards 0.5,
    in every loop kind and every generation (generation 1 trains on that kind's own training set)."""
    result = _mixture_loop(_analytic_fit("mle", "oversample"), kind=kind)
    lift = result.values("share/minority") - result.values("sample_share/minority")
    assert (lift > 0).all(), lift


def test_no_remedy_keeps_the_closed_form_fit():
    assert _analytic_fit("mle", "none") is fit_closed_form
    assert _analytic_fit("mle", "reweight") is not fit_closed_form


def test_reweighting_balances_the_class_shares_a_closed_form_model_learns():
    """Inverse-frequency weights make each class weigh the same in the NLL, whose -log share_y
    term then peaks at equal shares: the minority's share moves from its sample proportion
    (about 0.1) towards 0.5, and oversampling does the same through the batches."""
    baseline = _mixture_loop(_analytic_fit("mle", "none")).values("share/minority")[0, 0]
    for remedy in ("reweight", "oversample"):
        config = EstimatorConfig(name="mle", steps=300, lr=0.05, batch_size=64)
        fit = build_fit(
            config, sample_shape=MIXTURE.sample_shape, model=ModelCapabilities(positive=ClassGaussianModel.CONSTRAINTS, per_replicate=True, closed_form=True, adversarial=False, num_classes=2),
            remedy=RemedyConfig(name=remedy), classes=2, minority=1,
        )
        share = _mixture_loop(fit).values("share/minority")[0, 0]
        assert baseline < 0.2 and abs(share - 0.5) < 0.05, (remedy, baseline, share)


def _deep_fit(remedy: RemedyConfig, features=None, estimator: str = "mle"):
    config = EstimatorConfig(name=estimator, steps=6, lr=1e-3, batch_size=16, hidden=16, embedding_dim=8)
    return build_fit(
        config, sample_shape=DIGITS.sample_shape, model=ModelCapabilities(positive={}, per_replicate=False, closed_form=False, adversarial=False, num_classes=2),
        remedy=remedy, classes=2, minority=1, features=features,
    )


@pytest.mark.parametrize(
    "model_config, remedy",
    [pytest.param(m, r, id=f"{tag}-{r}") for (tag, m), r in itertools.product([("vae", TINY_VAE), ("ddpm", TINY_DDPM)], REMEDIES)],
)
def test_every_remedy_trains_both_deep_models_in_a_loop(model_config, remedy):
    torch.manual_seed(0)
    model = build_model(model_config, sample_shape=DIGITS.sample_shape, num_classes=2)
    config = EstimatorConfig(name="mle", steps=2, lr=1e-3, batch_size=16)
    fit = build_fit(
        config, sample_shape=DIGITS.sample_shape, model=model, remedy=RemedyConfig(name=remedy), classes=2, minority=1,
    )
    loop = LoopConfig(generations=2, n_real=20, n_synthetic=20, replicates=1)
    weights = [torch.cat([p.detach().flatten() for p in model.parameters()])]  # the initialisation

    def measure(fitted, train, generator):  # how far this generation's steps moved the weights
        weights.append(torch.cat([p.detach().flatten() for p in fitted.parameters()]))
        return {"moved/all": (weights[-1] - weights[-2]).abs().max()[None]}

    result = simulate(data=DIGITS, model=model, config=loop, seed=0, measure=measure, fit=fit)
    assert (result.values("moved/all") > 0).all()  # the remedied loss reached the weights in both generations
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


@pytest.mark.parametrize("estimator", ["mle", "ple"])
def test_group_dro_weights_are_logged_for_every_step(estimator, monkeypatch):
    """The log holds, after each of the 6 steps, the weights the configured update gives on that
    step's batch: q_g <- q_g exp(eta * mean loss of g), normalised, eta = 0.5, replayed by hand from
    the per-sample losses and classes the fit passed to Group DRO."""
    batches = []
    update = GroupDRO.__call__

    def recording(self, losses, groups):
        batches.append((losses.detach().double().tolist(), groups.tolist()))
        return update(self, losses, groups)

    monkeypatch.setattr(GroupDRO, "__call__", recording)
    fit = _deep_fit(RemedyConfig(name="group_dro", step_size=0.5), estimator=estimator)
    torch.manual_seed(0)
    model = build_model(TINY_VAE, sample_shape=DIGITS.sample_shape, num_classes=2)
    train = DIGITS.draw(1, 40, generator=torch.Generator().manual_seed(0))
    out = fit(model, train, torch.Generator().manual_seed(1), FitContext(generation=0, reference=None))
    assert len(batches) == 6
    q, expected = [0.5, 0.5], []
    for losses, groups in batches:
        step = [0.0, 0.0]  # an absent class keeps its unnormalised weight
        for g in set(groups):
            step[g] = 0.5 * sum(v for v, c in zip(losses, groups) if c == g) / groups.count(g)
        q = [v * math.exp(s) for v, s in zip(q, step)]
        q = [v / sum(q) for v in q]
        expected.append(q)
    # The fit averages float32 losses: each class mean is off by up to ~16 * 2^-24 of the largest
    # |loss| (at most 16 samples a batch), which moves each log-weight by eta times that per step
    # (slack ~2e-4 here; measured gaps 1e-6 to 5e-6; a wrong eta of 0.01 is off by ~0.1).
    slack = 6 * 0.5 * 16 * 2**-24 * max(abs(v) for losses, _ in batches for v in losses)
    assert out.logs["group_dro_weights"] == [pytest.approx(row, abs=slack) for row in expected]


def test_smote_on_images_finds_neighbours_in_the_feature_space():
    seen = []

    def features(x):
        seen.append(x.shape)
        return x.flatten(1)[:, :3]  # a space of its own: 3 of the pixels

    fit = _deep_fit(RemedyConfig(name="smote"), features=features)
    torch.manual_seed(0)
    model = build_model(TINY_VAE, sample_shape=DIGITS.sample_shape, num_classes=2)
    train = DIGITS.draw(1, 40, generator=torch.Generator().manual_seed(0))
    fit(model, train, torch.Generator().manual_seed(1), FitContext(generation=0, reference=None))
    assert seen == [(40, *DIGITS.sample_shape)]


def test_a_deep_remedy_run_writes_the_group_dro_log_and_fingerprints_the_remedy(tmp_path):
    loop = LoopConfig(generations=2, n_real=40, n_synthetic=40, replicates=1)
    arm = Arm(
        "dro", DIGITS, TINY_VAE, loop, EstimatorConfig(steps=4, lr=1e-3, batch_size=16),
        EvaluationConfig(samples=60, bootstrap=10, grid=0), RemedyConfig(name="group_dro"),
    )
    result = run_experiment([arm], seed=0, run_dir=tmp_path)
    assert result.summary["fingerprint"]["arms"]["dro"]["remedy"]["name"] == "group_dro"
    for generation in (0, 1):
        logged = json.loads((tmp_path / "arms" / "dro" / "remedy" / f"generation_{generation:04d}.json").read_text())
        assert logged["classes"] == ["3", "6"] and len(logged["group_dro_weights"]) == 4
    table = (tmp_path / "minority_table.md").read_text().splitlines()
    assert table[0] == "| generation | arm | 6 share | 6 precision | 6 recall | 6 coverage | 3 recall |"
    assert [line.split(" | ")[:2] for line in table[2:]] == [["| 0", "dro"], ["| 1", "dro"]]
    other = Arm("dro", DIGITS, TINY_VAE, loop, arm.estimator, arm.evaluation, RemedyConfig(name="reweight"))
    with pytest.raises(ConfigError, match="remedy"):
        run_experiment([other], seed=0, run_dir=tmp_path)


def test_a_remedy_with_several_replicates_is_refused_before_any_work(tmp_path):
    arm = Arm(
        "r", MIXTURE, AnalyticModelConfig(name="class_mixture"),
        LoopConfig(generations=2, n_real=50, n_synthetic=50, replicates=100), remedy=RemedyConfig(name="reweight"),
    )
    with pytest.raises(ConfigError, match=r"remedy=reweight .* loop\.replicates=1 .*, got 100"):
        run_experiment([arm], seed=0, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()

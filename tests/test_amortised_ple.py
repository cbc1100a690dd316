"""Amortised PLE on single-replicate (deep) models: B data sets per step in one batched call, the
sets/subsample/persistent/base options, and the evidence every generation reports."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from torch import nn

from genfair.data import Batch, DigitsData
from genfair.errors import ConfigError
from genfair.estimators import EVIDENCE_KEYS, EstimatorConfig, HypernetworkFit, StepCheckpoints, SubsampleConfig, build_fit
from genfair.estimators._hypernetwork_fit import HypernetworkFit as _Fit
from genfair.estimators._sets import SetSampler
from genfair.hypernets import HyperNetwork, PLEConfig, PLEObjective, input_sensitivity
from genfair.loops import FitContext, FitOutput, LoopConfig, RunStore, simulate
from genfair.models import VAE, GaussianMixtureModel, ModelCapabilities, VAEConfig
from genfair.seeding import torch_generator

DIGITS = DigitsData(classes=[3, 6], proportions=[0.8, 0.2])
TINY_VAE = VAEConfig(hidden=[16], latent_dim=2)


def _fit(**options) -> HypernetworkFit:
    config = EstimatorConfig(**{"name": "ple", "steps": 3, "lr": 1e-2, "sets_per_step": 4, "hidden": 8,
                                "embedding_dim": 4, "reference_steps": 2, **options})
    return build_fit(config, model=ModelCapabilities(positive={}, per_replicate=False, closed_form=False, adversarial=False, num_classes=2),
                     sample_shape=(1, 8, 8), classes=2)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return TINY_VAE.build(sample_shape=(1, 8, 8), num_classes=2)


def _train(n: int = 40, generation: int = 0) -> Batch:
    return DIGITS.draw(1, n, generator=torch_generator(0, generation, "real"))


# --------------------------------------------------------------------- B sets in one call
def _double_setup(sets: int = 3, n: int = 5):
    torch.manual_seed(0)
    vae = VAE(sample_shape=(4,), hidden=(8,), latent_dim=2, num_classes=2).double()
    hnet = HyperNetwork(vae, sample_shape=(4,), num_classes=2, hidden=8, embedding_dim=4)
    with torch.no_grad():  # a trained-looking H: non-zero head, so that H(X) depends on X
        for p in hnet.head.parameters():
            p.normal_(0, 0.3)
    x = torch.rand(sets, n, 4, dtype=torch.float64)
    y = torch.tensor([[0, 1, 0, 1, 1], [0, 0, 0, 0, 1], [1, 1, 1, 0, 0]])[:sets, :n]
    return hnet, x, y


def _grads(hnet: HyperNetwork, total: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(total, list(hnet.parameters())))


@pytest.mark.parametrize("discrepancy", ["draw", "expectation"])
def test_amortised_loss_and_gradient_equal_the_mean_of_single_set_ones(discrepancy):
    """Same sets, same draws (``randomness="same"``: every set sees the draws one single-set call
    makes from the same generator and RNG state), so the one vmapped call over B sets must give
    the mean of the B single-set objectives, and its gradient, to rounding (float64)."""
    hnet, x, y = _double_setup()
    objective = PLEObjective(PLEConfig(lam=0.7, discrepancy=discrepancy))
    generator = torch.Generator()
    state = torch.get_rng_state()

    generator.manual_seed(3)
    torch.set_rng_state(state)
    terms = objective.sets(hnet, x, y, generator=generator, randomness="same")
    amortised = _grads(hnet, terms.total)

    singles = []
    for b in range(x.shape[0]):
        generator.manual_seed(3)
        torch.set_rng_state(state)
        singles.append(objective(hnet, x[b : b + 1], y[b : b + 1], generator=generator))
    mean = torch.stack([t.total for t in singles]).mean()
    separate = _grads(hnet, mean)

    assert float(terms.discrepancy.detach()) > 1e-6  # the penalty is part of what is compared
    torch.testing.assert_close(terms.total, mean, rtol=1e-10, atol=0)
    torch.testing.assert_close(terms.nll, torch.stack([t.nll for t in singles]).mean(), rtol=1e-10, atol=0)
    for got, want in zip(amortised, separate):
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-12)


def test_python_loop_over_sets_equals_single_set_calls():
    """The fallback for targets vmap cannot run: each set draws after the one before, so with
    lam = 0 (the NLL's draws only) it equals single-set calls on one continuing RNG stream."""
    hnet, x, y = _double_setup()
    objective = PLEObjective(PLEConfig(lam=0.0))
    state = torch.get_rng_state()
    looped = objective.sets(hnet, x, y, vectorise=False)
    torch.set_rng_state(state)
    singles = torch.stack([objective(hnet, x[b : b + 1], y[b : b + 1]).total for b in range(x.shape[0])]).mean()
    torch.testing.assert_close(looped.total, singles, rtol=1e-10, atol=0)
    torch.testing.assert_close(_grads(hnet, looped.total), _grads(hnet, singles), rtol=1e-8, atol=1e-12)


class _Branchy(nn.Module):
    """A Gaussian with a data-dependent branch in its loss: vmap cannot run it."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(4))

    def loss(self, x, labels=None):
        if bool(x.sum() > -1e9):  # data-dependent control flow
            return 0.5 * (x - self.mean).square().sum(-1)
        return x.sum(-1)

    def sample(self, n, *, labels=None, generator=None):
        return (self.mean + torch.randn(n, 4, generator=generator))[None]


def test_a_model_vmap_cannot_run_trains_its_sets_in_a_loop_decided_once(caplog):
    fit = HypernetworkFit(EstimatorConfig(name="ple", steps=2, sets_per_step=3, reference_steps=1), sample_shape=(4,),
                          num_classes=None, positive={}, per_replicate=False)
    train = Batch(torch.randn(1, 12, 4), torch.zeros(1, 12, dtype=torch.int64))
    with caplog.at_level(logging.INFO, logger="genfair.estimators._hypernetwork_fit"):
        for g in range(2):
            out = fit(_Branchy(), train, torch.Generator().manual_seed(g), FitContext(g, None))
            assert isinstance(out, FitOutput)
    decisions = [r.message for r in caplog.records if "vmap" in r.message]
    assert len(decisions) == 1 and "Python loop" in decisions[0], decisions


# ------------------------------------------------------------------------------ the sets
def test_sets_vary_in_size_and_class_composition_around_the_training_shares():
    """15 of 150 samples in the minority: sets of 38 to 150 distinct samples whose minority share
    is spread like Dirichlet(10 * shares) (measured over 2000 sets: mean 0.085, sd 0.053, 20 % of
    sets with at most 2 minority samples), not like plain subsamples (sd 0.022, almost never <= 2)."""
    labels = torch.tensor([0] * 135 + [1] * 15)
    sampler = SetSampler(labels, SubsampleConfig(), num_classes=2)
    generator = torch.Generator().manual_seed(0)
    drawn = [sampler.draw(4, generator=generator) for _ in range(500)]
    sizes = {index.shape[1] for index in drawn}
    assert min(sizes) >= 38 and max(sizes) <= 150 and len(sizes) > 50
    rows = [row for index in drawn for row in index]
    assert all(len(set(row.tolist())) == len(row) for row in rows)  # m out of n: no sample twice
    counts = torch.tensor([int(labels[row].sum()) for row in rows])
    shares = counts / torch.tensor([len(row) for row in rows])
    assert 0.07 < float(shares.mean()) < 0.11 and float(shares.std()) > 0.04
    assert float((counts <= 2).double().mean()) > 0.1
    again = SetSampler(labels, SubsampleConfig(), num_classes=2).draw(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, drawn[0])  # every draw comes from the generator


# ------------------------------------------------------------------------ options refused
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sets_per_step": 0}, "sets_per_step must be a positive integer, got 0"),
        ({"subsample": {"max_fraction": 1.5}}, r"subsample.max_fraction must be a number in \(0, 1\] .*got 1.5"),
        ({"subsample": {"min_fraction": 0.0}}, r"subsample.min_fraction must be a number in \(0, 1\]"),
        ({"subsample": {"min_fraction": 0.8, "max_fraction": 0.5}}, "subsample.min_fraction must be <= subsample.max_fraction = 0.5, got 0.8"),
        ({"subsample": {"concentration": -1.0}}, "subsample.concentration must be a number > 0, got -1.0"),
        ({"base": "shared"}, r"base must be one of \['free', 'frozen', 'penalised', 'none'\], got 'shared'"),
        ({"base": "penalised"}, "base_penalty=0 with base='penalised': base_penalty must be > 0 with base=penalised"),
        ({"base": "frozen", "base_penalty": 2.0}, "base_penalty=2 with base='frozen': base_penalty must be > 0 with base=penalised and 0 with"),
        ({"persistent": "yes"}, "persistent must be true or false, got 'yes'"),
        ({"reference_steps": -1}, "reference_steps must be an integer >= 0, got -1"),
    ],
)
def test_bad_amortised_options_are_refused_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message) as refused:
        EstimatorConfig(name="ple", **options)
    assert "\n" not in str(refused.value)


def _refused_before_any_work(fit, model, train, context, message):
    before = copy.deepcopy(model.state_dict())
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    with pytest.raises(ConfigError, match=message) as refused:
        fit(model, train, generator, context)
    assert "\n" not in str(refused.value)
    assert torch.equal(generator.get_state(), state)  # nothing drawn
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_a_subsample_below_two_samples_is_refused_before_any_work():
    fit = _fit(subsample={"min_fraction": 0.02})
    _refused_before_any_work(fit, _model(), _train(40), FitContext(0, None),
                             "subsample.min_fraction=0.02 gives sets of 1 of the training set's 40 samples; allowed: a fraction giving at least 2")


def test_a_persistent_hypernetwork_refuses_a_model_whose_shapes_changed():
    fit = _fit(persistent=True)
    fit(_model(), _train(), torch.Generator().manual_seed(0), FitContext(0, None))
    wider = VAEConfig(hidden=[24], latent_dim=2).build(sample_shape=(1, 8, 8), num_classes=2)
    _refused_before_any_work(fit, wider, _train(generation=1), FitContext(1, None),
                             "persistent=true keeps one hypernetwork for the model's parameters, but generation 1's model differs")


# ------------------------------------------------------------------- persistent and base
@pytest.fixture
def built(monkeypatch):
    """Every hypernetwork a fit builds, with a copy of its state as built."""
    found: list[tuple[HyperNetwork, dict[str, torch.Tensor]]] = []
    build = _Fit._hypernetwork

    def recording(self, *args, **kwargs):
        hnet = build(self, *args, **kwargs)
        found.append((hnet, copy.deepcopy(hnet.state_dict())))
        return hnet

    monkeypatch.setattr(_Fit, "_hypernetwork", recording)
    return found


@pytest.mark.parametrize("persistent", [True, False])
def test_a_persistent_hypernetwork_starts_each_generation_where_the_last_ended(built, persistent):
    fit, model = _fit(persistent=persistent), _model()
    for g in range(2):
        model = fit(model, _train(generation=g), torch_generator(0, g, "fit"), FitContext(g, None)).model
    (first, _), (_, second_start) = built
    trained = first.state_dict()
    same = all(torch.equal(second_start[k], trained[k]) for k in trained)
    assert same == persistent
    assert bool(trained["head.out.weight"].abs().sum() > 0)  # it did train: a fresh H's head is zero


@pytest.mark.parametrize("generation", [0, 1])
def test_a_frozen_base_does_not_move(built, generation):
    """At generation 0 the base is the model's maximum-likelihood pre-fit, later the model's
    current weights; training moves H's head and encoder, never the base."""
    fit, model = _fit(base="frozen"), _model()
    start = torch.cat([p.detach().flatten() for p in model.parameters()])
    fit(model, _train(), torch.Generator().manual_seed(0), FitContext(generation, None))
    (hnet, as_built), = built
    assert torch.equal(hnet.base, as_built["base"])
    assert not torch.equal(hnet.head.out.weight, as_built["head.out.weight"])
    assert torch.equal(hnet.base, start) == (generation > 0)  # generation 0: moved by the pre-fit, before H


def test_a_penalised_base_moves_less_as_its_weight_grows(built):
    """L2-SP towards where the base started: with a heavy weight Adam keeps it within about one
    step (lr) of its start, a light one lets it follow the likelihood (measured: rms moves of 0.081
    and 0.0021 after 20 steps at lr 0.01)."""
    moved = []
    for weight in (1e-3, 1e4):
        fit = _fit(base="penalised", base_penalty=weight, steps=20, lr=1e-2)
        fit(_model(), _train(), torch.Generator().manual_seed(0), FitContext(1, None))
        hnet, as_built = built[-1]
        moved.append(float((hnet.base.detach() - as_built["base"]).square().mean().sqrt()))
    assert moved[1] < 0.3 * moved[0], moved


# ------------------------------------------------------------------------------ resume
class _Killed(Exception):
    pass


def _run(run_dir, monkeypatch, *, generations=2, checkpoint_every=None, kill_at=None):
    """A tiny persistent-PLE digits loop in ``run_dir``; ``kill_at (g, step)`` dies after that
    in-generation checkpoint, ``kill_at (g, None)`` right after generation g is saved."""
    if kill_at is not None and kill_at[1] is not None:
        step_done = StepCheckpoints.step_done

        def dying(self, done, total, extras=dict):
            step_done(self, done, total, extras)
            if (self.checkpoint.generation, done) == kill_at:
                raise _Killed

        monkeypatch.setattr(StepCheckpoints, "step_done", dying)
    store = RunStore(run_dir, keep_all_synthetic=False)
    config = LoopConfig(generations=generations, n_real=40, n_synthetic=40, replicates=1, checkpoint_every=checkpoint_every)

    def on_generation(records):
        if kill_at == (records[-1].generation, None):
            raise _Killed

    return simulate(data=DIGITS, model=_model(), config=config, seed=0, fit=_fit(persistent=True, steps=4),
                    measure=lambda model, train, generator: {}, store=store, on_generation=on_generation)


def test_a_persistent_run_killed_inside_a_generation_resumes_exactly(tmp_path, monkeypatch):
    whole = _run(tmp_path / "whole", monkeypatch, generations=3, checkpoint_every=2)
    with pytest.raises(_Killed):
        _run(tmp_path / "killed", monkeypatch, generations=3, checkpoint_every=2, kill_at=(1, 2))
    monkeypatch.undo()
    resumed = _run(tmp_path / "killed", monkeypatch, generations=3, checkpoint_every=2)
    for a, b in zip(whole.records, resumed.records):
        assert a.values.keys() == b.values.keys() and set(EVIDENCE_KEYS) <= set(a.values)
        for key in a.values:
            assert (a.values[key] == b.values[key]).all(), (a.generation, key)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_a_persistent_run_killed_between_generations_is_refused_in_one_line(tmp_path, monkeypatch):
    with pytest.raises(_Killed):
        _run(tmp_path, monkeypatch, kill_at=(0, None))
    with pytest.raises(ConfigError, match="persistent=true: generation 1 starts without the hypernetwork generation 0 "
                                          "trained .* allowed: rerun from generation 0, or persistent=false") as refused:
        _run(tmp_path, monkeypatch)
    assert "\n" not in str(refused.value)


# ----------------------------------------------------------------------------- evidence
def test_every_generation_reports_the_evidence_and_a_trained_h_reads_its_data():
    """The digits VAE of the default experiment (n = 150) after 40 amortised steps: every key,
    one finite float64 per replicate, and an input sensitivity clearly above a constant H's, which
    is exactly 0 (a fresh residual H; the H that main trained on one set per step measured 1.1e-6).
    Measured for seeds 0-3: 2.8e-4, 3.6e-4, 4.0e-4, 2.0e-3; the bound 1e-5 is 9x the degenerate
    H's and 28x below the smallest."""
    train = DigitsData(classes=[3, 6], proportions=[0.9, 0.1]).draw(1, 150, generator=torch_generator(0, 0, "real"))
    torch.manual_seed(0)
    model = VAEConfig().build(sample_shape=(1, 8, 8), num_classes=2)
    constant = HyperNetwork(model, sample_shape=(1, 8, 8), num_classes=2)
    assert input_sensitivity(constant, train.x, train.y)["disjoint"] == 0.0
    fit = build_fit(EstimatorConfig(name="hyper_mle", steps=40, lr=3e-3, reference_steps=5), sample_shape=(1, 8, 8),
                    model=model, classes=2)
    out = fit(model, train, torch.Generator().manual_seed(0), FitContext(0, None))
    assert sorted(out.values) == sorted(EVIDENCE_KEYS)
    assert all(v.shape == (1,) and v.dtype == torch.float64 and torch.isfinite(v).all() for v in out.values.values())
    values = {key.split("/")[0]: float(v) for key, v in out.values.items()}
    assert values["ple_penalty"] == 0.0 and values["ple_penalty_ratio"] == 0.0  # hyper_mle pays no penalty
    assert values["ple_discrepancy"] > 0  # but its D is reported
    assert values["mle_sensitivity"] > 0
    assert values["sensitivity_ratio"] == pytest.approx(values["h_sensitivity"] / values["mle_sensitivity"])
    assert values["h_sensitivity"] > 1e-5, values


def test_a_ple_fit_reports_its_penalty_and_its_share_of_the_nll():
    """With lam > 0 the penalty is lam * D and its ratio divides by the NLL at H(X_g), the mean
    per-sample NLL of the fitted model recomputed here by hand (not the sum over the 8 sets of
    Y behind D, which would be 8 times smaller)."""
    lam = 0.5
    model = GaussianMixtureModel(2, 1)
    train = Batch(torch.randn(1, 40, 1, generator=torch.Generator().manual_seed(0)), torch.zeros(1, 40, dtype=torch.int64))
    fit = build_fit(EstimatorConfig(name="ple", lam=lam, steps=3, reference_steps=2), model=model, sample_shape=(1,))
    out = fit(model, train, torch.Generator().manual_seed(1), FitContext(0, None))
    values = {key.split("/")[0]: float(v) for key, v in out.values.items()}
    with torch.no_grad():
        nll = float(out.model.loss(train.x, None).mean())  # the model holds H(X_g) after the fit
    assert values["ple_nll"] == pytest.approx(nll, rel=1e-9)
    assert values["ple_discrepancy"] > 0
    assert values["ple_penalty"] == lam * values["ple_discrepancy"]
    assert values["ple_penalty_ratio"] == pytest.approx(lam * values["ple_discrepancy"] / abs(nll), rel=1e-9)

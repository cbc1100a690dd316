"""Every gradient loop takes its steps through :func:`genfair.training.take_step`: a NaN or
infinite loss raises the loop's documented error, naming who trains, the 1-based step and the
value, before any weight moves. One test per loop family: the fits of a generation
(``GenerationFailed``), the studies' hypernetwork trainers, the evaluation classifier and the
downstream classifier (``FloatingPointError``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import genfair.studies._variance_bias as variance_bias
from genfair.data import Batch, DigitsData
from genfair.errors import GenerationFailed
from genfair.estimators import EstimatorConfig, GradientFit, build_fit
from genfair.fairness import DownstreamClassifier, DownstreamConfig, train_downstream
from genfair.hypernets import PLEObjective
from genfair.loops import FitContext
from genfair.metrics import ClassifierConfig, EvaluationClassifier, train_classifier
from genfair.models import ClassGaussianModel, GaussianMixtureModel, ModelCapabilities
from genfair.studies import VarianceBiasArm, VarianceBiasConfig
from genfair.studies._gmm_estimators import train_hypernetwork
from genfair.training import check_finite_loss, take_step


def _nan_from_call(k: int, function):
    """``function`` whose result is multiplied by NaN from its ``k``-th call on (1-based)."""
    calls = {"n": 0}

    def broken(*args, **kwargs):
        calls["n"] += 1
        value = function(*args, **kwargs)
        return value * float("nan") if calls["n"] >= k else value

    return broken


# ------------------------------------------------------------------------------ the helper
@pytest.mark.parametrize("value, shown", [(float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf")])
def test_a_non_finite_loss_is_refused_with_its_step_and_value(value, shown):
    with pytest.raises(FloatingPointError) as raised:
        check_finite_loss(torch.tensor(value), what="estimator mle", step=36, steps=800)
    assert str(raised.value) == f"estimator mle: loss is {shown} at step 37 of 800"
    with pytest.raises(GenerationFailed) as failed:
        check_finite_loss(torch.tensor(value), what="who", step=0, steps=2, name="critic loss",
                          error=lambda reason: GenerationFailed(4, reason))
    assert (failed.value.generation, failed.value.reason) == (4, f"who: critic loss is {shown} at step 1 of 2")
    check_finite_loss(torch.tensor(1e30), what="who", step=0, steps=1)  # large but finite: no error


def test_take_step_moves_nothing_on_a_nan_loss_and_steps_like_adam_otherwise():
    model = nn.Linear(3, 1)
    reference = nn.Linear(3, 1)
    reference.load_state_dict(model.state_dict())
    optimiser, by_hand = torch.optim.Adam(model.parameters(), lr=0.1), torch.optim.Adam(reference.parameters(), lr=0.1)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    for step in range(3):
        take_step(model(x).square().mean(), optimiser, what="probe", step=step, steps=4)
        by_hand.zero_grad(set_to_none=True)
        reference(x).square().mean().backward()
        by_hand.step()
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        assert torch.equal(ours, theirs)  # bit-identical to the hand-written step
    before = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    with pytest.raises(FloatingPointError, match=r"^probe: loss is nan at step 4 of 4$"):
        take_step(model(x).square().mean() * float("nan"), optimiser, what="probe", step=3, steps=4)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))  # nor the gradients


# --------------------------------------------------------------------------------- the fits
class _Toy(nn.Module):
    """A Gaussian mean; per-sample loss ``(R, n)``."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(2))

    def loss(self, x, labels=None):
        return 0.5 * (x - self.mean).square().sum(-1)

    def sample(self, n, *, labels=None, generator=None):
        return (self.mean + torch.randn(n, 2, generator=generator))[None]


def test_a_gradient_fit_fails_its_generation_at_the_nan_step_before_stepping(monkeypatch):
    model = _Toy()
    monkeypatch.setattr(_Toy, "loss", _nan_from_call(3, _Toy.loss))
    train = Batch(torch.randn(1, 20, 2, generator=torch.Generator().manual_seed(1)), torch.zeros(1, 20, dtype=torch.int64))
    seen = []
    monkeypatch.setattr(torch.optim.Adam, "step", _recording(torch.optim.Adam.step, model, seen))
    with pytest.raises(GenerationFailed) as raised:
        GradientFit(EstimatorConfig(name="mle", steps=5, lr=0.1))(model, train, torch.Generator().manual_seed(0), FitContext(2, None))
    assert (raised.value.generation, raised.value.reason) == (2, "estimator mle: loss is nan at step 3 of 5")
    assert len(seen) == 2 and torch.equal(model.mean.detach(), seen[-1])  # steps 1-2 taken, step 3 not


def _recording(step, model, seen):
    def recorded(self, *args, **kwargs):
        result = step(self, *args, **kwargs)
        seen.append(model.mean.detach().clone())
        return result

    return recorded


def test_a_hypernetwork_fit_fails_its_generation_on_a_nan_loss(monkeypatch):
    monkeypatch.setattr(ClassGaussianModel, "loss", _nan_from_call(2, ClassGaussianModel.loss))
    fit = build_fit(EstimatorConfig(name="hyper_mle", steps=4), sample_shape=(2,),
                    model=ModelCapabilities(positive=ClassGaussianModel.CONSTRAINTS, per_replicate=True, closed_form=True, adversarial=False, num_classes=2))
    generator = torch.Generator().manual_seed(0)
    train = Batch(torch.randn(3, 10, 2, generator=generator), (torch.arange(10) % 2).expand(3, 10))
    with pytest.raises(GenerationFailed) as raised:
        fit(ClassGaussianModel(2, 2, replicates=3), train, generator, FitContext(1, None))
    assert (raised.value.generation, raised.value.reason) == (1, "estimator hyper_mle: loss is nan at step 2 of 4")


# ------------------------------------------------------------------ the studies' trainers
def test_the_study_trainers_raise_floating_point_error_with_step_and_value(monkeypatch, tmp_path):
    objective = PLEObjective.__call__

    def broken(self, *args, **kwargs):
        terms = objective(self, *args, **kwargs)
        calls.append(1)
        return terms if len(calls) < 3 else type(terms)(**{**vars(terms), "total": terms.total * float("nan")})

    monkeypatch.setattr(PLEObjective, "__call__", broken)
    calls: list[int] = []
    config = VarianceBiasConfig(steps=5, sets_per_step=8, test_sets=50, probe_sets=10, only=["hyper_mle"],
                                arms={"hyper_mle": VarianceBiasArm()})
    with pytest.raises(FloatingPointError, match=r"^variance_bias hypernetwork \(PLEConfig\(.*\)\): loss is nan at step 3 of 5$"):
        variance_bias.run_variance_bias(config, seed=0, run_dir=tmp_path)

    calls.clear()
    from genfair.models import GaussianMixtureModel

    truth = GaussianMixtureModel(2, 1)
    with pytest.raises(FloatingPointError, match=r"^gmm_ple hypernetwork \(n=30, lam=0\.5\): loss is nan at step 3 of 5$"):
        train_hypernetwork(truth, set_size=30, lam=0.5, steps=5, samples_per_step=60, lr=0.01, hidden=8, embedding_dim=8,
                           discrepancy="draw", init_seed=3, data_generator=torch.Generator().manual_seed(4),
                           ple_generator=torch.Generator().manual_seed(5))


# -------------------------------------------------------------------------- the classifiers
def test_the_evaluation_classifier_raises_floating_point_error_with_step_and_value(monkeypatch):
    monkeypatch.setattr(EvaluationClassifier, "forward", _nan_from_call(4, EvaluationClassifier.forward))
    data = DigitsData(classes=[3, 6])
    with pytest.raises(FloatingPointError, match=r"^evaluation classifier: loss is nan at step 4 of \d+$"):
        train_classifier(data.training_pool(), data.heldout(), 2, ClassifierConfig(epochs=1))


def test_the_downstream_classifier_raises_floating_point_error_with_step_and_value(monkeypatch):
    monkeypatch.setattr(DownstreamClassifier, "forward", _nan_from_call(3, DownstreamClassifier.forward))
    generator = torch.Generator().manual_seed(0)
    x, classes = torch.randn(40, 4, generator=generator), torch.arange(40) % 2
    with pytest.raises(FloatingPointError, match=r"^downstream classifier: loss is nan at step 3 of 6$"):
        train_downstream(x, classes, class_names=["a", "b"], config=DownstreamConfig(steps=6, hidden=8), generator=generator)


def test_the_evidence_fit_fails_its_generation_on_a_nan_loss(monkeypatch):
    """The MLE reference steps behind ``mle_sensitivity`` (``genfair.estimators._evidence``) train
    copies of the model: their NaN loss fails the generation in the one line of every other fit,
    while H's own training (on the model itself) stays finite."""
    model = GaussianMixtureModel(2, 1)
    loss = GaussianMixtureModel.loss
    monkeypatch.setattr(GaussianMixtureModel, "loss",
                        lambda self, x, labels=None: loss(self, x, labels) * (1.0 if self is model else float("nan")))
    fit = build_fit(EstimatorConfig(name="ple", lam=0.5, steps=3, reference_steps=2), model=model, sample_shape=(1,))
    train = Batch(torch.randn(1, 40, 1, generator=torch.Generator().manual_seed(0)), torch.zeros(1, 40, dtype=torch.int64))
    with pytest.raises(GenerationFailed) as raised:
        fit(model, train, torch.Generator().manual_seed(1), FitContext(2, None))
    assert (raised.value.generation, raised.value.reason) == (
        2, "estimator ple (mle_sensitivity's reference fit): loss is nan at step 1 of 2")
    assert "\n" not in str(raised.value)

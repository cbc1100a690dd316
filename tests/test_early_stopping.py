"""Early stopping (``estimator.early_stopping``): the held-out split, the stopping rule, the fits
that use it and the refusals of what it cannot do."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from _fixtures import seeded
from genfair import ConfigError
from genfair.data import Batch, DigitsData
from genfair.estimators import EarlyStoppingConfig, EstimatorConfig, GradientFit, build_fit
from genfair.estimators._early_stopping import EarlyStopping, split_validation
from genfair.loops import FitContext, LoopConfig
from genfair.models import ModelCapabilities

# Sample i is the number i, so a test can tell which samples a fit saw; 45 of class 0, 5 of class 1.
IDS = Batch(torch.arange(50, dtype=torch.float32).reshape(1, 50, 1), (torch.arange(50) >= 45).long()[None])


class _Spy(nn.Module):
    """A Gaussian mean that records the samples its loss sees in training and in evaluation mode."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(1))
        self.trained_on: set[int] = set()
        self.scored: list[tuple[set[int], float]] = []

    def loss(self, x, labels=None):
        losses = 0.5 * (x - self.mean).square().sum(-1)
        ids = {int(v) for v in x.detach().flatten()}
        if self.training:
            self.trained_on |= ids
        else:
            self.scored.append((ids, float(losses.mean())))
        return losses

    def sample(self, n, *, labels=None, generator=None):
        return (self.mean + torch.randn(n, 1, generator=generator))[None]


def test_the_split_holds_out_round_v_n_in_the_classes_shares_and_trains_on_the_rest():
    train, held = split_validation(IDS, EarlyStoppingConfig(validation=0.2), seeded(0))
    held_ids, train_ids = set(held.x.flatten().tolist()), set(train.x.flatten().tolist())
    assert len(held_ids) == 10 and held_ids.isdisjoint(train_ids) and held_ids | train_ids == set(range(50))
    assert held.y.flatten().tolist().count(1) == 1  # 5 of 50 is a 10 % class: 1 of the 10 held out
    assert torch.equal(train.y, (train.x >= 45).long().squeeze(-1))  # labels travel with their samples
    assert split_validation(IDS, EarlyStoppingConfig(), seeded(0)) == (IDS, None)  # off: nothing drawn


def test_a_gradient_fit_trains_only_on_the_training_part_and_scores_only_the_held_out_part():
    model = _Spy()
    config = EstimatorConfig(name="mle", steps=40, lr=0.5, batch_size=8,
                             early_stopping=EarlyStoppingConfig(validation=0.2, patience=2, every=5))
    values = GradientFit(config)(model, IDS, seeded(0), FitContext(1, None)).values
    held = model.scored[0][0]
    assert len(held) == 10 and all(ids == held for ids, _ in model.scored)  # every check, the same held-out samples
    assert model.trained_on.isdisjoint(held) and len(model.trained_on) == 40
    best = min(loss for _, loss in model.scored)
    assert float(values["validation_loss/all"]) == pytest.approx(best)
    final = 0.5 * (torch.tensor(sorted(held), dtype=torch.float32) - model.mean.detach()).square().mean()
    assert float(final) == pytest.approx(best)  # the kept state is the best one scored
    assert 0 <= float(values["best_step/all"]) <= float(values["train_steps/all"]) <= 40


def test_the_rule_stops_after_patience_checks_without_a_lower_loss_and_keeps_the_first_best():
    module = nn.Linear(1, 1, bias=False)
    scores = iter([5.0, 4.0, 3.0, 3.0, 3.2, 3.1, 2.0])  # step 3 ties step 2: not an improvement
    rule = EarlyStopping(EarlyStoppingConfig(validation=0.1, patience=3, every=1), steps=100, modules={"m": module},
                         loss=lambda: torch.tensor(next(scores)), seed=0)
    rule.resume(0, {})
    stopped_at = None
    for step in range(1, 100):
        module.weight.data.fill_(step)  # a step of training
        if rule.check(step):
            stopped_at = step
            break
    values = rule.restore()
    assert stopped_at == 5 and float(module.weight.detach()) == 2.0
    assert [float(values[k]) for k in ("train_steps/all", "best_step/all", "validation_loss/all")] == [5, 2, 3.0]


def test_the_rule_checks_every_k_steps_and_at_the_last():
    calls = []

    def loss():  # lower at every check
        calls.append(1)
        return torch.tensor(-float(len(calls)))

    rule = EarlyStopping(EarlyStoppingConfig(validation=0.1, patience=50, every=4), steps=10,
                         modules={"m": nn.Linear(1, 1)}, loss=loss, seed=0)
    rule.resume(0, {})
    stops = [rule.check(step) for step in range(1, 11)]
    assert len(calls) == 4 and stops == [False] * 9 + [True]  # steps 0, 4, 8 and 10


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(validation=1.0), "early_stopping.validation must be a number in [0, 1)"),
        (dict(validation=0.2, patience=0), "early_stopping.patience must be a positive integer, got 0"),
        (dict(validation=0.2, every=0), "early_stopping.every must be a positive integer, got 0"),
    ],
)
def test_bad_options_are_refused_in_one_line(options, message):
    with pytest.raises(ConfigError) as raised:
        EstimatorConfig(early_stopping=options)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_a_split_that_leaves_too_few_samples_is_refused_before_training():
    model = _Spy()
    small = Batch(IDS.x[:, :4], IDS.y[:, :4])
    config = EstimatorConfig(name="mle", steps=5, early_stopping=EarlyStoppingConfig(validation=0.8))
    with pytest.raises(ConfigError, match=r"^estimator.early_stopping.validation=0.8 holds out 3 of a training set of 4"):
        GradientFit(config)(model, small, seeded(0), FitContext(0, None))
    assert not model.trained_on


def _run(tmp_path, arm):
    from genfair.experiment import run_experiment

    with pytest.raises(ConfigError) as raised:
        run_experiment([arm], seed=0, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    return str(raised.value)


def test_a_run_refuses_early_stopping_where_it_cannot_apply_before_anything_is_written(tmp_path):
    from genfair.data import ClassMixtureData
    from genfair.experiment import Arm
    from genfair.models import AnalyticModelConfig, VAEConfig

    stopping = EarlyStoppingConfig(validation=0.2)
    analytic = Arm("a", ClassMixtureData(class_names=["big", "small"], proportions=[0.8, 0.2]), AnalyticModelConfig(),
                   LoopConfig(generations=2, replicates=4), EstimatorConfig(early_stopping=stopping))
    assert _run(tmp_path, analytic).startswith("estimator.early_stopping.validation=0.2 needs a model trained by gradient steps")
    tight = EstimatorConfig(early_stopping=EarlyStoppingConfig(validation=0.9))
    deep = Arm("d", DigitsData(classes=[3, 6], proportions=[0.8, 0.2]), VAEConfig(hidden=[8], latent_dim=2),
               LoopConfig(generations=2, n_real=10, n_synthetic=10, replicates=1), tight)
    assert _run(tmp_path, deep) == ("estimator.early_stopping.validation=0.9 holds out 9 of a training set of 10 samples; "
                                    "allowed: a share holding out at least 1 and leaving at least 2 to train on (in arm 'd')")


def test_a_hypernetwork_fit_scores_the_held_out_part_under_the_weights_h_makes_from_the_rest():
    model = _Spy()
    config = EstimatorConfig(name="hyper_mle", steps=6, lr=0.1, sets_per_step=2, hidden=8, embedding_dim=4,
                             reference_steps=0, early_stopping=EarlyStoppingConfig(validation=0.2, patience=2, every=2))
    can = ModelCapabilities(positive={}, per_replicate=False, closed_form=False, adversarial=False, num_classes=None)
    fit = build_fit(config, model=can, sample_shape=(1,))
    model.train()  # the held-out scoring alone puts it in evaluation mode
    values = fit(model, IDS, seeded(0), FitContext(1, None)).values
    scored = [ids for ids, _ in model.scored if len(ids) == 10]
    assert scored and all(ids == scored[0] for ids in scored)
    assert float(values["validation_loss/all"]) == pytest.approx(min(loss for ids, loss in model.scored if len(ids) == 10))
    assert {"train_steps/all", "best_step/all"} <= set(values)

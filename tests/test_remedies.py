"""Each remedy on a case built to need it: one shared location fitted to an imbalanced
two-class set (majority at 0, minority at 4), where plain ERM serves the majority."""

from __future__ import annotations

import math

import pytest
import torch

from genfair.data import Batch
from genfair.errors import ConfigError
from genfair.fairness import mmd2
from genfair.remedies import GroupDRO, Remedy, RemedyConfig, hard_example_loss, mindiff_loss, smote

N_MAJ, N_MIN = 90, 10


def imbalanced() -> Batch:
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(N_MAJ, generator=g) * 0.5, 4 + torch.randn(N_MIN, generator=g) * 0.5])
    y = torch.tensor([0] * N_MAJ + [1] * N_MIN)
    return Batch(x[None, :, None].double(), y[None])


def fit_location(config: RemedyConfig, *, steps: int = 400, batch_size: int | None = 32) -> tuple[float, Remedy]:
    """A shared location mu fitted by Adam on 0.5 (x - mu)^2 under the remedy."""
    remedy = Remedy(config, num_classes=2, minority=1)
    generator = torch.Generator().manual_seed(1)
    train = remedy.prepare(imbalanced(), generator=generator)
    mu = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.Adam([mu], lr=0.05)
    for _ in range(steps):
        index = remedy.batch(batch_size, generator=generator)
        losses = 0.5 * (train.x[0, index, 0] - mu).square()
        optimiser.zero_grad()
        remedy.loss(losses, train.y[0, index], index).backward()
        optimiser.step()
    return float(mu.detach()), remedy


def group_losses(mu: float) -> list[float]:
    train = imbalanced()
    x, y = train.x[0, :, 0], train.y[0]
    return [float((0.5 * (x[y == k] - mu) ** 2).mean()) for k in (0, 1)]


def test_without_a_remedy_the_minority_pays():
    mu, _ = fit_location(RemedyConfig(name="none"), batch_size=None)
    assert mu == pytest.approx(float(imbalanced().x.mean()), abs=1e-3)  # ERM: the pooled mean, ~0.4
    assert group_losses(mu)[1] > 5 * group_losses(mu)[0]


def test_reweight_by_inverse_frequency_puts_the_location_between_the_class_means():
    mu, _ = fit_location(RemedyConfig(name="reweight"), batch_size=None)
    x, y = imbalanced().x[0, :, 0], imbalanced().y[0]
    assert mu == pytest.approx(float((x[y == 0].mean() + x[y == 1].mean()) / 2), abs=1e-3)


def test_group_dro_lowers_the_worst_class_loss_and_logs_its_weights():
    erm, _ = fit_location(RemedyConfig(name="none"))
    dro, remedy = fit_location(RemedyConfig(name="group_dro", step_size=0.5))
    assert max(group_losses(dro)) < 0.5 * max(group_losses(erm))
    history = torch.tensor(remedy.dro.history, dtype=torch.float64)
    assert history.shape == (400, 2)  # one entry per step (the update itself: test_group_dro_update_compounds_by_hand)
    assert float(history[:, 1].mean()) > 0.3  # the minority (10 % of the data) carries far more than its share


def test_group_dro_weight_update_by_hand():
    dro = GroupDRO(2, step_size=0.5)
    loss = dro(torch.tensor([1.0, 1.0, 3.0], dtype=torch.float64), torch.tensor([0, 0, 1]))
    q = torch.tensor([math.exp(0.5 * 1.0), math.exp(0.5 * 3.0)])
    q = q / q.sum()
    assert dro.history[-1] == pytest.approx(q.tolist())
    assert float(loss) == pytest.approx(float(q[0] * 1.0 + q[1] * 3.0))


def test_group_dro_update_compounds_by_hand():
    """q_g <- q_g exp(eta loss_g), normalised, from the previous step's q (not from uniform); a group
    absent from a batch keeps its unnormalised weight; the loss weighs the present groups by q."""
    eta = 0.3
    dro = GroupDRO(3, step_size=eta)
    dro(torch.tensor([0.5, 1.5, 2.0, 4.0, 0.0], dtype=torch.float64), torch.tensor([0, 0, 1, 2, 2]))  # means 1, 2, 2
    q1 = [math.exp(eta * 1.0), math.exp(eta * 2.0), math.exp(eta * 2.0)]
    q1 = [v / sum(q1) for v in q1]
    assert dro.history[-1] == pytest.approx(q1, rel=1e-12)
    loss = dro(torch.tensor([3.0, 1.0], dtype=torch.float64), torch.tensor([0, 2]))  # group 1 absent
    q2 = [q1[0] * math.exp(eta * 3.0), q1[1], q1[2] * math.exp(eta * 1.0)]
    q2 = [v / sum(q2) for v in q2]
    assert dro.history[-1] == pytest.approx(q2, rel=1e-12)
    assert float(loss) == pytest.approx((q2[0] * 3.0 + q2[2] * 1.0) / (q2[0] + q2[2]), rel=1e-12)
    assert dro.worst_group() == 0


def test_group_dro_size_adjustment_is_c_over_sqrt_n_by_hand():
    """Sagawa et al.'s adjustment adds C / sqrt(n_g) to group g's loss, n_g its training size:
    with C = 2 and sizes 100 and 4, +0.2 and +1.0 (C / n_g would give +0.02 and +0.5)."""
    remedy = Remedy(RemedyConfig(name="group_dro", step_size=0.5, size_adjustment=2.0), num_classes=2, minority=1)
    labels = torch.tensor([0] * 100 + [1] * 4)
    remedy.prepare(Batch(torch.zeros(1, 104, 1, dtype=torch.float64), labels[None]), generator=torch.Generator())
    loss = remedy.loss(torch.tensor([1.0, 1.0, 3.0], dtype=torch.float64), torch.tensor([0, 0, 1]), torch.arange(3))
    adjusted = [1.0 + 2.0 / math.sqrt(100), 3.0 + 2.0 / math.sqrt(4)]  # 1.2, 4.0
    q = [math.exp(0.5 * v) for v in adjusted]
    q = [v / sum(q) for v in q]
    assert remedy.dro.history[-1] == pytest.approx(q, rel=1e-12)
    assert float(loss) == pytest.approx(q[0] * adjusted[0] + q[1] * adjusted[1], rel=1e-12)


def test_group_dro_stays_finite_when_a_class_is_absent_and_the_losses_are_negative():
    """A loop that lost a class keeps training: with the absent class's weight fixed, a
    multiplicative update of the present class with negative losses underflows to 0 / 0."""
    dro = GroupDRO(2, step_size=0.01)
    losses = torch.full((8,), -2000.0, dtype=torch.float64, requires_grad=True)
    for _ in range(100):
        loss = dro(losses, torch.zeros(8, dtype=torch.int64))
    loss.backward()
    assert float(loss.detach()) == -2000.0 and torch.isfinite(losses.grad).all()
    assert dro.history[-1][0] < 1e-80  # the present class's weight did underflow in the old form


@pytest.mark.parametrize("shares", [None, [0.7, 0.3]])
def test_oversample_batches_hold_the_configured_shares(shares):
    remedy = Remedy(RemedyConfig(name="oversample", shares=shares), num_classes=2, minority=1)
    train = remedy.prepare(imbalanced(), generator=torch.Generator().manual_seed(0))
    expected = [16, 16] if shares is None else [22, 10]  # round(32 * share), largest remainder
    for seed in range(5):
        index = remedy.batch(32, generator=torch.Generator().manual_seed(seed))
        assert torch.bincount(train.y[0, index], minlength=2).tolist() == expected


def test_oversample_at_epoch_level_resamples_the_set_to_the_shares():
    remedy = Remedy(RemedyConfig(name="oversample", level="epoch"), num_classes=2, minority=1)
    train = remedy.prepare(imbalanced(), generator=torch.Generator().manual_seed(0))
    assert train.n == N_MAJ + N_MIN and torch.bincount(train.y[0]).tolist() == [50, 50]


def test_mindiff_penalty_equals_the_published_formula_on_fixed_inputs():
    losses = torch.tensor([0.1, 0.4, 0.2, 0.9, 0.8], dtype=torch.float64)
    groups = torch.tensor([0, 0, 0, 1, 1])
    got = mindiff_loss(losses, groups, minority=1, weight=1.5, kernel="gaussian", length=0.1)
    a, b = losses[groups == 1], losses[groups == 0]

    def k(u, v):
        return math.exp(-((u - v) ** 2) / 0.1**2)

    formula = (sum(k(u, v) for u in a for v in a) / 4 + sum(k(u, v) for u in b for v in b) / 9
               - 2 * sum(k(u, v) for u in a for v in b) / 6)
    assert float(got) == pytest.approx(float(losses.mean()) + 1.5 * formula, rel=1e-12)
    assert float(mmd2(a, b)) == pytest.approx(formula, rel=1e-12)


def test_mindiff_pulls_the_two_classes_losses_together():
    erm, _ = fit_location(RemedyConfig(name="none"))
    # a kernel length on the losses' scale: at 0.1 (the default, made for probabilities) the biased
    # MMD² of spread-out losses is lowered by spreading them further, not by matching them
    fair, _ = fit_location(RemedyConfig(name="mindiff", weight=50.0, length=10.0, quantity="loss"))
    gap = lambda mu: abs(group_losses(mu)[1] - group_losses(mu)[0])  # noqa: E731
    assert gap(fair) < 0.5 * gap(erm)


def test_mindiff_with_its_defaults_compares_scores_and_pulls_the_losses_together():
    """The default quantity (each loss standardised and squashed into (0, 1)) is on the scale the
    default length 0.1 is made for: weight 1.5, as in the case study, closes most of the gap."""
    erm, _ = fit_location(RemedyConfig(name="none"))
    fair, _ = fit_location(RemedyConfig(name="mindiff"))
    gap = lambda mu: abs(group_losses(mu)[1] - group_losses(mu)[0])  # noqa: E731
    assert gap(fair) < 0.25 * gap(erm)


def test_hard_mining_back_propagates_only_the_highest_losses():
    losses = torch.tensor([0.1, 5.0, 0.3, 2.0], requires_grad=True)
    hard_example_loss(losses, keep=0.5).backward()
    assert losses.grad.tolist() == [0.0, 0.5, 0.0, 0.5]


def test_hard_mining_favours_the_minority_in_the_fit():
    erm, _ = fit_location(RemedyConfig(name="none"))
    hard, _ = fit_location(RemedyConfig(name="hard_mining", keep=0.25))
    assert max(group_losses(hard)) < max(group_losses(erm))


def test_smote_fills_the_minority_with_points_between_same_class_neighbours():
    train = imbalanced()
    out = smote(train, k=3, target_share=None, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(out.y[0]).tolist() == [N_MAJ, N_MAJ]
    new = out.x[0, N_MAJ + N_MIN:, 0]
    minority = train.x[0, N_MAJ:, 0]
    assert float(new.min()) >= float(minority.min()) and float(new.max()) <= float(minority.max())
    half = smote(train, k=3, target_share=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(half.y[0]).tolist() == [N_MAJ, N_MAJ]
    third = smote(train, k=3, target_share=0.25, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(third.y[0]).tolist() == [N_MAJ, 30]


def test_smote_finds_neighbours_in_the_given_space():
    """Two minority clusters far apart in the search space: partners come from the same cluster."""
    x = torch.tensor([[0.0]] * 8 + [[1.0], [1.1], [10.0], [10.1]])[None].double()
    y = torch.tensor([[0] * 8 + [1] * 4])
    space = torch.tensor([[0.0]] * 8 + [[0.0], [0.0], [100.0], [100.0]])
    out = smote(Batch(x, y), k=1, target_share=None, generator=torch.Generator().manual_seed(0), space=space)
    new = out.x[0, 12:, 0]
    assert len(new) == 4
    assert bool(((new >= 1.0) & (new <= 1.1) | (new >= 10.0) & (new <= 10.1)).all())


def test_smote_never_pairs_a_sample_with_itself():
    """k = 1 on distinct minority points 0, 1, 3, 7 (float64, exact distances): each point's only
    partner is its nearest *other* point, so every new sample lies strictly inside one of the
    segments (0, 1), (1, 3), (3, 7); a sample counted as its own neighbour (distance 0) would make
    every new sample a copy of an existing one."""
    minority = [0.0, 1.0, 3.0, 7.0]
    x = torch.tensor([[10.0]] * 12 + [[v] for v in minority], dtype=torch.float64)[None]
    y = torch.tensor([[0] * 12 + [1] * 4])
    out = smote(Batch(x, y), k=1, target_share=None, generator=torch.Generator().manual_seed(0))
    new = out.x[0, 16:, 0]
    assert len(new) == 8 and bool((out.y[0, 16:] == 1).all())
    inside = [((new > a) & (new < b)) for a, b in ((0.0, 1.0), (1.0, 3.0), (3.0, 7.0))]
    assert bool((inside[0] | inside[1] | inside[2]).all()), new.tolist()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(name="fairness"), ["name", "'fairness'", "group_dro"]),
        (dict(name="oversample", shares=[0.5, 0.6]), ["shares", "[0.5, 0.6]"]),
        (dict(name="hard_mining", keep=0), ["keep", "0"]),
        (dict(name="mindiff", kernel="cosine"), ["kernel", "'cosine'"]),
        (dict(name="group_dro", step_size=-1), ["step_size", "-1"]),
        (dict(name="mindiff", quantity="probability"), ["quantity", "'probability'", "score", "loss"]),
        (dict(name="smote", target_share=1.5), ["target_share", "(0, 1) or null", "1.5"]),
        (dict(name="mindiff", length=float("nan")), ["length", "> 0", "nan"]),
    ],
)
def test_remedy_config_names_the_bad_key(kwargs, words):
    with pytest.raises(ConfigError) as raised:
        RemedyConfig(**kwargs)
    assert all(word in str(raised.value) for word in words), str(raised.value)

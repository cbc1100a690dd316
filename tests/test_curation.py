"""Label policies and curation in step 4 of the loop (loop.synthetic_labels, loop.curation).

The truncation closed form that the Gaussian verifier's loop follows is tested in
tests/test_loop_closed_forms.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from genfair.data import ClassMixtureData, DigitsData, GaussianData, stratified_counts
from genfair.errors import ConfigError, GenerationFailed
from genfair.models import AnalyticModelConfig, ClassGaussianModel, VAEConfig
from genfair.loops import (
    ClassifierVerifier,
    CurationConfig,
    LoopConfig,
    Verdict,
    curate,
    gaussian_verifier,
    policy_labels,
    simulate,
)
from genfair.loops._theory import class_share_chain


def counts_measure(num_classes):
    return lambda model, train, generator: {"count/" + str(k): train.class_counts(num_classes)[:, k].double()
                                            for k in range(num_classes)}


def run_policy(policy, *, proportions, n=20, generations=30, replicates=400, shares=None):
    data = ClassMixtureData(proportions=proportions, dim=1)
    config = LoopConfig(generations=generations, n_real=n, n_synthetic=n, replicates=replicates,
                        synthetic_labels=policy, synthetic_shares=shares)
    model = ClassGaussianModel(len(proportions), 1, replicates=replicates)
    result = simulate(data=data, model=model, config=config, seed=0, measure=counts_measure(len(proportions)))
    return np.stack([result.values(f"count/{k}") for k in range(len(proportions))], axis=-1)  # (G, R, K)


# --- label policies -----------------------------------------------------------------------------


def test_real_shares_keeps_every_class_where_counts_loses_the_minority():
    n, generations, replicates = 20, 30, 400
    lost_by_theory = class_share_chain(proportion=0.1, n_real=n, n_synthetic=n, generations=generations,
                                       stratified=True).extinct_prob[-1]
    assert lost_by_theory > 0.8  # counts: the minority is gone from most replicates by the last generation
    counts = run_policy("counts", proportions=[0.9, 0.1], n=n, generations=generations, replicates=replicates)
    lost = (counts[-1, :, 1] == 0).mean()
    assert lost > 0.5 and abs(lost - lost_by_theory) < 4.5 * math.sqrt(lost_by_theory * (1 - lost_by_theory) / replicates)
    kept = run_policy("real_shares", proportions=[0.9, 0.1], n=n, generations=generations, replicates=replicates)
    assert (kept[..., 1] == 2).all() and (kept[..., 0] == 18).all()  # stratified_counts(20, [0.9, 0.1]) every generation


@pytest.mark.parametrize(
    "policy, shares, expected",
    [("balanced", None, [7, 7, 6]), ("shares", [0.5, 0.25, 0.25], [10, 5, 5]), ("real_shares", None, [12, 6, 2])],
)
def test_stratified_policies_give_exact_counts(policy, shares, expected):
    counts = run_policy(policy, proportions=[0.6, 0.3, 0.1], n=20, generations=4, replicates=50, shares=shares)
    assert counts[0].tolist() == [[12, 6, 2]] * 50  # generation 0: the real draw
    assert counts[1:].tolist() == [[expected] * 50] * 3  # the synthetic sets (fully synthetic loop)


def test_real_shares_follow_each_replicates_own_real_set():
    real = torch.tensor([[9, 1], [8, 2], [9, 1]])
    labels = policy_labels("real_shares", train_counts=real, real_counts=real, shares=None, n=20,
                           generator=torch.Generator().manual_seed(0))
    assert torch.stack([torch.bincount(row, minlength=2) for row in labels]).tolist() == [[18, 2], [16, 4], [18, 2]]


def test_counts_policy_draws_from_the_training_shares_as_before():
    counts = torch.tensor([[3, 1], [0, 4]])
    labels = policy_labels("counts", train_counts=counts, real_counts=counts, shares=None, n=1000,
                           generator=torch.Generator().manual_seed(0))
    expected = torch.multinomial(counts.double(), 1000, replacement=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(labels, expected)


# --- curation rules on hand-made cases -------------------------------------------------------------
# A sample x = (score, predicted class, draw number): the verifier reads its verdict off the sample.


def read_verdict(model, x, labels):
    return Verdict(x[..., 1].to(torch.int64), x[..., 0].to(torch.float64))


def draws(*rounds):
    """A ``draw`` that returns the given rounds one after another; each round is a list of
    (score, predicted) per slot of the single replicate."""
    queue = [torch.tensor([[(s, p, i) for s, p in r]], dtype=torch.float64) for i, r in enumerate(rounds)]

    def draw(labels):
        return queue.pop(0).clone()

    draw.left = lambda: len(queue)
    return draw


def run_curate(draw, labels, **config):
    return curate(draw, torch.tensor([labels]), model=nn.Module(), verifier=read_verdict,
                  config=CurationConfig(**config), num_classes=2, generation=3)


def test_agreement_keeps_the_samples_whose_verifier_class_is_their_own():
    out = run_curate(draws([(0.9, 0), (0.9, 1), (0.9, 1), (0.9, 0)]), [0, 0, 1, 1], rule="agreement", redraw=False)
    assert out.x[0, :, 1].tolist() == [0, 1] and out.labels.tolist() == [[0, 1]]
    values = out.values(("a", "b"))
    assert values["accept_rate/a"].tolist() == [0.5] and values["accept_rate/b"].tolist() == [0.5]
    assert values["draws/all"].tolist() == [4.0] and values["unverified/all"].tolist() == [0.0]


def test_confidence_keeps_the_samples_at_or_above_the_threshold():
    out = run_curate(draws([(0.9, 1), (0.4, 0), (0.5, 0), (0.1, 1)]), [0, 0, 1, 1], rule="confidence",
                     threshold=0.5, redraw=False)
    assert out.x[0, :, 0].tolist() == [0.9, 0.5] and out.labels.tolist() == [[0, 1]]


def test_top_fraction_keeps_the_best_scored_share_of_each_class():
    rounds = [[(0.1, 0), (0.9, 0), (0.5, 0), (0.3, 1), (0.8, 1)]]
    out = run_curate(draws(*rounds), [0, 0, 0, 1, 1], rule="top_fraction", fraction=0.5, redraw=False)
    assert out.x[0, :, 0].tolist() == [0.9, 0.5, 0.8] and out.labels.tolist() == [[0, 0, 1]]  # ceil(0.5 n_k)
    assert out.values(("a", "b"))["accept_rate/a"].tolist() == [2 / 3]


def test_top_fraction_with_redraw_keeps_the_best_n_of_the_draws_per_class():
    rounds = [[(0.1, 0), (0.9, 0), (0.3, 1)], [(0.7, 0), (0.2, 0), (0.8, 1)], [(0.6, 0), (0.95, 0), (0.1, 1)]]
    out = run_curate(draws(*rounds), [0, 0, 1], rule="top_fraction", fraction=0.4, redraw=True)  # 3 rounds
    assert out.x[0, :, 0].tolist() == [0.95, 0.9, 0.8] and out.labels.tolist() == [[0, 0, 1]]
    values = out.values(("a", "b"))
    assert values["draws/all"].tolist() == [9.0] and values["accept_rate/all"].tolist() == [1 / 3]


def agreement_rounds():
    return draws(
        [(0.9, 0), (0.9, 1), (0.9, 1), (0.9, 0)],  # slots 1 and 3 rejected
        [(0.9, 1), (0.9, 0), (0.9, 0), (0.9, 0)],  # slot 1 accepted; slot 3 rejected again
        [(0.9, 1), (0.9, 1), (0.9, 0), (0.9, 1)],  # slot 3 accepted
    )


def test_redraw_replaces_each_rejected_sample_until_it_is_accepted():
    draw = agreement_rounds()
    out = run_curate(draw, [0, 0, 1, 1], rule="agreement", redraw=True, max_draws=10)
    assert out.labels.tolist() == [[0, 0, 1, 1]] and out.x[0, :, 2].tolist() == [0, 1, 0, 2]  # round of each slot
    values = out.values(("a", "b"))
    assert values["accept_rate/a"].tolist() == [2 / 3] and values["accept_rate/b"].tolist() == [2 / 4]
    assert values["draws/all"].tolist() == [7.0] and values["unverified/all"].tolist() == [0.0]
    assert draw.left() == 0


def test_the_draw_cap_marks_or_fails():
    out = run_curate(agreement_rounds(), [0, 0, 1, 1], rule="agreement", max_draws=2)
    assert out.x[0, :, 2].tolist() == [0, 1, 0, 1]  # slot 3 keeps its last, unaccepted draw
    assert out.values(("a", "b"))["unverified/all"].tolist() == [1.0]
    assert out.values(("a", "b"))["draws/all"].tolist() == [6.0]
    with pytest.raises(GenerationFailed, match=r"left 1 of 4 samples unaccepted after loop.curation.max_draws=2") as failed:
        run_curate(agreement_rounds(), [0, 0, 1, 1], rule="agreement", max_draws=2, on_cap="fail")
    assert failed.value.generation == 3 and "\n" not in str(failed.value)


def test_curation_that_keeps_nothing_fails_the_generation():
    with pytest.raises(GenerationFailed, match="kept none of the 2 samples"):
        run_curate(draws([(0.1, 1), (0.1, 1)]), [0, 0], rule="agreement", redraw=False)


def test_classifier_verifier_reads_the_softmax_of_the_drawn_class():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    verifier = ClassifierVerifier(lambda x: logits[x.reshape(len(x), -1)[:, 0].long()])
    x = torch.arange(3.0).reshape(1, 3, 1, 1, 1)
    verdict = verifier(nn.Module(), x, torch.tensor([[0, 0, 1]]))
    assert verdict.predicted.tolist() == [[0, 1, 0]]
    expected = [1 / (1 + math.exp(-2)), 1 / (1 + math.e), 0.5]
    np.testing.assert_allclose(verdict.score[0].numpy(), expected, rtol=1e-12)


def test_gaussian_verifier_scores_the_chi_square_tail_of_the_radius():
    model = ClassGaussianModel(2, 1, replicates=1)
    with torch.no_grad():
        model.means.copy_(torch.tensor([[[0.0], [10.0]]]))
        model.covs.copy_(torch.tensor([[[[4.0]], [[1.0]]]]))
    verdict = gaussian_verifier(model, torch.tensor([[[2.0], [9.0], [4.0]]]), torch.tensor([[0, 1, 1]]))
    assert verdict.predicted.tolist() == [[0, 1, 0]]
    expected = [math.erfc(1 / math.sqrt(2)), math.erfc(1 / math.sqrt(2)), math.erfc(6 / math.sqrt(2))]  # r = 1, 1, 6
    np.testing.assert_allclose(verdict.score[0].numpy(), expected, rtol=1e-9)


def test_simulate_records_the_curation_of_each_generation():
    config = LoopConfig(generations=3, n_real=10, n_synthetic=10, replicates=200,
                        curation=CurationConfig(rule="confidence", threshold=0.5, max_draws=40))
    result = simulate(data=GaussianData(), model=ClassGaussianModel(replicates=200), config=config, seed=0,
                      measure=counts_measure(1), verifier=gaussian_verifier)
    draws_ = result.values("draws/all")
    assert (draws_ >= 10).all() and (result.values("unverified/all") == 0).all()
    assert np.allclose(result.values("accept_rate/all"), 10 / draws_)
    assert abs(draws_.mean() - 20) < 4.5 * draws_.std() / math.sqrt(draws_.size)  # acceptance 1/2: 2 draws per sample
    assert (result.values("count/0")[1:] == 10).all()


# --- bad input, refused before any work in one line naming the key, the value and what is allowed ---


def one_line(raised, *parts):
    message = str(raised.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, (part, message)


@pytest.mark.parametrize(
    "make, parts",
    [
        (lambda: LoopConfig(synthetic_labels="magic"), ["synthetic_labels", "'magic'", "real_shares", "balanced"]),
        (lambda: CurationConfig(rule="magic"), ["curation.rule", "'magic'", "agreement", "top_fraction"]),
        (lambda: LoopConfig(synthetic_labels="shares", synthetic_shares=[0.4, 0.5]), ["synthetic_shares", "[0.4, 0.5]", "summing to 1"]),
        (lambda: LoopConfig(synthetic_labels="shares", synthetic_shares=[1.0, 0.0]), ["synthetic_shares", "[1.0, 0.0]", "(0, 1]"]),
        (lambda: LoopConfig(synthetic_labels="shares"), ["synthetic_shares", "None", "summing to 1"]),
        (lambda: LoopConfig(synthetic_shares=[0.5, 0.5]), ["synthetic_shares=[0.5, 0.5]", "synthetic_labels=shares"]),
        (lambda: CurationConfig(threshold=0.0), ["curation.threshold", "0.0", "(0, 1)"]),
        (lambda: CurationConfig(threshold=1.0), ["curation.threshold", "1.0", "(0, 1)"]),
        (lambda: CurationConfig(threshold=float("nan")), ["curation.threshold", "nan", "(0, 1)"]),
        (lambda: CurationConfig(max_draws=0), ["curation.max_draws", "0", "positive integer"]),
        (lambda: CurationConfig(fraction=0.0), ["curation.fraction", "0.0", "(0, 1]"]),
        (lambda: CurationConfig(rule="top_fraction", fraction=0.1, max_draws=5), ["fraction=0.1", "max_draws=5", "10"]),
        (lambda: CurationConfig(on_cap="retry"), ["curation.on_cap", "'retry'", "mark"]),
        (lambda: CurationConfig(redraw="yes"), ["curation.redraw", "'yes'", "true or false"]),
    ],
)
def test_bad_settings_are_refused_in_one_line(make, parts):
    with pytest.raises(ConfigError) as raised:
        make()
    one_line(raised, *parts)


class NoWork:
    """Data whose draw fails the test: a refusal must come before the real draw."""

    group_names = ("a", "b")

    def draw(self, *args, **kwargs):
        raise AssertionError("work started before the bad input was refused")


def untouched_measure(*args):
    raise AssertionError("measured before the bad input was refused")


@pytest.mark.parametrize(
    "config, kwargs, parts",
    [
        (LoopConfig(synthetic_labels="shares", synthetic_shares=[1.0], replicates=2), {},
         ["loop.synthetic_shares", "[1.0]", "each of the data's 2 classes"]),
        (LoopConfig(synthetic_labels="real_shares", replicates=2), {"label_synthetic": lambda x: x},
         ["loop.synthetic_labels=real_shares", "allowed there: loop.synthetic_labels=counts"]),
        (LoopConfig(curation=CurationConfig(rule="agreement"), replicates=2), {"label_synthetic": lambda x: x, "verifier": read_verdict},
         ["loop.curation.rule=agreement", "allowed there: loop.curation.rule=none"]),
        (LoopConfig(curation=CurationConfig(rule="confidence"), replicates=2), {},
         ["loop.curation.rule=confidence", "needs a verifier"]),
        (LoopConfig(curation=CurationConfig(rule="agreement", redraw=False), replicates=2), {"verifier": read_verdict},
         ["loop.curation.redraw=false", "2 replicates", "loop.curation.redraw=true"]),
    ],
)
def test_simulate_refuses_before_any_work(config, kwargs, parts):
    with pytest.raises(ConfigError) as raised:
        simulate(data=NoWork(), model=ClassGaussianModel(2, 1, replicates=2), config=config, seed=0,
                 measure=untouched_measure, **kwargs)
    one_line(raised, *parts)


def digits_arm(name, *, conditional=True, **loop):
    from genfair.experiment import Arm

    return Arm(name, DigitsData(), VAEConfig(conditional=conditional, hidden=[8]),
               LoopConfig(generations=2, n_real=150, n_synthetic=150, replicates=1, **loop))


@pytest.mark.parametrize(
    "arms, parts",
    [
        ([digits_arm("ok"), digits_arm("bad", conditional=False, curation=CurationConfig(rule="confidence"))],
         ["loop.curation.rule=confidence", "unconditional model", "allowed there: loop.curation.rule=none", "'bad'"]),
        ([digits_arm("bad", conditional=False, synthetic_labels="balanced")],
         ["loop.synthetic_labels=balanced", "allowed there: loop.synthetic_labels=counts", "'bad'"]),
        ([digits_arm("bad", curation=CurationConfig(rule="agreement", verifier_seed=0, verifier_width=16))],
         ["loop.curation.verifier_seed=0", "verifier_width=16", "must differ", "'bad'"]),
        ([digits_arm("bad", synthetic_labels="shares", synthetic_shares=[0.2, 0.3, 0.5])],
         ["loop.synthetic_shares", "2 classes", "'bad'"]),
    ],
)
def test_the_runner_refuses_unsupported_curation_before_writing(arms, parts, tmp_path):
    from genfair.experiment import run_experiment

    with pytest.raises(ConfigError) as raised:
        run_experiment(arms, seed=0, run_dir=tmp_path / "run")
    one_line(raised, *parts)
    assert not (tmp_path / "run").exists()


def test_the_runner_runs_the_analytic_truncation(tmp_path):
    from genfair.experiment import Arm, run_experiment

    loop = LoopConfig(generations=3, n_real=20, n_synthetic=20, replicates=50, synthetic_labels="real_shares",
                      curation=CurationConfig(rule="confidence", threshold=0.2))
    arm = Arm("cur", ClassMixtureData(proportions=[0.8, 0.2], dim=1), AnalyticModelConfig(name="class_mixture"), loop)
    result = run_experiment([arm], seed=0, run_dir=tmp_path)
    last = result.records["cur"][-1].values
    assert {"accept_rate/class0", "accept_rate/class1", "accept_rate/all", "draws/all", "unverified/all"} <= set(last)
    rows = (tmp_path / "metrics.csv").read_text()
    assert "accept_rate" in rows and "draws" in rows


def test_top_fraction_in_the_loop_keeps_each_sample_with_its_class():
    data = ClassMixtureData(proportions=[0.5, 0.5], dim=1, means=[[0.0], [100.0]])
    config = LoopConfig(generations=2, n_real=20, n_synthetic=20, replicates=30,
                        curation=CurationConfig(rule="top_fraction", fraction=0.5))

    def measure(model, train, generator):
        gap = (train.x[..., 0] - data.true_means()[train.y, 0]).abs()
        return {"gap/all": gap.amax(dim=1)}

    result = simulate(data=data, model=ClassGaussianModel(2, 1, replicates=30), config=config, seed=0,
                      measure=measure, verifier=gaussian_verifier)
    assert (result.values("gap/all") < 10).all()  # a sample paired with the other class would be ~100 away
    assert (result.values("accept_rate/all") == 0.5).all() and (result.values("draws/all") == 40).all()


def test_run_directories_without_the_new_options_keep_their_fingerprint():
    from genfair._run_dir import fingerprint as _fingerprint
    from genfair.experiment import Arm

    def loop_fingerprint(**loop):
        arm = Arm("a", GaussianData(), AnalyticModelConfig(name="gaussian"), LoopConfig(**loop))
        return _fingerprint([arm], 0)["arms"]["a"]["loop"]

    assert not {"synthetic_labels", "synthetic_shares", "curation"} & set(loop_fingerprint())
    changed = loop_fingerprint(synthetic_labels="balanced", curation=CurationConfig(rule="agreement"))
    assert changed["synthetic_labels"] == "balanced" and changed["curation"]["rule"] == "agreement"


def test_real_shares_with_curation_and_no_redraw_keep_the_counts_of_the_real_shares():
    """``real_shares`` draws each generation's classes from generation 0's real shares, not from
    the shares of the generation's (curated, smaller) training set. A verifier that rejects every
    other majority sample and no minority one leaves 7 of 14 and 6 of 6 of a [14, 6] draw: from
    those shares the next labels would be [11, 9], and the minority would grow past its 6."""
    n, data = 20, ClassMixtureData(proportions=[0.7, 0.3], dim=1)
    target = stratified_counts(n, [0.7, 0.3])
    assert target == [14, 6]

    def verifier(model, x, labels):
        keep = (labels == 1) | (torch.arange(labels.shape[1]) % 2 == 0)
        return Verdict(labels, keep.to(torch.float64))

    config = LoopConfig(generations=5, n_real=n, n_synthetic=n, replicates=1, synthetic_labels="real_shares",
                        curation=CurationConfig(rule="confidence", threshold=0.5, redraw=False))
    result = simulate(data=data, model=ClassGaussianModel(2, 1, replicates=1), config=config, seed=0,
                      measure=counts_measure(2), verifier=verifier)
    counts = np.stack([result.values(f"count/{k}")[:, 0] for k in range(2)], axis=-1)  # (G, K): each training set
    assert counts[0].tolist() == target  # the real draw
    assert counts[1:].tolist() == [[7, 6]] * 4  # the curated synthetic sets
    assert (counts <= target).all()

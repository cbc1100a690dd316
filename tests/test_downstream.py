"""Downstream fairness: the downstream classifier's config, its sliced evaluation against a hand
count, each classifier-side remedy on a case built to need it, the loop's ``down_*`` keys, and
the MinDiff case study (``genfair.fairness.run_downstream_mindiff``, study downstream_mindiff)
end to end."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from genfair.data import DigitsData
from genfair.errors import ConfigError
from genfair.estimators import EstimatorConfig, build_fit
from genfair.evaluation import EvaluationConfig, ImageEvaluation
from genfair.fairness import (
    DownstreamArm,
    DownstreamConfig,
    DownstreamMindiffConfig,
    evaluate_slices,
    false_positive_rate,
    grad_reverse,
    run_downstream_mindiff,
    similarity_correlation,
    train_downstream,
)
from genfair.models import ModelCapabilities, VAEConfig, build_model
from genfair.studies import STUDIES, run_study
from genfair.loops import LoopConfig, simulate


# ------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(remedy="dro"), ["remedy", "'dro'", "mindiff", "parade"]),
        (dict(interval="poisson"), ["interval", "'poisson'", "jackknife"]),
        (dict(thresholds=[0.5, 1.2]), ["thresholds", "1.2"]),
        (dict(positive=[]), ["positive", "[]"]),
        (dict(steps=0), ["steps", "positive integer", "0"]),
        (dict(buckets=1), ["buckets", ">= 2", "1"]),
        (dict(mindiff_kernel="cosine"), ["mindiff_kernel", "'cosine'", "laplacian"]),
        (dict(lr=0), ["lr", "> 0", "0"]),
        (dict(adversary_strength=-1.0), ["adversary_strength", ">= 0", "-1.0"]),
        (dict(level=1.5), ["level", "(0, 1)", "1.5"]),
        (dict(decision_threshold=0.0), ["decision_threshold", "(0, 1)"]),
    ],
)
def test_downstream_config_names_the_bad_key(kwargs, words):
    with pytest.raises(ConfigError) as raised:
        DownstreamConfig(**kwargs)
    message = str(raised.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_downstream_config_thresholds_include_the_decision_threshold():
    assert DownstreamConfig(thresholds=[0.3, 0.7], decision_threshold=0.45).all_thresholds == [0.3, 0.45, 0.7]
    assert len(DownstreamConfig().all_thresholds) == 9  # 0.5 is among Fairness Indicators' 0.1..0.9


def test_unknown_positive_or_sensitive_class_is_refused():
    x, classes = torch.rand(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    for kwargs, word in ((dict(positive=["7"]), "positive"), (dict(sensitive="7"), "sensitive")):
        with pytest.raises(ConfigError, match=word):
            train_downstream(x, classes, class_names=["a", "b", "c"], config=DownstreamConfig(steps=1, **kwargs),
                             generator=torch.Generator().manual_seed(0))


# --------------------------------------------------------------------------------- slices
def test_slice_metrics_equal_a_hand_counted_confusion_matrix():
    """Slice a: labels 1 1 0 0 0, scores .9 .3 .6 .2 .1 -> at 0.5: TP 1, FN 1, FP 1, TN 2;
    slice b: labels 0 0 0 (no positives), scores .7 .4 .8 -> FP 2, TN 1; TPR and FNR undefined."""
    scores = torch.tensor([0.9, 0.3, 0.6, 0.2, 0.1, 0.7, 0.4, 0.8])
    y = torch.tensor([1, 1, 0, 0, 0, 0, 0, 0])
    groups = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1])
    report = evaluate_slices(scores, y, groups, group_names=["a", "b"], thresholds=[0.5], min_slice_size=4)
    v = report.values
    assert v["accuracy@0.5"] == pytest.approx({"all": 4 / 8, "a": 3 / 5, "b": 1 / 3})
    assert v["fpr@0.5"] == pytest.approx({"all": 3 / 6, "a": 1 / 3, "b": 2 / 3})
    assert v["tpr@0.5"]["a"] == pytest.approx(1 / 2) and v["fnr@0.5"]["a"] == pytest.approx(1 / 2)
    assert math.isnan(v["tpr@0.5"]["b"]) and math.isnan(v["fnr@0.5"]["b"])
    # gaps to the best slice: lowest FPR is a's
    assert report.gaps["fpr@0.5"] == pytest.approx({"a": 0.0, "b": 1 / 3, "all": 1 / 3})
    assert report.gaps["accuracy@0.5"] == pytest.approx({"a": 0.0, "b": 3 / 5 - 1 / 3, "all": 3 / 5 - 1 / 3})
    assert report.sizes == {"all": 8, "a": 5, "b": 3}
    assert report.small == {"a": False, "b": True}
    # at 0.25 slice a's 0.3 becomes a true positive
    assert evaluate_slices(scores, y, groups, group_names=["a", "b"], thresholds=[0.25]).values["tpr@0.25"]["a"] == 1.0


def test_slice_report_flattens_to_loop_keys_with_intervals():
    g = torch.Generator().manual_seed(0)
    groups = torch.arange(3).repeat_interleave(40)
    y = (groups == 2).long()
    scores = torch.rand(120, generator=g)
    report = evaluate_slices(scores, y, groups, group_names=["x", "y", "z"], thresholds=[0.5], bootstrap=50,
                             min_slice_size=50, generator=torch.Generator().manual_seed(1))
    values, intervals = report.flat("down_")
    for key in ("down_fpr@0.5/x", "down_fpr@0.5/all", "down_fpr_gap@0.5/all", "down_accuracy@0.5/z", "down_tpr@0.5/z"):
        assert key in values and key in intervals
        lo, hi = intervals[key]
        assert lo <= values[key] + 1e-12 and values[key] <= hi + 1e-12
    assert math.isnan(values["down_fpr@0.5/z"]) and math.isnan(intervals["down_fpr@0.5/z"][0])  # no negatives in z
    assert values["down_slice_size/x"] == 40 and values["down_small_slice/x"] == 1.0


def test_slice_intervals_by_jackknife():
    g = torch.Generator().manual_seed(2)
    groups = torch.arange(2).repeat_interleave(100)
    y = (torch.rand(200, generator=g) < 0.5).long()
    scores = torch.rand(200, generator=g)
    report = evaluate_slices(scores, y, groups, group_names=["a", "b"], thresholds=[0.5], interval="jackknife")
    ci = report.intervals["accuracy@0.5"]["a"]
    a = report.values["accuracy@0.5"]["a"]
    assert (ci.lo + ci.hi) / 2 == pytest.approx(a)
    # binomial se of 100 samples; the jackknife's 19-dof variance estimate scatters by ~16 % (40 %: 2.5 sigma)
    assert (ci.hi - ci.lo) / 2 == pytest.approx(1.96 * math.sqrt(a * (1 - a) / 100), rel=0.4)


# -------------------------------------------------------------------------------- remedies
def _attribute_case(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Four classes p0, p1, n0, n1 (label p/n, attribute 0/1, independent, equally frequent) in 8-D:
    coordinate 0 carries the label (+-1.5), coordinate 1 the attribute (+-3), the rest is noise."""
    classes = torch.randint(4, (n,), generator=generator)
    x = torch.randn(n, 8, generator=generator)
    x[:, 0] += torch.where(classes < 2, 1.5, -1.5)
    x[:, 1] += torch.where(classes % 2 == 0, 3.0, -3.0)
    return x, classes


ATTRIBUTE_NAMES = ["p0", "p1", "n0", "n1"]
ATTRIBUTE_BASE = dict(positive=["p0", "p1"], hidden=32, steps=300, lr=1e-2, batch_size=64)


def _train(x, classes, names, **kwargs):
    config = DownstreamConfig(**{**ATTRIBUTE_BASE, **kwargs}) if names is ATTRIBUTE_NAMES else DownstreamConfig(**kwargs)
    return train_downstream(x, classes, class_names=names, config=config, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def attribute_data():
    g = torch.Generator().manual_seed(0)
    return _attribute_case(800, g), _attribute_case(800, g)


def _probe_accuracy(train_h, train_bit, test_h, test_bit) -> float:
    """A linear probe (logistic regression, 300 Adam steps) for the attribute bit on frozen features."""
    torch.manual_seed(0)
    mean, std = train_h.mean(0), train_h.std(0) + 1e-6
    probe = torch.nn.Linear(train_h.shape[1], 1)
    optimiser = torch.optim.Adam(probe.parameters(), lr=0.05)
    for _ in range(300):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(probe((train_h - mean) / std).squeeze(-1), train_bit)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        return float(((probe((test_h - mean) / std).squeeze(-1) > 0).float() == test_bit).float().mean())


def test_training_is_deterministic_and_leaves_the_global_rng_alone(attribute_data):
    (x, classes), _ = attribute_data
    state = torch.random.get_rng_state()
    a = _train(x, classes, ATTRIBUTE_NAMES, steps=20)
    b = _train(x, classes, ATTRIBUTE_NAMES, steps=20)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))


def test_spectral_decoupling_shrinks_the_logits(attribute_data):
    (x, classes), (x_test, _) = attribute_data
    plain = _train(x, classes, ATTRIBUTE_NAMES)
    decoupled = _train(x, classes, ATTRIBUTE_NAMES, remedy="spectral_decoupling", spectral_lambda=1.0)
    with torch.no_grad():
        norms = [float(m.model(x_test).square().mean().sqrt()) for m in (plain, decoupled)]
    assert norms[1] < 0.5 * norms[0], norms


def test_gradient_reversal_is_the_identity_forwards_and_flips_the_gradient():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x.detach())
    (2 * y).sum().backward()
    assert x.grad.tolist() == pytest.approx([-0.6, -0.6])


def test_adversary_hides_the_attribute_from_a_probe(attribute_data):
    """A linear probe reads the attribute off the plain classifier's representation almost
    perfectly (0.98); after adversarial training it does worse (0.92 measured: a modest effect).
    800 test points: near 0.95 a probe accuracy's binomial se is under 0.008, the difference's
    under 0.011, so the required drop of 0.04 is over 3.5 se."""
    (x, classes), (x_test, classes_test) = attribute_data
    bit, bit_test = (classes % 2).float(), (classes_test % 2).float()
    accuracies = {}
    for remedy in ("none", "adversary"):
        trained = _train(x, classes, ATTRIBUTE_NAMES, remedy=remedy, adversary_strength=1.0)
        with torch.no_grad():
            h, h_test = trained.model.representation(x), trained.model.representation(x_test)
        accuracies[remedy] = _probe_accuracy(h, bit, h_test, bit_test)
        label_accuracy = float(((trained.model.scores(x_test) >= 0.5).long() == (classes_test < 2).long()).float().mean())
        assert label_accuracy > 0.8, (remedy, label_accuracy)  # the task itself is still learned
    assert accuracies["none"] > 0.95 and accuracies["adversary"] < accuracies["none"] - 0.04, accuracies


def test_parade_decorrelates_the_target_similarity_from_the_attribute(attribute_data):
    """Among test points of one label (so the label's own structure does not dominate), the
    correlation between the representation's cosine similarities and the attribute's (same
    attribute: 1, else 0) drops below half the plain classifier's. Both are small (0.026 and
    0.011 measured: cosine similarities of ReLU features carry little of the attribute to begin
    with), and both are measured on the same points, so the comparison is paired; it is a
    seeded regression check more than a statistical one."""
    (x, classes), (x_test, classes_test) = attribute_data
    keep = classes_test < 2  # the positives p0, p1
    attribute = torch.nn.functional.one_hot(classes_test[keep] % 2).float()
    correlations = {}
    for remedy in ("none", "parade"):
        trained = _train(x, classes, ATTRIBUTE_NAMES, remedy=remedy, parade_strength=5.0)
        with torch.no_grad():
            correlations[remedy] = float(similarity_correlation(trained.model.representation(x_test[keep]), attribute))
    assert correlations["none"] > 0.01 and correlations["parade"] < 0.5 * correlations["none"], correlations


def test_similarity_correlation_by_construction():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    assert float(similarity_correlation(a, a)) == pytest.approx(1.0)
    assert float(similarity_correlation(a, torch.ones(3, 2))) == pytest.approx(0.0, abs=1e-6)  # constant similarity


def _imbalanced_case(n_major: int, n_rare: int, n_pos: int, generator: torch.Generator):
    """Classes pos (label 1) near (2, 0), major (label 0) near (-2, 0) and a rare negative class
    near (1, 2.5), closer to the positives than to the other negatives: a classifier trained on few
    rare examples calls many of them positive."""
    centres = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [1.0, 2.5]])
    classes = torch.cat([torch.full((n,), k) for k, n in enumerate((n_pos, n_major, n_rare))])
    x = centres[classes] + torch.randn(len(classes), 2, generator=generator)
    return x, classes


def test_mindiff_lowers_the_fpr_gap_of_a_rare_negative_slice():
    """Held-out: 1000 rare and 1000 major negatives, so each FPR's se is under 0.016 and a gap's
    under 0.023; MinDiff must lower the gap by more than 0.1 (over 4 se of the difference)."""
    g = torch.Generator().manual_seed(3)
    x, classes = _imbalanced_case(400, 8, 400, g)
    x_test, classes_test = _imbalanced_case(1000, 1000, 1000, g)
    names = ["pos", "major", "rare"]
    gaps = {}
    for remedy in ("none", "mindiff"):
        config = DownstreamConfig(positive=["pos"], sensitive="rare", hidden=16, steps=300, lr=1e-2, remedy=remedy,
                                  mindiff_weight=5.0)
        trained = train_downstream(x, classes, class_names=names, config=config, generator=torch.Generator().manual_seed(4))
        assert trained.mindiff_label == (0 if remedy == "mindiff" else None)
        scores = trained.model.scores(x_test)
        y = (classes_test == 0).long()
        fpr = {k: false_positive_rate(y[classes_test == k], scores[classes_test == k], threshold=0.5) for k in (1, 2)}
        gaps[remedy] = fpr[2] - fpr[1]
    assert gaps["none"] > 0.2 and gaps["mindiff"] < gaps["none"] - 0.1, gaps


def test_mindiff_matches_positives_when_the_sensitive_slice_has_no_negatives():
    x, classes = torch.rand(30, 3), torch.tensor([0] * 10 + [1] * 10 + [2] * 10)
    config = DownstreamConfig(positive=["a", "b"], sensitive="a", steps=2, remedy="mindiff")
    trained = train_downstream(x, classes, class_names=["a", "b", "c"], config=config, generator=torch.Generator().manual_seed(0))
    assert trained.mindiff_label == 1


# ------------------------------------------------------------------------------ integration
def test_the_loop_adds_downstream_keys_with_finite_intervals():
    data = DigitsData(classes=[3, 6, 8], proportions=[0.6, 0.3, 0.1])
    downstream = DownstreamConfig(enabled=True, positive=["3"], steps=100, bootstrap=20, thresholds=[0.5],
                                  min_slice_size=45)
    config = EvaluationConfig(samples=60, bootstrap=10, grid=0, downstream=downstream)
    evaluation = ImageEvaluation.prepare(data, config, conditional=True)
    torch.manual_seed(0)
    model = build_model(VAEConfig(hidden=[32], latent_dim=4), sample_shape=data.sample_shape, num_classes=3)
    fit = build_fit(EstimatorConfig(steps=3, lr=1e-3, batch_size=16), sample_shape=data.sample_shape,
                    model=ModelCapabilities(positive={}, per_replicate=False, closed_form=False, adversarial=False, num_classes=3))
    loop = LoopConfig(generations=2, n_real=60, n_synthetic=60, replicates=1)
    result = simulate(data=data, model=model, config=loop, seed=0, measure=evaluation.measure, fit=fit)
    record = result.records[-1]
    for name in ("3", "6", "8", "all"):
        assert f"down_accuracy@0.5/{name}" in record.values and f"down_slice_size/{name}" in record.values
        lo, hi = record.intervals[f"down_accuracy@0.5/{name}"]
        assert math.isfinite(lo) and math.isfinite(hi) and lo <= hi
    lo, hi = record.intervals["down_fpr_gap@0.5/all"]  # 6 and 8 are the negatives
    assert math.isfinite(lo) and math.isfinite(hi)
    assert math.isnan(float(record.values["down_fpr@0.5/3"][0]))  # 3 is positive: no false positives defined
    for name in ("3", "6", "8"):  # the flag follows the held-out size (about 45 per digit) and min_slice_size
        small = float(record.values[f"down_slice_size/{name}"][0]) < downstream.min_slice_size
        assert float(record.values[f"down_small_slice/{name}"][0]) == float(small)

def test_downstream_disabled_changes_nothing():
    data = DigitsData(classes=[3, 6], proportions=[0.8, 0.2])
    values = []
    for enabled in (False, True):
        config = EvaluationConfig(samples=60, bootstrap=10, grid=0,
                                  downstream=DownstreamConfig(enabled=enabled, steps=5, bootstrap=5))
        evaluation = ImageEvaluation.prepare(data, config, conditional=True)
        torch.manual_seed(0)
        model = build_model(VAEConfig(hidden=[16], latent_dim=2), sample_shape=data.sample_shape, num_classes=2)
        measurement = evaluation.measure(model, data.draw(1, 40, generator=torch.Generator().manual_seed(0)),
                                         torch.Generator().manual_seed(1))
        values.append(measurement.values)
    assert not any(k.startswith("down_") for k in values[0])
    assert all(torch.equal(v, values[1][k]) for k, v in values[0].items())  # the other metrics are unchanged


def test_bad_downstream_classes_fail_when_the_evaluation_is_built():
    data = DigitsData(classes=[3, 6], proportions=[0.8, 0.2])
    config = EvaluationConfig(samples=60, bootstrap=10, grid=0, downstream=DownstreamConfig(enabled=True, positive=["7"]))
    with pytest.raises(ConfigError, match="downstream.positive"):
        ImageEvaluation.prepare(data, config, conditional=True)


# ------------------------------------------------------------------------------------ study
def test_downstream_mindiff_study_end_to_end(tmp_path):
    config = DownstreamMindiffConfig(
        replicates=2, bootstrap=20, n_train=300, classifier=DownstreamConfig(steps=30, hidden=16),
        arms={"baseline": DownstreamArm(), "mindiff": DownstreamArm(remedy="mindiff")},
        threshold_grid=[0.3, 0.5, 0.7],
    )
    assert STUDIES["downstream_mindiff"].config is DownstreamMindiffConfig
    assert STUDIES["downstream_mindiff"].runner() is run_downstream_mindiff
    summary = run_study(config, seed=0, run_dir=tmp_path)
    assert summary["status"] == "complete" and summary["study"] == "downstream_mindiff"
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "complete"
    assert summary["files"] == ["fpr_by_slice.csv", "figures/fpr_by_slice.png"]
    results = summary["results"]
    assert (tmp_path / "figures" / "fpr_by_slice.png").stat().st_size > 0
    with open(tmp_path / "fpr_by_slice.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["arm"] for r in rows} == {"baseline", "mindiff"} and {r["rule"] for r in rows} == {"decision", "matched"}
    gaps = [r for r in rows if r["metric"] == "fpr_gap_to_rest"]
    assert len(gaps) == 2 * 2 * 2 and all(float(r["lo"]) <= float(r["value"]) + 1e-12 <= float(r["hi"]) + 2e-12 for r in gaps)
    entry = results["replicates"][0]["arms"]["mindiff"]["matched"]
    assert entry["threshold"] in (0.3, 0.5, 0.7) and set(entry["fpr"]) == {"0", "2", "4", "6", "8"}
    assert results["replicates"][0]["arms"]["baseline"]["decision"]["gap_reduction"]["value"] == 0.0


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(sensitive="3"), ["sensitive", "negative digit", "'3'"]),
        (dict(sensitive_share=0.5), ["sensitive_share", "0.5"]),
        (dict(arms={"md": DownstreamArm(remedy="mindiff")}), ["baseline"]),
        (dict(arms={"baseline": DownstreamArm(), "x": DownstreamArm(remedy="dro")}), ["arms.x.remedy", "'dro'"]),
    ],
)
def test_downstream_mindiff_config_names_the_bad_key(kwargs, words):
    with pytest.raises(ConfigError) as raised:
        DownstreamMindiffConfig(**kwargs)
    assert all(word in str(raised.value) for word in words), str(raised.value)

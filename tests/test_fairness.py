"""genfair.fairness: the MinDiff MMD² against its published formula, Kamiran–Calders reweighing,
and the MetricFrame's shapes, stratified-bootstrap and jackknife intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genfair.errors import ConfigError
from genfair.fairness import Interval, MetricFrame, jackknife_buckets, jackknife_se, mmd2, reweighing_factors


def _brute_mmd2(x, y, kernel, length):
    """The published formula, term by term in NumPy (biased: diagonal included, no square root)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def k(a, b):
        distance = np.sqrt(((a - b) ** 2).sum())
        return math.exp(-(distance**2) / length**2) if kernel == "gaussian" else math.exp(-distance / length)

    xx = sum(k(a, b) for a in x for b in x) / len(x) ** 2
    yy = sum(k(a, b) for a in y for b in y) / len(y) ** 2
    xy = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    return xx + yy - 2 * xy


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian"])
@pytest.mark.parametrize("length", [0.1, 0.7])
def test_mmd2_equals_the_published_formula_on_fixed_inputs(kernel, length):
    x = torch.tensor([[0.10, 0.2], [0.30, 0.1], [0.25, 0.4]], dtype=torch.float64)
    y = torch.tensor([[0.20, 0.3], [0.60, 0.5]], dtype=torch.float64)
    assert float(mmd2(x, y, kernel=kernel, length=length)) == pytest.approx(_brute_mmd2(x, y, kernel, length), rel=1e-12)


def test_mmd2_is_zero_for_identical_samples_positive_otherwise_and_differentiable():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(20, 1, generator=g, dtype=torch.float64, requires_grad=True)
    assert float(mmd2(x.detach(), x.detach().clone())) == pytest.approx(0.0, abs=1e-12)
    y = torch.rand(30, 1, generator=g, dtype=torch.float64) + 0.3
    value = mmd2(x, y)
    assert value.dim() == 0 and float(value.detach()) > 0
    value.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    z = torch.zeros(4, 1, requires_grad=True)  # coincident points: the Laplacian's gradient stays finite
    mmd2(z, torch.ones(3, 1), kernel="laplacian").backward()
    assert torch.isfinite(z.grad).all()


def test_mmd2_reads_one_dimensional_predictions_as_columns():
    p, q = torch.tensor([0.1, 0.9, 0.4]), torch.tensor([0.2, 0.8])
    assert float(mmd2(p, q)) == pytest.approx(float(mmd2(p[:, None], q[:, None])))


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: mmd2(torch.zeros(2, 1), torch.zeros(2, 1), kernel="cosine"), ["kernel", "'cosine'", "gaussian"]),
        (lambda: mmd2(torch.zeros(2, 1), torch.zeros(2, 1), length=0), ["length", "0"]),
        (lambda: mmd2(torch.zeros(2, 1), torch.zeros(2, 3)), ["columns", "(2, 3)"]),
        (lambda: mmd2(torch.zeros(0, 1), torch.zeros(2, 1)), ["x", "(0, 1)"]),
    ],
)
def test_mmd2_names_the_bad_argument(call, words):
    with pytest.raises(ConfigError) as raised:
        call()
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_reweighing_factors_make_group_and_label_independent():
    g = torch.Generator().manual_seed(1)
    groups = (torch.rand(400, generator=g) < 0.3).long()
    labels = (torch.rand(400, generator=g) < torch.where(groups == 1, 0.2, 0.7)).long()
    w = reweighing_factors(groups, labels)
    assert w.shape == (400,) and w.dtype == torch.float64
    total = w.sum()
    for a in (0, 1):
        for b in (0, 1):
            joint = w[(groups == a) & (labels == b)].sum() / total
            marginal = (w[groups == a].sum() / total) * (w[labels == b].sum() / total)
            assert float(joint) == pytest.approx(float(marginal), abs=1e-12)
    assert float(total) == pytest.approx(400.0)  # every (group, label) cell occurs


def test_reweighing_factors_by_hand_and_bad_input():
    assert reweighing_factors(torch.tensor([0, 0, 0, 1]), torch.tensor([1, 1, 0, 0])).tolist() == [0.75, 0.75, 1.5, 0.5]
    with pytest.raises(ConfigError, match="same shape"):
        reweighing_factors(torch.tensor([0, 1]), torch.tensor([0, 1, 1]))
    with pytest.raises(ConfigError, match="integer codes"):
        reweighing_factors(torch.tensor([0.5, 1.0]), torch.tensor([0, 1]))


def _accuracy(t, p):
    return float((t == p).double().mean())


def _fpr(t, p):
    negatives = t == 0
    return float((p[negatives] == 1).double().mean()) if bool(negatives.any()) else math.nan


def test_metric_frame_values_by_hand():
    t = torch.tensor([0, 1, 0, 1, 0, 0])
    p = torch.tensor([1, 1, 0, 0, 0, 1])
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    frame = MetricFrame({"accuracy": _accuracy, "fpr": _fpr}, y_true=t, y_pred=p, groups=groups, group_names=["a", "b"])
    assert frame.overall == {"accuracy": pytest.approx(3 / 6), "fpr": pytest.approx(2 / 4)}
    assert frame.by_group["accuracy"] == {"a": pytest.approx(2 / 3), "b": pytest.approx(1 / 3)}
    assert frame.by_group["fpr"] == {"a": pytest.approx(1 / 2), "b": pytest.approx(1 / 2)}
    assert frame.difference()["accuracy"] == pytest.approx(1 / 3)
    assert frame.ratio()["accuracy"] == pytest.approx(0.5)
    assert frame.difference("to_overall")["accuracy"] == pytest.approx(1 / 6)
    # The smallest ratio of a group's value to the overall one: b's (1/3)/(1/2) = 2/3, not a's (1/2)/(2/3) = 3/4.
    assert frame.ratio("to_overall") == {"accuracy": pytest.approx(2 / 3), "fpr": pytest.approx(1.0)}
    assert frame.gap_to_best()["accuracy"] == {"a": 0.0, "b": pytest.approx(1 / 3)}
    assert frame.sizes == {"a": 3, "b": 3}


def test_metric_frame_keeps_its_shape_for_an_empty_group_and_a_tiny_one():
    """A group without samples is NaN, not missing; a 2-sample group is never lost by a resample."""
    g = torch.Generator().manual_seed(2)
    t = (torch.rand(200, generator=g) < 0.5).long()
    p = torch.where(torch.rand(200, generator=g) < 0.8, t, 1 - t)
    groups = torch.zeros(200, dtype=torch.long)
    groups[:2] = 1  # a 2-sample group; group 2 has no samples
    frame = MetricFrame({"accuracy": _accuracy}, y_true=t, y_pred=p, groups=groups, group_names=["big", "tiny", "none"],
                        bootstrap=200, generator=torch.Generator().manual_seed(3))
    assert set(frame.by_group["accuracy"]) == {"big", "tiny", "none"}
    assert math.isnan(frame.by_group["accuracy"]["none"])
    ci = frame.by_group_ci["accuracy"]
    assert set(ci) == {"big", "tiny", "none"} and not math.isnan(ci["tiny"].lo)
    assert math.isnan(ci["none"].lo) and math.isnan(ci["none"].hi)
    assert not math.isnan(frame.difference_ci()["accuracy"].lo)


def test_metric_frame_interval_covers_the_binomial_spread():
    """The stratified bootstrap interval of a group's accuracy has the binomial width
    2 * 1.96 * sqrt(a (1 - a) / n) (within 25 %: the percentile width of 400 resamples scatters by ~6 %)."""
    g = torch.Generator().manual_seed(4)
    n = 400
    t = (torch.rand(n, generator=g) < 0.5).long()
    p = torch.where(torch.rand(n, generator=g) < 0.7, t, 1 - t)
    frame = MetricFrame({"accuracy": _accuracy}, y_true=t, y_pred=p, groups=torch.zeros(n, dtype=torch.long),
                        group_names=["all"], bootstrap=400, generator=torch.Generator().manual_seed(5))
    a = frame.overall["accuracy"]
    ci = frame.overall_ci["accuracy"]
    assert ci.lo < a < ci.hi
    assert ci.hi - ci.lo == pytest.approx(2 * 1.96 * math.sqrt(a * (1 - a) / n), rel=0.25)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(groups=torch.tensor([0, 2])), ["groups", "[0, 2)"]),
        (dict(y_pred=torch.tensor([1])), ["one entry per sample"]),
        (dict(group_names=["a", "a"]), ["group_names", "unique"]),
        (dict(bootstrap=10), ["generator"]),
    ],
)
def test_metric_frame_names_the_bad_argument(kwargs, words):
    base = dict(y_true=torch.tensor([0, 1]), y_pred=torch.tensor([0, 1]), groups=torch.tensor([0, 1]), group_names=["a", "b"])
    with pytest.raises(ConfigError) as raised:
        MetricFrame({"accuracy": _accuracy}, **{**base, **kwargs})
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_metric_frame_jackknife_by_hand():
    """Two buckets dealt round-robin within each group: group a = samples 0-3 (buckets 0, 1, 0, 1),
    group b = samples 4-5 (buckets 0, 1). Leaving bucket 0 out keeps samples 1, 3, 5; leaving
    bucket 1 out keeps 0, 2, 4. se^2 = (B - 1) / B * sum_b (theta_b - mean)^2, interval theta -+ z se."""
    t = torch.tensor([1, 0, 1, 1, 0, 1])
    p = torch.tensor([1, 0, 0, 1, 0, 0])
    groups = torch.tensor([0, 0, 0, 0, 1, 1])
    frame = MetricFrame({"accuracy": _accuracy}, y_true=t, y_pred=p, groups=groups, group_names=["a", "b"],
                        interval="jackknife", buckets=2)
    z = 1.959963984540054
    # a: leave-one-out accuracies 1 (samples 1, 3) and 1/2 (samples 0, 2): mean 3/4, se^2 = 1/2 * 2 * 1/16
    ci_a = frame.by_group_ci["accuracy"]["a"]
    assert (ci_a.lo, ci_a.hi) == (pytest.approx(0.75 - z * 0.25), pytest.approx(0.75 + z * 0.25))
    # b: 0 (sample 5) and 1 (sample 4): se^2 = 1/2 * (1/4 + 1/4), se = 1/2
    ci_b = frame.by_group_ci["accuracy"]["b"]
    assert (ci_b.lo, ci_b.hi) == (pytest.approx(0.5 - z * 0.5), pytest.approx(0.5 + z * 0.5))
    # overall: 2/3 in both replicates, se = 0
    assert frame.overall_ci["accuracy"] == Interval(pytest.approx(4 / 6), pytest.approx(4 / 6))
    # the difference itself: replicates |1 - 0| = 1 and |1/2 - 1| = 1/2, point 3/4 - 1/2
    ci_d = frame.difference_ci()["accuracy"]
    assert (ci_d.lo, ci_d.hi) == (pytest.approx(0.25 - z * 0.25), pytest.approx(0.25 + z * 0.25))
    assert frame.derived_ci(lambda o, g: abs(g["accuracy"]["a"] - g["accuracy"]["b"])) == ci_d
    assert jackknife_se(torch.tensor([1.0, 0.5])) == pytest.approx(0.25)


def test_jackknife_buckets_split_every_group_evenly():
    groups = torch.tensor([0] * 45 + [1] * 7)
    bucket = jackknife_buckets(groups, 2, 20, generator=torch.Generator().manual_seed(0))
    for k, size in ((0, 45), (1, 7)):
        counts = torch.bincount(bucket[groups == k], minlength=20)
        assert int(counts.sum()) == size and int(counts.max() - counts.min()) <= 1


def test_jackknife_interval_has_the_binomial_width():
    """For a mean, the delete-one-bucket jackknife se is the grouped-data standard error:
    with n = 400 in 20 buckets of 20, sqrt(a (1 - a) / n) within the sampling spread of a
    19-degree-of-freedom variance estimate (its se is about 16 %: 40 % tolerance is 2.5 sigma)."""
    g = torch.Generator().manual_seed(6)
    n = 400
    t = (torch.rand(n, generator=g) < 0.5).long()
    p = torch.where(torch.rand(n, generator=g) < 0.7, t, 1 - t)
    frame = MetricFrame({"accuracy": _accuracy}, y_true=t, y_pred=p, groups=torch.zeros(n, dtype=torch.long),
                        group_names=["all"], interval="jackknife", generator=torch.Generator().manual_seed(7))
    a = frame.overall["accuracy"]
    ci = frame.overall_ci["accuracy"]
    assert (ci.lo + ci.hi) / 2 == pytest.approx(a)
    assert ci.hi - ci.lo == pytest.approx(2 * 1.96 * math.sqrt(a * (1 - a) / n), rel=0.4)


def test_gap_to_best_ci_rechooses_the_best_group():
    g = torch.Generator().manual_seed(8)
    groups = torch.tensor([0] * 100 + [1] * 100)
    t = torch.ones(200, dtype=torch.long)
    p = torch.where(torch.rand(200, generator=g) < torch.where(groups == 0, 0.9, 0.6), 1, 0)
    frame = MetricFrame({"accuracy": _accuracy}, y_true=t, y_pred=p, groups=groups, group_names=["a", "b"],
                        bootstrap=200, generator=torch.Generator().manual_seed(9))
    gap = frame.gap_to_best()["accuracy"]
    ci = frame.gap_to_best_ci()["accuracy"]
    assert ci["b"].lo <= gap["b"] <= ci["b"].hi and ci["b"].lo > 0
    assert ci["a"].lo == 0.0  # a is the best group in (nearly) every resample


def test_metric_frame_refuses_a_bad_interval():
    base = dict(y_true=torch.tensor([0, 1]), y_pred=torch.tensor([0, 1]), groups=torch.tensor([0, 1]), group_names=["a", "b"])
    with pytest.raises(ConfigError, match="interval must be one of"):
        MetricFrame({"accuracy": _accuracy}, interval="poisson", **base)
    with pytest.raises(ConfigError, match="buckets must be an integer >= 2, got 1"):
        MetricFrame({"accuracy": _accuracy}, interval="jackknife", buckets=1, **base)

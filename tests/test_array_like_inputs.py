"""The public functions of genfair.fairness and genfair.metrics take what scikit-learn and
Fairlearn take: NumPy arrays and lists give the same results as tensors; input that is not an
array of numbers is refused naming the argument."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from genfair.errors import ConfigError
from genfair.fairness import (
    MetricFrame,
    accuracy_at,
    binary_target,
    evaluate_slices,
    false_negative_rate,
    false_positive_rate,
    jackknife_buckets,
    jackknife_se,
    mmd2,
    reweighing_factors,
    true_positive_rate,
)
from genfair.metrics import (
    corrected_shares,
    fairness_discrepancy,
    frechet_distance,
    gaussian_w2_sq,
    kid,
    percentile_interval,
    prdc,
    raw_shares,
    representation_ratio,
    resample_confusion,
    stratified_resample,
)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.numpy()


def _list(t: torch.Tensor) -> list:
    return t.tolist()


FORMS = [pytest.param(_numpy, id="numpy"), pytest.param(_list, id="list")]

GROUPS = torch.tensor([0, 0, 0, 1, 1, 1, 1, 0])
LABELS = torch.tensor([1, 1, 0, 0, 1, 0, 0, 1])
SCORES = torch.tensor([0.9, 0.6, 0.2, 0.4, 0.8, 0.1, 0.7, 0.3], dtype=torch.float64)
FEATURES = torch.randn(40, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
CONFUSION = torch.tensor([[9.0, 1.0], [2.0, 8.0]], dtype=torch.float64)


def _same(a: object, b: object) -> None:
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(torch.as_tensor(b), a, check_dtype=False, equal_nan=True)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _same(a[key], b[key])
    elif dataclasses.is_dataclass(a):
        _same(dataclasses.astuple(a), dataclasses.astuple(b))
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert a == pytest.approx(b, nan_ok=True)


@pytest.mark.parametrize("form", FORMS)
def test_fairness_functions_take_arrays_and_lists(form):
    _same(reweighing_factors(GROUPS, LABELS), reweighing_factors(form(GROUPS), form(LABELS)))
    _same(mmd2(SCORES[:4], SCORES[4:]), mmd2(form(SCORES[:4]), form(SCORES[4:])))
    for rate in (accuracy_at, false_positive_rate, true_positive_rate, false_negative_rate):
        _same(rate(LABELS, SCORES, threshold=0.5), rate(form(LABELS), form(SCORES), threshold=0.5))
    _same(binary_target(GROUPS, ["a", "b"], ["b"]), binary_target(form(GROUPS), ["a", "b"], ["b"]))
    _same(jackknife_buckets(GROUPS, 2, 2), jackknife_buckets(form(GROUPS), 2, 2))
    _same(jackknife_se(SCORES), jackknife_se(form(SCORES)))


@pytest.mark.parametrize("form", FORMS)
def test_metric_frame_and_slices_take_arrays_and_lists(form):
    def accuracy(t, p):
        return float((t == p).double().mean())

    y_pred = (SCORES >= 0.5).long()
    frame = MetricFrame({"accuracy": accuracy}, y_true=LABELS, y_pred=y_pred, groups=GROUPS, group_names=["a", "b"])
    other = MetricFrame(
        {"accuracy": accuracy}, y_true=form(LABELS), y_pred=form(y_pred), groups=form(GROUPS), group_names=["a", "b"]
    )
    _same(frame.by_group, other.by_group)
    _same(frame.overall, other.overall)
    options = {"group_names": ["a", "b"], "thresholds": [0.5], "bootstrap": 20}
    report = evaluate_slices(SCORES, LABELS, GROUPS, generator=torch.Generator().manual_seed(1), **options)
    again = evaluate_slices(form(SCORES), form(LABELS), form(GROUPS), generator=torch.Generator().manual_seed(1), **options)
    _same(report.values, again.values)
    _same(report.intervals, again.intervals)


@pytest.mark.parametrize("form", FORMS)
def test_metrics_take_arrays_and_lists(form):
    predicted = torch.tensor([0, 1, 1, 0, 0, 0, 1, 0, 0, 0])
    shares, target = torch.tensor([0.7, 0.3], dtype=torch.float64), torch.tensor([0.9, 0.1], dtype=torch.float64)
    _same(raw_shares(predicted, 2), raw_shares(form(predicted), 2))
    _same(corrected_shares(predicted, CONFUSION), corrected_shares(form(predicted), form(CONFUSION)))
    _same(representation_ratio(shares, target, group=1), representation_ratio(form(shares), form(target), group=1))
    _same(fairness_discrepancy(shares, target), fairness_discrepancy(form(shares), form(target)))
    _same(
        stratified_resample(GROUPS, 2, generator=torch.Generator().manual_seed(2), replicates=3),
        stratified_resample(form(GROUPS), 2, generator=torch.Generator().manual_seed(2), replicates=3),
    )
    _same(
        resample_confusion(CONFUSION, generator=torch.Generator().manual_seed(3), replicates=2),
        resample_confusion(form(CONFUSION), generator=torch.Generator().manual_seed(3), replicates=2),
    )
    _same(percentile_interval(SCORES), percentile_interval(form(SCORES)))
    real, fake = FEATURES[:20], FEATURES[20:] + 0.5
    _same(frechet_distance(real, fake), frechet_distance(form(real), form(fake)))
    _same(kid(real, fake), kid(form(real), form(fake)))
    _same(prdc(real, fake, k=3), prdc(form(real), form(fake), k=3))
    eye = torch.eye(2, dtype=torch.float64)
    zero = torch.zeros(2, dtype=torch.float64)
    _same(gaussian_w2_sq(zero, eye, shares, 2 * eye), gaussian_w2_sq(form(zero), form(eye), form(shares), form(2 * eye)))


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: reweighing_factors([[0, 1], [0]], [0, 1]), ["groups", "ragged"]),
        (lambda: reweighing_factors(["a", "b"], [0, 1]), ["groups", "numbers", "<U1"]),
        (lambda: reweighing_factors([0, 1], [0.5, 1.0]), ["labels", "integer codes"]),
        (lambda: mmd2(None, [0.1]), ["x", "numbers", "NoneType"]),
        (lambda: raw_shares([[0, 1]], 2), ["predicted", "(n,)"]),
        (lambda: frechet_distance([[0.0, "a"]], [[0.0, 1.0]]), ["real_features", "numbers"]),
    ],
)
def test_input_that_is_not_an_array_of_numbers_is_refused_by_name(call, words):
    with pytest.raises(ConfigError) as error:
        call()
    assert all(word in str(error.value) for word in words), str(error.value)

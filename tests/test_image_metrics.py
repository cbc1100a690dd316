"""Feature-space fidelity metrics (PRDC, FD, KID), class-share correction, the stratified bootstrap and
``fidelity_metrics``: against the ``prdc`` package, scipy, closed forms, brute force and hand computations,
with statistical tolerances derived from the sample sizes."""

from __future__ import annotations

import contextlib
import io
import itertools
import math

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import torch

from genfair.errors import ConfigError
from genfair.metrics import (
    Estimate,
    corrected_shares,
    fairness_discrepancy,
    fidelity_metrics,
    frechet_distance,
    kid,
    percentile_interval,
    prdc,
    prdc_contributions,
    raw_shares,
    representation_ratio,
    resample_confusion,
    stratified_resample,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=gen(seed), dtype=torch.float64) + shift


# --- precision, recall, density, coverage -------------------------------------------------------


@pytest.mark.parametrize(("m", "n", "d", "k"), [(50, 60, 8, 5), (120, 80, 3, 3), (40, 40, 16, 1), (90, 200, 32, 10)])
def test_prdc_matches_the_reference_package(m, n, d, k):
    reference = pytest.importorskip("prdc")
    rng = np.random.default_rng(m + n + d + k)
    real = rng.standard_normal((m, d))
    fake = 0.8 * rng.standard_normal((n, d)) + 0.3
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the set sizes
        expected = reference.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    got = prdc(real, fake, k=k)  # numpy in, as the reference takes
    assert set(got) == {"precision", "recall", "density", "coverage"}
    for key, value in got.items():
        assert isinstance(value, float) and value == pytest.approx(float(expected[key]), abs=1e-6), key
    # float32 features are computed on in float64, so the only change is the inputs' rounding, by at
    # most 2^-24 of each coordinate: a distance or a radius moves by about 1e-7 of itself. A term
    # flips only where a real-fake distance lies that close to a radius; the smallest relative gap in
    # these cases is 2e-5 (checked below), so every value must be the same. (Rounding to bfloat16,
    # 2^-8, instead flips terms in all four cases.)
    radii = [np.sort(scipy.spatial.distance.cdist(x, x), axis=1)[:, k] for x in (real, fake)]
    cross = scipy.spatial.distance.cdist(real, fake)
    real_gap = (np.abs(cross - radii[0][:, None]) / radii[0][:, None]).min()
    fake_gap = (np.abs(cross - radii[1][None, :]) / radii[1][None, :]).min()
    assert min(real_gap, fake_gap) > 100 * 2**-24
    as_float32 = (torch.tensor(real, dtype=torch.float32), torch.tensor(fake, dtype=torch.float32))
    assert prdc(*as_float32, k=k) == {key: pytest.approx(value, abs=1e-12) for key, value in got.items()}


def test_prdc_of_identical_distributions_has_density_one_and_coverage_one_minus_two_to_minus_k():
    n, k = 2000, 5
    got = prdc(randn(n, 2, 0), randn(n, 2, 1), k=k)
    # Naeem et al. (2020): E[density] = 1; E[coverage] = 1 - prod_i (n - i)/(2n - i) (-> 1 - 2^-k).
    coverage = 1 - math.prod((n - i) / (2 * n - i) for i in range(1, k + 1))
    assert coverage == pytest.approx(1 - 2**-k, abs=1e-3)
    # Tolerances: 4 standard deviations, each 1.5x the independent-terms one to allow for the dependence
    # between neighbouring balls (measured across 100 seeds at d = 2: 1.25x for density, 1.4x for coverage).
    density_sd = 1.5 * math.sqrt(1 / (k * n))  # each fake sample lies in about Poisson(k) real balls
    coverage_sd = 1.5 * math.sqrt(coverage * (1 - coverage) / n)
    assert got["density"] == pytest.approx(1.0, abs=4 * density_sd)
    assert got["coverage"] == pytest.approx(coverage, abs=4 * coverage_sd)
    # A radius one neighbour short (a classic off-by-one) would be caught: its coverage is 1 - 2^-(k-1).
    assert abs((1 - 2 ** -(k - 1)) - coverage) > 4 * coverage_sd


def test_a_mode_collapsed_generator_has_high_precision_and_low_recall():
    centres = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]], dtype=torch.float64)
    real = randn(800, 2, 0) + centres.repeat_interleave(200, 0)  # four well-separated modes
    fake = randn(500, 2, 1) * 0.5 + centres[0]  # every sample near one mode
    got = prdc(real, fake, k=5)
    assert got["precision"] > 0.95
    assert got["recall"] < 0.26 and got["coverage"] < 0.26  # at most the collapsed mode's quarter


def _brute_force_terms(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The per-sample terms straight from the definitions, pair by pair (coordinate differences, no
    matrix-product shortcut): r the k-th smallest distance to the *other* samples of the same set."""

    def radius(x, i):
        return sorted(np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i)[k - 1]

    real_r = [radius(real, i) for i in range(len(real))]
    fake_r = [radius(fake, j) for j in range(len(fake))]
    inside = np.array([[np.linalg.norm(x - y) < r for y in fake] for x, r in zip(real, real_r)])  # [i, j]
    holds = np.array([[np.linalg.norm(x - y) < r for y, r in zip(fake, fake_r)] for x in real])  # [i, j]
    return {"precision": inside.any(0), "density": inside.sum(0) / k, "recall": holds.any(1), "coverage": inside.any(1)}


def test_prdc_contributions_are_the_per_sample_terms_of_the_definitions():
    """Each sample's own term, in sample order (what the bootstrap resamples), against a brute-force
    loop; their means against the reference package."""
    real, fake = randn(30, 4, 0), randn(50, 4, 1, shift=0.5)
    terms = prdc_contributions(real, fake, k=3)
    expected = _brute_force_terms(real.numpy(), fake.numpy(), k=3)
    for key, want in expected.items():
        np.testing.assert_array_equal(getattr(terms, key).numpy(), want.astype(np.float64), err_msg=key)
    reference = pytest.importorskip("prdc")
    with contextlib.redirect_stdout(io.StringIO()):
        package = reference.compute_prdc(real_features=real.numpy(), fake_features=fake.numpy(), nearest_k=3)
    assert terms.means() == {key: pytest.approx(float(package[key]), abs=1e-12) for key in package}


# k = 1 on a line. Real 0, 1, 3, 6 (radii 1, 1, 2, 3); fake: copies of the four real samples (memorised)
# and 9, at distance 3 = r(6) from 6. Every copy lies at exactly the radius of a neighbour's ball (the
# copy of 1 from 0, of 0 from 1, of 1 from 3, of 3 from 6) and 9 on 6's: the balls are open, so all
# of these tied samples are outside. Terms by hand, real first:
#   precision 4/5 (9 in no ball), density (1 + 1 + 1 + 1 + 0) / 5, recall 1, coverage 1
#   (closed balls would give precision 1 and density (2 + 3 + 2 + 1 + 1) / 5 = 1.8);
# swapped (real 0, 1, 3, 6, 9 with radii 1, 1, 2, 3, 3; fake 0, 1, 3, 6):
#   precision 1, density 4/4, recall 4/5 (9 is on the boundary of 6's fake ball), coverage 4/5
#   (closed balls: recall 1, coverage 1, density (2 + 3 + 2 + 2) / 4 = 2.25).
MEMORISED = (np.array([[0.0], [1.0], [3.0], [6.0]]), np.array([[0.0], [1.0], [3.0], [6.0], [9.0]]))


@pytest.mark.parametrize(
    ("swap", "expected"),
    [
        (False, {"precision": 4 / 5, "recall": 1.0, "density": 4 / 5, "coverage": 1.0}),
        (True, {"precision": 1.0, "recall": 4 / 5, "density": 1.0, "coverage": 4 / 5}),
    ],
    ids=["real-first", "swapped"],
)
def test_prdc_of_memorised_samples_leaves_a_sample_at_the_radius_outside(swap, expected):
    real, fake = MEMORISED[::-1] if swap else MEMORISED
    got = prdc(real, fake, k=1)
    assert got == {key: pytest.approx(value, abs=1e-12) for key, value in expected.items()}
    reference = pytest.importorskip("prdc")
    with contextlib.redirect_stdout(io.StringIO()):
        package = reference.compute_prdc(real_features=real, fake_features=fake, nearest_k=1)
    assert got == {key: pytest.approx(float(package[key]), abs=1e-12) for key in package}


def test_prdc_refuses_k_as_large_as_a_set_and_bad_shapes():
    with pytest.raises(ConfigError, match=r"k must be smaller than the number of fake samples .*5.*got k = 5"):
        prdc(randn(20, 3, 0), randn(5, 3, 1), k=5)
    with pytest.raises(ConfigError, match=r"k must be smaller than the number of real samples"):
        prdc(randn(3, 3, 0), randn(20, 3, 1), k=3)
    with pytest.raises(ConfigError, match=r"k must be a positive integer, got 0"):
        prdc(randn(20, 3, 0), randn(20, 3, 1), k=0)
    with pytest.raises(ConfigError, match=r"real_features must have shape \(n, d\), got shape \(20,\)"):
        prdc(torch.zeros(20), randn(20, 3, 1))
    with pytest.raises(ConfigError, match=r"fake_features must have d = 3 .* got shape \(20, 4\)"):
        prdc(randn(20, 3, 0), randn(20, 4, 1))
    with pytest.raises(ConfigError, match=r"real_features must be finite"):
        prdc(torch.full((20, 3), float("nan")), randn(20, 3, 1))


# --- Fréchet distance ---------------------------------------------------------------------------


def fd_with_scipy(x: np.ndarray, y: np.ndarray) -> float:
    """The usual FID code path: sqrtm of the non-symmetric product."""
    s1, s2 = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    cross = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * cross))


@pytest.mark.parametrize(("m", "n", "d"), [(40, 60, 3), (300, 200, 16), (50, 50, 1)])
def test_fd_matches_a_scipy_sqrtm_implementation(m, n, d):
    rng = np.random.default_rng(d)
    x = rng.standard_normal((m, d)) @ rng.standard_normal((d, d))
    y = rng.standard_normal((n, d)) * 1.5 + 0.2
    assert frechet_distance(x, y) == pytest.approx(fd_with_scipy(x, y), rel=1e-7, abs=1e-9)


def test_fd_is_symmetric():
    x, y = randn(80, 5, 0), randn(120, 5, 1, shift=0.3) * 2
    assert frechet_distance(x, y) == pytest.approx(frechet_distance(y, x), rel=1e-10)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)


def test_fd_converges_to_the_closed_form_between_two_gaussians():
    rng = np.random.default_rng(0)
    d, n = 3, 50_000
    a, b = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    s1, s2 = a @ a.T / d + 0.5 * np.eye(d), b @ b.T / d + 0.5 * np.eye(d)
    m1, m2 = np.zeros(d), np.array([1.0, -0.5, 0.2])
    root1 = scipy.linalg.sqrtm(s1).real
    truth = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(root1 @ s2 @ root1).real)
    x, y = rng.multivariate_normal(m1, s1, n), rng.multivariate_normal(m2, s2, n)
    # Tolerance: the bias (d^2 + 5d)/(2n) scaled by the largest variance, plus 4 standard deviations of
    # the leading terms, Var ||xbar - ybar||^2 ~ 4 delta'(S1 + S2) delta / n and Var tr(S) ~ 2 tr(S^2) / n
    # (conservative: measured across 100 seeds at n = 20 000 the sd was 0.64 of this).
    delta = m1 - m2
    scale = max(np.linalg.eigvalsh(s1).max(), np.linalg.eigvalsh(s2).max())
    sd = math.sqrt((4 * delta @ (s1 + s2) @ delta + 2 * np.trace(s1 @ s1 + s2 @ s2)) / n)
    tolerance = (d * d + 5 * d) / (2 * n) * scale + 4 * sd
    assert tolerance < 0.05 * truth
    assert frechet_distance(x, y) == pytest.approx(truth, abs=tolerance)


def test_fd_of_one_gaussian_is_biased_by_d_squared_plus_5d_over_2n():
    d, n, seeds = 4, 100, 100
    values = np.array([frechet_distance(randn(n, d, 2 * s), randn(n, d, 2 * s + 1)) for s in range(seeds)])
    bias = (d * d + 5 * d) / (2 * n)
    # A first-order formula (10 % slack) and 4 standard errors of the mean over seeds.
    assert values.mean() == pytest.approx(bias, abs=0.1 * bias + 4 * values.std(ddof=1) / math.sqrt(seeds))


def test_fd_needs_two_samples_per_side():
    with pytest.raises(ConfigError, match=r"fake_features must have at least 2 samples for FD, got 1"):
        frechet_distance(randn(10, 3, 0), randn(1, 3, 1))


# --- KID ----------------------------------------------------------------------------------------


def test_kid_equals_a_brute_force_double_loop():
    x, y = randn(5, 3, 0), randn(7, 3, 1, shift=0.4)
    kernel = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    within_x = sum(kernel(x[i], x[j]) for i, j in itertools.permutations(range(5), 2)) / (5 * 4)
    within_y = sum(kernel(y[i], y[j]) for i, j in itertools.permutations(range(7), 2)) / (7 * 6)
    cross = sum(kernel(x[i], y[j]) for i in range(5) for j in range(7)) / (5 * 7)
    assert kid(x, y) == pytest.approx(float(within_x + within_y - 2 * cross), rel=1e-12)
    assert kid(x, y, degree=2, gamma=0.5, coef0=0.0) != pytest.approx(kid(x, y))


def test_kid_is_unbiased_for_one_distribution_and_positive_for_a_shift():
    seeds, n, d = 30, 300, 8
    same = np.array([kid(randn(n, d, s), randn(n, d, 1000 + s)) for s in range(seeds)])
    shifted = np.array([kid(randn(n, d, s), randn(n, d, 1000 + s, shift=0.3)) for s in range(seeds)])
    sd = same.std(ddof=1)
    # Unbiased: the mean over seeds is 0 within 4 standard errors (the biased V-statistic sits ~15 above).
    assert abs(same.mean()) < 4 * sd / math.sqrt(seeds)
    assert np.all(shifted > 5 * sd) and shifted.mean() > 15 * sd


def test_kid_refuses_a_bad_kernel():
    with pytest.raises(ConfigError, match=r"gamma must be a positive number or None \(1/d\), got -1"):
        kid(randn(10, 3, 0), randn(10, 3, 1), gamma=-1)
    with pytest.raises(ConfigError, match=r"degree must be a positive integer, got 0"):
        kid(randn(10, 3, 0), randn(10, 3, 1), degree=0)


def test_resampled_fd_and_kid_by_count_weights_match_the_resampled_features():
    from genfair.metrics._feature_distances import _frechet_distances, _kernel_options, _kids  # white box

    x, y = randn(12, 3, 0), randn(15, 3, 1, shift=0.5)
    ix, iy = torch.randint(12, (12,), generator=gen(2)), torch.randint(15, (15,), generator=gen(3))
    wx, wy = torch.bincount(ix, minlength=12)[None].double(), torch.bincount(iy, minlength=15)[None].double()
    assert _frechet_distances(x, y, wx, wy).item() == pytest.approx(frechet_distance(x[ix], y[iy]), rel=1e-10)
    # KID on a resample: the U-statistic over pairs of distinct original samples.
    options = _kernel_options(3, degree=3, gamma=None, coef0=1)
    kernel = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    pairs_x = [(i, j) for i, j in itertools.permutations(range(12), 2) if ix[i] != ix[j]]
    pairs_y = [(i, j) for i, j in itertools.permutations(range(15), 2) if iy[i] != iy[j]]
    expected = (
        sum(kernel(x[ix[i]], x[ix[j]]) for i, j in pairs_x) / len(pairs_x)
        + sum(kernel(y[iy[i]], y[iy[j]]) for i, j in pairs_y) / len(pairs_y)
        - 2 * sum(kernel(x[ix[i]], y[iy[j]]) for i in range(12) for j in range(15)) / (12 * 15)
    )
    assert _kids(x, y, wx, wy, options).item() == pytest.approx(float(expected), rel=1e-10)


# --- class shares -------------------------------------------------------------------------------


def test_a_perfect_classifier_gives_the_raw_shares():
    predicted = torch.tensor([0, 1, 1, 2, 2, 2, 1, 0, 2, 2])
    raw = raw_shares(predicted, 3)
    assert raw.tolist() == [0.2, 0.3, 0.5]
    assert torch.allclose(corrected_shares(predicted, torch.eye(3) * 40), raw, atol=1e-12)


def test_a_known_confusion_matrix_is_inverted_exactly_in_expectation():
    confusion = torch.tensor([[90, 10, 0], [40, 140, 20], [0, 50, 150]])  # rates rows .9 .1 0 / .2 .7 .1 / 0 .25 .75
    true = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    rates = confusion.double() / confusion.sum(1, keepdim=True)
    expected_counts = (1000 * rates.T @ true).round().long()  # q = A^T p: 510, 310, 180
    assert expected_counts.tolist() == [510, 310, 180]
    predicted = torch.repeat_interleave(torch.arange(3), expected_counts)
    assert torch.allclose(corrected_shares(predicted, confusion), true, atol=1e-12)


def project_by_enumeration(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the simplex by trying every support (brute force, small K)."""
    best, best_distance = None, np.inf
    for size in range(1, len(v) + 1):
        for support in itertools.combinations(range(len(v)), size):
            x = np.zeros_like(v)
            x[list(support)] = v[list(support)] - (v[list(support)].sum() - 1) / size
            if x.min() >= 0 and np.sum((x - v) ** 2) < best_distance:
                best, best_distance = x, np.sum((x - v) ** 2)
    return best


def test_corrected_shares_leaving_the_simplex_are_projected_exactly():
    confusion = np.array([[30, 15, 5], [10, 35, 5], [5, 5, 40]])  # rates .6 .3 .1 / .2 .7 .1 / .1 .1 .8
    predicted = torch.tensor([0] * 11 + [1] * 44 + [2] * 45)  # fewer 0s than class 1's errors alone imply
    rates = confusion / confusion.sum(1, keepdims=True)
    solved = np.linalg.solve(rates.T, np.array([0.11, 0.44, 0.45]))
    assert np.allclose(solved, [-0.1, 0.6, 0.5])
    got = corrected_shares(predicted, torch.tensor(confusion))
    # The projection moves the excess 0.1 equally off the two positive entries (rescaling would not).
    assert np.allclose(got.numpy(), [0.0, 0.55, 0.45], atol=1e-12)
    assert np.allclose(got.numpy(), project_by_enumeration(solved), atol=1e-12)
    assert np.allclose(corrected_shares(torch.tensor([0] * 5 + [1] * 90 + [2] * 5), confusion).numpy(), [0, 1, 0])
    # All predicted as the majority by a classifier that errs only towards it: the minority is 0.
    assert corrected_shares(torch.zeros(50, dtype=torch.long), [[45, 5], [10, 40]]).tolist() == [1.0, 0.0]


def test_a_vanished_class_has_share_zero_and_counts_in_the_discrepancy():
    predicted = torch.tensor([0] * 70 + [1] * 30)
    shares = raw_shares(predicted, 3)
    assert shares.tolist() == [0.7, 0.3, 0.0]
    target = [0.5, 0.3, 0.2]
    assert fairness_discrepancy(shares, target) == pytest.approx(math.sqrt(0.2**2 + 0.0**2 + 0.2**2))
    assert fairness_discrepancy(shares, target, norm="l1") == pytest.approx(0.4)
    assert fairness_discrepancy(shares, target, norm="tv") == pytest.approx(0.2)
    assert representation_ratio(shares, target, group=2) == 0.0
    assert representation_ratio(shares, target, group=0) == pytest.approx(1.4)
    assert math.isnan(representation_ratio(shares, [0.5, 0.5, 0.0], group=2))


def test_class_share_functions_refuse_bad_input():
    with pytest.raises(ConfigError, match=r"norm must be one of \['l2', 'l1', 'tv'\], got 'linf'"):
        fairness_discrepancy([0.5, 0.5], [0.5, 0.5], norm="linf")
    with pytest.raises(ConfigError, match=r"predicted must be classes in \[0, 2\), got 2"):
        corrected_shares(torch.tensor([0, 2]), torch.eye(2))
    with pytest.raises(ConfigError, match=r"confusion must have held-out samples of every true class .* rows \[1\]"):
        corrected_shares(torch.tensor([0, 1]), torch.tensor([[3, 1], [0, 0]]))
    with pytest.raises(ConfigError, match=r"confusion must have shape \(K, K\), got shape \(2, 3\)"):
        corrected_shares(torch.tensor([0, 1]), torch.ones(2, 3))
    with pytest.raises(ConfigError, match=r"group must be a class index in \[0, 2\), got 2"):
        representation_ratio([0.5, 0.5], [0.5, 0.5], group=2)
    with pytest.raises(ConfigError, match=r"predicted must hold integer classes, got dtype torch.float32"):
        raw_shares(torch.tensor([0.0, 1.0]), 2)


# --- the stratified bootstrap -------------------------------------------------------------------


def test_a_stratified_resample_keeps_every_class_count_and_never_loses_the_minority():
    labels = torch.tensor([0] * 97 + [1] * 3)[torch.randperm(100, generator=gen(0))]
    index = stratified_resample(labels, 2, generator=gen(1), replicates=500)
    assert index.shape == (500, 100) and index.dtype == torch.int64
    assert torch.equal(labels[index], labels.expand(500, -1))  # each position drawn within its class
    minority = (labels == 1).nonzero().flatten()
    assert all(set(row[labels == 1].tolist()) <= set(minority.tolist()) for row in index)
    assert torch.equal(index, stratified_resample(labels, 2, generator=gen(1), replicates=500))
    assert not torch.equal(index, stratified_resample(labels, 2, generator=gen(2), replicates=500))
    assert len(set(map(tuple, index.tolist()))) > 1  # resamples differ from one another


def test_resampled_confusion_rows_keep_their_totals_and_average_to_the_counts():
    confusion = torch.tensor([[45, 5], [12, 38]])
    resampled = resample_confusion(confusion, generator=gen(0), replicates=2000)
    assert resampled.shape == (2000, 2, 2)
    assert torch.equal(resampled.sum(-1), confusion.sum(-1).double().expand(2000, 2))
    # Each entry is Binomial(N_t, C_tk / N_t): mean within 4 standard errors over the replicates.
    rates = confusion / confusion.sum(1, keepdim=True)
    se = (confusion.sum(1, keepdim=True) * rates * (1 - rates)).sqrt() / math.sqrt(2000)
    assert ((resampled.mean(0) - confusion).abs() <= 4 * se + 1e-12).all()
    with pytest.raises(ConfigError, match=r"confusion must hold whole counts"):
        resample_confusion(torch.tensor([[1.5, 0.5], [0.0, 2.0]]), generator=gen(0))


def test_percentile_interval_reads_the_quantiles_and_propagates_nan():
    lo, hi = percentile_interval(torch.arange(101.0)[:, None].expand(101, 2), level=0.9)
    assert lo.tolist() == pytest.approx([5.0, 5.0]) and hi.tolist() == pytest.approx([95.0, 95.0])
    lo, hi = percentile_interval(torch.tensor([1.0, float("nan"), 3.0]))
    assert math.isnan(lo) and math.isnan(hi)
    with pytest.raises(ConfigError, match=r"level must be a number in \(0, 1\), got 95"):
        percentile_interval(torch.ones(3), level=95)


def test_bootstrap_functions_refuse_a_numpy_generator():
    with pytest.raises(ConfigError, match=r"generator must be a torch.Generator .*got Generator"):
        stratified_resample(torch.tensor([0, 1]), 2, generator=np.random.default_rng(0))


# --- fidelity_metrics ---------------------------------------------------------------------------


def image_case(*, n_minority_fake: int = 100, seed: int = 0):
    """Two classes in d = 8: 100 real (80 / 20), 1000 generated (900 / n_minority_fake), a classifier
    that errs 10 % of the time on generated samples, and its held-out confusion counts."""
    g = gen(seed)
    means = torch.zeros(2, 8, dtype=torch.float64)
    means[1, 0] = 3.0
    real_labels = torch.tensor([0] * 80 + [1] * 20)
    fake_groups = torch.tensor([0] * 900 + [1] * n_minority_fake)
    real = torch.randn(100, 8, generator=g, dtype=torch.float64) + means[real_labels]
    fake = torch.randn(len(fake_groups), 8, generator=g, dtype=torch.float64) * 1.1 + means[fake_groups]
    wrong = torch.rand(len(fake_groups), generator=g) < 0.1
    predicted = torch.where(wrong, 1 - fake_groups, fake_groups)
    confusion = torch.tensor([[45, 5], [5, 45]])
    return real, real_labels, fake, fake_groups, predicted, confusion


def run_case(case, *, seed: int = 1, bootstrap: int = 100, **overrides) -> dict[str, Estimate]:
    options = dict(group_names=["maj", "min"], minority=1, target_shares=[0.8, 0.2], bootstrap=bootstrap)
    return fidelity_metrics(*case, **(options | overrides), generator=gen(seed))


EXPECTED_KEYS = (
    {f"{m}/{g}" for m in ("precision", "recall", "density", "coverage", "fd", "kid") for g in ("all", "maj", "min")}
    | {f"{m}/minority_to_majority" for m in ("precision", "recall", "density", "coverage", "fd", "kid")}
    | {"share/maj", "share/min", "share_raw/maj", "share_raw/min", "representation_ratio/min"}
    | {"fairness_discrepancy/all"}
)


def test_fidelity_metrics_returns_every_key_as_floats_with_intervals_around_the_values():
    case = image_case()
    real, real_labels, fake, fake_groups, predicted, confusion = case
    out = run_case(case)
    assert set(out) == EXPECTED_KEYS
    for key, e in out.items():
        assert isinstance(e, Estimate) and all(type(v) is float for v in (e.value, e.lo, e.hi)), key
        assert not math.isnan(e.value) and e.lo <= e.hi, key
    for key in EXPECTED_KEYS - {"kid/minority_to_majority"}:  # a ratio of two KIDs near 0 can fall anywhere
        assert out[key].lo <= out[key].value <= out[key].hi, key
    # The values are those of the plain functions on the full sets.
    minority = (real_labels == 1, fake_groups == 1)
    assert out["precision/all"].value == prdc(real, fake)["precision"]
    assert out["coverage/min"].value == prdc(real[minority[0]], fake[minority[1]])["coverage"]
    assert out["fd/all"].value == pytest.approx(frechet_distance(real, fake), rel=1e-9)
    assert out["kid/min"].value == pytest.approx(kid(real[minority[0]], fake[minority[1]]), rel=1e-9)
    shares = corrected_shares(predicted, confusion)
    assert out["share/min"].value == pytest.approx(float(shares[1]), abs=1e-12)
    assert out["share_raw/min"].value == pytest.approx(float((predicted == 1).double().mean()))
    assert out["fairness_discrepancy/all"].value == pytest.approx(fairness_discrepancy(shares, [0.8, 0.2]))
    ratio = out["recall/minority_to_majority"].value
    assert ratio == pytest.approx(out["recall/min"].value / out["recall/maj"].value)


def test_fidelity_metrics_is_deterministic_given_the_generator():
    case = image_case()
    first, again, other = run_case(case, seed=3), run_case(case, seed=3), run_case(case, seed=4)
    assert first == again
    assert all(first[key].value == other[key].value for key in first)  # values are on the full sets
    assert any(first[key].lo != other[key].lo for key in first)


def test_the_share_interval_has_the_binomial_width_when_the_classifier_assigns_the_groups():
    """An unconditional model's samples are grouped by the classifier's own predictions; the share
    interval must still carry the share's sampling spread, sqrt(p (1 - p) / n), and not collapse
    (a perfect confusion matrix removes the classifier's part)."""
    real, real_labels, fake, _, predicted, _ = image_case()
    out = run_case((real, real_labels, fake, predicted, predicted, torch.tensor([[50, 0], [0, 50]])), bootstrap=400)
    p, n = out["share_raw/min"].value, len(fake)
    width = out["share/min"].hi - out["share/min"].lo
    expected = 2 * 1.96 * math.sqrt(p * (1 - p) / n)
    # The percentile width from B = 400 resamples scatters by about 6 % around the binomial one: 0.25 is 4 of those.
    assert width == pytest.approx(expected, rel=0.25)


def test_the_share_interval_carries_the_confusion_matrix_uncertainty():
    """An imperfect classifier (20 % errors, estimated from 100 held-out samples per class): the
    corrected share p1 = (q1 - a) / (1 - a - b) inherits the spread of the estimated error rates a, b
    as well as that of the raw share q1. Delta method, with N = 100 held-out samples per class:

        Var(p1) = [q1 (1 - q1) / n + p0^2 a (1 - a) / N + p1^2 b (1 - b) / N] / (1 - a - b)^2.

    Here the classifier's part is about 4/5 of the variance: an interval that ignored the resampled
    confusion matrices would be 0.45 times as wide (0.100 against 0.223)."""
    real, real_labels, fake, fake_groups, _, _ = image_case()
    n = len(fake)
    predicted = (torch.arange(n) < 380).long()  # raw minority share q1 = 0.38
    confusion = torch.tensor([[80, 20], [20, 80]])  # a = b = 0.2
    out = run_case((real, real_labels, fake, fake_groups, predicted, confusion), bootstrap=400)
    q1, a, b, held_out = 0.38, 0.2, 0.2, 100
    p1 = (q1 - a) / (1 - a - b)
    assert out["share/min"].value == pytest.approx(p1, abs=1e-12)
    classifier = (1 - p1) ** 2 * a * (1 - a) / held_out + p1**2 * b * (1 - b) / held_out
    variance = (q1 * (1 - q1) / n + classifier) / (1 - a - b) ** 2
    width = out["share/min"].hi - out["share/min"].lo
    # B = 400 percentile widths scatter by about 6 %, the delta method is within 4 % here (measured with
    # B = 4000 over 3 seeds: ratios 1.01-1.04): rel = 0.25 leaves room for both and still fails at 0.45.
    assert width == pytest.approx(2 * 1.96 * math.sqrt(variance), rel=0.25)


def test_a_vanished_minority_gives_nan_fidelity_and_a_zero_share_bounded_by_the_rule_of_three():
    real, real_labels, fake, fake_groups, _, confusion = image_case(n_minority_fake=0)
    predicted = torch.zeros(len(fake), dtype=torch.long)  # nothing generated looks like the minority
    out = run_case((real, real_labels, fake, fake_groups, predicted, confusion))
    assert set(out) == EXPECTED_KEYS
    for metric in ("precision", "recall", "density", "coverage", "fd", "kid"):
        for key in (f"{metric}/min", f"{metric}/minority_to_majority"):
            assert all(math.isnan(v) for v in (out[key].value, out[key].lo, out[key].hi)), key
        assert not math.isnan(out[f"{metric}/maj"].value)
    n = len(fake)
    for key in ("share/min", "share_raw/min", "representation_ratio/min"):
        assert out[key].value == 0.0 and out[key].lo == 0.0, key
    assert out["share/min"].hi >= 3 / n and out["share_raw/min"].hi >= 3 / n
    assert out["representation_ratio/min"].hi >= 3 / n / 0.2
    assert out["fairness_discrepancy/all"].value == pytest.approx(math.sqrt(2) * 0.2)


def test_a_minority_too_small_for_prdc_keeps_fd_and_kid():
    out = run_case(image_case(n_minority_fake=3), bootstrap=20)  # 3 < k + 1 = 6, but >= 2
    assert math.isnan(out["precision/min"].value) and math.isnan(out["coverage/minority_to_majority"].hi)
    assert not math.isnan(out["fd/min"].value) and not math.isnan(out["kid/min"].value)


def test_fidelity_metrics_names_the_bad_argument():
    case = image_case()
    real, real_labels, fake, fake_groups, _, _ = case
    positional = ("real_features", "real_labels", "fake_features", "fake_groups", "fake_predicted", "confusion")
    bad_cases = [
        ({"real_features": real[:, 0]}, r"real_features must have shape \(n, d\), got shape \(100,\)"),
        ({"fake_features": fake[:, :3]}, r"fake_features must have d = 8 features .* got shape \(1000, 3\)"),
        ({"real_labels": real_labels + 1}, r"real_labels must be classes in \[0, 2\), got 2"),
        ({"fake_groups": fake_groups[:-1]}, r"fake_groups must have one entry per row of fake_features .1000., got 999"),
        ({"fake_predicted": fake_groups.double()}, r"fake_predicted must hold integer classes, got dtype torch.float6"),
        ({"confusion": torch.eye(3)}, r"confusion must have shape \(K, K\) = \(2, 2\), got \(3, 3\)"),
        ({"k": 20}, r"k must be smaller than the number of real samples of every class \(\{'maj': 80, 'min': 20\}"),
        ({"target_shares": [0.7, 0.2]}, r"target_shares must be 2 nonnegative shares summing to 1 .* got \[0.7, 0.2\]"),
        ({"minority": 2}, r"minority must be a class index in \[0, 2\), got 2"),
        ({"group_names": ["all", "b"]}, r"group_names must be K >= 1 unique .* got \['all', 'b'\]"),
        ({"level": 1.5}, r"level must be a number in \(0, 1\), got 1.5"),
        ({"bootstrap": 0}, r"bootstrap must be a positive integer, got 0"),
    ]
    for overrides, message in bad_cases:
        args = tuple(overrides.pop(name, value) for name, value in zip(positional, case))
        with pytest.raises(ConfigError, match=message):
            run_case(args, **({"bootstrap": 5} | overrides))

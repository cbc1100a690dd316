"""The loop simulator against the exact answers of genfair.loops._theory (docs/references.md §2).

Every comparison's tolerance is 4.5 Monte-Carlo standard errors for the replicate count, using
the exact variance where the theory gives it, so a wrong simulator fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from genfair.data import ClassMixtureData, GaussianData
from genfair.metrics import class_gaussian_metrics
from genfair.models import ClassGaussianModel
from genfair.loops import LOOP_KINDS, LoopConfig, simulate
from genfair.loops._theory import (
    class_share_chain,
    fresh_fixed_point,
    fully_synthetic_variance,
    gaussian_loop_moments,
)

Z = 4.5


def run_loop(data, *, kind="fully_synthetic", estimator="mle", n_real=10, n_synthetic=10, generations=5,
             replicates=20_000, bias=1.0, seed=0):
    model = ClassGaussianModel(len(data.classes), data.dim, replicates=replicates, estimator=estimator)
    config = LoopConfig(kind=kind, generations=generations, n_real=n_real, n_synthetic=n_synthetic,
                        sampling_bias=bias, replicates=replicates)

    def measure(fitted, train, generator):
        return class_gaussian_metrics(fitted, true_means=data.true_means(), true_covariances=data.true_covariances(),
                                      counts=train.class_counts(len(data.classes)), classes=data.classes)

    return simulate(data=data, model=model, config=config, seed=seed, measure=measure)


def assert_means_match(values: np.ndarray, expected: np.ndarray, sd: np.ndarray | None = None) -> None:
    """values (G, R) against expected (G,); sd defaults to the sample sd per generation."""
    sd = values.std(axis=1, ddof=1) if sd is None else sd
    tolerance = Z * sd / np.sqrt(values.shape[1]) + 1e-12  # floor: generation 0 may have no spread
    np.testing.assert_array_less(np.abs(values.mean(axis=1) - expected), tolerance)


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_first_two_moments_match_the_exact_recursion(kind, estimator):
    data = GaussianData(dim=2)
    result = run_loop(data, kind=kind, estimator=estimator, n_real=8, n_synthetic=12, generations=6, bias=0.8)
    theory = gaussian_loop_moments(kind=kind, generations=6, n_real=8, n_synthetic=12, sampling_bias=0.8,
                                   estimator=estimator, dim=2)
    assert_means_match(result.values("mean_sq_err/all"), theory.mean_sq_err)
    assert_means_match(result.values("trace_cov/all"), theory.trace_cov)


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_fully_synthetic_variance_law(estimator):
    n, generations = 10, 100
    result = run_loop(GaussianData(), estimator=estimator, n_real=n, n_synthetic=n, generations=generations)
    variance = result.values("trace_cov/all")
    law = fully_synthetic_variance(generations=generations, n=n, estimator=estimator)
    # E[sigma^2_g] = ((n-1)/n)^(g+1) (mle) or 1 (unbiased): heavy-tailed, so only while g << n.
    light = slice(0, 4)
    assert_means_match(variance[light], law.mean[light], np.sqrt(law.variance[light]))
    if estimator == "mle":
        np.testing.assert_allclose(law.mean[light], ((n - 1) / n) ** (np.arange(4) + 1))
    # E[log sigma^2_g] and E[sigma_g] = c_n^(g+1) (unbiased) hold at every g, with light tails.
    assert_means_match(np.log(variance), law.log_mean, np.sqrt(law.log_variance))
    assert_means_match(np.sqrt(variance), law.sigma_mean, np.sqrt(law.mean - law.sigma_mean**2))
    if estimator == "unbiased":  # the mean stays at 1 while the median collapses to 0
        median = np.median(variance, axis=1)
        assert median[-1] < 1e-3 < 0.5 < median[0]
        assert median[-1] < np.exp(law.log_mean[-1] + 1.0)


def test_sampling_bias_shrinks_the_variance_geometrically():
    n, bias = 10, 0.7
    result = run_loop(GaussianData(), n_real=n, n_synthetic=n, generations=6, bias=bias)
    law = fully_synthetic_variance(generations=6, n=n, sampling_bias=bias)
    g = np.arange(6)
    np.testing.assert_allclose(law.mean, ((n - 1) / n) ** (g + 1) * bias**g)
    assert_means_match(result.values("trace_cov/all"), law.mean, np.sqrt(law.variance))


def test_fresh_data_loop_converges_to_its_fixed_point():
    n, m, generations = 10, 20, 40
    result = run_loop(GaussianData(), kind="fresh", estimator="mle", n_real=n, n_synthetic=m, generations=generations)
    fixed = fresh_fixed_point(n_real=n, n_synthetic=m)
    recursion = gaussian_loop_moments(kind="fresh", generations=generations, n_real=n, n_synthetic=m)
    assert abs(recursion.trace_cov[-1] - fixed.trace_cov[0]) < 1e-9  # converged
    last = slice(generations - 1, generations)
    assert_means_match(result.values("trace_cov/all")[last], fixed.trace_cov)
    assert_means_match(result.values("mean_sq_err/all")[last], fixed.mean_sq_err)


def test_accumulate_stays_bounded_while_fully_synthetic_grows_linearly():
    n, generations = 10, 30
    kwargs = dict(estimator="unbiased", n_real=n, n_synthetic=n, generations=generations)
    replace = run_loop(GaussianData(), kind="fully_synthetic", **kwargs).values("mean_sq_err/all")
    accumulate = run_loop(GaussianData(), kind="accumulate", **kwargs).values("mean_sq_err/all")
    g = np.arange(generations)
    assert_means_match(replace, (g + 1) / n)  # linear growth (Gerstgrasser et al. 2024)
    theory = gaussian_loop_moments(kind="accumulate", generations=generations, n_real=n, n_synthetic=n,
                                   estimator="unbiased")
    assert_means_match(accumulate, theory.mean_sq_err)
    assert theory.mean_sq_err.max() < 2.5 / n < replace.mean(axis=1)[-1] / 10


def test_minority_share_drifts_like_wright_fisher():
    data = ClassMixtureData(proportions=[0.9, 0.1], dim=1, class_names=["majority", "minority"])
    generations, replicates = 30, 20_000
    result = run_loop(data, n_real=30, n_synthetic=30, generations=generations, replicates=replicates)
    chain = class_share_chain(proportion=0.1, n_real=30, n_synthetic=30, generations=generations, stratified=True)
    share = result.values("share/minority")
    assert_means_match(share, chain.mean_share)  # E[p_g] = p_0: a martingale
    extinct = result.values("extinct/minority").mean(axis=1)
    tolerance = Z * np.sqrt(chain.extinct_prob * (1 - chain.extinct_prob) / replicates) + 1e-12
    np.testing.assert_array_less(np.abs(extinct - chain.extinct_prob), tolerance)


def test_probability_and_time_to_lose_the_minority():
    data = ClassMixtureData(proportions=[0.8, 0.2], dim=1, class_names=["majority", "minority"])
    generations, replicates = 150, 20_000
    result = run_loop(data, n_real=10, n_synthetic=10, generations=generations, replicates=replicates)
    chain = class_share_chain(proportion=0.2, n_real=10, n_synthetic=10, generations=generations, stratified=True)
    assert chain.count_probs[-1, 1:10].sum() < 1e-6  # every chain has been absorbed by now
    extinct = result.values("extinct/minority")
    lost = extinct[-1] == 1
    p_loss = chain.eventual_loss_prob
    assert abs(lost.mean() - p_loss) < Z * np.sqrt(p_loss * (1 - p_loss) / replicates)
    loss_time = extinct[:, lost].argmax(axis=0)  # first generation with no minority samples
    assert abs(loss_time.mean() - chain.mean_loss_time) < Z * loss_time.std(ddof=1) / np.sqrt(lost.sum())


@pytest.mark.parametrize("dim, kind, threshold", [(1, "fully_synthetic", 0.1), (2, "augment", 0.15)])
def test_truncation_by_the_verifier_matches_the_truncated_normal_variance(dim, kind, threshold):
    """The Gaussian verifier keeps (and redraws until it has) the samples within radius c of their
    fitted mean: kept samples have covariance kappa_d(c) Sigma_hat, so the loop follows the moment
    recursion with sampling_bias = kappa_d(c); in 1-D kappa = 1 - 2 c phi(c) / (2 Phi(c) - 1)."""
    from scipy import stats

    from genfair.loops import CurationConfig, gaussian_verifier
    from genfair.loops._theory import confidence_radius, truncated_gaussian_variance_factor

    c = confidence_radius(threshold, dim=dim)
    kappa = truncated_gaussian_variance_factor(c, dim=dim)
    if dim == 1:
        assert c == pytest.approx(stats.norm.isf(threshold / 2), rel=1e-12)
        assert kappa == pytest.approx(1 - 2 * c * stats.norm.pdf(c) / (2 * stats.norm.cdf(c) - 1), rel=1e-12)
    data, replicates, generations = GaussianData(dim=dim), 20_000, 6
    model = ClassGaussianModel(1, dim, replicates=replicates)
    config = LoopConfig(kind=kind, generations=generations, n_real=10, n_synthetic=10, replicates=replicates,
                        curation=CurationConfig(rule="confidence", threshold=threshold, max_draws=50))

    def measure(fitted, train, generator):
        return class_gaussian_metrics(fitted, true_means=data.true_means(), true_covariances=data.true_covariances(),
                                      counts=train.class_counts(1), classes=data.classes)

    result = simulate(data=data, model=model, config=config, seed=0, measure=measure, verifier=gaussian_verifier)
    assert (result.values("unverified/all") == 0).all()
    theory = gaussian_loop_moments(kind=kind, generations=generations, n_real=10, n_synthetic=10,
                                   sampling_bias=kappa, dim=dim)
    assert_means_match(result.values("trace_cov/all"), theory.trace_cov)
    assert_means_match(result.values("mean_sq_err/all"), theory.mean_sq_err)
    untruncated = gaussian_loop_moments(kind=kind, generations=generations, n_real=10, n_synthetic=10, dim=dim)
    noise = result.values("trace_cov/all")[-1].std() / np.sqrt(replicates)
    assert untruncated.trace_cov[-1] - theory.trace_cov[-1] > 20 * noise  # the verifier's effect is far above the noise
    accepted = result.values("accept_rate/all")  # kept / drawn; E[drawn] = n / (1 - threshold) per replicate
    assert_means_match(10 / accepted, np.full(generations, 10 / (1 - threshold)))

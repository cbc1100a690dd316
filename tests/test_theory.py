"""Reference tests for genfair.loops._theory: brute-force NumPy Monte Carlo and closed forms.

Every Monte-Carlo comparison uses |mean_MC - exact| <= Z * sd / sqrt(R), with sd the
exact standard deviation where it is known and the sample one otherwise, so a wrong
formula fails (see ``test_monte_carlo_rejects_wrong_formulas`` for the power check).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special, stats

from genfair.loops._theory import (
    GaussianMoments,
    ShareChain,
    VarianceLaw,
    chi_mean_factor,
    class_share_chain,
    fresh_fixed_point,
    fully_synthetic_variance,
    gaussian_loop_moments,
)

Z = 4.5  # standard errors allowed per comparison
KINDS = ("fully_synthetic", "augment", "fresh", "accumulate")


# ----------------------------------------------------------------- brute-force simulators
def _fit(x: np.ndarray, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """x: (R, N, d) -> mean (R, d), covariance (R, d, d) with divisor N - ddof."""
    mu = x.mean(axis=1)
    centred = x - mu[:, None, :]
    return mu, np.einsum("rni,rnj->rij", centred, centred) / (x.shape[1] - ddof)


def _draw(
    mu: np.ndarray, cov: np.ndarray, lam: float, size: int, rng: np.random.Generator
) -> np.ndarray:
    """size samples per chain from N(mu, lam * cov): (R, size, d)."""
    chol = np.linalg.cholesky(lam * cov)
    z = rng.standard_normal((mu.shape[0], size, mu.shape[1]))
    return mu[:, None, :] + np.einsum("rij,rnj->rni", chol, z)


def _simulate_loop(kind, *, n, m, lam, ddof, dim, generations, reps, seed):
    """Return ||mu_hat_g||^2 and tr Sigma_hat_g, each (reps, generations); truth N(0, I)."""
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((reps, n, dim))
    pool, train = real, real
    sq_err, trace = np.empty((reps, generations)), np.empty((reps, generations))
    for g in range(generations):
        if g > 0:
            synth = _draw(mu, cov, lam, m, rng)
            if kind == "fully_synthetic":
                train = synth
            elif kind == "augment":
                train = np.concatenate([real, synth], axis=1)
            elif kind == "fresh":
                train = np.concatenate([rng.standard_normal((reps, n, dim)), synth], axis=1)
            else:
                pool = np.concatenate([pool, synth], axis=1)
                train = pool
        mu, cov = _fit(train, ddof)
        sq_err[:, g] = (mu**2).sum(axis=1)
        trace[:, g] = np.trace(cov, axis1=1, axis2=2)
    return sq_err, trace


def _within(samples: np.ndarray, exact: np.ndarray, sd: np.ndarray | None = None) -> None:
    """Assert column means of samples (R, G) match exact (G,) within Z standard errors."""
    sd = samples.std(axis=0, ddof=1) if sd is None else sd
    tol = Z * sd / np.sqrt(samples.shape[0])
    err = np.abs(samples.mean(axis=0) - exact)
    assert np.all(err <= tol), f"MC {samples.mean(axis=0)} vs exact {exact}, tol {tol}"


# ------------------------------------------------------------------- Gaussian loop moments
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize(("dim", "lam", "n", "m"), [(1, 1.0, 4, 6), (2, 0.6, 6, 4)])
def test_gaussian_loop_matches_monte_carlo(kind, estimator, dim, lam, n, m):
    ddof = 1 if estimator == "unbiased" else 0
    gens, reps = 5, 30_000
    seed = 1000 + 100 * dim + 10 * KINDS.index(kind) + ddof
    sq_err, trace = _simulate_loop(
        kind, n=n, m=m, lam=lam, ddof=ddof, dim=dim, generations=gens, reps=reps, seed=seed
    )
    exact = gaussian_loop_moments(
        kind=kind, generations=gens, n_real=n, n_synthetic=m,
        sampling_bias=lam, estimator=estimator, dim=dim,
    )
    assert isinstance(exact, GaussianMoments)
    assert exact.mean_sq_err.shape == exact.trace_cov.shape == (gens,)
    _within(sq_err, exact.mean_sq_err)
    _within(trace, exact.trace_cov)


def test_monte_carlo_rejects_wrong_formulas():
    """The tolerances are tight enough to tell close formulas apart."""
    n, m, gens, reps = 4, 6, 4, 30_000
    sq_err, trace = _simulate_loop(
        "augment", n=n, m=m, lam=1.0, ddof=0, dim=1, generations=gens, reps=reps, seed=99
    )
    tol_s = Z * sq_err.std(axis=0, ddof=1) / np.sqrt(reps)
    tol_v = Z * trace.std(axis=0, ddof=1) / np.sqrt(reps)
    # Dropping the real-set cross term (i.e. using the fresh formula) is detected ...
    fresh = gaussian_loop_moments(kind="fresh", generations=gens, n_real=n, n_synthetic=m)
    assert np.all(np.abs(sq_err.mean(axis=0) - fresh.mean_sq_err)[1:] > tol_s[1:])
    # ... and so is the wrong divisor.
    unbiased = gaussian_loop_moments(
        kind="augment", generations=gens, n_real=n, n_synthetic=m, estimator="unbiased"
    )
    assert np.all(np.abs(trace.mean(axis=0) - unbiased.trace_cov) > tol_v)


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize("lam", [1.0, 0.8])
def test_fully_synthetic_closed_form(estimator, lam):
    n, gens = 7, 12
    a = (n - 1) / n if estimator == "mle" else 1.0
    got = gaussian_loop_moments(
        kind="fully_synthetic", generations=gens, n_real=n, n_synthetic=n,
        sampling_bias=lam, estimator=estimator, dim=3,
    )
    g = np.arange(gens)
    np.testing.assert_allclose(got.trace_cov, 3 * a * (lam * a) ** g, rtol=1e-12)
    law = fully_synthetic_variance(generations=gens, n=n, sampling_bias=lam, estimator=estimator)
    np.testing.assert_allclose(law.mean, got.trace_cov / 3, rtol=1e-12)


def test_fully_synthetic_error_grows_linearly_accumulate_stays_bounded():
    n, m, gens = 5, 5, 2000
    full = gaussian_loop_moments(
        kind="fully_synthetic", generations=gens, n_real=n, n_synthetic=m, estimator="unbiased"
    )
    np.testing.assert_allclose(full.mean_sq_err, (np.arange(gens) + 1) / n, rtol=1e-10)
    acc = gaussian_loop_moments(kind="accumulate", generations=gens, n_real=n, n_synthetic=m)
    # s_g <= s_0 + lambda max(v) sum_j m / (n + j m)^2 <= (1 + max v) / n  (Gerstgrasser et al.)
    assert np.all(np.diff(acc.mean_sq_err) >= 0)
    assert acc.mean_sq_err[-1] <= (1 + acc.trace_cov.max()) / n
    assert acc.mean_sq_err[-1] < 3 * acc.mean_sq_err[0] < full.mean_sq_err[20]
    assert np.all(acc.trace_cov < 1.0) and acc.trace_cov[-1] > 0.5


@pytest.mark.parametrize(("estimator", "lam", "dim"), [("mle", 1.0, 1), ("unbiased", 0.7, 2)])
def test_fresh_loop_converges_to_fixed_point(estimator, lam, dim):
    n, m = 6, 9
    point = fresh_fixed_point(
        n_real=n, n_synthetic=m, sampling_bias=lam, estimator=estimator, dim=dim
    )
    assert point.mean_sq_err.shape == point.trace_cov.shape == (1,)
    run = gaussian_loop_moments(
        kind="fresh", generations=300, n_real=n, n_synthetic=m,
        sampling_bias=lam, estimator=estimator, dim=dim,
    )
    np.testing.assert_allclose(run.mean_sq_err[-1], point.mean_sq_err[0], rtol=1e-10)
    np.testing.assert_allclose(run.trace_cov[-1], point.trace_cov[0], rtol=1e-10)
    # Independent of the initial model: a perturbed start of Eqs. (1), (3) contracts to it.
    c = 1 if estimator == "unbiased" else 0
    s, v = point.mean_sq_err[0] / dim + 0.5, point.trace_cov[0] / dim + 0.5
    for _ in range(300):
        s_next = (n + m * m * s + m * lam * v) / (n + m) ** 2
        v = (n + m * (s + lam * v) - (n + m) * s_next) / (n + m - c)
        s = s_next
    np.testing.assert_allclose(
        [s * dim, v * dim], [point.mean_sq_err[0], point.trace_cov[0]], rtol=1e-10
    )


# ------------------------------------------------------------------ 1-D variance law
def _simulate_variance_chain(*, n, lam, ddof, generations, reps, seed) -> np.ndarray:
    """Fully synthetic 1-D loop from raw samples; returns sigma2_hat, (reps, generations)."""
    rng = np.random.default_rng(seed)
    mu, var = np.zeros(reps), np.ones(reps)
    out = np.empty((reps, generations))
    for g in range(generations):
        scale = np.sqrt(var * (lam if g > 0 else 1.0))
        x = mu[:, None] + scale[:, None] * rng.standard_normal((reps, n))
        mu, var = x.mean(axis=1), x.var(axis=1, ddof=ddof)
        out[:, g] = var
    return out


def _chi2_raw_moment(k: int, r: int) -> float:
    """E[(chi2_k)^r] = 2^r Gamma(k/2 + r) / Gamma(k/2)."""
    return float(2.0**r * np.exp(special.gammaln(k / 2 + r) - special.gammaln(k / 2)))


@pytest.mark.parametrize(
    ("estimator", "lam"), [("mle", 1.0), ("unbiased", 1.0), ("unbiased", 0.75)]
)
def test_variance_law_low_moments_small_g(estimator, lam):
    n, gens, reps = 8, 3, 40_000
    ddof = 1 if estimator == "unbiased" else 0
    sig2 = _simulate_variance_chain(
        n=n, lam=lam, ddof=ddof, generations=gens, reps=reps, seed=7 + ddof + int(100 * lam)
    )
    law = fully_synthetic_variance(generations=gens, n=n, sampling_bias=lam, estimator=estimator)
    assert isinstance(law, VarianceLaw) and law.mean.shape == (gens,)
    _within(sig2, law.mean, sd=np.sqrt(law.variance))
    # E[sigma2^2] = variance + mean^2, tolerance from the exact 4th moment of sigma2.
    g, d = np.arange(gens), n - ddof
    raw4 = lam ** (4 * g) * (_chi2_raw_moment(n - 1, 4) / d**4) ** (g + 1)
    second = law.variance + law.mean**2
    _within(sig2**2, second, sd=np.sqrt(raw4 - second**2))


@pytest.mark.parametrize(
    ("estimator", "lam"), [("mle", 1.0), ("unbiased", 1.0), ("unbiased", 0.9)]
)
def test_variance_law_sigma_and_log_large_g(estimator, lam):
    n, gens, reps = 10, 30, 20_000
    ddof = 1 if estimator == "unbiased" else 0
    sig2 = _simulate_variance_chain(
        n=n, lam=lam, ddof=ddof, generations=gens, reps=reps, seed=11 + ddof + int(100 * lam)
    )
    law = fully_synthetic_variance(generations=gens, n=n, sampling_bias=lam, estimator=estimator)
    _within(np.log(sig2), law.log_mean, sd=np.sqrt(law.log_variance))
    _within(np.sqrt(sig2), law.sigma_mean, sd=np.sqrt(law.mean - law.sigma_mean**2))


def test_variance_law_closed_forms():
    n, gens = 6, 40
    g = np.arange(gens)
    unb = fully_synthetic_variance(generations=gens, n=n, estimator="unbiased")
    np.testing.assert_allclose(unb.mean, 1.0, rtol=1e-12)  # martingale
    np.testing.assert_allclose(unb.sigma_mean, chi_mean_factor(n) ** (g + 1), rtol=1e-12)
    assert unb.log_mean[-1] < -5  # yet sigma2_hat -> 0 almost surely
    mle = fully_synthetic_variance(generations=gens, n=n, estimator="mle")
    np.testing.assert_allclose(mle.mean, ((n - 1) / n) ** (g + 1), rtol=1e-12)
    # Generation 0 against numerical integration over the chi2_{n-1} density.
    q = stats.chi2(n - 1)
    log_mean = integrate.quad(lambda x: np.log(x) * q.pdf(x), 0, np.inf)[0]
    log_var = integrate.quad(lambda x: (np.log(x) - log_mean) ** 2 * q.pdf(x), 0, np.inf)[0]
    np.testing.assert_allclose(mle.log_mean[0], log_mean - np.log(n), rtol=1e-8)
    np.testing.assert_allclose(mle.log_variance, (g + 1) * log_var, rtol=1e-8)
    np.testing.assert_allclose(mle.variance[0], q.var() / n**2, rtol=1e-12)


@pytest.mark.parametrize("n", [2, 3, 10, 1000])
def test_chi_mean_factor_matches_scipy(n):
    expected = stats.chi(n - 1).mean() / np.sqrt(n - 1)
    np.testing.assert_allclose(chi_mean_factor(n), expected, rtol=1e-10)


# ------------------------------------------------------------------ Wright-Fisher shares
def _simulate_counts(*, p, n, m, generations, reps, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = np.empty((reps, generations), dtype=int)
    counts[:, 0] = rng.binomial(n, p, size=reps)
    for g in range(1, generations):
        size_prev = n if g == 1 else m
        counts[:, g] = rng.binomial(m, counts[:, g - 1] / size_prev)
    return counts


def test_share_chain_matches_monte_carlo():
    p, n, m, gens, reps = 0.3, 8, 6, 12, 50_000
    chain = class_share_chain(proportion=p, n_real=n, n_synthetic=m, generations=gens)
    assert isinstance(chain, ShareChain) and chain.count_probs.shape == (gens, max(n, m) + 1)
    counts = _simulate_counts(p=p, n=n, m=m, generations=gens, reps=reps, seed=5)
    for k in range(max(n, m) + 1):
        exact = chain.count_probs[:, k]
        _within((counts == k).astype(float), exact, sd=np.sqrt(exact * (1 - exact)) + 1e-12)
    np.testing.assert_allclose(chain.extinct_prob, chain.count_probs[:, 0])
    np.testing.assert_allclose(chain.count_probs.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(chain.mean_share, p, rtol=1e-12)  # martingale


def test_share_chain_loss_probability_and_time():
    p, n, m = 0.3, 8, 6
    long = class_share_chain(proportion=p, n_real=n, n_synthetic=m, generations=400)
    assert np.all(np.diff(long.extinct_prob) >= -1e-15)
    assert long.eventual_loss_prob == pytest.approx(1 - p)
    np.testing.assert_allclose(long.extinct_prob[-1], 1 - p, rtol=1e-10)
    # E[T | lost] from the truncated distribution of T and from a brute-force run.
    first_hits = np.diff(long.extinct_prob, prepend=0.0)
    truncated = (np.arange(400) * first_hits).sum() / (1 - p)
    np.testing.assert_allclose(long.mean_loss_time, truncated, rtol=1e-9)
    counts = _simulate_counts(p=p, n=n, m=m, generations=200, reps=40_000, seed=8)
    lost = counts[:, -1] == 0
    times = np.argmax(counts[lost] == 0, axis=1).astype(float)
    _within(times[:, None], np.array([long.mean_loss_time]))


def test_share_chain_single_synthetic_sample():
    p, n = 0.4, 5  # m = 1: T = 0 if count_0 = 0, else T = 1 when lost
    chain = class_share_chain(proportion=p, n_real=n, n_synthetic=1, generations=3)
    assert chain.mean_loss_time == pytest.approx(1 - (1 - p) ** (n - 1), rel=1e-12)
    np.testing.assert_allclose(chain.extinct_prob[1:], 1 - p, rtol=1e-12)


# ----------------------------------------------------------------------- input checks
_VALID = {
    gaussian_loop_moments: dict(kind="augment", generations=3, n_real=4, n_synthetic=4),
    fresh_fixed_point: dict(n_real=4, n_synthetic=4),
    chi_mean_factor: dict(n=4),
    fully_synthetic_variance: dict(generations=3, n=4),
    class_share_chain: dict(proportion=0.5, n_real=4, n_synthetic=4, generations=3),
}
_KIND_LIST = r"\['fully_synthetic', 'augment', 'fresh', 'accumulate'\]"
_BAD_INPUTS = [
    (gaussian_loop_moments, {"n_real": 0}, r"n_real must be an integer >= 2, got 0"),
    (gaussian_loop_moments, {"n_real": 1}, r"n_real must be an integer >= 2, got 1"),
    (gaussian_loop_moments, {"n_real": 2.5}, r"n_real must be an integer >= 2, got 2.5"),
    (gaussian_loop_moments, {"n_synthetic": 0}, r"n_synthetic must be a positive integer, got 0"),
    (
        gaussian_loop_moments,
        {"kind": "fully_synthetic", "n_synthetic": 1},
        r"n_synthetic must be an integer >= 2, got 1",
    ),
    (gaussian_loop_moments, {"generations": 0}, r"generations must be a positive integer, got 0"),
    (gaussian_loop_moments, {"generations": True}, r"generations must be a positive integer"),
    (gaussian_loop_moments, {"dim": 0}, r"dim must be a positive integer, got 0"),
    (gaussian_loop_moments, {"kind": "foo"}, rf"kind must be one of {_KIND_LIST}, got 'foo'"),
    (gaussian_loop_moments, {"estimator": "ols"}, r"estimator must be one of \[.*\], got 'ols'"),
    (gaussian_loop_moments, {"sampling_bias": 0.0}, r"sampling_bias must be a number in \(0, 1\], got 0.0"),
    (gaussian_loop_moments, {"sampling_bias": 1.5}, r"sampling_bias must be a number in \(0, 1\], got 1.5"),
    (fresh_fixed_point, {"n_synthetic": 0}, r"n_synthetic must be a positive integer, got 0"),
    (fresh_fixed_point, {"estimator": "x"}, r"one of \['mle', 'unbiased'\], got 'x'"),
    (chi_mean_factor, {"n": 1}, r"n must be an integer >= 2, got 1"),
    (fully_synthetic_variance, {"n": 1}, r"n must be an integer >= 2, got 1"),
    (fully_synthetic_variance, {"sampling_bias": -1}, r"sampling_bias must be a number in \(0, 1\], got -1"),
    (class_share_chain, {"proportion": 0.0}, r"proportion must be a number in \(0, 1\), got 0.0"),
    (class_share_chain, {"proportion": 1.0}, r"proportion must be a number in \(0, 1\), got 1.0"),
    (class_share_chain, {"n_synthetic": 0}, r"n_synthetic must be a positive integer, got 0"),
    (class_share_chain, {"generations": 0}, r"generations must be a positive integer, got 0"),
]


@pytest.mark.parametrize(("func", "override", "match"), _BAD_INPUTS)
def test_bad_input_raises(func, override, match):
    func(**_VALID[func])  # the baseline is valid
    with pytest.raises(ValueError, match=match):
        func(**{**_VALID[func], **override})

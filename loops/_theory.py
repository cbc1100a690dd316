"""Exact expectations of self-consuming loops for analytic models.

Truth is N(0, I_d). Generation 0 fits a Gaussian (sample mean; covariance divided by
N for ``"mle"``, by N - 1 for ``"unbiased"``, Bessel's correction) on ``n_real`` real
points. Generation g >= 1 fits the same way on a training set that contains samples of
model g - 1, drawn from N(mu_hat_{g-1}, lambda * Sigma_hat_{g-1}) (lambda = sampling bias).
Loop families follow Alemohammad et al., "Self-Consuming Generative Models Go MAD",
ICLR 2024; ``"accumulate"`` follows Gerstgrasser et al., "Is Model Collapse
Inevitable?", COLM 2024. Class shares refit from counts follow Wright-Fisher drift.
Arrays indexed by generation run over g = 0, ..., generations - 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Literal, get_args

import numpy as np
from scipy import special, stats

from genfair.errors import ConfigError, check_choice, check_number, check_positive_int, check_unit_interval
from genfair.data import stratified_counts
Estimator = Literal["mle", "unbiased"]
# The loop kinds whose moments this module derives: the four built-in ones (a kind added since
# runs without closed forms until its recursion is written here).
LoopKind = Literal["fully_synthetic", "augment", "fresh", "accumulate"]


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    return check_positive_int(name, value, minimum=minimum)


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    return check_choice(name, value, allowed)


def _check_open_unit(name: str, value: object, *, closed_right: bool) -> float:
    if closed_right:
        return check_unit_interval(name, value)
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < value < 1.0:
        raise ConfigError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


def _bessel_offset(estimator: object) -> int:
    """c in the divisor N - c: 0 for ``"mle"``, 1 for ``"unbiased"`` (Bessel)."""
    return {"mle": 0, "unbiased": 1}[_check_choice("estimator", estimator, get_args(Estimator))]


@dataclass(frozen=True)
class GaussianMoments:
    """Exact per-generation moments of the fitted Gaussian.

    mean_sq_err: (generations,) E||mu_hat_g - mu||^2 = dim * s_g.
    trace_cov: (generations,) E[tr Sigma_hat_g] = dim * v_g.
    """

    mean_sq_err: np.ndarray
    trace_cov: np.ndarray


def gaussian_loop_moments(
    *,
    kind: LoopKind,
    generations: int,
    n_real: int,
    n_synthetic: int,
    sampling_bias: float = 1.0,
    estimator: Estimator = "mle",
    dim: int = 1,
) -> GaussianMoments:
    """Exact E||mu_hat_g - mu||^2 and E[tr Sigma_hat_g] of a Gaussian self-consuming loop.

    Per coordinate, s_g = E[(mu_hat_g - mu)^2], v_g = E[Sigma_hat_g,ii]; n = n_real,
    m = n_synthetic, lambda = sampling_bias, c = 0 (mle) or 1 (unbiased).
    A point drawn from model j has E[(x - mu)^2] = s_j + lambda v_j; a real point, 1.
    (1) v_g = (sum_i E[(x_i - mu)^2] - N_g s_g) / (N_g - c)   [sum (x_i - xbar)^2 identity]
    (2) fully_synthetic: s_g = s_{g-1} + lambda v_{g-1} / m   (Alemohammad et al. 2024)
    (3) fresh: s_g = (n + m^2 s_{g-1} + m lambda v_{g-1}) / (n + m)^2
    (4) augment: s_g = (n + 2 n m k_{g-1} + m^2 s_{g-1} + m lambda v_{g-1}) / (n + m)^2,
        k_g = E[e_real e_g] = (1 + m k_{g-1}) / (n + m), k_0 = 1 / n
    (5) accumulate: N_g = n + g m, s_g = s_{g-1} + m lambda v_{g-1} / N_g^2, bounded in g
        (Gerstgrasser et al. 2024)
    (6) s_0 = 1 / n, v_0 = (n - 1) / (n - c).
    Returns arrays of shape (generations,).
    """
    kind = _check_choice("kind", kind, get_args(LoopKind))
    c = _bessel_offset(estimator)
    generations = _check_int("generations", generations)
    n = _check_int("n_real", n_real, 2)
    m = _check_int("n_synthetic", n_synthetic, 2 if kind == "fully_synthetic" else 1)
    lam = _check_open_unit("sampling_bias", sampling_bias, closed_right=True)
    dim = _check_int("dim", dim)
    s, v = np.empty(generations), np.empty(generations)
    s[0], v[0] = 1.0 / n, (n - 1.0) / (n - c)  # Eq. (6)
    cross = 1.0 / n  # k_{g-1}, augment only
    pool = float(n)  # sum of E[(x - mu)^2] over the accumulated pool
    for g in range(1, generations):
        drawn = s[g - 1] + lam * v[g - 1]  # E[(x - mu)^2], x ~ model g - 1
        if kind == "fully_synthetic":
            size, total = m, m * drawn
            s[g] = s[g - 1] + lam * v[g - 1] / m  # Eq. (2)
        elif kind == "fresh":
            size, total = n + m, n + m * drawn
            s[g] = (n + m * m * s[g - 1] + m * lam * v[g - 1]) / size**2  # Eq. (3)
        elif kind == "augment":
            size, total = n + m, n + m * drawn
            s[g] = (n + 2 * n * m * cross + m * m * s[g - 1] + m * lam * v[g - 1]) / size**2
            cross = (1.0 + m * cross) / size  # Eq. (4)
        elif kind == "accumulate":
            size = n + g * m
            pool += m * drawn
            total = pool
            s[g] = s[g - 1] + m * lam * v[g - 1] / size**2  # Eq. (5)
        else:  # unreachable after validation
            raise ValueError(f"kind must be one of {list(get_args(LoopKind))}, got {kind!r}")
        v[g] = (total - size * s[g]) / (size - c)  # Eq. (1)
    return GaussianMoments(mean_sq_err=dim * s, trace_cov=dim * v)


def fresh_fixed_point(
    *,
    n_real: int,
    n_synthetic: int,
    sampling_bias: float = 1.0,
    estimator: Estimator = "mle",
    dim: int = 1,
) -> GaussianMoments:
    """Limit of the ``"fresh"`` loop's moments, independent of the initial model.

    Setting s_g = s_{g-1} = s and v_g = v_{g-1} = v in Eqs. (1) and (3) of
    :func:`gaussian_loop_moments` gives the linear system (Alemohammad et al. 2024, fresh
    data loop converges to a fixed point):
        (n^2 + 2 n m) s - m lambda v = n
        n s + (n + m - c - m lambda) v = n.
    Returns arrays of shape (1,): dim * s and dim * v.
    """
    c = _bessel_offset(estimator)
    n = _check_int("n_real", n_real, 2)
    m = _check_int("n_synthetic", n_synthetic)
    lam = _check_open_unit("sampling_bias", sampling_bias, closed_right=True)
    dim = _check_int("dim", dim)
    system = np.array([[n * n + 2.0 * n * m, -m * lam], [float(n), n + m - c - m * lam]])
    s, v = np.linalg.solve(system, np.array([float(n), float(n)]))
    return GaussianMoments(mean_sq_err=np.array([dim * s]), trace_cov=np.array([dim * v]))


def chi_mean_factor(n: int) -> float:
    """c_n = E[sqrt(chi2_{n-1} / (n - 1))] = sqrt(2 / (n - 1)) Gamma(n/2) / Gamma((n-1)/2).

    E[sigma_hat] = c_n sigma for the Bessel-corrected standard deviation of n Gaussian
    points (the c4 bias factor). Computed with log-gamma for stability at large n.
    """
    n = _check_int("n", n, 2)
    log_ratio = special.gammaln(n / 2) - special.gammaln((n - 1) / 2)
    return float(np.sqrt(2.0 / (n - 1)) * np.exp(log_ratio))


@dataclass(frozen=True)
class VarianceLaw:
    """Exact law summaries of sigma2_hat_g in the 1-D fully synthetic loop, each (generations,).

    mean: E[sigma2_hat_g]; variance: Var[sigma2_hat_g]; sigma_mean: E[sigma_hat_g];
    log_mean: E[log sigma2_hat_g]; log_variance: Var[log sigma2_hat_g].
    """

    mean: np.ndarray
    variance: np.ndarray
    sigma_mean: np.ndarray
    log_mean: np.ndarray
    log_variance: np.ndarray


def fully_synthetic_variance(
    *, generations: int, n: int, sampling_bias: float = 1.0, estimator: Estimator = "mle"
) -> VarianceLaw:
    """Law of the fitted variance in the 1-D fully synthetic loop with n_real = n_synthetic = n.

    sigma2_hat_g = lambda^g prod_{j=0}^{g} Q_j, Q_j iid chi2_{n-1} / D, D = n (mle) or
    n - 1 (unbiased, Bessel), sigma^2 = 1 (Alemohammad et al. 2024; Shumailov et al. 2024).
    E[Q] = (n-1)/D, E[Q^2] = (n-1)(n+1)/D^2, E[sqrt Q] = c_n sqrt((n-1)/D), so
        mean = lambda^g E[Q]^(g+1),  variance = lambda^(2g) E[Q^2]^(g+1) - mean^2,
        sigma_mean = lambda^(g/2) (c_n sqrt((n-1)/D))^(g+1)   (= c_n^(g+1) if unbiased, lambda = 1),
        log_mean = (g+1)(psi((n-1)/2) + log(2/D)) + g log lambda,
        log_variance = (g+1) psi'((n-1)/2).
    For the unbiased estimator with lambda = 1, mean = 1 for all g (a martingale) while
    sigma2_hat_g -> 0 almost surely (log_mean -> -inf).
    """
    generations = _check_int("generations", generations)
    n = _check_int("n", n, 2)
    lam = _check_open_unit("sampling_bias", sampling_bias, closed_right=True)
    divisor = n - _bessel_offset(estimator)
    g = np.arange(generations, dtype=float)
    mean = lam**g * ((n - 1.0) / divisor) ** (g + 1)
    second = lam ** (2 * g) * ((n - 1.0) * (n + 1.0) / divisor**2) ** (g + 1)
    root_mean = chi_mean_factor(n) * np.sqrt((n - 1.0) / divisor)
    return VarianceLaw(
        mean=mean,
        variance=second - mean**2,
        sigma_mean=lam ** (g / 2) * root_mean ** (g + 1),
        log_mean=(g + 1) * (special.digamma((n - 1) / 2) + np.log(2.0 / divisor)) + g * np.log(lam),
        log_variance=(g + 1) * special.polygamma(1, (n - 1) / 2),
    )


@dataclass(frozen=True)
class ShareChain:
    """Wright-Fisher drift of one class's count in the fully synthetic loop.

    count_probs: (generations, max(n_real, n_synthetic) + 1), P(count_g = k).
    mean_share: (generations,) E[count_g / N_g] (= proportion, a martingale).
    extinct_prob: (generations,) P(count_g = 0), non-decreasing (0 is absorbing).
    eventual_loss_prob: P(count_g = 0 for some g) = 1 - proportion.
    mean_loss_time: E[first g with count_g = 0 | the class is lost].
    """

    count_probs: np.ndarray
    mean_share: np.ndarray
    extinct_prob: np.ndarray
    eventual_loss_prob: float
    mean_loss_time: float


def _binomial_kernel(size_from: int, size_to: int) -> np.ndarray:
    """(size_from + 1, size_to + 1) matrix, row k = Binomial(size_to, k / size_from) pmf."""
    shares = np.arange(size_from + 1) / size_from
    return stats.binom.pmf(np.arange(size_to + 1)[None, :], size_to, shares[:, None])


def _mean_loss_time(start: np.ndarray, n: int, m: int) -> float:
    """E[T | lost], T = first g with count_g = 0, via the absorbing chain on {0, ..., m}.

    For g >= 1 the transient states are 1..m-1 with kernel Q; h_j = 1 - j/m is the loss
    probability from j (the share is a martingale). tau = E[T_rest 1{lost}] solves
    tau = h + Q tau, i.e. tau = (I - Q)^{-1} h (fundamental matrix, Kemeny-Snell).
    From count_0 = k > 0: E[T 1{lost}] = (1 - k/n) + sum_j K0[k, j] tau_j.
    """
    h = 1.0 - np.arange(1, m) / m
    if m > 1:
        transient = _binomial_kernel(m, m)[1:m, 1:m]
        tau = np.linalg.solve(np.eye(m - 1) - transient, h)
    else:
        tau = np.zeros(0)
    counts = np.arange(1, n + 1)
    per_start = (1.0 - counts / n) + _binomial_kernel(n, m)[1:, 1:m] @ tau
    loss = float(start[0] + start[1:] @ (1.0 - counts / n))  # a class absent at generation 0 is lost at T = 0
    return float(start[1:] @ per_start / loss)


def class_share_chain(
    *, proportion: float, n_real: int, n_synthetic: int, generations: int, stratified: bool = False
) -> ShareChain:
    """Exact law of one class's count when each generation resamples from the last one's shares.

    count_0 ~ Binomial(n_real, p); count_g ~ Binomial(m, count_{g-1} / N_{g-1}) with
    N_0 = n_real, N_g = m = n_synthetic (Wright-Fisher drift; fully synthetic loop,
    Wyllie et al. 2024). The share is a martingale absorbed at 0 or 1, so the class is
    lost with probability 1 - p. The distribution is propagated exactly by matrix products.

    With ``stratified=True`` generation 0 holds exactly ``k = stratified_counts(n_real, [p, 1-p])[0]``
    samples of the class (genfair's real draws of labelled classes are stratified), so
    ``count_0 = k`` and the loss probability is ``1 - k / n_real``.
    """
    p = _check_open_unit("proportion", proportion, closed_right=False)
    n = _check_int("n_real", n_real)
    m = _check_int("n_synthetic", n_synthetic)
    generations = _check_int("generations", generations)
    probs = np.zeros((generations, max(n, m) + 1))
    if stratified:
        k = stratified_counts(n, [p, 1.0 - p])[0]
        probs[0, k] = 1.0
        p = k / n
    else:
        probs[0, : n + 1] = stats.binom.pmf(np.arange(n + 1), n, p)
    if generations > 1:
        probs[1, : m + 1] = probs[0, : n + 1] @ _binomial_kernel(n, m)
    kernel = _binomial_kernel(m, m)
    for g in range(2, generations):
        probs[g, : m + 1] = probs[g - 1, : m + 1] @ kernel
    sizes = np.where(np.arange(generations) == 0, n, m)
    return ShareChain(
        count_probs=probs,
        mean_share=probs @ np.arange(probs.shape[1]) / sizes,
        extinct_prob=probs[:, 0].copy(),
        eventual_loss_prob=1.0 - p,
        mean_loss_time=_mean_loss_time(probs[0, : n + 1], n, m),
    )


def truncated_gaussian_variance_factor(radius: float, *, dim: int = 1) -> float:
    """kappa_d(c): the covariance of N(mu, Sigma) truncated to the ellipsoid
    (x - mu)^T Sigma^-1 (x - mu) <= c^2 is kappa_d(c) Sigma, with

        kappa_d(c) = P(chi2_{d+2} <= c^2) / P(chi2_d <= c^2)        (d = dim).

    Why: x = mu + Sigma^(1/2) z with z ~ N(0, I_d) given |z| <= c; by symmetry Cov z = E[|z|^2
    | |z|^2 <= c^2] / d I, and E[R 1{R <= t}] = d P(chi2_{d+2} <= t) for R ~ chi2_d. For d = 1
    this is the variance of a standard normal truncated to [-c, c]:

        kappa_1(c) = 1 - 2 c phi(c) / (2 Phi(c) - 1).

    In a loop whose verifier keeps, and redraws until it has, the samples within radius c of
    their class's fitted mean (``loop.curation.rule=confidence`` with threshold
    P(chi2_d >= c^2), see :func:`confidence_radius`), the kept samples are independent given
    the model, with mean mu_hat and covariance kappa Sigma_hat: the moments that the recursion
    of :func:`gaussian_loop_moments` uses, which therefore holds exactly with
    sampling_bias = kappa_d(c) (MLE: E[sigma2_hat_g] = ((n-1)/n) (kappa (m-1)/m)^g, fully
    synthetic, d = 1).
    """
    c = check_number("radius", radius, above=0)
    d = _check_int("dim", dim)
    return float(stats.chi2.cdf(c * c, d + 2) / stats.chi2.cdf(c * c, d))


def confidence_radius(threshold: float, *, dim: int = 1) -> float:
    """The radius c that the Gaussian verifier's ``confidence`` rule keeps at ``threshold``:
    its score is P(chi2_d >= r^2) for a sample at Mahalanobis radius r, so score >= threshold
    iff r <= c with P(chi2_d >= c^2) = threshold (for d = 1: c = Phi^-1(1 - threshold / 2))."""
    t = _check_open_unit("threshold", threshold, closed_right=False)
    d = _check_int("dim", dim)
    return float(np.sqrt(stats.chi2.isf(t, d)))

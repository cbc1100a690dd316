"""The paired tests behind :mod:`genfair.comparisons`: the t-interval, the sign-flip permutation
test and the Holm and Benjamini–Hochberg adjustments, equations (1)-(6) of that module's docstring.
Imported from ``genfair.comparisons``, their public home.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from genfair.errors import ConfigError, check_positive_int

__all__ = ["EXACT_MAX", "NORMAL_MIN", "benjamini_hochberg", "holm", "sign_flip_pvalue"]

EXACT_MAX = 16  # enumerate all 2^n sign flips up to this many pairs (65 536 patterns)
NORMAL_MIN = 2000  # from this many pairs on, the sign-flip distribution's normal limit (see _SignCache)
_TIE_RTOL = 1e-9  # |mean| within this fraction of mean|d| of the observed one counts as a tie


def sign_flip_pvalue(differences: np.ndarray, *, permutations: int = 10000, generator: np.random.Generator) -> float:
    """Two-sided sign-flip permutation p-value of the mean of ``differences (n,)``, (4).

    Under H0 (each d_r symmetric about 0) every sign vector s is equally likely; the statistic is
    |mean(s * d)|. For n <= 16 all 2^n vectors are enumerated (exact; the smallest p is
    2 / 2^n); otherwise ``permutations`` random ones from ``generator``, with the observed
    signs counted once: p = (1 + #extreme) / (1 + B). "Extreme" is |mean(s * d)| >= |d̄| - tol,
    tol = 1e-9 mean|d|, so float ties count. Zeros stay zero under any flip; all zeros give p = 1.
    NaN for n = 0.
    """
    d = np.asarray(differences, dtype=float).ravel()
    if d.size == 0:
        return math.nan
    if not np.isfinite(d).all():
        raise ConfigError("differences must be finite (drop the pairs with a missing value first)")
    if d.size <= EXACT_MAX:
        return _extreme_fraction(d, _all_signs(d.size), observed_included=True)
    check_positive_int("permutations", permutations)
    return _extreme_fraction(d, _random_signs(generator, permutations, d.size), observed_included=False)


@functools.lru_cache(maxsize=EXACT_MAX + 1)
def _all_signs(n: int) -> np.ndarray:
    """Every sign vector of length n, ``(2^n, n)`` of -1.0 / +1.0 (read-only, cached)."""
    bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    signs = 1.0 - 2.0 * bits
    signs.setflags(write=False)
    return signs


def _random_signs(generator: np.random.Generator, permutations: int, n: int) -> np.ndarray:
    return 1.0 - 2.0 * generator.integers(0, 2, size=(permutations, n))


def _extreme_fraction(d: np.ndarray, signs: np.ndarray, *, observed_included: bool) -> float:
    observed = abs(d.sum())
    tol = _TIE_RTOL * np.abs(d).sum()
    extreme = int(np.count_nonzero(np.abs(signs @ d) >= observed - tol))
    if observed_included:  # exact enumeration: the observed signs are one of the rows
        return extreme / len(signs)
    return (1 + extreme) / (1 + len(signs))


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), NaN-aware.

    With the m finite p-values sorted, p_(1) <= ... <= p_(m):

        p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))                                      (5)

    NaN entries stay NaN and do not count in m. Returns an array of the input's shape.
    """
    return _adjust_sorted(
        pvalues, lambda p, m: np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p))
    )


def benjamini_hochberg(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values (false discovery rate), NaN-aware.

    With the m finite p-values sorted, p_(1) <= ... <= p_(m):

        q_(i) = min_{j >= i} min(1, m p_(j) / j)                                            (6)

    NaN entries stay NaN and do not count in m. Returns an array of the input's shape.
    """
    return _adjust_sorted(
        pvalues, lambda p, m: np.minimum.accumulate(np.minimum(1.0, m * p / np.arange(1, m + 1))[::-1])[::-1]
    )


def _adjust_sorted(pvalues: Sequence[float] | np.ndarray, adjust) -> np.ndarray:
    """``adjust(p_sorted (m,), m)`` applied to the finite p-values in ascending order and written
    back in place; NaN entries stay NaN and do not count in m."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p.ravel()))
    if finite.size:
        order = finite[np.argsort(p.ravel()[finite], kind="stable")]
        adjusted.ravel()[order] = adjust(p.ravel()[order], finite.size)
    return adjusted


class _SignCache:
    """The sign vectors (4) uses for n pairs: all of them for n <= 16, else B random ones drawn
    from ``SeedSequence(seed, spawn_key=(n,))``, drawn once per n and shared by the cells. From
    n = 2000 pairs on (an analytic loop's thousands of replicates, where B x n random signs would
    take gigabytes) the sign-flipped sum's normal limit is used instead: under H0 sum(s d) has
    mean 0 and variance sum(d^2), so p = 2 (1 - Phi(|sum d| / sqrt(sum d^2))) (Lindeberg CLT;
    its error is far below the Monte-Carlo error of B = 10 000 flips at these n)."""

    def __init__(self, *, seed: int, permutations: int) -> None:
        self.seed, self.permutations, self._random = seed, permutations, {}

    def pvalue(self, d: np.ndarray) -> float:
        n = d.size
        if n == 0:
            return math.nan
        if n <= EXACT_MAX:
            return _extreme_fraction(d, _all_signs(n), observed_included=True)
        if n >= NORMAL_MIN:
            scale = math.sqrt(float(np.square(d).sum()))
            from scipy import stats

            return 1.0 if scale == 0 else float(2 * stats.norm.sf(abs(float(d.sum())) / scale))
        if n not in self._random:
            generator = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(n,)))
            self._random[n] = _random_signs(generator, self.permutations, n)
        return _extreme_fraction(d, self._random[n], observed_included=False)

    def label(self, n: int) -> str:
        if n <= EXACT_MAX:
            return "exact"
        return "normal limit" if n >= NORMAL_MIN else f"{self.permutations} random"


def _paired_stats(x: np.ndarray, y: np.ndarray, *, level: float, signs: _SignCache) -> dict:
    """(1)-(4) for the finite pairs of ``x (R,)`` (the arm) and ``y (R,)`` (the baseline)."""
    from scipy import stats  # imported where used: the CLI's config schemas import this module
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    d = x - y
    n = int(d.size)
    nan = math.nan
    mean_diff = float(d.mean()) if n else nan
    se = t_stat = half = p_t = nan
    if n >= 2:
        se = float(d.std(ddof=1) / math.sqrt(n))
        with np.errstate(divide="ignore", invalid="ignore"):
            t_stat = float(np.float64(mean_diff) / np.float64(se))
        p_t = float(2 * stats.t.sf(abs(t_stat), n - 1)) if not math.isnan(t_stat) else nan
        half = float(stats.t.ppf((1 + level) / 2, n - 1)) * se
    return {"n": n, "mean_arm": float(x.mean()) if n else nan, "mean_baseline": float(y.mean()) if n else nan,
            "mean_diff": mean_diff, "se": se, "level": level, "lo": mean_diff - half, "hi": mean_diff + half,
            "p_t": p_t, "p_signflip": signs.pvalue(d) if n >= 2 else nan, "signflip": signs.label(n)}  # fmt: skip

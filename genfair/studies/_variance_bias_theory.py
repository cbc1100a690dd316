"""What each arm of the variance-bias study should reach: the minimiser of its expected objective.

Two kinds of estimator of a 1-D Gaussian's (mean, variance) from a set of n points compete:

- scale-equivariant ones, ``H(X) = (a xbar, c SS)`` (``xbar`` the set's mean,
  ``SS = sum_i (x_i - xbar)^2``): MLE is (1, 1/n), Bessel's correction (1, 1/(n-1));
- the constant ``H(X) = (0, v)``, which never reads its input (the degenerate solution).

The objective of ``genfair.hypernets.PLEObjective`` (NLL per sample; D with ``normalize="parameter"``,
i.e. halved over the two generated values; gradients through H(X), H(Y) and the
reparameterised Y ~ N(a xbar, c SS)) has the expectation, over one set and its draws,

    NLL    = 1/2 log(2 pi) + 1/2 E log(c SS) + 1/(2 n c) + (1 - a)^2 E[xbar^2 / SS] / (2 c)
    D_draw = 1/2 [a^2 ((1 - a)^2 E xbar^2 + c E SS / n) + c^2 E SS^2 g(c)],
             g(c) = (n^2 - 1) c^2 - 2 (n - 1) c + 1
    D_exp  = 1/2 [a^2 (1 - a)^2 E xbar^2 + c^2 E SS^2 ((n - 1) c - 1)^2]

since ``E[(ybar - xbar)^2] = (1 - a)^2 xbar^2 + c SS / n`` and ``SS_Y = c SS chi^2_{n-1}``. With
``SS = sigma^2 chi^2_{n-1}`` independent of ``xbar ~ N(mu, sigma^2 / n)``: ``E SS = (n - 1) E sigma^2``,
``E SS^2 = (n^2 - 1) E sigma^4``, ``E log SS = E log sigma^2 + digamma((n - 1) / 2) + log 2``,
``E[xbar^2 / SS] = (E mu^2 E sigma^-2 + 1/n) / (n - 3)``; sigma^2 is log-uniform on
``variance_range`` and mu uniform on ``[-mean_range, mean_range]``. The constant has D = 0 for
both forms (H(Y) = H(X)) and its best v is ``E x^2 = E mu^2 + E sigma^2``, so its NLL is
``1/2 log(2 pi E x^2) + 1/2`` and its relative bias ``E x^2 E sigma^-2 - 1``.

The predicted relative bias is that of the better of the two: ``(n - 1) c - 1`` for the
scale-equivariant optimum, e.g. -1/n at lam = 0 and Bessel's 0 for the enforced constraint (which
the constant also meets, at a far worse likelihood). A penalty heavy enough makes the constant
win: the per-draw D above lam of about 2 for the default study. This is the objective's optimum;
stochastic training may stop short of it or, with noisy heavy penalties, drift elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Prediction", "predict_relative_bias"]


@dataclass(frozen=True)
class Prediction:
    """``relative_bias`` of the objective's minimiser; ``solution``: ``"scale_equivariant"`` or
    ``"constant"``; ``c``: the variance factor of the scale-equivariant optimum."""

    relative_bias: float
    solution: str
    c: float


def predict_relative_bias(
    *, n: int, lam: float, discrepancy: str, constraint: str, variance_range: tuple[float, float], mean_range: float
) -> Prediction:
    """The prediction of the module docstring; ``n > 3`` (``E[1 / SS]`` is infinite otherwise)."""
    if n <= 3:
        raise ValueError(f"n must be > 3 for the expected objective, got {n}")
    if discrepancy not in ("draw", "expectation"):
        raise ValueError(f"discrepancy must be one of ['draw', 'expectation'], got {discrepancy!r}")
    if constraint == "augmented_lagrangian":
        return Prediction(0.0, "scale_equivariant", 1.0 / (n - 1))
    if lam == 0:  # maximum likelihood
        return Prediction(-1.0 / n, "scale_equivariant", 1.0 / n)
    low, high = variance_range
    sigma = _moments(low, high)
    mu2 = mean_range**2 / 3
    ss, ss2 = (n - 1) * sigma[1], (n * n - 1) * sigma[2]
    xbar2 = mu2 + sigma[1] / n
    xbar2_over_ss = (mu2 * sigma[-1] + 1.0 / n) / (n - 3)
    log_ss = sigma["log"] + float(torch.special.digamma(torch.tensor((n - 1) / 2, dtype=torch.float64))) + math.log(2)

    def objective(p: np.ndarray) -> float:
        log_c, a = p
        c = math.exp(log_c)
        nll = 0.5 * (log_c + log_ss) + 1 / (2 * n * c) + (1 - a) ** 2 * xbar2_over_ss / (2 * c)
        if discrepancy == "draw":
            g = (n * n - 1) * c * c - 2 * (n - 1) * c + 1
            d = a * a * ((1 - a) ** 2 * xbar2 + c * ss / n) + c * c * ss2 * g
        else:
            d = a * a * (1 - a) ** 2 * xbar2 + c * c * ss2 * ((n - 1) * c - 1) ** 2
        return nll + lam * d / 2

    from scipy.optimize import minimize  # imported here: scipy.optimize takes ~1 s, which every CLI start would pay

    best = minimize(objective, np.array([math.log(1.0 / n), 1.0]), method="Nelder-Mead",
                    options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 20_000})
    c = math.exp(best.x[0])
    x2 = mu2 + sigma[1]
    if 0.5 * math.log(x2) + 0.5 < best.fun:
        return Prediction(x2 * sigma[-1] - 1, "constant", c)
    return Prediction((n - 1) * c - 1, "scale_equivariant", c)


def _moments(low: float, high: float) -> dict:
    """``E[sigma^(2k)]`` for k in (-1, 1, 2) and ``E log sigma^2``, sigma^2 log-uniform on [low, high]."""
    if high == low:
        return {-1: 1 / low, 1: low, 2: low**2, "log": math.log(low)}
    span = math.log(high / low)
    moments = {k: (high**k - low**k) / (k * span) for k in (-1, 1, 2)}
    return {**moments, "log": (math.log(low) + math.log(high)) / 2}

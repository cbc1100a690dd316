"""Distances between real and generated samples in a fixed feature space: FD and KID.

Features come from an evaluation network's penultimate layer, ``(n, d)``; everything is computed
in float64. The feature network is our own (no Inception weights here), so the Fréchet distance
is called FD, never FID (see ``docs/references.md`` §3).

Fréchet distance (Heusel et al. 2017, with the Gaussian W2 of Dowson & Landau 1982):

    FD = ||mu_r - mu_f||^2 + tr(S_r + S_f - 2 (S_r S_f)^{1/2})                               (1)
    tr((S_r S_f)^{1/2}) = sum_i sqrt(lambda_i(S_r^{1/2} S_f S_r^{1/2}))                      (2)

with sample means and unbiased (ddof = 1) sample covariances. (2) holds because S_r S_f and the
symmetric PSD matrix S_r^{1/2} S_f S_r^{1/2} are similar; ``eigh`` of the latter is stable where
``sqrtm`` of the non-symmetric product can return complex noise. FD is biased upward: two samples
of N samples each from the same N(mu, I_d) give, to first order,

    E[FD] ~= 2d/N (means) + (d^2 + d)/(2N) (covariances) = (d^2 + 5d) / (2N)                   (3)

so compare FD only at equal sample sizes, or report (3) beside it. Per-class FD inherits (3) with
N the class size: a minority class has a larger FD for that reason alone.

Kernel inception distance (Bińkowski et al. 2018): the unbiased MMD^2 (Gretton et al. 2012, Lemma 6)

    MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
              - 2/(mn) sum_{i, j} k(x_i, y_j)                                                (4)

with the cubic polynomial kernel k(x, y) = (gamma x.y + coef0)^degree, gamma = 1/d (5). It is
computed over the full sets (no subsets): the subset average of Bińkowski et al. has the same
expectation, and a higher variance. Its expectation is exactly 0 for identical distributions, so
small negative values are normal.

Both are written for count weights w (how often each sample appears in a bootstrap resample), so
the bootstrap in :mod:`genfair.metrics._fidelity` recomputes them on resampled sets without copying
features: FD (1) from weighted moments, exactly as on the copied features; KID (4) from quadratic
forms of the kernel matrices, as the U-statistic over pairs of distinct samples (copies of one
sample do not form a pair; see :func:`_kids`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genfair.errors import ConfigError, check_positive_int
from genfair.metrics._array_like import as_tensor

__all__ = ["as_features", "frechet_distance", "kid"]


def as_features(name: str, x: Any, *, dim: int | None = None) -> torch.Tensor:
    """``x`` (a tensor or array-like ``(n, d)`` of real numbers) as a float64 tensor on the CPU.

    Raises :class:`ConfigError` naming ``name`` for another shape, a non-numeric or complex dtype,
    non-finite values, or ``d != dim`` when ``dim`` is given.
    """
    x = as_tensor(name, x)
    if x.dim() != 2:
        raise ConfigError(f"{name} must have shape (n, d), got shape {tuple(x.shape)}")
    if x.dtype == torch.bool or x.is_complex():
        raise ConfigError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if dim is not None and x.shape[1] != dim:
        raise ConfigError(f"{name} must have d = {dim} features like the real features, got shape {tuple(x.shape)}")
    x = x.detach().to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(x).all():
        raise ConfigError(f"{name} must be finite, got {int((~torch.isfinite(x)).sum())} NaN or infinite values")
    return x


def frechet_distance(real_features: Any, fake_features: Any) -> float:
    """FD (1) between ``real_features (m, d)`` and ``fake_features (n, d)``; m, n >= 2. Symmetric.

    Biased upward by about (d^2 + 5d)/(2N) at N samples per side (3): compare at equal sizes.
    """
    real, fake = _pair(real_features, fake_features, minimum=2, what="FD")
    return float(_frechet_distances(real, fake, torch.ones(1, len(real)), torch.ones(1, len(fake)))[0])


def kid(
    real_features: Any, fake_features: Any, *, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> float:
    """Unbiased MMD^2 (4) with the polynomial kernel (gamma x.y + coef0)^degree (5), gamma = 1/d by default.

    Args: ``real_features (m, d)``, ``fake_features (n, d)`` with m, n >= 2.
    """
    real, fake = _pair(real_features, fake_features, minimum=2, what="KID")
    kernel = _kernel_options(real.shape[1], degree=degree, gamma=gamma, coef0=coef0)
    return float(_kids(real, fake, torch.ones(1, len(real)), torch.ones(1, len(fake)), kernel)[0])


def _pair(real_features: Any, fake_features: Any, *, minimum: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    real = as_features("real_features", real_features)
    fake = as_features("fake_features", fake_features, dim=real.shape[1])
    for name, x in (("real_features", real), ("fake_features", fake)):
        if len(x) < minimum:
            raise ConfigError(f"{name} must have at least {minimum} samples for {what}, got {len(x)}")
    return real, fake


def _kernel_options(d: int, *, degree: int, gamma: float | None, coef0: float) -> tuple[int, float, float]:
    """(degree, gamma, coef0) checked, with gamma = 1/d filled in."""
    degree = check_positive_int("degree", degree)
    gamma = 1.0 / d if gamma is None else gamma
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma > 0:
        raise ConfigError(f"gamma must be a positive number or None (1/d), got {gamma!r}")
    if isinstance(coef0, bool) or not isinstance(coef0, (int, float)) or not np.isfinite(coef0):
        raise ConfigError(f"coef0 must be a finite number, got {coef0!r}")
    return degree, float(gamma), float(coef0)


def _weighted_moments(x: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(B, d)`` and unbiased covariance ``(B, d, d)`` of the resamples of ``x (n, d)`` in which
    sample i appears ``weights[b, i]`` times (each row of ``weights (B, n)`` sums to n)."""
    n, d = x.shape
    centred = x - x.mean(0)  # shift first: the moments of centred data lose no digits to cancellation
    mean = weights @ centred / n
    outer = (centred[:, :, None] * centred[:, None, :]).reshape(n, d * d)
    second = (weights @ outer).reshape(-1, d, d)
    cov = (second - n * mean[:, :, None] * mean[:, None, :]) / (n - 1)
    return mean + x.mean(0), cov


def _frechet_distances(
    real: torch.Tensor, fake: torch.Tensor, real_weights: torch.Tensor, fake_weights: torch.Tensor
) -> torch.Tensor:
    """FD (1)-(2) of each resample pair: ``real (m, d)``, ``fake (n, d)``, count weights ``(B, m)`` and
    ``(B, n)`` -> ``(B,)``."""
    mean_r, cov_r = _weighted_moments(real, real_weights.to(real.dtype))
    mean_f, cov_f = _weighted_moments(fake, fake_weights.to(fake.dtype))
    values, vectors = torch.linalg.eigh(cov_r)
    root_r = (vectors * values.clamp(min=0).sqrt()[:, None, :]) @ vectors.mT  # S_r^{1/2}
    cross = root_r @ cov_f @ root_r
    cross_eigenvalues = torch.linalg.eigvalsh((cross + cross.mT) / 2)  # symmetrised against round-off
    trace = (
        torch.diagonal(cov_r, dim1=-2, dim2=-1).sum(-1)
        + torch.diagonal(cov_f, dim1=-2, dim2=-1).sum(-1)
        - 2 * cross_eigenvalues.clamp(min=0).sqrt().sum(-1)
    )
    return (mean_r - mean_f).square().sum(-1) + trace.clamp(min=0)


def _kernel(x: torch.Tensor, y: torch.Tensor, options: tuple[int, float, float]) -> torch.Tensor:
    degree, gamma, coef0 = options
    return (gamma * (x @ y.T) + coef0) ** degree  # (5)


def _kids(
    real: torch.Tensor,
    fake: torch.Tensor,
    real_weights: torch.Tensor,
    fake_weights: torch.Tensor,
    options: tuple[int, float, float],
) -> torch.Tensor:
    """MMD^2_u (4) of each resample (same shapes as :func:`_frechet_distances`) -> ``(B,)``.

    A resample holding sample i w_i times is scored by the U-statistic over pairs of distinct
    samples, sum_{i != j} w_i w_j k(x_i, x_j) / sum_{i != j} w_i w_j = (w^T K w - sum_i w_i^2 K_ii)
    / (N^2 - sum_i w_i^2), which is (4) for w = 1. Two copies of one sample are not a pair of
    independent draws: counting their k(x_i, x_i) as (4) on the copied features would bias every
    replicate upward (by about the mean of K_ii - k(x_i, x_j) over N, the size of KID itself).
    """
    wr, wf = real_weights.to(real.dtype), fake_weights.to(fake.dtype)

    def within(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        k = _kernel(x, x, options)
        squares = w.square()
        return (((w @ k) * w).sum(-1) - squares @ torch.diagonal(k)) / (w.sum(-1).square() - squares.sum(-1))

    cross = ((wr @ _kernel(real, fake, options)) * wf).sum(-1) / (wr.sum(-1) * wf.sum(-1))
    return within(real, wr) + within(fake, wf) - 2 * cross

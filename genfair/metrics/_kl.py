"""Monte-Carlo KL divergence between a known data density and fitted models."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genfair.errors import ConfigError, check_positive_int

__all__ = ["KLEstimate", "monte_carlo_kl"]


@dataclass(frozen=True)
class KLEstimate:
    """``value (R,)``: the Monte-Carlo estimate of KL(p || q_r) in nats, one per model replicate;
    ``se (R,)``: its Monte-Carlo standard error, ``sd_i(log p - log q_r) / sqrt(samples)``."""

    value: torch.Tensor
    se: torch.Tensor


@torch.no_grad()
def monte_carlo_kl(
    truth: torch.nn.Module,
    model: torch.nn.Module,
    *,
    samples: int = 100_000,
    generator: torch.Generator | None = None,
    chunk: int = 8_192,
) -> KLEstimate:
    """KL(p || q) = E_{x ~ p}[log p(x) - log q(x)], estimated with ``samples`` draws x_i ~ p.

    Mayer et al. (arXiv 2405.13977) report this with 1e5 samples for their 1-D GMM. The same
    draws serve every replicate of ``model`` (common random numbers), so differences between
    replicates or models carry no sampling noise of their own beyond ``se``.

    Args:
        truth: the data density p, a single model (``replicates == 1``) with ``sample(n,
            generator=)`` -> ``(1, n, d)`` and ``log_prob(x)`` -> ``(1, n)``.
        model: the fitted q, with ``log_prob(x (1, n, d))`` broadcasting to ``(R, n)`` (as
            :class:`~genfair.models.GaussianMixtureModel` does).
        samples: number of draws from p.
        generator: draws the samples; pass the same seed to compare models on the same draws.
        chunk: draws evaluated at once (bounds memory to about ``R * chunk * K`` values).
    """
    samples = check_positive_int("samples", samples, minimum=2)
    x = truth.sample(samples, generator=generator)
    if x.dim() < 3 or x.shape[0] != 1:
        raise ConfigError(f"truth must be a single model (replicates == 1); its samples have shape {tuple(x.shape)}")
    total = square = None
    for start in range(0, samples, check_positive_int("chunk", chunk)):
        part = x[:, start : start + chunk]
        ratio = truth.log_prob(part) - model.log_prob(part)  # (R, chunk): log p - log q
        total = ratio.sum(1) if total is None else total + ratio.sum(1)
        square = ratio.square().sum(1) if square is None else square + ratio.square().sum(1)
    mean = total / samples
    variance = (square / samples - mean.square()).clamp(min=0) * samples / (samples - 1)
    return KLEstimate(mean, (variance / samples).sqrt())

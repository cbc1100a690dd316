"""The small protocol every generative model follows, and the optional abilities.

A generative model is an ``nn.Module`` with a per-sample ``loss`` and a ``sample`` method.
Extra abilities are separate protocols that a model declares by subclassing them, so that
procedures (the loop, a trainer) can ask ``isinstance(model, ClosedFormFit)``.
``ReparameterizedSampler`` is ``genfair.hypernets.ReparameterizedSampler``, the same class.

All tensors carry a leading ``replicates`` dimension for models that hold many independent
chains at once (the analytic models); a single deep model has ``replicates == 1``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

# Defined in the hypernetwork package, which stands alone (the PLE objective asks a target for
# it); re-exported here so genfair's models declare it beside their other abilities.
from genfair.hypernets import ReparameterizedSampler

__all__ = ["GenerativeModel", "ClosedFormFit", "BiasedSampler", "ReparameterizedSampler"]


@runtime_checkable
class GenerativeModel(Protocol):
    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample negative log-likelihood (or its bound): x ``(R, n, *shape)`` -> ``(R, n)``."""
        ...

    def sample(
        self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` samples per replicate, ``(R, n, *shape)``; ``labels (R, n)`` fixes their classes."""
        ...


@runtime_checkable
class ClosedFormFit(Protocol):
    def fit(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Set the parameters to the estimator's closed-form value on x ``(R, n, *shape)``."""
        ...


@runtime_checkable
class BiasedSampler(Protocol):
    def sample_biased(
        self,
        n: int,
        *,
        bias: float,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Samples with sampling bias ``bias`` in (0, 1] (Alemohammad et al. 2024, §2): 1 is
        unbiased, smaller values trade diversity for typicality (for a Gaussian, N(mu, bias * Sigma))."""
        ...

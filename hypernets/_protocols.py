"""The ability of a target model that the PLE objective asks about.

It lives here, not in ``genfair.models``, so that the hypernetwork package stands alone;
``genfair.models`` re-exports the same class, and genfair's models declare it by subclassing.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["ReparameterizedSampler"]


@runtime_checkable
class ReparameterizedSampler(Protocol):
    def rsample(
        self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Like ``sample``, but differentiable in the model's parameters (the reparameterisation
        trick), so a penalty on the samples can send gradients back into the weights."""
        ...

"""The abilities of a target model that the PLE objective asks about.

It lives here, not in ``genfair.models``, so that the hypernetwork package stands alone;
``genfair.models`` re-exports the same class, and genfair's models declare it by subclassing.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["ReparameterizedSampler", "SteppedSampler"]


@runtime_checkable
class ReparameterizedSampler(Protocol):
    def rsample(
        self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Like ``sample``, but differentiable in the model's parameters (the reparameterisation
        trick), so a penalty on the samples can send gradients back into the weights."""
        ...


@runtime_checkable
class SteppedSampler(Protocol):
    """A model whose ``sample`` integrates a reverse process in a number of steps the caller may
    choose (a diffusion model's sampler), at most ``max_sample_steps``; ``steps=None`` is the
    model's own number. PLE's ``sample_steps`` draws its samples Y with it."""

    @property
    def max_sample_steps(self) -> int: ...

    def sample(
        self,
        n: int,
        *,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        steps: int | None = None,
    ) -> torch.Tensor: ...

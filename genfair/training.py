"""One gradient step, the way every training loop in genfair takes it: refuse a NaN or infinite
loss, naming who trains, the step and the value, before any weight moves; then zero the
gradients, backpropagate and step the optimiser.

The error type is the caller's: the fits of a self-consuming loop raise
:class:`~genfair.errors.GenerationFailed` for their generation (so that arm stops and the
others run), the studies and the classifiers trained outside a generation raise
:class:`FloatingPointError`. The message is always one line of the form
``{what}: {name} is {value} at step {step} of {steps}`` with ``step`` 1-based, e.g.
``estimator mle: loss is nan at step 37 of 800``.

Example:
    >>> model = torch.nn.Linear(2, 1)
    >>> optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    >>> loss = model(torch.ones(1, 2)).square().mean()
    >>> take_step(loss, optimiser, what="example", step=0, steps=1)
    >>> check_finite_loss(torch.tensor(float("nan")), what="example", step=4, steps=10)
    Traceback (most recent call last):
    ...
    FloatingPointError: example: loss is nan at step 5 of 10
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genfair.progress import terminal_progress

__all__ = ["check_finite_loss", "take_step"]


def check_finite_loss(
    loss: torch.Tensor,
    *,
    what: str,
    step: int,
    steps: int,
    name: str = "loss",
    error: Callable[[str], Exception] = FloatingPointError,
) -> None:
    """Raise ``error(message)`` if the scalar ``loss`` of 0-based ``step`` (of ``steps``) is NaN
    or infinite; ``what`` names who trains (``"estimator mle"``), ``name`` the loss
    (``"discriminator loss"``). See the module docstring for the message."""
    value = loss.detach()
    if not bool(torch.isfinite(value)):
        raise error(f"{what}: {name} is {float(value):g} at step {step + 1} of {steps}")


def take_step(
    loss: torch.Tensor,
    optimiser: torch.optim.Optimizer,
    *,
    what: str,
    step: int,
    steps: int,
    error: Callable[[str], Exception] = FloatingPointError,
) -> None:
    """One step on the scalar ``loss``: :func:`check_finite_loss`, then
    ``optimiser.zero_grad(set_to_none=True)``, ``loss.backward()``, ``optimiser.step()``; on a
    terminal the step line of :mod:`genfair.progress` follows it."""
    check_finite_loss(loss, what=what, step=step, steps=steps, error=error)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    progress = terminal_progress()
    if progress is not None:
        progress.update(what, step, steps)

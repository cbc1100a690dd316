"""Where models compute (``device=auto|cpu|cuda|cuda:N``), and random draws that are the same
stream on every device.

Randomness stays on the CPU: the loop's ``torch.Generator`` objects are CPU generators (see
``genfair.seeding``), and a model on a GPU draws its noise from them on the CPU and moves it to
its device (:func:`randn`, :func:`randint`, :func:`multinomial`). A run therefore draws the same
numbers on every device; only the arithmetic that follows may round differently on a GPU. Draws
without a generator come from the global CPU RNG, which every fit seeds under
``torch.random.fork_rng``.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> randn((2, 3), generator=torch.Generator().manual_seed(0), device="cpu").shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

from genfair.errors import ConfigError

__all__ = ["module_device", "multinomial", "randint", "randn", "resolve_device"]

ALLOWED = "'auto' (CUDA when present, else the CPU), 'cpu', 'cuda' or 'cuda:N'"


def resolve_device(value: str | torch.device) -> torch.device:
    """The ``torch.device`` that ``device=value`` names: ``auto`` is ``cuda:0`` (the current CUDA
    device) when CUDA is available, else ``cpu``; ``cuda`` and ``cuda:N`` must exist here.

    Raises:
        ConfigError: one line naming ``device``, the value and what is allowed.
    """
    text = str(value).strip() if isinstance(value, (str, torch.device)) else None
    if text is None or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise ConfigError(f"device must be {ALLOWED}, got {value!r}")
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"device={text} but CUDA is not available on this machine; use device=auto or device=cpu")
    count = torch.cuda.device_count()
    index = int(text.split(":")[1]) if ":" in text else torch.cuda.current_device()
    if index >= count:
        raise ConfigError(f"device={text} but this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", index)


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer (the CPU if it has neither)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def randn(
    shape: Sequence[int],
    *,
    generator: torch.Generator | None,
    device: str | torch.device,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Standard normal draws of ``shape`` on ``device``, drawn on the generator's device (the
    CPU for ``None``: the global CPU RNG) and moved."""
    drawn = torch.randn(tuple(shape), generator=generator, dtype=dtype, device=_draw_device(generator))
    return drawn.to(device)


def randint(
    high: int, shape: Sequence[int], *, generator: torch.Generator | None, device: str | torch.device
) -> torch.Tensor:
    """Integers uniform in ``[0, high)`` of ``shape`` (int64) on ``device``, drawn like :func:`randn`."""
    return torch.randint(high, tuple(shape), generator=generator, device=_draw_device(generator)).to(device)


def multinomial(probs: torch.Tensor, n: int, *, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` classes drawn with replacement from ``probs (K,)`` or ``(R, K)``, on ``probs``'s
    device, drawn like :func:`randn`."""
    drawn = torch.multinomial(probs.to(_draw_device(generator)), n, replacement=True, generator=generator)
    return drawn.to(probs.device)


def _draw_device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device

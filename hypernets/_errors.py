"""The error the hypernetwork package raises for bad arguments, and the checks that raise it.

The package stands alone (torch and the standard library only), so it has its own error rather
than genfair's ``ConfigError``. Messages follow genfair's one-line pattern: name the argument,
show the value and say what is allowed, e.g. ``chunk_size must be a positive integer, got 0``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["HyperNetworkError", "check_choice", "check_number", "check_positive_int"]


class HyperNetworkError(ValueError):
    """A bad argument to a hypernetwork, its target layout, the PLE objective or a probe.

    One class for every check, wrong types included (``target must be a torch.nn.Module``), so a
    caller catches one error; it is a ``ValueError`` like genfair's ``ConfigError``.
    """


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an integer >= 1 (not a bool), else raise :class:`HyperNetworkError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HyperNetworkError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise :class:`HyperNetworkError`."""
    allowed = list(allowed)
    if value not in allowed:
        raise HyperNetworkError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_number(name: str, value: Any, *, above: float | None = None, at_least: float | None = None) -> float:
    """Return ``value`` as a float if it is a finite number (not a bool) above the given bound,
    else raise :class:`HyperNetworkError` (``rho must be a number > 0, got 0``).

    Example:
        >>> check_number("lam", 0.1, at_least=0)
        0.1
    """
    low, low_open = (above, True) if above is not None else (at_least, False)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if not ok:
        bounds = "" if low is None else f" {'>' if low_open else '>='} {low:g}"
        raise HyperNetworkError(f"{name} must be a number{bounds}, got {value!r}")
    return float(value)

"""The one error type genfair raises for bad configs, data and checkpoints.

Messages follow one pattern: name the argument (or config key), show the value and say what
is allowed, e.g. ``n_real must be a positive integer, got 0``. The CLI prefixes the config
group (``loop.n_real must be ...``) and prints the message as a single line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["ConfigError", "check_choice", "check_positive_int", "check_unit_interval"]


class ConfigError(ValueError):
    """Bad user input: a config value, a data file or a checkpoint."""


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer >= ``minimum``, else raise :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise :class:`ConfigError`."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_unit_interval(name: str, value: Any, *, closed_left: bool = False) -> float:
    """Return ``value`` if it lies in (0, 1] (or [0, 1] with ``closed_left``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (0.0 <= value <= 1.0 if closed_left else 0.0 < value <= 1.0)
    if not ok:
        interval = "[0, 1]" if closed_left else "(0, 1]"
        raise ConfigError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)

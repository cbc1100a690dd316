"""The error types genfair raises: :class:`ConfigError` for bad configs, data and checkpoints
(bad input, caught before any work), :class:`GenerationFailed` for a generation that broke at
run time (a NaN or infinite loss or parameter).

Messages follow one pattern: name the argument (or config key), show the value and say what
is allowed, e.g. ``n_real must be a positive integer, got 0``. The CLI prefixes the config
group (``loop.n_real must be ...``) and prints the message as a single line.

The hypernetwork package stands alone and raises its own
:class:`genfair.hypernets.HyperNetworkError` (same message pattern); :data:`USER_ERRORS` holds
both, for the places that turn bad input into a one-line message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from genfair.hypernets import HyperNetworkError

__all__ = [
    "USER_ERRORS", "ConfigError", "GenerationFailed", "check_choice", "check_number", "check_penalty_weights",
    "check_positive_int", "check_unit_interval",
]


class ConfigError(ValueError):
    """Bad user input: a config value, a data file or a checkpoint."""


USER_ERRORS: tuple[type[ValueError], ...] = (ConfigError, HyperNetworkError)
"""Bad input from genfair or from the hypernetwork package (``except USER_ERRORS``)."""


class GenerationFailed(RuntimeError):
    """A generation broke at run time, e.g. ``estimator mle: loss is nan at step 37 of 800``.

    Attributes:
        generation: the generation that failed (0-based).
        reason: what went wrong, one line.
        arm: the experiment arm, once the experiment has named it (``None`` inside a loop).
    """

    def __init__(self, generation: int, reason: str, *, arm: str | None = None) -> None:
        self.generation, self.reason, self.arm = generation, reason, arm
        where = f"arm {arm} failed at generation {generation}" if arm is not None else f"generation {generation} failed"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # picklable despite the keyword-only argument (multiprocessing)
        return (_rebuild_generation_failed, (self.generation, self.reason, self.arm))


def _rebuild_generation_failed(generation: int, reason: str, arm: str | None) -> GenerationFailed:
    return GenerationFailed(generation, reason, arm=arm)


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


def check_number(
    name: str,
    value: Any,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
    note: str = "",
) -> float:
    """Return ``value`` as a float if it is a finite number (not a bool) within the given bounds, else
    raise :class:`ConfigError` saying which (``lr must be a number > 0, got -1``; ``level must
    be a number in (0, 1), got 2``); ``note`` is added after the bounds, e.g. ``"(lam = 0 is
    the hyper_mle arm)"``.

    Example:
        >>> check_number("keep", 0.5, above=0, at_most=1)
        0.5
    """
    low, low_open = (above, True) if above is not None else (at_least, False)
    high, high_open = (below, True) if below is not None else (at_most, False)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            bounds = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            bounds = f"{'>' if low_open else '>='} {low:g}"
        elif high is not None:
            bounds = f"{'<' if high_open else '<='} {high:g}"
        else:
            bounds = ""
        text = " ".join(part for part in ("a number", bounds, note) if part)
        raise ConfigError(f"{name} must be {text}, got {value!r}")
    return float(value)


def check_penalty_weights(name: str, values: Iterable[Any]) -> list[float]:
    """The PLE arms' penalty weights ``values`` as floats if they are distinct finite numbers > 0
    (lam = 0 is the ``hyper_mle`` arm, always run), else refused naming ``name``."""
    weights = list(values)
    finite = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in weights)
    if not finite or len(set(weights)) != len(weights):
        raise ConfigError(f"{name} must be distinct numbers > 0 (lam 0 is hyper_mle), got {weights!r}")
    return [float(v) for v in weights]


def check_unit_interval(name: str, value: Any, *, closed_left: bool = False) -> float:
    """Return ``value`` if it lies in (0, 1] (or [0, 1] with ``closed_left``)."""
    if closed_left:
        return check_number(name, value, at_least=0, at_most=1)
    return check_number(name, value, above=0, at_most=1)

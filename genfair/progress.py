"""Progress of long work: a one-line step counter on a terminal, and time-left estimates.

Every gradient loop in genfair steps through :func:`genfair.training.take_step`, which reports
each step to :func:`terminal_progress`: on an interactive terminal (``stderr`` is a TTY) and in
the command's own process it keeps one line up to date,

    estimator ple: step 37 of 60 · 0.41 s/step · about 9 s left

rewritten at most every 0.1 s and cleared when the loop ends, so log lines stay clean. Worker
processes (``workers > 1``) show no step line (several processes would write over each other);
they report each generation as a log line instead (``genfair.experiment``), which the command's
process prints and writes to its log. ``GENFAIR_PROGRESS=0`` turns the step line off.

Example:
    >>> import io
    >>> clock = iter(range(100)).__next__  # one second per step
    >>> out = io.StringIO()
    >>> progress = StepProgress(out, interval=0.0, clock=clock)
    >>> for step in range(3):
    ...     progress.update("example", step, 10)
    >>> out.getvalue().rsplit("\\r", 1)[-1]
    'example: step 3 of 10 · 1 s/step · about 7 s left'
    >>> format_duration(95), format_duration(7200)
    ('1.6 min', '2.0 h')
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["StepProgress", "format_duration", "terminal_progress"]


def format_duration(seconds: float) -> str:
    """``seconds`` for people: ``"9 s"``, ``"1.6 min"``, ``"2.0 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class StepProgress:
    """One status line on ``stream`` for the steps of a training loop (see the module docstring).

    Args:
        stream: where the line goes (a terminal).
        interval: the least time, in seconds, between two rewrites of the line.
        clock: seconds, monotonic (:func:`time.monotonic`; a test passes its own).
    """

    def __init__(self, stream: TextIO, *, interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.interval, self.clock = stream, interval, clock
        self._started: float | None = None
        self._first = 0
        self._shown = float("-inf")
        self._width = 0

    def update(self, what: str, step: int, steps: int) -> None:
        """Report that 0-based ``step`` of ``steps`` of ``what`` is done."""
        now = self.clock()
        if step + 1 >= steps:
            self._write("")  # the loop is over: clear the line
            self._started = None
            return
        if self._started is None or step <= self._first:  # a new loop (or a resumed one) starts timing here
            self._started, self._first = now, step
        if now - self._shown < self.interval:
            return
        line = f"{what}: step {step + 1} of {steps}"
        if step > self._first:
            per_step = (now - self._started) / (step - self._first)
            line += f" · {per_step:.3g} s/step · about {format_duration(per_step * (steps - step - 1))} left"
        self._shown = now
        self._write(line)

    def _write(self, line: str) -> None:
        padding = " " * max(self._width - len(line), 0)
        self.stream.write("\r" + line + padding + ("\r" if not line else ""))
        self.stream.flush()
        self._width = len(line)


_TERMINAL: dict[int, StepProgress | None] = {}


def terminal_progress() -> StepProgress | None:
    """The step line for ``sys.stderr`` if it is a terminal, this is not a worker process and
    ``GENFAIR_PROGRESS`` is not ``0``; else ``None``."""
    stream = sys.stderr
    key = id(stream)
    if key not in _TERMINAL:
        wanted = os.environ.get("GENFAIR_PROGRESS", "1") != "0"
        worker = multiprocessing.parent_process() is not None
        interactive = bool(getattr(stream, "isatty", lambda: False)())
        _TERMINAL.clear()
        _TERMINAL[key] = StepProgress(stream) if wanted and interactive and not worker else None
    return _TERMINAL[key]

"""``evaluation.extra_metrics``: metrics from the user's own code, measured every generation
beside the built-in ones, written to ``metrics.csv`` and ``replicates.npz`` and drawn in
``figures/<name>.png``.

On the command line (a list of ``_target_`` entries, each with its keyword arguments)::

    genfair '+evaluation.extra_metrics=[{_target_:mypkg.metrics.MeanDistance,samples:200}]'

Each ``_target_`` (``"package.module.Name"``) builds an :class:`ExtraMetric`; the builder also
passes ``classes`` (the data's class names) where the target's signature takes it. An
:class:`ExtraMetric` has

  - ``name``: the metric part of its ``metric/group`` keys (letters, digits and ``_``);
  - ``bounds``: ``(lo, hi)``, the range its values lie in (``None``: unbounded on that side). A
    metric declared in ``(0, 1)`` gets the logit-scale interval of ``metrics.csv``, like the
    built-in shares and recalls; any other gets the plain t-interval;
  - ``measure(model, train, generator) -> {group: (R,) tensor}``: the value of every replicate
    for each group it reports (class names, ``all``), after the generation's fit; ``generator``
    is the measure's own stream, used after the built-in metrics (so they do not change).

Checked before any work: the target imports, is callable, and builds an object with a ``name``,
declared ``bounds`` and a callable ``measure``. Checked every generation: each value is ``(R,)``;
otherwise the arm stops with one line naming the target, the generation and the group.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from genfair.errors import ConfigError, GenerationFailed
from genfair.targets import check_target, import_target

__all__ = ["ExtraMetric", "build_extra_metrics", "unit_interval_metrics", "with_extra_metrics"]

KEY = "evaluation.extra_metrics"


@runtime_checkable
class ExtraMetric(Protocol):
    """What an ``evaluation.extra_metrics`` entry builds (see the module docstring)."""

    name: str
    bounds: tuple[float | None, float | None]

    def measure(self, model: Any, train: Any, generator: Any) -> Mapping[str, Any]: ...


def build_extra_metrics(entries: Sequence[Mapping[str, Any]], *, classes: Sequence[str]) -> list[ExtraMetric]:
    """The metrics of ``evaluation.extra_metrics``, each built and checked (see the module docstring)."""
    built = []
    for index, entry in enumerate(entries):
        key = f"{KEY}[{index}]._target_"
        if not isinstance(entry, Mapping) or "_target_" not in entry:
            raise ConfigError(f"{KEY}[{index}] must be a mapping with _target_=package.module.Name, got {entry!r}")
        arguments = {k: v for k, v in entry.items() if k != "_target_"}
        target = check_target(key, entry["_target_"])
        factory = import_target(target, key=key)
        if not callable(factory):
            raise ConfigError(f"{key}={target} must be a class or function, got {type(factory).__name__}")
        if _accepts(factory, "classes") and "classes" not in arguments:
            arguments["classes"] = tuple(classes)
        try:
            metric = factory(**arguments)
        except TypeError as error:
            raise ConfigError(f"{key}={target} refused its arguments {sorted(arguments)}: {error}") from None
        built.append(_checked(metric, key=f"{key}={target}"))
    names = [metric.name for metric in built]
    if len(set(names)) != len(names):
        raise ConfigError(f"{KEY}: names must differ, got {names}")
    return built


def _checked(metric: Any, *, key: str) -> ExtraMetric:
    name = getattr(metric, "name", None)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ConfigError(f"{key}: name must be letters, digits and _ (the metric of its metric/group keys), got {name!r}")
    bounds = getattr(metric, "bounds", None)
    valid = isinstance(bounds, tuple | list) and len(bounds) == 2 and all(
        b is None or (isinstance(b, int | float) and not isinstance(b, bool)) for b in bounds
    )
    if not valid:
        raise ConfigError(
            f"{key}: bounds must be declared as (lo, hi), numbers or None (unbounded), e.g. (0, 1) for a share "
            f"or (0, None) for a distance, got {bounds!r}"
        )
    if not callable(getattr(metric, "measure", None)):
        raise ConfigError(f"{key}: {type(metric).__name__} has no method 'measure(model, train, generator)'")
    return metric


def unit_interval_metrics(bounds: Mapping[str, Sequence[float | None]]) -> list[str]:
    """The metrics of ``bounds`` (``{name: (lo, hi)}``, a plug-in's or a built-in measure's
    declaration) declared in ``(0, 1)``: their intervals take the logit scale."""
    return [name for name, declared in bounds.items() if tuple(declared) == (0, 1)]


def with_extra_metrics(measure: Callable, metrics: Sequence[ExtraMetric], *, targets: Sequence[str]) -> Callable:
    """``measure`` followed by ``metrics`` (``targets``: their ``_target_``, for messages); the
    loop's measure (``genfair.loops.simulate``)."""
    from genfair.loops import Measurement

    def measure_all(model: Any, train: Any, generator: Any, *, generation: int | None = None) -> Measurement:
        measured = measure(model, train, generator)
        measured = measured if isinstance(measured, Measurement) else Measurement(measured)
        values = dict(measured.values)
        replicates = train.x.shape[0]
        for metric, target in zip(metrics, targets):
            for group, value in metric.measure(model, train, generator).items():
                shape = tuple(getattr(value, "shape", ()))
                if shape != (replicates,):
                    raise GenerationFailed(
                        -1 if generation is None else generation,
                        f"{KEY} {target}: group {group!r} has values of shape {shape}, expected ({replicates},)",
                    )
                values[f"{metric.name}/{group}"] = value
        return Measurement(values, measured.intervals, measured.artifacts)

    return measure_all


def _accepts(factory: Callable, name: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())

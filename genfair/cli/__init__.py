"""Command-line entry points: ``genfair`` (a Hydra app), ``genfair-plot`` and ``genfair-aggregate``.

Every name is imported on first use (PEP 562): ``genfair --help`` and ``genfair --version`` load
neither torch nor Hydra's composition, and ``genfair`` does not load the plotting and statistics
modules of ``genfair-plot`` and ``genfair-aggregate``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Aggregate",
    "GenfairConfig",
    "aggregate",
    "aggregate_main",
    "arms_from_config",
    "main",
    "overlay",
    "plot_main",
    "register_configs",
    "study_config",
]

_LAZY = {
    "Aggregate": "genfair.cli._aggregate",
    "aggregate": "genfair.cli._aggregate",
    "aggregate_main": "genfair.cli._aggregate",
    "arms_from_config": "genfair.cli._app",
    "main": "genfair.cli._main",
    "study_config": "genfair.cli._app",
    "GenfairConfig": "genfair.cli._config",
    "register_configs": "genfair.cli._config",
    "overlay": "genfair.cli._plot",
    "plot_main": "genfair.cli._plot",
}


def __getattr__(name: str) -> Any:
    """The public names of :data:`__all__`, each imported from its module on first use."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'genfair.cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

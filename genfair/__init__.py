"""genfair: a lab for fairness and self-consumption (model autophagy) in generative models.

Subpackages: ``genfair.data``, ``genfair.models``, ``genfair.metrics``, ``genfair.plots``, and
``genfair.experiment`` (runs arms of an experiment into a run directory; the CLI's engine);
the loop simulator is ``genfair.loops`` and the hypernetworks ``genfair.hypernets`` (their code
lives in the repository's top-level folders ``loops/`` and ``hypernets/``).

Importing ``genfair`` imports nothing else, so ``import genfair.hypernets`` loads no other part
of genfair; ``genfair.ConfigError`` and ``genfair.GenerationFailed`` load ``genfair.errors``
when first used (PEP 562).

Example:
    >>> from pathlib import Path
    >>> from genfair.experiment import Arm, run_experiment
    >>> from genfair.data import ClassMixtureData
    >>> from genfair.models import AnalyticModelConfig
    >>> from genfair.loops import LoopConfig
    >>> arm = Arm("mle", ClassMixtureData(class_names=["majority", "minority"]),
    ...           AnalyticModelConfig(), LoopConfig(generations=5, replicates=200))
    >>> result = run_experiment([arm], seed=0, run_dir=Path("outputs/notebook"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["ConfigError", "GenerationFailed", "__version__"]

_LAZY = {"ConfigError": "genfair.errors", "GenerationFailed": "genfair.errors"}


def __getattr__(name: str) -> Any:
    """``genfair.ConfigError`` and ``genfair.GenerationFailed``, imported on first use."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'genfair' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

"""genfair: a lab for fairness and self-consumption (model autophagy) in generative models.

Subpackages: ``genfair.data``, ``genfair.models``, ``genfair.metrics``, ``genfair.plots``, and
``genfair.experiment`` (runs arms of an experiment into a run directory; the CLI's engine);
the loop simulator is ``genfair.loops`` and the hypernetworks ``genfair.hypernets`` (their code
lives in the repository's top-level folders ``loops/`` and ``hypernets/``).

Importing ``genfair`` imports nothing else but ``genfair._lazy`` (the lazy exports of every
package, standard library only), so ``import genfair.hypernets`` loads no other part of genfair;
``genfair.ConfigError`` and ``genfair.GenerationFailed`` load ``genfair.errors`` when first used
(PEP 562).

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

from typing import TYPE_CHECKING

from genfair._lazy import lazy_exports

if TYPE_CHECKING:  # the public names, each imported on first use (genfair._lazy)
    from genfair.errors import ConfigError, GenerationFailed

__version__ = "0.1.0"

__all__ = ["ConfigError", "GenerationFailed", "__version__"]

__getattr__, __dir__ = lazy_exports(__name__, __file__)

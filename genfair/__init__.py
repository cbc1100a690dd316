"""genfair: a lab for fairness and self-consumption (model autophagy) in generative models.

Subpackages: ``genfair.data``, ``genfair.models``, ``genfair.metrics``, ``genfair.plots``, and
``genfair.experiment`` (runs arms of an experiment into a run directory; the CLI's engine);
the loop simulator lives in the top-level package ``loops`` and the hypernetworks in ``hypernets``.

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

from genfair.errors import ConfigError, GenerationFailed

__version__ = "0.1.0"

__all__ = ["ConfigError", "GenerationFailed", "__version__"]

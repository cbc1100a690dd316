"""Self-consuming loops: fit, measure, sample, retrain, over many generations and chains.

Example:
    >>> from genfair.data import GaussianData
    >>> from genfair.models import ClassGaussianModel
    >>> from genfair.loops import LoopConfig, simulate
    >>> config = LoopConfig(kind="fully_synthetic", generations=5, n_real=10, n_synthetic=10, replicates=2000)
    >>> result = simulate(data=GaussianData(), model=ClassGaussianModel(replicates=2000), config=config,
    ...                   seed=0, measure=lambda model, train, generator: {"var/all": model.covs[:, 0, 0, 0]})
    >>> result.values("var/all").mean(axis=1).round(2)  # E = 0.9 ** (g + 1)
    array([0.9 , 0.81, 0.73, 0.66, 0.59])
"""

from genfair.loops._config import LOOP_KINDS, LoopConfig, LoopKind
from genfair.loops._simulate import (
    Fit,
    FitCheckpoint,
    FitContext,
    GenerationRecord,
    GenerationStore,
    LoopResult,
    Measurement,
    check_finite_parameters,
    fit_closed_form,
    simulate,
)
from genfair.loops._store import RunStore
from genfair.loops._training_set import draw_labels, training_set

__all__ = [
    "LOOP_KINDS",
    "Fit",
    "FitCheckpoint",
    "FitContext",
    "GenerationRecord",
    "GenerationStore",
    "LoopConfig",
    "LoopKind",
    "LoopResult",
    "Measurement",
    "RunStore",
    "check_finite_parameters",
    "draw_labels",
    "fit_closed_form",
    "simulate",
    "training_set",
]

"""Estimators of a loop's generations: the model's own fit, hypernetworks (with or without the
PLE penalty) and the anchored loop form; ``estimator=...`` on the command line.

Example:
    >>> from genfair.estimators import EstimatorConfig, build_fit
    >>> fit = build_fit(EstimatorConfig(name="ple", steps=50), sample_shape=(2,), num_classes=2,
    ...                 positive={"shares": "softmax", "covs": "psd"}, per_replicate=True)
"""

from genfair.estimators._config import ESTIMATORS, EstimatorConfig, EstimatorName
from genfair.estimators._fits import AnchoredFit, GradientFit, HypernetworkFit, build_fit
from genfair.estimators._step_checkpoints import StepCheckpoints

__all__ = [
    "ESTIMATORS",
    "AnchoredFit",
    "EstimatorConfig",
    "EstimatorName",
    "GradientFit",
    "HypernetworkFit",
    "StepCheckpoints",
    "build_fit",
]

"""Metrics of fidelity across generations, and their summaries across replicates."""

from genfair.metrics._gaussian import class_gaussian_metrics, gaussian_w2_sq
from genfair.metrics._kl import KLEstimate, monte_carlo_kl
from genfair.metrics._summary import ReplicateSummary, summarize_replicates
from genfair.metrics._classifier import (
    CLASSIFIER_VERSION,
    ClassifierConfig,
    EvaluationClassifier,
    TrainedClassifier,
    load_or_train_classifier,
    train_classifier,
)

__all__ = [
    "KLEstimate",
    "ReplicateSummary",
    "class_gaussian_metrics",
    "gaussian_w2_sq",
    "monte_carlo_kl",
    "summarize_replicates",
    "CLASSIFIER_VERSION",
    "ClassifierConfig",
    "EvaluationClassifier",
    "TrainedClassifier",
    "load_or_train_classifier",
    "train_classifier",
]

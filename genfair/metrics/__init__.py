"""Metrics of fidelity across generations (closed-form, and in a feature space with bootstrap
intervals), class shares, and their summaries across replicates."""

from typing import TYPE_CHECKING

from genfair._lazy import lazy_exports

if TYPE_CHECKING:  # the public names, each imported on first use (genfair._lazy)
    from genfair.metrics._bootstrap import percentile_interval, resample_confusion, stratified_resample
    from genfair.metrics._extra import ExtraMetric, build_extra_metrics, unit_interval_metrics, with_extra_metrics
    from genfair.metrics._class_shares import corrected_shares, fairness_discrepancy, raw_shares, representation_ratio
    from genfair.metrics._feature_distances import frechet_distance, kid
    from genfair.metrics._fidelity import RATIO_GROUP, Estimate, fidelity_metrics
    from genfair.metrics._gaussian import class_gaussian_metrics, gaussian_w2_sq
    from genfair.metrics._kl import KLEstimate, monte_carlo_kl
    from genfair.metrics._prdc import PRDCContributions, prdc, prdc_contributions
    from genfair.metrics._summary import ReplicateSummary, logit_interval, mean_interval, summarize_replicates
    from genfair.metrics._classifier import (
        CLASSIFIER_VERSION,
        EvaluationClassifier,
        TrainedClassifier,
        load_or_train_classifier,
        train_classifier,
    )
    from genfair.metrics._classifier_config import ClassifierConfig

__all__ = [
    "RATIO_GROUP",
    "Estimate",
    "ExtraMetric",
    "build_extra_metrics",
    "unit_interval_metrics",
    "with_extra_metrics",
    "KLEstimate",
    "PRDCContributions",
    "ReplicateSummary",
    "class_gaussian_metrics",
    "corrected_shares",
    "fairness_discrepancy",
    "fidelity_metrics",
    "frechet_distance",
    "gaussian_w2_sq",
    "kid",
    "monte_carlo_kl",
    "percentile_interval",
    "prdc",
    "prdc_contributions",
    "raw_shares",
    "representation_ratio",
    "resample_confusion",
    "stratified_resample",
    "summarize_replicates",
    "CLASSIFIER_VERSION",
    "ClassifierConfig",
    "EvaluationClassifier",
    "TrainedClassifier",
    "load_or_train_classifier",
    "train_classifier",
    "logit_interval",
    "mean_interval",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)

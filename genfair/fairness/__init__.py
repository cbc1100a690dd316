"""Fairness metrics and remedies' building blocks: plain functions, one object that
disaggregates any metric by group with intervals (:class:`MetricFrame`), and a downstream
classifier evaluated by slice, Fairness Indicators style (:func:`train_downstream`,
:func:`evaluate_slices`), and the MinDiff case study built on it (:func:`run_downstream_mindiff`,
``genfair experiment=downstream_mindiff``).

Example:
    >>> import torch
    >>> from genfair.fairness import mmd2, reweighing_factors
    >>> float(mmd2(torch.zeros(3, 1), torch.zeros(2, 1)))
    0.0
    >>> reweighing_factors(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])).tolist()
    [1.0, 1.0, 1.0, 1.0]
"""

from typing import TYPE_CHECKING

from genfair._lazy import lazy_exports

if TYPE_CHECKING:  # the public names, each imported on first use (genfair._lazy)
    from genfair.fairness._downstream import (
        DownstreamClassifier,
        TrainedDownstream,
        binary_target,
        grad_reverse,
        resolve_slices,
        similarity_correlation,
        train_downstream,
    )
    from genfair.fairness._downstream_config import CLASSIFIER_REMEDIES, INTERVALS, KERNELS, DownstreamConfig
    from genfair.fairness._frame import Interval, MetricFrame, jackknife_buckets, jackknife_se
    from genfair.fairness._mindiff_case_study import run_downstream_mindiff
    from genfair.fairness._mindiff_config import DownstreamArm, DownstreamMindiffConfig
    from genfair.fairness._mmd import mmd2
    from genfair.fairness._reweighing import reweighing_factors
    from genfair.fairness._slices import (
        SLICE_METRICS,
        SliceReport,
        accuracy_at,
        evaluate_slices,
        false_negative_rate,
        false_positive_rate,
        true_positive_rate,
    )

__all__ = [
    "CLASSIFIER_REMEDIES",
    "DownstreamArm",
    "DownstreamClassifier",
    "DownstreamConfig",
    "DownstreamMindiffConfig",
    "INTERVALS",
    "Interval",
    "KERNELS",
    "MetricFrame",
    "SLICE_METRICS",
    "SliceReport",
    "TrainedDownstream",
    "accuracy_at",
    "binary_target",
    "evaluate_slices",
    "false_negative_rate",
    "false_positive_rate",
    "grad_reverse",
    "jackknife_buckets",
    "jackknife_se",
    "mmd2",
    "resolve_slices",
    "reweighing_factors",
    "run_downstream_mindiff",
    "similarity_correlation",
    "train_downstream",
    "true_positive_rate",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)

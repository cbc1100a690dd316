"""Fairness remedies for training a model on an imbalanced set (``remedy=...``): reweighting,
oversampling, SMOTE, Group DRO, MinDiff and hard example mining (docs/references.md §4)."""

from typing import TYPE_CHECKING

from genfair._lazy import lazy_exports

if TYPE_CHECKING:  # the public names, each imported on first use (genfair._lazy)
    from genfair.remedies._config import REMEDIES, RemedyConfig
    from genfair.remedies._losses import GroupDRO, class_weights, hard_example_loss, mindiff_loss
    from genfair.remedies._remedy import Remedy
    from genfair.remedies._sampling import balanced_batch, oversample_epoch, smote

__all__ = [
    "REMEDIES",
    "GroupDRO",
    "Remedy",
    "RemedyConfig",
    "balanced_batch",
    "class_weights",
    "hard_example_loss",
    "mindiff_loss",
    "oversample_epoch",
    "smote",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)

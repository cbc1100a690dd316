"""Data sources: analytic truths with exact answers, and real labelled images."""

from typing import TYPE_CHECKING

from genfair._lazy import lazy_exports

if TYPE_CHECKING:  # the public names, each imported on first use (genfair._lazy)
    from genfair.data._batch import Batch
    from genfair.data._custom import CustomData
    from genfair.data._gaussian import ClassMixtureData, GaussianData, stratified_counts
    from genfair.data._image_files import ImageFileData
    from genfair.data._images import DigitsData
    from genfair.data._priors import ClassGaussianPrior, GaussianPrior, MixturePrior, PriorDraw, PriorSource

__all__ = [
    "Batch", "ClassGaussianPrior", "ClassMixtureData", "CustomData", "DigitsData", "GaussianData", "GaussianPrior", "ImageFileData", "MixturePrior",
    "PriorDraw", "PriorSource", "stratified_counts",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)

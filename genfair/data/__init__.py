"""Data sources: analytic truths with exact answers, and real labelled images."""

from genfair.data._batch import Batch
from genfair.data._custom import CustomData
from genfair.data._gaussian import ClassMixtureData, GaussianData, stratified_counts
from genfair.data._image_files import ImageFileData
from genfair.data._images import DigitsData

__all__ = ["Batch", "ClassMixtureData", "CustomData", "DigitsData", "GaussianData", "ImageFileData", "stratified_counts"]

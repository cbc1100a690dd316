"""Data sources: analytic truths with exact answers (and, later, real images)."""

from genfair.data._batch import Batch
from genfair.data._gaussian import ClassMixtureData, GaussianData, stratified_counts

__all__ = ["Batch", "ClassMixtureData", "GaussianData", "stratified_counts"]

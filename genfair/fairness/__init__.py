"""Fairness metrics and remedies' building blocks: plain functions, and one object that
disaggregates any metric by group with intervals (:class:`MetricFrame`).

Example:
    >>> import torch
    >>> from genfair.fairness import mmd2, reweighing_factors
    >>> float(mmd2(torch.zeros(3, 1), torch.zeros(2, 1)))
    0.0
    >>> reweighing_factors(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])).tolist()
    [1.0, 1.0, 1.0, 1.0]
"""

from genfair.fairness._frame import Interval, MetricFrame
from genfair.fairness._mmd import KERNELS, mmd2
from genfair.fairness._reweighing import reweighing_factors

__all__ = ["KERNELS", "Interval", "MetricFrame", "mmd2", "reweighing_factors"]

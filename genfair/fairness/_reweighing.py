"""Kamiran–Calders reweighing (Kamiran & Calders 2012; AIF360's ``Reweighing``).

Each sample of group g with label y gets the weight ``P(g) P(y) / P(g, y)``: the weight that
makes group and label statistically independent in the weighted data (with weights, every
``P_w(g, y) = P(g) P(y)``). When the groups are the labels (a class-imbalanced generative data
set, where the "label" is the class), the factor is ``P(g) P(g) / P(g) = P(g)`` and reweighing
makes no sense; use inverse class frequency there (``remedy=reweight``, issue 5).
"""

from __future__ import annotations

from typing import Any

import torch

from genfair.errors import ConfigError
from genfair.metrics._array_like import as_tensor

__all__ = ["reweighing_factors"]


def reweighing_factors(groups: Any, labels: Any) -> torch.Tensor:
    """One float64 weight per sample, ``P(g) P(y) / P(g, y)`` from the empirical frequencies of
    ``groups (n,)`` and ``labels (n,)`` (integer codes; tensors, NumPy arrays or lists). The weights sum to n times the
    probability mass of the (group, label) cells that occur: n when every group has every label.

    Example:
        >>> groups = torch.tensor([0, 0, 0, 1]); labels = torch.tensor([1, 1, 0, 0])
        >>> reweighing_factors(groups, labels).tolist()
        [0.75, 0.75, 1.5, 0.5]
    """
    groups, labels = _codes("groups", groups), _codes("labels", labels)
    if groups.shape != labels.shape:
        raise ConfigError(f"groups and labels must have the same shape (n,), got {tuple(groups.shape)} and {tuple(labels.shape)}")
    n = groups.numel()
    _, g = torch.unique(groups, return_inverse=True)
    _, y = torch.unique(labels, return_inverse=True)
    cells = g * (int(y.max()) + 1) + y
    p_g = torch.bincount(g).to(torch.float64)[g] / n
    p_y = torch.bincount(y).to(torch.float64)[y] / n
    p_gy = torch.bincount(cells).to(torch.float64)[cells] / n
    return p_g * p_y / p_gy


def _codes(name: str, value: Any) -> torch.Tensor:
    value = as_tensor(name, value)
    if value.dim() != 1 or value.numel() == 0:
        raise ConfigError(f"{name} must be a non-empty 1-D array of integer codes, got shape {tuple(value.shape)}")
    if value.dtype.is_floating_point or value.dtype == torch.bool:
        raise ConfigError(f"{name} must hold integer codes, got dtype {value.dtype}")
    return value

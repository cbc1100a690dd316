"""Array-like inputs of the public metric and fairness functions: what scikit-learn and Fairlearn
take (NumPy arrays, lists, tuples, anything ``numpy.asarray`` reads), as well as tensors.

The shape and dtype checks stay with each function (``as_labels``, ``as_features``, ...); this only
turns the input into a tensor, or refuses it naming the argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genfair.errors import ConfigError

__all__ = ["as_tensor"]


def as_tensor(name: str, value: Any) -> torch.Tensor:
    """``value`` as a tensor: a tensor as it is (device, dtype and autograd kept), a NumPy array or
    a (nested) list of numbers as a CPU tensor of the dtype NumPy gives it (int64, float64, bool).

    Raises :class:`ConfigError` naming ``name`` for a ragged list or values that are not numbers.

    Example:
        >>> as_tensor("groups", [0, 1, 1]).tolist()
        [0, 1, 1]
    """
    if isinstance(value, torch.Tensor):
        return value
    try:
        array = np.asarray(value)
    except ValueError:  # a ragged nesting: NumPy refuses to guess
        raise ConfigError(f"{name} must be a tensor, numpy array or list of numbers, got a ragged {type(value).__name__}") from None
    if array.dtype.kind not in "biufc":  # bool, signed, unsigned, float, complex (the checks refuse it by name)
        raise ConfigError(
            f"{name} must be a tensor, numpy array or list of numbers, got {type(value).__name__} of dtype {array.dtype}"
        )
    if not array.flags.writeable or any(stride < 0 for stride in array.strides):
        array = array.copy()  # torch.from_numpy takes neither
    return torch.from_numpy(array)

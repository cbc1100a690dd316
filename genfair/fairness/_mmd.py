"""The MinDiff penalty: a kernel maximum mean discrepancy between two groups' predictions.

As in TensorFlow Model Remediation's ``MMDLoss`` (Prost et al. 2019, "Toward a better trade-off
between performance and fairness with kernel-based distribution matching"): the *biased* MMD²
estimate, diagonal terms included, without a square root,

    MMD²(x, y) = mean_ij k(x_i, x_j) + mean_ij k(y_i, y_j) - 2 mean_ij k(x_i, y_j),

with the Gaussian kernel ``k(a, b) = exp(-||a - b||² / length²)`` or the Laplacian kernel
``k(a, b) = exp(-||a - b|| / length)``, ``length = 0.1`` by default. It is 0 for identical
samples, never negative (a squared norm in the kernel's feature space), and differentiable.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from genfair.errors import ConfigError, check_choice, check_number
from genfair.fairness._downstream_config import KERNELS
from genfair.metrics._array_like import as_tensor

__all__ = ["mmd2"]



def mmd2(x: Any, y: Any, *, kernel: Literal["gaussian", "laplacian"] = "gaussian", length: float = 0.1) -> torch.Tensor:
    """Biased MMD² between ``x (n, d)`` and ``y (m, d)`` (tensors, NumPy arrays or lists; see the
    module docstring); a scalar tensor, differentiable in both. 1-D inputs ``(n,)`` are read as ``(n, 1)`` (one prediction each).

    Example:
        >>> x = torch.tensor([[0.1], [0.2]]); y = torch.tensor([[0.8], [0.9]])
        >>> round(float(mmd2(x, y)), 4)
        1.3679
    """
    check_choice("kernel", kernel, KERNELS)
    check_number("length", length, above=0)
    x, y = _as_matrix("x", x), _as_matrix("y", y)
    if x.shape[1] != y.shape[1]:
        raise ConfigError(f"x and y must have the same number of columns, got x {tuple(x.shape)} and y {tuple(y.shape)}")
    dtype = torch.promote_types(x.dtype, y.dtype)  # a float64 NumPy array against float32 predictions
    x, y = x.to(dtype), y.to(dtype)
    return _kernel(x, x, kernel, length).mean() + _kernel(y, y, kernel, length).mean() - 2 * _kernel(x, y, kernel, length).mean()


def _kernel(a: torch.Tensor, b: torch.Tensor, kernel: str, length: float) -> torch.Tensor:
    squared = (a[:, None, :] - b[None, :, :]).square().sum(-1)  # exact zeros on the diagonal
    if kernel == "gaussian":
        return torch.exp(-squared / length**2)
    if kernel == "laplacian":
        # sqrt has an infinite derivative at 0: differentiate through a clamped distance, which
        # equals the distance wherever it is not 0 (and the kernel's gradient there is 0 anyway).
        return torch.exp(-squared.clamp_min(1e-30).sqrt() / length)
    raise ConfigError(f"kernel must be one of {list(KERNELS)}, got {kernel!r}")


def _as_matrix(name: str, value: Any) -> torch.Tensor:
    value = as_tensor(name, value)
    if value.dim() == 1:
        value = value[:, None]
    if value.dim() != 2 or value.shape[0] == 0:
        raise ConfigError(f"{name} must have shape (n, d) with n >= 1, got {tuple(value.shape)}")
    return value if value.dtype.is_floating_point else value.to(torch.float32)

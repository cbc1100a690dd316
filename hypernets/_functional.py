"""Run any method of an unmodified module under substituted tensors.

``torch.func.functional_call`` runs ``forward`` only; :func:`call_method` runs ``loss``,
``sample`` or any other method the same way, through a one-line wrapper module whose
``forward`` dispatches to the method, so the substitution and its autograd graph are exactly
those of ``functional_call`` (public API; the module is never changed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from ._errors import HyperNetworkError

__all__ = ["call_method"]


def call_method(
    module: nn.Module, tensors: Mapping[str, torch.Tensor], method: str, /, *args: Any, **kwargs: Any
) -> Any:
    """``module.<method>(*args, **kwargs)`` with ``tensors`` (keyed like ``named_parameters()`` /
    ``named_buffers()``) in place of the module's own; tied weights follow their tie.

    Example:
        >>> model = nn.Linear(2, 1)
        >>> zeros = {"weight": torch.zeros(1, 2), "bias": torch.ones(1)}
        >>> call_method(model, zeros, "forward", torch.randn(3, 2)).flatten().tolist()
        [1.0, 1.0, 1.0]
    """
    if not callable(getattr(module, method, None)):
        raise HyperNetworkError(f"{type(module).__name__} has no method {method!r}")
    caller = _MethodCaller(module)
    return functional_call(caller, {f"target.{name}": value for name, value in tensors.items()}, (method, *args), kwargs)


class _MethodCaller(nn.Module):
    def __init__(self, target: nn.Module) -> None:
        super().__init__()
        self.target = target

    def forward(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.target, method)(*args, **kwargs)

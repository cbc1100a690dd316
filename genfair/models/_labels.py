"""The class labels a single-replicate deep model takes, checked once for every such model."""

from __future__ import annotations

import torch

from genfair.errors import ConfigError

__all__ = ["check_class_labels"]


def check_class_labels(
    labels: torch.Tensor | None,
    n: int,
    *,
    num_classes: int | None,
    required: bool,
    model: str,
    device: torch.device | str = "cpu",
) -> torch.Tensor | None:
    """Labels ``(1, n)`` -> ``(n,)`` int64 on ``device`` (the model's: the loop draws labels on
    the CPU); ``None`` for an unconditional model (``num_classes`` ``None``: labels are accepted
    and ignored) or when ``labels`` is ``None`` and not ``required``."""
    if labels is not None and tuple(labels.shape) != (1, n):
        raise ConfigError(f"labels must have shape (1, {n}), got {tuple(labels.shape)}")
    if num_classes is None:
        return None
    if labels is None:
        if required:
            raise ConfigError(f"labels (1, n) are required: this {model} is conditional on {num_classes} classes")
        return None
    if labels.dtype.is_floating_point or (not _batched(labels) and bool(((labels < 0) | (labels >= num_classes)).any())):
        values = labels.unique().tolist()[:10]
        raise ConfigError(f"labels must be integers in [0, {num_classes}), got {labels.dtype} values {values}")
    return labels[0].long().to(device)


def _batched(labels: torch.Tensor) -> bool:
    """Whether ``labels`` is one slice of a ``torch.func.vmap`` batch (a hypernetwork running the
    model under several weight sets at once): vmap cannot read values, so the range check is
    skipped there; the shape and dtype checks still run."""
    return torch._C._functorch.is_batchedtensor(labels)

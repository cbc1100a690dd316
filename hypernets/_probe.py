"""The degeneracy probe: does a trained hypernetwork's output depend on its input?

A constant H satisfies the PLE constraint E[H(Y) - H(X)] = 0 trivially (the reviewers' central
objection to arXiv 2405.13977). The probe measures how much the generated weights change
between disjoint halves of the same data, and between single-class batches; a constant H
scores exactly 0 on both.
"""

from __future__ import annotations

from typing import Any

import torch

from ._errors import HyperNetworkError
from ._hypernetwork import HyperNetwork
from ._ple import predict_weights

__all__ = ["input_sensitivity"]


@torch.no_grad()
def input_sensitivity(
    hnet: HyperNetwork,
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
    order: torch.Tensor | None = None,
    per_set: bool = False,
) -> dict[str, Any]:
    """Relative change of the generated weights, ``rms(H(A) - H(B)) / rms(H(A))``, over all values.

    Args:
        x: data in the model layout ``(R, n, *sample_shape)``, n >= 2.
        labels: ``(R, n)`` classes; with them (and R = 1), every pair of classes is compared too.
        generator: draws the random split into halves A and B.
        order: a permutation of the n samples whose first and second halves are A and B
            (instead of drawing one), to compare H with another estimator on the same split.
        per_set: return one value per set, an ``(R,)`` tensor over that set's generated values
            (one split shared by all sets), instead of one float over all of them.

    Returns:
        ``{"disjoint": ...}`` for two disjoint random halves of every set, and
        ``{"class_a_vs_b": ...}`` for the batches of classes a and b (R = 1 only; a class-aware
        hypernetwork sees each batch with its own labels).
    """
    if x.dim() < 3 or x.shape[1] < 2:
        raise HyperNetworkError(f"x must have shape (R, n >= 2, *sample_shape), got {tuple(x.shape)}")
    if order is None:
        order = torch.randperm(x.shape[1], generator=generator)
    order = order.to(x.device)
    half = x.shape[1] // 2
    parts = [order[:half], order[half : 2 * half]]
    taken = [(x[:, idx], None if labels is None else labels[:, idx]) for idx in parts]
    result = {"disjoint": _relative_change(hnet, *taken, per_set=per_set)}
    if labels is not None and x.shape[0] == 1:
        classes = sorted(labels.unique().tolist())
        batches = {c: (x[:, labels[0] == c], labels[:, labels[0] == c]) for c in classes}
        for i, a in enumerate(classes):
            for b in classes[i + 1 :]:
                result[f"class_{a}_vs_{b}"] = _relative_change(hnet, batches[a], batches[b], per_set=per_set)
    return result


def _relative_change(
    hnet: HyperNetwork,
    first: tuple[torch.Tensor, torch.Tensor | None],
    second: tuple[torch.Tensor, torch.Tensor | None],
    *,
    per_set: bool,
) -> float | torch.Tensor:
    a = hnet.flat(predict_weights(hnet, *first))
    b = hnet.flat(predict_weights(hnet, *second))
    if per_set:  # (R, numel): one value per set
        return (a - b).square().mean(-1).sqrt() / a.square().mean(-1).sqrt().clamp(min=1e-12)
    return float((a - b).square().mean().sqrt() / a.square().mean().sqrt().clamp(min=1e-12))

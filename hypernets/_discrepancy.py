"""Distances between weight sets: the D of PLE (Mayer et al., Eq. 5) and of the loop's anchor.

Weight sets are dicts ``{name: (*B, *shape)}`` with the same keys. Normalisation:
  - ``"parameter"``: the squared distance summed over every value and divided by the number of
    values, so D does not grow with the model's size;
  - ``"relative"``: each tensor's squared distance divided by the squared norm of the first
    (reference) set's tensor (held constant), averaged over tensors, so a tensor of large
    weights does not drown one of small weights.
Leading set dimensions ``*B`` are pooled: averaged with ``"parameter"``, summed into each
tensor's numerator and denominator with ``"relative"``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ._errors import HyperNetworkError, check_choice
from ._options import NORMALIZATIONS, Normalize

__all__ = ["NORMALIZATIONS", "Normalize", "expected_discrepancy", "weight_discrepancy"]

_EPS = 1e-12


def weight_discrepancy(
    reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor], *, normalize: Normalize = "parameter"
) -> torch.Tensor:
    """D(reference, other) as a scalar tensor: ``mean ||reference - other||^2`` per value
    (``normalize="parameter"``) or per tensor relative to ``||reference_t||^2`` (``"relative"``)."""
    return _inner(reference, other, other, normalize)


def expected_discrepancy(
    reference: Mapping[str, torch.Tensor],
    first: Mapping[str, torch.Tensor],
    second: Mapping[str, torch.Tensor],
    *,
    normalize: Normalize = "parameter",
) -> torch.Tensor:
    """An unbiased estimate of ``||E[W] - reference||^2`` from two independent draws of W:
    ``<first - reference, second - reference>`` (normalised as in :func:`weight_discrepancy`).

    Per draw, ``||W - reference||^2`` also counts W's variance, so penalising it favours
    estimators of low variance (for a Gaussian's variance, c = 1/(n+1) rather than Bessel's
    1/(n-1)); the product of two independent draws has expectation ``||E[W] - reference||^2``
    exactly. It can be negative for one pair of draws.
    """
    return _inner(reference, first, second, normalize)


def _inner(
    reference: Mapping[str, torch.Tensor],
    first: Mapping[str, torch.Tensor],
    second: Mapping[str, torch.Tensor],
    normalize: Normalize,
) -> torch.Tensor:
    check_choice("normalize", normalize, NORMALIZATIONS)
    if set(reference) != set(first) or set(reference) != set(second):
        raise HyperNetworkError(f"weight sets must have the same keys, got {sorted(reference)} and {sorted(first)}")
    products = {name: ((first[name] - ref) * (second[name] - ref)).sum() for name, ref in reference.items()}
    if normalize == "parameter":
        return torch.stack(list(products.values())).sum() / sum(ref.numel() for ref in reference.values())
    scales = {name: ref.detach().square().sum() + _EPS for name, ref in reference.items()}
    return torch.stack([products[name] / scales[name] for name in reference]).mean()

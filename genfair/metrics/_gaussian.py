"""Closed-form fidelity of fitted Gaussian classes against the true ones."""

from __future__ import annotations

import functools
from typing import Any

import torch

from genfair.metrics._array_like import as_tensor
from genfair.models._class_gaussian import ClassGaussianModel, psd_sqrt

__all__ = ["gaussian_w2_sq", "class_gaussian_metrics"]


def gaussian_w2_sq(mean1: Any, cov1: Any, mean2: Any, cov2: Any) -> torch.Tensor:
    """Squared 2-Wasserstein distance between N(mean1, cov1) and N(mean2, cov2), batched.

    W2^2 = ||m1 - m2||^2 + tr(S1) + tr(S2) - 2 tr((S2^1/2 S1 S2^1/2)^1/2)   (Dowson & Landau 1982).

    Args: means ``(..., d)``, covariances ``(..., d, d)``, broadcastable (tensors or array-likes).
    Returns ``(...)``.
    """
    given = [as_tensor(name, v) for name, v in (("mean1", mean1), ("cov1", cov1), ("mean2", mean2), ("cov2", cov2))]
    floating = [t.dtype for t in given if t.is_floating_point()]
    dtype = functools.reduce(torch.promote_types, floating) if floating else torch.float64  # integer lists: float64
    mean1, cov1, mean2, cov2 = (t.to(dtype) for t in given)
    root2 = psd_sqrt(cov2)
    cross = psd_sqrt(root2 @ cov1 @ root2)
    trace = torch.diagonal(cov1 + cov2 - 2 * cross, dim1=-2, dim2=-1).sum(-1)
    return (mean1 - mean2).square().sum(-1) + trace.clamp(min=0)


def class_gaussian_metrics(
    model: ClassGaussianModel,
    *,
    true_means: torch.Tensor,
    true_covariances: torch.Tensor,
    counts: torch.Tensor,
    classes: tuple[str, ...],
) -> dict[str, torch.Tensor]:
    """Per-class fidelity of a fitted :class:`ClassGaussianModel`, one value per replicate.

    Args:
        true_means: ``(K, d)``; true_covariances: ``(K, d, d)``.
        counts: ``(R, K)`` class counts of the training set the model was fitted on.
        classes: the K class names, used as group names.

    Returns ``{"metric/group": (R,)}`` with, per class: ``mean_sq_err`` ||mu_hat - mu||^2,
    ``trace_cov`` tr(Sigma_hat), ``w2_sq`` (closed form), ``share`` (fitted share),
    ``extinct`` (1 where the class had no training samples). The fidelity metrics of an extinct
    class are NaN. A single-class model reports its group as ``all`` via ``classes``.
    """
    extinct = counts == 0
    nan = torch.tensor(float("nan"), dtype=model.means.dtype)
    per_class = {
        "mean_sq_err": (model.means - true_means).square().sum(-1),
        "trace_cov": torch.diagonal(model.covs, dim1=-2, dim2=-1).sum(-1),
        "w2_sq": gaussian_w2_sq(model.means, model.covs, true_means, true_covariances),
    }
    values = {name: torch.where(extinct, nan, v.detach()) for name, v in per_class.items()}
    values["share"] = model.shares.detach()
    values["extinct"] = extinct.to(model.means.dtype)
    return {f"{name}/{group}": v[:, k] for name, v in values.items() for k, group in enumerate(classes)}

"""Precision, recall, density and coverage of generated samples in a feature space.

Real features x_1..x_m ``(m, d)``, generated ("fake") features y_1..y_n ``(n, d)``; real first.
r(x_i) is the distance from x_i to its k-th nearest neighbour among the other real samples,
r(y_j) likewise among the fake ones, and B(z, r) = {u : ||u - z|| < r} (an open ball). Then

    precision = 1/n sum_j 1[exists i: y_j in B(x_i, r(x_i))]      (Kynkäänniemi et al. 2019)
    recall    = 1/m sum_i 1[exists j: x_i in B(y_j, r(y_j))]      (Kynkäänniemi et al. 2019)
    density   = 1/(kn) sum_j sum_i 1[y_j in B(x_i, r(x_i))]       (Naeem et al. 2020)
    coverage  = 1/m sum_i 1[exists j: y_j in B(x_i, r(x_i))]      (Naeem et al. 2020)

exactly as the reference package ``prdc`` (``compute_prdc``) computes them: strict inequalities,
and r the (k+1)-th smallest distance in a row of the within-set distance matrix, whose smallest
is the point itself. On two samples of one distribution, E[density] = 1 and E[coverage] =
1 - prod_{i=1..k} (m - i)/(m + n - i) -> 1 - 2^-k for m = n (Naeem et al. 2020); a
mode-collapsed generator has high precision and low recall.

Each metric is a mean of per-sample terms (over fake samples for precision and density, over real
ones for recall and coverage), which :func:`prdc_contributions` returns, so that a bootstrap can
resample the terms while keeping the radii of the full sets (see :mod:`genfair.metrics._fidelity`).
Memory is O((m + n)^2) float64 distances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from genfair.errors import ConfigError, check_positive_int
from genfair.metrics._feature_distances import as_features

__all__ = ["PRDCContributions", "prdc", "prdc_contributions"]


@dataclass(frozen=True)
class PRDCContributions:
    """The per-sample terms of the four metrics, float64; each metric is the mean of its terms.

    ``precision (n,)``: 1 where fake sample j lies in some real k-NN ball; ``density (n,)``: the
    number of real k-NN balls holding fake sample j, divided by k; ``recall (m,)``: 1 where real
    sample i lies in some fake k-NN ball; ``coverage (m,)``: 1 where real sample i's ball holds a
    fake sample.
    """

    precision: torch.Tensor
    density: torch.Tensor
    recall: torch.Tensor
    coverage: torch.Tensor

    def means(self) -> dict[str, float]:
        """``{"precision", "recall", "density", "coverage"}`` as python floats."""
        terms = {"precision": self.precision, "recall": self.recall, "density": self.density}
        return {name: float(t.mean()) for name, t in (terms | {"coverage": self.coverage}).items()}


def prdc(real_features: Any, fake_features: Any, *, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake_features (n, d)`` against ``real_features (m, d)``.

    Real first. ``k`` (< m and < n) is the neighbour whose distance sets each ball's radius.

    >>> import torch
    >>> real, fake = torch.randn(200, 8), torch.randn(300, 8) + 0.5
    >>> sorted(prdc(real, fake, k=5))
    ['coverage', 'density', 'precision', 'recall']
    """
    return prdc_contributions(real_features, fake_features, k=k).means()


def prdc_contributions(real_features: Any, fake_features: Any, *, k: int = 5) -> PRDCContributions:
    """The per-sample terms of :func:`prdc` (same arguments), for resampling without new radii."""
    real = as_features("real_features", real_features)
    fake = as_features("fake_features", fake_features, dim=real.shape[1])
    k = check_positive_int("k", k)
    for name, x in (("real", real), ("fake", fake)):
        if k >= len(x):
            raise ConfigError(
                f"k must be smaller than the number of {name} samples ({name}_features has {len(x)}), got k = {k}"
            )
    real_radii, fake_radii = _knn_radius(real, k), _knn_radius(fake, k)
    distances = _distances(real, fake)  # (m, n)
    in_real_ball = distances < real_radii[:, None]  # [i, j]: y_j in B(x_i, r(x_i))
    in_fake_ball = distances < fake_radii[None, :]  # [i, j]: x_i in B(y_j, r(y_j))
    return PRDCContributions(
        precision=in_real_ball.any(0).double(),
        density=in_real_ball.sum(0).double() / k,
        recall=in_fake_ball.any(1).double(),
        coverage=in_real_ball.any(1).double(),
    )


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(len(a), len(b))`` by the ``|a|^2 - 2a.b + |b|^2`` matrix product
    (as scikit-learn, which ``prdc`` calls; several times faster than summing coordinate-wise)."""
    return torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist")


def _knn_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of ``x (n, d)`` to its k-th nearest other row ``(n,)``: the (k+1)-th
    smallest of its distances, the smallest being to itself (duplicates count as neighbours at 0)."""
    distances = _distances(x, x)
    distances.fill_diagonal_(0.0)  # exact, where the matrix product leaves ~1e-7 of round-off
    return torch.topk(distances, k + 1, dim=1, largest=False).values[:, -1]

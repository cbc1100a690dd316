"""Labelled Gaussian classes refit in closed form: the analytic model of the self-consuming loop.

One instance holds ``replicates`` independent chains, so a loop over thousands of chains is a
handful of batched tensor operations per generation.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from torch import nn

from genfair.errors import check_choice, check_positive_int
from genfair.models._protocols import BiasedSampler, ClosedFormFit, GenerativeModel, ReparameterizedSampler

__all__ = ["ClassGaussianModel", "psd_sqrt"]

Estimator = Literal["mle", "unbiased"]


class ClassGaussianModel(nn.Module, GenerativeModel, ClosedFormFit, BiasedSampler, ReparameterizedSampler):
    """p(x, y) = shares[y] * N(x; means[y], covs[y]), for each replicate.

    The fit, per class k with n_k samples in the training set:
      - share_k = n_k / n (counts, so shares drift like Wright-Fisher across generations);
      - mean_k = sample mean of the class's samples;
      - cov_k = sum (x - mean_k)(x - mean_k)^T / (n_k - c), c = 0 for ``mle``, 1 for ``unbiased``
        (Bessel's correction).
    Classes with too few samples: a class with ``0 < n_k < min_class_samples`` refits its mean and
    keeps its previous covariance (a covariance needs two samples; the MLE would collapse the class
    to a point mass and the unbiased estimator is undefined). A class with ``n_k = 0`` is extinct:
    share 0, never sampled again by this model, mean and covariance frozen.

    Args:
        num_classes: number of classes (1 for a plain Gaussian).
        dim: sample dimension.
        replicates: independent chains held at once.
        estimator: ``mle`` (divide by n_k) or ``unbiased`` (divide by n_k - 1).
        min_class_samples: fewest samples with which a class refits its covariance (>= 2).

    Parameters (float64): ``shares (R, K)``, ``means (R, K, d)``, ``covs (R, K, d, d)``.
    ``CONSTRAINTS`` names the constrained ones, as a hypernetwork's ``positive=`` takes them.
    """

    CONSTRAINTS: ClassVar[dict[str, str]] = {"shares": "softmax", "covs": "psd"}
    PER_REPLICATE: ClassVar[bool] = True  # every parameter's first dimension is the replicate

    def __init__(
        self,
        num_classes: int = 1,
        dim: int = 1,
        *,
        replicates: int = 1,
        estimator: Estimator = "mle",
        min_class_samples: int = 2,
    ) -> None:
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.dim = check_positive_int("dim", dim)
        self.replicates = check_positive_int("replicates", replicates)
        self.estimator = check_choice("estimator", estimator, ["mle", "unbiased"])
        self.min_class_samples = check_positive_int("min_class_samples", min_class_samples, minimum=2)
        r, k, d = replicates, num_classes, dim
        f64 = dict(dtype=torch.float64)
        self.shares = nn.Parameter(torch.full((r, k), 1.0 / k, **f64))
        self.means = nn.Parameter(torch.zeros(r, k, d, **f64))
        self.covs = nn.Parameter(torch.eye(d, **f64).expand(r, k, d, d).clone())

    @torch.no_grad()
    def fit(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Closed-form refit on x ``(R, n, d)`` with labels ``(R, n)`` (see the class docstring)."""
        if labels is None:
            labels = torch.zeros(x.shape[:2], dtype=torch.int64, device=x.device)
        counts = per_class_sum(torch.ones_like(x[..., :1]), labels, self.num_classes)[..., 0]  # (R, K)
        present = (counts > 0)[..., None]
        means = torch.where(present, per_class_sum(x, labels, self.num_classes) / counts.clamp(min=1)[..., None], self.means)
        centred = x - _per_sample(means, labels)
        outer = centred[..., :, None] * centred[..., None, :]  # (R, n, d, d)
        scatter = per_class_sum(outer, labels, self.num_classes)
        divisor = (counts - (1.0 if self.estimator == "unbiased" else 0.0)).clamp(min=1)[..., None, None]
        refit = (counts >= self.min_class_samples)[..., None, None]
        self.covs.copy_(torch.where(refit, scatter / divisor, self.covs))
        self.means.copy_(means)
        self.shares.copy_(counts / counts.sum(dim=1, keepdim=True))

    def log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x, y): x ``(R, n, d)``, labels ``(R, n)`` (default class 0) -> ``(R, n)``."""
        if labels is None:
            labels = torch.zeros(x.shape[:2], dtype=torch.int64, device=x.device)
        chol = _per_sample(torch.linalg.cholesky(self.covs), labels)  # (R, n, d, d)
        z = torch.linalg.solve_triangular(chol, (x - _per_sample(self.means, labels))[..., None], upper=False)
        log_det = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        log_normal = -0.5 * z.square().sum((-2, -1)) - log_det - 0.5 * self.dim * math.log(2 * math.pi)
        return log_normal + torch.log(_per_sample(self.shares, labels))

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample negative log-likelihood ``(R, n)``."""
        return -self.log_prob(x, labels)

    def sample(
        self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.sample_biased(n, bias=1.0, labels=labels, generator=generator)

    @torch.no_grad()
    def sample_biased(
        self,
        n: int,
        *,
        bias: float,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """x ~ N(means[y], bias * covs[y]) ``(R, n, d)``; y ~ shares unless ``labels`` are given."""
        return self._draw(n, bias, labels, generator, psd_sqrt(self.covs))

    def rsample(
        self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Reparameterised samples ``means[y] + L[y] z`` with ``L L^T = covs`` (Cholesky, whose
        gradient stays finite where the symmetric root's does not: repeated eigenvalues),
        differentiable in the means and covariances; the classes y are discrete and carry none."""
        return self._draw(n, 1.0, labels, generator, torch.linalg.cholesky(self.covs))

    def _draw(
        self,
        n: int,
        bias: float,
        labels: torch.Tensor | None,
        generator: torch.Generator | None,
        root: torch.Tensor,
    ) -> torch.Tensor:
        """``means[y] + sqrt(bias) root[y] z`` for any ``root (R, K, d, d)`` with root root^T = covs."""
        if labels is None:
            labels = self.draw_labels(n, generator=generator)
        z = torch.randn(self.replicates, n, self.dim, generator=generator, dtype=self.means.dtype)
        scale = _per_sample(root * bias**0.5, labels)  # (R, n or 1, d, d)
        # A broadcast product rather than a batched matmul: much faster for the small d of analytic models.
        return _per_sample(self.means, labels) + (scale * z[..., None, :]).sum(-1)

    def draw_labels(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(R, n)`` classes drawn from the fitted shares (an extinct class is never drawn)."""
        if self.num_classes == 1:
            return torch.zeros(self.replicates, n, dtype=torch.int64)
        return torch.multinomial(self.shares.detach(), n, replacement=True, generator=generator)


def psd_sqrt(cov: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of positive semi-definite matrices ``(..., d, d)`` (eigenvalues clamped at 0)."""
    if cov.shape[-1] == 1:
        return cov.clamp(min=0).sqrt()
    eigenvalues, vectors = torch.linalg.eigh(cov)
    return (vectors * eigenvalues.clamp(min=0).sqrt()[..., None, :]) @ vectors.mT


def per_class_sum(values: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Sum ``values (R, n, *p)`` over the samples of each class: -> ``(R, K, *p)``."""
    if num_classes == 1:
        return values.sum(dim=1, keepdim=True)
    r, n = labels.shape
    flat = (labels + num_classes * torch.arange(r, device=labels.device)[:, None]).reshape(-1)
    out = values.new_zeros(r * num_classes, *values.shape[2:])
    return out.index_add_(0, flat, values.reshape(r * n, *values.shape[2:])).reshape(r, num_classes, *values.shape[2:])


def _per_sample(per_class: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each sample's class parameter: ``(R, K, *p)`` and labels ``(R, n)`` -> ``(R, n, *p)``
    (``(R, 1, *p)``, which broadcasts, when there is a single class)."""
    if per_class.shape[1] == 1:
        return per_class
    rows = torch.arange(per_class.shape[0], device=labels.device)[:, None]
    return per_class[rows, labels]

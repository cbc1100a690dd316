"""Analytic data: a standard normal, and labelled Gaussian classes with chosen shares.

torch is imported inside the functions that use it: the command line checks a config
without importing torch (docs/architecture.md, section 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from genfair.errors import ConfigError, check_positive_int

if TYPE_CHECKING:
    import torch

    from genfair.data._batch import Batch

__all__ = ["GaussianData", "ClassMixtureData", "stratified_counts"]


@dataclass
class GaussianData:
    """The truth is N(0, I_dim); one group, named ``all``.

    Example:
        >>> batch = GaussianData(dim=2).draw(3, 10, generator=torch.Generator().manual_seed(0))
        >>> tuple(batch.x.shape)
        (3, 10, 2)
    """

    dim: int = 1

    def __post_init__(self) -> None:
        check_positive_int("dim", self.dim)

    @property
    def classes(self) -> tuple[str, ...]:
        return ("all",)

    @property
    def group_names(self) -> tuple[str, ...]:
        """Class names in label order (every data source has them; see ``DigitsData``)."""
        return self.classes

    @property
    def shares(self) -> tuple[float, ...]:
        return (1.0,)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def true_means(self) -> torch.Tensor:
        """``(1, dim)`` float64 true mean."""
        import torch

        return torch.zeros(1, self.dim, dtype=torch.float64)

    def true_covariances(self) -> torch.Tensor:
        """``(1, dim, dim)`` float64 true covariance."""
        import torch

        return torch.eye(self.dim, dtype=torch.float64).unsqueeze(0)

    def draw(self, replicates: int, n: int, *, generator: torch.Generator) -> Batch:
        """``n`` iid real samples for each of ``replicates`` chains: x ``(replicates, n, dim)``."""
        import torch
        from genfair.data._batch import Batch

        x = torch.randn(replicates, n, self.dim, generator=generator, dtype=torch.float64)
        return Batch(x, torch.zeros(replicates, n, dtype=torch.int64))


@dataclass
class ClassMixtureData:
    """Labelled Gaussian classes: class k ~ N(means[k], covariances[k]) with share proportions[k].

    Real draws are stratified: every draw holds exactly ``stratified_counts(n, proportions)``
    samples of each class, the way an imbalanced training set is built on purpose.

    Args:
        proportions: class shares, each in (0, 1), summing to 1.
        dim: dimension of each sample.
        means: ``(classes, dim)``; default: class k at ``3k`` along the first axis.
        covariances: ``(classes, dim, dim)`` symmetric positive definite; default: identity.
        class_names: one unique name per class; default ``class0``, ``class1``, ...
    """

    proportions: list[float] = field(default_factory=lambda: [0.95, 0.05])
    dim: int = 2
    means: list[list[float]] | None = None
    covariances: list[list[list[float]]] | None = None
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        check_positive_int("dim", self.dim)
        p = [float(v) for v in self.proportions]
        if len(p) < 1 or any(not 0.0 < v <= 1.0 for v in p) or not math.isclose(sum(p), 1.0, abs_tol=1e-6):
            raise ConfigError(f"proportions must be shares in (0, 1] summing to 1, got {list(self.proportions)}")
        k, d = len(p), self.dim
        if self.means is not None and _shape(self.means) != (k, d):
            raise ConfigError(f"means must have shape (classes={k}, dim={d}), got {_shape(self.means)}")
        if self.covariances is not None:
            if _shape(self.covariances) != (k, d, d):
                raise ConfigError(
                    f"covariances must have shape (classes={k}, dim={d}, dim={d}), got {_shape(self.covariances)}"
                )
            import torch  # here, not at the top: checking a config without covariances needs no torch

            cov = torch.tensor(self.covariances, dtype=torch.float64)
            if not torch.allclose(cov, cov.mT) or torch.linalg.eigvalsh(cov).min() <= 0:
                raise ConfigError(f"covariances must be symmetric positive definite, got {self.covariances}")
        if self.class_names is not None and (len(self.class_names) != k or len(set(self.class_names)) != k):
            raise ConfigError(f"class_names must be {k} unique names, got {list(self.class_names)}")

    @property
    def classes(self) -> tuple[str, ...]:
        if self.class_names is not None:
            return tuple(self.class_names)
        return tuple(f"class{i}" for i in range(len(self.proportions)))

    @property
    def group_names(self) -> tuple[str, ...]:
        """Class names in label order (every data source has them; see ``DigitsData``)."""
        return self.classes

    @property
    def shares(self) -> tuple[float, ...]:
        return tuple(float(p) for p in self.proportions)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def true_means(self) -> torch.Tensor:
        """``(classes, dim)`` float64 class means."""
        import torch

        if self.means is not None:
            return torch.tensor(self.means, dtype=torch.float64)
        means = torch.zeros(len(self.proportions), self.dim, dtype=torch.float64)
        means[:, 0] = 3.0 * torch.arange(len(self.proportions), dtype=torch.float64)
        return means

    def true_covariances(self) -> torch.Tensor:
        """``(classes, dim, dim)`` float64 class covariances."""
        import torch

        if self.covariances is not None:
            return torch.tensor(self.covariances, dtype=torch.float64)
        return torch.eye(self.dim, dtype=torch.float64).expand(len(self.proportions), -1, -1).clone()

    def draw(self, replicates: int, n: int, *, generator: torch.Generator) -> Batch:
        """Stratified real samples: x ``(replicates, n, dim)``, y ``(replicates, n)``."""
        import torch
        from genfair.data._batch import Batch

        counts = stratified_counts(n, self.proportions)
        y = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts)).expand(replicates, -1)
        z = torch.randn(replicates, n, self.dim, generator=generator, dtype=torch.float64)
        chol = torch.linalg.cholesky(self.true_covariances())
        x = self.true_means()[y] + torch.einsum("rnij,rnj->rni", chol[y], z)
        return Batch(x, y.contiguous())


def stratified_counts(n: int, proportions: list[float]) -> list[int]:
    """Class counts summing to ``n``, closest to ``n * proportions`` (largest remainder)."""
    exact = [n * p for p in proportions]
    counts = [math.floor(v) for v in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _shape(nested: list) -> tuple[int, ...]:
    shape: list[int] = []
    while isinstance(nested, (list, tuple)):
        shape.append(len(nested))
        nested = nested[0] if nested else None
    return tuple(shape)

"""A Gaussian mixture with latent components: the model of the GMM study (Mayer et al. 2024, §5).

Unlike :class:`~genfair.models.ClassGaussianModel`, whose classes are observed labels, the
components here are latent: the likelihood sums over them, and ``labels`` passed to ``loss``
or ``sample`` are ignored. One instance holds ``replicates`` independent mixtures; every
method reads R from the parameters themselves, so weights of any R substituted with
``torch.func.functional_call`` (a hypernetwork's) work unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genfair.errors import check_positive_int
from genfair.models._protocols import GenerativeModel, ReparameterizedSampler

__all__ = ["GaussianMixtureModel"]


class GaussianMixtureModel(nn.Module, GenerativeModel, ReparameterizedSampler):
    """p(x) = sum_k weights[k] * N(x; means[k], diag(variances[k])), for each replicate.

    Args:
        num_components: K, the number of mixture components.
        dim: d, the sample dimension.
        replicates: R, independent mixtures held at once.

    Parameters (float64): ``weights (R, K)`` (non-negative, summing to 1 over K),
    ``means (R, K, d)``, ``variances (R, K, d)`` (diagonal covariances, > 0).

    Initialisation: equal weights 1/K, unit variances, and means spread evenly over
    [-(K-1)/2, (K-1)/2] along every axis (-0.5 and 0.5 for K = 2), so that the components
    differ from the start; identical components would receive identical gradients forever.
    No method fits the mixture: a hypernetwork or an external EM sets the parameters.

    Example:
        >>> model = GaussianMixtureModel(2, 1, replicates=3)
        >>> model.sample(5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([3, 5, 1])
        >>> model.loss(torch.zeros(3, 5, 1, dtype=torch.float64)).shape
        torch.Size([3, 5])
    """

    def __init__(self, num_components: int = 2, dim: int = 1, *, replicates: int = 1) -> None:
        super().__init__()
        self.num_components = check_positive_int("num_components", num_components)
        self.dim = check_positive_int("dim", dim)
        self.replicates = check_positive_int("replicates", replicates)
        r, k, d = replicates, num_components, dim
        f64 = dict(dtype=torch.float64)
        spread = torch.arange(k, **f64) - (k - 1) / 2  # (K,)
        self.weights = nn.Parameter(torch.full((r, k), 1.0 / k, **f64))
        self.means = nn.Parameter(spread[None, :, None].expand(r, k, d).clone())
        self.variances = nn.Parameter(torch.ones(r, k, d, **f64))

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log(weights[k] N(x; means[k], variances[k])): x ``(R or 1, n, d)`` -> ``(R, n, K)``."""
        diff = x[..., None, :] - self.means[:, None]  # (R, n, K, d)
        variances = self.variances[:, None]  # (R, 1, K, d)
        log_normal = -0.5 * (diff.square() / variances + variances.log() + math.log(2 * math.pi)).sum(-1)
        return log_normal + self.weights.log()[:, None]

    def log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) = logsumexp_k log(w_k N(x; mu_k, v_k)): x ``(R or 1, n, d)`` -> ``(R, n)``;
        ``labels`` are ignored (the components are latent)."""
        return torch.logsumexp(self.component_log_prob(x), dim=-1)

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample negative log-likelihood ``(R, n)`` of the mixture; ``labels`` are ignored."""
        return -self.log_prob(x)

    def draw_components(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(R, n)`` component indices drawn from the weights."""
        if self.num_components == 1:
            return torch.zeros(self.weights.shape[0], n, dtype=torch.int64)
        return torch.multinomial(self.weights.detach(), n, replacement=True, generator=generator)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        components: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``n`` samples per replicate ``(R, n, d)``. ``labels`` are ignored (a caller's class
        labels are not this model's components); ``components (R, n)`` fixes the components
        drawn from, which are otherwise drawn from the weights."""
        return self._draw(n, generator, components)

    def rsample(
        self,
        n: int,
        *,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        components: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Reparameterised samples ``means[c] + sqrt(variances[c]) z``: differentiable in the
        means and variances given the drawn components c (discrete draws, which carry no
        gradient to the weights). Same random stream as :meth:`sample`."""
        return self._draw(n, generator, components)

    def _draw(self, n: int, generator: torch.Generator | None, components: torch.Tensor | None) -> torch.Tensor:
        if components is None:
            components = self.draw_components(n, generator=generator)
        rows = torch.arange(self.weights.shape[0], device=self.means.device)[:, None]
        z = torch.randn(self.weights.shape[0], n, self.dim, generator=generator, dtype=self.means.dtype)
        z = z.to(self.means.device)
        return self.means[rows, components] + self.variances[rows, components].sqrt() * z

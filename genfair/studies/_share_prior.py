"""Digit sets drawn over a prior of class shares: the data-generating distributions of the
digits prior study (``genfair experiment=digits_prior``).

A distribution is the pair of digits with minority share p (``SharePrior``: ``p = low + (high -
low) Beta(alpha, beta)``); its images of each class are that class's own training pool, whatever
p. A set of n samples from it has ``Binomial(n, p)`` minority images (n i.i.d. draws from the
mixture ``(1 - p) p(x | majority) + p p(x | minority)``), each class's images drawn without
replacement from its pool. Sets at a given share (the share response) have exactly ``round(p n)``
minority images instead, so that their input share is the one named.

Held-out draws are fresh shares and sets from other random streams: held out in the sense of
neural Bayes estimators (distributions never trained on), from the same image pools; the
evaluation's held-out images (``DigitsData.heldout``) are never drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from genfair.data import Batch, DigitsData
from genfair.errors import ConfigError
from genfair.studies._digits_prior_config import SharePrior

__all__ = ["SharePriorSource"]


class SharePriorSource:
    """The digits ``classes`` (majority, minority) with their training pools, drawn over ``prior``.

    Args:
        classes: two digits, the majority first; shares are the second's.
        prior: the prior over the minority share.

    Example:
        >>> source = SharePriorSource([3, 6], SharePrior())
        >>> g = torch.Generator().manual_seed(0)
        >>> shares = source.shares(4, generator=g)                  # (4,) float64 in [0, 1]
        >>> source.draw_sets(shares, 50, generator=g).x.shape
        torch.Size([4, 50, 1, 8, 8])
    """

    def __init__(self, classes: Sequence[int], prior: SharePrior) -> None:
        self.data = DigitsData(classes=list(classes), proportions=[0.5, 0.5])
        self.prior = prior
        pool = self.data.training_pool()
        self.pools = tuple(pool.x[0][pool.y[0] == k] for k in range(2))  # (n_k, 1, 8, 8) each

    @property
    def group_names(self) -> tuple[str, ...]:
        return self.data.group_names

    @property
    def largest_set(self) -> int:
        """The largest set every share allows: the smaller class pool (a set of share 1 or 0)."""
        return min(len(pool) for pool in self.pools)

    def shares(self, count: int, *, generator: torch.Generator) -> torch.Tensor:
        """``(count,)`` float64 minority shares drawn from the prior (one integer from
        ``generator`` seeds NumPy's Beta sampler)."""
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        p = self.prior.low + (self.prior.high - self.prior.low) * rng.beta(self.prior.alpha, self.prior.beta, size=count)
        return torch.from_numpy(p)

    def draw_sets(self, shares: torch.Tensor, n: int, *, generator: torch.Generator, exact: bool = False) -> Batch:
        """One set of ``n`` images per share: x ``(B, n, 1, 8, 8)`` float32 in [0, 1], y ``(B, n)``
        (0: majority, 1: minority). Minority counts ``Binomial(n, p)``, or ``round(p n)`` if ``exact``."""
        if n > self.largest_set:
            raise ConfigError(
                f"set size must be at most {self.largest_set} (the smaller class pool of {list(self.group_names)}, "
                f"what a set of share 0 or 1 needs), got {n}"
            )
        shares = torch.as_tensor(shares, dtype=torch.float64)
        if exact:
            minority = torch.round(shares * n).long()
        else:
            minority = torch.binomial(torch.full_like(shares, float(n)), shares, generator=generator).long()
        xs, ys = [], []
        for count in minority.tolist():
            parts = [self._take(0, n - count, generator), self._take(1, count, generator)]
            xs.append(torch.cat(parts))
            ys.append(torch.cat([torch.zeros(n - count, dtype=torch.int64), torch.ones(count, dtype=torch.int64)]))
        return Batch(torch.stack(xs), torch.stack(ys))

    def _take(self, k: int, count: int, generator: torch.Generator) -> torch.Tensor:
        pool = self.pools[k]
        order = torch.randperm(len(pool), generator=generator)[:count]
        return pool[order]

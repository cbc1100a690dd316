"""The data sets a hypernetwork trains on: subsamples of a generation's training set whose size and
class composition vary the way real data sets do.

PLE's hypernetwork is an estimator, ``theta = H(X)``: trained on one data set it has no reason to
read its input (a constant fits as well). Trained on many sets whose contents differ, it must map
each to its own weights. Each step draws B sets of one size m (uniform between the subsample's
bounds, so that the sets stack into ``(B, m, ...)``), each with its own class shares
``pi_b ~ Dirichlet(concentration * training shares)`` and its samples drawn without replacement
with weight ``pi_b[c] / n_c`` per sample of class c: the class shares follow ``pi_b`` until a class
runs out of samples, and a minority's count can reach zero.
"""

from __future__ import annotations

import numpy as np
import torch

from genfair.errors import ConfigError
from genfair.estimators._config import SubsampleConfig

__all__ = ["SetSampler"]


class SetSampler:
    """Draws index sets into one training set of ``n`` samples with classes ``labels (n,)``.

    Args:
        labels: the classes of the training set's samples, ``(n,)`` int64.
        config: the sizes and the class-share concentration.
        num_classes: the number of classes (classes without samples get none).
        shares: the class shares the sets vary around, ``(num_classes,)``; default the
            training set's own.

    Raises:
        ConfigError: the smallest subsample would hold fewer than 2 samples.

    Example:
        >>> labels = torch.tensor([0] * 135 + [1] * 15)
        >>> sampler = SetSampler(labels, SubsampleConfig(min_fraction=0.5, max_fraction=0.5), num_classes=2)
        >>> sampler.draw(4, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 75])
    """

    def __init__(
        self, labels: torch.Tensor, config: SubsampleConfig, *, num_classes: int, shares: torch.Tensor | None = None
    ) -> None:
        self.labels = labels.cpu().numpy()
        n = len(self.labels)
        self.counts = np.bincount(self.labels, minlength=num_classes).astype(np.float64)
        self.smallest, self.largest = round(config.min_fraction * n), round(config.max_fraction * n)
        if self.smallest < 2:
            raise ConfigError(
                f"subsample.min_fraction={config.min_fraction:g} gives sets of {self.smallest} of the training set's {n} "
                "samples; allowed: a fraction giving at least 2"
            )
        centre = self.counts / n if shares is None else shares.double().cpu().numpy()
        self.present = self.counts > 0
        self.alpha = config.concentration * centre[self.present] / centre[self.present].sum()

    def draw(self, sets: int, *, generator: torch.Generator) -> torch.Tensor:
        """``(sets, m)`` int64 indices, one row per set, no index twice in a row; every random draw
        comes from ``generator`` (one integer seeds this step's NumPy generator)."""
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        size = int(rng.integers(self.smallest, self.largest + 1))
        shares = np.zeros((sets, len(self.counts)))
        shares[:, self.present] = rng.dirichlet(self.alpha, size=sets) if self.alpha.size > 1 else 1.0
        rows = []
        for pi in shares:
            weight = np.maximum(pi[self.labels] / self.counts[self.labels], 1e-12)  # no sample impossible: m may be n
            rows.append(rng.choice(len(self.labels), size=size, replace=False, p=weight / weight.sum()))
        return torch.from_numpy(np.stack(rows)).long()

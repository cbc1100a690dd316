"""A remedy in the form a training loop uses it: prepare the training set, draw each batch,
turn the batch's per-sample losses into the loss to minimise."""

from __future__ import annotations

import torch

from genfair.data import Batch
from genfair.remedies._config import RemedyConfig
from genfair.remedies._losses import GroupDRO, class_weights, hard_example_loss, mindiff_loss
from genfair.remedies._sampling import balanced_batch, oversample_epoch, smote

__all__ = ["Remedy"]


class Remedy:
    """``config`` applied to the training of one model (one replicate).

    Usage, in a training loop::

        remedy = Remedy(config, num_classes=K, minority=m)
        train = remedy.prepare(train, generator=g)            # smote, epoch-level oversampling
        for step in range(steps):
            index = remedy.batch(batch_size, generator=g)    # batch-level oversampling
            losses = model.loss(train.x[:, index], train.y[:, index])[0]
            remedy.loss(losses, train.y[0, index], index).backward()

    Example:
        >>> remedy = Remedy(RemedyConfig(name="oversample"), num_classes=2, minority=1)
        >>> train = remedy.prepare(Batch(torch.zeros(1, 10, 2), torch.tensor([[0] * 9 + [1]])),
        ...                        generator=torch.Generator().manual_seed(0))
        >>> torch.bincount(train.y[0, remedy.batch(8, generator=torch.Generator())]).tolist()
        [4, 4]
    """

    def __init__(self, config: RemedyConfig, *, num_classes: int, minority: int) -> None:
        self.config, self.num_classes, self.minority = config, num_classes, minority
        self.shares = list(config.shares) if config.shares is not None else [1.0 / num_classes] * num_classes
        self.train: Batch | None = None
        self.weights: torch.Tensor | None = None
        self.dro: GroupDRO | None = None

    def prepare(self, train: Batch, *, generator: torch.Generator, space: torch.Tensor | None = None) -> Batch:
        """The training set this remedy trains on (one replicate); ``space``: where SMOTE finds
        neighbours (e.g. classifier features, ``(n, d)``)."""
        name = self.config.name
        if name == "oversample":
            self.shares = _present_shares(self.shares, train.y[0])
        if name == "smote":
            train = smote(train, k=self.config.k, target_share=self.config.target_share, generator=generator, space=space)
        elif name == "oversample" and self.config.level == "epoch":
            train = oversample_epoch(train, self.shares, generator=generator)
        labels = train.y[0]
        if name == "reweight":
            self.weights = class_weights(labels, weighting=self.config.weighting)
        if name == "group_dro":
            sizes = torch.bincount(labels, minlength=self.num_classes)
            self.dro = GroupDRO(self.num_classes, step_size=self.config.step_size,
                                size_adjustment=self.config.size_adjustment, group_sizes=sizes)
        self.train = train
        return train

    def batch(self, batch_size: int | None, *, generator: torch.Generator) -> torch.Tensor:
        """Indices into the prepared set: class-balanced for batch-level ``oversample``, else
        ``batch_size`` samples without replacement (all of them if ``None``)."""
        n = self.train.n
        if self.config.name == "oversample" and self.config.level == "batch":
            return balanced_batch(self.train.y[0], batch_size or n, self.shares, generator=generator)
        if batch_size is None or batch_size >= n:
            return torch.arange(n)
        return torch.randperm(n, generator=generator)[:batch_size]

    def loss(self, losses: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The scalar to minimise from the batch's per-sample ``losses (b,)`` and classes ``(b,)``."""
        name = self.config.name
        if name == "reweight":
            w = self.weights[index].to(losses.dtype)
            return (w * losses).sum() / w.sum()
        if name == "group_dro":
            return self.dro(losses, labels)
        if name == "mindiff":
            quantity = _score(losses) if self.config.quantity == "score" else losses
            return mindiff_loss(losses, labels, minority=self.minority, weight=self.config.weight,
                                kernel=self.config.kernel, length=self.config.length, quantity=quantity)
        if name == "hard_mining":
            return hard_example_loss(losses, keep=self.config.keep)
        return losses.mean()


def _present_shares(shares: list[float], labels: torch.Tensor) -> list[float]:
    """``shares`` with the shares of classes absent from ``labels`` given to the present ones
    (in proportion), so that a loop whose samples lost a class keeps training."""
    counts = torch.bincount(labels, minlength=len(shares)).tolist()
    kept = [share if count else 0.0 for share, count in zip(shares, counts)]
    total = sum(kept)
    if total == 0:  # only classes configured at share 0 are present: sample those uniformly
        present = [1.0 if count else 0.0 for count in counts]
        return [p / sum(present) for p in present]
    return [share / total for share in kept]


def _score(losses: torch.Tensor) -> torch.Tensor:
    """``sigmoid((loss - mean) / std)`` with the batch's mean and standard deviation held fixed:
    per-sample losses on the (0, 1) scale of predicted probabilities (MinDiff's ``score``)."""
    centre, spread = losses.detach().mean(), losses.detach().std().clamp_min(1e-12)
    return torch.sigmoid((losses - centre) / spread)

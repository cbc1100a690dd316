"""The downstream classifier: a small MLP trained on (images, classes) for a binary task, with
the classifier-side remedies of docs/references.md §4.

The binary target is 1 for the classes named in ``DownstreamConfig.positive`` (default: the
minority class alone) and 0 otherwise. The slices are the classes. Training is Adam on the mean
binary cross-entropy of mini-batches drawn uniformly with replacement, plus the remedy's term:

  - ``mindiff`` (TensorFlow Model Remediation's MinDiff, as in its case study, docs/references.md §4):
    ``mindiff_weight * MMD²(sigmoid(f(x_s)), sigmoid(f(x_r)))`` (:func:`genfair.fairness.mmd2`,
    biased, no square root) between the predicted scores of a mini-batch of the sensitive
    slice's *negatives* and one of the other slices' negatives, each drawn (with replacement)
    from its own pool every step, so a rare sensitive slice is seen every step. Matching the
    negatives' score distributions equalises false-positive rates. Where the sensitive slice has
    no negatives (a detector of the sensitive class itself), the positives are matched instead
    (equalising true-positive rates); where it has neither, the term is 0 (recorded as
    ``mindiff_label = None``).
  - ``spectral_decoupling`` (Pezeshki et al. 2021): ``spectral_lambda * mean(logit²)``.
  - ``adversary`` (DANN, Ganin et al. 2016): a group head (MLP) on the hidden representation,
    through a gradient-reversal layer with coefficient ``adversary_strength``; the head learns
    to predict the class, the representation is pushed to hide it. The head also sees the
    binary label (as in Zhang et al. 2018's equalised-odds adversary): the slices here are
    classes, which determine the label, so an adversary without it would push the
    representation to hide the label itself; with it, only the class information beyond the
    label is removed.
  - ``parade`` (Dullerud et al., ICLR 2022): a separate sensitive-attribute embedding (its own
    MLP on the input, ``parade_dim`` wide) trained to predict the class through a linear head,
    and ``parade_strength * corr(S_target, S_sensitive)²``, the squared Pearson correlation
    between the off-diagonal entries of the two cosine-similarity matrices of the mini-batch
    (target: the hidden representation; the sensitive one enters detached), which partially
    decorrelates the target similarity from the learned sensitive one.

Training is deterministic given a ``torch.Generator``: initial weights come from a forked global
RNG seeded from it (the caller's global RNG is left untouched), mini-batches from the generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genfair.errors import ConfigError
from genfair.fairness._downstream_config import DownstreamConfig
from genfair.fairness._mmd import mmd2
from genfair.metrics._array_like import as_tensor
from genfair.training import take_step

__all__ = [
    "DownstreamClassifier",
    "TrainedDownstream",
    "binary_target",
    "grad_reverse",
    "resolve_slices",
    "similarity_correlation",
    "train_downstream",
]


class DownstreamClassifier(nn.Module):
    """flatten -> Linear(d, h) ReLU -> Linear(h, h) ReLU (the representation, ``(n, h)``) ->
    Linear(h, 1): one logit per image.

    Args:
        in_features: ``d``, the flattened size of one input (``C * H * W``).
        hidden: ``h``.
    """

    def __init__(self, in_features: int, *, hidden: int = 64) -> None:
        super().__init__()
        self.in_features, self.hidden = in_features, hidden
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.head = nn.Linear(hidden, 1)

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """``x (n, ...)`` -> ``(n, h)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (n, ...)`` -> logits ``(n,)``."""
        return self.head(self.body(x)).squeeze(-1)

    @torch.no_grad()
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """``P(y = 1 | x)``, ``(n,)`` in [0, 1]."""
        return torch.sigmoid(self(x))


@dataclass(frozen=True)
class TrainedDownstream:
    """A trained downstream classifier and how it was trained.

    Attributes:
        model: the classifier (in eval mode).
        positive: the class names of label 1.
        sensitive: the protected slice's name.
        remedy: the remedy it was trained with.
        mindiff_label: the label whose scores MinDiff matched (0, 1, or ``None``: not used).
        final_loss: mean cross-entropy over the last 10 % of steps.
        final_penalty: mean remedy term over the last 10 % of steps (0 for ``none``).
    """

    model: DownstreamClassifier
    positive: tuple[str, ...]
    sensitive: str
    remedy: str
    mindiff_label: int | None
    final_loss: float
    final_penalty: float


def binary_target(classes: Any, class_names: Sequence[str], positive: Sequence[str]) -> torch.Tensor:
    """``(n,)`` int64: 1 where ``class_names[classes[i]]`` is in ``positive``, else 0
    (``classes (n,)``: integer codes, a tensor, array or list)."""
    codes = torch.tensor([name in set(positive) for name in class_names], dtype=torch.int64)
    return codes[as_tensor("classes", classes).long()]


def resolve_slices(config: DownstreamConfig, class_names: Sequence[str], minority: int) -> tuple[tuple[str, ...], str]:
    """The positive class names and the sensitive slice of ``config`` for these classes
    (``minority``: the index of the minority class, the default of both)."""
    names = [str(n) for n in class_names]
    positive = tuple(config.positive) if config.positive is not None else (names[minority],)
    for name in positive:
        if name not in names:
            raise ConfigError(f"downstream.positive must name classes among {names}, got {name!r}")
    if len(positive) == len(names):
        raise ConfigError(f"downstream.positive must leave at least one class negative, got every class {list(positive)}")
    sensitive = config.sensitive if config.sensitive is not None else names[minority]
    if sensitive not in names:
        raise ConfigError(f"downstream.sensitive must be one of {names}, got {sensitive!r}")
    return positive, sensitive


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coefficient * grad, None


def grad_reverse(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """The identity forwards; multiplies the gradient by ``-coefficient`` backwards (DANN's GRL)."""
    return _GradReverse.apply(x, coefficient)


def similarity_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between the off-diagonal entries of the cosine-similarity matrices of
    embeddings ``a (n, d)`` and ``b (n, e)`` of the same n items (PARADE's decorrelation target);
    a scalar tensor, differentiable, 0 where either similarity is constant."""
    n = a.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=a.device)
    sa = _cosine(a)[off]
    sb = _cosine(b)[off]
    sa, sb = sa - sa.mean(), sb - sb.mean()
    return (sa * sb).sum() / (sa.square().sum().sqrt() * sb.square().sum().sqrt() + 1e-12)


def _cosine(x: torch.Tensor) -> torch.Tensor:
    x = F.normalize(x, dim=1, eps=1e-8)
    return x @ x.T


def train_downstream(
    x: torch.Tensor,
    classes: torch.Tensor,
    *,
    class_names: Sequence[str],
    config: DownstreamConfig,
    minority: int | None = None,
    generator: torch.Generator,
) -> TrainedDownstream:
    """Train a :class:`DownstreamClassifier` on images ``x (n, ...)`` with class codes
    ``classes (n,)`` in ``[0, len(class_names))`` (see the module docstring).

    ``minority``: the index of the minority class (default of ``positive`` and ``sensitive``);
    ``None``: the rarest class in ``classes``. A NaN or infinite loss raises
    :class:`FloatingPointError` naming the step and the value
    (``downstream classifier: loss is nan at step 3 of 200``, :func:`genfair.training.take_step`).
    """
    names = tuple(str(n) for n in class_names)
    if x.shape[0] != classes.shape[0] or x.shape[0] == 0:
        raise ConfigError(f"x and classes must have one entry per image, got {tuple(x.shape)} and {tuple(classes.shape)}")
    if minority is None:
        minority = int(torch.bincount(classes, minlength=len(names)).argmin())
    positive, sensitive = resolve_slices(config, names, minority)
    x = x.reshape(x.shape[0], -1).to(torch.float32)
    y = binary_target(classes, names, positive).to(torch.float32)
    with torch.random.fork_rng(devices=[]):  # nn layers draw their initial weights from the global RNG
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        model = DownstreamClassifier(x.shape[1], hidden=config.hidden)
        remedy = _Remedy(config, x.shape[1], len(names), names.index(sensitive), classes, y)
    parameters = [*model.parameters(), *remedy.parameters()]
    optimiser = torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    tail = max(1, config.steps // 10)
    loss_sum = penalty_sum = 0.0
    model.train()
    for step in range(config.steps):
        index = torch.randint(len(y), (config.batch_size,), generator=generator)
        logits = model(x[index])
        loss = F.binary_cross_entropy_with_logits(logits, y[index])
        penalty = remedy.penalty(model, x, classes, index, logits, generator)
        total = loss + penalty
        take_step(total, optimiser, what="downstream classifier", step=step, steps=config.steps)
        if step >= config.steps - tail:
            loss_sum += float(loss.detach())
            penalty_sum += float(penalty.detach())
    model.eval()
    return TrainedDownstream(
        model, positive, sensitive, config.remedy, remedy.mindiff_label, loss_sum / tail, penalty_sum / tail
    )


class _Remedy(nn.Module):
    """The remedy's extra parameters (the adversary's or PARADE's heads) and its loss term."""

    def __init__(
        self, config: DownstreamConfig, in_features: int, num_groups: int, sensitive: int,
        classes: torch.Tensor, y: torch.Tensor,
    ) -> None:
        super().__init__()
        self.config, self.mindiff_label, self.y = config, None, y
        hidden = config.hidden
        if config.remedy == "adversary":
            self.group_head = nn.Linear(hidden + 1, num_groups)
        elif config.remedy == "parade":
            self.sensitive_embedding = nn.Sequential(
                nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, config.parade_dim)
            )
            self.sensitive_head = nn.Linear(config.parade_dim, num_groups)
        elif config.remedy == "mindiff":
            in_slice = classes == sensitive
            for label in (0, 1):  # negatives first, as in the case study
                own, rest = in_slice & (y == label), ~in_slice & (y == label)
                if bool(own.any()) and bool(rest.any()):
                    self.mindiff_label = label
                    self.own, self.rest = own.nonzero().flatten(), rest.nonzero().flatten()
                    break
        elif config.remedy not in ("none", "spectral_decoupling"):
            raise ConfigError(f"remedy must be one of the classifier remedies, got {config.remedy!r}")

    def penalty(
        self,
        model: DownstreamClassifier,
        x: torch.Tensor,
        classes: torch.Tensor,
        index: torch.Tensor,
        logits: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        config = self.config
        if config.remedy == "none":
            return logits.new_zeros(())
        if config.remedy == "spectral_decoupling":
            return config.spectral_lambda * logits.square().mean()
        if config.remedy == "mindiff":
            if self.mindiff_label is None:
                return logits.new_zeros(())
            own = self.own[torch.randint(len(self.own), (config.batch_size,), generator=generator)]
            rest = self.rest[torch.randint(len(self.rest), (config.batch_size,), generator=generator)]
            scores = torch.sigmoid(model(x[torch.cat([own, rest])]))
            s_own, s_rest = scores.split(config.batch_size)
            return config.mindiff_weight * mmd2(
                s_own, s_rest, kernel=config.mindiff_kernel, length=config.mindiff_length
            )
        if config.remedy == "adversary":
            h = grad_reverse(model.representation(x[index]), config.adversary_strength)
            group_logits = self.group_head(torch.cat([h, self.y[index, None]], dim=1))
            return F.cross_entropy(group_logits, classes[index])
        if config.remedy == "parade":
            e = self.sensitive_embedding(x[index])
            group_loss = F.cross_entropy(self.sensitive_head(e), classes[index])
            h = model.representation(x[index])
            correlation = similarity_correlation(h, e.detach())
            return group_loss + config.parade_strength * correlation.square()
        raise ConfigError(f"remedy must be one of the classifier remedies, got {config.remedy!r}")

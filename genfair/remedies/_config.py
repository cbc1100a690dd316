"""``remedy=...``: the fairness remedies practitioners already use, applied to a model's training."""

from __future__ import annotations

from dataclasses import dataclass

from genfair.errors import ConfigError, check_choice, check_number, check_positive_int
from genfair.fairness import KERNELS

__all__ = ["REMEDIES", "RemedyConfig"]

REMEDIES: tuple[str, ...] = ("none", "reweight", "oversample", "smote", "group_dro", "mindiff", "hard_mining")


@dataclass
class RemedyConfig:
    """One remedy for the class imbalance of a training set (docs/references.md §4; Wyllie et al. 2024).

    Attributes:
        name: ``none``, ``reweight``, ``oversample``, ``smote``, ``group_dro``, ``mindiff`` or
            ``hard_mining``.
        weighting: ``reweight``: ``inverse_frequency`` (each class weighs as much in the loss as
            every other) or ``kamiran_calders`` (``P(g) P(y) / P(g, y)`` for groups that differ
            from the labels; see ``genfair.fairness.reweighing_factors``).
        level: ``oversample``: ``batch`` (every mini-batch holds ``shares`` of each class, drawn
            with replacement within the class) or ``epoch`` (the training set is first resampled
            to ``shares``, then batches are drawn from it uniformly).
        shares: ``oversample``: the share of each class; ``None``: equal shares.
        k: ``smote``: nearest neighbours among which a partner is chosen.
        target_share: ``smote``: the minority share after adding synthetic samples (``None``:
            as many as the largest class).
        step_size: ``group_dro``: eta of the exponentiated-gradient update of the group weights.
        size_adjustment: ``group_dro``: C of Sagawa et al.'s ``C / sqrt(n_g)`` added to each
            group's loss (0: none).
        weight: ``mindiff``: weight of the MMD² penalty (1.5 in the MinDiff case study).
        kernel, length: ``mindiff``: the MMD kernel (``gaussian``, ``laplacian``) and its length.
        quantity: ``mindiff``: what the penalty compares between the minority and the rest:
            ``score`` (default), each sample's loss standardised by the batch's mean and
            standard deviation (held fixed) and squashed by a sigmoid into (0, 1), the scale of
            the predicted probabilities that TensorFlow Model Remediation compares and that its
            default length 0.1 is made for; or ``loss``, the raw per-sample loss (a generative
            model's NLL spreads over tens of units, where a length-0.1 kernel sees no pair of
            samples from the two sides and the penalty has no gradient; raise ``length`` then).
        keep: ``hard_mining``: the share B/N of each forwarded batch that is back-propagated
            (the samples with the highest loss).
    """

    name: str = "none"
    weighting: str = "inverse_frequency"
    level: str = "batch"
    shares: list[float] | None = None
    k: int = 5
    target_share: float | None = None
    step_size: float = 0.01
    size_adjustment: float = 0.0
    weight: float = 1.5
    kernel: str = "gaussian"
    length: float = 0.1
    quantity: str = "score"
    keep: float = 0.5

    def __post_init__(self) -> None:
        check_choice("name", self.name, REMEDIES)
        check_choice("weighting", self.weighting, ["inverse_frequency", "kamiran_calders"])
        check_choice("level", self.level, ["batch", "epoch"])
        check_choice("kernel", self.kernel, KERNELS)
        check_choice("quantity", self.quantity, ["score", "loss"])
        check_positive_int("k", self.k)
        if self.shares is not None:
            shares = list(self.shares)
            if not shares or any(not _number(s) or s < 0 for s in shares) or abs(sum(shares) - 1) > 1e-6:
                raise ConfigError(f"shares must be non-negative numbers summing to 1, got {shares}")
        for name in ("step_size", "weight", "length"):
            check_number(name, getattr(self, name), above=0)
        check_number("size_adjustment", self.size_adjustment, at_least=0)
        check_number("keep", self.keep, above=0, at_most=1)
        if self.target_share is not None:
            check_number("target_share", self.target_share, above=0, below=1, note="or null")


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

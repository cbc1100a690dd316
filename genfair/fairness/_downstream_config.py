"""The configuration of the downstream classifier and its sliced evaluation (``evaluation.downstream.*``).

See :mod:`genfair.fairness._downstream` for what is trained and
:mod:`genfair.fairness._slices` for what is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genfair.errors import ConfigError, check_choice, check_number, check_positive_int

__all__ = ["CLASSIFIER_REMEDIES", "INTERVALS", "KERNELS", "DownstreamConfig"]

# The option values of the package, here so that a config is checked without importing torch.
INTERVALS: tuple[str, ...] = ("bootstrap", "jackknife")  # genfair.fairness.MetricFrame's intervals
KERNELS: tuple[str, ...] = ("gaussian", "laplacian")  # genfair.fairness.mmd2's kernels
CLASSIFIER_REMEDIES: tuple[str, ...] = ("none", "mindiff", "spectral_decoupling", "adversary", "parade")


def _fairness_indicators_thresholds() -> list[float]:
    return [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


@dataclass
class DownstreamConfig:
    """A binary classifier trained on each generation's training set, evaluated by slice.

    Attributes:
        enabled: train and evaluate it (the loop adds ``down_*`` keys; off by default).
        positive: class names forming the positive label; ``None``: the minority class alone
            (a detector: "is this the minority class?").
        sensitive: the slice a classifier-side remedy protects (MinDiff's sensitive slice);
            ``None``: the minority class.
        hidden: width of the MLP's hidden layers (two of them, on flattened images).
        steps, lr, batch_size: Adam steps, learning rate, mini-batch size.
        weight_decay: Adam's L2 penalty.
        thresholds: score thresholds of the sliced metrics (Fairness Indicators' 0.1..0.9).
        decision_threshold: the classifier's operating threshold, always evaluated too.
        interval: ``bootstrap`` (stratified by slice) or ``jackknife`` (20 buckets, as TFMA).
        bootstrap: resamples of the bootstrap.
        buckets: buckets of the jackknife.
        level: coverage of the intervals.
        min_slice_size: held-out slices with fewer images are flagged (``down_small_slice``).
        remedy: ``none`` | ``mindiff`` | ``spectral_decoupling`` | ``adversary`` | ``parade``.
        mindiff_weight, mindiff_kernel, mindiff_length: MinDiff's loss weight (1.5, the case
            study's), kernel and length (TensorFlow Model Remediation's defaults).
        spectral_lambda: spectral decoupling's weight on the mean squared logit.
        adversary_strength: the gradient-reversal coefficient of the group adversary (DANN).
        parade_strength: PARADE's weight on the squared similarity correlation.
        parade_dim: width of PARADE's sensitive-attribute embedding.
    """

    enabled: bool = False
    positive: list[str] | None = None
    sensitive: str | None = None
    hidden: int = 64
    steps: int = 300
    lr: float = 3e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    thresholds: list[float] = field(default_factory=_fairness_indicators_thresholds)
    decision_threshold: float = 0.5
    interval: str = "bootstrap"
    bootstrap: int = 200
    buckets: int = 20
    level: float = 0.95
    min_slice_size: int = 30
    remedy: str = "none"
    mindiff_weight: float = 1.5
    mindiff_kernel: str = "gaussian"
    mindiff_length: float = 0.1
    spectral_lambda: float = 0.1
    adversary_strength: float = 1.0
    parade_strength: float = 1.0
    parade_dim: int = 16

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"enabled must be true or false, got {self.enabled!r}")
        if self.positive is not None:
            names = list(self.positive)
            if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
                raise ConfigError(f"positive must be a non-empty list of distinct class names (or null), got {names!r}")
        if self.sensitive is not None and not isinstance(self.sensitive, str):
            raise ConfigError(f"sensitive must be a class name (or null), got {self.sensitive!r}")
        for name in ("hidden", "steps", "batch_size", "bootstrap", "parade_dim"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("buckets", self.buckets, minimum=2)
        check_positive_int("min_slice_size", self.min_slice_size, minimum=0)
        check_choice("interval", self.interval, INTERVALS)
        check_choice("remedy", self.remedy, CLASSIFIER_REMEDIES)
        check_choice("mindiff_kernel", self.mindiff_kernel, KERNELS)
        for name in ("lr", "mindiff_length"):
            check_number(name, getattr(self, name), above=0)
        for name in ("weight_decay", "mindiff_weight", "spectral_lambda", "adversary_strength", "parade_strength"):
            check_number(name, getattr(self, name), at_least=0)
        thresholds = list(self.thresholds)
        if not thresholds or not all(_is_number(t) and 0 < t < 1 for t in thresholds):
            raise ConfigError(f"thresholds must be a non-empty list of numbers in (0, 1), got {thresholds!r}")
        check_number("decision_threshold", self.decision_threshold, above=0, below=1)
        check_number("level", self.level, above=0, below=1)

    @property
    def all_thresholds(self) -> list[float]:
        """``thresholds`` and ``decision_threshold``, sorted, without repeats."""
        return sorted({float(t) for t in [*self.thresholds, self.decision_threshold]})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

"""The MinDiff case study's config (``genfair study=downstream_mindiff``), in a module without
torch so that a config is checked without importing it; the study:
``genfair.fairness._mindiff_case_study``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from genfair.data import DigitsData
from genfair.errors import USER_ERRORS, ConfigError, check_choice, check_number, check_positive_int
from genfair.fairness._downstream_config import CLASSIFIER_REMEDIES, DownstreamConfig
from genfair.studies._runner import StudyConfig

__all__ = ["DownstreamArm", "DownstreamMindiffConfig", "default_arms"]


@dataclass
class DownstreamArm:
    """One classifier: its remedy and strengths (the ``DownstreamConfig`` fields of the same names)."""

    remedy: str = "none"
    mindiff_weight: float = 1.5
    spectral_lambda: float = 0.1
    adversary_strength: float = 0.1
    parade_strength: float = 1.0


def default_arms() -> dict[str, DownstreamArm]:
    return {
        "baseline": DownstreamArm(),
        "mindiff": DownstreamArm(remedy="mindiff", mindiff_weight=1.5),
        "mindiff_w5": DownstreamArm(remedy="mindiff", mindiff_weight=5.0),
        "spectral_decoupling": DownstreamArm(remedy="spectral_decoupling", spectral_lambda=0.1),
        "adversary": DownstreamArm(remedy="adversary", adversary_strength=0.1),
        "parade": DownstreamArm(remedy="parade", parade_strength=1.0),
    }


def _odd() -> list[str]:
    return ["1", "3", "5", "7", "9"]


def _grid() -> list[float]:
    return [round(0.05 + 0.01 * i, 2) for i in range(91)]  # 0.05, 0.06, ..., 0.95


@dataclass
class DownstreamMindiffConfig(StudyConfig):
    """Configuration of the MinDiff case study (see :func:`run_downstream_mindiff`):
    ``genfair study=downstream_mindiff`` (or ``experiment=downstream_mindiff``); on the command
    line each key is ``study.<key>``.

    Attributes:
        positive: the digits of label 1 (default the odd ones).
        sensitive: the rare negative digit whose FPR is at stake.
        sensitive_share: its share of the training set; the other nine digits share the rest equally.
        n_train: training images per replicate.
        holdout: share of each digit kept apart for evaluation.
        replicates: training sets (and initialisations) drawn.
        classifier: the classifier and its training (``remedy`` and strengths come from the arms).
        threshold: the decision threshold.
        threshold_grid: candidate thresholds for matching the baseline's overall FPR.
        bootstrap, level: resamples and coverage of the intervals.
        arms: ``{name: DownstreamArm}``; the first with ``remedy: none`` is the baseline.
    """

    positive: list[str] = field(default_factory=_odd)
    sensitive: str = "8"
    sensitive_share: float = 0.02
    n_train: int = 900
    holdout: float = 0.4
    replicates: int = 5
    classifier: DownstreamConfig = field(default_factory=lambda: DownstreamConfig(steps=200, hidden=64))
    threshold: float = 0.5
    threshold_grid: list[float] = field(default_factory=_grid)
    bootstrap: int = 500
    level: float = 0.95
    arms: dict[str, DownstreamArm] = field(default_factory=default_arms)

    def __post_init__(self) -> None:
        digits = [str(d) for d in range(10)]
        if not self.positive or any(p not in digits for p in self.positive) or len(set(self.positive)) != len(self.positive):
            raise ConfigError(f"positive must be distinct digits '0'-'9', got {list(self.positive)!r}")
        negatives = [d for d in digits if d not in self.positive]
        if self.sensitive not in negatives or len(negatives) < 2:
            raise ConfigError(
                f"sensitive must be a negative digit (one of {negatives}) with another negative beside it, got {self.sensitive!r}"
            )
        check_number("sensitive_share", self.sensitive_share, above=0, below=0.1, note="(a rare digit)")
        for name in ("n_train", "replicates", "bootstrap"):
            check_positive_int(name, getattr(self, name))
        for name in ("threshold", "level", "holdout"):
            check_number(name, getattr(self, name), above=0, below=1)
        if not self.threshold_grid or not all(0 < t < 1 for t in self.threshold_grid):
            raise ConfigError(f"threshold_grid must be numbers in (0, 1), got {list(self.threshold_grid)!r}")
        if not any(arm.remedy == "none" for arm in self.arms.values()):
            raise ConfigError(f"arms must hold a baseline (remedy: none), got {list(self.arms)}")
        for name, arm in self.arms.items():
            try:
                check_choice("remedy", arm.remedy, CLASSIFIER_REMEDIES)
                self.classifier_for(arm)
            except USER_ERRORS as error:
                raise ConfigError(f"arms.{name}.{error}") from None

    @property
    def baseline(self) -> str:
        return next(name for name, arm in self.arms.items() if arm.remedy == "none")

    def classifier_for(self, arm: DownstreamArm) -> DownstreamConfig:
        fields = {**dataclasses.asdict(self.classifier), **dataclasses.asdict(arm)}
        return DownstreamConfig(**{**fields, "positive": list(self.positive), "sensitive": self.sensitive})

    def data(self) -> DigitsData:
        rest = (1 - self.sensitive_share) / 9
        shares = [self.sensitive_share if str(d) == self.sensitive else rest for d in range(10)]
        return DigitsData(classes=list(range(10)), proportions=shares, holdout=self.holdout)

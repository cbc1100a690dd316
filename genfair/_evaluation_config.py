"""How a deep model's generation is measured, as a config (``evaluation.*``), in a module without
torch so that a config is checked without importing it; the measure itself is
:mod:`genfair.evaluation`, which re-exports :class:`EvaluationConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genfair.errors import ConfigError, check_choice, check_number, check_positive_int
from genfair.fairness._downstream_config import DownstreamConfig
from genfair.metrics._classifier_config import ClassifierConfig

__all__ = ["SYNTHETIC_LABELS", "EvaluationConfig"]

SYNTHETIC_LABELS: tuple[str, ...] = ("auto", "model", "classifier")


@dataclass
class EvaluationConfig:
    """How each generation of a deep model is measured (``evaluation.*`` on the command line).

    Attributes:
        samples: generated images per generation that the metrics use (not the training set).
        k: nearest neighbours of precision, recall, density and coverage.
        bootstrap: resamples of the stratified bootstrap behind every interval.
        level: coverage of the intervals (percentile bootstrap).
        synthetic_labels: ``auto`` | ``model`` | ``classifier`` (see the module docstring).
        grid: samples per class in each generation's sample grid (0: no grids).
        classifier: the evaluation classifier (trained once per data set, then cached).
        cache_dir: where trained classifiers are cached; default ``$GENFAIR_CACHE`` or
            ``~/.cache/genfair``.
        downstream: the downstream classifier evaluated by slice (disabled by default; see the
            module docstring).
        extra_metrics: metrics from the user's own code, each ``{_target_: package.module.Name,
            <argument>: value, ...}``, measured every generation of any arm (analytic ones too)
            and written and drawn like the built-in ones (``genfair.metrics.ExtraMetric``).
    """

    samples: int = 1000
    k: int = 5
    bootstrap: int = 200
    level: float = 0.95
    synthetic_labels: str = "auto"
    grid: int = 8
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    cache_dir: str | None = None
    downstream: DownstreamConfig = field(default_factory=DownstreamConfig)
    extra_metrics: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_positive_int("samples", self.samples)
        check_positive_int("k", self.k)
        check_positive_int("bootstrap", self.bootstrap)
        check_positive_int("grid", self.grid, minimum=0)
        check_choice("synthetic_labels", self.synthetic_labels, SYNTHETIC_LABELS)
        check_number("level", self.level, above=0, below=1)
        if self.k >= self.samples:
            raise ConfigError(f"k must be smaller than samples={self.samples}, got {self.k}")
        if isinstance(self.downstream, dict):  # a notebook may pass the node as a mapping
            self.downstream = DownstreamConfig(**self.downstream)
        if not isinstance(self.extra_metrics, list | tuple):
            raise ConfigError(f"extra_metrics must be a list of {{_target_: package.module.Name, ...}} entries, got {self.extra_metrics!r}")
        self.extra_metrics = [dict(entry) if isinstance(entry, Mapping) else entry for entry in self.extra_metrics]

"""An arm of an experiment: its name and the configs of its data, model, loop, estimator,
evaluation and remedy (``genfair.experiment.run_experiment`` runs a list of them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from genfair._evaluation_config import EvaluationConfig
from genfair.data import ClassMixtureData, CustomData, DigitsData, GaussianData, ImageFileData
from genfair.estimators import CustomEstimatorConfig, EstimatorConfig
from genfair.models import AnalyticModelConfig, DeepModelConfig
from genfair.remedies import RemedyConfig
from genfair.loops import LoopConfig

__all__ = ["Arm"]


@dataclass(frozen=True)
class Arm:
    """One arm of an experiment: the data, the model, the loop it runs, its estimator, the
    fairness remedy of its training and, for deep models on images, how its generations are
    measured.

    ``model`` is an analytic model's config, which the runner builds for the data and its
    replicates (``build_analytic_model``), or a config that builds its own model
    (:class:`~genfair.models.DeepModelConfig`: a registered one, ``genfair.models.registered_models``,
    or ``model=custom``'s :class:`~genfair.models.CustomModelConfig`)."""

    name: str
    data: GaussianData | ClassMixtureData | DigitsData | ImageFileData | CustomData
    model: AnalyticModelConfig | DeepModelConfig
    loop: LoopConfig
    estimator: EstimatorConfig | CustomEstimatorConfig = field(default_factory=EstimatorConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    remedy: RemedyConfig = field(default_factory=RemedyConfig)

    @property
    def metric_family(self) -> str:
        """How the arm's generations are measured (``genfair._arm_parts`` picks the measure, which
        declares the metrics it reports: ``genfair.evaluation``): ``gaussian`` or ``class_mixture``
        (an analytic model's, against the true class Gaussians), or ``images`` (a deep model's,
        through the evaluation classifier)."""
        return self.model.name if isinstance(self.model, AnalyticModelConfig) else "images"

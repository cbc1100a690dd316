"""How a generation is measured: :class:`AnalyticEvaluation` against the true class Gaussians
(analytic models), and :class:`ImageEvaluation` on real images (deep models): an evaluation
classifier's features and labels, and the fidelity metrics of ``genfair.metrics`` with
stratified-bootstrap intervals.

Per generation, :meth:`ImageEvaluation.measure` draws ``samples`` images from the fitted model
(a class-conditional model draws them for classes sampled from the shares of the generation's
training set, exactly as the loop draws its synthetic set), passes them and the held-out real
images through the cached evaluation classifier, and returns, per class and overall,
precision / recall / density / coverage, FD and KID in the classifier's feature space, the
confusion-corrected class shares of the generated images, the representation ratio and the
fairness discrepancy, each with a ``(lo, hi)`` interval (see ``genfair.metrics.fidelity_metrics``).
It also reports ``train_share/<class>``, the class shares of the training set itself.

Which class a generated image belongs to (``synthetic_labels``):
  - ``model``: the class it was drawn for (class-conditional models only);
  - ``classifier``: the evaluation classifier's prediction (the only choice for unconditional
    models, whose samples carry no class);
  - ``auto``: ``model`` for class-conditional models, ``classifier`` otherwise.
The same choice labels the synthetic training set of the next generation (``label_synthetic``
in ``genfair.loops.simulate``) and groups the generated images for the per-class metrics.

Downstream fairness (``evaluation.downstream.enabled=true``, off by default; see
``genfair.fairness.DownstreamConfig``): after the metrics above, each generation also trains a
small binary classifier on that generation's training set (``train``: real plus synthetic
images, as the loop built it, with their labels) and evaluates it on the held-out real images,
sliced by class, Fairness Indicators style (``genfair.fairness.evaluate_slices``). Its keys, each
with an interval (stratified bootstrap or jackknife) except the sizes and flags:

  - ``down_<m>@<t>/<slice>``: metric ``m`` in ``accuracy``, ``fpr``, ``fnr``, ``tpr`` at score
    threshold ``t`` (``downstream.thresholds`` and ``decision_threshold``, written ``%g``: ``0.5``),
    per class and ``all`` (every held-out image);
  - ``down_<m>_gap@<t>/<slice>``: the class's gap to the best class (highest accuracy and TPR,
    lowest FPR and FNR); ``down_<m>_gap@<t>/all``: the largest gap, best minus worst class;
  - ``down_slice_size/<slice>``: held-out images per class (and ``all``);
    ``down_small_slice/<slice>``: 1 where a class has fewer than ``min_slice_size`` of them.

A rate undefined on a class (the FPR of a positive class) is NaN, with a NaN interval. The
classifier's training and bootstrap draw from a child of the measure's generator taken after
everything else, so enabling it changes no other metric.

Each measure declares what it reports, next to the code that computes it, as a plug-in metric
does (:class:`genfair.metrics.ExtraMetric`): ``METRICS``, each metric (the part of its
``metric/group`` keys before the slash) with the ``(lo, hi)`` its values lie in (``None``: no
bound on that side), and ``headline_metrics(data)``, the ones summary.json's ``headline`` and the
per-metric figures show. A declared primary endpoint must be one of ``METRICS``; a metric
declared in ``(0, 1)`` gets the logit-scale interval of ``metrics.csv`` (:func:`in_unit_interval`).
Adding a built-in metric is: compute it in ``measure``, declare it in ``METRICS``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import torch
from torch import nn

from genfair._evaluation_config import SYNTHETIC_LABELS, EvaluationConfig
from genfair.data import Batch
from genfair.errors import ConfigError
from genfair.fairness import binary_target, evaluate_slices, resolve_slices, train_downstream
from genfair.metrics import (
    RATIO_GROUP,
    TrainedClassifier,
    class_gaussian_metrics,
    fidelity_metrics,
    load_or_train_classifier,
    unit_interval_metrics,
)
from genfair.loops import Measurement, draw_labels

__all__ = [
    "SYNTHETIC_LABELS", "UNIT_INTERVAL_METRICS", "AnalyticEvaluation", "Bounds", "EvaluationConfig", "ImageEvaluation",
    "in_unit_interval",
]

Bounds = tuple[float | None, float | None]  # (lo, hi) of a metric's values; None: no bound on that side


class ImageEvaluation:
    """The measure of a loop over an image source (see the module docstring).

    Build it with :meth:`prepare`, which loads (or trains once and caches) the evaluation
    classifier and embeds the held-out real images.

    Args:
        data: the image source (``DigitsData`` or ``ImageFileData``).
        config: what to measure and how.
        classifier: the trained evaluation classifier with its held-out confusion matrix.
        conditional: whether the models measured are class-conditional.
    """

    # What :meth:`measure` reports (see the module docstring), each metric's bounds per class and
    # over all classes; its minority-to-majority ratio (``genfair.metrics.RATIO_GROUP``) is
    # unbounded above (see :func:`in_unit_interval`).
    METRICS: Mapping[str, Bounds] = {
        "share": (0, 1),
        "share_raw": (0, 1),
        "precision": (0, 1),
        "recall": (0, 1),
        "density": (0, None),
        "coverage": (0, 1),
        "fd": (0, None),
        "kid": (None, None),  # unbiased: below 0 when the two sets are alike
        "train_share": (0, 1),
        "representation_ratio": (0, None),
        "fairness_discrepancy": (0, None),
    }

    @staticmethod
    def headline_metrics(data: Any) -> tuple[str, ...]:
        """The metrics summary.json's ``headline`` and the per-metric figures show."""
        return ("share", "precision", "recall", "coverage", "density", "fd", "kid", "train_share")

    def __init__(self, data: Any, config: EvaluationConfig, classifier: TrainedClassifier, *, conditional: bool) -> None:
        if config.synthetic_labels == "model" and not conditional:
            raise ConfigError(
                "evaluation.synthetic_labels=model needs a class-conditional model (model.conditional=true); "
                "an unconditional model's samples carry no class: use auto or classifier"
            )
        self.data, self.config, self.classifier = data, config, classifier
        self.conditional = conditional
        self.by_model = conditional and config.synthetic_labels != "classifier"
        self.names = tuple(data.group_names)
        shares = list(data.shares)
        self.minority = min(range(len(shares)), key=shares.__getitem__)
        self.heldout = data.heldout()  # the real images every generation is measured against
        self.real_features = classifier.model.features(self.heldout.x[0])
        self.real_labels = self.heldout.y[0]
        if config.downstream.enabled:
            resolve_slices(config.downstream, self.names, self.minority)  # bad class names fail before any work

    @classmethod
    def prepare(cls, data: Any, config: EvaluationConfig, *, conditional: bool) -> ImageEvaluation:
        classifier = load_or_train_classifier(data, config=config.classifier, cache_dir=config.cache_dir)
        return cls(data, config, classifier, conditional=conditional)

    def label(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's classes of images ``(R, n, C, H, W)`` -> ``(R, n)``."""
        return self.classifier.model.predict(x.reshape(-1, *x.shape[2:])).reshape(x.shape[:2])

    @property
    def labeller(self):
        """What labels the loop's synthetic samples: ``None`` (their drawn classes) or :meth:`label`."""
        return None if self.by_model else self.label

    @property
    def features(self):
        """The evaluation classifier's feature map, ``(n, C, H, W) -> (n, d)`` (where SMOTE looks for neighbours)."""
        return self.classifier.model.features

    def summary(self) -> dict[str, Any]:
        """What summary.json records of the evaluation classifier (``classifier``): its held-out
        accuracy, per-class accuracy and confusion matrix."""
        trained = self.classifier
        return {
            "heldout_accuracy": float(trained.heldout_accuracy),
            "per_class_accuracy": [float(a) for a in trained.per_class_accuracy],
            "confusion": [[int(c) for c in row] for row in trained.confusion.tolist()],
        }

    def measure(self, model: nn.Module, train: Batch, generator: torch.Generator) -> Measurement:
        """Metrics of ``model`` after it was fitted on ``train`` (one replicate), and with
        ``config.grid`` the sample grid of :meth:`_grid` as ``artifacts["grid"]``."""
        num_classes = len(self.names)
        counts = train.class_counts(num_classes)
        labels = draw_labels(counts, self.config.samples, generator=generator) if self.conditional else None
        x = model.sample(self.config.samples, labels=labels, generator=generator)[0].detach()
        features = self.classifier.model.features(x)
        predicted = self.classifier.model.predict(x)
        groups = labels[0] if self.by_model else predicted
        estimates = fidelity_metrics(
            self.real_features,
            self.real_labels,
            features,
            groups,
            predicted,
            self.classifier.confusion,
            group_names=self.names,
            minority=self.minority,
            target_shares=list(self.data.shares),
            k=self.config.k,
            bootstrap=self.config.bootstrap,
            level=self.config.level,
            generator=generator,
        )
        values = {key: torch.tensor([e.value], dtype=torch.float64) for key, e in estimates.items()}
        intervals = {key: (e.lo, e.hi) for key, e in estimates.items()}
        shares = counts[0].to(torch.float64) / counts[0].sum()
        for name, share in zip(self.names, shares):
            values[f"train_share/{name}"] = share[None]
        artifacts = {"grid": self._grid(model, generator)} if self.config.grid else {}
        if self.config.downstream.enabled:
            down_values, down_intervals = self.downstream(train, generator)
            values.update({key: torch.tensor([v], dtype=torch.float64) for key, v in down_values.items()})
            intervals.update(down_intervals)
        return Measurement(values, intervals, artifacts)

    def downstream(
        self, train: Batch, generator: torch.Generator
    ) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
        """The ``down_*`` values and intervals (see the module docstring) of a downstream
        classifier trained on ``train``'s first replicate, evaluated on the held-out images."""
        config = self.config.downstream
        fit_seed, bootstrap_seed = torch.randint(2**62, (2,), generator=generator, device=generator.device).tolist()
        trained = train_downstream(
            train.x[0].cpu(),
            train.y[0].cpu(),
            class_names=self.names,
            config=config,
            minority=self.minority,
            generator=torch.Generator().manual_seed(fit_seed),
        )
        report = evaluate_slices(
            trained.model.scores(self.heldout.x[0]),
            binary_target(self.real_labels, self.names, trained.positive),
            self.real_labels,
            group_names=self.names,
            thresholds=config.all_thresholds,
            interval=config.interval,
            bootstrap=config.bootstrap,
            buckets=config.buckets,
            level=config.level,
            min_slice_size=config.min_slice_size,
            generator=torch.Generator().manual_seed(bootstrap_seed),
        )
        return report.flat("down_")

    def _grid(self, model: nn.Module, generator: torch.Generator) -> torch.Tensor:
        """``(classes, grid, C, H, W)`` samples, one row per class: drawn for that class by a
        conditional model, else the first ``grid`` of a larger draw that the classifier puts in
        it (a row short of samples is padded with blank images)."""
        per_class, num_classes = self.config.grid, len(self.names)
        if self.conditional:
            labels = torch.arange(num_classes).repeat_interleave(per_class)[None]
            x = model.sample(per_class * num_classes, labels=labels, generator=generator)[0]
            return x.reshape(num_classes, per_class, *x.shape[1:]).detach()
        x = model.sample(4 * per_class * num_classes, generator=generator)[0].detach()
        predicted = self.classifier.model.predict(x)
        rows = []
        for k in range(num_classes):
            members = x[predicted == k][:per_class]
            blank = x.new_zeros(per_class - len(members), *x.shape[1:])
            rows.append(torch.cat([members, blank]))
        return torch.stack(rows)


class AnalyticEvaluation:
    """The measure of an analytic arm: each replicate's fitted class Gaussians against the data's
    true ones (``genfair.metrics.class_gaussian_metrics``); no labeller (the samples keep the
    classes they were drawn for) and no feature space."""

    labeller = None
    features = None

    # What :meth:`measure` reports, per class (``genfair.metrics.class_gaussian_metrics``).
    METRICS: Mapping[str, Bounds] = {
        "mean_sq_err": (0, None),
        "trace_cov": (0, None),
        "w2_sq": (0, None),
        "share": (0, 1),
        "extinct": (0, 1),
    }

    @staticmethod
    def headline_metrics(data: Any) -> tuple[str, ...]:
        """The metrics summary.json's ``headline`` and the per-metric figures show: the fit, and
        for several classes their shares first (one Gaussian's share is 1 and never extinct)."""
        if len(data.group_names) == 1:
            return ("w2_sq", "trace_cov", "mean_sq_err")
        return ("share", "extinct", "w2_sq", "trace_cov")

    def __init__(self, data: Any) -> None:
        self.data = data

    def summary(self) -> None:
        """Nothing to record in summary.json (the truth is the data's config)."""
        return None

    def measure(self, fitted: nn.Module, train: Any, generator: torch.Generator) -> dict[str, torch.Tensor]:
        names = self.data.group_names
        return class_gaussian_metrics(
            fitted,
            true_means=self.data.true_means(),
            true_covariances=self.data.true_covariances(),
            counts=train.class_counts(len(names)),
            classes=names,
        )


# The metrics in [0, 1], whose intervals in metrics.csv take the logit scale: those a built-in
# measure declares in (0, 1), the curation's acceptance rate (``genfair.loops``), and the
# downstream rates ``down_<rate>@<threshold>`` (their gaps, in [-1, 1], are not).
UNIT_INTERVAL_METRICS = frozenset(
    {"accept_rate", *unit_interval_metrics(AnalyticEvaluation.METRICS), *unit_interval_metrics(ImageEvaluation.METRICS)}
)
_DOWNSTREAM_RATES = ("down_accuracy@", "down_fpr@", "down_fnr@", "down_tpr@")


def in_unit_interval(metric: str, group: str | None = None, *, declared: Collection[str] = ()) -> bool:
    """Whether ``metric`` of ``group`` (the two parts of a ``metric/group`` key) lies in [0, 1]: a
    built-in metric declared so, for a class or ``all`` (the minority's value over the majority's,
    ``group`` :data:`~genfair.metrics.RATIO_GROUP`, can exceed 1 and does not), or one of
    ``declared``, the run's own metrics declared in (0, 1) (``evaluation.extra_metrics``, which
    summary.json lists as ``unit_interval_metrics``)."""
    if metric in declared:
        return True
    if group == RATIO_GROUP:
        return False
    return metric in UNIT_INTERVAL_METRICS or metric.startswith(_DOWNSTREAM_RATES)

"""How the digits prior study measures a fitted VAE: the existing evaluation's classifier and
fidelity metrics, on images the model draws for labels from its own class shares.

:meth:`DigitsMeasure.share` is the generated minority share of the share response and the
assessment: ``samples`` images drawn from the model (labels from ``softmax(class_logits)``),
classified by the evaluation classifier (``genfair.metrics.load_or_train_classifier``, the one
the default experiment uses, cached) and corrected for its held-out confusion matrix (CLEAM, Teo
et al. 2023; ``genfair.metrics.corrected_shares``). :meth:`DigitsMeasure.loop_values` adds the
minority's and majority's precision, recall and coverage against the held-out real images
(``genfair.metrics.fidelity_metrics``, the generated images grouped by the class drawn for them).
"""

from __future__ import annotations

import torch

from genfair._evaluation_config import EvaluationConfig
from genfair.metrics import corrected_shares, fidelity_metrics, load_or_train_classifier
from genfair.models import VAE
from genfair.studies._digits_prior_estimators import draw_from
from genfair.studies._share_prior import SharePriorSource

__all__ = ["LOOP_METRICS", "DigitsMeasure"]

LOOP_METRICS = ("share", "precision", "recall", "coverage")


class DigitsMeasure:
    """The evaluation classifier of ``source``'s digits and its held-out real images.

    Args:
        source: the study's digits (classes, pools, held-out images).
        samples: generated images per measurement.
        k, bootstrap: the PRDC neighbour and the bootstrap resamples of ``fidelity_metrics``
            (its intervals are not used: the study's intervals are across chains).
    """

    def __init__(self, source: SharePriorSource, *, samples: int, k: int, bootstrap: int) -> None:
        evaluation = EvaluationConfig()
        self.classifier = load_or_train_classifier(source.data, config=evaluation.classifier, cache_dir=evaluation.cache_dir)
        held = source.data.heldout()
        self.real_features = self.classifier.model.features(held.x[0])
        self.real_labels = held.y[0]
        self.names = tuple(source.group_names)
        self.samples, self.k, self.bootstrap = samples, k, bootstrap

    def share(self, model: VAE, generator: torch.Generator) -> float:
        """The generated minority share of ``model``, confusion-corrected (see the module docstring)."""
        drawn = draw_from(model, self.samples, generator=generator)
        predicted = self.classifier.model.predict(drawn.x[0])
        return float(corrected_shares(predicted, self.classifier.confusion)[1])

    def loop_values(self, model: VAE, generator: torch.Generator, *, target_shares: list[float]) -> dict[str, float]:
        """``{"metric/group": value}``: ``share`` (corrected) per class, ``precision``,
        ``recall`` and ``coverage`` per class and ``all``, and ``weight/<minority>``, the
        model's own minority share."""
        drawn = draw_from(model, self.samples, generator=generator)
        x, labels = drawn.x[0], drawn.y[0]
        estimates = fidelity_metrics(
            self.real_features, self.real_labels, self.classifier.model.features(x), labels,
            self.classifier.model.predict(x), self.classifier.confusion, group_names=self.names, minority=1,
            target_shares=target_shares, k=self.k, bootstrap=self.bootstrap, generator=generator,
        )  # fmt: skip
        groups = (*self.names, "all")
        values = {
            f"{metric}/{group}": estimates[f"{metric}/{group}"].value
            for metric in LOOP_METRICS for group in groups if f"{metric}/{group}" in estimates
        }  # fmt: skip
        values[f"weight/{self.names[1]}"] = float(model.class_logits.softmax(-1)[1])
        return values

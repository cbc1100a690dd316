"""What one chain of an arm is built from: its evaluation (how its generations are measured,
labelled and curated), its initial model and its fit.

The runner (``genfair.experiment``) never asks what kind of model an arm holds; it asks this
module for the parts, and the parts differ:

  - an analytic arm (Gaussian data, a :class:`~genfair.models.ClassGaussianModel`) is measured
    against the data's true class Gaussians (:class:`~genfair.evaluation.AnalyticEvaluation`); its model declares
    ``PER_REPLICATE``, so one chain holds every replicate at once;
  - a deep arm (images) is measured by :class:`~genfair.evaluation.ImageEvaluation` (an
    evaluation classifier, trained once and cached); its model holds one replicate, so each
    replicate is a chain of its own (see ``genfair._chains``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from genfair.estimators import build_fit
from genfair.evaluation import AnalyticEvaluation, ImageEvaluation
from genfair.metrics import build_extra_metrics, load_or_train_classifier, with_extra_metrics
from genfair.models import AnalyticModelConfig, build_analytic_model, build_model
from genfair.loops import ClassifierVerifier, Fit, LoopConfig, Measure, Verifier, gaussian_verifier
from genfair.seeding import child_seed

__all__ = [
    "ChainParts",
    "batched",
    "chain_parts",
    "extra_metric_names",
    "headline_metrics",
    "init_seed",
    "initial_model",
    "measured_metrics",
    "minority",
    "prepare_evaluations",
    "verifier_config",
]

def _measure_type(arm: Any) -> type:
    """The class of the arm's measure, which declares the metrics it reports (``genfair.evaluation``)."""
    return ImageEvaluation if arm.metric_family == "images" else AnalyticEvaluation


def measured_metrics(arm: Any) -> tuple[str, ...]:
    """The metrics the arm's measure reports (a declared primary endpoint must be one of them)."""
    return tuple(_measure_type(arm).METRICS)


def headline_metrics(arm: Any) -> list[str]:
    """The metrics summary.json's ``headline`` and the per-metric figures show."""
    return list(_measure_type(arm).headline_metrics(arm.data))


def minority(data: Any) -> str:
    """The group with the smallest share (the first of them on a tie)."""
    shares = list(data.shares)
    return data.group_names[min(range(len(shares)), key=shares.__getitem__)]


def _evaluation_key(arm: Any) -> str:
    described = {"data": dataclasses.asdict(arm.data), "evaluation": dataclasses.asdict(arm.evaluation)}
    return json.dumps({**described, "conditional": getattr(arm.model, "conditional", False)}, sort_keys=True)


def prepare_evaluations(arms: Sequence[Any]) -> dict[str, Any]:
    """``{arm name: evaluation}``: deep arms with the same (data, evaluation, conditional) share
    one :class:`ImageEvaluation` (its classifier is trained once and cached)."""
    prepared: dict[str, Any] = {}
    evaluations = {}
    for arm in arms:
        if arm.metric_family != "images":
            evaluations[arm.name] = AnalyticEvaluation(arm.data)
            continue
        key = _evaluation_key(arm)
        if key not in prepared:
            prepared[key] = ImageEvaluation.prepare(arm.data, arm.evaluation, conditional=arm.model.conditional)
        evaluations[arm.name] = prepared[key]
    return evaluations


def verifier_config(arm: Any):
    """The deep arms' verifier: the evaluation classifier's design with ``loop.curation``'s seed and width."""
    curation = arm.loop.curation
    return dataclasses.replace(arm.evaluation.classifier, seed=curation.verifier_seed, width=curation.verifier_width)


def _verifier(arm: Any) -> Verifier | None:
    """What ``loop.curation`` keeps samples by: ``None`` without curation; the fitted class Gaussians
    for analytic models; for deep models a classifier trained once on the real training pool,
    separate from the evaluation classifier (see :func:`verifier_config`), cached under its own key."""
    if arm.loop.curation.rule == "none":
        return None
    if arm.metric_family != "images":
        return gaussian_verifier
    trained = load_or_train_classifier(arm.data, config=verifier_config(arm), cache_dir=arm.evaluation.cache_dir)
    return ClassifierVerifier(trained.model.logits)


def initial_model(arm: Any) -> nn.Module:
    """The arm's untrained model, built from its config (random weights from the global RNG)."""
    data = arm.data
    if isinstance(arm.model, AnalyticModelConfig):
        return build_analytic_model(arm.model, data=data, replicates=arm.loop.replicates, n_real=arm.loop.n_real)
    return build_model(arm.model, sample_shape=data.sample_shape, num_classes=len(data.group_names))


def init_seed(seed: int, replicate: int) -> int:
    """The seed of chain ``replicate``'s initial weights (the same in every arm)."""
    return int(child_seed(seed, 0, "fit", replicate=replicate).generate_state(1)[0])


def batched(model: nn.Module) -> bool:
    """Whether the model holds every replicate at once (it declares ``PER_REPLICATE``): its arm
    is one chain; else each replicate is a chain of its own."""
    return bool(getattr(model, "PER_REPLICATE", False))


@dataclass(frozen=True)
class ChainParts:
    """What :func:`genfair.loops.simulate` runs for one chain: the model, its fit, the measure,
    who labels the synthetic samples, the curation's verifier, and the loop (``replicates``: the
    replicates this chain holds; ``replicate``: the chain's index into the random streams)."""

    model: nn.Module
    fit: Fit
    measure: Measure
    labeller: Callable[[torch.Tensor], torch.Tensor] | None
    verifier: Verifier | None
    loop: LoopConfig
    replicate: int


def chain_parts(arm: Any, *, replicate: int | None, seed: int, device: torch.device, evaluation: Any) -> ChainParts:
    """The parts of chain ``replicate`` of ``arm`` (``None``: the chain of a batched model, which
    holds every replicate); its initial weights are the same in every arm."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed(seed, replicate or 0))
        model = initial_model(arm).to(device)
    names = arm.data.group_names
    fit = build_fit(
        arm.estimator,
        model=model,
        sample_shape=arm.data.sample_shape,
        remedy=arm.remedy,
        classes=len(names),
        minority=list(names).index(minority(arm.data)),
        features=evaluation.features,
    )
    loop = arm.loop if replicate is None else dataclasses.replace(arm.loop, replicates=1)
    return ChainParts(model, fit, _measure(arm, evaluation), evaluation.labeller, _verifier(arm), loop, replicate or 0)


def _measure(arm: Any, evaluation: Any) -> Measure:
    """The evaluation's measure, followed by the arm's ``evaluation.extra_metrics``."""
    entries = arm.evaluation.extra_metrics
    if not entries:
        return evaluation.measure
    metrics = build_extra_metrics(entries, classes=arm.data.group_names)
    return with_extra_metrics(evaluation.measure, metrics, targets=[entry["_target_"] for entry in entries])


def extra_metric_names(arm: Any) -> tuple[list[str], list[str]]:
    """The names of the arm's ``evaluation.extra_metrics`` and of those declared in (0, 1),
    each metric built and checked (before any work)."""
    from genfair.metrics import unit_interval_metrics

    metrics = build_extra_metrics(arm.evaluation.extra_metrics, classes=arm.data.group_names)
    return [metric.name for metric in metrics], unit_interval_metrics({metric.name: metric.bounds for metric in metrics})

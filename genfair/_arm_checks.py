"""What is checked of a run's arms before any work: each arm's data, model, loop and estimator
fit together and fit in memory (:func:`check_arm`), and the comparison the run makes
(:func:`check_comparison`)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from genfair._arm_parts import extra_metric_names, initial_model, measured_metrics, verifier_config
from genfair.comparisons import CompareConfig, check_compare
from genfair.data import CustomData, DigitsData, ImageFileData
from genfair.errors import ConfigError
from genfair.hypernets import HyperNetworkError, check_sample_steps
from genfair.models import BiasedSampler, ModelCapabilities, check_model_protocol
from genfair.loops import check_curation, check_label_policy, training_rule, training_set_size

__all__ = ["check_arm", "check_comparison"]

IMAGE_SOURCES = (DigitsData, ImageFileData, CustomData)


def check_arm(arm: Any) -> nn.Module:
    """Data and model must belong to the same family, and the model must have what the loop
    asks of it (biased sampling), before anything is written; returns the arm's initial model
    (what the run asks of it: see ``genfair._arm_parts.batched``)."""
    images = isinstance(arm.data, IMAGE_SOURCES)
    if isinstance(arm.data, CustomData):
        arm.data.check()  # the user's source has what the runner asks of it, before any work
    if arm.metric_family == "images" and not images:
        raise ConfigError(
            f"model={arm.model.name} needs image data (data=digits, data=image_files or data=custom), "
            f"got {type(arm.data).__name__} (in arm {arm.name!r})"
        )
    if arm.metric_family != "images" and images:
        raise ConfigError(
            f"model={arm.model.name} is an analytic model for data=gaussian or data=class_mixture; "
            f"for {type(arm.data).__name__} use model=vae or model=ddpm (in arm {arm.name!r})"
        )
    if arm.metric_family != "images" and arm.remedy.name != "none" and arm.loop.replicates != 1:
        raise ConfigError(
            f"remedy={arm.remedy.name} trains one replicate at a time: set loop.replicates=1 for an analytic "
            f"model (a deep model's replicates are separate chains and take any remedy), got "
            f"{arm.loop.replicates} (in arm {arm.name!r})"
        )
    model = initial_model(arm)
    if arm.metric_family == "images":  # a real draw larger than the training pools fails here, not mid-run
        arm.data.draw(1, arm.loop.n_real, generator=torch.Generator().manual_seed(0))
        classes = len(arm.data.group_names)
        check_model_protocol(
            model, estimator=arm.estimator.name, uses_hypernetwork=arm.estimator.uses_hypernetwork,
            remedy=arm.remedy.name, num_classes=classes if arm.model.conditional else None, where=f" (in arm {arm.name!r})",
        )
    if arm.loop.sampling_bias != 1.0 and not isinstance(model, BiasedSampler):
        raise ConfigError(
            f"loop.sampling_bias={arm.loop.sampling_bias} needs a model with biased sampling; "
            f"model={arm.model.name} ({type(model).__name__}) has none: use loop.sampling_bias=1.0 (in arm {arm.name!r})"
        )
    # The label policy and the curation (simulate checks them too, but only when the arm starts).
    relabelled = arm.metric_family == "images" and not (arm.model.conditional and arm.evaluation.synthetic_labels != "classifier")
    try:
        check_label_policy(arm.loop, num_classes=len(arm.data.group_names), relabelled=relabelled)
        check_curation(arm.loop, replicates=1 if arm.metric_family == "images" else arm.loop.replicates,
                       relabelled=relabelled, has_verifier=True)
    except ConfigError as error:
        raise ConfigError(f"{error} (in arm {arm.name!r})") from None
    if arm.metric_family == "images" and arm.loop.curation.rule != "none" and verifier_config(arm) == arm.evaluation.classifier:
        raise ConfigError(
            f"loop.curation.verifier_seed={arm.loop.curation.verifier_seed} and verifier_width="
            f"{arm.loop.curation.verifier_width} rebuild the evaluation classifier (evaluation.classifier): the "
            f"verifier must differ from it in seed or width (in arm {arm.name!r})"
        )
    _check_memory(arm)
    _check_plugins(arm)
    _check_early_stopping(arm, model)
    _check_sample_steps(arm, model)
    return model


def _check_sample_steps(arm: Any, model: nn.Module) -> None:
    """PLE's own samples in ``estimator.ple.sample_steps`` steps need a model whose sampler takes
    that many (:class:`SteppedSampler`, a diffusion model)."""
    options = getattr(arm.estimator, "ple", None)  # a user's estimator has none
    steps = None if options is None else options.sample_steps
    if steps is None or not arm.estimator.uses_hypernetwork:
        return
    try:
        check_sample_steps(model, steps)
    except HyperNetworkError as error:
        raise ConfigError(f"estimator.ple.{error} (in arm {arm.name!r})") from None


def _check_early_stopping(arm: Any, model: nn.Module) -> None:
    """Early stopping holds out a share of every generation's training set: it needs a model
    trained by gradient steps on its likelihood, one replicate per chain, and training sets the
    split leaves samples on both sides of."""
    stopping = getattr(arm.estimator, "early_stopping", None)  # a user's estimator has none
    if stopping is None or not stopping.active:
        return
    where = f" (in arm {arm.name!r})"
    can = ModelCapabilities.of(model)
    if can.per_replicate or can.closed_form or can.adversarial:
        raise ConfigError(
            f"estimator.early_stopping.validation={stopping.validation:g} needs a model trained by gradient steps on "
            f"its likelihood, one replicate per chain (model=vae, model=ddpm or a custom one); model={arm.model.name} "
            f"({type(model).__name__}) is not: set estimator.early_stopping.validation=0{where}"
        )
    for generation in range(arm.loop.generations):
        stopping.check_size(training_set_size(arm.loop, generation), where)


def _check_plugins(arm: Any) -> None:
    """The user's estimator and metrics (``_target_`` entries) import and build objects with the
    protocol's methods, before any work."""
    from genfair.estimators import CustomEstimatorConfig

    where = f" (in arm {arm.name!r})"
    try:
        if isinstance(arm.estimator, CustomEstimatorConfig):
            arm.estimator.build()
        extra_metric_names(arm)
        training_rule(arm.loop)
    except ConfigError as error:
        raise ConfigError(f"{error}{where}") from None


def _check_memory(arm: Any) -> None:
    """Refuse sizes whose largest training set (float64, and d x d per sample for the analytic
    fit's outer products) alone would exceed this machine's memory, before anything is written."""
    loop = arm.loop
    n = max(training_set_size(loop, g) for g in range(loop.generations))
    per_sample = math.prod(arm.data.sample_shape)
    if arm.metric_family != "images":
        per_sample *= per_sample + 1
    needed = 8 * loop.replicates * n * per_sample  # a deep arm's chains hold theirs each
    available = _physical_memory()
    if available is not None and needed > available:
        raise ConfigError(
            f"loop.replicates={loop.replicates} x {n} samples (loop.n_real={loop.n_real}, "
            f"loop.n_synthetic={loop.n_synthetic}, loop.kind={loop.kind}) of shape {tuple(arm.data.sample_shape)} "
            f"need about {needed / 2**30:.3g} GiB per training set, more than this machine's "
            f"{available / 2**30:.3g} GiB of memory; lower loop.n_real, loop.n_synthetic or loop.replicates "
            f"(in arm {arm.name!r})"
        )


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX
        return None


def check_comparison(arms: Sequence[Any], compare: CompareConfig | None) -> CompareConfig | None:
    """The comparison this run makes (``None``: none), checked before any work."""
    requested = compare is not None and compare.baseline is not None
    compare = compare or CompareConfig()
    replicates = {arm.loop.replicates for arm in arms}
    if len(arms) < 2 and (not requested or compare.baseline == arms[0].name):
        return None  # one arm: nothing to compare it with
    if not requested and (arms[0].metric_family != "images" or min(replicates) < 2):
        return None
    if len(replicates) > 1:
        raise ConfigError(f"paired comparisons need every arm to run the same loop.replicates, got {sorted(replicates)}")
    check_compare(compare, [arm.name for arm in arms], replicates.pop())
    family, data, measured = arms[0].metric_family, arms[0].data, measured_metrics(arms[0])
    if compare.primary_metric not in measured:
        raise ConfigError(
            f"compare.primary_metric must be one of {list(measured)} (what a {family} run measures), "
            f"got {compare.primary_metric!r}"
        )
    groups = ["minority", "all", *data.group_names]
    if compare.primary_group not in groups:
        raise ConfigError(f"compare.primary_group must be one of {groups}, got {compare.primary_group!r}")
    last = min(arm.loop.generations for arm in arms) - 1
    if compare.relative_to == "generation_0" and compare.primary_first > last:
        raise ConfigError(
            f"compare.primary_first must be a generation after 0 that the run measures (1..{last}) with "
            f"compare.relative_to 'generation_0', got {compare.primary_first}"
        )
    return compare

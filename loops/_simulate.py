"""The self-consuming loop, for any model that follows genfair's protocol.

:func:`loop_generations` runs it and yields each finished generation, so whoever runs the loop
pulls the records and writes what it needs where it pulls them; :func:`simulate` runs it to the
end, with optional callbacks, and returns every record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from genfair.data import Batch
from genfair.devices import module_device
from genfair.errors import ConfigError, GenerationFailed
from genfair.models import BiasedSampler, ClosedFormFit
from genfair.seeding import torch_generator
from genfair.loops._config import LoopConfig
from genfair.loops._curation import Verifier, check_curation, curate
from genfair.loops._records import (
    Fit,
    FitContext,
    FitOutput,
    FinishedGeneration,
    GenerationRecord,
    GenerationStore,
    Labeller,
    LoopResult,
    Measure,
    Measurement,
)
from genfair.loops._training_set import check_label_policy, check_training_set, policy_labels, training_rule

__all__ = ["LostClasses", "check_finite_parameters", "fit_closed_form", "loop_generations", "simulate"]

LostClasses = Callable[[int, tuple[str, ...]], None]


def fit_closed_form(model: nn.Module, train: Batch, generator: torch.Generator, context: FitContext) -> nn.Module:
    """Fit a :class:`~genfair.models.ClosedFormFit` model in place (no randomness needed)."""
    if not isinstance(model, ClosedFormFit):
        raise ConfigError(f"{type(model).__name__} has no closed-form fit; pass a training procedure as fit=")
    model.fit(train.x, train.y)
    check_finite_parameters(model, "closed-form fit", context.generation)
    return model


def check_finite_parameters(model: nn.Module, what: str, generation: int) -> None:
    """Raise :class:`~genfair.errors.GenerationFailed` naming the first parameter of ``model``
    that holds a NaN or infinite value (``what`` says which procedure produced them)."""
    for name, value in model.named_parameters():
        bad = ~torch.isfinite(value.detach())
        if bad.any():
            raise GenerationFailed(
                generation, f"{what}: parameter {name!r} holds {int(bad.sum())} NaN or infinite value(s)"
            )


def simulate(
    *,
    data: Any,
    model: nn.Module,
    config: LoopConfig,
    seed: int,
    measure: Measure,
    fit: Fit = fit_closed_form,
    store: GenerationStore | None = None,
    on_generation: Callable[[list[GenerationRecord]], None] | None = None,
    label_synthetic: Labeller | None = None,
    on_lost_classes: LostClasses | None = None,
    replicate: int = 0,
    verifier: Verifier | None = None,
) -> LoopResult:
    """Run a self-consuming loop (Alemohammad et al. 2024, Algorithm 1) over ``config.generations``
    (:func:`loop_generations` to the end, its generations handed to the callbacks).

    Args:
        data: a data source with ``draw(replicates, n, *, generator) -> Batch`` and ``group_names``.
        model: the model to fit each generation (all replicates at once); fitted in place. The
            training sets are moved to its device (``model.to("cuda")`` runs the loop on a GPU);
            every generator stays on the CPU, so the random draws are the same on any device.
        config: the loop's kind, sizes and sampling bias.
        seed: root seed; generation g's randomness comes from ``genfair.seeding`` children
            (g, stream), so any generation can be re-run alone and a resumed run matches.
        measure: ``(model, training set, generator) -> {"metric/group": (replicates,)}``, or a
            :class:`Measurement` that adds confidence intervals.
        fit: ``(model, training set, generator, context) -> model``; closed form by default
            (``genfair.estimators.build_fit`` makes the hypernetwork, PLE and anchored fits).
        store: keeps finished generations; with one, the loop resumes after the last, and with
            ``config.checkpoint_every`` the fit checkpoints the generation in progress there.
        on_generation: called after each finished generation with the records of every
            finished generation so far, including those restored from ``store`` (after the
            generation is saved in ``store``).
        label_synthetic: ``x (R, n, *shape) -> labels (R, n)``: who labels the synthetic samples.
            ``None`` (the default): the classes they were drawn for, sampled from the class
            shares of the generation's training set, which suits class-conditional models;
            an unconditional model ignores those, and its samples need a labeller (e.g. a
            classifier) for their classes to mean anything.
        replicate: which chain of a replicated run this is: every random stream (real draws,
            fit, measure, synthetic samples) comes from ``genfair.seeding`` children keyed by
            ``(g, stream, replicate)``, so chain r is the same whatever number of chains a run
            holds (replicate 0 is the chain of a one-replicate run).
        on_lost_classes: called as ``(g, names)`` when the synthetic samples drawn at generation
            g (what generation g + 1 trains on) hold no sample of the classes ``names`` in any
            replicate, though the real data had them (after generation g is saved, before
            ``on_generation``). The loop goes on (such a run is degraded,
            not broken). A class lost in only some replicates is not reported: that is the
            drift a replicated analytic loop studies (with one replicate, any loss counts).
        verifier: ``(model, x, labels) -> Verdict``, what ``config.curation`` keeps samples by
            (see ``genfair.loops._curation``); needed when ``config.curation.rule`` is not
            ``none``. The curation's acceptance rate per class and its draws join generation
            g's record (``accept_rate/<class>``, ``accept_rate/all``, ``draws/all``,
            ``unverified/all``): they describe the samples drawn at g, which g + 1 trains on.

    Raises:
        GenerationFailed: a fit met a NaN or infinite loss or parameter, or the synthetic samples
            hold NaN or infinite values. Earlier generations are already in ``store``.

    Example:
        >>> from genfair.data import GaussianData
        >>> from genfair.models import ClassGaussianModel
        >>> config = LoopConfig(generations=3, n_real=10, n_synthetic=10, replicates=1000)
        >>> result = simulate(data=GaussianData(), model=ClassGaussianModel(replicates=1000),
        ...                   config=config, seed=0,
        ...                   measure=lambda m, t, g: {"trace_cov/all": m.covs[:, 0, 0, 0]})
        >>> result.values("trace_cov/all").shape
        (3, 1000)
    """
    records: list[GenerationRecord] = []
    for finished in loop_generations(
        data=data, model=model, config=config, seed=seed, measure=measure, fit=fit, store=store,
        label_synthetic=label_synthetic, replicate=replicate, verifier=verifier,
    ):
        records.append(finished.record)
        model = finished.model
        if finished.restored:
            continue
        if finished.lost and on_lost_classes is not None:
            on_lost_classes(finished.record.generation, finished.lost)
        if on_generation is not None:
            on_generation(records)
    return LoopResult(records, model)


def loop_generations(
    *,
    data: Any,
    model: nn.Module,
    config: LoopConfig,
    seed: int,
    measure: Measure,
    fit: Fit = fit_closed_form,
    store: GenerationStore | None = None,
    label_synthetic: Labeller | None = None,
    replicate: int = 0,
    verifier: Verifier | None = None,
) -> Iterator[FinishedGeneration]:
    """Run a self-consuming loop and yield every finished generation, oldest first: those
    restored from ``store`` (``restored=True``), then each one run, once it is saved in ``store``.

    The arguments are :func:`simulate`'s (the callbacks aside); the checks run, and ``store`` is
    read, when the first generation is asked for. A generation that breaks raises
    :class:`~genfair.errors.GenerationFailed` there (earlier generations are already in
    ``store``).

    Example:
        >>> from genfair.data import GaussianData
        >>> from genfair.models import ClassGaussianModel
        >>> config = LoopConfig(generations=2, n_real=10, n_synthetic=10, replicates=100)
        >>> for finished in loop_generations(data=GaussianData(), model=ClassGaussianModel(replicates=100),
        ...                                  config=config, seed=0, measure=lambda m, t, g: {}):
        ...     print(finished.record.generation, finished.lost)
        0 ()
        1 ()
    """
    num_classes = len(data.group_names)
    check_label_policy(config, num_classes=num_classes, relabelled=label_synthetic is not None)
    check_curation(config, replicates=config.replicates, relabelled=label_synthetic is not None,
                   has_verifier=verifier is not None)
    if config.sampling_bias != 1.0 and not isinstance(model, BiasedSampler):
        raise ConfigError(
            f"loop.sampling_bias={config.sampling_bias} needs a model with biased sampling; "
            f"{type(model).__name__} has none (use loop.sampling_bias=1.0)"
        )
    rule = training_rule(config)  # what the loop kind composes each generation's training set from
    device = module_device(model)  # training sets live where the model computes; generators stay on the CPU
    real = _to(data.draw(config.replicates, config.n_real, generator=torch_generator(seed, 0, "real", replicate=replicate)), device)
    _check_classes_present(real.class_counts(num_classes), data.group_names)
    restored, synthetic = store.resume(model, limit=config.generations) if store is not None else ([], [])
    synthetic = [_to(batch, device) for batch in synthetic]
    reference = store.model_state(0) if restored else None
    for record in restored:
        yield FinishedGeneration(record, model, restored=True)
    for g in range(len(restored), config.generations):
        start = time.perf_counter()
        # 1. Build this generation's training set.
        if g == 0:
            train = real
        else:
            def draw_real(g: int = g) -> Batch:
                return _to(data.draw(config.replicates, config.n_real, generator=torch_generator(seed, g, "real", replicate=replicate)), device)

            train = rule.compose(g, real=real, synthetic=synthetic, draw_real=draw_real,
                                 generator=torch_generator(seed, g, "compose", replicate=replicate))
            shortfall = sum(config.n_synthetic - batch.n for batch in synthetic)  # curation without redraw keeps fewer
            check_training_set(train, rule=rule, config=config, generation=g, num_classes=num_classes, shortfall=shortfall)
        # 2. Fit the model on it (a killed run's fit may restart from its in-generation checkpoint).
        checkpoint = None
        if store is not None and config.checkpoint_every is not None:
            checkpoint = store.fit_checkpoint(g, every=config.checkpoint_every)
        fitted = fit(model, train, torch_generator(seed, g, "fit", replicate=replicate), FitContext(g, reference, checkpoint))
        fitted = fitted if isinstance(fitted, FitOutput) else FitOutput(fitted)
        model, diagnostics = fitted.model, fitted.values
        if g == 0:
            reference = {name: value.detach().clone() for name, value in model.state_dict().items()}
        # 3. Measure the fitted model.
        measured = measure(model, train, torch_generator(seed, g, "measure", replicate=replicate))
        measured = measured if isinstance(measured, Measurement) else Measurement(measured)
        values, intervals = _as_arrays(measured)
        values.update(_as_arrays(Measurement(diagnostics))[0])
        # 4. Draw the synthetic samples that generation g + 1 trains on: their classes by the
        #    label policy (by default the class shares of this generation's training set), kept
        #    or redrawn by the verifier (loop.curation); an unconditional model's samples take
        #    the labeller's classes.
        sampler = torch_generator(seed, g, "sample", replicate=replicate)
        labels = policy_labels(
            config.synthetic_labels, train_counts=train.class_counts(num_classes), real_counts=real.class_counts(num_classes),
            shares=config.synthetic_shares, n=config.n_synthetic, generator=sampler,
        )

        def draw(classes: torch.Tensor) -> torch.Tensor:
            if config.sampling_bias == 1.0:
                drawn = model.sample(classes.shape[1], labels=classes, generator=sampler)
            else:
                drawn = model.sample_biased(classes.shape[1], bias=config.sampling_bias, labels=classes, generator=sampler)
            _check_finite_samples(drawn, g)
            return drawn.detach()

        if config.curation.rule == "none":
            x = draw(labels)
        else:
            curated = curate(draw, labels, model=model, verifier=verifier, config=config.curation,
                             num_classes=num_classes, generation=g)
            x, labels = curated.x, curated.labels
            values.update(_as_arrays(Measurement(curated.values(data.group_names)))[0])
        labels = labels.to(x.device) if label_synthetic is None else label_synthetic(x).to(x.device, torch.int64)
        synthetic = (synthetic if rule.keeps_history else []) + [Batch(x, labels)]
        record = GenerationRecord(g, values, time.perf_counter() - start, intervals,
                                  artifacts={"measure": measured.artifacts, "fit": fitted.logs})
        if store is not None:
            store.save(record, model, synthetic[-1])
        yield FinishedGeneration(record, model, _lost_classes(labels, data.group_names))


def _to(batch: Batch, device: torch.device) -> Batch:
    return Batch(batch.x.to(device), batch.y.to(device))


def _as_arrays(measured: Mapping[str, torch.Tensor] | Measurement) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    if not isinstance(measured, Measurement):
        measured = Measurement(measured)
    values = {key: value.detach().cpu().numpy().astype(np.float64) for key, value in measured.values.items()}
    intervals = {key: np.asarray(bounds, dtype=np.float64) for key, bounds in measured.intervals.items()}
    return values, intervals


def _check_finite_samples(x: torch.Tensor, generation: int) -> None:
    bad = ~torch.isfinite(x)
    if bad.any():
        raise GenerationFailed(generation, f"the synthetic samples hold {int(bad.sum())} NaN or infinite value(s)")


def _lost_classes(labels: torch.Tensor, classes: tuple[str, ...]) -> tuple[str, ...]:
    """Classes with no sample in any replicate of ``labels (R, n)`` (the real draw has them all,
    see :func:`_check_classes_present`)."""
    present = torch.zeros(len(classes), dtype=torch.bool)
    present[labels.reshape(-1).unique().cpu()] = True
    return tuple(name for name, here in zip(classes, present.tolist()) if not here)


def _check_classes_present(counts: torch.Tensor, classes: tuple[str, ...]) -> None:
    missing = (counts == 0).any(dim=0)
    if missing.any():
        names = [name for name, gone in zip(classes, missing.tolist()) if gone]
        raise ConfigError(
            f"classes {names} have no real samples at generation 0; raise loop.n_real or their data.proportions"
        )

"""The fit procedures behind ``estimator=...`` without a hypernetwork, in the form the loop calls
them: ``fit(model, train, generator, context) -> model``, the model holding the new weights
(the hypernetwork fits are in ``_hypernetwork_fit.py``, ``build_fit`` picks one).

Models without a closed-form fit (the deep ones) are trained by gradient steps, each generation
starting from the previous generation's weights (fine-tuning; the first from the initialisation).
Every fit runs under a forked global RNG seeded from its generator, so randomness a model draws
without an explicit generator (a VAE's reparameterisation noise) is reproducible too.

A fairness remedy (``remedy=...``, :mod:`genfair.remedies`) changes how a gradient-trained fit
sees its training set: which samples each step draws (oversampling, SMOTE) and how the step's
per-sample losses become the loss (reweighting, Group DRO, MinDiff, hard example mining), with
every estimator: the model's own weights (``mle``, ``anchor``) or a hypernetwork's
(``hyper_mle``, ``ple``: the remedy shapes the likelihood term; the PLE discrepancy is added as
before). A closed-form model with a remedy is fitted in closed form first, then refined by
``steps`` gradient steps on the remedied loss. Remedies train one replicate (``(1, n, ...)``).

Gradient-trained fits (``GradientFit``, ``HypernetworkFit``) checkpoint the generation in
progress every ``loop.checkpoint_every`` steps when the loop gives them somewhere to
(``FitContext.checkpoint``): weights, optimiser moments, generator and RNG states and the
remedy's or multiplier's state, from which a killed run restarts the generation and ends
bitwise where an uninterrupted one ends on the CPU (see ``_step_checkpoints.py``). The
analytic ``AnchoredFit`` takes a few fast steps and does not checkpoint.

A fit never returns a broken model: a NaN or infinite loss at any gradient step, or non-finite
parameters after a closed-form fit, raises :class:`~genfair.errors.GenerationFailed` naming the
estimator, the step and the value (``estimator mle: loss is nan at step 37 of 800``), before the
step is taken.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import torch
from torch import nn

from genfair.data import Batch
from genfair.errors import ConfigError, GenerationFailed
from genfair.estimators._config import EstimatorConfig
from genfair.estimators._early_stopping import EarlyStopping, held_out_loss, split_validation
from genfair.estimators._step_checkpoints import StepCheckpoints
from genfair.models import ClosedFormFit
from genfair.remedies import Remedy, RemedyConfig
from genfair.hypernets import PLEObjective, Positivity, TargetLayout, call_method, weight_discrepancy
from genfair.loops import FitContext, FitOutput, check_finite_parameters
from genfair.training import take_step

__all__ = ["AnchoredFit", "GradientFit"]


class _Remedial:
    """A remedy's configuration plus what a fit needs to apply it to a generation: a fresh
    :class:`~genfair.remedies.Remedy` per training set, whose log :meth:`finish` returns (Group
    DRO's class weights after every step)."""

    def __init__(self, config: RemedyConfig | None = None, *, classes: int = 1, minority: int = 0,
                 features: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.config = config or RemedyConfig()
        self.classes, self.minority, self.features = classes, minority, features

    @property
    def active(self) -> bool:
        return self.config.name != "none"

    def start(self, train: Batch, generator: torch.Generator) -> tuple[Remedy, Batch]:
        """The remedy of this generation and the training set it draws from."""
        if self.active and train.x.shape[0] != 1:
            raise ConfigError(
                f"remedy {self.config.name!r} trains one replicate at a time; set loop.replicates=1 "
                f"(got {train.x.shape[0]})"
            )
        remedy = Remedy(self.config, num_classes=self.classes, minority=self.minority)
        space = None
        if self.config.name == "smote" and self.features is not None:
            with torch.no_grad():
                space = self.features(train.x[0])
        return remedy, remedy.prepare(train, generator=generator, space=space)

    def finish(self, remedy: Remedy) -> dict[str, object]:
        """The log of a generation's ``remedy`` (a fit returns it as ``FitOutput.logs``)."""
        return {"group_dro_weights": remedy.dro.history} if remedy.dro is not None else {}


class GradientFit:
    """Maximum likelihood by ``config.steps`` Adam steps on the mean per-sample loss of
    ``config.batch_size`` training samples (the whole set if ``None``), starting from the
    model's current weights; for ``anchor``, from generation 1 on the loss adds
    ``lam * D(theta, theta_0)``, the discrepancy to generation 0's weights (loop form). A
    remedy draws the batches and reduces their losses (see the module docstring)."""

    def __init__(self, config: EstimatorConfig, *, remedy: _Remedial | None = None) -> None:
        self.config = config
        self.remedy = remedy or _Remedial()

    def __call__(self, model: nn.Module, train: Batch, generator: torch.Generator, context: FitContext) -> FitOutput:
        params = dict(model.named_parameters())
        reference = self.config.anchor_reference(context, params)
        optimiser = torch.optim.Adam(params.values(), lr=self.config.lr)
        checkpoints = StepCheckpoints(context.checkpoint, modules={"model": model}, optimiser=optimiser, generator=generator)
        model.train()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_from(generator))
            train, held = split_validation(train, self.config.early_stopping, generator)
            stopping = None if held is None else EarlyStopping(
                self.config.early_stopping, steps=self.config.steps, modules={"model": model}, seed=_seed_from(generator),
                loss=lambda: held_out_loss(model, {}, held),
            )
            remedy, train = self.remedy.start(train, generator)
            first, extras = checkpoints.resume()
            _restore_remedy(remedy, extras)
            if stopping is not None:
                stopping.resume(first, extras)
            for step in range(first, self.config.steps):
                index = remedy.batch(self.config.batch_size, generator=generator)
                x, y = _minibatch(train, index)
                loss = remedy.loss(model.loss(x, y)[0], y[0], index)
                if reference is not None:
                    loss = loss + self.config.lam * weight_discrepancy(reference, params, normalize=self.config.normalize)
                take_step(loss, optimiser, **_step_of(self.config, step, context))
                if stopping is not None and stopping.check(step + 1):
                    break
                checkpoints.step_done(step + 1, self.config.steps, lambda: _fit_state(remedy, stopping))
        logs = self.remedy.finish(remedy)
        values = stopping.restore() if stopping is not None else {}
        model.eval()
        return FitOutput(model, values, logs)


class AnchoredFit:
    """The loop form without a hypernetwork: the model's own fit, then from generation 1 on
    ``config.steps`` Adam steps on ``mean NLL(X_g; theta) + lam * D(theta, theta_0)`` over the
    model's weights (unconstrained through ``positive``), starting from its own fit. With a
    remedy, every generation (``mle``, ``anchor``) takes the steps, on the remedied loss of
    ``config.batch_size`` samples of the remedied training set."""

    def __init__(self, config: EstimatorConfig, *, positive: Mapping[str, Positivity], per_replicate: bool,
                 remedy: _Remedial | None = None) -> None:
        self.config = config
        self.positive = dict(positive)
        self.per_replicate = per_replicate
        self.remedy = remedy or _Remedial()

    def __call__(self, model: nn.Module, train: Batch, generator: torch.Generator, context: FitContext) -> FitOutput:
        if isinstance(model, ClosedFormFit):
            model.fit(train.x, train.y)
            check_finite_parameters(model, f"estimator {self.config.name} (closed-form start)", context.generation)
        params = dict(model.named_parameters())
        reference = self.config.anchor_reference(context, params)
        if reference is None and not self.remedy.active:
            return FitOutput(model)
        layout = TargetLayout.from_module(model, positive=self.positive, per_replicate=self.per_replicate)
        free = nn.Parameter(layout.flatten(params, average_replicates=False))
        optimiser = torch.optim.Adam([free], lr=self.config.lr)
        remedy, train = self.remedy.start(train, generator) if self.remedy.active else (None, train)
        for step in range(self.config.steps):
            weights = layout.split(free)
            if remedy is None:
                loss = call_method(model, weights, "loss", train.x, train.y).mean()
            else:
                index = remedy.batch(self.config.batch_size, generator=generator)
                x, y = _minibatch(train, index)
                loss = remedy.loss(call_method(model, weights, "loss", x, y)[0], y[0], index)
            if reference is not None:
                loss = loss + self.config.lam * weight_discrepancy(reference, weights, normalize=self.config.normalize)
            take_step(loss, optimiser, **_step_of(self.config, step, context))
        logs = self.remedy.finish(remedy) if remedy is not None else {}
        with torch.no_grad():
            for name, value in layout.split(free).items():
                params[name].copy_(value)
        return FitOutput(model, logs=logs)


def _step_of(config: EstimatorConfig, step: int, context: FitContext) -> dict[str, object]:
    """The keyword arguments of :func:`~genfair.training.take_step` for a fit's 0-based ``step``:
    a NaN or infinite loss fails the generation (``estimator mle: loss is nan at step 37 of 800``)."""
    return dict(what=f"estimator {config.name}", step=step, steps=config.steps,
                error=functools.partial(GenerationFailed, context.generation))


def _minibatch(train: Batch, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples ``index`` of every replicate."""
    part = train.select(index)
    return part.x, part.y


def _remedy_state(remedy: Remedy) -> dict[str, torch.Tensor]:
    """What a remedy carries from step to step: Group DRO's log class weights and their history."""
    if remedy.dro is None:
        return {}
    history = torch.tensor(remedy.dro.history, dtype=torch.float64).reshape(-1, len(remedy.dro.log_q))
    return {"dro.log_q": remedy.dro.log_q, "dro.history": history}


def _restore_remedy(remedy: Remedy, extras: Mapping[str, torch.Tensor]) -> None:
    if remedy.dro is not None and "dro.log_q" in extras:
        remedy.dro.log_q = extras["dro.log_q"].to(remedy.dro.log_q.device)
        remedy.dro.history = extras["dro.history"].tolist()


def _fit_state(remedy: Remedy, stopping: EarlyStopping | None, objective: PLEObjective | None = None) -> dict[str, torch.Tensor]:
    """What a step checkpoint keeps of a fit besides its modules and optimiser: the remedy's
    state, the early-stopping rule's and the augmented Lagrangian's multiplier."""
    multiplier = {"multiplier": objective.multiplier} if objective is not None and objective.multiplier is not None else {}
    return {**_remedy_state(remedy), **(stopping.state() if stopping is not None else {}), **multiplier}


def _seed_from(generator: torch.Generator) -> int:
    return int(torch.randint(2**62, (1,), generator=generator))

"""``estimator=hyper_mle`` and ``estimator=ple``: ``theta_g = H(X_g)``, a hypernetwork H trained on
the generation's training set by the PLE objective (Mayer et al., arXiv 2405.13977, Eq. 5;
``lam = 0`` for ``hyper_mle``), plus the loop form's anchor for ``estimator=anchor
hypernetwork=true``.

Single-replicate (deep) models: amortised training. Every step trains H on ``sets_per_step``
data sets drawn from X_g, of varying size and class composition (``genfair.estimators._sets``),

    loss = mean_b [ NLL(X_b; H(X_b)) + lam * D(H(X_b), H(Y_b)) ],   Y_b ~ p(.; H(X_b)),

so H must map each set to its own weights instead of fitting one data set, where a constant H
(its residual base holding the fit) is optimal. The B sets run in one batched call: H maps
``(B, m, ...)`` to ``(B, ...)`` weights and the target runs under them with ``torch.func.vmap``
over ``functional_call``. Targets that vmap cannot run (diffusers' UNet: GroupNorm) fall back to
a Python loop over the sets; the fit decides once, at its first call, by a trial call on two tiny
sets (under a throwaway generator and a forked RNG, so the decision draws nothing from the run's
random streams), and logs which. The fit returns the model with the evidence of
``genfair.estimators._evidence`` (:data:`EVIDENCE_KEYS`) as ``FitOutput.values``.

``per_replicate`` (analytic) models: the R replicates are the sets; a fresh H per generation
reads each replicate's training set (``batch_size`` samples of it per step) and is scored on it.

Every draw comes from the fit's generator, under a forked global RNG seeded from it, so a fit is
reproducible, and with ``loop.checkpoint_every`` a generation killed in progress resumes bitwise
(see ``_step_checkpoints.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from genfair.data import Batch
from genfair.devices import module_device
from genfair.errors import ConfigError, GenerationFailed
from genfair.estimators._config import EstimatorConfig
from genfair.estimators._early_stopping import EarlyStopping, held_out_loss, split_validation
from genfair.estimators._evidence import fit_evidence
from genfair.estimators._fits import (
    GradientFit,
    _fit_state,
    _minibatch,
    _Remedial,
    _restore_remedy,
    _seed_from,
    _step_of,
)
from genfair.estimators._sets import SetSampler
from genfair.estimators._step_checkpoints import StepCheckpoints
from genfair.hypernets import (
    HyperNetwork,
    HyperNetworkError,
    PLEConfig,
    PLEObjective,
    Positivity,
    check_sample_steps,
    input_sensitivity,
    predict_weights,
    weight_discrepancy,
)
from genfair.loops import FitContext, FitOutput
from genfair.remedies import Remedy
from genfair.training import take_step

__all__ = ["HypernetworkFit"]

log = logging.getLogger(__name__)


class HypernetworkFit:
    """``theta_g = H(X_g)`` with H trained for ``config.steps`` Adam steps on the PLE objective
    (see the module docstring and :class:`EstimatorConfig` for ``sets_per_step``, ``subsample``,
    ``persistent`` and ``base``).

    On a single-replicate model each call returns ``FitOutput(model, values, logs)``, ``values``
    one ``(1,)`` float64 tensor per key (``genfair.estimators._evidence``):

      - ``ple_nll/all``: mean per-sample NLL(X_g; H(X_g)), nats;
      - ``ple_discrepancy/all``: D(H(X_g), H(Y)), Y ~ p(.; H(X_g)) (also for ``hyper_mle``);
      - ``ple_penalty/all``: ``lam * D``, the penalty the objective pays (0 for ``hyper_mle``);
      - ``ple_penalty_ratio/all``: ``ple_penalty / |ple_nll|``;
      - ``h_sensitivity/all``: ``rms(H(A) - H(B)) / rms(H(A))`` for two halves A, B of X_g;
      - ``mle_sensitivity/all``: the same for the model's own maximum-likelihood fine-tune on A
        and on B (``reference_steps`` full-batch steps from theta_g);
      - ``sensitivity_ratio/all``: ``h_sensitivity / mle_sensitivity``.

    On a ``per_replicate`` model (the analytic loops: one H for every chain) it returns
    ``FitOutput(model, {"h_sensitivity/all": (R,)}, logs)``, H's sensitivity on each chain's
    training set; the other evidence is left out (no MLE reference is computed there).
    """

    def __init__(
        self,
        config: EstimatorConfig,
        *,
        sample_shape: Sequence[int],
        num_classes: int | None,
        positive: Mapping[str, Positivity],
        per_replicate: bool,
        remedy: _Remedial | None = None,
    ) -> None:
        self.config = config
        self.remedy = remedy or _Remedial()
        self.options = dict(
            sample_shape=tuple(sample_shape),
            num_classes=num_classes,
            positive=dict(positive),
            per_replicate=per_replicate,
            head=config.head,
            hidden=config.hidden,
            embedding_dim=config.embedding_dim,
        )
        self._vectorise: bool | None = None  # how the B sets run, decided at the first call
        self._kept: dict[str, torch.Tensor] | None = None  # a persistent H after the last generation
        self._shapes: dict[str, tuple[int, ...]] | None = None  # the model parameters it generates
        self._base_start: torch.Tensor | None = None  # where a penalised base started

    def __call__(self, model: nn.Module, train: Batch, generator: torch.Generator, context: FitContext) -> FitOutput:
        if self.options["per_replicate"]:
            return self._fit_replicates(model, train, generator, context)
        return self._fit_sets(model, train, generator, context)

    # ----------------------------------------------------------------- single-replicate models
    def _fit_sets(self, model: nn.Module, train: Batch, generator: torch.Generator, context: FitContext) -> FitOutput:
        config = self.config
        self._check(model, train, context)  # bad input is refused before any work
        conditional = bool(self.options["num_classes"])
        if self._vectorise is None:
            self._vectorise = _can_vectorise(model, train, self.options, conditional)
        hnet = self._hypernetwork(model, train, generator, context)
        objective = PLEObjective(config.ple_config())
        reference = config.anchor_reference(context, hnet.generated)
        optimiser = torch.optim.Adam([p for p in hnet.parameters() if p.requires_grad], lr=config.lr)
        checkpoints = StepCheckpoints(context.checkpoint, modules={"model": model, "hypernetwork": hnet},
                                      optimiser=optimiser, generator=generator)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_from(generator))  # randomness the model draws without a generator
            data, held = split_validation(train, config.early_stopping, generator)
            remedy, train = self.remedy.start(data, generator)
            labels = train.y if conditional else None
            stopping = None if held is None else EarlyStopping(
                config.early_stopping, steps=config.steps, modules={"hypernetwork": hnet}, seed=_seed_from(generator),
                loss=lambda: held_out_loss(model, predict_weights(hnet, train.x, labels), held),
            )
            centre = _remedy_shares(remedy)
            classes = max(self.remedy.classes, int(train.y.max()) + 1)
            sampler = SetSampler(train.y[0], config.subsample, num_classes=classes, shares=centre)
            first, extras = checkpoints.resume()
            _restore_remedy(remedy, extras)
            if "multiplier" in extras:
                objective.multiplier = extras["multiplier"].to(module_device(hnet))
            if "base_start" in extras:
                self._base_start = extras["base_start"].to(module_device(hnet))
            if stopping is not None:
                stopping.resume(first, extras)
            state = lambda: {**_fit_state(remedy, stopping, objective), **self._base_extras()}  # noqa: E731
            if config.persistent and first == 0:
                checkpoints.step_done(0, config.steps, state)  # the warm start, for a kill before the first checkpoint
            for step in range(first, config.steps):
                index = sampler.draw(config.sets_per_step, generator=generator)  # (B, m)
                x, y = train.x[0][index.to(train.x.device)], train.y[0][index.to(train.y.device)]
                reduce = (lambda losses: remedy.loss(losses.flatten(), y.flatten(), index.flatten())) if self.remedy.active else None
                terms = objective.sets(hnet, x, y if conditional else None, generator=generator, reduce=reduce,
                                       vectorise=self._vectorise)
                loss = terms.total
                if reference is not None:
                    anchor = {name: value.expand_as(terms.weights[name]) for name, value in reference.items()}
                    loss = loss + config.lam * weight_discrepancy(anchor, terms.weights, normalize=config.normalize)
                if config.base == "penalised":
                    loss = loss + 0.5 * config.base_penalty * (hnet.base - self._base_start).square().sum()
                take_step(loss, optimiser, **_step_of(config, step, context))
                objective.update_multiplier(terms)
                if stopping is not None and stopping.check(step + 1):
                    break
                checkpoints.step_done(step + 1, config.steps, state)
            logs = self.remedy.finish(remedy)
            stopped = stopping.restore() if stopping is not None else {}
            with torch.no_grad():
                hnet.load_into_target(predict_weights(hnet, train.x, labels))
            values = stopped | fit_evidence(hnet, objective, model, data, conditional=conditional, generator=generator,
                                  vectorise=self._vectorise, reference_steps=min(config.reference_steps, config.steps),
                                  lr=config.lr, what=f"estimator {config.name}",
                                  error=functools.partial(GenerationFailed, context.generation))
        if config.persistent:
            self._kept = {name: value.detach().clone() for name, value in hnet.state_dict().items()}
        return FitOutput(model, values, logs)

    def _check(self, model: nn.Module, train: Batch, context: FitContext) -> None:
        """Refuse, in one line, what this fit cannot do: too small subsamples, own samples in
        steps the model's sampler does not take, a persistent H whose model changed shape, a
        persistent H lost to a resumed run."""
        config = self.config
        if config.ple.sample_steps is not None:
            try:
                check_sample_steps(model, config.ple.sample_steps)
            except HyperNetworkError as error:
                raise ConfigError(str(error)) from None
        n = train.x.shape[1]
        smallest = round(config.subsample.min_fraction * n)
        if smallest < 2:
            raise ConfigError(
                f"subsample.min_fraction={config.subsample.min_fraction:g} gives sets of {smallest} of the training set's "
                f"{n} samples; allowed: a fraction giving at least 2"
            )
        if not config.persistent:
            return
        shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
        if self._shapes is not None and shapes != self._shapes:
            changed = sorted(set(shapes.items()) ^ set(self._shapes.items()))[:3]
            raise ConfigError(
                f"persistent=true keeps one hypernetwork for the model's parameters, but generation {context.generation}'s "
                f"model differs from the first ({changed}); allowed: a model whose parameter names and shapes do not "
                "change, or persistent=false"
            )
        self._shapes = shapes
        resumable = context.checkpoint is not None and context.checkpoint.load() is not None
        if context.generation > 0 and self._kept is None and not resumable:
            raise ConfigError(
                f"persistent=true: generation {context.generation} starts without the hypernetwork generation "
                f"{context.generation - 1} trained (a run resumed after a kill between generations: the run directory "
                "keeps the model, not H, so the resume would not be exact); allowed: rerun from generation 0, or "
                "persistent=false"
            )

    def _hypernetwork(self, model: nn.Module, train: Batch, generator: torch.Generator, context: FitContext) -> HyperNetwork:
        """H for this generation: a persistent H's last state, else a fresh one; a frozen or
        penalised base built at generation 0 starts at the model's maximum-likelihood fit."""
        config = self.config
        seed = _seed_from(generator)  # drawn whether or not it is used, so every fit draws alike
        fresh = self._kept is None
        if fresh and config.base in ("frozen", "penalised") and context.generation == 0:
            mle = dataclasses.replace(config, name="mle", persistent=False, base="free", base_penalty=0.0)
            GradientFit(mle)(model, train, generator, dataclasses.replace(context, checkpoint=None))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the hypernetwork's initialisation
            hnet = HyperNetwork(model, residual=config.base != "none", **self.options)
        if not fresh:
            hnet.load_state_dict(self._kept)
        if config.base == "frozen":
            hnet.base.requires_grad_(False)
        if config.base == "penalised" and fresh:
            self._base_start = hnet.base.detach().clone()
        return hnet

    def _base_extras(self) -> dict[str, torch.Tensor]:
        return {"base_start": self._base_start} if self.config.base == "penalised" else {}

    # ------------------------------------------------------------- per_replicate (analytic) models
    def _fit_replicates(self, model: nn.Module, train: Batch, generator: torch.Generator, context: FitContext) -> FitOutput:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_from(generator))  # the hypernetwork's initialisation
            hnet = HyperNetwork(model, **self.options)
        objective = PLEObjective(self.config.ple_config())
        reference = self.config.anchor_reference(context, hnet.generated)
        optimiser = torch.optim.Adam(hnet.parameters(), lr=self.config.lr)
        conditional = bool(self.options["num_classes"])
        modules = {"model": model, "hypernetwork": hnet}
        checkpoints = StepCheckpoints(context.checkpoint, modules=modules, optimiser=optimiser, generator=generator)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_from(generator))  # randomness the model draws without a generator
            remedy, train = self.remedy.start(train, generator)
            first, extras = checkpoints.resume()
            _restore_remedy(remedy, extras)
            if "multiplier" in extras:
                objective.multiplier = extras["multiplier"].to(module_device(hnet))
            for step in range(first, self.config.steps):
                index = remedy.batch(self.config.batch_size, generator=generator)
                x, y = _minibatch(train, index)
                reduce = (lambda losses: remedy.loss(losses[0], y[0], index)) if self.remedy.active else None
                terms = objective(hnet, x, y if conditional else None, generator=generator, reduce=reduce)
                loss = terms.total
                if reference is not None:
                    loss = loss + self.config.lam * weight_discrepancy(reference, terms.weights, normalize=self.config.normalize)
                take_step(loss, optimiser, **_step_of(self.config, step, context))
                objective.update_multiplier(terms)
                checkpoints.step_done(step + 1, self.config.steps, lambda: _fit_state(remedy, None, objective))
        logs = self.remedy.finish(remedy)
        labels = train.y if conditional else None
        with torch.no_grad():
            hnet.load_into_target(predict_weights(hnet, train.x, labels))
        # The degeneracy probe of every chain's estimate (a constant H scores 0); no MLE reference here.
        sensitivity = input_sensitivity(hnet, train.x, labels, generator=generator, per_set=True)["disjoint"]
        return FitOutput(model, {"h_sensitivity/all": sensitivity.double().cpu()}, logs)


def _can_vectorise(model: nn.Module, train: Batch, options: dict, conditional: bool) -> bool:
    """Whether the target runs under ``torch.func.vmap``: a trial of the amortised objective on two
    sets of two samples, under a forked RNG and a throwaway generator (nothing of the run's
    random streams is drawn); logged once."""
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # vmap's slow-fallback warnings: the trial decides, the log says
        torch.manual_seed(0)
        hnet = HyperNetwork(model, **options)
        trial = PLEObjective(PLEConfig(lam=1.0))
        x, y = train.x[0, None, :2].expand(2, -1, *train.x.shape[2:]), train.y[0, None, :2].expand(2, -1)
        try:
            trial.sets(hnet, x, y if conditional else None, generator=torch.Generator(), vectorise=True).total.backward()
        except Exception as error:  # noqa: BLE001 (any failure under vmap means: loop instead)
            log.info("%s does not run under torch.func.vmap (%s: %s); its data sets run in a Python loop",
                     type(model).__name__, type(error).__name__, str(error).splitlines()[0] if str(error) else "")
            return False
    log.info("%s runs its data sets in one torch.func.vmap call", type(model).__name__)
    return True


def _remedy_shares(remedy: Remedy) -> torch.Tensor | None:
    """The class shares the sets vary around: a batch-level oversampling remedy's, else the
    training set's own (``None``)."""
    config = remedy.config
    if config.name == "oversample" and config.level == "batch":
        return torch.tensor(remedy.shares, dtype=torch.float64)
    return None

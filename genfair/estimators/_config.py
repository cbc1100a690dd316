"""``estimator=...``: how each generation of a loop turns its training set into model weights."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from genfair.errors import ConfigError, check_choice, check_number, check_positive_int
from genfair.estimators import _registry
from genfair.hypernets import CONSTRAINTS, DISCREPANCIES, HEADS, NORMALIZATIONS, PLEConfig

if TYPE_CHECKING:
    import torch

    from genfair.estimators._kinds import BuiltInEstimator
    from genfair.loops import FitContext

__all__ = ["BASES", "ESTIMATORS", "Base", "EarlyStoppingConfig", "EstimatorConfig", "PLEOptions", "SubsampleConfig"]

# The built-in estimators: those configs/estimator/ registers (genfair.estimators._registry), sorted by name.
ESTIMATORS: tuple[str, ...] = tuple(_registry.registered_estimators())
Base = Literal["free", "frozen", "penalised", "none"]
BASES: tuple[str, ...] = ("free", "frozen", "penalised", "none")


@dataclass
class SubsampleConfig:
    """The data sets a hypernetwork trains on at each step (``estimator.subsample.*``), drawn
    from the generation's training set of n samples (see ``genfair.estimators._sets``).

    Attributes:
        min_fraction, max_fraction: each step draws one size m uniformly from
            ``round(min_fraction * n) .. round(max_fraction * n)``, shared by the step's sets, in
            (0, 1] (1: the whole training set; a set never holds a sample twice).
        concentration: each set's class shares are drawn from ``Dirichlet(concentration *
            training shares)`` and its samples without replacement in those shares (as far as a
            class has samples); smaller values vary the composition more (for a 10 % minority,
            10 gives a minority share of mean 0.1 and standard deviation 0.09, so sets range from
            none of it to about three times its share).
    """

    min_fraction: float = 0.25
    max_fraction: float = 1.0
    concentration: float = 10.0

    def __post_init__(self) -> None:
        check_number("subsample.min_fraction", self.min_fraction, above=0, at_most=1,
                     note="(a share of the training set)")
        check_number("subsample.max_fraction", self.max_fraction, above=0, at_most=1,
                     note="(a share of the training set; a subsample is never larger than it)")
        if self.min_fraction > self.max_fraction:
            raise ConfigError(
                f"subsample.min_fraction must be <= subsample.max_fraction = {self.max_fraction:g}, got {self.min_fraction!r}"
            )
        check_number("subsample.concentration", self.concentration, above=0)


@dataclass
class EarlyStoppingConfig:
    """``estimator.early_stopping.*``: train each generation until the loss on a held-out share
    of its training set stops improving (``genfair.estimators._early_stopping``).

    Example:
        >>> EarlyStoppingConfig(validation=0.2, patience=3, every=10).held_out(150)
        30

    Attributes:
        validation: the share of each generation's training set held out, in [0, 1); 0: off.
        patience: checks without a lower held-out loss before the fit stops (>= 1).
        every: steps between checks (>= 1).
    """

    validation: float = 0.0
    patience: int = 5
    every: int = 10

    def __post_init__(self) -> None:
        check_number("early_stopping.validation", self.validation, at_least=0, below=1,
                     note="(a share of the generation's training set; 0: no early stopping)")
        check_positive_int("early_stopping.patience", self.patience)
        check_positive_int("early_stopping.every", self.every)

    @property
    def active(self) -> bool:
        return self.validation > 0

    def held_out(self, n: int) -> int:
        """How many of a training set of ``n`` samples are held out."""
        return round(self.validation * n) if self.active else 0

    def check_size(self, n: int, where: str = "") -> None:
        """Refuse a training set of ``n`` that the split would leave without a held-out sample or
        with fewer than 2 to train on."""
        held = self.held_out(n)
        if self.active and not 1 <= held <= n - 2:
            raise ConfigError(
                f"estimator.early_stopping.validation={self.validation:g} holds out {held} of a training set of {n} "
                f"samples; allowed: a share holding out at least 1 and leaving at least 2 to train on{where}"
            )


@dataclass
class PLEOptions:
    """The options of ``ple``'s objective (``estimator.ple.*``; see :class:`hypernets.PLEConfig`,
    whose defaults these are) beyond the weight ``lam`` and the ``normalize`` of the discrepancy,
    which the anchor shares and which stay ``estimator.lam`` and ``estimator.normalize``.

    Attributes:
        discrepancy: ``draw`` (one draw from H(X), then H of the draw) or ``expectation``.
        constraint: ``penalty`` (Eq. 5) or ``augmented_lagrangian`` (Eq. 4).
        rho: the augmented Lagrangian's quadratic weight.
        dual_lr: the augmented Lagrangian's step on the multiplier, ``mu <- mu + dual_lr * c``.
        detach_target, detach_samples: stop-gradient choices.
        sample_steps: the steps of the model's sampler that PLE's own samples are drawn with
            (a diffusion model's; ``None``: the model's own ``sample_steps``).
    """

    discrepancy: str = PLEConfig.discrepancy
    constraint: str = PLEConfig.constraint
    rho: float = PLEConfig.rho
    dual_lr: float = PLEConfig.dual_lr
    detach_target: bool = PLEConfig.detach_target
    detach_samples: bool = PLEConfig.detach_samples
    sample_steps: int | None = PLEConfig.sample_steps

    def __post_init__(self) -> None:
        check_choice("ple.discrepancy", self.discrepancy, DISCREPANCIES)
        check_choice("ple.constraint", self.constraint, CONSTRAINTS)
        check_number("ple.rho", self.rho, above=0)
        check_number("ple.dual_lr", self.dual_lr, at_least=0)
        if self.sample_steps is not None:
            check_positive_int("ple.sample_steps", self.sample_steps)


@dataclass
class EstimatorConfig:
    """The estimator of every generation: which one (``name``), the weight of its discrepancy
    term (``lam``, ``normalize``: ``ple``'s penalty or the anchor's), ``ple``'s other options
    (:class:`PLEOptions`, ``estimator.ple.*``) and how each generation trains.

    ``mle``: the model's own fit (closed form for the analytic models, whose ``model.estimator``
    still chooses the divisor n or n - 1). ``hyper_mle``: a hypernetwork ``H`` predicts the
    weights from the training set, ``theta_g = H(X_g)``, trained by maximum likelihood.
    ``ple``: the same, trained with the weight-discrepancy penalty of Mayer et al. (Eq. 5, or
    Eq. 4 with ``constraint=augmented_lagrangian``). ``anchor``: the loop form; from generation 1
    on, the fit adds ``lam * D(theta_g, theta_0)``, the distance to the weights fitted on the real
    data of generation 0 (through the hypernetwork with ``hypernetwork=true``, else on the
    model's own weights, starting from its own fit).

    For a Gaussian, the exact solution of the PLE constraint is the unbiased estimator, so
    ``estimator=mle model.estimator=unbiased`` is the closed-form limit that ``ple`` approaches.

    Each built-in estimator is registered by its YAML, ``configs/estimator/<name>.yaml``, whose
    ``_target_`` names its class (:class:`~genfair.estimators.BuiltInEstimator`: what the
    estimator is, and how it builds the loop's fit); :data:`ESTIMATORS` are the names registered.

    Attributes:
        name: one of :data:`ESTIMATORS` (``anchor``, ``hyper_mle``, ``mle``, ``ple``).
        _target_: the estimator's class, ``package.module.Name``: its registered YAML's
            (``None`` is filled in with it; an override ``estimator.name=ple`` over
            ``estimator=mle`` takes ple's). A class of your own runs with ``estimator=custom``.
        lam: weight of the discrepancy (``ple``) or of the anchor (``anchor``); 0.1 by default.
        normalize: how that discrepancy averages the weights: ``parameter`` (mean squared
            distance per value) or ``relative`` (per tensor).
        ple: the PLE objective's other options (:class:`PLEOptions`); only ``ple`` uses them.
        steps, lr: Adam steps and learning rate of each generation's training (with early
            stopping: the most steps it may take).
        early_stopping: train each generation until the loss on a held-out share of its
            training set stops improving (:class:`EarlyStoppingConfig`; off by default), for
            the gradient-trained fits of single-replicate (deep) models.
        batch_size: training samples per step, drawn without replacement from the generation's
            training set (for a hypernetwork on a ``per_replicate`` model: the set it reads and
            is scored on); ``None``: the whole set every step.
        hypernetwork: whether ``anchor`` trains through a hypernetwork.
        head, hidden, embedding_dim: the hypernetwork (see ``genfair.hypernets.HyperNetwork``).

    How a hypernetwork trains on a single-replicate (deep) model; a ``per_replicate`` model's
    replicates are already its sets, and it trains as before (these options do not apply):

        sets_per_step: B, the data sets every step trains H on (amortised training: the loss is
            the mean over the sets of ``NLL(X_b; H(X_b)) + lam * D(H(X_b), H(Y_b))``). The sets
            replace ``batch_size``, which such a fit ignores.
        subsample: how the sets are drawn from the training set (:class:`SubsampleConfig`).
        persistent: keep one H across generations, warm-started from the previous generation's,
            so ``theta_g = H(X_g)`` is one estimator applied to every generation's data; else a
            fresh H every generation, whose residual base starts at the model's current weights.
            A persistent H lives in the fit, not in the run directory: a run resumed after a
            kill between generations is refused, one killed inside a generation resumes
            exactly from its in-generation checkpoint (``loop.checkpoint_every``).
        base: the residual base weights that H's data-dependent delta is added to: ``free``
            (trained with H), ``frozen`` (never trained), ``penalised`` (trained, paying
            ``base_penalty / 2 * ||base - start||^2``, the L2-SP penalty of Li et al. 2018,
            "Explicit inductive bias for transfer learning", towards where it started),
            ``none`` (no base: H generates the weights outright). ``frozen`` and ``penalised``
            start at the model's weights when H is built, after a maximum-likelihood fit of them
            (``steps`` Adam steps, as ``estimator=mle``) when that is generation 0, whose
            weights are the random initialisation.
        base_penalty: the weight of ``base=penalised`` (> 0 there, 0 otherwise).
        reference_steps: full-batch Adam steps of the maximum-likelihood reference that the fit
            reports beside H's input sensitivity (``mle_sensitivity``, see ``HypernetworkFit``),
            at most ``steps``; 0 skips the reference.

    The defaults of these options were chosen on the default digits loop
    (``benchmarks/ple_amortised.py``, results in ``benchmarks/results/ple_amortised.txt``): 16 sets,
    the fewest allowed, since at equal cost more steps of fewer sets fit better and H's
    sensitivity did not grow with the number of sets; a free base, which fits best, while a frozen
    or penalised one fits worse without making H read its data more, and ``none`` makes H read
    more at a much worse fit; a fresh H per generation, since a persistent one read more only for
    a generation or two and makes a resumed run depend on state the run directory lacks.
    """

    name: str = "mle"
    _target_: str | None = None
    lam: float = PLEConfig.lam
    normalize: str = PLEConfig.normalize
    ple: PLEOptions = field(default_factory=PLEOptions)
    steps: int = 200
    lr: float = 0.01
    batch_size: int | None = None
    hypernetwork: bool = False
    head: str = "chunked"
    hidden: int = 64
    embedding_dim: int = 32
    sets_per_step: int = 16
    subsample: SubsampleConfig = field(default_factory=SubsampleConfig)
    persistent: bool = False
    base: str = "free"
    base_penalty: float = 0.0
    reference_steps: int = 100
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)

    def __post_init__(self) -> None:
        self._target_ = _registered_target(self.name, self._target_)
        check_number("lam", self.lam, at_least=0)
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        if isinstance(self.ple, dict):  # a plain mapping from code; Hydra gives the dataclass
            self.ple = PLEOptions(**self.ple)
        check_choice("head", self.head, HEADS)
        check_positive_int("steps", self.steps)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        check_positive_int("hidden", self.hidden)
        check_positive_int("embedding_dim", self.embedding_dim)
        check_number("lr", self.lr, above=0)
        check_positive_int("sets_per_step", self.sets_per_step)
        if isinstance(self.subsample, dict):  # a plain mapping from code; Hydra gives the dataclass
            self.subsample = SubsampleConfig(**self.subsample)
        if not isinstance(self.persistent, bool):
            raise ConfigError(f"persistent must be true or false, got {self.persistent!r}")
        check_choice("base", self.base, BASES)
        check_number("base_penalty", self.base_penalty, at_least=0)
        if (self.base == "penalised") != (self.base_penalty > 0):
            raise ConfigError(
                f"base_penalty={self.base_penalty:g} with base={self.base!r}: base_penalty must be > 0 with "
                "base=penalised and 0 with base free, frozen or none"
            )
        check_positive_int("reference_steps", self.reference_steps, minimum=0)
        if isinstance(self.early_stopping, dict):  # a plain mapping from code; Hydra gives the dataclass
            self.early_stopping = EarlyStoppingConfig(**self.early_stopping)

    @property
    def kind(self) -> BuiltInEstimator:
        """The estimator's class, built from its ``_target_``: what it is and how it builds the fit."""
        return _registry.built_in_estimator(self._target_)

    @property
    def anchors_to_generation_0(self) -> bool:
        """Whether the fit adds ``lam * D(theta_g, theta_0)`` from generation 1 on, the
        discrepancy to the weights fitted on generation 0's real data (the loop form, ``anchor``)."""
        return self.kind.anchors

    @property
    def uses_hypernetwork(self) -> bool:
        return self.kind.uses_hypernetwork(self)

    def anchor_reference(self, context: FitContext, names: Iterable[str]) -> dict[str, torch.Tensor] | None:
        """Generation 0's weights named ``names`` (``context.reference``) that the fit's anchor
        term pulls towards, or ``None``: an estimator without the anchor, or generation 0 itself."""
        if not self.anchors_to_generation_0 or context.reference is None:
            return None
        return {name: context.reference[name] for name in names}

    def ple_config(self) -> PLEConfig:
        """The PLE objective's options; ``lam`` is 0 and the constraint a penalty except for an
        estimator that pays PLE's penalty (``ple``; the anchor adds its own term)."""
        options = {**dataclasses.asdict(self.ple), "lam": self.lam, "normalize": self.normalize}
        if not self.kind.penalised:
            options.update(lam=0.0, constraint="penalty")
        return PLEConfig(**options)


def _registered_target(name: object, target: object) -> str:
    """The ``_target_`` that estimator ``name`` runs: its registered class. A target left behind by
    another built-in's group file (an override ``estimator.name=ple`` over ``estimator=mle``)
    gives way to ``name``'s; any other target is refused: a class of one's own runs with
    ``estimator=custom``."""
    registered = _registry.registered_estimators()
    check_choice("name", name, tuple(registered))
    if target is not None and target not in registered.values():
        raise ConfigError(
            f"_target_={target} on estimator={name}: a built-in estimator's class is its YAML's "
            f"({registered[name]}); an estimator of your own runs with estimator=custom"
        )
    return registered[name]

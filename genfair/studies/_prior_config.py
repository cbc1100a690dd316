"""The settings of the prior studies (``genfair experiment=gaussian_prior`` and ``gmm_prior``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from genfair.data._priors import GaussianPrior, MixturePrior, check_range
from genfair.errors import ConfigError, check_choice, check_number, check_penalty_weights, check_positive_int
from genfair.studies._runner import StudyConfig

__all__ = ["GaussianPriorConfig", "GmmPriorConfig", "PriorStudyConfig"]

# Sets x samples of one training step, as float32 activations of the encoder's hidden layer
# (about 4 bytes x hidden each): a step of 10^7 samples is ~2.5 GB at hidden 64.
_MAX_SAMPLES_PER_STEP = 10_000_000


@dataclass
class PriorStudyConfig(StudyConfig):
    """What both prior studies share: hypernetworks trained over a prior of distributions
    (``genfair.studies._amortised``), assessed on held-out draws, then run in a fully synthetic
    loop against the refit. On the command line each key is ``study.<key>``.

    Attributes:
        set_sizes: ``[low, high]``, the range of set sizes n H is trained on (n drawn
            uniformly per step and given to H).
        steps, sets, lr: Adam steps, fresh sets (each from its own prior draw) per step, and the
            initial learning rate (cosine decay to 0).
        hidden, embedding_dim: widths of H's set encoder.
        lams: the PLE arms' penalty weights (arm ``ple`` for the first, ``ple_lam<value>`` for
            the others); ``hyper_mle`` (lam = 0) is always trained.
        discrepancy: ``draw`` or ``expectation`` (see ``genfair.hypernets.PLEConfig``).
        heldout_draws: held-out draws of the prior for the assessment (>= 1000 for a finding).
        assess_sizes: set sizes of the assessment (RMSE against n); ``loop_size`` among them.
        sampling_points, sampling_sets: the sampling distribution of each estimator at the first
            ``sampling_points`` held-out parameters, from ``sampling_sets`` sets each.
        loop_size, generations, chains: the loop's n, generations (counting generation 0, the fit
            on real data) and chains (each from its own held-out draw of the prior; the arms'
            chains share their draws and random streams).
        primary_metric: the loop metric of the declared primary endpoint: its change from
            generation 0 to the last generation, per chain, ``primary_arm`` minus
            ``primary_baseline`` (paired over chains); every other contrast is exploratory
            (Holm-adjusted).
        estimators_dir: where trained hypernetworks are kept and reused (``null``: the run
            directory's ``estimators/``); a saved one trained for other settings is refused.
    """

    set_sizes: list[int] = field(default_factory=lambda: [20, 400])
    steps: int = 6000
    sets: int = 32
    lr: float = 0.003
    hidden: int = 64
    embedding_dim: int = 32
    lams: list[float] = field(default_factory=lambda: [0.1, 1.0])
    discrepancy: str = "draw"
    heldout_draws: int = 1000
    assess_sizes: list[int] = field(default_factory=lambda: [20, 50, 200, 400])
    sampling_points: int = 3
    sampling_sets: int = 500
    loop_size: int = 50
    generations: int = 21
    chains: int = 400
    primary_metric: str = ""
    primary_arm: str = "ple"
    primary_baseline: str = "hyper_mle"
    estimators_dir: str | None = None
    REFITS: ClassVar[tuple[str, ...]] = ()
    METRICS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        low, high = (int(v) for v in check_range("set_sizes", self.set_sizes, lower=2))
        if any(int(v) != v for v in self.set_sizes):
            raise ConfigError(f"set_sizes must be two integers [low, high] with 2 <= low < high, got {list(self.set_sizes)}")
        for name in ("steps", "sets", "hidden", "embedding_dim", "sampling_sets"):
            check_positive_int(name, getattr(self, name))
        if self.sets * high > _MAX_SAMPLES_PER_STEP:
            raise ConfigError(
                f"sets x set_sizes[1] = {self.sets} x {high} samples per step exceeds {_MAX_SAMPLES_PER_STEP:,}: "
                "lower sets or set_sizes"
            )
        check_number("lr", self.lr, above=0)
        check_penalty_weights("lams", self.lams)
        check_choice("discrepancy", self.discrepancy, ["draw", "expectation"])
        check_positive_int("heldout_draws", self.heldout_draws, minimum=2)
        check_positive_int("sampling_points", self.sampling_points, minimum=0)
        if not self.assess_sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 2 for n in self.assess_sizes):
            raise ConfigError(f"assess_sizes must be a non-empty list of integers >= 2, got {list(self.assess_sizes)}")
        if not low <= self.loop_size <= high or self.loop_size not in self.assess_sizes:
            raise ConfigError(
                f"loop_size must lie in set_sizes {[low, high]} and be one of assess_sizes {list(self.assess_sizes)}, got {self.loop_size!r}"
            )
        check_positive_int("generations", self.generations, minimum=2)
        check_positive_int("chains", self.chains, minimum=2)
        check_choice("primary_metric", self.primary_metric, list(self.METRICS))
        arms = self.arms()
        check_choice("primary_arm", self.primary_arm, arms)
        check_choice("primary_baseline", self.primary_baseline, [a for a in arms if a != self.primary_arm])

    def hyper_arms(self) -> dict[str, float]:
        """``{arm: lam}`` of the hypernetwork arms."""
        named = {"hyper_mle": 0.0}
        for i, lam in enumerate(self.lams):
            named["ple" if i == 0 else f"ple_lam{lam:g}"] = float(lam)
        return named

    def arms(self) -> list[str]:
        """Every arm of the loop: the refits first, then the hypernetworks."""
        return [*self.REFITS, *self.hyper_arms()]


@dataclass
class GaussianPriorConfig(PriorStudyConfig):
    """A 1-D Gaussian whose mean and variance come from ``prior``; arms ``refit`` (the MLE,
    variance over n), ``unbiased`` (Bessel's n - 1, the estimator the PLE constraint picks for a
    Gaussian's variance) and the hypernetworks.

    Attributes:
        prior: the prior H is trained over and the held-out draws come from.
        outside: a prior beyond the training ranges, for held-out draws H never saw.
    """

    prior: GaussianPrior = field(default_factory=GaussianPrior)
    outside: GaussianPrior = field(default_factory=lambda: GaussianPrior(mean=[3.0, 4.0], variance=[2.5, 4.0]))
    primary_metric: str = "log_variance_ratio"
    REFITS: ClassVar[tuple[str, ...]] = ("refit", "unbiased")
    METRICS: ClassVar[tuple[str, ...]] = ("log_variance_ratio", "variance_ratio", "mean_error", "kl")


@dataclass
class GmmPriorConfig(PriorStudyConfig):
    """A two-component 1-D mixture from ``prior`` (minority weight, location, gap, variances);
    arms ``refit`` (scikit-learn's EM on each set) and the hypernetworks.

    Attributes:
        prior: the prior H is trained over and the held-out draws come from.
        outside: a prior beyond the training ranges (smaller minorities, wider gaps).
        kl_samples: Monte-Carlo draws of KL(truth || model) per chain and generation.
        em_n_init, em_tol, em_max_iter: scikit-learn EM's settings.
    """

    prior: MixturePrior = field(default_factory=MixturePrior)
    outside: MixturePrior = field(default_factory=lambda: MixturePrior(minority_weight=[0.02, 0.05], gap=[4.0, 6.0]))
    primary_metric: str = "kl"
    kl_samples: int = 2000
    em_n_init: int = 1
    em_tol: float = 1e-6
    em_max_iter: int = 500
    REFITS: ClassVar[tuple[str, ...]] = ("refit",)
    METRICS: ClassVar[tuple[str, ...]] = ("kl", "minority_weight", "minority_variance", "minority_mean", "weight_drift_sq")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("kl_samples", self.kl_samples, minimum=100)
        check_positive_int("em_n_init", self.em_n_init)
        check_positive_int("em_max_iter", self.em_max_iter)
        check_number("em_tol", self.em_tol, above=0)

"""The settings of the digits prior study (``genfair experiment=digits_prior``), in a module
without torch so that a config is checked without importing it; the study:
``genfair.studies._digits_prior``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from genfair.data._priors import check_range
from genfair.errors import ConfigError, check_number, check_penalty_weights, check_positive_int
from genfair.studies._runner import StudyConfig

__all__ = ["DigitsPriorConfig", "SharePrior"]


@dataclass
class SharePrior:
    """The prior over data-generating distributions of the digits: the share ``p`` of the
    minority class (the second of ``classes``) in a drawn set's distribution,

        p = low + (high - low) * Beta(alpha, beta),    [low, high] = minority_share,

    so the default ``minority_share = [0, 1]``, ``alpha = beta = 1`` is ``p ~ Uniform(0, 1)``,
    which reaches shares near 0 (only the majority) and near 1 (only the minority). The images of
    each class are the class's own, whatever p: only the class shares vary over the prior.

    Attributes:
        minority_share: ``[low, high]``, the range of the minority share inside [0, 1], low < high.
        alpha, beta: the Beta distribution's shapes on that range, both > 0.
    """

    minority_share: list[float] = field(default_factory=lambda: [0.0, 1.0])
    alpha: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        check_range("prior.minority_share", self.minority_share, lower=0, upper=1)
        for key in ("alpha", "beta"):
            check_number(f"prior.{key}", getattr(self, key), above=0, note="(a Beta shape)")

    @property
    def low(self) -> float:
        return float(self.minority_share[0])

    @property
    def high(self) -> float:
        return float(self.minority_share[1])


@dataclass
class DigitsPriorConfig(StudyConfig):
    """A hypernetwork trained over a prior of digit distributions, assessed as an amortised
    estimator and run in a self-consuming loop (``genfair experiment=digits_prior``; on the
    command line each key is ``study.<key>``, the prior's ``study.prior.<key>``).

    Attributes:
        classes: two digits, the majority first; the prior's share is the second's (the minority).
        prior: the prior over the minority's share (:class:`SharePrior`).
        set_size_range: ``[low, high]``: every training step draws its sets' size uniformly
            from it, and the hypernetwork is given each set's size.
        loop_size: n of the loop and of the share-response sets (within ``set_size_range``).
        loop_shares: the class shares of generation 0's real set (the default experiment's).
        assessment_sizes: set sizes of the assessment (each within ``set_size_range``).
        assessment_draws: held-out draws per assessment size: a share from the prior, a set.
        response_shares: the minority shares of the share-response sets (0: only the majority,
            1: only the minority; every value in [0, 1]).
        response_sets: sets per response share.
        samples: generated images per measurement (classified by the evaluation classifier).
        vae_hidden, latent_dim: the conditional VAE's MLP widths and latent dimension.
        hidden, embedding_dim: the hypernetwork's set-encoder widths (one dense head per tensor).
        steps, sets_per_step, lr: amortised training: Adam steps, sets per step, initial lr
            (cosine decay to 0).
        ple_lams: the ``ple`` arms' penalty weights; ``hyper_mle`` (lam 0) is always trained.
        refit_steps, refit_lr, refit_batch: the refit (maximum likelihood on one set): Adam
            steps, lr and batch size; its class shares are the set's own (closed form).
        generations: loop generations, counting generation 0 (the estimate on real data).
        chains: paired chains per arm (chain r of every arm shares its random streams).
        bootstrap, k: the evaluation's bootstrap resamples and PRDC neighbour.
        primary_metric, primary_group: the declared primary endpoint, tested alone: the metric's
            change from generation 0 to the last generation per chain, arm minus ``refit``.
        hypernetworks: a directory of trained hypernetworks to reuse (``null``: train them into
            ``<run_dir>/hypernetworks``); one trained for another target or prior is refused.
    """

    classes: list[int] = field(default_factory=lambda: [3, 6])
    prior: SharePrior = field(default_factory=SharePrior)
    set_size_range: list[int] = field(default_factory=lambda: [25, 125])
    loop_size: int = 100
    loop_shares: list[float] = field(default_factory=lambda: [0.9, 0.1])
    assessment_sizes: list[int] = field(default_factory=lambda: [100])
    assessment_draws: int = 100
    response_shares: list[float] = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.3, 0.5, 1.0])
    response_sets: int = 4
    samples: int = 400
    vae_hidden: list[int] = field(default_factory=lambda: [128])
    latent_dim: int = 8
    hidden: int = 64
    embedding_dim: int = 32
    steps: int = 1500
    sets_per_step: int = 16
    lr: float = 0.003
    ple_lams: list[float] = field(default_factory=lambda: [0.1, 1.0])
    refit_steps: int = 300
    refit_lr: float = 0.003
    refit_batch: int = 64
    generations: int = 20
    chains: int = 8
    bootstrap: int = 20
    k: int = 5
    primary_metric: str = "share_change"
    primary_group: str = "minority"
    hypernetworks: str | None = None

    def __post_init__(self) -> None:
        digits = list(self.classes)
        if len(digits) != 2 or any(not _integer(d) or not 0 <= d <= 9 for d in digits) or digits[0] == digits[1]:
            raise ConfigError(f"classes must be two distinct digits 0-9 (majority, minority), got {digits!r}")
        if isinstance(self.prior, dict):  # built from a plain mapping (Python callers)
            self.prior = SharePrior(**self.prior)
        low, high = _size_range(self.set_size_range)
        check_positive_int("loop_size", self.loop_size, minimum=low)
        if self.loop_size > high:
            raise ConfigError(f"loop_size must lie in set_size_range [{low}, {high}], got {self.loop_size!r}")
        shares = list(self.loop_shares)
        if len(shares) != 2 or any(not _real(s) or not 0 < s < 1 for s in shares) or not math.isclose(sum(shares), 1, abs_tol=1e-6):
            raise ConfigError(f"loop_shares must be two shares in (0, 1) summing to 1, got {shares!r}")
        sizes = list(self.assessment_sizes)
        if not sizes or len(set(sizes)) != len(sizes) or any(not _integer(n) or not low <= n <= high for n in sizes):
            raise ConfigError(f"assessment_sizes must be distinct integers in set_size_range [{low}, {high}], got {sizes!r}")
        check_positive_int("assessment_draws", self.assessment_draws, minimum=3)
        response = list(self.response_shares)
        if not response or len(set(response)) != len(response) or any(not _real(s) or not 0 <= s <= 1 for s in response):
            raise ConfigError(f"response_shares must be distinct shares in [0, 1], got {response!r}")
        hidden = list(self.vae_hidden)
        if not hidden or any(not _integer(w) or w < 1 for w in hidden):
            raise ConfigError(f"vae_hidden must be a non-empty list of positive integers, got {hidden!r}")
        counts = ("response_sets", "samples", "latent_dim", "hidden", "embedding_dim", "steps", "sets_per_step",
                  "refit_steps", "refit_batch", "bootstrap", "k")  # fmt: skip
        for key in counts:
            check_positive_int(key, getattr(self, key))
        check_positive_int("generations", self.generations, minimum=2)
        check_positive_int("chains", self.chains, minimum=2)
        for key in ("lr", "refit_lr"):
            check_number(key, getattr(self, key), above=0)
        check_penalty_weights("ple_lams", self.ple_lams)
        if self.samples <= self.k:
            raise ConfigError(f"samples must exceed k={self.k} (PRDC needs k + 1 generated images), got {self.samples!r}")

    @property
    def arms(self) -> dict[str, float]:
        """``{arm: lam}`` of the hypernetwork arms (``refit`` is the refit, no hypernetwork)."""
        return {"hyper_mle": 0.0, **{f"ple_lam{lam:g}": float(lam) for lam in self.ple_lams}}


def _size_range(value: Any) -> tuple[int, int]:
    sizes = list(value) if isinstance(value, (list, tuple)) else None
    if sizes is None or len(sizes) != 2 or not all(_integer(n) and n >= 2 for n in sizes) or sizes[0] > sizes[1]:
        raise ConfigError(f"set_size_range must be [low, high], integers with 2 <= low <= high, got {value!r}")
    return sizes[0], sizes[1]


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)

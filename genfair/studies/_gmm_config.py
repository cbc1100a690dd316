"""The settings of the GMM study (``genfair experiment=gmm_ple``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from genfair.errors import ConfigError, check_choice, check_number, check_positive_int
from genfair.studies._runner import StudyConfig

__all__ = ["GmmPleConfig"]


@dataclass
class GmmPleConfig(StudyConfig):
    """PLE, hypernetwork MLE and EM on the authors' 1-D Gaussian mixture (Mayer et al. 2024).

    Data: ``p(x) = sum_k weights[k] N(x; means[k], variances[k])`` (default 0.8 N(0, 1) +
    0.2 N(2, 1)); the minority is the component of smallest weight. ``genfair study=gmm_ple`` (or
    ``experiment=gmm_ple``); on the command line each key is ``study.<key>``.

    Attributes:
        weights, means, variances: the true mixture (1-D), one entry per component.
        sample_sizes: set sizes n; one hypernetwork is trained per (lam, n).
        test_sets: sets of each size every estimator is measured on (the same sets for all).
        kl_samples: Monte-Carlo draws of KL(data || model) (1e5 in the paper).
        lam: the ``ple`` arm's weight of the discrepancy (0.1 in the paper); ``hyper_mle`` is 0.
        ablation_lams: extra PLE arms ``ple_lam<value>``, trained at ``loop_size`` only.
        discrepancy: ``draw`` (D(H(X), H(Y)) for one draw Y, as in Eq. 5) or ``expectation``
            (an unbiased estimate of ||E_Y H(Y) - H(X)||^2; see ``genfair.hypernets.PLEConfig``).
        steps, samples_per_step, lr: hypernetwork training: Adam steps, samples per step
            (``round(samples_per_step / n)`` sets of n), initial learning rate (cosine decay to 0).
        hidden, embedding_dim: widths of the hypernetwork's set encoder.
        em_n_init, em_tol, em_max_iter: scikit-learn ``GaussianMixture`` settings.
        probe_sets: sets of 2n samples for the input-sensitivity probe.
        loop_size: n of the self-consuming loop (one of ``sample_sizes``).
        generations: loop generations, counting generation 0 (the fit on real data).
        chains: independent loop chains per arm.
    """

    weights: list[float] = field(default_factory=lambda: [0.8, 0.2])
    means: list[float] = field(default_factory=lambda: [0.0, 2.0])
    variances: list[float] = field(default_factory=lambda: [1.0, 1.0])
    sample_sizes: list[int] = field(default_factory=lambda: [50, 200, 1000])
    test_sets: int = 100
    kl_samples: int = 100_000
    lam: float = 0.1
    ablation_lams: list[float] = field(default_factory=lambda: [0.01, 1.0])
    discrepancy: str = "draw"
    steps: int = 1000
    samples_per_step: int = 6400
    lr: float = 0.01
    hidden: int = 32
    embedding_dim: int = 32
    em_n_init: int = 1
    em_tol: float = 1e-6
    em_max_iter: int = 2000
    probe_sets: int = 16
    loop_size: int = 200
    generations: int = 10
    chains: int = 50

    def __post_init__(self) -> None:
        k = len(self.weights)
        shares = all(_number(w) and 0 < w < 1 for w in self.weights)
        if k < 2 or not shares or not math.isclose(sum(self.weights), 1.0, abs_tol=1e-6):
            raise ConfigError(f"weights must be at least two numbers in (0, 1) summing to 1, got {list(self.weights)}")
        if len(self.means) != k or not all(_number(m) for m in self.means):
            raise ConfigError(f"means must be {k} numbers, one per component of weights, got {list(self.means)}")
        if len(self.variances) != k or any(not _number(v) or not v > 0 for v in self.variances):
            raise ConfigError(f"variances must be {k} numbers > 0, one per component of weights, got {list(self.variances)}")
        if not self.sample_sizes or len(set(self.sample_sizes)) != len(self.sample_sizes):
            raise ConfigError(f"sample_sizes must be a non-empty list of distinct integers >= 4, got {list(self.sample_sizes)}")
        for n in self.sample_sizes:
            _positive("sample_sizes", n, list(self.sample_sizes), minimum=max(4, k))
        check_positive_int("test_sets", self.test_sets, minimum=2)
        check_positive_int("kl_samples", self.kl_samples, minimum=100)
        check_number("lam", self.lam, above=0, note="(lam = 0 is the hyper_mle arm)")
        ablation = list(self.ablation_lams)
        if any(not _number(v) or not v > 0 or v == self.lam for v in ablation) or len(set(ablation)) != len(ablation):
            raise ConfigError(f"ablation_lams must be distinct numbers > 0 other than lam={self.lam}, got {ablation}")
        check_choice("discrepancy", self.discrepancy, ["draw", "expectation"])
        counts = ("steps", "samples_per_step", "hidden", "embedding_dim", "em_n_init", "em_max_iter", "probe_sets", "generations")
        for name in counts:
            check_positive_int(name, getattr(self, name))
        check_positive_int("chains", self.chains, minimum=2)
        for name in ("lr", "em_tol"):
            check_number(name, getattr(self, name), above=0)
        if self.loop_size not in self.sample_sizes:
            raise ConfigError(f"loop_size must be one of sample_sizes {list(self.sample_sizes)}, got {self.loop_size!r}")

    @property
    def minority(self) -> int:
        """Index of the true minority component (smallest weight)."""
        return min(range(len(self.weights)), key=lambda k: self.weights[k])

    def hyper_arms(self, n: int) -> dict[str, float]:
        """``{arm: lam}`` of the hypernetwork arms trained at set size n."""
        arms = {"hyper_mle": 0.0, "ple": float(self.lam)}
        if n == self.loop_size:
            arms.update({f"ple_lam{value:g}": float(value) for value in self.ablation_lams})
        return arms


def _number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _positive(name: str, value: Any, shown: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must hold integers >= {minimum}, got {shown!r}")

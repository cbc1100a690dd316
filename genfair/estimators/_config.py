"""``estimator=...``: how each generation of a loop turns its training set into model weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genfair.errors import ConfigError, check_choice, check_positive_int
from hypernets import HEADS, NORMALIZATIONS, PLEConfig

__all__ = ["ESTIMATORS", "EstimatorConfig", "EstimatorName"]

EstimatorName = Literal["mle", "hyper_mle", "ple", "anchor"]
ESTIMATORS: tuple[str, ...] = ("mle", "hyper_mle", "ple", "anchor")


@dataclass
class EstimatorConfig:
    """The estimator of every generation.

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

    Attributes:
        name: one of ``mle``, ``hyper_mle``, ``ple``, ``anchor``.
        lam: weight of the discrepancy (``ple``) or of the anchor (``anchor``); 0.1 by default.
        discrepancy, normalize, constraint, rho, dual_lr, detach_target, detach_samples: PLE options
            (see ``hypernets.PLEConfig``).
        steps, lr: Adam steps and learning rate of each generation's training.
        hypernetwork: whether ``anchor`` trains through a hypernetwork.
        head, hidden, embedding_dim: the hypernetwork (see ``hypernets.HyperNetwork``).
    """

    name: str = "mle"
    lam: float = 0.1
    discrepancy: str = "draw"
    normalize: str = "parameter"
    constraint: str = "penalty"
    rho: float = 10.0
    dual_lr: float = 0.05
    detach_target: bool = False
    detach_samples: bool = False
    steps: int = 200
    lr: float = 0.01
    hypernetwork: bool = False
    head: str = "chunked"
    hidden: int = 64
    embedding_dim: int = 32

    def __post_init__(self) -> None:
        check_choice("name", self.name, ESTIMATORS)
        check_choice("head", self.head, HEADS)
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        check_positive_int("steps", self.steps)
        check_positive_int("hidden", self.hidden)
        check_positive_int("embedding_dim", self.embedding_dim)
        if isinstance(self.lam, bool) or not isinstance(self.lam, (int, float)) or not self.lam >= 0:
            raise ConfigError(f"lam must be a number >= 0, got {self.lam!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ConfigError(f"lr must be a number > 0, got {self.lr!r}")
        self.ple_config()  # checks lam, rho, discrepancy and constraint

    @property
    def uses_hypernetwork(self) -> bool:
        return self.name in ("hyper_mle", "ple") or (self.name == "anchor" and self.hypernetwork)

    def ple_config(self) -> PLEConfig:
        """The PLE objective's options; ``lam`` is 0 except for ``ple`` (the anchor adds its own term)."""
        lam = self.lam if self.name == "ple" else 0.0
        constraint = self.constraint if self.name == "ple" else "penalty"
        return PLEConfig(
            lam=lam,
            discrepancy=self.discrepancy,
            normalize=self.normalize,
            constraint=constraint,
            rho=self.rho,
            dual_lr=self.dual_lr,
            detach_target=self.detach_target,
            detach_samples=self.detach_samples,
        )

"""``estimator=...``: how each generation of a loop turns its training set into model weights."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from genfair.errors import check_choice, check_number, check_positive_int
from genfair.hypernets import HEADS, PLEConfig

__all__ = ["ESTIMATORS", "EstimatorConfig", "EstimatorName"]

EstimatorName = Literal["mle", "hyper_mle", "ple", "anchor"]
ESTIMATORS: tuple[str, ...] = ("mle", "hyper_mle", "ple", "anchor")


@dataclass
class EstimatorConfig(PLEConfig):
    """The estimator of every generation: the PLE options of :class:`hypernets.PLEConfig`
    (``lam``, ``discrepancy``, ``normalize``, ``constraint``, ``rho``, ``dual_lr``,
    ``detach_target``, ``detach_samples``, checked there) and how each generation trains.

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
        steps, lr: Adam steps and learning rate of each generation's training.
        batch_size: training samples per step, drawn without replacement from the generation's
            training set (for a hypernetwork: the set it reads and is scored on); ``None``: the
            whole set every step.
        hypernetwork: whether ``anchor`` trains through a hypernetwork.
        head, hidden, embedding_dim: the hypernetwork (see ``genfair.hypernets.HyperNetwork``).
    """

    name: str = "mle"
    steps: int = 200
    lr: float = 0.01
    batch_size: int | None = None
    hypernetwork: bool = False
    head: str = "chunked"
    hidden: int = 64
    embedding_dim: int = 32

    def __post_init__(self) -> None:
        check_choice("name", self.name, ESTIMATORS)
        check_choice("head", self.head, HEADS)
        check_positive_int("steps", self.steps)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        check_positive_int("hidden", self.hidden)
        check_positive_int("embedding_dim", self.embedding_dim)
        check_number("lr", self.lr, above=0)
        super().__post_init__()  # the PLE options

    @property
    def uses_hypernetwork(self) -> bool:
        return self.name in ("hyper_mle", "ple") or (self.name == "anchor" and self.hypernetwork)

    def ple_config(self) -> PLEConfig:
        """The PLE objective's options; ``lam`` is 0 and the constraint a penalty except for
        ``ple`` (the anchor adds its own term)."""
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(PLEConfig)}
        if self.name != "ple":
            options.update(lam=0.0, constraint="penalty")
        return PLEConfig(**options)

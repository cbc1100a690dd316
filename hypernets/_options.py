"""The package's option values and :class:`PLEConfig`, in a module without torch.

A config naming these options (genfair's estimator config takes its defaults from
:class:`PLEConfig`) can then be checked without importing torch; the modules that implement them
import their choices from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._errors import check_choice, check_number, check_positive_int

__all__ = [
    "BUFFER_POLICIES",
    "CONSTRAINTS",
    "DISCREPANCIES",
    "HEADS",
    "NORMALIZATIONS",
    "POSITIVITY",
    "BufferPolicy",
    "Constraint",
    "Discrepancy",
    "Head",
    "Normalize",
    "PLEConfig",
    "Positivity",
]

Head = Literal["chunked", "dense"]
HEADS: tuple[str, ...] = ("chunked", "dense")
BufferPolicy = Literal["batch", "frozen", "track"]
BUFFER_POLICIES: tuple[str, ...] = ("batch", "frozen", "track")
Normalize = Literal["parameter", "relative"]
NORMALIZATIONS: tuple[str, ...] = ("parameter", "relative")
Positivity = Literal["softplus", "softmax", "exp", "psd"]
POSITIVITY: tuple[str, ...] = ("softplus", "softmax", "exp", "psd")
Discrepancy = Literal["draw", "expectation"]
DISCREPANCIES: tuple[str, ...] = ("draw", "expectation")
Constraint = Literal["penalty", "augmented_lagrangian"]
CONSTRAINTS: tuple[str, ...] = ("penalty", "augmented_lagrangian")


@dataclass
class PLEConfig:
    """Options of the PLE objective (see the module docstring).

    Attributes:
        lam: weight of the discrepancy (0.1, the paper's value); 0 gives ``hyper_mle``.
        discrepancy: ``draw`` or ``expectation``.
        normalize: ``parameter`` (mean squared distance per value) or ``relative`` (per tensor).
        constraint: ``penalty`` or ``augmented_lagrangian``.
        rho: the augmented Lagrangian's quadratic weight (10; in the variance study 1
            under-enforces and 100 drifts towards a constant H).
        dual_lr: the augmented Lagrangian's step on the multiplier, ``mu <- mu + dual_lr * c``
            (the first version stepped by ``rho``, which overshoots).
        detach_target, detach_samples: stop-gradient choices.
        sample_steps: the steps of the target's sampler that PLE's own samples Y are drawn with,
            for a :class:`SteppedSampler` target (a diffusion model); ``None``: the target's
            own number (what its ``sample`` does unasked).
    """

    # Plain ``str`` annotations (the choices are ``Discrepancy``, ``Normalize`` and ``Constraint``,
    # checked below): OmegaConf cannot type ``Literal``, and genfair's estimator config holds these.
    lam: float = 0.1
    discrepancy: str = "draw"
    normalize: str = "parameter"
    constraint: str = "penalty"
    rho: float = 10.0
    dual_lr: float = 0.05
    detach_target: bool = False
    detach_samples: bool = False
    sample_steps: int | None = None

    def __post_init__(self) -> None:
        check_number("lam", self.lam, at_least=0)
        check_number("rho", self.rho, above=0)
        check_number("dual_lr", self.dual_lr, at_least=0)
        check_choice("discrepancy", self.discrepancy, DISCREPANCIES)
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        check_choice("constraint", self.constraint, CONSTRAINTS)
        if self.sample_steps is not None:
            check_positive_int("sample_steps", self.sample_steps)

"""The PLE objective: likelihood plus the weight discrepancy between real and own-sample estimates.

Mayer et al. (arXiv 2405.13977):
  Eq. (4)  maximise the likelihood of X subject to  E_{X,Y}[H(Y) - H(X)] = 0,  Y ~ p(.; H(X));
  Eq. (5)  relaxed:  NLL(X; H(X)) + lam * D(H(X), H(Y)).

Gradient path (the paper does not publish one; these are genfair's defaults and options):
  - D differentiates through both H(X) and H(Y), the same hypernetwork evaluated twice;
    ``detach_target`` stops the gradient through H(X) inside D (it still gets the NLL's).
  - Y is drawn with the model's ``rsample`` when it has one (genfair's
    ``ReparameterizedSampler``), so D also differentiates through the samples back into H(X);
    ``detach_samples`` (or a model without ``rsample``) treats Y as data.
  - Y has the classes of X (the same labels), so D compares within-class estimates.

Discrepancy forms: ``"draw"``, ``D(H(X), H(Y))`` for one draw Y; ``"expectation"``, an unbiased
estimate of ``||E_Y[H(Y)] - H(X)||^2`` from two draws (see ``expected_discrepancy``).
Constraint forms: ``"penalty"`` (Eq. 5 with a fixed ``lam``) or ``"augmented_lagrangian"``,
which enforces Eq. (4) on the mini-batch mean of ``H(Y) - H(X)``:
``NLL + mu . c + rho / 2 ||c||^2`` with the multiplier updated ``mu <- mu + rho c`` after every
step (dual ascent; Bertsekas 1982).

Data follow genfair's model protocol, ``x (R, n, *sample_shape)``: a ``per_replicate``
hypernetwork gives each of the R sets its own weights; otherwise R must be 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from genfair.errors import ConfigError, check_choice
from genfair.models import ReparameterizedSampler
from hypernets._discrepancy import NORMALIZATIONS, Normalize, expected_discrepancy, weight_discrepancy
from hypernets._hypernetwork import HyperNetwork

__all__ = ["PLEConfig", "PLEObjective", "PLETerms", "predict_weights"]

Discrepancy = Literal["draw", "expectation"]
Constraint = Literal["penalty", "augmented_lagrangian"]


@dataclass
class PLEConfig:
    """Options of the PLE objective (see the module docstring).

    Attributes:
        lam: weight of the discrepancy (0.1, the paper's value); 0 gives ``hyper_mle``.
        discrepancy: ``draw`` or ``expectation``.
        normalize: ``parameter`` (mean squared distance per value) or ``relative`` (per tensor).
        constraint: ``penalty`` or ``augmented_lagrangian``.
        rho: the augmented Lagrangian's quadratic weight and dual step size.
        detach_target, detach_samples: stop-gradient choices.
    """

    lam: float = 0.1
    discrepancy: Discrepancy = "draw"
    normalize: Normalize = "parameter"
    constraint: Constraint = "penalty"
    rho: float = 1.0
    detach_target: bool = False
    detach_samples: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.lam, (int, float)) or isinstance(self.lam, bool) or not self.lam >= 0:
            raise ConfigError(f"lam must be a number >= 0, got {self.lam!r}")
        if not isinstance(self.rho, (int, float)) or isinstance(self.rho, bool) or not self.rho > 0:
            raise ConfigError(f"rho must be a number > 0, got {self.rho!r}")
        check_choice("discrepancy", self.discrepancy, ["draw", "expectation"])
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        check_choice("constraint", self.constraint, ["penalty", "augmented_lagrangian"])


@dataclass(frozen=True)
class PLETerms:
    """One evaluation of the objective: ``total`` (to minimise), its ``nll``, the ``discrepancy``
    D, and for the augmented Lagrangian the constraint ``(numel,)`` (else ``None``); scalars
    are tensors on the autograd graph."""

    total: torch.Tensor
    nll: torch.Tensor
    discrepancy: torch.Tensor
    constraint: torch.Tensor | None


def predict_weights(hnet: HyperNetwork, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """``H(X)`` for data in the model layout ``(R, n, *sample_shape)`` (see the module docstring)."""
    if hnet.per_replicate:
        return hnet(x, labels)
    if x.shape[0] != 1:
        raise ConfigError(
            f"x has {x.shape[0]} replicates; a hypernetwork without per_replicate takes one set, (1, n, ...)"
        )
    return hnet(x[0], None if labels is None else labels[0])


class PLEObjective:
    """``objective(hnet, x, labels, generator=g)`` -> :class:`PLETerms`; call
    :meth:`update_multiplier` after each optimiser step (a no-op for ``penalty``).

    Example:
        >>> objective = PLEObjective(PLEConfig(lam=0.1))
        >>> terms = objective(hnet, x, labels, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
        >>> terms.total.backward(); optimiser.step(); objective.update_multiplier(terms)  # doctest: +SKIP
    """

    def __init__(self, config: PLEConfig | None = None) -> None:
        self.config = config or PLEConfig()
        self.multiplier: torch.Tensor | None = None

    def __call__(
        self,
        hnet: HyperNetwork,
        x: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> PLETerms:
        config = self.config
        weights = predict_weights(hnet, x, labels)
        model_labels = labels if labels is not None else torch.zeros(x.shape[:2], dtype=torch.int64, device=x.device)
        nll = hnet.run(weights, "loss", x, model_labels).mean()
        if config.lam == 0 and config.constraint == "penalty":
            return PLETerms(nll, nll, nll.new_zeros(()), None)
        reference = {k: v.detach() for k, v in weights.items()} if config.detach_target else weights
        draws = 2 if config.discrepancy == "expectation" else 1
        estimates = [predict_weights(hnet, self._draw(hnet, weights, x, model_labels, generator), labels) for _ in range(draws)]
        if config.discrepancy == "expectation":
            discrepancy = expected_discrepancy(reference, *estimates, normalize=config.normalize)
        else:
            discrepancy = weight_discrepancy(reference, estimates[0], normalize=config.normalize)
        if config.constraint == "penalty":
            return PLETerms(nll + config.lam * discrepancy, nll, discrepancy, None)
        constraint = self._constraint(hnet, reference, estimates)
        if self.multiplier is None:
            self.multiplier = torch.zeros_like(constraint.detach())
        total = nll + (self.multiplier * constraint).sum() + 0.5 * config.rho * constraint.square().sum()
        return PLETerms(total, nll, discrepancy, constraint)

    def update_multiplier(self, terms: PLETerms) -> None:
        """Dual ascent ``mu <- mu + rho * c`` (augmented Lagrangian only)."""
        if terms.constraint is not None and self.multiplier is not None:
            self.multiplier = self.multiplier + self.config.rho * terms.constraint.detach()

    def _draw(
        self,
        hnet: HyperNetwork,
        weights: dict[str, torch.Tensor],
        x: torch.Tensor,
        labels: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Y ~ p(.; H(X)), as many samples as X, with X's classes."""
        reparameterised = isinstance(hnet.target, ReparameterizedSampler) and not self.config.detach_samples
        method = "rsample" if reparameterised else "sample"
        y = hnet.run(weights, method, x.shape[1], labels=labels, generator=generator)
        return y if reparameterised else y.detach()

    def _constraint(
        self, hnet: HyperNetwork, reference: dict[str, torch.Tensor], estimates: list[dict[str, torch.Tensor]]
    ) -> torch.Tensor:
        """Mini-batch estimate of E[H(Y) - H(X)] ``(numel,)``, per value scaled as ``normalize`` says."""
        gap = torch.stack([hnet.flat(e) for e in estimates]).mean(0) - hnet.flat(reference)  # (*B, numel)
        gap = gap.reshape(-1, gap.shape[-1]).mean(0)
        if self.config.normalize == "relative":
            scale = torch.cat(
                [reference[slot.name].detach().square().mean().expand(slot.numel) for slot in hnet.layout.slots]
            )
            gap = gap / (scale.sqrt() + 1e-12)
        return gap / gap.numel() ** 0.5

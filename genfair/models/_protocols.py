"""The model protocol: what the loop asks of a generative model, in one place.

Every model (genfair's own, or one from the user's code through ``model=custom``, see
:mod:`genfair.models._custom`) is an ``nn.Module``. Shapes carry a leading replicates dimension
R: the analytic models hold R independent chains at once; a deep model holds one (R = 1), and a
run's replicates are separate chains of it (``genfair._chains``).

Must provide:
  - ``sample(n, *, labels=None, generator=None) -> (R, n, *sample_shape)``: the synthetic data of
    the next generation (``labels (R, n)`` fixes their classes for a class-conditional model);
  - a way to train: :class:`GenerativeModel`'s per-sample ``loss(x, labels) -> (R, n)`` (a negative
    log-likelihood or its bound, what every estimator and remedy trains on), or, for a model
    without a likelihood, :class:`AdversarialTraining`'s ``adversarial_losses`` (trained by
    ``estimator=mle`` only);
  - ``num_classes``: the classes it conditions on, ``None`` if unconditional.

May declare, by subclassing the protocol (procedures ask ``isinstance``, never ``hasattr``):
  - :class:`ClosedFormFit`: ``fit(x, labels)`` sets the parameters in closed form (the analytic
    models; the loop fits them without gradient steps);
  - :class:`BiasedSampler`: ``sample_biased(n, bias=...)`` (``loop.sampling_bias`` < 1);
  - :class:`ReparameterizedSampler`: ``rsample``, differentiable samples, so the PLE penalty sends
    gradients through the synthetic data (``genfair.hypernets.ReparameterizedSampler``, the same
    class); without it PLE treats its own samples as data;
  - :class:`SteppedSampler`: ``sample(..., steps=k)`` with a ``max_sample_steps``, a sampler whose
    number of reverse steps the caller chooses (a diffusion model), so PLE may draw its own
    samples in fewer steps (``estimator.ple.sample_steps``; ``genfair.hypernets.SteppedSampler``).
And as attributes:
  - ``CONSTRAINTS``: ``{parameter pattern: "softplus" | "softmax" | "exp" | "psd"}``, parameters that
    a hypernetwork or an anchored fit must keep positive or normalised (default: none);
  - ``PER_REPLICATE``: ``True`` when every parameter carries the leading replicates dimension
    (the analytic models), so a hypernetwork predicts each replicate's weights from its own data
    (default ``False``: one weight set).

``check_model_protocol`` (in :mod:`genfair.models._custom`) checks a built model against what an
arm asks of it before any work, in one line naming the class, the method and what it is for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

# Defined in the hypernetwork package, which stands alone (the PLE objective asks a target for
# it); re-exported here so genfair's models declare it beside their other abilities.
from genfair.hypernets import ReparameterizedSampler, SteppedSampler

__all__ = [
    "AdversarialTraining", "BiasedSampler", "ClosedFormFit", "GenerativeModel", "ModelCapabilities",
    "ReparameterizedSampler", "SteppedSampler",
]


@runtime_checkable
class GenerativeModel(Protocol):
    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample negative log-likelihood (or its bound): x ``(R, n, *shape)`` -> ``(R, n)``."""
        ...

    def sample(
        self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` samples per replicate, ``(R, n, *shape)``; ``labels (R, n)`` fixes their classes."""
        ...


@runtime_checkable
class ClosedFormFit(Protocol):
    def fit(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Set the parameters to the estimator's closed-form value on x ``(R, n, *shape)``."""
        ...


@runtime_checkable
class BiasedSampler(Protocol):
    def sample_biased(
        self,
        n: int,
        *,
        bias: float,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Samples with sampling bias ``bias`` in (0, 1] (Alemohammad et al. 2024, §2): 1 is
        unbiased, smaller values trade diversity for typicality (for a Gaussian, N(mu, bias * Sigma))."""
        ...


@runtime_checkable
class AdversarialTraining(Protocol):
    def adversarial_losses(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """For a model without a likelihood (a GAN): one scalar loss per player on the training
        batch ``x (1, n, *shape)``, keyed by the name of the submodule whose parameters that loss
        trains (``{"generator": ..., "discriminator": ...}``). The fit takes the gradient of each
        loss with respect to its submodule's parameters only, then steps every player at once
        (simultaneous gradient descent), so the model decides what each player sees (e.g. the
        discriminator's loss on detached samples). Every parameter must belong to one player."""
        ...


@dataclass(frozen=True)
class ModelCapabilities:
    """What a built model declares, as a procedure asks it (``genfair.estimators.build_fit`` picks
    the fit by it): the module docstring's protocols and attributes read in one place.

    Attributes:
        positive: ``CONSTRAINTS``, the parameters a hypernetwork or anchored fit keeps positive.
        per_replicate: ``PER_REPLICATE``, every parameter carries the replicates dimension.
        closed_form: a :class:`ClosedFormFit`.
        adversarial: an :class:`AdversarialTraining` model without a likelihood.
        num_classes: the classes it conditions on, ``None`` if unconditional.
    """

    positive: Mapping[str, str]
    per_replicate: bool
    closed_form: bool
    adversarial: bool
    num_classes: int | None

    @classmethod
    def of(cls, model: object) -> ModelCapabilities:
        return cls(
            positive=dict(getattr(model, "CONSTRAINTS", {})),
            per_replicate=bool(getattr(model, "PER_REPLICATE", False)),
            closed_form=isinstance(model, ClosedFormFit),
            adversarial=isinstance(model, AdversarialTraining) and not isinstance(model, GenerativeModel),
            num_classes=getattr(model, "num_classes", None),
        )

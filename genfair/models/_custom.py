"""``model=custom``: a generative model from the user's own code, and the protocol check it passes
before any work.

On the command line::

    genfair model=custom model._target_=mypkg.flows.RealNVP +model.depth=4

``_target_`` is a class or function ``"package.module.Name"`` (imported from the installed
packages or, like ``python -m``, from the current directory); every other key of the ``model``
node is a keyword argument. The builder also passes ``sample_shape`` (one sample's shape, e.g.
``(64,)``) and ``num_classes`` (the number of classes for a class-conditional model, ``None``
for an unconditional one, see ``conditional``) when the target's signature names them.

What the loop asks of the model it builds (:func:`check_model_protocol`, run before anything is
written; see :mod:`genfair.models._protocols`):

- an ``nn.Module`` with ``sample(n, *, labels=None, generator=None) -> (1, n, *sample_shape)``;
- a per-sample ``loss(x (1, n, *shape), labels (1, n)) -> (1, n)`` (a negative log-likelihood or
  its bound), which every estimator and remedy trains on; or, for a model without a likelihood
  (a GAN), :class:`~genfair.models.AdversarialTraining`, whose losses ``estimator=mle`` trains
  by simultaneous gradient steps (the hypernetwork estimators and the remedies need a per-sample
  likelihood and refuse such a model);
- ``num_classes``: ``None`` or the number of classes it conditions on, agreeing with
  ``conditional``.

torch is imported inside the functions that use it: the command line checks a config
without importing torch (docs/architecture.md, section 1).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar


from genfair.errors import ConfigError
from genfair.targets import TargetConfig, import_target, split_target_node

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CustomModelConfig", "check_model_protocol", "import_target"]


@dataclass
class CustomModelConfig(TargetConfig):
    """A model from the user's own code (see the module docstring).

    Args:
        name: ``"custom"``.
        target: ``"package.module.Name"``, the ``_target_`` of the command line.
        kwargs: the keyword arguments of the target (the other keys of the ``model`` node).
        conditional: build a class-conditional model (``num_classes`` = the data's classes).
    """

    GROUP: ClassVar[str] = "model"
    conditional: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.conditional, bool):
            raise ConfigError(f"model.conditional must be true or false, got {self.conditional!r}")

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> CustomModelConfig:
        """The config of a plain ``model`` node: ``{"name": "custom", "_target_": ..., **kwargs}``."""
        target, node = split_target_node(node, group="model", what="the model's class")
        conditional = node.pop("conditional", True)
        return cls(target=target, kwargs=node, conditional=conditional)

    def build(self, *, sample_shape: Sequence[int], num_classes: int | None) -> nn.Module:
        """The untrained model, with ``sample_shape`` and ``num_classes`` passed where the
        target's signature takes them."""
        from torch import nn

        factory = import_target(self.target, key="model._target_")
        arguments = dict(self.kwargs)
        wanted = {"sample_shape": tuple(sample_shape), "num_classes": num_classes if self.conditional else None}
        arguments.update({k: v for k, v in wanted.items() if _accepts(factory, k) and k not in arguments})
        try:
            model = factory(**arguments)
        except TypeError as error:
            raise ConfigError(f"model._target_={self.target} refused its arguments {sorted(arguments)}: {error}") from None
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model._target_={self.target} must build a torch.nn.Module, got {type(model).__name__}")
        return model


def check_model_protocol(
    model: nn.Module, *, estimator: str, uses_hypernetwork: bool, remedy: str, num_classes: int | None, where: str
) -> None:
    """Refuse, in one line naming the class, the method and what it is for, a model that lacks what
    the arm asks of it (see the module docstring); ``where`` names the arm."""
    from genfair.models._protocols import AdversarialTraining, GenerativeModel

    name = type(model).__name__
    if not callable(getattr(model, "sample", None)):
        raise ConfigError(f"{name} has no method 'sample' (the loop draws each generation's synthetic data with it){where}")
    likelihood = isinstance(model, GenerativeModel)
    if not likelihood and not isinstance(model, AdversarialTraining):
        raise ConfigError(
            f"{name} has no method 'loss' (a per-sample negative log-likelihood, what estimator={estimator} trains on) "
            f"and no 'adversarial_losses' (its own training losses, for a model without a likelihood){where}"
        )
    if not likelihood and (uses_hypernetwork or estimator != "mle"):
        raise ConfigError(
            f"estimator={estimator} needs a per-sample likelihood ({name}.loss); {name} trains by its adversarial "
            f"losses: use estimator=mle{where}"
        )
    if not likelihood and remedy != "none":
        raise ConfigError(
            f"remedy={remedy} reweights per-sample losses ({name}.loss), which {name} has none of: use remedy=none{where}"
        )
    declared = getattr(model, "num_classes", None)
    if declared != num_classes:
        raise ConfigError(
            f"{name}.num_classes must be {num_classes} (the data's classes for a class-conditional model, None for "
            f"an unconditional one: set model.conditional), got {declared!r}{where}"
        )


def _accepts(factory: Callable[..., Any], argument: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return argument in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())

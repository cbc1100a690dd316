"""``estimator=custom``: an estimator from the user's own code.

On the command line::

    genfair estimator=custom estimator._target_=mypkg.fits.Shrinkage +estimator.weight=0.5

``_target_`` is a class or function ``"package.module.Name"`` (imported from the installed
packages or from the current directory); every other key of the ``estimator`` node is a keyword
argument. What it builds is an :class:`Estimator`: an object with

    ``fit(model, train, generator, context) -> model | FitOutput``

the loop's fit (``genfair.loops.simulate``): ``model`` holds the previous generation's weights
(generation 0: the initialisation), ``train`` is the generation's training set
(``Batch(x (R, n, *shape), y (R, n))``), ``generator`` its random stream, ``context`` a
:class:`~genfair.loops.FitContext` (``generation``, and ``reference``, the weights fitted at
generation 0, ``None`` there). It returns the model with the new weights, fitted in place.

Checked before any work: the target imports, is callable and builds an object with a callable
``fit``. Checked after every fit: the model's parameters keep their names and shapes; otherwise
the arm stops there with one line naming the target, the generation and the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from genfair.errors import ConfigError, GenerationFailed
from genfair.targets import TargetConfig, import_target, split_target_node

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["CustomEstimatorConfig", "Estimator", "PluginFit"]


@runtime_checkable
class Estimator(Protocol):
    """What ``estimator._target_`` builds (see the module docstring)."""

    def fit(self, model: nn.Module, train: Any, generator: torch.Generator, context: Any) -> Any: ...


@dataclass
class CustomEstimatorConfig(TargetConfig):
    """An estimator from the user's own code (see the module docstring).

    Args:
        name: ``"custom"``.
        target: ``"package.module.Name"``, the ``_target_`` of the command line.
        kwargs: the keyword arguments of the target (the other keys of the ``estimator`` node).
    """

    GROUP: ClassVar[str] = "estimator"

    @property
    def uses_hypernetwork(self) -> bool:
        return False

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> CustomEstimatorConfig:
        """The config of a plain ``estimator`` node: ``{"name": "custom", "_target_": ..., **kwargs}``."""
        if node.get("name", "custom") != "custom":
            raise ConfigError(
                f"name={node['name']!r} on estimator=custom: a user's estimator is named 'custom' (its class is "
                f"estimator._target_); run a built-in estimator in its own command (estimator={node['name']})"
            )
        target, node = split_target_node(node, group="estimator", what="the estimator's class")
        return cls(target=target, kwargs=node)

    def build(self) -> Estimator:
        """The user's estimator, checked against :class:`Estimator`."""
        factory = import_target(self.target, key="estimator._target_")
        if not callable(factory):
            raise ConfigError(f"estimator._target_={self.target} must be a class or function, got {type(factory).__name__}")
        try:
            estimator = factory(**self.kwargs)
        except TypeError as error:
            raise ConfigError(f"estimator._target_={self.target} refused its arguments {sorted(self.kwargs)}: {error}") from None
        if not callable(getattr(estimator, "fit", None)):
            raise ConfigError(
                f"estimator._target_={self.target} built a {type(estimator).__name__}, which has no method "
                "'fit(model, train, generator, context)' (the loop fits each generation with it)"
            )
        return estimator


class PluginFit:
    """The loop's fit of a user's :class:`Estimator`: its ``fit``, then the check that the model's
    parameters kept their names and shapes."""

    def __init__(self, config: CustomEstimatorConfig) -> None:
        self.target = config.target
        self.estimator = config.build()

    def __call__(self, model: nn.Module, train: Any, generator: torch.Generator, context: Any) -> Any:
        from torch import nn

        from genfair.loops import FitOutput, check_finite_parameters

        shapes = {name: tuple(value.shape) for name, value in model.named_parameters()}
        fitted = self.estimator.fit(model, train, generator, context)
        module = fitted.model if isinstance(fitted, FitOutput) else fitted
        where = f"estimator._target_={self.target}"
        if not isinstance(module, nn.Module):
            raise GenerationFailed(context.generation, f"{where} returned {type(module).__name__}, not the fitted model")
        returned = {name: tuple(value.shape) for name, value in module.named_parameters()}
        for name, shape in shapes.items():
            if returned.get(name) != shape:
                got = "no such parameter" if name not in returned else f"shape {returned[name]}"
                raise GenerationFailed(context.generation, f"{where} returned parameter {name!r} with {got}, expected shape {shape}")
        check_finite_parameters(module, where, context.generation)
        return fitted

"""``data=custom``: a labelled data source from the user's own code, and the protocol check it
passes before any work.

On the command line::

    genfair data=custom data._target_=mypkg.scans.Scans +data.minority_share=0.1

``_target_`` is a class or function ``"package.module.Name"`` (imported from the installed packages
or, like ``python -m``, from the current directory, see :func:`genfair.targets.import_target`);
every other key of the ``data`` node is a keyword argument. What the deep runner asks of the
source it builds (:meth:`CustomData.check`, run before anything is written), as
:class:`~genfair.data.DigitsData` has it:

- ``group_names``: the class names in label order (``y == k`` is ``group_names[k]``);
- ``shares``: the class shares ``draw`` uses (the smallest is the minority);
- ``sample_shape``: one sample's shape, e.g. ``(1, 8, 8)``;
- ``draw(replicates, n, *, generator) -> Batch``: a training set per replicate, x ``(replicates,
  n, *sample_shape)``, y ``(replicates, n)`` int64 class indices;
- ``training_pool() -> Batch`` and ``heldout() -> Batch``: ``(1, N, ...)`` labelled samples the
  evaluation classifier trains on and every generation is measured against (disjoint).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from genfair.data._batch import Batch
from genfair.errors import ConfigError
from genfair.targets import TargetConfig, import_target, split_target_node

__all__ = ["CustomData"]

# What the runner asks of a source, and what for (the refusal names it).
_PROTOCOL = {
    "group_names": "the class names in label order",
    "shares": "the class shares draw uses, whose smallest is the minority",
    "sample_shape": "one sample's shape, which the model is built for",
    "draw": "draw(replicates, n, *, generator) -> Batch, the real training sets",
    "training_pool": "training_pool() -> Batch, what the evaluation classifier trains on",
    "heldout": "heldout() -> Batch, the real samples every generation is measured against",
}
_METHODS = ("draw", "training_pool", "heldout")


@dataclass
class CustomData(TargetConfig):
    """A data source from the user's own code (see the module docstring); it delegates the
    image-source protocol to the object that ``target(**kwargs)`` builds, once, on first use.

    Args:
        name: ``"custom"``.
        target: ``"package.module.Name"``, the ``_target_`` of the command line.
        kwargs: the keyword arguments of the target (the other keys of the ``data`` node).
    """

    GROUP: ClassVar[str] = "data"

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> CustomData:
        """The config of a plain ``data`` node: ``{"name": "custom", "_target_": ..., **kwargs}``."""
        target, kwargs = split_target_node(node, group="data", what="the data source's class")
        return cls(target=target, kwargs=kwargs)

    def check(self) -> None:
        """Build the source and refuse, in one line naming its class, the first attribute of the
        protocol it lacks and what the runner uses it for."""
        source = self.source
        for attribute, purpose in _PROTOCOL.items():
            value = getattr(source, attribute, None)
            if value is None or (attribute in _METHODS and not callable(value)):
                kind = "method" if attribute in _METHODS else "attribute"
                raise ConfigError(
                    f"{type(source).__name__} has no {kind} {attribute!r} ({purpose}; data._target_={self.target})"
                )

    @property
    def source(self) -> Any:
        """The user's source, built on first use (not a dataclass field: the config stays plain)."""
        built = self.__dict__.get("_source")
        if built is None:
            factory = import_target(self.target, key="data._target_")
            try:
                built = factory(**self.kwargs)
            except TypeError as error:
                raise ConfigError(
                    f"data._target_={self.target} refused its arguments {sorted(self.kwargs)}: {error}"
                ) from None
            self.__dict__["_source"] = built
        return built

    def __getstate__(self) -> dict[str, Any]:  # a worker rebuilds the source from the config
        return {key: value for key, value in self.__dict__.items() if key != "_source"}

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(self.source.group_names)

    @property
    def shares(self) -> tuple[float, ...]:
        return tuple(float(share) for share in self.source.shares)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.source.sample_shape)

    def draw(self, replicates: int, n: int, *, generator: torch.Generator) -> Batch:
        return self.source.draw(replicates, n, generator=generator)

    def training_pool(self) -> Batch:
        return self.source.training_pool()

    def heldout(self) -> Batch:
        return self.source.heldout()

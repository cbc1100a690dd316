"""Which estimators are built in: the YAML files of ``configs/estimator/`` (installed as
``genfair.configs.estimator``) that name their class's ``_target_``. Adding a built-in estimator
is its class (a :class:`~genfair.estimators.BuiltInEstimator`) and its YAML; nothing else
lists the estimators."""

from __future__ import annotations

import functools
from importlib import resources
from typing import TYPE_CHECKING

from genfair.errors import ConfigError
from genfair.targets import import_target, read_registry

if TYPE_CHECKING:
    from genfair.estimators._kinds import BuiltInEstimator

__all__ = ["built_in_estimator", "registered_estimators"]


@functools.cache
def registered_estimators() -> dict[str, str]:
    """``{name: its class's _target_}`` of genfair's own ``configs/estimator/``, sorted by name."""
    folder = resources.files("genfair.configs") / "estimator"
    return {name: node["_target_"] for name, node in read_registry(folder, name_key="name").items()}


@functools.cache
def built_in_estimator(target: str) -> BuiltInEstimator:
    """The built-in estimator that a registered YAML's ``_target_`` names, built once."""
    estimator = import_target(target, key="estimator._target_")()
    if not callable(getattr(estimator, "build", None)):
        raise ConfigError(
            f"estimator._target_={target} built a {type(estimator).__name__}, which has no method "
            "'build(config, parts)' (a built-in estimator builds the loop's fit with it)"
        )
    return estimator

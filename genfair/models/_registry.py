"""Which models are built in: the YAML files of ``configs/model/`` (installed as
``genfair.configs.model``) that name their config class's ``_target_``. Adding a built-in model is
its class, its config dataclass and its YAML, ``configs/model/<name>.yaml``, which extends
``<name>_schema`` (the config class, stored by ``genfair.cli.register_configs``); nothing else
lists the models.

A config class is torch-free (it imports its model's module inside ``build``), so the command line
registers the schemas and checks a config without importing torch (docs/architecture.md, section 1).
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from typing import Any

from genfair.errors import ConfigError, check_choice
from genfair.targets import import_target, read_registry

__all__ = ["registered_model_configs", "registered_models", "registered_target"]


@functools.cache
def registered_models() -> dict[str, str]:
    """``{name: its config class's _target_}`` of genfair's own ``configs/model/``, sorted by name."""
    folder = resources.files("genfair.configs") / "model"
    return {name: node["_target_"] for name, node in read_registry(folder, name_key="name").items()}


def registered_model_configs() -> dict[str, type]:
    """``{name: its config class}`` of :func:`registered_models`, each imported from its ``_target_``."""
    return {name: _config_class(target) for name, target in registered_models().items()}


def registered_target(config: Any) -> str:
    """The ``_target_`` of ``config``, an instance of a registered config class: the class that its
    ``name``'s YAML registers, which must be ``config``'s own (so ``model.name`` switches only
    between models of one class: ``model=class_mixture model.name=gaussian``, both
    ``AnalyticModelConfig``). ``None`` is filled in with it; any other target is refused: a model
    of one's own runs with ``model=custom``."""
    registered = registered_models()
    own = [name for name, config_class in registered_model_configs().items() if config_class is type(config)]
    if config.name in registered and config.name not in own:  # another class's model: its own group option
        raise ConfigError(
            f"name must be one of {own}, got {config.name!r}, whose config class is {registered[config.name]}: "
            f"pick it with model={config.name}"
        )
    check_choice("name", config.name, own)
    target = registered[config.name]
    if config._target_ not in (None, target):
        raise ConfigError(
            f"_target_={config._target_} on model={config.name}: a built-in model's config class is its YAML's "
            f"({target}); a model of your own runs with model=custom"
        )
    return target


@functools.cache
def _config_class(target: str) -> type:
    """The config dataclass that a registered YAML's ``_target_`` names, imported once."""
    config_class = import_target(target, key="model._target_")
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        raise ConfigError(
            f"model._target_={target} must name a config dataclass (a built-in model's YAML names its config "
            f"class; a model of your own runs with model=custom), got {config_class!r}"
        )
    return config_class

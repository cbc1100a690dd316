"""Targets from the user's own code (``model._target_``, ``data._target_``, ``estimator._target_``):
the config every ``<group>=custom`` shares, importing ``package.module.Name`` and splitting a
plain config node into the target and its arguments; and the registry of the built-ins that are
named the same way (``configs/<group>/<name>.yaml`` naming a ``_target_``, :func:`read_registry`)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.abc import Traversable
from typing import Any, ClassVar

from genfair.errors import ConfigError

__all__ = ["TargetConfig", "check_target", "import_target", "read_registry", "split_target_node"]


@dataclass
class TargetConfig:
    """What every ``<group>=custom`` config holds; subclasses name their ``GROUP`` (``model``,
    ``data``, ``estimator``) and add what their group needs.

    Args:
        name: ``"custom"``.
        target: ``"package.module.Name"``, the ``<group>._target_`` of the command line.
        kwargs: the keyword arguments of the target (the other keys of the ``<group>`` node).
    """

    GROUP: ClassVar[str] = ""
    name: str = "custom"
    target: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name != "custom":
            raise ConfigError(f"{self.GROUP}.name must be 'custom', got {self.name!r}")
        check_target(f"{self.GROUP}._target_", self.target)
        self.kwargs = dict(self.kwargs)


def check_target(key: str, target: object) -> str:
    """``target`` if it names a class or function as ``package.module.Name``, else refused naming ``key``."""
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(f"{key} must name a class or function as 'package.module.Name', got {target!r}")
    return target


def split_target_node(node: Mapping[str, Any], *, group: str, what: str) -> tuple[str, dict[str, Any]]:
    """``(target, the other keys)`` of a plain ``group`` node ``{"name": "custom", "_target_": ..., **kwargs}``;
    ``what`` says what the target builds (for the message when ``_target_`` is missing)."""
    node = dict(node)
    if "_target_" not in node:
        raise ConfigError(f"{group}=custom needs {group}._target_=package.module.Name ({what})")
    node.pop("name", None)
    return node.pop("_target_"), node


def import_target(path: str, *, key: str) -> Callable[..., Any]:
    """``package.module.Name`` imported, searching the current directory after the installed
    packages (as ``python -m`` does); refused in one line naming ``key`` when it cannot be."""
    module_name, _, attribute = path.rpartition(".")
    added = os.getcwd() not in sys.path
    if added:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"{key}={path}: cannot import {module_name!r} ({error})") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    if not hasattr(module, attribute):
        raise ConfigError(f"{key}={path}: module {module_name!r} has no {attribute!r}")
    return getattr(module, attribute)


def read_registry(folder: Traversable, *, name_key: str, node_key: str | None = None) -> dict[str, dict[str, Any]]:
    """``{name: node}`` of the ``<name>.yaml`` files of ``folder`` that name a built-in through a
    ``_target_``: in the file's ``node_key`` node (a loop kind's ``training_set``), or at its root
    (an estimator's). A file without one (``custom.yaml``, whose target the user gives) registers
    nothing; one whose ``name_key`` is not its own name is refused naming both. Sorted by name.

    The library reads these files as plain YAML (it never imports Hydra), so a config built from a
    notebook (``LoopConfig(kind="accumulate")``, ``EstimatorConfig(name="ple")``) gets the same
    built-in as the command line's ``loop=accumulate`` or ``estimator=ple``."""
    import yaml

    registered = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        root = yaml.safe_load(entry.read_text()) or {}
        node = root.get(node_key) if node_key is not None else root
        if not isinstance(node, dict) or node.get("_target_") in (None, "???"):
            continue
        name = entry.name[: -len(".yaml")]
        if root.get(name_key) != name:
            raise ConfigError(f"{entry}: {name_key} must be the file's name {name!r}, got {root.get(name_key)!r}")
        registered[name] = dict(node)
    return registered

"""Which loop kinds are built in: the YAML files of ``configs/loop/`` (installed as
``genfair.configs.loop``) whose ``training_set`` names a rule's ``_target_``. Adding a built-in
loop kind is its rule class and its YAML; nothing else lists the kinds.

The library reads these files as plain YAML (it never imports Hydra), so that
``LoopConfig(kind="accumulate")`` from a notebook builds the same rule as ``loop=accumulate`` on
the command line.
"""

from __future__ import annotations

import functools
from importlib import resources
from importlib.abc import Traversable
from typing import Any

from genfair.errors import ConfigError

__all__ = ["read_kinds", "registered_kinds"]


@functools.cache
def registered_kinds() -> dict[str, dict[str, Any]]:
    """``{kind: its rule node}`` of genfair's own ``configs/loop/``, sorted by kind (see
    :func:`read_kinds`). Callers copy a node before changing it."""
    return read_kinds(resources.files("genfair.configs") / "loop")


def read_kinds(folder: Traversable) -> dict[str, dict[str, Any]]:
    """``{kind: training_set node}`` of the ``<kind>.yaml`` files of ``folder`` that name a rule
    (``training_set: {_target_: package.module.Name, <argument>: value, ...}``); a file without
    one (``custom.yaml``, whose target the user gives) registers nothing. A file whose ``kind``
    is not its own name is refused naming both."""
    import yaml

    kinds = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        node = yaml.safe_load(entry.read_text()) or {}
        rule = node.get("training_set")
        if not isinstance(rule, dict) or rule.get("_target_") in (None, "???"):
            continue
        kind = entry.name[: -len(".yaml")]
        if node.get("kind") != kind:
            raise ConfigError(f"{entry}: kind must be the file's name {kind!r}, got {node.get('kind')!r}")
        kinds[kind] = dict(rule)
    return kinds

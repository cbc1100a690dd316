"""Which loop kinds are built in: the YAML files of ``configs/loop/`` (installed as
``genfair.configs.loop``) whose ``training_set`` names a rule's ``_target_``. Adding a built-in
loop kind is its rule class and its YAML; nothing else lists the kinds.
"""

from __future__ import annotations

import functools
from importlib import resources
from importlib.abc import Traversable
from typing import Any

from genfair.targets import read_registry

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
    is not its own name is refused naming both (:func:`genfair.targets.read_registry`)."""
    return read_registry(folder, name_key="kind", node_key="training_set")

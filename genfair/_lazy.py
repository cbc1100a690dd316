"""Packages whose public names are imported on first use (PEP 562).

A package lists its public names once, as imports in an ``if TYPE_CHECKING:`` block of its
``__init__.py`` (so type checkers and the API docs see them), and ends with::

    __getattr__, __dir__ = lazy_exports(__name__, __file__)

Importing the package then runs none of those imports; ``package.Name`` (or
``from package import Name``) imports Name's module the first time and keeps the value. This is
how ``genfair``'s command line checks a config without importing torch: the config dataclasses'
modules are torch-free, and the packages around them no longer import their torch modules
eagerly. Every lazy package shares this module, genfair's own (``genfair`` itself included) and
the hypernetwork and loop packages (it uses only the standard library).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, init_file: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's ``__getattr__`` and ``__dir__``: every name that the ``if TYPE_CHECKING:``
    block of ``init_file`` imports, imported from its module on first access.

    Args:
        package: the package's ``__name__``.
        init_file: the package's ``__file__`` (its ``__init__.py``), read once here.
    """
    origins = _guarded_imports(Path(init_file).read_text(encoding="utf-8"), package)
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        if name not in origins:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = origins[name]
        value = getattr(importlib.import_module(module), attribute)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *origins})

    return __getattr__, __dir__


def _guarded_imports(source: str, package: str) -> dict[str, tuple[str, str]]:
    """``{name: (module, attribute)}`` of the ``from module import attribute [as name]``
    statements inside ``if TYPE_CHECKING:`` blocks at the top level of ``source``."""
    origins = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            continue
        for statement in node.body:
            if not isinstance(statement, ast.ImportFrom):
                raise TypeError(f"{package}: the TYPE_CHECKING block may only hold 'from ... import' statements")
            module = importlib.util.resolve_name("." * statement.level + (statement.module or ""), package)
            for alias in statement.names:
                origins[alias.asname or alias.name] = (module, alias.name)
    return origins

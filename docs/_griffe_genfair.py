"""Griffe extension for genfair's docstrings (loaded by mkdocstrings from ``mkdocs.yml``).

Two rewrites before a docstring is parsed (the source is not changed):

- genfair's docstrings head their doctests ``Example:``; griffe's Google-style parser knows the
  section as ``Examples:`` and would render the doctest lines as a quoted paragraph;
- Sphinx roles (``:class:`X```, ``:func:`~a.b```) are not Markdown; they become code spans.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:class|func|data|meth|attr|mod|obj|exc):`~?([^`]+)`")


class GenfairDocstrings(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _ROLE.sub(r"`\1`", text)

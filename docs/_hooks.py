"""MkDocs hook: let mkdocstrings (griffe) find ``genfair.hypernets`` and ``genfair.loops``.

The two packages live in the top-level folders ``hypernets/`` and ``loops/`` and are installed
inside ``genfair`` by a setuptools ``package-dir`` mapping. Griffe reads packages from disk and
looks for ``genfair.hypernets`` in ``genfair/hypernets/``, which does not exist. Before
mkdocstrings starts, this hook lays out the installed shape in a temporary folder (``genfair/``
with links to every entry of the repository's ``genfair/``, plus ``hypernets`` and ``loops``)
and puts that folder first on the Python handler's search path. Nothing is imported and
nothing in the repository is written.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from mkdocs.plugins import event_priority

MAPPED = {"hypernets": "hypernets", "loops": "loops"}  # genfair.<key> lives in the folder <value>


@event_priority(100)  # before mkdocstrings' own on_config, which creates the Python handler
def on_config(config):
    repo = Path(config.config_file_path).resolve().parent
    source = Path(tempfile.mkdtemp(prefix="genfair-docs-source-"))
    atexit.register(shutil.rmtree, source, ignore_errors=True)
    package = source / "genfair"
    package.mkdir()
    for entry in (repo / "genfair").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, folder in MAPPED.items():
        (package / name).symlink_to(repo / folder)
    python = config.plugins["mkdocstrings"].config.handlers.setdefault("python", {})
    python["paths"] = [str(source)]
    return config

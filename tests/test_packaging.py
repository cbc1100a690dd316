"""What the installed distribution provides and what each package loads on import.

``genfair.hypernets`` stands alone (torch and the standard library); ``genfair.loops`` uses only
the shared infrastructure its docstring lists; the distribution's only top-level import name is
``genfair`` (the folders ``hypernets/`` and ``loops/`` install as ``genfair.hypernets`` and
``genfair.loops``). Imports run in a fresh interpreter, so other tests' imports do not count.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import genfair.hypernets

ROOT = Path(__file__).resolve().parents[1]

# What ``import genfair.loops`` may load (see loops/__init__.py): the loop itself, genfair's shared
# infrastructure, the model protocols (the package loads its model classes) and, through
# genfair.errors and genfair.models, the standalone hypernetwork package.
LOOPS_MAY_LOAD = (
    "genfair.loops",
    "genfair.data",
    "genfair.errors",
    "genfair.checkpoint",
    "genfair.seeding",
    "genfair.devices",
    "genfair.targets",
    "genfair.models",
    "genfair",
    "genfair.hypernets",
)


def _python(code: str, *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)  # the installed distribution, not a source tree on the path
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def _genfair_modules_loaded_by(statement: str) -> list[str]:
    done = _python(f"{statement}; import sys; print(sorted(m for m in sys.modules if m.startswith('genfair')))")
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_hypernets_loads_no_other_part_of_genfair():
    loaded = _genfair_modules_loaded_by("import genfair.hypernets")
    assert "genfair.hypernets" in loaded
    others = [name for name in loaded if name not in ("genfair", "genfair._lazy") and not _within(name, "genfair.hypernets")]
    assert others == [], f"import genfair.hypernets loaded {others}"


def test_hypernets_modules_import_only_torch_the_standard_library_and_each_other():
    """Static check of every module's imports: relative (within the package), ``torch`` or the
    standard library; an absolute ``genfair`` import would tie the package to its install name,
    except ``genfair._lazy`` (standard library only), the one lazy-export mechanism of every package."""
    folder = Path(genfair.hypernets.__file__).parent
    allowed = {"torch", *sys.stdlib_module_names}
    bad = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "genfair._lazy":
                roots = [node.module.split(".")[0]]
            else:
                continue
            bad += [f"{path.name}:{node.lineno} imports {root}" for root in roots if root not in allowed]
    assert bad == []


def test_loops_loads_only_what_it_documents():
    loaded = _genfair_modules_loaded_by("import genfair.loops")
    assert "genfair.loops" in loaded
    undocumented = [
        name for name in loaded if name != "genfair" and not any(_within(name, package) for package in LOOPS_MAY_LOAD)
    ]
    assert undocumented == [], f"import genfair.loops loaded {undocumented}; document them in loops/__init__.py"


def test_genfair_imports_nothing_until_asked():
    assert _genfair_modules_loaded_by("import genfair") == ["genfair", "genfair._lazy"]  # the lazy exports (stdlib only)
    done = _python("import genfair; print(genfair.ConfigError.__module__, genfair.GenerationFailed.__module__, genfair.__version__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["genfair.errors", "genfair.errors", importlib.metadata.version("genfair")]


def test_the_models_protocol_is_the_hypernets_one():
    import genfair.models

    assert genfair.models.ReparameterizedSampler is genfair.hypernets.ReparameterizedSampler
    assert issubclass(genfair.models.VAE, genfair.hypernets.ReparameterizedSampler)


def test_the_only_top_level_import_name_is_genfair(tmp_path):
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert {name.split(".")[0] for name in packages} == {"genfair"}
    top_level = importlib.metadata.distribution("genfair").read_text("top_level.txt")
    if top_level is not None:  # written by setuptools at install time
        assert top_level.split() == ["genfair"]
    for bare in ("hypernets", "loops"):
        done = _python(f"import {bare}", cwd=tmp_path)
        assert done.returncode != 0 and f"ModuleNotFoundError: No module named '{bare}'" in done.stderr, done.stderr
        done = _python(f"import genfair.{bare}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr


# The packages whose __init__ names their public API in an ``if TYPE_CHECKING:`` block, imported
# on first use (genfair._lazy).
LAZY_PACKAGES = (
    "genfair",
    "genfair.hypernets",
    "genfair.loops",
    "genfair.data",
    "genfair.estimators",
    "genfair.fairness",
    "genfair.metrics",
    "genfair.models",
    "genfair.remedies",
    "genfair.studies",
    "genfair.cli",
)


def test_every_public_name_of_a_lazy_package_resolves_to_its_module():
    """``__all__`` and the TYPE_CHECKING block must agree: a name in ``__all__`` that the block
    does not import (or imports from the wrong module) fails here, not in a user's import."""
    code = (
        "import importlib, json\n"
        f"packages = {list(LAZY_PACKAGES)!r}\n"
        "out = {}\n"
        "for name in packages:\n"
        "    package = importlib.import_module(name)\n"
        "    values = {n: getattr(package, n) for n in package.__all__}\n"
        "    out[name] = {'all': sorted(values), 'dir': sorted(set(package.__all__) - set(dir(package)))}\n"
        "print(json.dumps(out))\n"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    import json

    report = json.loads(done.stdout.strip().splitlines()[-1])
    for package, entry in report.items():
        assert entry["all"], package
        assert entry["dir"] == [], f"dir({package}) misses {entry['dir']}"


def test_a_lazy_package_refuses_an_unknown_name_and_a_plain_import_in_its_block(tmp_path):
    from genfair._lazy import _guarded_imports

    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import B as C\n    from pkg.d import E\n"
    assert _guarded_imports(source, "pkg.sub") == {"C": ("pkg.sub.a", "B"), "E": ("pkg.d", "E")}
    try:
        _guarded_imports("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n", "pkg")
    except TypeError as error:
        assert "may only hold 'from ... import'" in str(error)
    else:
        raise AssertionError("a plain import in the TYPE_CHECKING block was accepted")
    done = _python("import genfair.data as d\ntry:\n    d.Nope\nexcept AttributeError as e:\n    print(e)")
    assert done.stdout.strip() == "module 'genfair.data' has no attribute 'Nope'"

"""The documentation site: the generated config reference is current, the site builds with
``mkdocs build --strict`` (offline), and the strict settings of mkdocs.yml fail on a broken link.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 180  # the full build takes ~20 s on 2 CPU cores


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "docs" / "gen_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mkdocs(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
    )


def _require_mkdocs() -> None:
    for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed: pip install -e '.[docs]' (the test extra includes it)")


def test_config_reference_is_current():
    generator = _load_generator()
    committed = (ROOT / "docs" / "reference" / "config.md").read_text(encoding="utf-8")
    assert generator.render() == committed, (
        "docs/reference/config.md is stale: run `python docs/gen_config_reference.py` and commit the page"
    )


def test_config_reference_documents_every_key():
    """Every key of every config class appears in the page with a description from a docstring."""
    generator = _load_generator()
    page = generator.render()
    assert "| `loop.n_real` | `int` | `100` | real samples per draw. |" in page
    assert "`estimator.subsample.concentration`" in page
    assert "`evaluation.downstream.min_slice_size`" in page
    assert "`variance_bias.arms.<name>.lam`" in page


def test_docs_build_strict(tmp_path):
    _require_mkdocs()
    started = time.perf_counter()
    result = _mkdocs("-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site"), cwd=ROOT)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "reference" / "api" / "hypernets" / "index.html").exists()
    api = (tmp_path / "site" / "reference" / "api" / "hypernets" / "index.html").read_text(encoding="utf-8")
    assert "HyperNetwork" in api, "the API page has no content from the docstrings"
    assert elapsed < BUILD_TIMEOUT_S


def test_strict_settings_fail_on_a_broken_link(tmp_path):
    """mkdocs.yml's validation settings, on a one-page site with a link to a missing page."""
    _require_mkdocs()
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the guide](guides/missing.md).\n", encoding="utf-8")
    small = {
        "site_name": "broken-link check",
        "docs_dir": str(docs),
        "theme": config["theme"],
        "validation": config["validation"],
        "markdown_extensions": config["markdown_extensions"],
    }
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(small), encoding="utf-8")
    result = _mkdocs("-d", str(tmp_path / "site"), cwd=tmp_path)
    assert result.returncode != 0, "a link to a missing page did not fail the strict build"
    assert "guides/missing.md" in result.stdout + result.stderr

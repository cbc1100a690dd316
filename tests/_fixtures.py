"""Helpers that several test files share: a run without its figures (slow to draw; test_cli and
test_plots draw them), small digit batches, seeded generators, ``metrics.csv``-like tables and
a copy of a registry's config folder."""

from __future__ import annotations

import csv
import shutil
import types
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest
import torch

# Where a run draws its figures: the end of the run, and each generation's sample grid.
_FIGURES = {
    "genfair._run_figures": ("save_metric_figure", "save_fidelity_figure", "save_paired_figure",
                             "save_samples_across_generations", "save_forest_figure", "save_change_figure"),
    "genfair._chains": ("save_sample_grid",),
}


def skip_figures(patch: pytest.MonkeyPatch) -> None:
    """Make every figure a run draws a no-op (its path is returned, nothing is written)."""
    import importlib

    for module, names in _FIGURES.items():
        for name in names:
            patch.setattr(importlib.import_module(module), name, lambda path, *args, **kwargs: path)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def digits(n: int, shape: tuple[int, ...] = (64,)) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` scikit-learn digits in [0, 1] and their classes 0-9: x ``(1, n, *shape)``
    (``(64,)`` flat, ``(1, 8, 8)`` an image), y ``(1, n)``."""
    from sklearn.datasets import load_digits

    loaded = load_digits()
    x = torch.tensor(loaded.data[:n] / 16.0, dtype=torch.float32).reshape(n, *shape)
    return x[None], torch.tensor(loaded.target[:n])[None]


def read_csv(path: Path) -> list[dict]:
    """Rows of a CSV file as dicts of strings."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def registry_copy(tmp_path: Path, patch: pytest.MonkeyPatch, group: str, registry: ModuleType,
                  registered: Callable) -> Iterator[Path]:
    """A copy of ``configs/<group>/`` that ``registered`` (``registry``'s cached reader, e.g.
    ``genfair.loops._registry.registered_kinds``) reads instead of genfair's own, for as long as a
    fixture yields it: a test adds or changes a built-in by writing its YAML there."""
    shutil.copytree(resources.files("genfair.configs") / group, tmp_path / group)
    patch.setattr(registry, "resources", types.SimpleNamespace(files=lambda package: tmp_path))
    registered.cache_clear()
    yield tmp_path / group
    registered.cache_clear()

"""Helpers that several test files share: a run without its figures (slow to draw; test_cli and
test_plots draw them), small digit batches, seeded generators and ``metrics.csv``-like tables."""

from __future__ import annotations

import csv
from pathlib import Path

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

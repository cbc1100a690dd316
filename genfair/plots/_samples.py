"""Grids of generated images: one per generation, and one across generations."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure

from genfair.checkpoint import write_bytes_atomic

__all__ = ["save_sample_grid", "save_samples_across_generations"]


def save_sample_grid(path: Path, images: torch.Tensor, *, row_labels: Sequence[str], title: str = "") -> Path:
    """Save ``images (rows, columns, C, H, W)`` (pixels in [0, 1], clipped for display) as one
    tiled PNG, one labelled row per class."""
    return _save(path, [_tile(row) for row in images], row_labels, title)


def save_samples_across_generations(
    path: Path, grids: Sequence[torch.Tensor], *, class_names: Sequence[str], per_class: int = 4, title: str = ""
) -> Path:
    """One row per generation, ``per_class`` samples of each class side by side (each class's
    block named below the grid), from the per-generation ``grids`` (each ``(classes, columns, C, H, W)``)."""
    per_class = min(per_class, grids[0].shape[1])
    rows = [_tile(grid[:, :per_class].reshape(-1, *grid.shape[2:])) for grid in grids]
    labels = [f"gen {g}" for g in range(len(grids))]
    title = title or f"samples across generations ({per_class} each of {', '.join(class_names)}, left to right)"
    block = per_class * (grids[0].shape[-1] + 1)  # pixels of one class's samples, gaps included
    columns = [((k + 0.5) * block - 0.5, f"class {name}") for k, name in enumerate(class_names)]
    return _save(path, rows, labels, title, columns=columns)


def _tile(images: torch.Tensor) -> torch.Tensor:
    """``(n, C, H, W)`` -> ``(H, n * (W + 1), C)`` with a one-pixel gap between images."""
    images = images.detach().float().clamp(0, 1).cpu()
    n, channels, height, width = images.shape
    padded = torch.full((n, channels, height, width + 1), 0.35)  # grey gaps between images
    padded[..., :width] = images
    return padded.permute(2, 0, 3, 1).reshape(height, n * (width + 1), channels)


def _save(
    path: Path, rows: list[torch.Tensor], labels: Sequence[str], title: str, *, columns: Sequence[tuple[float, str]] = ()
) -> Path:
    height = rows[0].shape[0]
    gap = torch.full((1, rows[0].shape[1], rows[0].shape[2]), 0.35)
    canvas = torch.cat([torch.cat([row, gap]) for row in rows])
    figure = Figure(figsize=(0.12 * canvas.shape[1] + 1.2, 0.12 * canvas.shape[0] + 0.6), layout="constrained")
    ax = figure.add_subplot()
    image = canvas[..., 0] if canvas.shape[-1] == 1 else canvas
    ax.imshow(image.numpy(), cmap="gray_r" if canvas.shape[-1] == 1 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([(height + 1) * i + height / 2 - 0.5 for i in range(len(labels))], labels=list(labels), fontsize=7)
    ax.set_xticks([x for x, _ in columns], labels=[name for _, name in columns], fontsize=7)
    ax.tick_params(axis="x", length=0)
    if title:
        ax.set_title(title, fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_bytes_atomic(path, buffer.getvalue())
    return path

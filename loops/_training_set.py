"""Step 1 of each generation: which data the next model trains on."""

from __future__ import annotations

import torch

from genfair.data import Batch

__all__ = ["draw_labels", "training_set", "training_set_size"]


def training_set(kind: str, *, real: Batch, fresh: Batch | None, synthetic: list[Batch]) -> Batch:
    """The training set of a generation g >= 1 (see :class:`~genfair.loops.LoopConfig` for the kinds).

    Args:
        real: generation 0's real set.
        fresh: this generation's new real draw (``fresh`` loops only).
        synthetic: the synthetic sets drawn so far, oldest first (only the last is used
            except by ``accumulate``).
    """
    if kind == "fully_synthetic":
        return synthetic[-1]
    if kind == "augment":
        return Batch.concat([real, synthetic[-1]])
    if kind == "fresh":
        if fresh is None:
            raise ValueError("a fresh loop needs this generation's real draw, got fresh=None")
        return Batch.concat([fresh, synthetic[-1]])
    if kind == "accumulate":
        return Batch.concat([real, *synthetic])
    raise ValueError(f"kind must be one of ['fully_synthetic', 'augment', 'fresh', 'accumulate'], got {kind!r}")


def training_set_size(config, generation: int) -> int:
    """Samples per replicate in generation ``generation``'s training set under ``config``
    (a :class:`~genfair.loops.LoopConfig`), as :func:`training_set` builds it."""
    n, m = config.n_real, config.n_synthetic
    if generation == 0:
        return n
    sizes = {"fully_synthetic": m, "augment": n + m, "fresh": n + m, "accumulate": n + generation * m}
    if config.kind not in sizes:
        raise ValueError(f"kind must be one of {list(sizes)}, got {config.kind!r}")
    return sizes[config.kind]


def draw_labels(counts: torch.Tensor, n: int, *, generator: torch.Generator) -> torch.Tensor:
    """Classes for ``n`` synthetic samples per replicate, drawn from the class shares of the
    training set (``counts (R, K)``), so a class that fades in one generation stays faded.
    Drawn on the generator's device (the loop's are CPU generators, see ``genfair.devices``),
    whatever device ``counts`` is on; returned there too."""
    if counts.shape[1] == 1:
        return torch.zeros(counts.shape[0], n, dtype=torch.int64, device=generator.device)
    return torch.multinomial(counts.to(generator.device, torch.float64), n, replacement=True, generator=generator)

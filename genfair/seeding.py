"""Seeds derived from one root seed, so any generation can be re-run alone.

Every (generation, stream) pair gets its own child of ``numpy.random.SeedSequence(root)``,
keyed by position rather than by how many children were spawned: generation 7's synthetic
samples are the same whether the run asked for 10 generations or 100, whether it was resumed
or not, and whichever arm of a comparison draws them (common random numbers).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

__all__ = ["Stream", "child_seed", "torch_generator", "numpy_generator"]

Stream = Literal["real", "fit", "sample", "measure", "bootstrap", "compose"]
_STREAMS: tuple[str, ...] = ("real", "fit", "sample", "measure", "bootstrap", "compose")  # new streams go last


def child_seed(root: int, generation: int, stream: Stream, *, replicate: int = 0) -> np.random.SeedSequence:
    """The seed sequence of one stream of one generation of one chain:
    ``SeedSequence(root, spawn_key=(g, s))`` for replicate 0 (the single chain of a one-replicate
    run) and ``SeedSequence(root, spawn_key=(g, s, r))`` for replicate r >= 1, so replicate r's
    streams depend only on the root seed and r, never on how many replicates a run holds."""
    if stream not in _STREAMS:
        raise ValueError(f"stream must be one of {list(_STREAMS)}, got {stream!r}")
    key = (generation, _STREAMS.index(stream)) + ((replicate,) if replicate else ())
    return np.random.SeedSequence(root, spawn_key=key)


def torch_generator(
    root: int, generation: int, stream: Stream, *, replicate: int = 0, device: str | torch.device = "cpu"
) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded from :func:`child_seed`."""
    state = child_seed(root, generation, stream, replicate=replicate).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state))


def numpy_generator(root: int, generation: int, stream: Stream, *, replicate: int = 0) -> np.random.Generator:
    """A ``numpy.random.Generator`` seeded from :func:`child_seed`."""
    return np.random.default_rng(child_seed(root, generation, stream, replicate=replicate))

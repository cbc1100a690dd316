"""An amortised estimator trained over a prior of distributions, kept on disk for reuse.

Training (:func:`train_over_prior`): every step draws a set size n uniformly from
``set_sizes``, then ``sets`` fresh distributions from the prior and one set of n samples from
each ("simulation on the fly"), and takes one Adam step on the PLE objective averaged over the
sets, ``mean_b NLL(X_b; H(X_b)) + lam * D(H(X_b), H(Y_b))`` (Eq. 5 of Mayer et al.; lam = 0 is
``hyper_mle``). H reads n through its encoder (``set_size_input``). The learning rate decays to 0
by a cosine over the steps.

Saving (:func:`save_estimator`, :func:`load_estimator`): ``<name>.safetensors`` holds H's
state, ``<name>.json`` its description (the target model, the prior, H's own options, lam and
the training budget) and the sha256 of the tensors. Loading refuses, in one line, a file whose
description differs from the run's (naming the first differing key) or whose bytes do not match
their checksum; a refused file is never loaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from genfair.checkpoint import load_tensors, read_json, save_tensors, write_json
from genfair.errors import ConfigError
from genfair.hypernets import HyperNetwork, PLEConfig, PLEObjective
from genfair.training import take_step

__all__ = ["AmortisedTraining", "load_estimator", "save_estimator", "train_over_prior"]


class _SetPrior(Protocol):
    def draw_sets(self, sets: int, n: int, *, generator: torch.Generator) -> Any: ...


@dataclass(frozen=True)
class AmortisedTraining:
    """What training over the prior did: ``nll`` and ``discrepancy`` are the means over the
    last 10 % of steps; ``seconds`` the wall time (0 for an estimator loaded from disk)."""

    lam: float
    steps: int
    sets: int
    nll: float
    discrepancy: float
    seconds: float


def train_over_prior(
    hnet: HyperNetwork,
    prior: _SetPrior,
    *,
    lam: float,
    steps: int,
    sets: int,
    set_sizes: tuple[int, int],
    lr: float,
    discrepancy: str = "draw",
    data_generator: torch.Generator,
    ple_generator: torch.Generator,
    what: str,
) -> AmortisedTraining:
    """Train ``hnet`` (a ``per_replicate`` hypernetwork: the sets of a step are its replicates)
    over ``prior`` in place, then freeze it (see the module docstring). ``set_sizes``: the
    inclusive range of n. A NaN or infinite objective raises ``FloatingPointError`` naming
    ``what``, the step and the value (:func:`genfair.training.take_step`)."""
    objective = PLEObjective(PLEConfig(lam=lam, discrepancy=discrepancy))
    optimiser = torch.optim.Adam(hnet.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    dtype = hnet.gain.dtype
    tail = max(1, steps // 10)
    nll, gap = [], []
    started = time.perf_counter()
    for step in range(steps):
        n = int(torch.randint(set_sizes[0], set_sizes[1] + 1, (), generator=data_generator))
        draw = prior.draw_sets(sets, n, generator=data_generator)
        terms = objective(hnet, draw.x.to(dtype), generator=ple_generator)
        take_step(terms.total, optimiser, what=what, step=step, steps=steps)
        schedule.step()
        nll.append(terms.nll.item())
        gap.append(terms.discrepancy.item())
    hnet.requires_grad_(False)
    return AmortisedTraining(
        float(lam), steps, sets, float(np.mean(nll[-tail:])), float(np.mean(gap[-tail:])), time.perf_counter() - started
    )


def save_estimator(path: Path, hnet: HyperNetwork, training: AmortisedTraining, *, description: dict) -> Path:
    """Write ``path.safetensors`` (H's state) and ``path.json`` (``description``, the training
    record and the tensors' sha256); returns the JSON's path."""
    path = Path(path)
    state = {name: value.detach().contiguous() for name, value in hnet.state_dict().items()}
    digest = save_tensors(path.with_suffix(".safetensors"), state)
    record = {"description": description, "training": training.__dict__, "sha256": digest}
    write_json(path.with_suffix(".json"), record)
    return path.with_suffix(".json")


def load_estimator(path: Path, hnet: HyperNetwork, *, description: dict) -> AmortisedTraining | None:
    """Load a saved H into ``hnet`` (built like the saved one) and freeze it; ``None`` when no
    file is there. Refuses one whose description differs from ``description`` or whose tensors
    fail their checksum (:class:`~genfair.errors.ConfigError`, one line)."""
    path = Path(path)
    if not path.with_suffix(".json").exists():
        return None
    record = read_json(path.with_suffix(".json"))
    saved = json_roundtrip(record.get("description"))
    wanted = json_roundtrip(description)
    if saved != wanted:
        key = _first_difference(saved, wanted)
        raise ConfigError(
            f"saved estimator {path.with_suffix('.json')} was trained for another setting ({key}); "
            "delete it or use another directory to train a new one"
        )
    state = load_tensors(path.with_suffix(".safetensors"), sha256=record["sha256"])
    hnet.load_state_dict(state)
    hnet.requires_grad_(False)
    return AmortisedTraining(**{**record["training"], "seconds": 0.0})


def json_roundtrip(value: Any) -> Any:
    """``value`` as JSON stores it (tuples become lists), so a description compares with its file."""
    import json

    return json.loads(json.dumps(value))


def _first_difference(old: Any, new: Any, prefix: str = "") -> str:
    """``key: X saved, Y now`` for the first key where the two descriptions differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in dict.fromkeys([*old, *new]):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.') or 'description'}: {old!r} saved, {new!r} now"

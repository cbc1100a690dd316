"""Size of a hypernetwork that generates every weight of the authors' MNIST VAE.

Target: genfair's ``VAE`` in the shape of Mayer et al. (arXiv 2405.13977): encoder
784-1024-1024-1024-1024 to a 32-d latent (mean and log-variance), mirrored decoder
32-1024x4-784, BatchNorm after every hidden layer (plus the decoder's 784 per-pixel scales).
Hypernetworks: genfair's chunked head (default options) against the dense head of the authors'
torchhyper (one ``Linear(embedding_dim, numel)`` per tensor), both generating all of the target's
parameters, residual (the default: base weights + generated delta) and not.

The dense hypernetwork has ~265M parameters at ``embedding_dim=32``: every hypernetwork here is
built on PyTorch's ``meta`` device (shapes only, no memory), and ``HyperNetwork.size()`` counts
its parameters. The chunked one is built on the CPU as well, to check that both counts agree.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hypernet_size.py`` (or ``make benchmark``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from genfair.models import VAE
from genfair.hypernets import HyperNetwork

SAMPLE_SHAPE, HIDDEN, LATENT = (784,), (1024,) * 4, 32
EMBEDDING_DIMS = (32, 96)  # genfair's default; ~the width behind the 777M quoted for torchhyper


def target() -> VAE:
    return VAE(sample_shape=SAMPLE_SHAPE, hidden=HIDDEN, latent_dim=LATENT, batch_norm=True)


def count(head: str, residual: bool, embedding_dim: int) -> dict[str, float]:
    with torch.device("meta"):
        size = HyperNetwork(
            target(), sample_shape=SAMPLE_SHAPE, head=head, residual=residual, embedding_dim=embedding_dim
        ).size()
    return {**asdict(size), "ratio": round(size.ratio, 4)}


def main() -> None:
    variants = {
        f"{head}{'' if residual else '_outright'}_e{dim}": count(head, residual, dim)
        for dim in EMBEDDING_DIMS
        for head in ("chunked", "dense")
        for residual in (True, False)
    }
    on_cpu = HyperNetwork(target(), sample_shape=SAMPLE_SHAPE).size()
    assert asdict(on_cpu) == {k: v for k, v in variants["chunked_e32"].items() if k != "ratio"}, "meta and CPU counts differ"
    chunked, dense = variants["chunked_e32"], variants["dense_e32"]
    result = {
        "target": "VAE(sample_shape=(784,), hidden=(1024,) * 4, latent_dim=32, batch_norm=True)",
        "target_parameters": chunked["target"],
        "chunked_hypernetwork_parameters": chunked["hypernetwork"],
        "dense_hypernetwork_parameters": dense["hypernetwork"],
        "chunked_ratio": chunked["ratio"],
        "dense_ratio": dense["ratio"],
        "dense_over_chunked": round(dense["hypernetwork"] / chunked["hypernetwork"], 1),
        "chunked_at_most_1.1x_target": chunked["ratio"] <= 1.1,
        "notes": (
            "Keys are <head>[_outright]_e<embedding_dim>; _outright: residual=False (no base copy of the "
            "target). Counted with HyperNetwork.size() on the meta device; the chunked e32 count is "
            "checked against a CPU build."
        ),
        "variants": variants,
        "torch": torch.__version__,
    }
    out = Path(__file__).parent / "results" / "hypernet_size.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

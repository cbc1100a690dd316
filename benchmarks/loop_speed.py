"""Speed of the batched loop simulator against a plain vectorised NumPy loop.

20,000 chains of a 1-D Gaussian, n = 10 real and 10 synthetic samples, 100 generations, fully
synthetic, MLE. genfair's time is the summed ``generation_seconds`` of ``summary.json`` (fit,
measure, sample; writing to disk is excluded there and reported apart). The NumPy loop makes
the same draws and computes the same fit and metrics (squared mean error, variance, W2^2).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/loop_speed.py`` (or ``make benchmark``).
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genfair.data import GaussianData
from genfair.experiment import Arm, run_experiment
from genfair.models import AnalyticModelConfig
from genfair.loops import LoopConfig

CHAINS, N, GENERATIONS, REPEATS = 20_000, 10, 100, 3


def numpy_loop(seed: int) -> float:
    """The reference: the same draws, fit and metrics in vectorised NumPy; returns seconds."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    x = rng.standard_normal((CHAINS, N))
    for _ in range(GENERATIONS):
        mean, var = x.mean(axis=1), x.var(axis=1)  # MLE fit
        metrics = (mean**2, var, mean**2 + (np.sqrt(var) - 1.0) ** 2)  # mse, trace, W2^2 to N(0, 1)
        x = mean[:, None] + np.sqrt(var)[:, None] * rng.standard_normal((CHAINS, N))
    del metrics
    return time.perf_counter() - start


def genfair_loop(seed: int) -> tuple[float, float]:
    """genfair's run; returns (summed generation_seconds, wall seconds including disk writes)."""
    arm = Arm(
        "mle",
        GaussianData(dim=1),
        AnalyticModelConfig(name="gaussian", estimator="mle"),
        LoopConfig(kind="fully_synthetic", generations=GENERATIONS, n_real=N, n_synthetic=N, replicates=CHAINS),
    )
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        result = run_experiment([arm], seed=seed, run_dir=Path(run_dir))
        wall = time.perf_counter() - start
    return sum(result.summary["arms"]["mle"]["generation_seconds"]), wall


def main() -> None:
    torch.set_num_threads(1)
    numpy_seconds = min(numpy_loop(seed) for seed in range(REPEATS))
    runs = [genfair_loop(seed) for seed in range(REPEATS)]
    genfair_seconds = min(r[0] for r in runs)
    result = {
        "chains": CHAINS,
        "n": N,
        "generations": GENERATIONS,
        "numpy_seconds": round(numpy_seconds, 3),
        "genfair_generation_seconds": round(genfair_seconds, 3),
        "genfair_wall_seconds_with_outputs": round(min(r[1] for r in runs), 3),
        "ratio": round(genfair_seconds / numpy_seconds, 2),
        "best_of": REPEATS,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}",
    }
    out = Path(__file__).parent / "results" / "loop_speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

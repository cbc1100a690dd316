"""Running genfair's commands from tests: in a subprocess with one torch thread, the Agg plotting
backend and without the debugging variables a developer's shell may set; and the overrides that
shrink an experiment's own arms."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

EXPERIMENTS = Path(__file__).resolve().parents[1] / "configs" / "experiment"


def command_env() -> dict[str, str]:
    """This process's environment for a command under test."""
    env = {k: v for k, v in os.environ.items() if k not in ("GENFAIR_DEBUG", "HYDRA_FULL_ERROR")}
    return {**env, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def run_command(command: list[str], cwd: Path, *, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``command`` in ``cwd`` with :func:`command_env`, capturing its output as text."""
    return subprocess.run(command, cwd=cwd, env=command_env(), capture_output=True, text=True, timeout=timeout)


def pool_workers() -> int:
    """Commands a test runs at once: the usable cores, at most 4."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 4))


def run_commands(
    jobs: Mapping[str, tuple[list[str], Path]], *, timeout: float = 300
) -> dict[str, subprocess.CompletedProcess]:
    """``{name: (command, cwd)}`` run :func:`pool_workers` at a time: ``{name: result}``."""
    with ThreadPoolExecutor(max_workers=pool_workers()) as pool:
        futures = {name: pool.submit(run_command, command, cwd, timeout=timeout) for name, (command, cwd) in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def shrunk_arms(experiment: str, steps: str) -> list[str]:
    """Overrides that give every arm of ``configs/experiment/<experiment>.yaml`` which sets its own
    step count (the hypernetwork arms' 60 amortised steps) the shrunk ``steps``
    (``"estimator.steps=3"``) instead: a root ``estimator.steps`` does not reach them. Each is the
    arm's list in the command line's quoted form, ``arms.ple=["estimator.name=ple","estimator.steps=3"]``."""
    arms = yaml.safe_load((EXPERIMENTS / f"{experiment}.yaml").read_text()).get("arms") or {}
    return [
        f"arms.{arm}=[{','.join(json.dumps(steps if c.startswith('estimator.steps=') else c) for c in changes)}]"
        for arm, changes in arms.items()
        if any(c.startswith("estimator.steps=") for c in changes)
    ]

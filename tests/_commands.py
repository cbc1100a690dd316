"""Running genfair's commands from tests: in a subprocess with one torch thread, the Agg plotting
backend and without the debugging variables a developer's shell may set."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


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

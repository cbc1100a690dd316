"""Wall time and peak memory of the default experiment with R = 1 and R = 8 replicates, side by side.

Each configuration runs the `genfair` command in a fresh process (its chains in `workers` spawned
one-thread processes, every core by default), one after the other on the same machine, so the two
see the same load. Peak memory is the largest resident set of any process of the run (the command
or one of its workers), from `getrusage(RUSAGE_CHILDREN)` of a wrapper process per run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/replicates.py [extra Hydra overrides...]

Writes benchmarks/results/replicates.json. Extra overrides apply to both runs (e.g.
`loop.generations=3` for a shorter measurement; the ratio is what the goal is about).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENFAIR = Path(sys.executable).with_name("genfair")
WRAPPER = (
    "import resource, subprocess, sys;"
    "code = subprocess.call(sys.argv[1:]);"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
    "sys.exit(code)"
)


def run(replicates: int, extra: list[str], folder: Path) -> dict:
    command = [str(GENFAIR), f"loop.replicates={replicates}", f"hydra.run.dir={folder / f'r{replicates}'}", *extra]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    peak_kib = int(done.stdout.strip().splitlines()[-1])
    summary = json.loads((folder / f"r{replicates}" / "summary.json").read_text())
    return {"replicates": replicates, "seconds": round(seconds, 1), "peak_rss_mib": round(peak_kib / 1024, 1),
            "arms": list(summary["arms"]), "status": summary["status"]}


def main() -> None:
    extra = sys.argv[1:]
    with tempfile.TemporaryDirectory() as folder:
        results = [run(r, extra, Path(folder)) for r in (1, 8)]
    report = {
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/replicates.py " + " ".join(extra),
        "overrides": extra,
        "machine": {"cores": len(os.sched_getaffinity(0)), "processor": platform.processor() or platform.machine()},
        "runs": results,
        "ratio_r8_to_r1": round(results[1]["seconds"] / results[0]["seconds"], 2),
    }
    out = ROOT / "benchmarks" / "results" / "replicates.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""The arms' path through a run, followed call by call: how many genfair modules it stops in, how
many runner-level entries it makes, and how often it climbs back up the import layering.

``run_experiment`` runs ``experiment=class_mixture_mad loop.generations=2 loop.replicates=2``
(composed as the ``genfair`` command composes it) under ``sys.setprofile``. Every Python call
whose code lives in ``genfair/``, ``loops/`` or ``hypernets/`` is attributed to its module;
the caller is the nearest such frame below it on the stack (calls through torch, numpy or the
standard library are followed through them). ``genfair/_lazy.py`` (the packages' lazy imports)
is plumbing and is skipped.

- stops: the distinct modules that the path enters (run_experiment's own module included);
- climbs: the distinct caller -> callee module edges where the callee is higher in the import
  layering than the caller: the callee imports the caller (directly or through other modules,
  at the top of the file or inside a function) and not the other way round, e.g. a callback
  defined in ``genfair/experiment.py`` that ``loops/_simulate.py`` calls.

"Stops" counts every module the run touches, leaves included (the metrics, models and data the
arm is made of), which says more about how the library is split into files than about the
runner. The issue's "the arms pass through N modules in S stops" is about the runner, so a
second count follows only the runner's modules:

- runner modules (:data:`RUNNER`): the modules of genfair's top level (``genfair/*.py``) and of
  ``genfair.loops`` (``loops/*.py``), the two places that move an arm through a run, except the
  shared infrastructure that knows nothing of a run (:data:`INFRASTRUCTURE`: errors, seeding,
  checkpoint files, devices, progress formatting). The parts an arm is built from
  (``genfair.data``, ``models``, ``estimators``, ``metrics``, ``plots``, ``hypernets``...) are
  not runner modules; a call through them is followed through, so a fit that calls back into
  ``genfair.loops._store`` to checkpoint counts as ``genfair.loops._simulate ->
  genfair.loops._store``.
- runner entries: each call whose innermost runner frame (the callee's) is in a different runner
  module than the nearest runner frame below it is an entry ``caller module -> callee module``.
  Returns are not counted (they go back to a module already on the path). Repetition across
  arms, replicates, generations and helper calls is folded: ``S`` is the number of distinct
  entries, ``N`` the number of distinct runner modules entered; each entry is listed with how
  many times it was made and marked ``climb`` when it climbs (as above).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/call_path.py`` (writes
``benchmarks/results/call_path.txt``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import genfair
import genfair.hypernets
import genfair.loops
from genfair.cli._app import arms_from_config
from genfair.cli._config import register_configs
from genfair.experiment import run_experiment

REPO = Path(__file__).resolve().parents[1]
# Each package's folder (genfair.loops and genfair.hypernets live in loops/ and hypernets/).
ROOTS = {Path(package.__file__).resolve().parent: package.__name__ for package in (genfair.loops, genfair.hypernets, genfair)}
SKIPPED = {"genfair._lazy"}
INFRASTRUCTURE = {"genfair.errors", "genfair.seeding", "genfair.checkpoint", "genfair.devices", "genfair.progress"}
OVERRIDES = ["experiment=class_mixture_mad", "loop.generations=2", "loop.replicates=2"]
RESULT = REPO / "benchmarks" / "results" / "call_path.txt"


def module_of(filename: str) -> str | None:
    """``genfair.loops._simulate`` for ``<repo>/loops/_simulate.py``; ``None`` outside the packages."""
    path = Path(filename).resolve()
    if path.suffix != ".py":
        return None
    for root, package in ROOTS.items():
        if path.is_relative_to(root):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join(parts)
    return None


def is_runner(module: str) -> bool:
    """A runner module (see the module docstring): ``genfair.<name>`` or ``genfair.loops.<name>``,
    infrastructure excepted."""
    parts = module.split(".")
    top_level = len(parts) == 2 or (len(parts) == 3 and parts[1] == "loops")
    return top_level and module not in INFRASTRUCTURE and module not in SKIPPED


def import_graph() -> dict[str, set[str]]:
    """Each module of the packages -> the modules of the packages it imports (anywhere in it)."""
    modules = {}
    for root in ROOTS:
        for file in root.rglob("*.py"):
            name = module_of(str(file))
            if name is not None:
                modules[name] = file
    graph = {}
    for name, file in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package
                    package = name.split(".") if file.name == "__init__.py" else name.split(".")[:-1]
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for target in targets:
                target = target.replace("loops", "genfair.loops", 1) if target.split(".")[0] == "loops" else target
                target = target.replace("hypernets", "genfair.hypernets", 1) if target.split(".")[0] == "hypernets" else target
                if target in modules and target != name:
                    imported.add(target)
        graph[name] = imported
    return graph


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module == goal:
            return True
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return False


def trace_run() -> tuple[list[str], dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """The modules the run enters, in order of first entry, each caller -> callee edge's count,
    and each runner entry's count (see the module docstring)."""
    register_configs()
    with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=OVERRIDES)
    arms = arms_from_config(cfg)
    order: list[str] = []
    edges: dict[tuple[str, str], int] = {}
    entries: dict[tuple[str, str], int] = {}

    def profile(frame, event, arg) -> None:
        if event != "call":
            return
        callee = module_of(frame.f_code.co_filename)
        if callee is None or callee in SKIPPED:
            return
        if callee not in order:
            order.append(callee)
        caller_frame, caller = frame.f_back, None
        while caller_frame is not None:
            module = module_of(caller_frame.f_code.co_filename)
            if module is not None and module not in SKIPPED:
                if caller is None:  # the nearest package frame: the call's edge
                    caller = module
                    if caller != callee:
                        edges[caller, callee] = edges.get((caller, callee), 0) + 1
                    if not is_runner(callee):
                        return
                if is_runner(module):  # the nearest runner frame: a runner entry if it is another module
                    if module != callee:
                        entries[module, callee] = entries.get((module, callee), 0) + 1
                    return
            caller_frame = caller_frame.f_back

    with tempfile.TemporaryDirectory() as folder:
        sys.setprofile(profile)
        try:
            run_experiment(arms, seed=0, run_dir=Path(folder) / "run", config=OmegaConf.to_container(cfg), workers=1,
                           device="cpu")
        finally:
            sys.setprofile(None)
    return order, edges, entries


def main() -> None:
    graph = import_graph()
    order, edges, entries = trace_run()

    def climbs_up(edge: tuple[str, str]) -> bool:
        return reaches(graph, edge[1], edge[0]) and not reaches(graph, edge[0], edge[1])

    climbs = {edge: count for edge, count in edges.items() if climbs_up(edge)}
    runner = [module for module in order if is_runner(module)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "genfair", "loops", "hypernets"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    lines = [
        f"# benchmarks/call_path.py: run_experiment({' '.join(OVERRIDES)}), traced with sys.setprofile",
        f"# commit {commit}{' (with uncommitted changes)' if dirty else ''}",
        f"stops: {len(order)} modules",
        f"climbs: {len(climbs)} distinct edges ({sum(climbs.values())} calls)",
        f"runner: the arms pass through {len(runner)} runner modules in {len(entries)} distinct entries "
        f"({sum(entries.values())} calls), {sum(climbs_up(entry) for entry in entries)} of them climbing",
        "",
        "## modules, in order of first entry",
        *(f"  {module}" for module in order),
        "",
        "## climbs (caller -> callee higher in the import layering: calls)",
        *(f"  {caller} -> {callee}: {count}" for (caller, callee), count in sorted(climbs.items())),
        "",
        "## runner entries (nearest runner module -> runner module entered: calls)",
        *(f"  {caller} -> {callee}: {count}{'  climb' if climbs_up((caller, callee)) else ''}"
          for (caller, callee), count in sorted(entries.items())),
    ]
    RESULT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

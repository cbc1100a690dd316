"""The arms' path through a run, followed call by call: how many genfair modules it stops in and
how often it climbs back up the import layering.

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

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/call_path.py`` (writes
``benchmarks/results/call_path.txt``).
"""

from __future__ import annotations

import ast
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


def trace_run() -> tuple[list[str], dict[tuple[str, str], int]]:
    """The modules the run enters, in order of first entry, and each caller -> callee edge's count."""
    register_configs()
    with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=OVERRIDES)
    arms = arms_from_config(cfg)
    order: list[str] = []
    edges: dict[tuple[str, str], int] = {}

    def profile(frame, event, arg) -> None:
        if event != "call":
            return
        callee = module_of(frame.f_code.co_filename)
        if callee is None or callee in SKIPPED:
            return
        if callee not in order:
            order.append(callee)
        caller_frame = frame.f_back
        while caller_frame is not None:
            caller = module_of(caller_frame.f_code.co_filename)
            if caller is not None and caller not in SKIPPED:
                if caller != callee:
                    edges[caller, callee] = edges.get((caller, callee), 0) + 1
                return
            caller_frame = caller_frame.f_back

    with tempfile.TemporaryDirectory() as folder:
        sys.setprofile(profile)
        try:
            run_experiment(arms, seed=0, run_dir=Path(folder) / "run", config=OmegaConf.to_container(cfg), workers=1,
                           device="cpu")
        finally:
            sys.setprofile(None)
    return order, edges


def main() -> None:
    graph = import_graph()
    order, edges = trace_run()
    climbs = {edge: count for edge, count in edges.items()
              if reaches(graph, edge[1], edge[0]) and not reaches(graph, edge[0], edge[1])}
    lines = [
        f"# benchmarks/call_path.py: run_experiment({' '.join(OVERRIDES)}), traced with sys.setprofile",
        f"stops: {len(order)} modules",
        f"climbs: {len(climbs)} distinct edges ({sum(climbs.values())} calls)",
        "",
        "## modules, in order of first entry",
        *(f"  {module}" for module in order),
        "",
        "## climbs (caller -> callee higher in the import layering: calls)",
        *(f"  {caller} -> {callee}: {count}" for (caller, callee), count in sorted(climbs.items())),
    ]
    RESULT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

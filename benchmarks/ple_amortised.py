"""Amortised PLE on the default digits loop: cost and evidence of mle, hyper_mle and ple.

The default experiment (``configs/experiment/digits_vae.yaml``): a class-conditional MLP VAE on
8x8 digits, 3 against a 10 % minority of 6, n = 150, fully synthetic loop, Adam at lr 0.003; the
``mle`` arm takes ``--mle-steps`` (800) steps of batch 64 per generation. The hypernetwork arms
take ``--hyper-steps`` amortised steps of ``sets_per_step`` sets each (the estimator's defaults
otherwise). Every arm runs alone (one process, one torch thread), seed by seed, with the default
evaluation.

Prints, per arm and seed, the mean over generations of: wall seconds per generation (the loop's
``seconds``: fit, measure, sample), CPU seconds per generation (this process's, which other
processes on a shared machine do not inflate), and the fit's evidence (``HypernetworkFit``):
``ple_nll``, ``ple_discrepancy``, ``ple_penalty_ratio`` (lam D / |NLL|), ``h_sensitivity``,
``mle_sensitivity`` and ``sensitivity_ratio``, with two of the loop's quality metrics (``fd/all``,
lower is better, and the minority's ``coverage/6``); then each arm's cost relative to mle.

``--why`` adds, for seed 0, where the sensitivities come from: generation 0's maximum-likelihood
fit (800 steps), then a hyper_mle fit of ``--hyper-steps`` steps on a fresh real draw (as
generation 1 of a loop), and per parameter tensor the relative change of H's output and of the
MLE reference between the same two halves; and what lam D / |NLL| would be if H moved between
X and Y as much as the MLE reference moves between the halves, for both normalisations of D.

``--compare SPEC ...`` instead runs the estimator options behind the defaults: for each SPEC
(``key=value,...`` on ``EstimatorConfig``, e.g. ``base=frozen`` or ``sets_per_step=32,steps=100``)
a hyper_mle loop of ``--generations`` generations (``--hyper-steps`` steps each, no evaluation),
and prints per generation its training-set NLL and sensitivities.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ple_amortised.py --generations 3 --seeds 0``
(about 10 minutes of one core); results of a run are in ``benchmarks/results/ple_amortised.txt``.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genfair.data import DigitsData
from genfair.estimators import EstimatorConfig
from genfair.evaluation import EvaluationConfig
from genfair.experiment import Arm, run_experiment
from genfair.loops import LoopConfig
from genfair.models import ModelCapabilities, VAEConfig

EVIDENCE = ("ple_nll", "ple_discrepancy", "ple_penalty_ratio", "h_sensitivity", "mle_sensitivity", "sensitivity_ratio")
QUALITY = ("fd/all", "coverage/6")  # what the fit costs in sample quality (the loop's measure)


def arms(generations: int, hyper_steps: int, sets_per_step: int | None, mle_steps: int = 800) -> list[Arm]:
    data = DigitsData(classes=[3, 6], proportions=[0.9, 0.1])
    loop = LoopConfig(kind="fully_synthetic", generations=generations, n_real=150, n_synthetic=150, replicates=1)
    common = dict(lr=0.003, batch_size=64)
    hyper = dict(common, steps=hyper_steps, **({} if sets_per_step is None else {"sets_per_step": sets_per_step}))
    estimators = {
        "mle": EstimatorConfig(name="mle", steps=mle_steps, **common),
        "hyper_mle": EstimatorConfig(name="hyper_mle", **hyper),
        "ple": EstimatorConfig(name="ple", **hyper),
    }
    return [Arm(name, data, VAEConfig(), loop, estimator, EvaluationConfig()) for name, estimator in estimators.items()]


def run_arm(arm: Arm, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as run_dir:
        cpu, wall = time.process_time(), time.perf_counter()
        result = run_experiment([arm], seed=seed, run_dir=Path(run_dir), device="cpu")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    records = result.records[arm.name]
    row = {"wall_s_per_gen": float(np.mean([r.seconds for r in records])), "cpu_s_per_gen": cpu / len(records),
           "run_wall_s": wall}
    for key in EVIDENCE:
        if f"{key}/all" in records[0].values:
            row[key] = float(np.mean([r.values[f"{key}/all"][0] for r in records]))
    for key in QUALITY:
        row[key] = float(np.mean([r.values[key][0] for r in records]))
    return row


def why(hyper_steps: int, head: str) -> None:
    """Per-tensor sensitivities of H and of the MLE reference (see the module docstring); H is
    trained as ``HypernetworkFit`` trains it with the estimator's defaults (free base, 16 sets)."""
    import copy

    from genfair.estimators import GradientFit, SubsampleConfig
    from genfair.estimators._sets import SetSampler
    from genfair.hypernets import HyperNetwork, PLEConfig, PLEObjective
    from genfair.loops import FitContext
    from genfair.seeding import torch_generator

    data = DigitsData(classes=[3, 6], proportions=[0.9, 0.1])
    x0 = data.draw(1, 150, generator=torch_generator(0, 0, "real"))
    x1 = data.draw(1, 150, generator=torch_generator(0, 1, "real"))
    torch.manual_seed(0)
    model = VAEConfig().build(sample_shape=data.sample_shape, num_classes=2)
    GradientFit(EstimatorConfig(steps=800, lr=0.003, batch_size=64))(model, x0, torch_generator(0, 0, "fit"), FitContext(0, None))
    config = EstimatorConfig(name="hyper_mle", lr=0.003)
    hnet = HyperNetwork(model, sample_shape=data.sample_shape, num_classes=2, head=head)
    objective = PLEObjective(PLEConfig(lam=0.0))
    optimiser = torch.optim.Adam(hnet.parameters(), lr=config.lr)
    sampler = SetSampler(x1.y[0], SubsampleConfig(), num_classes=2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(hyper_steps):
        index = sampler.draw(config.sets_per_step, generator=generator)
        terms = objective.sets(hnet, x1.x[0][index], x1.y[0][index], generator=generator)
        optimiser.zero_grad()
        terms.total.backward()
        optimiser.step()
    nll = abs(float(terms.nll.detach()))
    order = torch.randperm(150, generator=torch.Generator().manual_seed(1))
    halves = [order[:75], order[75:]]
    with torch.no_grad():
        h = [hnet(x1.x[0][i], x1.y[0][i]) for i in halves]
    fitted = []
    for index in halves:  # the MLE reference of the evidence, tensor by tensor
        copy_ = copy.deepcopy(model).train()
        optimiser = torch.optim.Adam(copy_.parameters(), lr=config.lr)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)  # the same for both halves
            for _ in range(config.reference_steps):
                optimiser.zero_grad()
                copy_.loss(x1.x[:, index], x1.y[:, index]).mean().backward()
                optimiser.step()
        fitted.append({k: v.detach() for k, v in copy_.named_parameters()})

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).square().mean().sqrt() / a.square().mean().sqrt())

    total = [torch.cat([f[k].flatten() for k in h[0]]) for f in (h[0], h[1], *fitted)]
    print(f"# why: 800 MLE steps on X_0, then H ({head} head) trained {hyper_steps} steps on sets of a fresh X_1 "
          f"(training NLL {-nll:.1f}); halves of X_1; the MLE reference {config.reference_steps} full-batch steps")
    print(f"# {'tensor':24s} {'values':>8s} {'rms':>8s} {'H rel. change':>14s} {'MLE rel. change':>16s}")
    for name in h[0]:
        print(f"# {name:24s} {h[0][name].numel():8d} {float(h[0][name].square().mean().sqrt()):8.4f} "
              f"{rel(h[0][name], h[1][name]):14.2e} {rel(fitted[0][name], fitted[1][name]):16.2e}")
    print(f"# {'all':24s} {total[0].numel():8d} {float(total[0].square().mean().sqrt()):8.4f} "
          f"{rel(total[0], total[1]):14.2e} {rel(total[2], total[3]):16.2e}")
    d_param = float((total[2] - total[3]).square().mean())
    d_rel = float(np.mean([float((fitted[0][k] - fitted[1][k]).square().sum() / fitted[0][k].square().sum()) for k in h[0]]))
    print(f"# if H(Y) - H(X) were the MLE reference's half-to-half change: D = {d_param:.3g} (normalize=parameter), "
          f"{d_rel:.3g} (relative); 0.1 D / |NLL| = {0.1 * d_param / nll:.2g} and {0.1 * d_rel / nll:.2g}")


def compare(specs: list[str], generations: int, hyper_steps: int) -> None:
    """A hyper_mle loop per estimator option set (see the module docstring)."""
    import yaml

    from genfair.estimators import build_fit
    from genfair.loops import simulate

    data = DigitsData(classes=[3, 6], proportions=[0.9, 0.1])
    loop = LoopConfig(kind="fully_synthetic", generations=generations, n_real=150, n_synthetic=150, replicates=1)
    print(f"# {'options':40s} {'g':>2s} {'cpu_s':>6s} {'ple_nll':>8s} {'h_sensitivity':>14s} {'mle_sensitivity':>16s} {'ratio':>8s}")
    for spec in specs:
        options: dict = {}
        for item in filter(None, spec.split(",")):  # key=value, or subsample.key=value
            key, value = item.split("=", 1)
            *outer, key = key.split(".")
            (options.setdefault(outer[0], {}) if outer else options)[key] = yaml.safe_load(value)
        config = EstimatorConfig(**{"name": "hyper_mle", "steps": hyper_steps, "lr": 0.003, **options})
        fit = build_fit(config, sample_shape=data.sample_shape, classes=2,
                        model=ModelCapabilities(positive={}, per_replicate=False, closed_form=False, adversarial=False, num_classes=2))
        torch.manual_seed(0)
        model = VAEConfig().build(sample_shape=data.sample_shape, num_classes=2)
        start = time.process_time()
        result = simulate(data=data, model=model, config=loop, seed=0, fit=fit, measure=lambda m, t, g: {})
        cpu = (time.process_time() - start) / generations
        for record in result.records:
            v = {key.split("/")[0]: float(value[0]) for key, value in record.values.items()}
            print(f"# {spec or 'defaults':40s} {record.generation:2d} {cpu:6.1f} {v['ple_nll']:8.2f} {v['h_sensitivity']:14.2e} "
                  f"{v['mle_sensitivity']:16.3f} {v['sensitivity_ratio']:8.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--hyper-steps", type=int, default=200, help="amortised steps of hyper_mle and ple")
    parser.add_argument("--mle-steps", type=int, default=800, help="steps of the mle arm (batch 64)")
    parser.add_argument("--sets-per-step", type=int, default=None, help="default: the estimator's")
    parser.add_argument("--arms", nargs="*", default=["mle", "hyper_mle", "ple"])
    parser.add_argument("--head", default="chunked", help="the hypernetwork head of --why")
    parser.add_argument("--why", action="store_true", help="per-tensor sensitivities of H and the MLE (seed 0)")
    parser.add_argument("--compare", nargs="*", default=None, metavar="SPEC",
                        help="hyper_mle loops with these estimator options instead of the arms ('' = the defaults)")
    options = parser.parse_args()
    torch.set_num_threads(1)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("# OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ple_amortised.py " + " ".join(
        f"--{key.replace('_', '-')} {' '.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in vars(options).items() if value not in (None, False)).replace(" True", ""))
    print(f"# commit {commit}; {platform.machine()}, torch {torch.__version__}, 1 thread; means over generations")
    if options.compare is not None:
        compare(options.compare, options.generations, options.hyper_steps)
        return
    rows: dict[str, list[dict[str, float]]] = {}
    header = ["arm", "seed", "wall_s_per_gen", "cpu_s_per_gen", *EVIDENCE, *QUALITY]
    if options.arms:
        print(" ".join(f"{h:>18s}" for h in header), flush=True)
    for seed in options.seeds:
        for arm in arms(options.generations, options.hyper_steps, options.sets_per_step, options.mle_steps):
            if arm.name not in options.arms:
                continue
            row = run_arm(arm, seed)
            rows.setdefault(arm.name, []).append(row)
            cells = [arm.name, str(seed)] + [f"{row[k]:.4g}" if k in row else "-" for k in header[2:]]
            print(" ".join(f"{c:>18s}" for c in cells), flush=True)
    if "mle" in rows:
        base = {k: np.mean([r[k] for r in rows["mle"]]) for k in ("wall_s_per_gen", "cpu_s_per_gen")}
        for name, found in rows.items():
            wall = np.mean([r["wall_s_per_gen"] for r in found]) / base["wall_s_per_gen"]
            cpu = np.mean([r["cpu_s_per_gen"] for r in found]) / base["cpu_s_per_gen"]
            print(f"# {name}: {wall:.2f}x mle's wall time per generation, {cpu:.2f}x its CPU time")
    if options.why:
        why(options.hyper_steps, options.head)


if __name__ == "__main__":
    main()

"""Seconds per training step of ``experiment=digits_ddpm``'s arms, and where they go.

The experiment's model and data (``configs/experiment/digits_ddpm.yaml``): a class-conditional
DDPM on diffusers' ``UNet2DModel`` (channels 16/32, DDIM in ``model.sample_steps`` = 10 steps) on
8x8 digits, 3 against a 10 % minority of 6, a training set of n = 150. Each arm's step is the
one its fit takes:

  - ``mle``: one Adam step on a minibatch of ``batch_size`` (32) samples (``GradientFit``);
  - ``hyper_mle``, ``ple``: one amortised step (``HypernetworkFit``): ``sets_per_step`` (16) sets
    drawn by ``SetSampler``, ``PLEObjective.sets`` over them (ple also draws each set's own
    samples Y with the model's sampler), one Adam step on H; the sets run in one
    ``torch.func.vmap`` call or a Python loop, as the fit's trial decides.

Prints, per arm, the CPU seconds of each of ``--steps`` steps after one warm-up step (process
time, which other jobs on a shared machine inflate less than wall time), their median and its
ratio to mle's; the UNet calls per step and the samples they carry; and, with ``--profile``, the
functions that take the time in one more step (cProfile, by cumulative and by own time).
``--ple-sample-steps`` draws PLE's own samples in that many DDIM steps (``estimator.ple.sample_steps``).

``--discrepancy STEPS ...`` instead measures what fewer sampler steps do to the PLE term: D with Y
drawn in each number of steps, set by set from the same noise (see :func:`discrepancy`).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ddpm_step.py --profile`` (a few minutes of
one core); results in ``benchmarks/results/ddpm_step.txt``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import statistics
import subprocess
import time
from collections.abc import Callable

import torch

from genfair.data import DigitsData
from genfair.estimators import EstimatorConfig
from genfair.estimators._hypernetwork_fit import _can_vectorise
from genfair.estimators._sets import SetSampler
from genfair.hypernets import HyperNetwork, PLEObjective
from genfair.models import DDPMConfig
from genfair.seeding import torch_generator
from genfair.training import take_step

ARMS = ("mle", "hyper_mle", "ple")


def model_config(sample_steps: int) -> DDPMConfig:
    """``model=ddpm`` (configs/model/ddpm.yaml) with the experiment's sample steps."""
    return DDPMConfig(block_out_channels=[16, 32], layers_per_block=1, norm_num_groups=8, sample_steps=sample_steps)


def step_function(arm: str, options: argparse.Namespace) -> tuple[Callable[[], None], dict]:
    """A closure taking one training step of ``arm`` on generation 0's real training set, and
    what it runs on (the fit's vectorise decision)."""
    data = DigitsData(classes=[3, 6], proportions=[0.9, 0.1])
    train = data.draw(1, 150, generator=torch_generator(0, 0, "real"))
    torch.manual_seed(0)
    model = model_config(options.sample_steps).build(sample_shape=data.sample_shape, num_classes=2)
    generator = torch.Generator().manual_seed(0)
    if arm == "mle":
        optimiser = torch.optim.Adam(model.parameters(), lr=0.001)

        def step() -> None:
            index = torch.randperm(150, generator=generator)[: options.batch_size]
            loss = model.loss(train.x[:, index], train.y[:, index], generator=generator).mean()
            take_step(loss, optimiser, what="mle", step=0, steps=1)

        return step, {}
    config = EstimatorConfig(name=arm, lr=0.001, sets_per_step=options.sets_per_step,
                             ple={"sample_steps": options.ple_sample_steps})
    settings = dict(sample_shape=data.sample_shape, num_classes=2, positive={}, per_replicate=False,
                    head=config.head, hidden=config.hidden, embedding_dim=config.embedding_dim)
    vectorise = _can_vectorise(model, train, settings, conditional=True)
    hnet = HyperNetwork(model, residual=True, **settings)
    objective = PLEObjective(config.ple_config())
    optimiser = torch.optim.Adam(hnet.parameters(), lr=config.lr)
    sampler = SetSampler(train.y[0], config.subsample, num_classes=2)

    def step() -> None:
        index = sampler.draw(config.sets_per_step, generator=generator)  # (B, m)
        terms = objective.sets(hnet, train.x[0][index], train.y[0][index], generator=generator, vectorise=vectorise)
        take_step(terms.total, optimiser, what=arm, step=0, steps=1)

    return step, {"vectorise": vectorise}


class UNetCalls:
    """Counts the UNet's forward calls and the images they carry, while installed."""

    def __init__(self) -> None:
        self.calls, self.images, self._handles = 0, 0, []

    def install(self) -> UNetCalls:
        from diffusers import UNet2DModel

        original = UNet2DModel.forward

        def counted(unet, sample, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            self.calls += 1
            self.images += sample.shape[0]
            return original(unet, sample, *args, **kwargs)

        UNet2DModel.forward = counted
        self._restore = lambda: setattr(UNet2DModel, "forward", original)
        return self

    def remove(self) -> None:
        self._restore()


def measure(arm: str, options: argparse.Namespace) -> dict:
    step, facts = step_function(arm, options)
    step()  # warm-up (and the first call's allocations)
    seconds = []
    counter = UNetCalls().install()
    try:
        for _ in range(options.steps):
            start = time.process_time()
            step()
            seconds.append(time.process_time() - start)
    finally:
        counter.remove()
    profile = None
    if options.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        step()
        profiler.disable()
        profile = profiler
    return {"seconds": seconds, "median": statistics.median(seconds), "calls": counter.calls / options.steps,
            "images": counter.images / options.steps, "profile": profile, **facts}


def print_profile(arm: str, profiler: cProfile.Profile, top: int) -> None:
    for order in ("cumulative", "tottime"):
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats(order)
        stats.print_stats(top)
        lines = stream.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print(f"# {arm}: one step, top {top} by {order} (cProfile)")
        for line in lines[start : start + top + 1]:
            print("#   " + line)


def discrepancy(options: argparse.Namespace) -> None:
    """D(H(X_b), H(Y_b)) with Y drawn in each of ``--discrepancy`` sampler step counts, on a
    trained model: ``--mle-steps`` Adam steps of mle (batch 32, lr 1e-3), then H (fresh, its
    residual base at the trained weights) ``--hyper-steps`` amortised hyper_mle steps; then 16
    sets of the training set, each Y drawn from the same starting noise at every step count
    (DDIM with eta = 0 is deterministic given it), so the step counts are compared set by set."""
    from genfair.estimators import GradientFit
    from genfair.hypernets import weight_discrepancy
    from genfair.loops import FitContext

    data = DigitsData(classes=[3, 6], proportions=[0.9, 0.1])
    train = data.draw(1, 150, generator=torch_generator(0, 0, "real"))
    torch.manual_seed(0)
    model = model_config(options.sample_steps).build(sample_shape=data.sample_shape, num_classes=2)
    fit = GradientFit(EstimatorConfig(name="mle", steps=options.mle_steps, lr=0.001, batch_size=32))
    fit(model, train, torch.Generator().manual_seed(1), FitContext(0, None))
    config = EstimatorConfig(name="hyper_mle", lr=0.001)
    hnet = HyperNetwork(model, residual=True, sample_shape=data.sample_shape, num_classes=2, positive={},
                        per_replicate=False, head=config.head, hidden=config.hidden, embedding_dim=config.embedding_dim)
    objective, optimiser = PLEObjective(config.ple_config()), torch.optim.Adam(hnet.parameters(), lr=config.lr)
    sampler, generator = SetSampler(train.y[0], config.subsample, num_classes=2), torch.Generator().manual_seed(2)
    for _ in range(options.hyper_steps):
        index = sampler.draw(config.sets_per_step, generator=generator)
        take_step(objective.sets(hnet, train.x[0][index], train.y[0][index], vectorise=False).total, optimiser,
                  what="hyper_mle", step=0, steps=1)
    index = sampler.draw(16, generator=generator)
    x, y = train.x[0][index], train.y[0][index]
    with torch.no_grad():
        weights = hnet(x, y)
        drawn, estimates = {}, {}
        for steps in options.discrepancy:
            drawn[steps] = hnet.run_each(weights, "sample", x.shape[1], labels=y[:, None], vectorise=False,
                                         generator=torch.Generator().manual_seed(3), steps=steps)[:, 0]
            estimates[steps] = hnet(drawn[steps], y)
    own = model.sample_steps
    print(f"# D(H(X_b), H(Y_b)) (normalize=parameter) over 16 sets of {x.shape[1]} samples; model trained {options.mle_steps} "
          f"mle steps, H {options.hyper_steps} hyper_mle steps; Y_b from the same noise at every step count")
    print(f"# {'steps':>5s} {'mean D':>10s} {'sd D':>10s} {'min D':>10s} {'max D':>10s} {'D / D_own':>9s} "
          f"{f'D(H(Y),H(Y_{own}))':>16s} {f'rms(Y - Y_{own})':>14s}")
    per_set = {}
    for steps in options.discrepancy:
        per_set[steps] = torch.stack([weight_discrepancy({k: v[b] for k, v in weights.items()},
                                                         {k: v[b] for k, v in estimates[steps].items()}) for b in range(16)])
    for steps in options.discrepancy:
        d = per_set[steps]
        gap = torch.stack([weight_discrepancy({k: v[b] for k, v in estimates[own].items()},
                                              {k: v[b] for k, v in estimates[steps].items()}) for b in range(16)]) if own in estimates else None
        rms = float((drawn[steps] - drawn[own]).square().mean().sqrt()) if own in drawn else float("nan")
        ratio = float(d.mean() / per_set[own].mean()) if own in per_set else float("nan")
        print(f"  {steps:5d} {float(d.mean()):10.3e} {float(d.std()):10.3e} {float(d.min()):10.3e} {float(d.max()):10.3e} "
              f"{ratio:9.3f} {float(gap.mean()) if gap is not None else float('nan'):16.3e} {rms:14.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per arm, after one warm-up step")
    parser.add_argument("--sample-steps", type=int, default=10, help="model.sample_steps")
    parser.add_argument("--sets-per-step", type=int, default=16, help="estimator.sets_per_step")
    parser.add_argument("--batch-size", type=int, default=32, help="mle's estimator.batch_size")
    parser.add_argument("--profile", action="store_true", help="profile one more step of each arm")
    parser.add_argument("--top", type=int, default=15, help="functions shown per profile")
    parser.add_argument("--ple-sample-steps", type=int, default=None, help="estimator.ple.sample_steps (default: the model's)")
    parser.add_argument("--discrepancy", type=int, nargs="*", default=None, metavar="STEPS",
                        help="instead: D with Y drawn in each of these sampler step counts, on a trained model")
    parser.add_argument("--mle-steps", type=int, default=600, help="--discrepancy: mle steps training the model")
    parser.add_argument("--hyper-steps", type=int, default=20, help="--discrepancy: hyper_mle steps training H")
    options = parser.parse_args()
    torch.set_num_threads(1)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    print("# OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ddpm_step.py " + " ".join(
        f"--{key.replace('_', '-')} {' '.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in vars(options).items() if value not in (None, False)).replace(" True", ""))
    print(f"# commit {commit}{' (working copy modified)' if dirty else ''}; {platform.machine()}, "
          f"torch {torch.__version__}, 1 thread; CPU seconds per step")
    if options.discrepancy:
        discrepancy(options)
        return
    results = {}
    print(f"# {'arm':10s} {'median_s':>9s} {'x mle':>7s} {'unet_calls':>10s} {'images':>7s} {'vectorise':>9s}  steps_s")
    for arm in options.arms:
        results[arm] = found = measure(arm, options)
        ratio = found["median"] / results["mle"]["median"] if "mle" in results else float("nan")
        print(f"  {arm:10s} {found['median']:9.3f} {ratio:7.1f} {found['calls']:10.0f} {found['images']:7.0f} "
              f"{str(found.get('vectorise', '-')):>9s}  {' '.join(f'{s:.3f}' for s in found['seconds'])}", flush=True)
    for arm, found in results.items():
        if found["profile"] is not None:
            print_profile(arm, found["profile"], options.top)


if __name__ == "__main__":
    main()

"""Cost of a training step of a model wrapped by a hypernetwork, against the model alone.

One step = forward, backward and an Adam step (lr 1e-3). Unwrapped: the model's own loss and
parameters. Wrapped: ``weights = hnet(x)`` from the batch itself (the set the hypernetwork
reads), the model run under them with ``hnet.run``, and Adam on the hypernetwork's parameters
(default options: residual, so a freshly wrapped model is the unwrapped one).

(a) ``VAE`` on scikit-learn's digits (64 values scaled to [0, 1]), hidden (256, 256), latent 16,
    BatchNorm: unwrapped, chunked head, dense head (the authors' design); batch 64, and 256.
(b) ``UNet2DModel`` (block_out_channels (16, 32, 32), one layer per block, 8x8, ~267k
    parameters) on the digits scaled to [-1, 1], batch 64, DDPM epsilon loss (noise added with
    diffusers' ``DDPMScheduler.add_noise`` at uniform timesteps): unwrapped, chunked head.
Each with ``torch.optim.Adam``'s default implementation (a loop over parameter tensors, as
genfair's trainers use it) and with ``fused=True`` (one kernel over all tensors), because the
loop's cost per tensor differs between a model (many tensors) and its hypernetwork (one flat
base vector and a few small tensors).

Timing: one torch thread; each repeat runs every variant in turn (the order alternating between
repeats) for one warm-up step and ``STEPS`` timed steps on the same batch, so load from other
processes falls on all variants alike. Reported: median per-step wall time and thread CPU time
over repeats, and the ratio wrapped / unwrapped as the median of the per-repeat ratios (each
measured seconds apart) with its interquartile range.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hypernet_speed.py`` (or ``make benchmark``).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DModel
from sklearn.datasets import load_digits

from genfair.models import VAE
from genfair.hypernets import HyperNetwork

STEPS, LR = 5, 1e-3
VAE_REPEATS, UNET_REPEATS = 40, 15

Step = Callable[[torch.Tensor, torch.Generator], None]


def digits() -> torch.Tensor:
    """All 1,797 digits, ``(n, 64)`` in [0, 1]."""
    return torch.tensor(load_digits().data / 16.0, dtype=torch.float32)


def adam(params: Iterable[torch.nn.Parameter], fused: bool) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=LR, fused=True) if fused else torch.optim.Adam(params, lr=LR)


def vae_steps(heads: tuple[str, ...], fused: bool) -> tuple[dict[str, Step], dict[str, int]]:
    def build() -> VAE:
        torch.manual_seed(0)
        return VAE(sample_shape=(64,), hidden=(256, 256), latent_dim=16, batch_norm=True)

    model = build()
    optimiser = adam(model.parameters(), fused)

    def unwrapped(x: torch.Tensor, generator: torch.Generator) -> None:
        loss = model.loss(x[None], generator=generator).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    steps, sizes = {"unwrapped": unwrapped}, {"unwrapped": _parameters(model)}
    for head in heads:
        hnet = HyperNetwork(build(), sample_shape=(64,), head=head)
        steps[head], sizes[head] = _wrapped_vae_step(hnet, adam(hnet.parameters(), fused)), _parameters(hnet)
    return steps, sizes


def _wrapped_vae_step(hnet: HyperNetwork, optimiser: torch.optim.Optimizer) -> Step:
    def step(x: torch.Tensor, generator: torch.Generator) -> None:
        loss = hnet.run(hnet(x), "loss", x[None], generator=generator).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    return step


def unet_steps(fused: bool) -> tuple[dict[str, Step], dict[str, int]]:
    def build() -> UNet2DModel:
        torch.manual_seed(0)
        return UNet2DModel(
            sample_size=8,
            in_channels=1,
            out_channels=1,
            block_out_channels=(16, 32, 32),
            layers_per_block=1,
            norm_num_groups=8,
            down_block_types=("DownBlock2D",) * 3,
            up_block_types=("UpBlock2D",) * 3,
        )

    scheduler = DDPMScheduler(num_train_timesteps=1000)

    def epsilon_loss(forward: Callable[..., torch.Tensor], images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(images.shape, generator=generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (images.shape[0],), generator=generator)
        return torch.nn.functional.mse_loss(forward(scheduler.add_noise(images, noise, t), t), noise)

    model = build()
    optimiser = adam(model.parameters(), fused)

    def unwrapped(x: torch.Tensor, generator: torch.Generator) -> None:
        images = _images(x)
        loss = epsilon_loss(lambda noisy, t: model(noisy, t).sample, images, generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    hnet = HyperNetwork(build(), sample_shape=(1, 8, 8))
    hnet_optimiser = adam(hnet.parameters(), fused)

    def wrapped(x: torch.Tensor, generator: torch.Generator) -> None:
        images = _images(x)
        weights = hnet(images)
        loss = epsilon_loss(lambda noisy, t: hnet.run(weights, "forward", noisy, t).sample, images, generator)
        hnet_optimiser.zero_grad()
        loss.backward()
        hnet_optimiser.step()

    return {"unwrapped": unwrapped, "chunked": wrapped}, {"unwrapped": _parameters(model), "chunked": _parameters(hnet)}


def _images(x: torch.Tensor) -> torch.Tensor:
    """Digits ``(n, 64)`` in [0, 1] -> ``(n, 1, 8, 8)`` in [-1, 1]."""
    return (2.0 * x - 1.0).reshape(-1, 1, 8, 8)


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def measure(steps: dict[str, Step], *, batch: int, repeats: int, data: torch.Tensor) -> dict[str, object]:
    """Interleaved timing (see the module docstring): per-step milliseconds and paired ratios."""
    sampler = torch.Generator().manual_seed(0)
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for repeat in range(repeats):
        x = data[torch.randint(0, len(data), (batch,), generator=sampler)]
        order = list(steps) if repeat % 2 == 0 else list(reversed(steps))
        for name in order:
            generator = torch.Generator().manual_seed(repeat)
            steps[name](x, generator)  # warm-up
            wall_start, cpu_start = time.perf_counter(), time.thread_time()
            for _ in range(STEPS):
                steps[name](x, generator)
            wall[name].append((time.perf_counter() - wall_start) / STEPS * 1e3)
            cpu[name].append((time.thread_time() - cpu_start) / STEPS * 1e3)
    result: dict[str, object] = {
        "batch": batch,
        "repeats": repeats,
        "median_ms": {name: round(statistics.median(v), 3) for name, v in wall.items()},
        "median_cpu_ms": {name: round(statistics.median(v), 3) for name, v in cpu.items()},
    }
    for clock, times in (("wall", wall), ("cpu", cpu)):
        ratios = {}
        for name in steps:
            if name == "unwrapped":
                continue
            paired = [w / u for w, u in zip(times[name], times["unwrapped"])]
            q1, median, q3 = statistics.quantiles(paired, n=4)
            ratios[name] = {"median": round(median, 3), "iqr": [round(q1, 3), round(q3, 3)]}
        result[f"ratio_{clock}"] = ratios
    return result


def main() -> None:
    torch.set_num_threads(1)
    data = digits()
    cases = {}
    for fused in (False, True):
        adam_name = "adam_fused" if fused else "adam"
        steps, sizes = vae_steps(("chunked", "dense") if not fused else ("chunked",), fused)
        timing = measure(steps, batch=64, repeats=VAE_REPEATS, data=data)
        cases[f"vae_digits_b64_{adam_name}"] = {"parameters": sizes, **timing}
        if not fused:  # a larger batch: the target's cost grows with it, the hypernetwork's head's does not
            steps, sizes = vae_steps(("chunked",), fused)
            timing = measure(steps, batch=256, repeats=VAE_REPEATS // 2, data=data)
            cases[f"vae_digits_b256_{adam_name}"] = {"parameters": sizes, **timing}
        steps, sizes = unet_steps(fused)
        timing = measure(steps, batch=64, repeats=UNET_REPEATS, data=data)
        cases[f"unet_ddpm_b64_{adam_name}"] = {"parameters": sizes, **timing}
    result = {
        "vae": "VAE(sample_shape=(64,), hidden=(256, 256), latent_dim=16, batch_norm=True) on digits in [0, 1]",
        "unet": "UNet2DModel(sample_size=8, block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=8), DDPM epsilon loss",
        "hypernetwork": "HyperNetwork(model, sample_shape=...) with default options (residual, buffers='batch'), head as named",
        "steps_per_repeat": STEPS,
        "optimisers": {"adam": f"torch.optim.Adam(lr={LR})", "adam_fused": f"torch.optim.Adam(lr={LR}, fused=True)"},
        "goal": "chunked wrapped / unwrapped <= 1.5",
        "chunked_ratio_summary": {name: case["ratio_cpu"]["chunked"]["median"] for name, case in cases.items()},
        "cases": cases,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}",
    }
    out = Path(__file__).parent / "results" / "hypernet_speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

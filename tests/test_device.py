"""``device=auto|cpu|cuda|cuda:N``: resolving it, refusing bad values with one clear line, the
same random draws on every device, and (where CUDA is present) a deep loop on the GPU.

CI runs on the CPU; the CUDA test is skipped there.
"""

from __future__ import annotations

import re

import pytest
import torch

from _fixtures import skip_figures
from genfair.data import DigitsData
from genfair.devices import ALLOWED, module_device, multinomial, randint, randn, resolve_device
from genfair.errors import ConfigError
from genfair.estimators import EstimatorConfig, build_fit
from genfair.models import DDPMConfig, ModelCapabilities, VAEConfig, build_model
from genfair.loops import LoopConfig, simulate

CUDA = torch.cuda.is_available()
DATA = DigitsData(classes=[3, 6], proportions=[0.8, 0.2])
TINY_VAE = VAEConfig(hidden=[32], latent_dim=4)
TINY_DDPM = DDPMConfig(block_out_channels=[8, 16], norm_num_groups=4, num_train_timesteps=50, sample_steps=2)


def test_auto_is_cuda_when_present_else_cpu():
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("value", ["tpu", "CPU", "", "cuda:", "cuda:-1", "cuda:0:1", "gpu", 0, None, 1.5])
def test_bad_values_are_refused_naming_device_the_value_and_the_choices(value):
    with pytest.raises(ConfigError) as raised:
        resolve_device(value)
    message = str(raised.value)
    assert message.startswith("device must be ") and repr(value) in message, message
    assert all(word in message for word in ("'auto'", "'cpu'", "'cuda'", "'cuda:N'")), message
    assert len(message.splitlines()) == 1


def test_cuda_without_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for value in ("cuda", "cuda:0"):
        with pytest.raises(ConfigError, match=re.escape(f"device={value} but CUDA is not available")):
            resolve_device(value)
    assert resolve_device("auto") == torch.device("cpu")


def test_a_cuda_device_beyond_the_count_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match=re.escape("device=cuda:2 but this machine has 2 CUDA device(s), cuda:0 to cuda:1")):
        resolve_device("cuda:2")


def test_draws_come_from_the_generator_on_its_own_device():
    """The helpers draw exactly what torch draws on the CPU, then move (here: nowhere)."""
    g, h = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(randn((4, 2), generator=g, device="cpu"), torch.randn(4, 2, generator=h))
    assert torch.equal(randint(7, (5,), generator=g, device="cpu"), torch.randint(7, (5,), generator=h))
    probs = torch.tensor([0.2, 0.8])
    assert torch.equal(multinomial(probs, 6, generator=g), torch.multinomial(probs, 6, replacement=True, generator=h))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        first = randn((3,), generator=None, device="cpu")
        torch.manual_seed(1)
        assert torch.equal(first, torch.randn(3))


def test_module_device():
    assert module_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert module_device(torch.nn.ReLU()) == torch.device("cpu")


def _tiny_loop(model_config, device: torch.device, estimator: str = "mle"):
    torch.manual_seed(0)
    model = build_model(model_config, sample_shape=DATA.sample_shape, num_classes=2).to(device)
    config = EstimatorConfig(name=estimator, steps=3, lr=1e-3, batch_size=16, hidden=16, embedding_dim=8)
    fit = build_fit(config, sample_shape=DATA.sample_shape, model=ModelCapabilities(positive={}, per_replicate=False, closed_form=False, adversarial=False, num_classes=2))
    loop = LoopConfig(generations=2, n_real=32, n_synthetic=32, replicates=1)
    labels = []

    def measure(fitted, train, generator):
        assert train.x.device.type == device.type and module_device(fitted).type == device.type
        labels.append(train.y.cpu())
        return {"mean_pixel/all": train.x.flatten(1).mean(1)}

    result = simulate(data=DATA, model=model, config=loop, seed=0, measure=measure, fit=fit)
    return result, labels


@pytest.mark.skipif(not CUDA, reason="CUDA is not available")
@pytest.mark.parametrize(("model_config", "estimator"), [(TINY_VAE, "mle"), (TINY_VAE, "ple"), (TINY_DDPM, "mle")],
                         ids=["vae-mle", "vae-ple", "ddpm-mle"])
def test_a_tiny_deep_loop_runs_on_cuda_with_the_cpu_draws(model_config, estimator):
    on_gpu, gpu_labels = _tiny_loop(model_config, torch.device("cuda"), estimator)
    on_cpu, cpu_labels = _tiny_loop(model_config, torch.device("cpu"), estimator)
    assert module_device(on_gpu.model).type == "cuda"
    assert all(torch.isfinite(p).all() for p in on_gpu.model.parameters())
    # Generation 0 trains on the same real draw; the synthetic classes of generation 1 come from
    # the same CPU generator and the same class counts, so they match too.
    assert torch.equal(gpu_labels[0], cpu_labels[0]) and torch.equal(gpu_labels[1], cpu_labels[1])
    torch.testing.assert_close(on_gpu.values("mean_pixel/all")[0], on_cpu.values("mean_pixel/all")[0])


@pytest.mark.skipif(CUDA, reason="device=auto is CUDA here, which rounds differently from the CPU")
def test_a_cpu_run_equals_an_auto_run_byte_for_byte(tmp_path, monkeypatch):
    from genfair.evaluation import EvaluationConfig
    from genfair.experiment import Arm, run_experiment

    skip_figures(monkeypatch)  # test_cli draws them

    loop = LoopConfig(generations=2, n_real=40, n_synthetic=40, replicates=1)
    estimator = EstimatorConfig(steps=3, lr=1e-3, batch_size=16)
    arm = Arm("mle", DATA, TINY_VAE, loop, estimator, EvaluationConfig(samples=60, bootstrap=10, grid=2))
    for device in ("cpu", "auto"):
        result = run_experiment([arm], seed=0, run_dir=tmp_path / device, device=device)
        assert result.summary["device"] == "cpu"
    assert (tmp_path / "cpu" / "metrics.csv").read_bytes() == (tmp_path / "auto" / "metrics.csv").read_bytes()
    model = "arms/mle/model/model.safetensors"
    assert (tmp_path / "cpu" / model).read_bytes() == (tmp_path / "auto" / model).read_bytes()


def test_the_command_refuses_a_bad_device_in_one_line(tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    genfair = Path(sys.executable).with_name("genfair")
    command = [str(genfair) if genfair.exists() else shutil.which("genfair"), f"hydra.run.dir={tmp_path / 'run'}", "device=tpu"]
    env = {**{k: v for k, v in os.environ.items() if k not in ("GENFAIR_DEBUG", "HYDRA_FULL_ERROR")}, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [f"genfair: error: device must be {ALLOWED}, got 'tpu'"]
    assert not (tmp_path / "run" / "arms").exists()

"""Deep models saved as safetensors beside their config and rebuilt from them: exact round trips,
and one ConfigError naming the file for every missing, truncated, altered or unknown piece."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from genfair.errors import ConfigError
from genfair.models import DDPM, VAE, DDPMConfig, VAEConfig, build_model, load_model, save_model

SHAPE = (1, 8, 8)
CONFIGS = {
    "vae_mlp": VAEConfig(hidden=[16], latent_dim=3, batch_norm=True, conditional=False),
    "vae_mlp_conditional": VAEConfig(hidden=[16, 8], latent_dim=3),
    "vae_conv": VAEConfig(architecture="conv", hidden=[4, 8], latent_dim=3, batch_norm=True, conditional=False),
    "vae_conv_conditional": VAEConfig(architecture="conv", hidden=[4], latent_dim=2),
    "ddpm": DDPMConfig(block_out_channels=[8], norm_num_groups=4, conditional=False, sampler="ddpm", sample_steps=3),
    "ddpm_conditional": DDPMConfig(
        block_out_channels=[8, 16],
        norm_num_groups=4,
        num_train_timesteps=30,
        beta_schedule="scaled_linear",
        sample_steps=3,
    ),
}


def _trained(config, *, seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The model after two Adam steps (so weights, running statistics and class shares have all
    moved from their initial values), with its data."""
    torch.manual_seed(seed)
    model = build_model(config, sample_shape=SHAPE, num_classes=3)
    x, y = torch.rand(1, 12, *SHAPE), torch.arange(12).remainder(3)[None]
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        optimiser.zero_grad()
        model.loss(x, y, generator=torch.Generator().manual_seed(1)).mean().backward()
        optimiser.step()
    return model, x, y


def _outputs(model, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        loss = model.loss(x, y, generator=torch.Generator().manual_seed(2))
    return loss, model.sample(5, generator=torch.Generator().manual_seed(3))


def _named(path: Path) -> str:
    """``path`` as a regular expression that matches it literally."""
    return re.escape(str(path))


def _saved(tmp_path: Path, name: str = "vae_mlp_conditional") -> Path:
    model, _, _ = _trained(CONFIGS[name])
    save_model(tmp_path, model, CONFIGS[name])
    return tmp_path


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_round_trip_gives_identical_loss_and_samples(tmp_path, name):
    model, x, y = _trained(CONFIGS[name])
    save_model(tmp_path / "run", model, CONFIGS[name])
    torch.manual_seed(99)  # a fresh build would have other weights
    loaded = load_model(tmp_path / "run")
    assert type(loaded) is type(model) and loaded.training
    assert loaded.sample_shape == model.sample_shape and loaded.num_classes == model.num_classes
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    expected, got = _outputs(model, x, y), _outputs(loaded, x, y)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_the_json_records_config_shape_classes_and_checksum(tmp_path):
    config = CONFIGS["ddpm_conditional"]
    model, _, _ = _trained(config)
    save_model(tmp_path, model.eval(), config)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["config_class"] == "DDPMConfig" and meta["config"]["block_out_channels"] == [8, 16]
    assert meta["sample_shape"] == [1, 8, 8] and meta["num_classes"] == 3 and meta["dtype"] == "float32"
    assert meta["training"] is False and len(meta["sha256"]) == 64
    with safe_open(tmp_path / "model.safetensors", framework="pt") as weights:  # not a pickle
        assert set(weights.keys()) == set(model.state_dict())
    assert not load_model(tmp_path).training


def test_dtype_is_kept(tmp_path):
    model = VAE(sample_shape=SHAPE, hidden=(8,), latent_dim=2).double()
    save_model(tmp_path, model, VAEConfig(hidden=[8], latent_dim=2, conditional=False))
    loaded = load_model(tmp_path)
    assert loaded.raw_scale.dtype == torch.float64
    x = torch.rand(1, 4, *SHAPE, dtype=torch.float64)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(loaded.loss(x, generator=g()), model.loss(x, generator=g()))


def test_altered_weights_are_refused(tmp_path):
    folder = _saved(tmp_path)
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=rf"checkpoint {_named(path)} does not match its recorded sha256"):
        load_model(folder)


def test_truncated_weights_are_refused_even_with_a_matching_checksum(tmp_path):
    import hashlib

    folder = _saved(tmp_path)
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ConfigError, match=rf"checkpoint {_named(path)} does not match its recorded sha256"):
        load_model(folder)
    meta = json.loads((folder / "model.json").read_text())
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=rf"checkpoint {_named(path)} cannot be read .*: it is truncated or not"):
        load_model(folder)


def test_missing_files_are_named(tmp_path):
    folder = _saved(tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match=rf"cannot read checkpoint {_named(folder / 'model.safetensors')}"):
        load_model(folder)
    with pytest.raises(ConfigError, match=rf"cannot read {_named(tmp_path / 'elsewhere' / 'model.json')}"):
        load_model(tmp_path / "elsewhere")


def _edit_json(folder: Path, edit) -> Path:
    path = folder / "model.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda m: m.update(config_class="GANConfig"),
            r"config_class must be one of \['DDPMConfig', 'VAEConfig', 'CustomModelConfig'\], got 'GANConfig'",
        ),
        (lambda m: m["config"].update(latent_dim=0), "latent_dim must be a positive integer, got 0"),
        (lambda m: m["config"].update(depth=3), "unexpected keyword argument 'depth'"),
        (lambda m: m.pop("sha256"), "missing key 'sha256'"),
        (lambda m: m.update(format="other/2"), r"format must be 'genfair-model/1', got 'other/2'"),
        (lambda m: m.update(dtype="int8"), r"dtype must be one of \['float32', 'float64', 'float16', 'bfloat16'\]"),
        (lambda m: m.update(sample_shape=[1, 8, 0]), "sample_shape must be a non-empty tuple of positive integers"),
    ],
)
def test_bad_descriptions_are_refused_naming_the_json(tmp_path, edit, message):
    path = _edit_json(_saved(tmp_path), edit)
    with pytest.raises(ConfigError, match=rf"{_named(path)} does not describe a genfair model: .*{message}"):
        load_model(tmp_path)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    meta_path = _edit_json(_saved(tmp_path), lambda m: m["config"].update(latent_dim=5))
    weights = tmp_path / "model.safetensors"
    message = rf"checkpoint {_named(weights)} does not fit the model in {_named(meta_path)}: .*size mismatch"
    with pytest.raises(ConfigError, match=message):
        load_model(tmp_path)


def test_unreadable_json_is_named(tmp_path):
    folder = _saved(tmp_path)
    (folder / "model.json").write_text('{"format": ')
    with pytest.raises(ConfigError, match=rf"cannot read {_named(folder / 'model.json')}"):
        load_model(folder)


def test_save_refuses_a_model_its_config_does_not_build(tmp_path):
    model = DDPM(sample_shape=SHAPE, block_out_channels=(8,), norm_num_groups=4)
    with pytest.raises(ConfigError, match=r"model does not match DDPMConfig: tensors \[.*\] differ"):
        save_model(tmp_path, model, DDPMConfig(block_out_channels=[16], norm_num_groups=4))
    with pytest.raises(ConfigError, match=r"config must be one of \['DDPMConfig', 'VAEConfig', 'CustomModelConfig'\], got dict"):
        save_model(tmp_path, model, {"name": "ddpm"})
    assert not (tmp_path / "model.json").exists()


def test_build_model_refuses_unknown_configs():
    with pytest.raises(ConfigError, match=r"config must be one of \['DDPMConfig', 'VAEConfig', 'CustomModelConfig'\], got str"):
        build_model("vae", sample_shape=SHAPE, num_classes=None)

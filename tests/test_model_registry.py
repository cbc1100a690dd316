"""The registered models (docs/architecture.md, "Where to add each thing"): a built-in model is its
class, its config dataclass and its YAML, ``configs/model/<name>.yaml``, which names the config
class through ``_target_`` and extends ``<name>_schema``; the schemas that the command line
stores, the configs that ``build_model`` builds and that checkpoints name, and the models listed
anywhere are what ``configs/model/`` registers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest
import torch
from _fixtures import registry_copy
from hydra import compose, initialize_config_dir, initialize_config_module
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf
from torch import nn

from genfair.cli import arms_from_config, register_configs
from genfair.data import ClassMixtureData
from genfair.errors import ConfigError
from genfair.experiment import Arm, run_experiment
from genfair.loops import LoopConfig
from genfair.models import (
    AnalyticModelConfig, DDPMConfig, VAEConfig, build_model, load_model, registered_model_configs, registered_models,
    save_model,
)
from genfair.models import _registry
from genfair._run_dir import fingerprint
from genfair.targets import import_target, read_registry

register_configs()
MODEL_FOLDER = resources.files("genfair.configs") / "model"
BUILT_IN = sorted(p.name.removesuffix(".yaml") for p in MODEL_FOLDER.iterdir()
                  if p.name.endswith(".yaml") and p.name != "custom.yaml")
DATA = {"gaussian": ["data=gaussian"]}  # what each model needs beside the default experiment's data


class TinyModel(nn.Module):
    """A diagonal Gaussian with learned class shares: the smallest model with the loop's protocol."""

    def __init__(self, sample_shape: Sequence[int], num_classes: int | None, scale: float) -> None:
        super().__init__()
        self.sample_shape, self.num_classes = tuple(sample_shape), num_classes
        self.mean = nn.Parameter(torch.zeros(self.sample_shape))
        self.log_scale = nn.Parameter(torch.full(self.sample_shape, float(scale)).log())

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = (x - self.mean) / self.log_scale.exp()
        return (0.5 * z**2 + self.log_scale).flatten(2).sum(-1)

    def sample(self, n: int, *, labels=None, generator=None) -> torch.Tensor:
        noise = torch.randn((1, n, *self.sample_shape), generator=generator)
        return self.mean + noise * self.log_scale.exp()


@dataclass
class TinyConfig:
    """A model added the built-in way: this config class and a YAML naming it."""

    name: str = "tiny"
    _target_: str | None = None
    scale: float = 1.0

    def __post_init__(self) -> None:
        self._target_ = _registry.registered_target(self)

    def build(self, *, sample_shape: Sequence[int], num_classes: int | None) -> TinyModel:
        return TinyModel(sample_shape, num_classes, self.scale)


TINY_YAML = f"defaults:\n  - tiny_schema\n\nname: tiny\n_target_: {__name__}.TinyConfig\nscale: 0.5\n"


@pytest.fixture
def model_folder(tmp_path, monkeypatch) -> Iterator[Path]:
    """A copy of configs/model/ that :func:`registered_models` reads instead of genfair's own; the
    schemas a test stored from it (``register_configs``) are taken out of the ConfigStore after."""
    stored = ConfigStore.instance().repo["model"]
    before = set(stored)
    yield from registry_copy(tmp_path, monkeypatch, "model", _registry, _registry.registered_models)
    for added in set(stored) - before:
        del stored[added]


def _compose(overrides: list[str]):
    with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    cfg.arms = {}  # one arm, so that the experiment's arms do not set the model themselves
    return cfg


def test_the_models_are_the_yaml_files_that_name_a_config_class():
    assert list(registered_models()) == BUILT_IN == ["class_mixture", "ddpm", "gaussian", "vae"]


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_yaml_names_the_config_class_that_its_option_builds(name):
    """``model=<name>`` on the command line composes against the class the YAML names (stored as
    ``<name>_schema``) and gives an instance of it; the same class is what a notebook's
    ``Class(name=...)`` fills in."""
    named = read_registry(MODEL_FOLDER, name_key="name")[name]["_target_"]
    config_class = import_target(named, key="test")
    schema = ConfigStore.instance().repo["model"][f"{name}_schema.yaml"].node
    assert OmegaConf.get_type(schema) is config_class is registered_model_configs()[name]
    (arm,) = arms_from_config(_compose([f"model={name}", *DATA.get(name, [])]))
    assert type(arm.model) is config_class and arm.model.name == name and arm.model._target_ == named
    assert config_class(name=name)._target_ == named


def test_a_model_added_by_its_class_and_its_yaml_alone_composes_builds_and_saves(model_folder, tmp_path):
    """A new built-in model: one YAML naming its config class, beside the others. The command
    line stores its schema and composes ``model=tiny`` (from a copy of configs/, as Hydra reads
    genfair's own from the installed package); ``build_model`` builds it and a checkpoint
    naming it loads (a hand-kept table of configs would refuse both)."""
    (model_folder / "tiny.yaml").write_text(TINY_YAML)
    assert list(registered_models()) == ["class_mixture", "ddpm", "gaussian", "tiny", "vae"]
    register_configs()
    stored = ConfigStore.instance().repo["model"]
    assert OmegaConf.get_type(stored["tiny_schema.yaml"].node) is TinyConfig
    configs = resources.files("genfair.configs")
    for entry in configs.iterdir():  # the rest of configs/ beside the copied model/
        if entry.name != "model" and (entry.name.endswith(".yaml") or entry.is_dir()) and entry.name != "__pycache__":
            (shutil.copytree if entry.is_dir() else shutil.copy)(entry, tmp_path / entry.name)
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["model=tiny"])
    cfg.arms = {}
    (arm,) = arms_from_config(cfg)
    assert arm.model == TinyConfig(scale=0.5) and arm.model._target_ == f"{__name__}.TinyConfig"
    model = build_model(arm.model, sample_shape=(4,), num_classes=2)
    assert isinstance(model, TinyModel) and model.log_scale.exp()[0].item() == pytest.approx(0.5)
    save_model(tmp_path / "saved", model, arm.model)
    assert json.loads((tmp_path / "saved" / "model.json").read_text())["config_class"] == "TinyConfig"
    assert isinstance(load_model(tmp_path / "saved"), TinyModel)


def test_a_built_in_name_builds_the_class_its_yaml_names(model_folder):
    """Point vae.yaml at another config class: ``name=vae`` follows the YAML, not a table of models."""
    (model_folder / "vae.yaml").write_text(f"defaults:\n  - vae_schema\n\nname: vae\n_target_: {__name__}.TinyConfig\n")
    assert registered_models()["vae"] == f"{__name__}.TinyConfig"
    assert TinyConfig(name="vae")._target_ == f"{__name__}.TinyConfig"
    with pytest.raises(ConfigError, match=rf"^name must be one of \[\], got 'vae', whose config class is {__name__}.TinyConfig"):
        VAEConfig()


def test_a_model_name_override_switches_only_between_the_models_of_one_config_class():
    """``model.name`` picks another model of the same config class (the analytic ones); another
    class's model is its own group option."""
    (arm,) = arms_from_config(_compose(["model=class_mixture", "model.name=gaussian"]))
    assert (arm.model.name, arm.model._target_) == ("gaussian", "genfair.models.AnalyticModelConfig")
    with pytest.raises(ConfigError, match=r"^model.name must be one of \['vae'\], got 'ddpm', whose config class is "
                                          r"genfair.models.DDPMConfig: pick it with model=ddpm$"):
        arms_from_config(_compose(["model=vae", "model.name=ddpm"]))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: AnalyticModelConfig(name="gausian"), r"^name must be one of \['class_mixture', 'gaussian'\], got 'gausian'$"),
        (lambda: DDPMConfig(_target_="pkg.mod.Model"),
         r"^_target_=pkg.mod.Model on model=ddpm: a built-in model's config class is its YAML's "
         r"\(genfair.models.DDPMConfig\); a model of your own runs with model=custom$"),
        (lambda: arms_from_config(_compose(["model=vae", "model._target_=pkg.mod.Model"])),
         r"^model._target_=pkg.mod.Model on model=vae: a built-in model's config class is its YAML's "
         r"\(genfair.models.VAEConfig\); a model of your own runs with model=custom$"),
        (lambda: build_model(AnalyticModelConfig(), sample_shape=(2,), num_classes=2),
         r"^config must be one of \['DDPMConfig', 'VAEConfig', 'CustomModelConfig'\], got AnalyticModelConfig$"),
    ],
    ids=["typo", "built_in_with_a_users_class", "on_the_command_line", "build_an_analytic_config"],
)
def test_refusals_name_the_key_the_value_and_what_is_allowed(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_a_yaml_naming_no_config_dataclass_is_refused(model_folder):
    (model_folder / "tiny.yaml").write_text("name: tiny\n_target_: genfair.errors.ConfigError\n")
    with pytest.raises(ConfigError, match=r"^model._target_=genfair.errors.ConfigError must name a config dataclass "
                                          r"\(a built-in model's YAML names its config class; a model of your own runs "
                                          r"with model=custom\), got <class 'genfair.errors.ConfigError'>$"):
        registered_model_configs()


@pytest.mark.parametrize("config", [VAEConfig(), DDPMConfig(), AnalyticModelConfig()], ids=lambda c: c.name)
def test_the_config_class_stays_out_of_the_fingerprint(config):
    data = ClassMixtureData(proportions=[0.9, 0.1], dim=2)
    described = fingerprint([Arm("a", data, config, LoopConfig())], seed=0)["arms"]["a"]["model"]
    assert described["name"] == config.name and "_target_" not in described


@pytest.mark.usefixtures("no_figures")
def test_a_run_from_before_the_models_named_their_class_resumes(tmp_path):
    """A run directory written before the models had ``_target_``: its fingerprint's model holds
    the other fields only, and the run resumes."""
    data = ClassMixtureData(proportions=[0.9, 0.1], dim=2)

    def arms(generations: int) -> list[Arm]:
        return [Arm("mle", data, AnalyticModelConfig(), LoopConfig(generations=generations, n_real=30, replicates=8))]

    run_experiment(arms(2), seed=0, run_dir=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    before = {"name": "class_mixture", "estimator": "mle", "min_class_samples": 2}  # as the runs from before stored it
    assert summary["fingerprint"]["arms"]["mle"]["model"] == before
    summary["fingerprint"]["arms"]["mle"]["model"] = before
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert run_experiment(arms(3), seed=0, run_dir=tmp_path).summary["status"] == "complete"


def test_a_checkpoint_from_before_the_models_named_their_class_loads(tmp_path):
    """A checkpoint's ``model.json`` holds the config without ``_target_``, as before: one saved
    then loads, and one saved now reads the same."""
    config = VAEConfig(hidden=[8], latent_dim=2)
    save_model(tmp_path, config.build(sample_shape=(4,), num_classes=2), config)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["config"] == {"name": "vae", "architecture": "mlp", "hidden": [8], "latent_dim": 2,
                              "batch_norm": False, "conditional": True, "min_scale": 0.01}
    assert type(load_model(tmp_path)).__name__ == "VAE"

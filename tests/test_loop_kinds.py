"""The registered loop kinds (docs/architecture.md, "Where to add each thing"): a built-in loop
kind is its rule class and its YAML, ``configs/loop/<kind>.yaml``, which names the rule through
``training_set._target_``; the runner builds every rule, built-in or a user's, with
``training_rule``, and the kinds listed anywhere are what ``configs/loop/`` registers."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import torch
from _fixtures import registry_copy
from hydra import compose, initialize_config_module

from genfair.cli import arms_from_config, register_configs
from genfair.data import GaussianData
from genfair.errors import ConfigError
from genfair.loops import LOOP_KINDS, LoopConfig, read_kinds, simulate, training_rule
from genfair.loops import _registry
from genfair.models import ClassGaussianModel
from genfair.targets import import_target

register_configs()
LOOP_FOLDER = resources.files("genfair.configs") / "loop"
BUILT_IN = sorted(p.name.removesuffix(".yaml") for p in LOOP_FOLDER.iterdir()
                  if p.name.endswith(".yaml") and p.name != "custom.yaml")


class Hoard:
    """A kind added the built-in way: generation 0's real set plus the last two synthetic sets."""

    keeps_history = True

    def size(self, generation, *, n_real, n_synthetic):
        return n_real + min(generation, 2) * n_synthetic

    def compose(self, generation, *, real, synthetic, draw_real, generator):
        from genfair.data import Batch

        return Batch.concat([real, *synthetic[-2:]])


@pytest.fixture
def loop_folder(tmp_path, monkeypatch) -> Iterator[Path]:
    """A copy of configs/loop/ that :func:`registered_kinds` reads instead of genfair's own."""
    yield from registry_copy(tmp_path, monkeypatch, "loop", _registry, _registry.registered_kinds)


def test_the_kinds_are_the_yaml_files_that_name_a_rule():
    assert list(LOOP_KINDS) == BUILT_IN == ["accumulate", "augment", "fresh", "fully_synthetic"]


@pytest.mark.parametrize("kind", BUILT_IN)
def test_each_yaml_builds_the_rule_it_names_through_training_rule(kind):
    """``loop=<kind>`` on the command line and ``LoopConfig(kind=...)`` in a notebook build the
    class the YAML names, through the same path as a user's ``_target_``."""
    named = read_kinds(LOOP_FOLDER)[kind]["_target_"]
    with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=class_mixture_mad", f"loop={kind}"])
    cfg.arms = {}
    (arm,) = arms_from_config(cfg)
    assert arm.loop.kind == kind and arm.loop.training_set == {"_target_": named}
    assert type(training_rule(arm.loop)) is import_target(named, key="test")
    assert type(training_rule(LoopConfig(kind=kind))) is import_target(named, key="test")


@pytest.mark.parametrize("kind", BUILT_IN)
def test_a_kind_override_over_another_kinds_group_runs_its_own_rule(kind):
    """``loop.kind=accumulate`` (an arm's override) over ``loop=fully_synthetic``'s node."""
    with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=class_mixture_mad"])  # loop=fully_synthetic
    cfg.arms = {"a": [f"loop.kind={kind}"]}
    (arm,) = arms_from_config(cfg)
    assert arm.loop.training_set == read_kinds(LOOP_FOLDER)[kind]


def test_a_kind_added_by_its_class_and_its_yaml_alone_runs(loop_folder):
    """A new built-in kind: one YAML naming a class, beside the others; LoopConfig accepts the
    kind and simulate composes its training sets (a hand-kept list would refuse it)."""
    (loop_folder / "hoard.yaml").write_text(
        f"defaults:\n  - loop_schema\n\nkind: hoard\ntraining_set:\n  _target_: {__name__}.Hoard\n"
    )
    assert list(_registry.registered_kinds()) == ["accumulate", "augment", "fresh", "fully_synthetic", "hoard"]
    config = LoopConfig(kind="hoard", generations=5, n_real=6, n_synthetic=4, replicates=3)
    assert config.built_in and config.training_set == {"_target_": f"{__name__}.Hoard"}
    sizes = simulate(
        data=GaussianData(), model=ClassGaussianModel(replicates=3), config=config, seed=0,
        measure=lambda model, train, generator: {"size/all": torch.full((3,), float(train.x.shape[1]))},
    ).values("size/all")[:, 0]
    assert sizes.tolist() == [6, 10, 14, 14, 14]


def test_a_built_in_kind_runs_the_rule_its_yaml_names(loop_folder):
    """Point accumulate.yaml at another class: the loop follows the YAML, not a table of kinds."""
    (loop_folder / "accumulate.yaml").write_text(f"kind: accumulate\ntraining_set:\n  _target_: {__name__}.Hoard\n")
    config = LoopConfig(kind="accumulate", generations=4, n_real=6, n_synthetic=4, replicates=3)
    assert type(training_rule(config)) is Hoard


def test_a_yaml_whose_kind_is_not_its_name_is_refused(tmp_path):
    (tmp_path / "hoard.yaml").write_text("kind: hord\ntraining_set:\n  _target_: genfair.loops.Accumulate\n")
    with pytest.raises(ConfigError, match=r"hoard.yaml: kind must be the file's name 'hoard', got 'hord'"):
        read_kinds(tmp_path)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"kind": "acumulate"}, r"^kind must be one of \['accumulate', 'augment', 'fresh', 'fully_synthetic', 'custom'\], got 'acumulate'$"),
        ({"kind": "custom"}, r"^kind=custom needs training_set=\{_target_: package.module.Name, ...\}"),
        ({"kind": "accumulate", "training_set": {"_target_": "pkg.mod.Rule"}},
         r"^kind=accumulate is a built-in loop kind with its own rule \(genfair.loops.Accumulate\), got "
         r"training_set=\{'_target_': 'pkg.mod.Rule'\}; a rule of your own runs with kind=custom$"),
    ],
    ids=["typo", "custom_without_rule", "built_in_with_a_users_rule"],
)
def test_refusals_name_the_key_the_value_and_what_is_allowed(arguments, message):
    with pytest.raises(ConfigError, match=message):
        LoopConfig(**arguments)

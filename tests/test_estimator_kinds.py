"""The registered estimators (docs/architecture.md, "Where to add each thing"): a built-in
estimator is its class and its YAML, ``configs/estimator/<name>.yaml``, which names the class
through ``_target_``; ``build_fit`` asks that class for the fit, and the estimators listed
anywhere are what ``configs/estimator/`` registers."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from _fixtures import registry_copy
from hydra import compose, initialize_config_module

from genfair._run_dir import fingerprint
from genfair.cli import arms_from_config, register_configs
from genfair.data import ClassMixtureData
from genfair.errors import ConfigError
from genfair.estimators import (
    ESTIMATORS, MLE, AdversarialFit, AnchoredFit, EstimatorConfig, GradientFit, HypernetworkFit, build_fit,
)
from genfair.estimators import _registry
from genfair.loops import LoopConfig, fit_closed_form, simulate
from genfair.models import ClassGaussianModel, ModelCapabilities
from genfair.remedies import RemedyConfig
from genfair.targets import import_target, read_registry

register_configs()
ESTIMATOR_FOLDER = resources.files("genfair.configs") / "estimator"
BUILT_IN = sorted(p.name.removesuffix(".yaml") for p in ESTIMATOR_FOLDER.iterdir()
                  if p.name.endswith(".yaml") and p.name != "custom.yaml")
ANALYTIC = ModelCapabilities(positive=ClassGaussianModel.CONSTRAINTS, per_replicate=True, closed_form=True,
                             adversarial=False, num_classes=2)
DEEP = ModelCapabilities(positive={}, per_replicate=False, closed_form=False, adversarial=False, num_classes=2)
ADVERSARIAL = ModelCapabilities(positive={}, per_replicate=False, closed_form=False, adversarial=True, num_classes=2)


class HalfStep(MLE):
    """An estimator added the built-in way: the closed form, then halfway back to the previous
    generation's weights (so its loop differs from mle's)."""

    def likelihood_fit(self, config, parts):
        def fit(model, train, generator, context):
            before = {name: value.detach().clone() for name, value in model.named_parameters()}
            fit_closed_form(model, train, generator, context)
            if context.generation > 0:
                for name, value in model.named_parameters():
                    value.data = (value.data + before[name]) / 2
            return model

        return fit


@pytest.fixture
def estimator_folder(tmp_path, monkeypatch) -> Iterator[Path]:
    """A copy of configs/estimator/ that :func:`registered_estimators` reads instead of genfair's own."""
    yield from registry_copy(tmp_path, monkeypatch, "estimator", _registry, _registry.registered_estimators)


def test_the_estimators_are_the_yaml_files_that_name_a_class():
    assert list(ESTIMATORS) == BUILT_IN == ["anchor", "hyper_mle", "mle", "ple"]


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_yaml_names_the_class_its_config_runs(name):
    """``estimator=<name>`` on the command line, an arm's ``estimator.name=<name>`` over another
    group's node, and ``EstimatorConfig(name=...)`` in a notebook all run the class the YAML names."""
    named = read_registry(ESTIMATOR_FOLDER, name_key="name")[name]["_target_"]
    other = "ple" if name == "mle" else "mle"
    arms = []
    for group, override in ((name, []), (other, [f"estimator.name={name}"])):
        with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
            cfg = compose(config_name="config", overrides=["experiment=class_mixture_mad", f"estimator={group}"])
        cfg.arms = {"a": override}
        arms += arms_from_config(cfg)
    assert [arm.estimator._target_ for arm in arms] == [named, named]
    assert {type(arm.estimator.kind) for arm in arms} == {import_target(named, key="test")}
    assert type(EstimatorConfig(name=name).kind) is import_target(named, key="test")


@pytest.mark.parametrize(
    "name, options, model, remedy, fit",
    [
        ("mle", {}, ANALYTIC, "none", fit_closed_form),
        ("mle", {}, ANALYTIC, "reweight", AnchoredFit),
        ("mle", {}, DEEP, "none", GradientFit),
        ("mle", {}, ADVERSARIAL, "none", AdversarialFit),
        ("hyper_mle", {}, ANALYTIC, "none", HypernetworkFit),
        ("hyper_mle", {}, DEEP, "none", HypernetworkFit),
        ("ple", {}, ANALYTIC, "none", HypernetworkFit),
        ("anchor", {}, ANALYTIC, "none", AnchoredFit),
        ("anchor", {}, DEEP, "none", GradientFit),
        ("anchor", {"hypernetwork": True}, ANALYTIC, "none", HypernetworkFit),
    ],
)
def test_each_class_builds_the_fit_for_what_the_model_declares(name, options, model, remedy, fit):
    built = build_fit(EstimatorConfig(name=name, **options), model=model, sample_shape=(2,),
                      remedy=RemedyConfig(name=remedy))
    assert built is fit if fit is fit_closed_form else type(built) is fit


@pytest.mark.parametrize(
    "name, options, hypernetwork, anchors, lam",
    [
        ("mle", {}, False, False, 0.0),
        ("hyper_mle", {}, True, False, 0.0),
        ("ple", {}, True, False, 0.1),
        ("anchor", {}, False, True, 0.0),
        ("anchor", {"hypernetwork": True}, True, True, 0.0),
    ],
)
def test_what_each_class_declares_reaches_the_fit(name, options, hypernetwork, anchors, lam):
    """Whether it trains through H, anchors to generation 0, and pays PLE's penalty (the
    objective's ``lam``; the anchor adds its own term)."""
    config = EstimatorConfig(name=name, **options)
    assert (config.uses_hypernetwork, config.anchors_to_generation_0, config.ple_config().lam) == (hypernetwork, anchors, lam)


def test_an_estimator_added_by_its_class_and_its_yaml_alone_runs(estimator_folder):
    """A new built-in estimator: one YAML naming a class, beside the others; EstimatorConfig
    accepts its name and the loop runs its fit (a hand-kept list would refuse it)."""
    (estimator_folder / "half_step.yaml").write_text(
        f"defaults:\n  - estimator_schema\n\nname: half_step\n_target_: {__name__}.HalfStep\n"
    )
    assert list(_registry.registered_estimators()) == ["anchor", "half_step", "hyper_mle", "mle", "ple"]
    data = ClassMixtureData(proportions=[0.8, 0.2], dim=2)
    config = LoopConfig(generations=3, n_real=50, n_synthetic=50, replicates=4)

    def means(name):
        fit = build_fit(EstimatorConfig(name=name), model=ANALYTIC, sample_shape=(2,))
        result = simulate(data=data, model=ClassGaussianModel(2, 2, replicates=4), config=config, seed=0, fit=fit,
                          measure=lambda model, train, generator: {"mean/all": model.means[:, 0, 0].detach()})
        return result.values("mean/all")

    half, mle = means("half_step"), means("mle")
    np.testing.assert_array_equal(half[0], mle[0])  # generation 0: the same closed form
    assert not np.allclose(half[1:], mle[1:])


def test_a_built_in_name_runs_the_class_its_yaml_names(estimator_folder):
    """Point mle.yaml at another class: the fit follows the YAML, not a table of estimators."""
    (estimator_folder / "mle.yaml").write_text(f"name: mle\n_target_: {__name__}.HalfStep\n")
    assert type(EstimatorConfig(name="mle").kind) is HalfStep


def test_a_yaml_whose_name_is_not_its_file_is_refused(tmp_path):
    (tmp_path / "half_step.yaml").write_text("name: half\n_target_: genfair.estimators.MLE\n")
    with pytest.raises(ConfigError, match=r"half_step.yaml: name must be the file's name 'half_step', got 'half'"):
        read_registry(tmp_path, name_key="name")


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"name": "mel"}, r"^name must be one of \['anchor', 'hyper_mle', 'mle', 'ple'\], got 'mel'$"),
        ({"name": "ple", "_target_": "pkg.mod.Estimator"},
         r"^_target_=pkg.mod.Estimator on estimator=ple: a built-in estimator's class is its YAML's "
         r"\(genfair.estimators.PLE\); an estimator of your own runs with estimator=custom$"),
    ],
    ids=["typo", "built_in_with_a_users_class"],
)
def test_refusals_name_the_key_the_value_and_what_is_allowed(arguments, message):
    with pytest.raises(ConfigError, match=message):
        EstimatorConfig(**arguments)


def test_the_class_stays_out_of_the_fingerprint_so_earlier_runs_resume():
    """A run directory written before the estimators named their class has no ``_target_`` in
    its fingerprint; the name alone says which class runs."""
    with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=class_mixture_mad", "estimator=ple"])
    cfg.arms = {}
    (arm,) = arms_from_config(cfg)
    described = fingerprint([arm], seed=0)["arms"][arm.name]["estimator"]
    assert described["name"] == "ple" and "_target_" not in described


@pytest.mark.parametrize("name", ["hyper_mle", "ple", "anchor"])
def test_a_model_without_a_likelihood_takes_only_mle(name):
    with pytest.raises(ConfigError, match=rf"^estimator={name} needs a per-sample likelihood"):
        build_fit(EstimatorConfig(name=name), model=ADVERSARIAL, sample_shape=(2,))

"""Every shipped config composes against its schema and runs, shrunk, for two generations."""

from __future__ import annotations

from importlib import resources

import pytest
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException

from _commands import shrunk_arms

from genfair.cli import arms_from_config, register_configs, study_config
from genfair.errors import ConfigError
from genfair.experiment import run_experiment
from genfair.studies import StudyConfig

register_configs()
CONFIGS = resources.files("genfair.configs")
EXPERIMENTS = sorted(p.name.removesuffix(".yaml") for p in CONFIGS.joinpath("experiment").iterdir() if p.name.endswith(".yaml"))
SHRINK = ["loop.generations=2", "estimator.steps=2", "evaluation.samples=60", "evaluation.bootstrap=10", "evaluation.grid=2"]
ANALYTIC_SHRINK = ["loop.replicates=20"]
DEEP_SHRINK = ["model.sample_steps=2"]  # the DDPM's sampler
DEEP_REPLICATES = ["loop.replicates=2", "estimator.sets_per_step=2"]  # two chains, two sets per hypernetwork step


def compose_config(overrides: list[str]):
    with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def compose_shrunk(overrides: list[str]):
    """The config with ``overrides``, shrunk to a tiny run of its family; the arms that set their
    own step count get the shrunk one too."""
    experiment = next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")), "digits_vae")
    steps = next(o for o in SHRINK if o.startswith("estimator.steps="))
    shrink = [*SHRINK, *shrunk_arms(experiment, steps)]
    cfg = compose_config([*shrink, *overrides])
    if cfg.model.name in ("gaussian", "class_mixture"):
        return compose_config([*shrink, *ANALYTIC_SHRINK, *overrides])
    if cfg.model.name == "ddpm":
        return compose_config([*shrink, *DEEP_SHRINK, *DEEP_REPLICATES, *overrides])
    return compose_config([*shrink, *DEEP_REPLICATES, *overrides])


@pytest.mark.parametrize("experiment", [None, *EXPERIMENTS])
def test_experiment_composes_and_runs(experiment, tmp_path):
    cfg = compose_shrunk([f"experiment={experiment}"] if experiment else [])
    if cfg.study is not None:  # a study: its config is type-checked here, and run shrunk by tests/test_studies.py
        assert isinstance(study_config(cfg), StudyConfig)
        return
    arms = arms_from_config(cfg)
    result = run_experiment(arms, seed=cfg.seed, run_dir=tmp_path)
    assert result.summary["status"] == "complete"
    assert all(len(records) == 2 for records in result.records.values())


@pytest.mark.parametrize(
    "group, option",
    # custom (data, model, estimator) is a plain node whose keys are its target's arguments, so it
    # has no schema (loop=custom's training_set is such a node); tests/test_custom_data.py,
    # tests/test_examples.py and tests/test_plugins.py run them through the command line.
    [(group, p.name.removesuffix(".yaml")) for group in ("data", "model", "loop", "estimator")
     for p in CONFIGS.joinpath(group).iterdir() if p.name.endswith(".yaml") and p.name != "custom.yaml"],
)
def test_every_group_option_is_typed_by_its_schema(group, option):
    data = {"gaussian": ["data=gaussian"], "image_files": ["data.path=images.npz"]}.get(option, [])
    assert arms_from_config(compose_config([f"{group}={option}", *data]))
    with pytest.raises(ConfigCompositionException):  # the schema has no such key
        compose_config([f"{group}={option}", *data, f"{group}.not_a_key=1"])
    forced = compose_config([f"{group}={option}", *data, f"+{group}.not_a_key=1"])
    with pytest.raises(ConfigError, match=f"{group}.not_a_key is not a key of"):  # never dropped silently
        arms_from_config(forced)


@pytest.mark.parametrize("experiment", ["digits_vae", "class_mixture_mad"])
@pytest.mark.parametrize(  # custom: a user's estimator, run through the command line by tests/test_plugins.py
    "estimator", sorted(p.name.removesuffix(".yaml") for p in CONFIGS.joinpath("estimator").iterdir()
                        if p.name.endswith(".yaml") and p.name != "custom.yaml")
)
def test_every_estimator_runs_shrunk(estimator, experiment, tmp_path):
    cfg = compose_shrunk([f"experiment={experiment}", f"estimator={estimator}", "estimator.steps=2"])
    cfg.arms = {}  # one arm, so that the experiment's arms do not set the estimator themselves
    result = run_experiment(arms_from_config(cfg), seed=cfg.seed, run_dir=tmp_path)
    assert result.summary["status"] == "complete"
    assert all(arm.estimator.name == estimator for arm in arms_from_config(cfg))


def test_a_bad_value_shared_by_every_arm_names_no_arm():
    cfg = compose_config(["loop.n_real=0"])  # the default experiment has two arms, mle and ple
    with pytest.raises(ConfigError) as raised:
        arms_from_config(cfg)
    assert str(raised.value) == "loop.n_real must be a positive integer, got 0"


def test_a_bad_value_in_an_arm_names_the_key_and_the_arm():
    cfg = compose_config(["+arms.a=['loop.n_real=0']"])
    with pytest.raises(ConfigError, match=r"loop.n_real must be a positive integer, got 0 \(in arm 'a'\)"):
        arms_from_config(cfg)


@pytest.mark.parametrize("overrides", [[], ["experiment=digits_ddpm"]], ids=["digits_vae", "digits_ddpm"])
def test_the_image_experiments_train_their_arms_to_one_budget_and_declare_a_loop_endpoint(overrides):
    """In the default experiment and its diffusion twin, per generation, every arm but the update-count control spends the same per-sample gradient
    evaluations (within 1 %): mle steps x batch, a hypernetwork arm steps x sets x the mean set
    size of its subsamples; mle_<N> makes the hypernetwork arms' N updates. The primary
    endpoint is a change from generation 0."""
    register_configs()
    cfg = compose_config(overrides)
    arms = {arm.name: arm for arm in arms_from_config(cfg)}
    n = cfg.loop.n_real
    assert cfg.loop.n_synthetic == n  # every generation's training set has n images

    def evaluations(estimator) -> float:
        if not estimator.uses_hypernetwork:
            return estimator.steps * min(estimator.batch_size or n, n)
        sizes = range(round(estimator.subsample.min_fraction * n), round(estimator.subsample.max_fraction * n) + 1)
        return estimator.steps * estimator.sets_per_step * sum(sizes) / len(sizes)

    budget = evaluations(arms["mle"].estimator)
    for name in ("hyper_mle", "ple"):
        assert evaluations(arms[name].estimator) == pytest.approx(budget, rel=0.01), name
    updates = arms["hyper_mle"].estimator.steps
    assert arms[f"mle_{updates}"].estimator.steps == updates == arms["ple"].estimator.steps
    assert (cfg.compare.relative_to, cfg.compare.primary_first) == ("generation_0", 1)

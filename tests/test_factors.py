"""``genfair.factors``: every arm placed in exactly one cell of the declared factors, before the
run; the refusals name the key, the value and what is allowed, in one line."""

from __future__ import annotations

import pytest

from genfair.errors import ConfigError
from genfair.factors import ArmFactorsConfig, place_arms, split_arms

LOOPS = ["fully_synthetic", "augment", "fresh", "accumulate"]
ESTIMATORS = ["mle", "hyper_mle", "ple", "anchor"]
ARMS = [f"{loop}-{estimator}" for loop in LOOPS for estimator in ESTIMATORS]
CONFIG = ArmFactorsConfig(levels={"loop": LOOPS, "estimator": ESTIMATORS}, pattern="{loop}-{estimator}")


def _refusal(call) -> str:
    with pytest.raises(ConfigError) as error:
        call()
    assert "\n" not in str(error.value)
    return str(error.value)


def test_each_arm_is_placed_in_its_own_cell_and_the_colours_follow_the_declared_order():
    placed = place_arms(CONFIG, ARMS)
    assert placed.facet == "loop" and placed.columns() == LOOPS and placed.colours() == ESTIMATORS
    for loop in LOOPS:
        for estimator in ESTIMATORS:
            arm = f"{loop}-{estimator}"
            assert placed.placement[arm] == {"loop": loop, "estimator": estimator}
            assert (placed.column(arm), placed.colour(arm)) == (loop, estimator)
    by_estimator = place_arms(CONFIG, ARMS, facet="estimator")
    assert by_estimator.column("fresh-ple") == "ple" and by_estimator.colour("fresh-ple") == "fresh"
    assert place_arms(ArmFactorsConfig(), ARMS) is None  # nothing declared: not factored


def test_an_underscore_pattern_and_levels_that_hold_the_separator():
    # "real_none" is labels real x curation none; hyper_mle holds the pattern's "_" in a level.
    config = ArmFactorsConfig(levels={"labels": ["counts", "real"], "curation": ["none", "agreement"]}, pattern="{labels}_{curation}")
    placed = place_arms(config, ["counts_none", "counts_agreement", "real_none", "real_agreement"])
    assert placed.placement["real_agreement"] == {"labels": "real", "curation": "agreement"}
    assert place_arms(CONFIG, ARMS).placement["augment-hyper_mle"] == {"loop": "augment", "estimator": "hyper_mle"}


def test_refusals_before_the_run():
    message = _refusal(lambda: place_arms(CONFIG, [*ARMS, "fresh-magic"]))
    assert message == (
        "arm_factors: arm 'fresh-magic' must match arm_factors.pattern '{loop}-{estimator}' with levels of "
        "arm_factors.levels, got no match"
    )
    twice = ArmFactorsConfig(levels={"a": ["x", "x-y"], "b": ["y-z", "z"]}, pattern="{a}-{b}")
    message = _refusal(lambda: place_arms(twice, ["x-y-z"]))
    assert message.startswith("arm_factors: arm 'x-y-z' must match arm_factors.pattern '{a}-{b}' once, got 2 matches")
    message = _refusal(lambda: place_arms(CONFIG, ARMS[:-4]))  # no accumulate arm
    assert message.startswith("arm_factors.levels.loop must each have an arm, got no arm for ['accumulate']")
    message = _refusal(lambda: place_arms(CONFIG, ARMS, facet="remedy"))
    assert message == "--facet must be one of the declared factors ['loop', 'estimator'], got 'remedy'"
    bad_facet = ArmFactorsConfig(levels=CONFIG.levels, pattern=CONFIG.pattern, facet="kind")
    assert _refusal(lambda: place_arms(bad_facet, ARMS)) == (
        "arm_factors.facet must be one of the declared factors ['loop', 'estimator'], got 'kind'"
    )
    message = _refusal(lambda: place_arms(ArmFactorsConfig(levels=CONFIG.levels, pattern="{loop}/{kind}"), ARMS))
    assert message == "arm_factors.pattern must name each factor of ['loop', 'estimator'] once, as {factor}, got '{loop}/{kind}'"
    message = _refusal(lambda: place_arms(ArmFactorsConfig(), ARMS, facet="loop"))
    assert message.startswith("--facet must name a declared factor of the arms, got 'loop'")


def test_more_colour_levels_than_markers_can_tell_apart_are_refused_and_more_than_ten_get_markers():
    from genfair.plots import level_styles

    levels = [f"e{i}" for i in range(41)]
    config = ArmFactorsConfig(levels={"loop": ["a"], "estimator": levels})
    message = _refusal(lambda: place_arms(config, [f"a-{e}" for e in levels]))
    assert message == (
        "arm_factors.facet 'loop' leaves 41 colour levels; at most 40 can be told apart (10 colours x 4 markers): "
        "facet by another factor"
    )
    styles = level_styles(levels[:12])
    assert styles["e0"] == ("C0", "o") and styles["e10"] == ("C0", "s") and styles["e11"] == ("C1", "s")
    assert len(set(styles.values())) == 12
    assert level_styles(levels[:3]) == {"e0": ("C0", None), "e1": ("C1", None), "e2": ("C2", None)}


def test_split_arms_by_prefix():
    placed = split_arms(ARMS, "-")
    assert placed.column("augment-hyper_mle") == "augment" and placed.colour("augment-hyper_mle") == "hyper_mle"
    assert placed.columns() == LOOPS and placed.colours() == ESTIMATORS
    assert _refusal(lambda: split_arms(["a-b", "c"], "-")) == "--facet-by-prefix '-' must split every arm's name in two, got ['c'] without it"


@pytest.mark.parametrize(
    "experiment, facet, columns, colours",
    [
        ("fairness_x_madness", "loop", LOOPS, ["mle", "mle_60", "hyper_mle", "ple", "anchor"]),
        ("curation", "labels", ["counts", "real"], ["none", "agreement", "confidence"]),
        ("remedies", None, [""], ["none", "reweight", "oversample", "smote", "group_dro", "mindiff", "hard_mining", "mle_60", "hyper_mle", "ple"]),
    ],
)
def test_the_shipped_factored_experiments_place_every_arm(experiment, facet, columns, colours):
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from genfair.cli import register_configs

    register_configs()
    with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}"])
    placed = place_arms(OmegaConf.to_object(cfg.arm_factors), list(cfg.arms))
    assert (placed.facet, placed.columns(), placed.colours()) == (facet, columns, colours)


def test_a_run_refuses_arms_its_factors_do_not_cover_before_anything_is_written(tmp_path):
    from genfair.data import ClassMixtureData
    from genfair.experiment import Arm, run_experiment
    from genfair.loops import LoopConfig
    from genfair.models import AnalyticModelConfig

    data, loop = ClassMixtureData(class_names=["big", "small"], proportions=[0.8, 0.2]), LoopConfig(generations=2, replicates=4)
    arms = [Arm(name, data, AnalyticModelConfig(estimator=estimator), loop) for name, estimator in
            (("fs-mle", "mle"), ("fs-unbiased", "unbiased"), ("other", "mle"))]  # fmt: skip
    factors = ArmFactorsConfig(levels={"loop": ["fs"], "estimator": ["mle", "unbiased"]})
    message = _refusal(lambda: run_experiment(arms, seed=0, run_dir=tmp_path / "run", arm_factors=factors))
    assert message.startswith("arm_factors: arm 'other' must match arm_factors.pattern '{loop}-{estimator}'")
    assert not (tmp_path / "run").exists()

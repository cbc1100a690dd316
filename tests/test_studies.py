"""The ``study`` config group and the study runner: every option of ``configs/study/`` composes
against its dataclass, holds only what differs from the dataclass's defaults, and runs shrunk;
every study's ``summary.json`` has the same top-level keys; a bad study value is refused in one
line before anything is written.

The studies' own numbers are tested in tests/test_variance_bias.py, tests/test_gmm_ple.py and
tests/test_downstream.py; here each runs only a few steps (about 10 s for all three on one thread).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from genfair.cli import register_configs, study_config
from genfair.cli._group_options import check_group_options
from genfair.errors import ConfigError
from genfair.studies import STUDIES, SUMMARY_KEYS, Study, StudyConfig, StudyResult, run_study

register_configs()
OPTIONS = sorted(p.name.removesuffix(".yaml") for p in resources.files("genfair.configs").joinpath("study").iterdir()
                 if p.name.endswith(".yaml"))
ALLOWED_NOTE = "(no study: the self-consuming loop; ~study drops one)"
BIN = Path(sys.executable).parent
GENFAIR = str(BIN / "genfair") if (BIN / "genfair").exists() else shutil.which("genfair")
# A few steps of each study, as command-line overrides; a new study adds its line here.
SHRINK = {
    "variance_bias": ["study.steps=3", "study.sets_per_step=8", "study.test_sets=50", "study.probe_sets=10",
                      "study.only=[hyper_mle,ple_constrained]"],
    "gmm_ple": ["study.sample_sizes=[20]", "study.loop_size=20", "study.test_sets=3", "study.kl_samples=200",
                "study.ablation_lams=[]", "study.steps=2", "study.samples_per_step=60", "study.hidden=4",
                "study.embedding_dim=4", "study.em_max_iter=5", "study.probe_sets=2", "study.generations=2",
                "study.chains=2"],
    "digits_prior": ["study.set_size_range=[10,20]", "study.loop_size=12", "study.assessment_sizes=[12]",
                     "study.assessment_draws=3", "study.response_shares=[0.0,1.0]", "study.response_sets=2",
                     "study.samples=12", "study.vae_hidden=[8]", "study.latent_dim=2", "study.hidden=8",
                     "study.embedding_dim=4", "study.steps=2", "study.sets_per_step=2", "study.ple_lams=[0.1]",
                     "study.refit_steps=2", "study.generations=2", "study.chains=2", "study.bootstrap=2", "study.k=2"],
    "gaussian_prior": ["study.steps=2", "study.sets=3", "study.set_sizes=[5,20]", "study.assess_sizes=[10]",
                       "study.loop_size=10", "study.heldout_draws=6", "study.sampling_points=1", "study.sampling_sets=5",
                       "study.generations=2", "study.chains=4", "study.hidden=4", "study.embedding_dim=4"],
    "gmm_prior": ["study.steps=2", "study.sets=3", "study.set_sizes=[5,20]", "study.assess_sizes=[10]",
                  "study.loop_size=10", "study.heldout_draws=6", "study.sampling_points=1", "study.sampling_sets=5",
                  "study.generations=2", "study.chains=4", "study.hidden=4", "study.embedding_dim=4",
                  "study.kl_samples=100", "study.em_max_iter=5"],
    "downstream_mindiff": ["study.replicates=2", "study.bootstrap=5", "study.n_train=200", "study.classifier.steps=3",
                           "study.classifier.hidden=8", "study.threshold_grid=[0.3,0.5,0.7]"],
}


def compose_config(overrides: list[str]):
    with initialize_config_module(config_module="genfair.configs", version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def registered_name(config: StudyConfig) -> str:
    return next(name for name, study in STUDIES.items() if type(config) is study.config)


# ------------------------------------------------------------------------------------ the group
def test_every_registered_study_is_an_option_and_the_default_is_the_loop():
    assert set(STUDIES) <= set(OPTIONS)
    cfg = compose_config([])
    assert cfg.study is None and study_config(cfg) is None


@pytest.mark.parametrize("option", OPTIONS)
def test_option_composes_typed_by_its_dataclass(option):
    cfg = compose_config([f"study={option}"])
    built = study_config(cfg)
    assert isinstance(built, StudyConfig) and OmegaConf.get_type(cfg.study) is type(built)
    assert registered_name(built) in SHRINK, f"add shrinking overrides for {registered_name(built)} to SHRINK"
    with pytest.raises(ConfigCompositionException):  # the dataclass has no such key
        compose_config([f"study={option}", "study.not_a_key=1"])
    forced = compose_config([f"study={option}", "+study.not_a_key=1"])
    with pytest.raises(ConfigError, match=r"^study.not_a_key is not a key of"):  # never dropped silently
        study_config(forced)


@pytest.mark.parametrize("option", OPTIONS)
def test_option_file_sets_only_what_differs_from_the_dataclass(option):
    """configs/study/<option>.yaml extends its schema and restates no default."""
    values = yaml.safe_load(resources.files("genfair.configs").joinpath("study", f"{option}.yaml").read_text()) or {}
    schema = values.pop("defaults")
    config_class = type(study_config(compose_config([f"study={option}"])))
    assert [entry for entry in schema if entry != "_self_"] == [f"{registered_name(config_class())}_schema"]
    restated = _restated(values, OmegaConf.to_container(OmegaConf.structured(config_class)))
    assert restated == [], f"configs/study/{option}.yaml restates the defaults of {restated}"


def _restated(values: dict, defaults: dict, prefix: str = "") -> list[str]:
    """The dotted keys of ``values`` whose leaf value equals the default's."""
    found = []
    for key, value in values.items():
        default = defaults.get(key, object()) if isinstance(defaults, dict) else object()
        if isinstance(value, dict) and isinstance(default, dict):
            found += _restated(value, default, f"{prefix}{key}.")
        elif value == default:
            found.append(f"{prefix}{key}")
    return found


@pytest.mark.parametrize("name", list(STUDIES))
def test_experiment_of_the_same_name_picks_the_study(name):
    cfg = compose_config([f"experiment={name}"])
    assert type(study_config(cfg)) is STUDIES[name].config
    assert study_config(compose_config([f"experiment={name}", "~study"])) is None  # back to the loop


# ---------------------------------------------------------------------------------- bad values
@pytest.mark.parametrize(("value", "hint"), [("bogus", ""), ("loop", ""), ("null", ""),
                                           ("variance-bias", " (did you mean variance_bias?)")])
def test_unknown_study_is_refused_naming_the_key_the_value_and_the_options(value, hint):
    with pytest.raises(ConfigError) as raised:
        check_group_options(["seed=1", f"study={value}"])
    assert str(raised.value) == f"study={value}: not a study; choose {', '.join(OPTIONS[:-1])} or {OPTIONS[-1]}{hint} {ALLOWED_NOTE}"


@pytest.mark.parametrize("argument", ["~study", "study=gmm_ple", "+study=variance_bias", "study=gmm_ple,variance_bias",
                                      "study.steps=3"])
def test_known_studies_null_and_sweeps_pass_the_check(argument):
    check_group_options([argument])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["study=variance_bias", "study.n=1"], "study.n must be an integer >= 2, got 1"),
        (["study=variance_bias", "study.dtype=float16"], "study.dtype must be one of ['float32', 'float64'], got 'float16'"),
        (["study=gmm_ple", "study.loop_size=7"], "study.loop_size must be one of sample_sizes [50, 200, 1000], got 7"),
        (["study=downstream_mindiff", "study.sensitive=3"], "study.sensitive must be a negative digit"),
    ],
)
def test_bad_study_value_names_the_study_key(overrides, message):
    with pytest.raises(ConfigError) as raised:
        study_config(compose_config(overrides))
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_cli_refuses_an_unknown_study_in_one_line_before_writing(tmp_path):
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("GENFAIR_DEBUG", "HYDRA_FULL_ERROR")}
    result = subprocess.run([GENFAIR, "study=bogus", f"hydra.run.dir={run_dir}"], cwd=tmp_path,
                            env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"genfair: error: study=bogus: not a study; choose {', '.join(OPTIONS[:-1])} or {OPTIONS[-1]} {ALLOWED_NOTE}"
    ]
    assert not run_dir.exists()


# ------------------------------------------------------------------------------ shrunk runs
@pytest.fixture(scope="module")
def summaries(tmp_path_factory) -> dict[str, tuple[dict, Path]]:
    """Every option of configs/study/, composed with its study's SHRINK and run by run_study."""
    runs = {}
    for option in OPTIONS:
        name = registered_name(study_config(compose_config([f"study={option}"])))
        config = study_config(compose_config([f"study={option}", *SHRINK[name]]))
        run_dir = tmp_path_factory.mktemp(option)
        runs[option] = run_study(config, seed=0, run_dir=run_dir, overrides=SHRINK[name]), run_dir
    return runs


@pytest.mark.parametrize("option", OPTIONS)
def test_option_runs_shrunk_and_writes_its_summary_and_files(summaries, option):
    summary, run_dir = summaries[option]
    assert summary["status"] == "complete" and summary["error"] is None
    assert json.loads((run_dir / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert summary["study"] == registered_name(study_config(compose_config([f"study={option}"])))
    assert summary["seed"] == 0 and summary["overrides"] == SHRINK[summary["study"]]
    assert summary["config"] == dataclasses.asdict(study_config(compose_config([f"study={option}", *SHRINK[summary["study"]]])))
    assert summary["results"] and set(summary["versions"]) >= {"python", "genfair", "torch"}
    assert summary["files"] and all((run_dir / f).is_file() for f in summary["files"])
    written = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    assert written == {"summary.json", *summary["files"]}  # every file the study wrote is listed


def test_every_study_summary_has_the_same_top_level_keys(summaries):
    keys = {option: tuple(summary) for option, (summary, _) in summaries.items()}
    assert set(keys.values()) == {SUMMARY_KEYS}, keys


# ------------------------------------------------------------------------------ the runner
@dataclass
class _FailingConfig(StudyConfig):
    message: str = "boom\nsecond line"


def _fail(config: _FailingConfig, *, seed: int, run_dir: Path) -> StudyResult:
    raise FloatingPointError(config.message)


@dataclass
class _ProbeConfig(StudyConfig):
    pass


def _probe(config: _ProbeConfig, *, seed: int, run_dir: Path) -> StudyResult:
    """Reads the summary written before the study starts."""
    return StudyResult(results=json.loads((run_dir / "summary.json").read_text()), files=())


def test_the_summary_says_running_while_the_study_runs(monkeypatch, tmp_path):
    monkeypatch.setitem(STUDIES, "probe", Study(_ProbeConfig, _probe))
    summary = run_study(_ProbeConfig(), seed=2, run_dir=tmp_path, overrides=["study=probe"])
    seen = summary["results"]
    assert tuple(seen) == SUMMARY_KEYS and seen["status"] == "running" and seen["results"] is None
    assert (seen["study"], seen["seed"], seen["overrides"]) == ("probe", 2, ["study=probe"])
    assert summary["status"] == "complete" and summary["files"] == [] and summary["seconds"] >= 0


def test_a_failing_study_leaves_a_failed_summary_and_raises(monkeypatch, tmp_path):
    monkeypatch.setitem(STUDIES, "failing", Study(_FailingConfig, _fail))
    with pytest.raises(FloatingPointError, match="boom"):
        run_study(_FailingConfig(), seed=3, run_dir=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["study"] == "failing" and summary["status"] == "failed" and summary["seed"] == 3
    assert summary["error"] == "boom second line" and summary["results"] is None and summary["files"] == []


def test_an_unregistered_config_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match="_FailingConfig"):
        run_study(_FailingConfig(), seed=0, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()

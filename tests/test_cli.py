"""End-to-end smoke tests of the ``genfair`` and ``genfair-plot`` commands.

Every command runs in a subprocess whose working directory is a pytest temporary directory, so
the tests also prove that the installed commands find their configs from any directory. Each
process spends ~3 s importing torch, so the module-scoped fixture ``cli`` runs every command of
this file at once (one per CPU core) and the tests only inspect what each left behind.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from _commands import pool_workers, run_command, run_commands, shrunk_arms
from _fixtures import read_csv as _read_csv

BIN = Path(sys.executable).parent
GENFAIR = str(BIN / "genfair") if (BIN / "genfair").exists() else shutil.which("genfair")
GENFAIR_PLOT = str(BIN / "genfair-plot") if (BIN / "genfair-plot").exists() else shutil.which("genfair-plot")
# Loop experiments only: a study experiment (a top-level ``study: NAME`` line) writes other files
# and is run end to end by its own test file (tests/test_<name>.py).
EXPERIMENTS = sorted(
    p.stem
    for p in (Path(__file__).resolve().parents[1] / "configs" / "experiment").glob("*.yaml")
    if "override /study:" not in p.read_text()
)
ANALYTIC = "experiment=class_mixture_mad"  # the closed-form class-mixture loop
TINY = ["loop.generations=2", "loop.replicates=50"]
# Deep models on digits (the default experiment): one replicate, a few training steps.
DEEP_TINY = ["loop.generations=2", "loop.replicates=2", "estimator.sets_per_step=2", "estimator.steps=3", "evaluation.samples=60", "evaluation.bootstrap=10", "evaluation.grid=2"]
CSV_HEADER = "arm,generation,group,metric,mean,se,median,q05,q95,n,lo,hi"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
Z = 5.0  # standard errors allowed in the one statistical check below


def _ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n--- stderr ---\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE


# Bad configs: (override, expected exit code (None: Hydra's own, any nonzero), words stderr must contain).
BAD_CONFIGS = [
    pytest.param("loop.kind=bogus", 2, ["loop.kind", "'bogus'", "fully_synthetic"], id="loop-kind"),
    pytest.param("loop.n_real=0", 2, ["loop.n_real", "got 0"], id="n-real-zero"),
    pytest.param("loop.sampling_bias=1.5", 2, ["loop.sampling_bias", "1.5"], id="bias-above-one"),
    pytest.param("loop.sampling_bias=0", 2, ["loop.sampling_bias", "got 0"], id="bias-zero"),
    pytest.param("data.proportions=[0.5,0.6]", 2, ["data.proportions", "[0.5, 0.6]"], id="proportions-sum"),
    pytest.param("data.proportions=[0.999,0.001]", 2, ["'minority'", "gets 0", "data.proportions"], id="class-without-samples"),
    pytest.param("loop=bogus", 2, ["loop=bogus: not a loop", "fully_synthetic"], id="unknown-loop-option"),
    pytest.param("loop.n_real=abc", None, ["loop.n_real", "'abc'"], id="n-real-not-int"),
    pytest.param("model=gaussian", 2, ["model=gaussian", "data=gaussian"], id="model-needs-gaussian-data"),
    pytest.param('+arms.x=["loop.bogus=1"]', 2, ["arms.x", "'bogus'"], id="arm-unknown-key"),
    pytest.param('+arms.x=["loop.n_real=abc"]', 2, ["arms.x", "n_real", "'abc'"], id="arm-type-error"),
    pytest.param("seed=-1", 2, ["seed", "-1"], id="negative-seed"),
    pytest.param("threads=0", 2, ["threads", "0"], id="threads-zero"),
    pytest.param("loop.checkpoint_every=0", 2, ["loop.checkpoint_every", "got 0"], id="checkpoint-every-zero"),
    pytest.param("remedy=bogus", 2, ["remedy=bogus: not a remedy", "mindiff"], id="unknown-remedy"),
    pytest.param("remedy.length=-1", 2, ["remedy.length", "-1", "> 0"], id="remedy-length"),
    pytest.param("remedy=reweight", 2, ["remedy=reweight", "loop.replicates=1", "got 50"], id="remedy-replicates"),
    # a PLE option under its old key: the one line names where it lives now
    pytest.param("+estimator.discrepancy=expectation", 2, ["estimator.discrepancy", "estimator.ple.discrepancy"], id="moved-ple-option"),
]
# Bad configs of the default experiment (deep models on digits).
BAD_DEEP_CONFIGS = [
    pytest.param("data.classes=[3,3]", 2, ["classes", "[3, 3]", "distinct"], id="digits-repeated"),
    pytest.param("model.architecture=rnn", 2, ["model.architecture", "'rnn'", "mlp"], id="vae-architecture"),
    pytest.param("loop.sampling_bias=0.7", 2, ["loop.sampling_bias=0.7", "biased sampling", "VAE"], id="vae-biased-sampling"),
    pytest.param("model=class_mixture", 2, ["model=class_mixture", "model=vae"], id="analytic-model-on-images"),
    pytest.param("evaluation.level=2", 2, ["evaluation.level", "2"], id="evaluation-level"),
    pytest.param("loop.n_real=1000", 2, ["'3'", "training pool", "lower n"], id="more-than-the-pool"),
]


def _experiment_tiny(name: str) -> list[str]:
    """The shrinking overrides for an experiment: analytic ones set their own data and model; the
    arms that set their own step count get the shrunk one too."""
    text = (Path(__file__).resolve().parents[1] / "configs" / "experiment" / f"{name}.yaml").read_text()
    if "override /model: gaussian" in text or "override /model: class_mixture" in text:
        return TINY
    steps = next(o for o in DEEP_TINY if o.startswith("estimator.steps="))
    return DEEP_TINY + (["model.sample_steps=2"] if "override /model: ddpm" in text else []) + shrunk_arms(name, steps)


# ------------------------------------------------------------------------ all commands at once
@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Run every command of this file concurrently: ``{name: (result, its run or output dir)}``.

    Names: ``run`` and ``run_seed1`` (the class-mixture loop, shrunk), ``default`` (the default
    experiment, shrunk), ``bad/<override>``, ``bad_deep/<override>``, ``experiment/<name>`` and
    ``plot/<case>`` (the plots start after the two runs they read).
    """
    cwd = tmp_path_factory.mktemp("cli")
    jobs: dict[str, tuple[list[str], Path]] = {}
    for name, extra in (("run", []), ("run_seed1", ["seed=1"])):
        jobs[name] = ([GENFAIR, ANALYTIC, f"hydra.run.dir={cwd / name}", *TINY, *extra], cwd / name)
    # 120 evaluation samples: at 60 the minority's coverage at generation 0 (the declared
    # endpoint's reference) is undefined, and comparisons.csv is refused
    jobs["default"] = ([GENFAIR, f"hydra.run.dir={cwd / 'default'}", *_experiment_tiny("digits_vae"), "evaluation.samples=120"],
                       cwd / "default")
    for case in BAD_CONFIGS:
        override, run = case.values[0], cwd / "bad" / case.id
        jobs[f"bad/{override}"] = ([GENFAIR, ANALYTIC, f"hydra.run.dir={run}", *TINY, override], run)
    for case in BAD_DEEP_CONFIGS:
        override, run = case.values[0], cwd / "bad_deep" / case.id
        jobs[f"bad_deep/{override}"] = ([GENFAIR, f"hydra.run.dir={run}", *DEEP_TINY, override], run)
    for name in EXPERIMENTS:
        run = cwd / "experiment" / name
        jobs[f"experiment/{name}"] = ([GENFAIR, f"experiment={name}", f"hydra.run.dir={run}", *_experiment_tiny(name)], run)
    runs = [str(cwd / "run"), str(cwd / "run_seed1")]
    plots = {
        "overlay": [*runs],
        "missing": [runs[0], str(cwd / "no_such_run")],
        "metric": [*runs, "--metric", "bogus"],
    }
    with ThreadPoolExecutor(max_workers=pool_workers()) as pool:
        futures = {name: pool.submit(run_command, command, cwd) for name, (command, _) in jobs.items()}

        def plot(arguments: list[str], out: Path) -> subprocess.CompletedProcess:
            futures["run"].result()
            futures["run_seed1"].result()
            return run_command([GENFAIR_PLOT, *arguments, "--out", str(out)], cwd)

        for case, arguments in plots.items():
            out = cwd / "plot" / case
            jobs[f"plot/{case}"] = ([], out)
            futures[f"plot/{case}"] = pool.submit(plot, arguments, out)
    return {name: (futures[name].result(), path) for name, (_, path) in jobs.items()}


# ----------------------------------------------------------------------- the default experiment
def test_default_experiment_runs_the_digits_loop_with_progress_and_figures(cli):
    result, run = cli["default"]
    _ok(result)
    assert (run / "metrics.csv").read_text().splitlines()[0] == CSV_HEADER
    rows = _read_csv(run / "metrics.csv")
    assert {r["arm"] for r in rows} == {"mle", "mle_60", "hyper_mle", "ple"}
    assert {"3", "6", "all"} <= {r["group"] for r in rows}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["family"] == "images"
    assert summary["config"]["data"]["classes"] == [3, 6] and summary["config"]["data"]["proportions"] == [0.9, 0.1]
    assert summary["config"]["model"]["name"] == "vae" and summary["config"]["loop"]["kind"] == "fully_synthetic"
    for arm in ("mle", "mle_60", "hyper_mle", "ple"):  # progress: one line per finished chain and arm, on the console
        for replicate in (1, 2):
            assert f"arm {arm} · replicate {replicate} of 2 · 2 generations" in result.stdout + result.stderr
            assert f"arm {arm} · replicate {replicate} of 2 · generation 1 (2 of 2)" in result.stdout + result.stderr
    # the declared endpoint: each arm's change from generation 0, paired with mle's
    assert (run / "comparisons.csv").read_text().splitlines()[1].startswith("primary,generation_0,mle_60,mle,coverage,6,1-1,2,")
    assert _is_png(run / "figures" / "minority_fidelity.png")
    assert _is_png(run / "figures" / "samples_mle.png") and _is_png(run / "figures" / "samples_ple.png")


@pytest.mark.parametrize(("override", "code", "words"), BAD_DEEP_CONFIGS)
def test_bad_deep_config_fails_fast_with_a_clear_message(cli, override, code, words):
    result, run = cli[f"bad_deep/{override}"]
    stderr = result.stderr.strip()
    assert result.returncode == code, stderr
    assert stderr.startswith("genfair: error: ") and len(stderr.splitlines()) == 1, stderr
    for word in words:
        assert word in stderr, f"{word!r} not in stderr:\n{stderr}"
    assert not run.exists(), sorted(p.name for p in run.iterdir())  # a refused command leaves no folder


def test_class_mixture_loop_writes_every_result_file(cli):
    result, run = cli["run"]
    _ok(result)

    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0] == CSV_HEADER
    rows = _read_csv(run / "metrics.csv")
    assert {r["arm"] for r in rows} == {"mle", "unbiased"}
    assert {r["group"] for r in rows} == {"majority", "minority"}
    assert {r["generation"] for r in rows} == {"0", "1"}
    assert {r["n"] for r in rows if r["metric"] == "share"} == {"50"}
    # one row per (arm, generation, group, metric)
    assert len({(r["arm"], r["generation"], r["group"], r["metric"]) for r in rows}) == len(rows)

    with np.load(run / "replicates.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    assert {key.split("/")[0] for key in arrays} == {"mle", "unbiased"}
    assert {key.split("/")[2] for key in arrays} == {"majority", "minority"}
    assert all(a.shape == (2, 50) and a.dtype == np.float64 for a in arrays.values())
    # generation 0 trains on the stratified real draw: 5 of 100 samples are minority
    np.testing.assert_array_equal(arrays["mle/share/minority"][0], 0.05)

    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["seed"] == 0
    assert {"python", "genfair", "torch", "numpy"} <= set(summary["versions"])
    assert summary["config"]["loop"]["generations"] == 2
    assert summary["config"]["loop"]["replicates"] == 50
    assert summary["config"]["overrides"] == [ANALYTIC, *TINY]
    assert set(summary["arms"]) == {"mle", "unbiased"}
    assert all(len(arm["generation_seconds"]) == 2 for arm in summary["arms"].values())
    headline = summary["headline_metrics"]
    assert headline == ["share", "extinct", "w2_sq", "trace_cov"]
    for arm in ("mle", "unbiased"):
        assert set(summary["headline"][arm]) == {f"{m}/{g}" for m in headline for g in ("majority", "minority")}
        assert all(stats["generation"] == 1 for stats in summary["headline"][arm].values())
    for metric in headline:
        assert _is_png(run / "figures" / f"{metric}.png"), metric


def test_class_mixture_loop_numbers_follow_the_closed_form(cli):
    """Generation 0 fits the real draw: the majority class (95 samples of N(., I_2)) has
    E tr(Sigma_mle) = 2 (n-1)/n and Var = 4 (n-1)/n^2; both arms see the same draw, so the
    unbiased trace is exactly n/(n-1) times the MLE one."""
    result, run = cli["run"]
    _ok(result)
    with np.load(run / "replicates.npz", allow_pickle=False) as npz:
        mle, unbiased = npz["mle/trace_cov/majority"][0], npz["unbiased/trace_cov/majority"][0]
    n, reps = 95, mle.size
    assert abs(mle.mean() - 2 * (n - 1) / n) <= Z * math.sqrt(4 * (n - 1)) / n / math.sqrt(reps)
    np.testing.assert_allclose(unbiased, mle * n / (n - 1), rtol=1e-12)


# --------------------------------------------------------------------------------- bad configs
@pytest.mark.parametrize(("override", "code", "words"), BAD_CONFIGS)
def test_bad_config_fails_fast_with_a_clear_message(cli, override, code, words):
    result, run = cli[f"bad/{override}"]
    stderr = result.stderr.strip()
    assert result.returncode != 0, f"{override} was accepted"
    if code is not None:
        assert result.returncode == code, stderr
        assert stderr.startswith("genfair: error: ") and len(stderr.splitlines()) == 1, stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in stderr, f"{word!r} not in stderr:\n{stderr}"
    if code == 2:  # refused by genfair (Hydra's own refusals, code None, come before any folder)
        assert not run.exists(), sorted(p.name for p in run.iterdir())  # a refused command leaves no folder


# ------------------------------------------------------------------------------- genfair-plot
def test_plot_overlays_two_runs(cli):
    _ok(cli["run_seed1"][0])
    result, out = cli["plot/overlay"]
    _ok(result)
    headline = json.loads((cli["run"][1] / "summary.json").read_text())["headline_metrics"]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{m}.png" for m in headline)
    assert all(_is_png(out / f"{m}.png") for m in headline)
    assert [Path(line).name for line in result.stdout.split()] == [f"{m}.png" for m in headline]


@pytest.mark.parametrize(("case", "words"), [("missing", ["no_such_run", "metrics.csv"]), ("metric", ["'bogus'", "share"])])
def test_plot_rejects_bad_arguments(cli, case, words):
    result, out = cli[f"plot/{case}"]
    stderr = result.stderr.strip()
    assert result.returncode == 2
    assert stderr.startswith("genfair-plot: error: ") and len(stderr.splitlines()) == 1, stderr
    assert all(word in stderr for word in words), stderr
    assert not out.exists()


# ------------------------------------------------------------------------ shipped experiments
def test_experiments_are_discovered():
    assert EXPERIMENTS, "no configs/experiment/*.yaml found"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_shipped_experiment_runs_end_to_end(cli, name):
    result, run = cli[f"experiment/{name}"]
    _ok(result)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["config"]["overrides"] == [f"experiment={name}", *_experiment_tiny(name)]
    arms = set(summary["config"]["arms"]) or {"main"}
    rows = _read_csv(run / "metrics.csv")
    assert {r["arm"] for r in rows} == arms
    assert {r["generation"] for r in rows} == {"0", "1"}
    # every class, plus the pooled and minority-to-majority groups of the image metrics
    assert set(summary["groups"]) <= {r["group"] for r in rows} <= {*summary["groups"], "all", "minority_to_majority"}
    replicates = 50 if _experiment_tiny(name) == TINY else 2  # DEEP_TINY runs two chains per arm
    with np.load(run / "replicates.npz", allow_pickle=False) as npz:
        assert {key.split("/")[0] for key in npz.files} == arms
        assert all(npz[key].shape == (2, replicates) for key in npz.files)
    for metric in summary["headline_metrics"]:
        assert _is_png(run / "figures" / f"{metric}.png"), metric


# ---------------------------------------------------------- answers that load nothing heavy
HEAVY = ("torch", "matplotlib", "scipy.stats", "sklearn", "diffusers", "genfair.experiment")
_IN_PROCESS = """
import sys
sys.argv = ["genfair", *sys.argv[1:]]
from genfair.cli import main
try:
    main()
except SystemExit as exit_:
    code = exit_.code
else:
    code = 0
print("LOADED", sorted(m for m in {heavy!r} if m in sys.modules), "EXIT", code, file=sys.stderr)
"""


def _genfair_loading(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str], int]:
    """Run ``genfair ARGS`` in a fresh interpreter: the result, the modules of :data:`HEAVY` it
    loaded, and its exit status."""
    result = run_command([sys.executable, "-c", _IN_PROCESS.format(heavy=HEAVY), *args], cwd)
    last = result.stderr.strip().splitlines()[-1]
    loaded, code = last.removeprefix("LOADED ").split(" EXIT ")
    return result, eval(loaded), int(code)  # noqa: S307 (a list of names printed just above)


def test_help_shows_the_user_options_and_examples_without_loading_torch(tmp_path):
    result, loaded, code = _genfair_loading(tmp_path, "--help")
    assert code == 0 and loaded == [], (code, loaded)
    text = result.stdout
    assert "_schema" not in text and "Examples" in text
    for line in ("experiment", "class_mixture_mad", "digits_vae*", "remedy", "group_dro", "genfair experiment="):
        assert line in text, line
    assert "+arms." in text and "docs/arms.md" in text


def test_version_prints_the_version_without_hydra(tmp_path):
    import genfair

    result, loaded, code = _genfair_loading(tmp_path, "--version")
    assert code == 0 and loaded == [], (code, loaded)
    assert result.stdout.strip() == f"genfair {genfair.__version__}"
    assert not any(m.startswith("hydra") for m in loaded)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        pytest.param(["loop.n_real=0"], ["loop.n_real", "got 0"], id="n-real-zero"),
        # every arm of the default experiment sets estimator.name: the command line's value is checked too
        pytest.param(["estimator.name=magic"], ["estimator.name", "'magic'", "'mle'", "'ple'"], id="estimator-name"),
        pytest.param(["experiment=class_mixture_mad", "estimator.name=magic"], ["estimator.name", "'magic'"], id="analytic"),
        pytest.param(["evaluation.k=0"], ["evaluation.k", "got 0"], id="evaluation"),
        pytest.param(["model=ddpm", "model.sampler=euler"], ["model.sampler", "'euler'", "'ddim'"], id="ddpm-sampler"),
        pytest.param(["study=variance_bias", "study.n=1"], ["study.n", "got 1"], id="study-key"),
        pytest.param(["experiment=downstream_mindiff", "study.sensitive=3"], ["sensitive", "'3'"], id="mindiff-study"),
    ],
)
def test_a_refused_override_loads_no_model_metric_or_figure_module(tmp_path, overrides, words):
    """Every check runs before torch, matplotlib, scipy, sklearn, diffusers or the experiment's
    modules are imported (the config dataclasses' modules are torch-free: docs/architecture.md),
    so a refusal answers in about a second (benchmarks/cli_startup.md) and writes nothing."""
    run_dir = tmp_path / "run"
    result, loaded, code = _genfair_loading(tmp_path, f"hydra.run.dir={run_dir}", *DEEP_TINY, *overrides)
    error = result.stderr.strip().splitlines()[0]
    assert code == 2 and error.startswith("genfair: error: "), result.stderr
    assert all(word in error for word in words), error
    assert loaded == [], loaded
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["model=vea"], "model=vea: not a model; choose class_mixture, custom, ddpm, gaussian or vae (did you mean vae?)"),
        (["+experiment=gmm_prio"], "experiment=gmm_prio: not an experiment; choose "),
        (["data=digit"], "data=digit: not a data source; choose class_mixture, custom, digits, gaussian or image_files "
                         "(did you mean digits?)"),
    ],
    ids=["model", "experiment", "data"],
)
def test_a_misspelt_group_option_is_refused_in_one_line_with_the_closest_option(tmp_path, overrides, line):
    """An unknown option of a config group gets genfair's line and exit 2 (not Hydra's screen, which
    lists the ConfigStore's ``*_schema`` entries too), before Hydra composes or makes anything."""
    run_dir = tmp_path / "run"
    result, loaded, code = _genfair_loading(tmp_path, f"hydra.run.dir={run_dir}", *overrides)
    lines = result.stderr.strip().splitlines()
    assert code == 2 and len(lines) == 2 and lines[0].startswith(f"genfair: error: {line}"), result.stderr  # 2: LOADED
    assert "_schema" not in lines[0] and "HYDRA_FULL_ERROR" not in result.stderr
    if overrides[0].startswith("+experiment"):
        assert lines[0].endswith("(did you mean gmm_prior?)"), lines[0]
    assert loaded == [] and not run_dir.exists()


def test_each_option_of_a_sweep_list_is_checked_and_other_config_folders_are_left_to_hydra():
    from genfair.cli._group_options import check_group_options
    from genfair.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^model=vea: not a model; .* \(did you mean vae\?\)$"):
        check_group_options(["-m", "model=vae,vea", "seed=0,1"])
    check_group_options(["-m", "model=vae,ddpm", "model.latent_dim=4", "hydra/launcher=joblib", "~study"])
    check_group_options(["--config-dir", "mine", "model=mine"])  # options of the user's own folder
    check_group_options(["model=choice(vae,ddpm)"])  # Hydra's sweep functions are Hydra's


# ------------------------------------------------------------------------- arms (docs/arms.md)
ARM_COMMANDS = {
    # two arms added to the experiment's mle and unbiased, in the two forms Hydra parses
    "add": ["+arms.lam05={loop.sampling_bias:0.5}", '+arms.lam05_list=["loop.sampling_bias=0.5"]'],
    # the experiment's arms replaced by two others, a mapping and a list
    "replace": ['arms={fs:{model.estimator:mle},acc:["loop.kind=accumulate","model.estimator=mle"]}'],
    "none": ["arms={}"],  # one arm, main
}


@pytest.fixture(scope="module")
def arm_runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    cwd = tmp_path_factory.mktemp("arms")
    jobs = {name: ([GENFAIR, ANALYTIC, f"hydra.run.dir={cwd / name}", *TINY, *extra], cwd) for name, extra in ARM_COMMANDS.items()}
    return {name: (result, cwd / name) for name, result in run_commands(jobs).items()}


def test_arms_are_added_by_a_mapping_or_a_quoted_list(arm_runs):
    result, run = arm_runs["add"]
    _ok(result)
    summary = json.loads((run / "summary.json").read_text())
    assert list(summary["arms"]) == ["mle", "unbiased", "lam05", "lam05_list"]
    with np.load(run / "replicates.npz", allow_pickle=False) as npz:
        trace = {arm: npz[f"{arm}/trace_cov/majority"][1].mean() for arm in summary["arms"]}
    assert trace["lam05"] == trace["lam05_list"]  # the same overrides, the same random numbers
    assert trace["lam05"] < 0.75 * trace["mle"]  # sampling from N(mu, 0.5 Sigma) halves the next fit's spread


def test_arms_equal_a_mapping_replaces_the_experiments_arms(arm_runs):
    result, run = arm_runs["replace"]
    _ok(result)
    summary = json.loads((run / "summary.json").read_text())
    assert list(summary["arms"]) == ["fs", "acc"]
    assert {r["arm"] for r in _read_csv(run / "metrics.csv")} == {"fs", "acc"}
    result, run = arm_runs["none"]
    _ok(result)
    assert list(json.loads((run / "summary.json").read_text())["arms"]) == ["main"]


def test_an_arm_written_key_equals_value_in_brackets_is_refused_with_the_forms_that_work(tmp_path):
    result = run_command([GENFAIR, ANALYTIC, f"hydra.run.dir={tmp_path / 'run'}", *TINY, "+arms.lam05=[loop.sampling_bias=0.5]"], tmp_path)
    stderr = result.stderr.strip()
    assert result.returncode == 2 and len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("genfair: error: +arms.lam05=[loop.sampling_bias=0.5]")
    assert "+arms.NAME={key:value" in stderr and "docs/arms.md" in stderr
    assert not (tmp_path / "run").exists()


def test_a_refused_command_leaves_no_folder_and_the_corrected_one_runs_there(tmp_path):
    """Hydra makes hydra.run.dir (and its parents) before genfair can check the config: a refused
    command removes what it made, so the corrected command starts in the same folder afresh; a
    folder that existed before is kept."""
    run = tmp_path / "made" / "run"
    refused = subprocess.run([GENFAIR, ANALYTIC, f"hydra.run.dir={run}", *TINY, "loop.n_real=0"], capture_output=True, text=True)
    assert refused.returncode == 2 and not (tmp_path / "made").exists(), refused.stderr
    corrected = subprocess.run([GENFAIR, ANALYTIC, f"hydra.run.dir={run}", *TINY], capture_output=True, text=True)
    assert corrected.returncode == 0 and (run / "summary.json").is_file(), corrected.stderr[-2000:]
    again = subprocess.run([GENFAIR, ANALYTIC, f"hydra.run.dir={run}", *TINY, "loop.n_real=0"], capture_output=True, text=True)
    assert again.returncode == 2 and (run / "summary.json").is_file()  # an existing run is never removed

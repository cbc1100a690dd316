"""Resuming a run directory: a continued run equals an uninterrupted one, a killed ``genfair``
picks up where it stopped, and a directory that holds another experiment or a damaged
checkpoint is refused with a :class:`ConfigError` that names the key or the file.

The library tests call :func:`run_experiment` in-process with figures stubbed out (they are
~90 % of a tiny run's time and ``test_cli.py`` checks them); the kill test runs the command.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from _commands import command_env, run_command

import genfair._chains
from genfair import ConfigError
from genfair.data import ClassMixtureData, DigitsData
from genfair.estimators import EarlyStoppingConfig, EstimatorConfig, PLEOptions, StepCheckpoints
from genfair.evaluation import EvaluationConfig
from genfair._outputs import read_metrics_csv
from genfair.experiment import Arm, run_experiment
from genfair._run_dir import fingerprint
from genfair.models import AnalyticModelConfig, ClassGaussianModel, VAEConfig
from genfair.remedies import RemedyConfig
from genfair.run_lock import LOCK_FILE
from genfair.loops import LOOP_KINDS, LoopConfig, RunStore, loop_generations

GENFAIR = str(Path(sys.executable).with_name("genfair"))
if not Path(GENFAIR).exists():
    GENFAIR = shutil.which("genfair")
GENERATION_DIR = re.compile(r"generation_\d{4}")


pytestmark = pytest.mark.usefixtures("no_figures")


def _arms(
    kind: str = "fully_synthetic", generations: int = 6, *, n_real: int = 30, estimators=("mle", "unbiased")
) -> list[Arm]:
    """Two arms on a 10 % minority: with 3 minority samples at generation 0 the class often drops
    below ``min_class_samples`` or dies out, so the resumed model state really matters."""
    data = ClassMixtureData(proportions=[0.9, 0.1], dim=2, class_names=["majority", "minority"])
    loop = LoopConfig(kind=kind, generations=generations, n_real=n_real, n_synthetic=30, replicates=64)
    return [Arm(e, data, AnalyticModelConfig(estimator=e), loop) for e in estimators]


def _replicates(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(run_dir / "replicates.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _assert_same_results(run_dir: Path, reference: Path) -> None:
    assert (run_dir / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
    got, want = _replicates(run_dir), _replicates(reference)
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["headline"] == json.loads((reference / "summary.json").read_text())["headline"]


def _tree_digest(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _generation_dirs(arm_dir: Path) -> list[str]:
    """Finished generations of one arm (``generation_0007``, not ``generation_0007.partial``)."""
    return sorted(p.name for p in arm_dir.glob("generation_*") if GENERATION_DIR.fullmatch(p.name))


# ------------------------------------------------------------------------- library: continuing
@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_continued_run_equals_uninterrupted(tmp_path, kind):
    run_experiment(_arms(kind, 6), seed=0, run_dir=tmp_path / "whole")

    run_experiment(_arms(kind, 3), seed=0, run_dir=tmp_path / "split")
    first_three = _tree_digest(tmp_path / "split" / "arms")
    run_experiment(_arms(kind, 6), seed=0, run_dir=tmp_path / "split")  # extending generations is allowed

    _assert_same_results(tmp_path / "split", tmp_path / "whole")
    after = _tree_digest(tmp_path / "split" / "arms")
    for path, digest in first_three.items():  # generations 0-2 were resumed, not recomputed
        if "synthetic" not in path:  # pruned once a later generation no longer needs it
            assert after[path] == digest, path


def test_resumed_anchor_keeps_generation_zero_as_its_reference(tmp_path):
    """The anchored fit pulls every generation towards the weights fitted at generation 0; a run
    resumed after generation 2 must restore those from its store (not the last finished
    generation's, which equal them only when it resumes right after generation 0)."""

    def arms(generations: int) -> list[Arm]:
        data = ClassMixtureData(proportions=[0.8, 0.2], dim=2, class_names=["majority", "minority"])
        loop = LoopConfig(generations=generations, n_real=40, n_synthetic=40, replicates=8)
        estimator = EstimatorConfig(name="anchor", lam=1.0, steps=10)
        return [Arm("anchor", data, AnalyticModelConfig(), loop, estimator)]

    run_experiment(arms(4), seed=0, run_dir=tmp_path / "whole")
    run_experiment(arms(3), seed=0, run_dir=tmp_path / "resumed")  # generations 0-2
    run_experiment(arms(4), seed=0, run_dir=tmp_path / "resumed")  # resumes after generation 2
    _assert_same_results(tmp_path / "resumed", tmp_path / "whole")


def test_fully_synthetic_chains_lose_the_minority(tmp_path):
    """Guards the test above: the resumed state includes extinct and under-sampled classes."""
    result = run_experiment(_arms("fully_synthetic", 6, estimators=("mle",)), seed=0, run_dir=tmp_path)
    last = result.records["mle"][-1].values
    assert last["extinct/minority"].any()
    assert np.isnan(last["trace_cov/minority"]).any()


def test_arm_finished_before_the_kill_keeps_its_results(tmp_path):
    """Killed during the second arm: the first arm has nothing left to run but must still be
    reported; a rerun of a complete run rewrites the same results."""
    run_experiment(_arms("fully_synthetic", 5), seed=0, run_dir=tmp_path / "whole")
    run_experiment(_arms("fully_synthetic", 2), seed=0, run_dir=tmp_path / "killed")
    # What a kill after the second arm's generation 1 leaves: the first arm complete.
    shutil.rmtree(tmp_path / "killed" / "arms" / "mle")
    shutil.copytree(tmp_path / "whole" / "arms" / "mle", tmp_path / "killed" / "arms" / "mle")

    run_experiment(_arms("fully_synthetic", 5), seed=0, run_dir=tmp_path / "killed")
    _assert_same_results(tmp_path / "killed", tmp_path / "whole")

    run_experiment(_arms("fully_synthetic", 5), seed=0, run_dir=tmp_path / "killed")
    _assert_same_results(tmp_path / "killed", tmp_path / "whole")


def test_leftover_partial_generation_is_replaced(tmp_path):
    run_experiment(_arms("accumulate", 5), seed=0, run_dir=tmp_path / "whole")
    run_experiment(_arms("accumulate", 3), seed=0, run_dir=tmp_path / "split")
    # A kill while generation 3 was being written: junk in place of its files.
    partial = tmp_path / "split" / "arms" / "mle" / "generation_0003.partial"
    partial.mkdir()
    (partial / "metrics.safetensors").write_bytes(b"not a safetensors file")
    (partial / "record.json").write_text('{"generation": 3, "seconds": 0.0, "sha256": {}}')
    (tmp_path / "split" / "arms" / "unbiased" / "generation_0004.partial").mkdir()

    run_experiment(_arms("accumulate", 5), seed=0, run_dir=tmp_path / "split")

    _assert_same_results(tmp_path / "split", tmp_path / "whole")
    assert not partial.exists()
    assert not (tmp_path / "split" / "arms" / "unbiased" / "generation_0004.partial").exists()


# ------------------------------------------------------------------------ library: refusing
@pytest.mark.parametrize(
    ("arms", "seed", "message"),
    [
        (_arms(generations=3), 1, "seed: 0 there, 1 now"),
        (_arms(generations=3, n_real=40), 0, "loop.n_real: 30 there, 40 now"),
        (_arms("augment", 3), 0, "loop.kind: 'fully_synthetic' there, 'augment' now"),
        (_arms(generations=3, estimators=("mle",)), 0, "arms.unbiased"),
    ],
    ids=["seed", "n_real", "kind", "arms"],
)
def test_refuses_a_directory_of_another_experiment(tmp_path, arms, seed, message):
    run_experiment(_arms(generations=3), seed=0, run_dir=tmp_path)
    before = _tree_digest(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_experiment(arms, seed=seed, run_dir=tmp_path)
    assert _tree_digest(tmp_path) == before


@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_a_built_in_kinds_fingerprint_is_what_runs_from_before_hold(kind):
    """The loop part of the fingerprint as summary.json stored it before each built-in kind named
    its rule (``training_set``): a run directory written then still resumes."""
    assert fingerprint(_arms(kind, 3), 0)["arms"]["mle"]["loop"] == {
        "kind": kind, "n_real": 30, "n_synthetic": 30, "sampling_bias": 1.0, "replicates": 64,
    }


@pytest.mark.parametrize("validation, resumes", [(0.0, True), (0.2, False)])
def test_a_run_that_recorded_an_option_off_resumes_and_one_that_had_it_on_is_refused(tmp_path, validation, resumes):
    """Runs made after an option was added but before the fingerprint left it out while off
    stored it at its off value (the recorded default run at b755d4e holds
    ``estimator.early_stopping: {validation: 0.0, ...}``, ``loop.synthetic_labels: counts``):
    they are this experiment and resume; a stored option that was on is another experiment."""
    run_experiment(_arms(generations=2), seed=0, run_dir=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    stored = summary["fingerprint"]["arms"]["mle"]  # as runs from before these options stored it: none of them
    assert set(stored) == {"data", "model", "loop", "estimator", "evaluation"}
    assert not {"early_stopping", "sample_steps", "_target_"} & set(stored["estimator"])
    for described in summary["fingerprint"]["arms"].values():
        described["estimator"]["early_stopping"] = {"validation": validation, "patience": 5, "every": 10}
        described["estimator"]["sample_steps"] = None
        described["loop"].update(synthetic_labels="counts", synthetic_shares=None, curation={"rule": "none"})
        described["remedy"], described["extra_metrics"] = {"name": "none"}, []
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    if resumes:
        run_experiment(_arms(generations=3), seed=0, run_dir=tmp_path)
        assert _replicates(tmp_path)["mle/share/minority"].shape[0] == 3
    else:
        with pytest.raises(ConfigError, match=r"arms.mle.estimator.early_stopping: \{'validation': 0.2"):
            run_experiment(_arms(generations=3), seed=0, run_dir=tmp_path)


def test_refuses_generations_without_a_summary(tmp_path):
    run_experiment(_arms(generations=2), seed=0, run_dir=tmp_path)
    (tmp_path / "summary.json").unlink()
    before = _tree_digest(tmp_path)
    with pytest.raises(ConfigError, match="no summary.json"):
        run_experiment(_arms(generations=2), seed=0, run_dir=tmp_path)
    assert _tree_digest(tmp_path) == before


def test_resumes_with_tuple_class_names(tmp_path):
    data = ClassMixtureData(proportions=(0.9, 0.1), class_names=("majority", "minority"))
    for generations in (2, 3):
        loop = LoopConfig(generations=generations, n_real=30, replicates=8)
        run_experiment([Arm("mle", data, AnalyticModelConfig(), loop)], seed=0, run_dir=tmp_path)


def test_fewer_generations_report_a_prefix_and_keep_the_rest(tmp_path):
    full, short = tmp_path / "full", tmp_path / "short"
    run_experiment(_arms(generations=5), seed=0, run_dir=full)
    shutil.copytree(full, short)
    checkpoints = {k: v for k, v in _tree_digest(short).items() if k.startswith("arms/")}
    run_experiment(_arms(generations=3), seed=0, run_dir=short)
    assert {k: v for k, v in _tree_digest(short).items() if k.startswith("arms/")} == checkpoints
    reported = _replicates(short)
    for key, values in _replicates(full).items():
        np.testing.assert_array_equal(reported[key], values[:3], err_msg=key)
    run_experiment(_arms(generations=5), seed=0, run_dir=short)  # asking again restores them all
    _assert_same_results(short, full)


def test_a_run_killed_before_its_first_generation_resumes(tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(genfair._chains, "loop_generations", killed)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(_arms(generations=2), seed=0, run_dir=tmp_path / "run")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "running"
    run_experiment(_arms(generations=2), seed=0, run_dir=tmp_path / "run")
    run_experiment(_arms(generations=2), seed=0, run_dir=tmp_path / "reference")
    _assert_same_results(tmp_path / "run", tmp_path / "reference")


def test_a_one_chain_arm_reports_each_generation_as_it_finishes(tmp_path, monkeypatch):
    """The run writes metrics.csv and summary.json from what a chain in this process yields,
    generation by generation: killed after an arm's first generation, the files hold it."""
    whole = genfair._chains.loop_generations

    def killed_after_one(**kwargs):
        generations = whole(**kwargs)
        yield next(generations)
        raise KeyboardInterrupt

    monkeypatch.setattr(genfair._chains, "loop_generations", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(_arms(generations=3), seed=0, run_dir=tmp_path)
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    assert rows and {(row["arm"], row["generation"]) for row in rows} == {("mle", 0)}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "running" and len(summary["arms"]["mle"]["generation_seconds"]) == 1


def test_the_loop_yields_the_restored_generations_then_each_new_one(tmp_path):
    """``loop_generations`` on a store of 2 finished generations, asked for 3: the 2 restored
    (their records as stored), then generation 2 as an uninterrupted loop makes it."""
    data = ClassMixtureData(proportions=[0.8, 0.2], dim=2, class_names=["majority", "minority"])
    config = LoopConfig(generations=3, n_real=20, n_synthetic=20, replicates=8)

    def loop(config: LoopConfig, store: RunStore | None = None):
        return loop_generations(data=data, model=ClassGaussianModel(2, 2, replicates=8), config=config, seed=0,
                                measure=lambda model, train, generator: {"mean/all": model.means[:, 0, 0]}, store=store)

    uninterrupted = list(loop(config))
    list(loop(replace(config, generations=2), RunStore(tmp_path, keep_all_synthetic=False)))
    resumed = list(loop(config, RunStore(tmp_path, keep_all_synthetic=False)))
    assert [(f.record.generation, f.restored) for f in resumed] == [(0, True), (1, True), (2, False)]
    assert [(f.record.generation, f.restored) for f in uninterrupted] == [(0, False), (1, False), (2, False)]
    for got, want in zip(resumed, uninterrupted):
        np.testing.assert_array_equal(got.record.values["mean/all"], want.record.values["mean/all"])
    torch.testing.assert_close(resumed[-1].model.means, uninterrupted[-1].model.means, rtol=0, atol=0)


# ------------------------------------------------------------------------ library: damaged files
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # in the tensor data, past the header
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("arm", "generation", "file", "damage"),
    [
        ("mle", 2, "model.safetensors", _truncate),  # the model that generation 3 starts from
        ("mle", 1, "metrics.safetensors", _flip_byte),
        ("unbiased", 2, "synthetic.safetensors", _truncate),
        ("unbiased", 0, "metrics.safetensors", lambda p: p.write_bytes(b"")),
        ("mle", 0, "record.json", _truncate),
    ],
    ids=["truncated-model", "flipped-metrics", "truncated-synthetic", "empty-metrics", "truncated-record"],
)
def test_damaged_checkpoint_is_refused(tmp_path, arm, generation, file, damage):
    run_experiment(_arms(generations=3), seed=0, run_dir=tmp_path)
    path = tmp_path / "arms" / arm / f"generation_{generation:04d}" / file
    damage(path)
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        run_experiment(_arms(generations=5), seed=0, run_dir=tmp_path)


# ----------------------------------------------------------- deep models: inside a generation
DIGITS = DigitsData(classes=[3, 6], proportions=[0.8, 0.2])
TINY_EVAL = EvaluationConfig(samples=60, bootstrap=10, grid=2)
STEPS = 6  # checkpoints after steps 2 and 4 of every generation


def _deep_arms(checkpoint_every: int | None = 2, stopping: EarlyStoppingConfig | None = None) -> list[Arm]:
    """A VAE with BatchNorm (its running statistics are state too) trained by Adam, and a PLE
    hypernetwork with the augmented Lagrangian under Group DRO (the multiplier and the remedy's
    class weights are state too); with ``stopping``, both early-stopped (the best state so far
    is state too)."""
    loop = LoopConfig(generations=2, n_real=40, n_synthetic=40, replicates=1, checkpoint_every=checkpoint_every)
    vae = VAEConfig(hidden=[32], latent_dim=4, batch_norm=True)
    stopping = stopping or EarlyStoppingConfig()
    mle = EstimatorConfig(steps=STEPS, lr=1e-2, batch_size=16, early_stopping=stopping)
    ple = EstimatorConfig(name="ple", ple=PLEOptions(constraint="augmented_lagrangian"), steps=STEPS, lr=1e-2,
                          batch_size=16, hidden=16, embedding_dim=8, early_stopping=stopping)
    return [
        Arm("mle", DIGITS, vae, loop, mle, TINY_EVAL),
        Arm("ple", DIGITS, VAEConfig(hidden=[32], latent_dim=4), loop, ple, TINY_EVAL, RemedyConfig(name="group_dro")),
    ]


class _Killed(Exception):
    """What a kill inside a generation looks like to the test (raised right after a checkpoint)."""


@pytest.fixture
def kill_at(monkeypatch):
    """``kill_at(arm, generation, step)``: the next run dies right after that checkpoint is saved;
    every fit's ``(arm, generation, first step)`` is recorded in the returned list."""
    starts: list[tuple[str, int, int]] = []
    target: dict[str, tuple] = {}
    resume, step_done = StepCheckpoints.resume, StepCheckpoints.step_done

    def recording_resume(self):
        first, extras = resume(self)
        starts.append((self.checkpoint.directory.parent.name, self.checkpoint.generation, first))
        return first, extras

    def dying_step_done(self, done, total, extras=dict):
        step_done(self, done, total, extras)
        where = (self.checkpoint.directory.parent.name, self.checkpoint.generation, done)
        if where == target.get("at"):
            target.pop("at")
            raise _Killed(where)

    monkeypatch.setattr(StepCheckpoints, "resume", recording_resume)
    monkeypatch.setattr(StepCheckpoints, "step_done", dying_step_done)

    def arm(*where):
        target["at"] = where
        return starts

    return arm


@pytest.mark.parametrize("stopping", [None, EarlyStoppingConfig(validation=0.25, patience=10, every=1)],
                         ids=["steps", "early_stopping"])
def test_deep_run_killed_inside_generations_resumes_to_identical_results(tmp_path, kill_at, stopping):
    """Killed after step 4 of the mle arm's generation 1, then after step 4 of the ple arm's;
    each run restarts that generation at step 5 and the end is bitwise the uninterrupted run:
    metrics.csv, every replicate value, the final weights and Group DRO's class weights (and,
    early-stopped, the state kept as the best so far)."""
    run_experiment(_deep_arms(stopping=stopping), seed=0, run_dir=tmp_path / "whole")

    starts = kill_at("mle", 1, 4)
    with pytest.raises(_Killed):
        run_experiment(_deep_arms(stopping=stopping), seed=0, run_dir=tmp_path / "killed")
    saved = json.loads((tmp_path / "killed" / "arms" / "mle" / "in_progress" / "state.json").read_text())
    assert (saved["generation"], saved["step"]) == (1, 4)
    kill_at("ple", 1, 4)
    with pytest.raises(_Killed):
        run_experiment(_deep_arms(stopping=stopping), seed=0, run_dir=tmp_path / "killed")
    run_experiment(_deep_arms(stopping=stopping), seed=0, run_dir=tmp_path / "killed")

    restarts = [start for start in starts if start[2] > 0]
    assert restarts == [("mle", 1, 4), ("ple", 1, 4)], starts
    _assert_same_results(tmp_path / "killed", tmp_path / "whole")
    for arm in ("mle", "ple"):
        for name in ("generation_0001/model.safetensors", "model/model.safetensors"):
            got = (tmp_path / "killed" / "arms" / arm / name).read_bytes()
            assert got == (tmp_path / "whole" / "arms" / arm / name).read_bytes(), (arm, name)
        assert not (tmp_path / "killed" / "arms" / arm / "in_progress").exists()
    dro = "arms/ple/remedy/generation_0001.json"
    assert (tmp_path / "killed" / dro).read_bytes() == (tmp_path / "whole" / dro).read_bytes()
    # checkpoint_every is not part of the experiment: the finished run opens without it.
    run_experiment(_deep_arms(checkpoint_every=None, stopping=stopping), seed=0, run_dir=tmp_path / "killed")


@pytest.mark.parametrize(
    ("file", "damage", "message"),
    [
        ("state_step_000002.safetensors", None, "does not match its recorded sha256"),
        ("state.json", lambda p: p.write_text('{"generation": 0}'), "is not an in-generation checkpoint record"),
        ("state.json", lambda p: p.write_text("{"), "cannot read"),
    ],
    ids=["flipped-tensors", "altered-record", "truncated-record"],
)
def test_damaged_in_generation_checkpoint_is_refused(tmp_path, kill_at, file, damage, message):
    arms = _deep_arms()[:1]
    kill_at("mle", 0, 2)
    with pytest.raises(_Killed):
        run_experiment(arms, seed=0, run_dir=tmp_path)
    path = tmp_path / "arms" / "mle" / "in_progress" / file
    (damage or _flip_byte)(path)
    with pytest.raises(ConfigError, match=re.escape(str(path))) as raised:
        run_experiment(arms, seed=0, run_dir=tmp_path)
    assert message in str(raised.value) and len(str(raised.value).splitlines()) == 1


# ------------------------------------------------------------------------------ the command
# 20 generations of 2000 chains per arm: ~0.1 s a generation, ~8 s in all on one core.
KILL_ARGS = ["experiment=class_mixture_mad", "loop.generations=20", "loop.replicates=2000"]


def _genfair(run: Path, *args: str, log: Path) -> subprocess.Popen:
    """Start ``genfair`` on ``run`` in ``run``'s parent, its output (stdout and stderr) to ``log``."""
    with open(log, "w") as handle:
        command = [GENFAIR, f"hydra.run.dir={run}", *args]
        return subprocess.Popen(command, cwd=run.parent, env=command_env(), stdout=handle, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """An uninterrupted ``genfair`` run with :data:`KILL_ARGS`, started in the background so that
    it overlaps the killed run; ``_finished(uninterrupted)`` waits for it and returns its dir."""
    root = tmp_path_factory.mktemp("uninterrupted")
    process = _genfair(root / "run", *KILL_ARGS, log=root / "run.log")
    yield process, root / "run"
    process.kill()  # a no-op once it has exited


def _finished(uninterrupted) -> Path:
    process, run = uninterrupted
    assert process.wait(timeout=300) == 0, run.with_suffix(".log").read_text()[-4000:]
    return run


def test_killed_command_resumes_to_the_same_results(tmp_path, uninterrupted):
    """SIGKILL ``genfair`` once the first arm has 3 finished generations, run the same command
    again, and compare with an uninterrupted run of the same seed."""
    killed = _genfair(tmp_path / "killed", *KILL_ARGS, log=tmp_path / "killed.log")
    try:
        arm_dir = tmp_path / "killed" / "arms" / "mle"
        deadline = time.monotonic() + 120
        while len(_generation_dirs(arm_dir)) < 3:
            assert killed.poll() is None, f"genfair exited ({killed.returncode}) before 3 generations were written"
            assert time.monotonic() < deadline, "no 3 finished generations after 120 s"
            time.sleep(0.01)
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
    finally:
        killed.kill()  # a no-op once it has exited
    done = _generation_dirs(arm_dir)
    assert 3 <= len(done) < 20, done  # killed mid-run, in the first arm
    # The kill left the lock file naming the killed process; the kernel released its lock.
    assert json.loads((tmp_path / "killed" / LOCK_FILE).read_text())["pid"] == killed.pid

    resumed = _genfair(tmp_path / "killed", *KILL_ARGS, log=tmp_path / "resumed.log")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "resumed.log").read_text()[-4000:]
    output = (tmp_path / "resumed.log").read_text()
    assert f"arm mle: resuming after generation {len(done) - 1}" in output
    assert "in use" not in output and "genfair: error" not in output
    _assert_same_results(tmp_path / "killed", _finished(uninterrupted))
    assert not list((tmp_path / "killed").rglob("*.partial"))
    assert not (tmp_path / "killed" / LOCK_FILE).exists()


# What differs between two runs of one command: wall-clock times and the log's time stamps.
TIMED = ("genfair.log", "summary.json", "record.json")


def test_a_second_command_on_a_directory_in_use_is_refused_and_the_first_ends_as_a_lone_run(tmp_path, uninterrupted):
    """Two real ``genfair`` processes on one directory: the first is stopped (SIGSTOP) once it has
    finished a generation, so it holds the directory for as long as the second takes; the second
    exits 2 in one line naming the first and leaves every byte as it was; the first, continued,
    ends with the files of a lone run (the uninterrupted run of the test above)."""
    run = tmp_path / "run"
    first = _genfair(run, *KILL_ARGS, log=tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 120
        while not _generation_dirs(run / "arms" / "mle"):
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "no finished generation after 120 s"
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)
        before = _tree_digest(run)
        second = run_command([GENFAIR, f"hydra.run.dir={run}", *KILL_ARGS], tmp_path)
        after = _tree_digest(run)
    finally:
        first.send_signal(signal.SIGCONT)
    try:
        assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()[-4000:]
    finally:
        first.kill()  # a no-op once it has exited
    stderr = second.stderr.strip()
    assert second.returncode == 2 and len(stderr.splitlines()) == 1, stderr
    assert re.fullmatch(
        rf"genfair: error: run directory {re.escape(str(run))} is in use by process {first.pid} on host "
        rf"{re.escape(socket.gethostname())} since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC; wait for that run to finish, "
        r"or choose another hydra.run.dir", stderr), stderr
    assert after == before  # not a byte of the first run's files changed, its job log included
    lone = _finished(uninterrupted)
    _assert_same_results(run, lone)
    got, want = _tree_digest(run), _tree_digest(lone)
    assert sorted(got) == sorted(want)
    assert {path: digest for path, digest in got.items() if Path(path).name not in TIMED} == {
        path: digest for path, digest in want.items() if Path(path).name not in TIMED}


def test_command_refuses_a_directory_of_another_experiment(tmp_path, uninterrupted):
    run = _finished(uninterrupted)
    before = _tree_digest(run)
    other = run_command([GENFAIR, f"hydra.run.dir={run}", *KILL_ARGS, "loop.n_real=50"], tmp_path)
    stderr = other.stderr.strip()
    assert other.returncode == 2, stderr
    assert stderr.startswith("genfair: error: ") and len(stderr.splitlines()) == 1, stderr
    assert "loop.n_real: 100 there, 50 now" in stderr and "Traceback" not in stderr
    assert _tree_digest(run) == before


# 2 generations of 400 Adam steps per arm, checkpointed every 25 steps: ~1 s a generation.
DEEP_KILL_ARGS = [
    "loop.generations=2", "loop.n_real=60", "loop.n_synthetic=60", "estimator.steps=400", "estimator.batch_size=32",
    "loop.checkpoint_every=25", "evaluation.samples=60", "evaluation.bootstrap=10", "evaluation.grid=2",
]


@pytest.mark.slow
def test_deep_command_killed_inside_a_generation_resumes_to_the_same_results(tmp_path):
    """SIGKILL the default (digits VAE) experiment once its mle arm has checkpointed generation 1
    mid-way, run the same command again, and compare with an uninterrupted run."""
    whole = _genfair(tmp_path / "whole", *DEEP_KILL_ARGS, log=tmp_path / "whole.log")
    killed = _genfair(tmp_path / "killed", *DEEP_KILL_ARGS, log=tmp_path / "killed.log")
    state = tmp_path / "killed" / "arms" / "mle" / "in_progress" / "state.json"
    try:
        deadline = time.monotonic() + 240
        while not (state.exists() and json.loads(state.read_text())["generation"] == 1):
            assert killed.poll() is None, (tmp_path / "killed.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "no checkpoint of generation 1 after 240 s"
            time.sleep(0.01)
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
    finally:
        killed.kill()
    step = json.loads(state.read_text())["step"]
    assert 0 < step < 400

    resumed = _genfair(tmp_path / "killed", *DEEP_KILL_ARGS, log=tmp_path / "resumed.log")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "resumed.log").read_text()[-4000:]
    assert whole.wait(timeout=300) == 0, (tmp_path / "whole.log").read_text()[-4000:]
    assert f"restarting the fit after step {step} of its in-generation checkpoint" in (tmp_path / "resumed.log").read_text()
    assert (tmp_path / "killed" / "metrics.csv").read_bytes() == (tmp_path / "whole" / "metrics.csv").read_bytes()
    for arm in ("mle", "ple"):
        model = f"arms/{arm}/model/model.safetensors"
        assert (tmp_path / "killed" / model).read_bytes() == (tmp_path / "whole" / model).read_bytes(), arm
    assert not list((tmp_path / "killed").rglob("in_progress"))

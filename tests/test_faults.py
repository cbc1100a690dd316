"""Runs that survive faults: a NaN or infinite loss stops that arm's generation with a clear
message and keeps the earlier generations; synthetic samples that lose a class mark the run
degraded; malformed configs and data fail fast with a :class:`ConfigError`, writing nothing;
a read-only or full output directory stops the run with one line naming the file, every file
written before intact, no temporary file left, and the run resumable once there is room.

Figures are stubbed out, as in ``test_resume.py``; the command is run once, as a subprocess.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _commands import run_command

import genfair.checkpoint
import genfair.loops._training_set
from _fixtures import skip_figures
from genfair.data import ClassMixtureData, DigitsData, ImageFileData
from genfair.errors import ConfigError, GenerationFailed
from genfair.estimators import AnchoredFit, EstimatorConfig
from genfair.evaluation import EvaluationConfig
from genfair.experiment import Arm, run_experiment
from genfair.models import AnalyticModelConfig, ClassGaussianModel, VAEConfig
from genfair.loops import LoopConfig

GENFAIR = str(Path(sys.executable).with_name("genfair"))
if not Path(GENFAIR).exists():
    GENFAIR = shutil.which("genfair")

DATA = ClassMixtureData(proportions=[0.8, 0.2], dim=2, class_names=["majority", "minority"])
ANCHOR = EstimatorConfig(name="anchor", steps=5, lr=1e-2)
DIGITS = DigitsData(classes=[3, 6], proportions=[0.8, 0.2])
TINY_VAE = VAEConfig(hidden=[32], latent_dim=4)
TINY_EVAL = EvaluationConfig(samples=60, bootstrap=10, grid=2)
STEPS = EstimatorConfig(steps=3, lr=1e-3, batch_size=16)


pytestmark = pytest.mark.usefixtures("no_figures")


def _permissions_ignored() -> bool:
    """Whether this process may write into a folder without write permission (root with
    CAP_DAC_OVERRIDE, as in many CI containers), probed rather than guessed from the user id."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o500)
        try:
            Path(folder, "probe").write_bytes(b"")
            return True
        except PermissionError:
            return False
        finally:
            os.chmod(folder, 0o700)


def _arms(generations: int) -> list[Arm]:
    """A closed-form arm and an anchored one (gradient steps on the model's loss)."""
    loop = LoopConfig(generations=generations, n_real=40, n_synthetic=40, replicates=16)
    return [Arm("mle", DATA, AnalyticModelConfig(), loop), Arm("anchor", DATA, AnalyticModelConfig(), loop, ANCHOR)]


def _nan_loss_from(monkeypatch, generation: int) -> None:
    """The class-mixture model's loss turns NaN in fits of ``generation`` and later."""
    current = {"generation": 0}
    fit, loss = AnchoredFit.__call__, ClassGaussianModel.loss

    def tracking_fit(self, model, train, generator, context):
        current["generation"] = context.generation
        return fit(self, model, train, generator, context)

    def broken_loss(self, x, labels=None):
        value = loss(self, x, labels)
        return value * float("nan") if current["generation"] >= generation else value

    monkeypatch.setattr(AnchoredFit, "__call__", tracking_fit)
    monkeypatch.setattr(ClassGaussianModel, "loss", broken_loss)


# ------------------------------------------------------------------------- NaN / inf losses
def test_nan_loss_fails_that_arm_and_keeps_earlier_generations(tmp_path, monkeypatch):
    run_experiment(_arms(2), seed=0, run_dir=tmp_path / "reference")  # generations 0-1, no fault
    _nan_loss_from(monkeypatch, 2)
    with pytest.raises(GenerationFailed) as raised:
        run_experiment(_arms(4), seed=0, run_dir=tmp_path / "run")
    error = raised.value
    assert (error.arm, error.generation) == ("anchor", 2)
    assert str(error) == "arm anchor failed at generation 2: estimator anchor: loss is nan at step 1 of 5"

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["arms"]["anchor"]["failure"] == {"generation": 2, "reason": error.reason}
    assert "failure" not in summary["arms"]["mle"]  # the other arm ran all its generations
    assert len(summary["arms"]["mle"]["generation_seconds"]) == 4
    assert len(summary["arms"]["anchor"]["generation_seconds"]) == 2

    arm, reference = tmp_path / "run" / "arms" / "anchor", tmp_path / "reference" / "arms" / "anchor"
    assert sorted(p.name for p in arm.iterdir()) == ["generation_0000", "generation_0001"]  # no .partial
    for path in reference.rglob("*.safetensors"):  # record.json differs only in its wall time
        assert (arm / path.relative_to(reference)).read_bytes() == path.read_bytes(), path
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    anchor_rows = [row for row in rows if row.startswith("anchor,")]
    reference_rows = (tmp_path / "reference" / "metrics.csv").read_text().splitlines()
    assert anchor_rows == [row for row in reference_rows if row.startswith("anchor,")]
    with np.load(tmp_path / "run" / "replicates.npz", allow_pickle=False) as npz:
        assert npz["anchor/share/minority"].shape == (2, 16) and npz["mle/share/minority"].shape == (4, 16)


def test_a_failed_run_fails_again_when_resumed_and_keeps_its_generations(tmp_path, monkeypatch):
    _nan_loss_from(monkeypatch, 1)
    with pytest.raises(GenerationFailed):
        run_experiment(_arms(3), seed=0, run_dir=tmp_path)
    kept = (tmp_path / "arms" / "anchor" / "generation_0000" / "model.safetensors").read_bytes()
    with pytest.raises(GenerationFailed, match="arm anchor failed at generation 1"):
        run_experiment(_arms(3), seed=0, run_dir=tmp_path)
    assert (tmp_path / "arms" / "anchor" / "generation_0000" / "model.safetensors").read_bytes() == kept
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and len(summary["arms"]["anchor"]["generation_seconds"]) == 1


def test_gradient_fit_names_the_estimator_step_and_value():
    """A deep model's fit (Adam steps) checks every step's loss."""
    from genfair.estimators import GradientFit
    from genfair.models import build_model
    from genfair.loops import FitContext

    model = build_model(TINY_VAE, sample_shape=DIGITS.sample_shape, num_classes=2)
    train = DIGITS.draw(1, 20, generator=torch.Generator().manual_seed(0))
    train = type(train)(train.x.clone(), train.y)
    train.x[0, 3] = float("inf")
    with pytest.raises(GenerationFailed) as raised:
        GradientFit(STEPS)(model, train, torch.Generator().manual_seed(0), FitContext(5, None))
    assert raised.value.generation == 5
    assert raised.value.reason.startswith("estimator mle: loss is ") and "at step 1 of 3" in raised.value.reason


def test_command_exits_3_with_one_line_when_a_loss_blows_up(tmp_path):
    """A learning rate of 1e6 sends the anchored fit's loss to infinity at its second step."""
    run = tmp_path / "run"
    command = [
        GENFAIR, f"hydra.run.dir={run}", "experiment=class_mixture_mad", "loop.generations=3",
        "loop.replicates=8", "estimator=anchor", "estimator.lr=1e6", "estimator.steps=5",
    ]
    result = run_command(command, tmp_path)
    stderr = result.stderr.strip()
    assert result.returncode == 3, result.stdout[-2000:] + stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("genfair: error: arm mle failed at generation 1: estimator anchor: loss is "), stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert {arm["failure"]["generation"] for arm in summary["arms"].values()} == {1}
    assert (run / "arms" / "mle" / "generation_0000" / "record.json").is_file()


# ----------------------------------------------------------------------------- lost classes
def test_deep_run_whose_samples_lose_the_minority_is_degraded(tmp_path, monkeypatch, caplog):
    """The labels of the synthetic set never name class 6 (as if the model stopped drawing it)."""
    monkeypatch.setattr(genfair.loops._training_set, "draw_labels", lambda counts, n, *, generator: torch.zeros(counts.shape[0], n, dtype=torch.int64))
    loop = LoopConfig(generations=2, n_real=40, n_synthetic=40, replicates=1)
    with caplog.at_level(logging.WARNING, logger="genfair"):
        result = run_experiment([Arm("mle", DIGITS, TINY_VAE, loop, STEPS, TINY_EVAL)], seed=0, run_dir=tmp_path)
    assert result.summary["status"] == "degraded"
    expected = [{"generation": 0, "lost": ["6"]}, {"generation": 1, "lost": ["6"]}]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "degraded" and summary["arms"]["mle"]["degraded"] == expected
    assert "arm mle · generation 0: the synthetic samples hold no class '6' (degraded run)" in caplog.text
    assert len(result.records["mle"]) == 2  # the loop went on


def test_analytic_class_lost_in_some_replicates_is_drift_not_degradation(tmp_path):
    """Wright-Fisher drift: fully synthetic chains lose the minority in some replicates only."""
    data = ClassMixtureData(proportions=[0.9, 0.1], dim=2, class_names=["majority", "minority"])
    loop = LoopConfig(generations=6, n_real=30, n_synthetic=30, replicates=64)
    result = run_experiment([Arm("mle", data, AnalyticModelConfig(), loop)], seed=0, run_dir=tmp_path)
    assert result.records["mle"][-1].values["extinct/minority"].any()
    assert result.summary["status"] == "complete" and "degraded" not in result.summary["arms"]["mle"]


def test_analytic_class_lost_in_every_replicate_is_reported_by_the_loop():
    """Seed 2: both chains lose the minority, the second at generation 4 (seed 1 loses the
    minority in one chain and the majority in the other: nothing is reported)."""
    from genfair.loops import simulate

    data = ClassMixtureData(proportions=[0.9, 0.1], dim=2, class_names=["majority", "minority"])
    config = LoopConfig(generations=20, n_real=10, n_synthetic=10, replicates=2)
    lost: list[tuple[int, tuple[str, ...]]] = []
    for seed in (1, 2):
        lost.clear()
        simulate(data=data, model=ClassGaussianModel(2, 2, replicates=2), config=config, seed=seed,
                 measure=lambda m, t, g: {"n/all": torch.zeros(2)}, on_lost_classes=lambda g, names: lost.append((g, names)))
        if seed == 1:
            assert lost == []
    assert lost == [(g, ("minority",)) for g in range(4, 20)]  # a class extinct everywhere stays extinct


# ------------------------------------------------------------------ malformed input: fuzzing
def _npz(path: Path, x: np.ndarray, y: np.ndarray) -> str:
    np.savez(path, x=x, y=y)
    return str(path)


def _images(rng: np.random.Generator, n: int, shape=(8, 8), classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    return x, np.arange(n) % classes


MALFORMED_NPZ = {
    "one-d pixels": lambda rng, n: (rng.random(n), np.arange(n) % 2),
    "five-d pixels": lambda rng, n: (rng.random((n, 1, 1, 8, 8)), np.arange(n) % 2),
    "channels last": lambda rng, n: (rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), np.arange(n) % 2),
    "nan pixels": lambda rng, n: (np.where(rng.random((n, 8, 8)) < 0.1, np.nan, 0.5), np.arange(n) % 2),
    "pixels above one": lambda rng, n: (rng.random((n, 8, 8)) * 3, np.arange(n) % 2),
    "int32 pixels": lambda rng, n: (rng.integers(0, 256, (n, 8, 8)).astype(np.int32), np.arange(n) % 2),
    "float labels": lambda rng, n: (_images(rng, n)[0], np.arange(n) % 2 + 0.5),
    "2-d labels": lambda rng, n: (_images(rng, n)[0], (np.arange(n) % 2)[:, None]),
    "short labels": lambda rng, n: (_images(rng, n)[0], np.arange(n - 1) % 2),
    "no images": lambda rng, n: (np.zeros((0, 8, 8), np.uint8), np.zeros(0, np.int64)),
    "one image in a class": lambda rng, n: (_images(rng, n)[0], np.r_[np.zeros(n - 1, np.int64), 1]),
}


def _arm_on(data, *, n_real: int = 20, n_synthetic: int = 20) -> Arm:
    return Arm("mle", data, TINY_VAE, LoopConfig(generations=2, n_real=n_real, n_synthetic=n_synthetic, replicates=1), STEPS, TINY_EVAL)


def _fails_clearly_writing_nothing(make_arms, run_dir: Path) -> None:
    """``make_arms()`` (a constructor may refuse already) or ``run_experiment`` raises
    :class:`ConfigError`, never another exception, and ``run_dir`` is left as it was."""
    before = sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else None
    with pytest.raises(ConfigError):
        run_experiment(make_arms(), seed=0, run_dir=run_dir)
    after = sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else None
    assert after == before


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(MALFORMED_NPZ)), n=st.integers(4, 40), seed=st.integers(0, 2**16))
def test_malformed_npz_files_fail_fast_and_clearly(tmp_path, kind, n, seed):
    x, y = MALFORMED_NPZ[kind](np.random.default_rng(seed), n)
    path = _npz(tmp_path / f"{kind.replace(' ', '_')}_{n}_{seed}.npz", x, y)
    _fails_clearly_writing_nothing(lambda: [_arm_on(ImageFileData(path))], tmp_path / f"run_{kind}_{n}_{seed}")


MALFORMED_ARMS = {
    "labels not in the file": lambda size, path: [_arm_on(ImageFileData(path, classes=["0", str(size + 2)]))],
    "proportions per class": lambda size, path: [_arm_on(ImageFileData(path, proportions=[1.0]))],
    "absurd n_real for the pools": lambda size, path: [_arm_on(ImageFileData(path), n_real=10**9)],
    "absurd analytic n_real": lambda size, path: [
        Arm("mle", DATA, AnalyticModelConfig(), LoopConfig(n_real=10**9 + size, replicates=1000))
    ],
    "absurd n_synthetic": lambda size, path: [_arm_on(DIGITS, n_synthetic=10**12 + size)],
    "absurd accumulated sets": lambda size, path: [
        Arm("mle", DATA, AnalyticModelConfig(), LoopConfig(kind="accumulate", generations=10**7, n_synthetic=10**4))
    ],
    "zero n_real": lambda size, path: [_arm_on(DIGITS, n_real=0)],
    "negative replicates": lambda size, path: [Arm("mle", DATA, AnalyticModelConfig(), LoopConfig(replicates=-size))],
    "deep biased sampling": lambda size, path: [  # the VAE has no biased sampler
        Arm("mle", DIGITS, TINY_VAE, LoopConfig(generations=2, n_real=20, sampling_bias=1 / (size + 2)), STEPS, TINY_EVAL)
    ],
    "minority without real samples": lambda size, path: [
        Arm("mle", ClassMixtureData(proportions=[0.999, 0.001]), AnalyticModelConfig(), LoopConfig(n_real=size + 2))
    ],
    "bad proportions": lambda size, path: [Arm("mle", ClassMixtureData(proportions=[0.5, 0.5 + size]), AnalyticModelConfig(), LoopConfig())],
    "nan proportions": lambda size, path: [_arm_on(DigitsData(proportions=[float("nan"), 0.5]))],
    "missing file": lambda size, path: [_arm_on(ImageFileData(path + ".missing"))],
    "duplicate arms": lambda size, path: [_arm_on(DIGITS), _arm_on(DIGITS)],
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(MALFORMED_ARMS)), size=st.integers(1, 50))
def test_malformed_configs_fail_fast_and_clearly(tmp_path, kind, size):
    x, y = _images(np.random.default_rng(size), 40)
    path = _npz(tmp_path / f"good_{size}.npz", x, y)
    run_dir = tmp_path / f"run_{kind.replace(' ', '_')}_{size}"
    _fails_clearly_writing_nothing(lambda: MALFORMED_ARMS[kind](size, path), run_dir)


def test_a_full_run_directory_is_never_overwritten_by_a_malformed_config(tmp_path):
    run_experiment(_arms(2), seed=0, run_dir=tmp_path)
    digest = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    bad = [Arm("mle", DATA, AnalyticModelConfig(), LoopConfig(generations=2, n_real=10**9, replicates=16))]
    with pytest.raises(ConfigError, match="more than this machine's"):
        run_experiment(bad, seed=0, run_dir=tmp_path)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == digest


@pytest.mark.skipif(_permissions_ignored(), reason="this user ignores file permissions (root)")
@pytest.mark.parametrize("where", ["run_dir", "parent"])
def test_read_only_run_directory_is_refused_before_any_work(tmp_path, where):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "notes.txt").write_text("mine")
    run_dir = locked if where == "run_dir" else locked / "run"
    locked.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="is not writable"):
            run_experiment(_arms(2), seed=0, run_dir=run_dir)
        assert sorted(p.name for p in locked.iterdir()) == ["notes.txt"]
        assert (locked / "notes.txt").read_text() == "mine"
    finally:
        locked.chmod(0o700)


# ------------------------------------------------------- a read-only or full output directory
def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _stale_temporaries(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*.tmp")]


def _failing_writes(monkeypatch, *, after: int, error: int) -> list[Path]:
    """Writes through ``genfair.checkpoint`` succeed ``after`` times, then each writes half its
    bytes and raises ``OSError(error)``, as a disk that fills up (ENOSPC) or a folder whose
    permissions change (EACCES, EROFS) would. Returns the files attempted."""
    fill, attempted = genfair.checkpoint._fill, []

    def failing(tmp: Path, write) -> None:
        attempted.append(tmp)
        fill(tmp, write)
        if len(attempted) > after:
            tmp.write_bytes(tmp.read_bytes()[: tmp.stat().st_size // 2])
            raise OSError(error, os.strerror(error))

    monkeypatch.setattr(genfair.checkpoint, "_fill", failing)
    return attempted


def _finished_run(tmp_path_factory, generations: int) -> Path:
    """A finished run of :func:`_arms` over ``generations`` (no metric figures: they are slow)."""
    with pytest.MonkeyPatch.context() as patch:
        skip_figures(patch)
        run_dir = tmp_path_factory.mktemp(f"generations_{generations}") / "run"
        run_experiment(_arms(generations), seed=0, run_dir=run_dir)
    return run_dir


@pytest.fixture(scope="module")
def two_generations(tmp_path_factory) -> Path:
    """A finished 2-generation run (copied by each test that extends it)."""
    return _finished_run(tmp_path_factory, 2)


@pytest.fixture(scope="module")
def four_generations(tmp_path_factory) -> Path:
    """The uninterrupted 4-generation run that an interrupted one must end as."""
    return _finished_run(tmp_path_factory, 4)


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES, errno.EROFS], ids=["full", "denied", "read-only"])
def test_an_unwritable_disk_stops_the_run_naming_the_file_and_keeps_every_file(tmp_path, monkeypatch, two_generations, error):
    """The first write of a resumed run fails: the error names the file, nothing written before
    changed, no temporary file is left, and once the disk is writable the run resumes."""
    run_dir = tmp_path / "run"
    shutil.copytree(two_generations, run_dir)
    before = _files(run_dir)
    attempted = _failing_writes(monkeypatch, after=0, error=error)
    with pytest.raises(OSError) as raised:
        run_experiment(_arms(4), seed=0, run_dir=run_dir)
    assert raised.value.errno == error
    tmp = attempted[0]  # .<name>.<random>.tmp
    assert raised.value.filename == str(tmp.parent / tmp.name[1:].rsplit(".", 2)[0])
    assert Path(raised.value.filename).is_relative_to(run_dir)
    assert _files(run_dir) == before and _stale_temporaries(run_dir) == []


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(after=st.integers(0, 40), error=st.sampled_from([errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT]))
def test_a_disk_that_fills_at_any_write_leaves_a_run_that_resumes_to_the_same_results(
    tmp_path_factory, two_generations, four_generations, after, error
):
    """Whichever write fails, the finished generations stay byte-identical, no temporary file is
    left, and the same run started again (with room on the disk) ends as an uninterrupted run."""
    run_dir = tmp_path_factory.mktemp("filled") / "run"
    shutil.copytree(two_generations, run_dir)
    kept = {k: v for k, v in _files(run_dir).items() if k.startswith("arms/") and "synthetic" not in k}
    with pytest.MonkeyPatch.context() as patch:
        skip_figures(patch)
        _failing_writes(patch, after=after, error=error)
        try:
            run_experiment(_arms(4), seed=0, run_dir=run_dir)
        except OSError as raised:
            assert raised.errno == error and Path(raised.filename).is_relative_to(run_dir)
        files = _files(run_dir)
        assert {k: files[k] for k in kept} == kept
        assert _stale_temporaries(run_dir) == []
        patch.undo()
        skip_figures(patch)
        run_experiment(_arms(4), seed=0, run_dir=run_dir)
    assert (run_dir / "metrics.csv").read_bytes() == (four_generations / "metrics.csv").read_bytes()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "complete"


def test_stale_temporary_files_of_a_killed_write_are_ignored(tmp_path, two_generations, four_generations):
    """A SIGKILL during a write leaves ``.<name>.<random>.tmp`` beside the file; no reader looks at it."""
    run_dir = tmp_path / "run"
    shutil.copytree(two_generations, run_dir)
    for stale in ("arms/mle/generation_0001/.model.safetensors.x1.tmp", ".summary.json.x2.tmp", "arms/.x3.tmp"):
        (run_dir / stale).write_bytes(b"half a file")
    run_experiment(_arms(4), seed=0, run_dir=run_dir)
    assert (run_dir / "metrics.csv").read_bytes() == (four_generations / "metrics.csv").read_bytes()


def _genfair_in_process(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run the ``genfair`` command in this process (so that a test can break its writes);
    returns the exit status and stderr."""
    from genfair.cli import main

    monkeypatch.setattr(sys, "argv", ["genfair", *args])
    monkeypatch.delenv("GENFAIR_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    loggers = [logging.root, *(v for v in logging.root.manager.loggerDict.values() if isinstance(v, logging.Logger))]
    saved = [(logger, logger.handlers[:], logger.level, logger.propagate, logger.disabled) for logger in loggers]
    try:
        main()
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    finally:  # Hydra configured logging to this test's captured stderr: undo it
        for logger, handlers, level, propagate, disabled in saved:
            logger.handlers[:], logger.level, logger.propagate, logger.disabled = handlers, level, propagate, disabled
    return status, capsys.readouterr().err.strip()


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES], ids=["full", "denied"])
def test_command_reports_an_unwritable_file_in_one_line(tmp_path, monkeypatch, capsys, error):
    """Root or not: the command's writes fail as a full disk or a denied folder would."""
    run_dir = tmp_path / "run"
    args = [f"hydra.run.dir={run_dir}", "experiment=class_mixture_mad", "loop.generations=2", "loop.replicates=8"]
    assert _genfair_in_process(monkeypatch, capsys, *args)[0] == 0

    def ours() -> dict[str, bytes]:  # not Hydra's own files (its log grows with every run)
        return {k: v for k, v in _files(run_dir).items() if not k.startswith(".hydra") and k != "genfair.log"}

    before = ours()
    _failing_writes(monkeypatch, after=0, error=error)
    status, stderr = _genfair_in_process(monkeypatch, capsys, *args[:2], "loop.generations=3", "loop.replicates=8")
    assert status == 2, stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith(f"genfair: error: cannot write {run_dir}/arms/"), stderr
    assert stderr.endswith(f": {os.strerror(error)}"), stderr
    assert ours() == before
    assert _stale_temporaries(run_dir) == []


@pytest.mark.skipif(_permissions_ignored(), reason="this user ignores file permissions (root)")
def test_command_stops_at_a_read_only_arm_directory_in_one_line(tmp_path):
    """The run directory is writable but an arm's folder is not (a real permission, not a mock)."""
    run_dir = tmp_path / "run"
    command = [GENFAIR, f"hydra.run.dir={run_dir}", "experiment=class_mixture_mad", "loop.replicates=8"]
    first = run_command([*command, "loop.generations=2"], tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    locked = run_dir / "arms" / "mle"
    before = _files(run_dir / "arms")
    locked.chmod(0o500)
    try:
        result = run_command([*command, "loop.generations=3"], tmp_path)
    finally:
        locked.chmod(0o700)
    stderr = result.stderr.strip()
    assert result.returncode == 2, stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith(f"genfair: error: cannot write {locked}/generation_0002"), stderr
    assert stderr.endswith("Permission denied"), stderr
    assert _files(run_dir / "arms") == before and _stale_temporaries(run_dir) == []


@pytest.mark.skipif(_permissions_ignored(), reason="this user ignores file permissions (root)")
@pytest.mark.parametrize("multirun", [False, True], ids=["run", "sweep"])
def test_command_refuses_a_read_only_run_directory_in_one_line(tmp_path, multirun):
    """Refused before Hydra would make the folder (and fail with a traceback)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    command = [GENFAIR, *(["-m"] if multirun else []), f"{key}={locked / 'run'}", "experiment=class_mixture_mad",
               "loop.generations=2", "loop.replicates=8", *(["seed=0,1"] if multirun else [])]
    locked.chmod(0o500)
    try:
        result = run_command(command, tmp_path)
    finally:
        locked.chmod(0o700)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"genfair: error: run directory {locked / 'run'} (it would be made in {locked}) is not writable; choose another {key}"
    ]
    assert list(locked.iterdir()) == []

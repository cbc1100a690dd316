"""One writer per run directory (``genfair.run_lock``): a directory that a run holds is refused to
a second run, by the library and by the command, in one line and without a byte written there;
a sweep runs the jobs whose directories are free; the readers say who still runs a directory.

The holder is the test itself (in this process, or a small helper process for the library, which
re-enters a lock its own process holds). Two real ``genfair`` processes on one directory, and a
SIGKILLed run that the next one resumes, are in tests/test_resume.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from _commands import run_command

import genfair.run_lock as run_lock
from genfair.cli import aggregate_main
from genfair.data import ClassMixtureData
from genfair.errors import ConfigError
from genfair.experiment import Arm, run_experiment
from genfair.loops import LoopConfig
from genfair.models import AnalyticModelConfig
from genfair.run_lock import LOCK_FILE, RunDirInUse, hold_run_dir, lock_holder
from genfair.studies import VarianceBiasConfig, run_study

BIN = Path(sys.executable).parent
GENFAIR = str(BIN / "genfair") if (BIN / "genfair").exists() else shutil.which("genfair")
TINY = ["experiment=class_mixture_mad", "loop.generations=2", "loop.replicates=50"]
IN_USE = re.compile(
    r"run directory (?P<dir>\S+) is in use by process (?P<pid>\d+) on host (?P<host>\S+) since "
    r"(?P<since>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC); wait for that run to finish, or choose another (?P<key>\S+)"
)
_HOLDER = "import sys\nfrom genfair.run_lock import hold_run_dir\nwith hold_run_dir(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n"


pytestmark = pytest.mark.usefixtures("no_figures")


def _arms(generations: int = 2) -> list[Arm]:
    data = ClassMixtureData(proportions=[0.9, 0.1], dim=2, class_names=["majority", "minority"])
    return [Arm("mle", data, AnalyticModelConfig(), LoopConfig(generations=generations, n_real=30, replicates=16))]


def _tree_digest(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@contextmanager
def _held_by_another_process(run_dir: Path) -> Iterator[int]:
    """Hold ``run_dir`` in a helper process for the ``with`` block; yields its process id."""
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run_dir)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        yield process.pid
    finally:
        process.stdin.close()
        process.wait(timeout=60)


def _in_use(message: str, run_dir: Path, pid: int, key: str = "hydra.run.dir") -> None:
    """``message`` is the one line of a directory in use, naming ``run_dir``, ``pid``, this host and ``key``."""
    assert "\n" not in message, message
    found = IN_USE.search(message)
    assert found, message
    assert (found["dir"], int(found["pid"]), found["host"], found["key"]) == (str(run_dir), pid, socket.gethostname(), key)


# --------------------------------------------------------------------------------- the library
def test_the_holder_is_recorded_and_the_lock_is_gone_with_the_block(tmp_path):
    run_dir = tmp_path / "made" / "run"
    with hold_run_dir(run_dir):
        record = json.loads((run_dir / LOCK_FILE).read_text())
        assert (record["pid"], record["host"]) == (os.getpid(), socket.gethostname())
        holder = lock_holder(run_dir)
        assert (holder.pid, holder.host, holder.since) == (os.getpid(), socket.gethostname(), record["since"])
        with hold_run_dir(run_dir):  # re-entrant in its own process (the command, then run_experiment)
            pass
        assert lock_holder(run_dir) is not None
    assert lock_holder(run_dir) is None
    assert not (tmp_path / "made").exists()  # the folders it made, empty again, are removed


def test_run_experiment_and_run_study_refuse_a_directory_another_process_holds(tmp_path):
    run_dir = tmp_path / "run"
    run_experiment(_arms(2), seed=0, run_dir=run_dir)
    before = _tree_digest(run_dir)
    with _held_by_another_process(run_dir) as pid:
        with pytest.raises(RunDirInUse) as raised:
            run_experiment(_arms(3), seed=0, run_dir=run_dir)
        _in_use(str(raised.value), run_dir, pid)
        assert raised.value.holder.pid == pid
        held = _tree_digest(run_dir)
        with pytest.raises(RunDirInUse):
            run_study(VarianceBiasConfig(steps=2, only=["hyper_mle"]), seed=0, run_dir=run_dir)
        assert _tree_digest(run_dir) == held  # nothing read-modified or written
    assert held == {**before, LOCK_FILE: held[LOCK_FILE]}  # the holder's lock file beside the run
    run_experiment(_arms(3), seed=0, run_dir=run_dir)  # released: the run goes on
    assert len(json.loads((run_dir / "summary.json").read_text())["arms"]["mle"]["generation_seconds"]) == 3
    assert not (run_dir / LOCK_FILE).exists()


def test_a_stale_lock_file_of_a_killed_run_is_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_text('{"pid": 1, "host": "gone", "since": "2020-01-01 00:00:00 UTC"}\n')
    assert lock_holder(tmp_path) is None  # nobody holds its lock
    with hold_run_dir(tmp_path):
        assert lock_holder(tmp_path).pid == os.getpid()


@pytest.mark.parametrize(
    ("where", "code", "reason"),
    [("lock", errno.ENOLCK, "No locks available"), ("open", errno.EROFS, "Read-only file system")],
    ids=["no-lock-support", "read-only"],
)
def test_a_file_system_that_cannot_lock_is_refused_in_one_line(tmp_path, monkeypatch, where, code, reason):
    def fails(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    if where == "lock":
        monkeypatch.setattr(run_lock, "_try_lock", fails)
    else:
        real_open = os.open
        monkeypatch.setattr(os, "open", lambda path, *a, **k: fails() if str(path).endswith(LOCK_FILE) else real_open(path, *a, **k))
    run_dir = tmp_path / "made" / "run"
    with pytest.raises(ConfigError) as raised:
        run_experiment(_arms(2), seed=0, run_dir=run_dir)
    message = str(raised.value)
    assert message == (
        f"cannot lock run directory {run_dir} ({LOCK_FILE}: {reason}); genfair locks a run directory so that one run "
        "at a time writes it: choose a hydra.run.dir on a writable file system that supports file locks (a local disk)"
    )
    assert not (tmp_path / "made").exists()


# --------------------------------------------------------------------------------- the command
def test_the_command_refuses_a_directory_in_use_in_one_line_writing_nothing(tmp_path):
    run_dir = tmp_path / "run"
    run_experiment(_arms(2), seed=0, run_dir=run_dir)
    with hold_run_dir(run_dir):
        before = _tree_digest(run_dir)
        result = run_command([GENFAIR, f"hydra.run.dir={run_dir}", *TINY], tmp_path)
        assert _tree_digest(run_dir) == before  # no job log, no summary, nothing
    assert result.returncode == 2, result.stderr
    stderr = result.stderr.strip()
    assert stderr.startswith("genfair: error: run directory ") and "Traceback" not in stderr
    _in_use(stderr, run_dir, os.getpid())


def test_a_sweep_over_a_directory_in_use_runs_the_other_jobs(tmp_path):
    """Job 0's directory is held (by the test, as by job 0 of a sweep still running, whose job log
    is there too); the re-submitted sweep refuses job 0 in its line and runs job 1."""
    sweep = tmp_path / "sweep"
    run_experiment(_arms(2), seed=0, run_dir=sweep / "0")
    (sweep / "0" / "genfair.log").write_text("[the running job's log]\n")
    with hold_run_dir(sweep / "0"):
        held = _tree_digest(sweep / "0")
        result = run_command([GENFAIR, "-m", f"hydra.sweep.dir={sweep}", *TINY, "seed=0,1"], tmp_path)
        assert _tree_digest(sweep / "0") == held
    assert result.returncode == 0, result.stderr[-3000:]
    refused = [line for line in result.stderr.splitlines() if line.startswith("genfair: error: ")]
    assert len(refused) == 1, result.stderr[-3000:]
    _in_use(refused[0].removeprefix("genfair: error: "), sweep / "0", os.getpid(), key="hydra.sweep.dir")
    assert json.loads((sweep / "1" / "summary.json").read_text())["status"] == "complete"


# --------------------------------------------------------------------------------- the readers
def test_aggregate_and_plot_read_a_directory_in_use_and_say_it_is_still_running(tmp_path, capsys):
    from genfair.cli import plot_main

    for seed in (0, 1, 2):
        run_experiment(_arms(2), seed=seed, run_dir=tmp_path / str(seed))
    stopped = json.loads((tmp_path / "2" / "summary.json").read_text())
    (tmp_path / "2" / "summary.json").write_text(json.dumps({**stopped, "status": "running"}))  # as a killed run leaves it
    with hold_run_dir(tmp_path / "1"):
        aggregate_main([str(tmp_path), "--out", str(tmp_path / "out")])
        plot_main([str(tmp_path / "0"), str(tmp_path / "1"), "--out", str(tmp_path / "plots")])
        assert lock_holder(tmp_path / "1").pid == os.getpid()  # the readers took nothing from the holder
    err = capsys.readouterr().err
    assert re.search(rf"genfair-aggregate: warning: skipping {re.escape(str(tmp_path / '1'))} \(still running: process "
                     rf"{os.getpid()} on host {re.escape(socket.gethostname())} since [^)]+ UTC\)", err), err
    assert (f"skipping {tmp_path / '2'} (status 'running', but no process holds it: the run was stopped; its command "
            "resumes it)") in err
    assert re.search(rf"genfair-plot: warning: {re.escape(str(tmp_path / '1'))} is still running \(process {os.getpid()} "
                     r"on host \S+ since [^)]+\); plotting the generations it has finished", err), err
    assert f"genfair-plot: warning: {tmp_path / '0'}" not in err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["seeds"] == [0]
    assert summary["skipped"] == [{"dir": "1", "status": "running"}, {"dir": "2", "status": "running"}]
    assert not any(path.name == LOCK_FILE for path in tmp_path.rglob("*"))

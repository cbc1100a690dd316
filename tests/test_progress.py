"""Progress on long work: the terminal step line, and the per-generation and per-chain log lines
(with time-left estimates) of deep runs, also from worker processes."""

from __future__ import annotations

import io
import logging
import sys

import pytest
import torch

from genfair._chains import ChainJob, ChainResult, run_in_workers
from genfair.data import DigitsData
from genfair.estimators import EstimatorConfig
from genfair.evaluation import EvaluationConfig
from genfair.experiment import Arm, run_experiment
from genfair.loops import GenerationRecord, LoopConfig
from genfair.models import VAEConfig
from genfair.progress import StepProgress, format_duration, terminal_progress
from genfair.training import take_step


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(text: str) -> list[str]:
    return [part.rstrip() for part in text.split("\r") if part.strip()]


def test_the_step_line_estimates_the_time_left_and_is_cleared_at_the_end():
    clock = iter(range(100)).__next__  # 1 s per step
    out = io.StringIO()
    progress = StepProgress(out, interval=0.0, clock=clock)
    for step in range(10):
        progress.update("estimator ple", step, 10)
    lines = _lines(out.getvalue())
    assert lines[0] == "estimator ple: step 1 of 10"  # no rate before a second step
    assert lines[4] == "estimator ple: step 5 of 10 · 1 s/step · about 5 s left"
    assert len(lines) == 9  # the tenth step clears the line instead
    assert out.getvalue().endswith(" " * len(lines[-1]) + "\r")


def test_the_step_line_is_rewritten_at_most_once_per_interval():
    clock = iter(range(100)).__next__
    out = io.StringIO()
    progress = StepProgress(out, interval=3.0, clock=clock)
    for step in range(10):
        progress.update("fit", step, 10)
    assert [line.split(" · ")[0] for line in _lines(out.getvalue())] == [
        "fit: step 1 of 10", "fit: step 4 of 10", "fit: step 7 of 10",
    ]


def test_a_new_loop_restarts_the_clock():
    """The rate of a second loop counts from its own first step, not from the first loop's."""
    clock = iter([0, 1, 2, 100, 101, 102]).__next__
    out = io.StringIO()
    progress = StepProgress(out, interval=0.0, clock=clock)
    for step in range(3):
        progress.update("first", step, 3)
    for step in range(3):
        progress.update("second", step, 4)
    assert _lines(out.getvalue())[-1] == "second: step 3 of 4 · 1 s/step · about 1 s left"


def test_take_step_draws_the_line_on_a_terminal_only(monkeypatch):
    model = torch.nn.Linear(2, 1)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)

    def train() -> None:
        for step in range(3):
            take_step(model(torch.ones(1, 2)).square().mean(), optimiser, what="example fit", step=step, steps=5)

    for env, tty, shown in (("1", True, True), ("0", True, False), ("1", False, False)):
        stream = _Terminal() if tty else io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        monkeypatch.setenv("GENFAIR_PROGRESS", env)
        monkeypatch.setattr("genfair.progress._TERMINAL", {})
        assert (terminal_progress() is not None) == shown
        train()
        assert ("example fit: step 1 of 5" in stream.getvalue()) == shown, (env, tty)  # later steps: within 0.1 s


def test_durations_read_in_the_unit_that_suits_them():
    assert [format_duration(s) for s in (0.4, 89, 90, 5399, 5400)] == ["0 s", "89 s", "1.5 min", "90.0 min", "1.5 h"]


def _logging_job(job: ChainJob) -> ChainResult:
    logging.getLogger("genfair").info("worker line from replicate %d", job.replicate)
    logging.getLogger("genfair.metrics._classifier").info("classifier loaded again")
    return ChainResult(str(job.arm), job.replicate, [])


def test_worker_log_lines_reach_the_commands_log(caplog, tmp_path):
    """Chains in spawned workers log through the command's process (its console and log file)."""
    jobs = [ChainJob("arm", r, 0, tmp_path) for r in range(2)]
    with caplog.at_level(logging.INFO, logger="genfair"):
        results = list(run_in_workers(jobs, workers=2, run_one=_logging_job))
    assert sorted(r.replicate for r in results) == [0, 1]
    messages = [record.getMessage() for record in caplog.records]
    assert sorted(m for m in messages if m.startswith("worker line")) == [
        "worker line from replicate 0", "worker line from replicate 1",
    ]
    assert "classifier loaded again" not in messages  # said once, by the command's process


def test_deep_chains_log_every_generation_and_the_run_its_time_left(caplog, tmp_path):
    loop = LoopConfig(generations=2, n_real=40, n_synthetic=40, replicates=2)
    arm = Arm("mle", DigitsData(classes=[3, 6], proportions=[0.8, 0.2]), VAEConfig(hidden=[32], latent_dim=4), loop,
              EstimatorConfig(steps=3, lr=1e-3, batch_size=16), EvaluationConfig(samples=60, bootstrap=10, grid=2))
    with caplog.at_level(logging.INFO, logger="genfair"):
        run_experiment([arm], seed=0, run_dir=tmp_path, workers=1)
    messages = [record.getMessage() for record in caplog.records]
    generations = [m for m in messages if "chain done in about" in m]
    assert [m.split(" · 0")[0].split(" · ")[:3] for m in generations] == [
        ["arm mle", f"replicate {r} of 2", f"generation {g} ({g + 1} of 2)"] for r in (1, 2) for g in (0, 1)
    ]
    chains = [m for m in messages if "chains done" in m]
    assert len(chains) == 2 and " · 1 of 2 chains done · run done in about " in chains[0]
    assert chains[1].endswith(" · 2 of 2 chains done")


def test_the_runs_time_left_counts_each_arms_chains_at_that_arms_pace():
    """Left: 2 mle chains at mle's 10 s, 3 ple chains at the slowest known pace (mle's, no ple
    chain finished), 2 workers: (2 x 10 + 3 x 10) / 2 = 25 s; once a ple chain took 40 s, 2
    ple chains left: 80 / 2 = 40 s."""
    from genfair.experiment import _time_left  # noqa: PLC0415

    def chains(*seconds: float) -> list[ChainResult]:
        return [ChainResult("x", 0, [GenerationRecord(0, {}, s)]) for s in seconds]

    loop = LoopConfig(replicates=3)
    arms = [Arm("mle", DigitsData(), VAEConfig(), loop), Arm("ple", DigitsData(), VAEConfig(), loop)]
    assert _time_left(arms, {"mle": chains(10.0), "ple": []}, workers=2) == pytest.approx(25.0)
    assert _time_left(arms, {"mle": chains(10.0, 10.0, 10.0), "ple": chains(40.0)}, workers=2) == pytest.approx(40.0)
    assert _time_left(arms, {"mle": chains(10.0, 10.0, 10.0), "ple": chains(40.0, 40.0)}, workers=4) == pytest.approx(40.0)

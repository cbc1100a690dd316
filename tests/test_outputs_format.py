"""Result files that other tools can read: every file a run writes has the mode the umask gives
(not mkstemp's 0600), and ``summary.json`` is strict JSON, ``null`` where a value is missing."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from genfair.checkpoint import save_tensors, write_bytes_atomic, write_json
from genfair.data import ClassMixtureData
from genfair.experiment import Arm, run_experiment
from genfair.loops import LoopConfig
from genfair.models import AnalyticModelConfig

DATA = ClassMixtureData(proportions=[0.8, 0.2], dim=2, class_names=["majority", "minority"])


def _strict(text: str) -> object:
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON, RFC 8259)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class _Umask:
    def __init__(self, mask: int) -> None:
        self.mask = mask

    def __enter__(self) -> None:
        self.saved = os.umask(self.mask)

    def __exit__(self, *exc: object) -> None:
        os.umask(self.saved)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A two-generation class-mixture run with one replicate (so its standard errors and
    intervals are NaN), written under umask 022."""
    run = tmp_path_factory.mktemp("outputs") / "run"
    loop = LoopConfig(generations=2, n_real=40, n_synthetic=40, replicates=1)
    with _Umask(0o022):
        run_experiment([Arm("mle", DATA, AnalyticModelConfig(), loop)], seed=0, run_dir=run)
    return run


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_atomic_writes_get_the_mode_the_umask_allows(tmp_path, mask):
    with _Umask(mask):
        write_bytes_atomic(tmp_path / "a.bin", b"x")
        write_json(tmp_path / "a.json", {"x": 1})
        save_tensors(tmp_path / "a.safetensors", {"x": torch.zeros(2)})
    for name in ("a.bin", "a.json", "a.safetensors"):
        assert _mode(tmp_path / name) == 0o666 & ~mask, (name, oct(_mode(tmp_path / name)))


def test_every_file_of_a_run_is_readable_by_other_users_under_umask_022(run_dir):
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {"summary.json", "metrics.csv", "replicates.npz"} <= {p.name for p in files}
    wrong = {str(p.relative_to(run_dir)): oct(_mode(p)) for p in files if _mode(p) != 0o644}
    assert not wrong, wrong


def test_summary_json_is_strict_json_with_null_for_missing_values(run_dir):
    text = (run_dir / "summary.json").read_text()
    summary = _strict(text)  # raises on NaN / Infinity
    stats = summary["headline"]["mle"]["share/minority"]
    assert stats["n"] == 1 and stats["se"] is None and stats["lo"] is None  # undefined for one replicate
    assert isinstance(stats["mean"], float) and math.isfinite(stats["mean"])


def test_write_json_writes_nan_and_infinities_as_null(tmp_path):
    write_json(tmp_path / "x.json", {"nan": float("nan"), "inf": [math.inf, -math.inf], "np": np.float64("nan"), "ok": 0.5})
    assert _strict((tmp_path / "x.json").read_text()) == {"nan": None, "inf": [None, None], "np": None, "ok": 0.5}


def test_the_summary_status_and_arm_entries_come_from_what_the_run_reported(tmp_path):
    """RunOutputs builds summary.json from the header and the reports: a failure outranks a lost
    class, a lost class outranks complete, and a chain without lost classes is left out."""
    from genfair._outputs import RunOutputs

    header = {"seed": 0, "headline_metrics": ["share"], "minority": "b"}
    outputs = RunOutputs(tmp_path, header)
    assert outputs.finish() == [] and outputs.summary["status"] == "complete"
    lost = [{"generation": 2, "lost": ["b"]}]
    outputs.record_lost("ple", lost, by_replicate={0: lost, 1: []})
    outputs.finish()
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["status"] == "degraded"
    assert written["arms"]["ple"] == {"degraded": lost, "lost_by_replicate": {"0": lost}}
    outputs.record_failure("mle", 3, "NaN loss")
    outputs.finish()
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["status"] == "failed" and written["arms"]["mle"]["failure"] == {"generation": 3, "reason": "NaN loss"}
    assert {k: written[k] for k in header} == header

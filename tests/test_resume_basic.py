"""A run continued in its run directory ends exactly like an uninterrupted one; a different
experiment is refused without touching the directory."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from genfair.data import ClassMixtureData
from genfair.errors import ConfigError
from genfair.experiment import Arm, run_experiment
from genfair.models import AnalyticModelConfig
from loops import LOOP_KINDS, LoopConfig


def arms(kind: str, generations: int, n_real: int = 40) -> list[Arm]:
    data = ClassMixtureData(proportions=[0.8, 0.2], dim=2, class_names=["majority", "minority"])
    loop = LoopConfig(kind=kind, generations=generations, n_real=n_real, n_synthetic=30, replicates=64)
    return [Arm(e, data, AnalyticModelConfig(estimator=e), loop) for e in ("mle", "unbiased")]


def tree_digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_resumed_run_matches_an_uninterrupted_one(kind, tmp_path):
    run_experiment(arms(kind, 6), seed=3, run_dir=tmp_path / "whole")
    run_experiment(arms(kind, 3), seed=3, run_dir=tmp_path / "parts")  # stopped after generation 2
    run_experiment(arms(kind, 6), seed=3, run_dir=tmp_path / "parts")  # resumed to the end
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert (whole / "metrics.csv").read_bytes() == (parts / "metrics.csv").read_bytes()
    with np.load(whole / "replicates.npz") as a, np.load(parts / "replicates.npz") as b:
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_a_different_experiment_is_refused_and_nothing_is_touched(tmp_path):
    run_experiment(arms("fully_synthetic", 2), seed=0, run_dir=tmp_path)
    before = tree_digest(tmp_path)
    with pytest.raises(ConfigError, match="n_real: 40 there, 50 now"):
        run_experiment(arms("fully_synthetic", 2, n_real=50), seed=0, run_dir=tmp_path)
    assert tree_digest(tmp_path) == before


def test_a_leftover_partial_generation_is_replaced(tmp_path):
    run_experiment(arms("accumulate", 2), seed=0, run_dir=tmp_path / "whole")
    run_experiment(arms("accumulate", 1), seed=0, run_dir=tmp_path / "parts")
    leftover = tmp_path / "parts" / "arms" / "mle" / "generation_0001.partial"
    leftover.mkdir()
    (leftover / "metrics.safetensors").write_bytes(b"half-written")
    run_experiment(arms("accumulate", 2), seed=0, run_dir=tmp_path / "parts")
    assert (tmp_path / "whole" / "metrics.csv").read_bytes() == (tmp_path / "parts" / "metrics.csv").read_bytes()
    assert not leftover.exists()


def test_an_altered_checkpoint_fails_loudly(tmp_path):
    run_experiment(arms("fully_synthetic", 2), seed=0, run_dir=tmp_path)
    model_file = tmp_path / "arms" / "mle" / "generation_0001" / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:-7])
    with pytest.raises(ConfigError, match="model.safetensors does not match its recorded sha256"):
        run_experiment(arms("fully_synthetic", 3), seed=0, run_dir=tmp_path)

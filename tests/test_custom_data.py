"""``data=custom``: a data source from the user's code (examples/data.py) runs the loop through the
command line, and a source without ``heldout`` is refused in one line before any work. The
commands run from the repository root, where ``data._target_=examples.data.<Class>`` imports, and
from a folder holding the user's module; both at once in the module-scoped fixture ``cli``."""

from __future__ import annotations

import csv
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _commands import run_commands, shrunk_arms

from genfair.data import CustomData
from genfair.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GENFAIR = str(BIN / "genfair") if (BIN / "genfair").exists() else shutil.which("genfair")
# The default experiment, shrunk (its arms that set their own step count too).
TINY = ["loop.generations=2", "loop.replicates=1", "estimator.steps=3", "estimator.sets_per_step=2",
        *shrunk_arms("digits_vae", "estimator.steps=3"), "evaluation.samples=60", "evaluation.bootstrap=10", "workers=1"]
RUN = ["data=custom", "data._target_=examples.data.OnesAndSevens", "+data.minority_share=0.1"]
NO_HELDOUT = ["data=custom", "data._target_=user_data.NoHeldout"]
USER_DATA = '''
import torch
from genfair.data import Batch


class NoHeldout:
    """Draws, but nothing held out to measure the generations against."""

    group_names = ("a", "b")
    shares = (0.9, 0.1)
    sample_shape = (1, 8, 8)

    def draw(self, replicates, n, *, generator):
        return Batch(torch.rand(replicates, n, 1, 8, 8, generator=generator), torch.zeros(replicates, n, dtype=torch.int64))

    def training_pool(self):
        return self.draw(1, 10, generator=torch.Generator())
'''


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    root = tmp_path_factory.mktemp("custom_data")
    user = root / "user"
    user.mkdir()
    (user / "user_data.py").write_text(USER_DATA)
    jobs = {"run": (RUN, REPO), "no_heldout": (NO_HELDOUT, user)}
    commands = {name: ([GENFAIR, *args, *TINY, f"hydra.run.dir={root / name}"], cwd) for name, (args, cwd) in jobs.items()}
    return {name: (result, root / name) for name, result in run_commands(commands, timeout=600).items()}


def test_a_custom_source_runs_the_loop_through_the_command_line(cli):
    result, run = cli["run"]
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-4000:]}"
    with open(run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["generation"] for r in rows} == {"0", "1"}
    shares = {r["group"] for r in rows if r["metric"] == "train_share"}
    assert shares == {"1", "7"}
    generation_0 = {r["group"]: float(r["mean"]) for r in rows if r["metric"] == "train_share" and r["generation"] == "0"}
    assert generation_0["7"] == pytest.approx(0.1, abs=0.02)  # the source's minority share, drawn by the source
    assert all(math.isfinite(float(r["mean"])) for r in rows if r["metric"] == "share")


def test_a_source_without_heldout_is_refused_in_one_line_before_any_work(cli):
    result, run = cli["no_heldout"]
    stderr = result.stderr.strip()
    assert result.returncode == 2, stderr
    assert stderr.startswith("genfair: error: ") and len(stderr.splitlines()) == 1, stderr
    for word in ("NoHeldout has no method 'heldout'", "measured against"):
        assert word in stderr, f"{word!r} not in {stderr!r}"
    left = {p.name: p.stat().st_size for p in run.iterdir()} if run.exists() else {}
    assert set(left) <= {"genfair.log"} and not any(left.values()), left


def test_custom_data_delegates_to_the_source_it_builds_once():
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    data = CustomData(target="examples.data.OnesAndSevens", kwargs={"minority_share": 0.2})
    data.check()
    assert data.group_names == ("1", "7") and data.shares == pytest.approx((0.8, 0.2)) and data.sample_shape == (1, 8, 8)
    batch = data.draw(3, 10, generator=torch.Generator().manual_seed(0))
    assert batch.x.shape == (3, 10, 1, 8, 8) and batch.class_counts(2).tolist() == [[8, 2]] * 3
    assert data.source is data.source
    assert "_source" not in {f for f in CustomData.__dataclass_fields__}  # the config stays plain
    with pytest.raises(ConfigError, match="data._target_ must name"):
        CustomData(target="nodots")

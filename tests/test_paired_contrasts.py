"""``examples/paired_contrasts.py``: contrasts between chosen arms of one run, from its
``replicates.npz``, checked against hand-computed values."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # examples/ is not installed: import it from the repository root
    sys.path.insert(0, str(REPO))

from examples.paired_contrasts import contrasts, main  # noqa: E402


@pytest.fixture()
def run_dir(tmp_path):
    """Three arms, 3 generations, 8 chains; ``b - a`` on the minority's coverage over generations
    1-2 is d_r = (r + 1) / 100 (all positive), ``c - a`` alternates in sign."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.6, size=(3, 8))
    d = (np.arange(8) + 1) / 100
    arrays = {
        "a/coverage/6": base,
        "b/coverage/6": base + np.array([0.5, 1.0, 1.0])[:, None] * d,  # generation 0 outside the endpoint
        "c/coverage/6": base + np.where(np.arange(8) % 2 == 0, 1, -1) * d,
    }
    for key in list(arrays):
        arrays[key.replace("/6", "/3")] = arrays[key] * 0 + 0.9
    np.savez(tmp_path / "replicates.npz", **arrays)
    (tmp_path / "summary.json").write_text(json.dumps({"minority": "6"}))
    return tmp_path


def test_contrasts_are_the_paired_statistics_of_the_endpoint_with_holm_over_the_list(run_dir):
    rows = contrasts(run_dir, [("b", "a"), ("c", "a")], metric="coverage", group="minority", first=1, last=None)
    d = (np.arange(8) + 1) / 100
    b = rows[0]
    assert (b["arm"], b["baseline"], b["generation"], b["n"]) == ("b", "a", "1-2", 8)
    assert b["mean_diff"] == pytest.approx(d.mean())
    half = stats.t.ppf(0.975, 7) * d.std(ddof=1) / np.sqrt(8)
    assert (b["lo"], b["hi"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert b["p_signflip"] == pytest.approx(2 / 256)  # only all-plus and all-minus are as extreme
    c = rows[1]
    signed = np.where(np.arange(8) % 2 == 0, 1, -1) * d
    assert c["mean_diff"] == pytest.approx(signed.mean())
    flips = np.array([[1 if (k >> i) & 1 else -1 for i in range(8)] for k in range(256)])
    p_c = np.mean(np.abs(flips @ np.abs(signed)) >= abs(signed.sum()) - 1e-12)
    assert c["p_signflip"] == pytest.approx(p_c)
    assert b["p_signflip_holm"] == pytest.approx(min(1, 2 * b["p_signflip"]))  # the smaller p, times 2
    assert c["p_signflip_holm"] == pytest.approx(max(b["p_signflip_holm"], min(1, c["p_signflip"])))


def test_an_unknown_arm_is_refused_in_one_line(run_dir, capsys):
    assert main([str(run_dir), "b:nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("paired_contrasts: error: contrast b:nope: arms must be arms of") and "['nope']" in err
    assert "\n" not in err


def test_a_contrast_relative_to_generation_0_subtracts_each_chains_own_generation_0(run_dir):
    # b - a is 0.5 d_r at generation 0 and d_r at generations 1-2: the change differs by 0.5 d_r.
    (b,) = contrasts(run_dir, [("b", "a")], metric="coverage", group="minority", first=1, last=None, relative_to="generation_0")
    d = (np.arange(8) + 1) / 100
    assert (b["relative_to"], b["generation"], b["n"]) == ("generation_0", "1-2", 8)
    assert b["mean_diff"] == pytest.approx(0.5 * d.mean())
    assert b["se"] == pytest.approx(0.5 * d.std(ddof=1) / np.sqrt(8))

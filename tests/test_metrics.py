"""Metrics against closed forms and another implementation (scipy)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from genfair.metrics import gaussian_w2_sq, summarize_replicates


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_w2_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    for d in (1, 2, 5):
        m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
        s1, s2 = random_spd(rng, d), random_spd(rng, d)
        root2 = scipy.linalg.sqrtm(s2).real
        expected = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(root2 @ s1 @ root2).real)
        got = gaussian_w2_sq(*(torch.tensor(v) for v in (m1, s1, m2, s2)))
        assert got.item() == pytest.approx(expected, rel=1e-8)


def test_w2_in_one_dimension_is_mean_gap_plus_sd_gap():
    mean, var = torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([[[2.25]]], dtype=torch.float64)
    w2 = gaussian_w2_sq(mean, var, torch.zeros(1, 1, dtype=torch.float64), torch.eye(1, dtype=torch.float64)[None])
    assert w2.item() == pytest.approx(0.3**2 + (1.5 - 1.0) ** 2)


def test_w2_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(1)
    s = torch.tensor(random_spd(rng, 3))
    assert gaussian_w2_sq(torch.ones(3), s, torch.ones(3), s).item() == pytest.approx(0.0, abs=1e-10)


def test_summary_leaves_out_undefined_values():
    summary = summarize_replicates(np.array([1.0, 2.0, np.nan, 3.0]))
    assert summary.n == 3 and summary.mean == 2.0 and summary.median == 2.0
    assert summary.se == pytest.approx(1.0 / np.sqrt(3))
    empty = summarize_replicates(np.array([np.nan]))
    assert empty.n == 0 and np.isnan(empty.mean)

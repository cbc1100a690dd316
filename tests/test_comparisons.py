"""``genfair.comparisons``: paired differences, t-intervals, sign-flip tests, Holm and BH.

References: ``scipy.stats.ttest_rel`` (p-value and confidence interval), a brute-force
enumeration of sign flips in exact decimal arithmetic (``itertools.product`` and ``Fraction``),
Holm and Benjamini–Hochberg values worked out by hand, and a primary endpoint by hand.
"""

from __future__ import annotations

import csv
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from genfair.comparisons import (
    COMPARISON_COLUMNS,
    CompareConfig,
    benjamini_hochberg,
    changes_from_generation_0,
    check_compare,
    holm,
    paired_comparisons,
    sign_flip_pvalue,
    write_comparisons_csv,
)
from genfair.errors import ConfigError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _brute_force_pvalue(differences: list[float]) -> float:
    """Two-sided sign-flip p-value by enumerating every sign vector, in exact decimals."""
    exact = [Fraction(str(d)) for d in differences]
    observed = abs(sum(exact))
    flips = list(itertools.product((1, -1), repeat=len(exact)))
    extreme = sum(abs(sum(s * d for s, d in zip(signs, exact))) >= observed for signs in flips)
    return extreme / len(flips)


@pytest.mark.parametrize(
    "differences",
    [
        [0.5],
        [0.3, 0.1],
        [1.0, 2.0, 3.0, 4.0],  # all positive: 2 / 2^4, the smallest p at n = 4
        [1.0, -1.0, 2.0, 0.0, 3.0],  # a zero and ties in |d|
        [-0.7, -0.9, -0.1, 0.7],  # float ties: 8 of 16 flips reach |sum| = 1.0 exactly
        [0.0, 0.0, 0.0],  # no difference at all: p = 1
        [0.2, -0.5, 0.9, 0.4, -0.1, 0.3, 0.8],
    ],
)
def test_sign_flip_pvalue_equals_brute_force_enumeration(differences):
    generator = np.random.default_rng(0)
    assert sign_flip_pvalue(np.array(differences), generator=generator) == pytest.approx(
        _brute_force_pvalue(differences), abs=1e-15
    )


def test_sign_flip_pvalue_with_random_flips():
    # n = 20 > 16: random flips. With |d_r| = 1, sum(s d) = 2K - 20 with K ~ Binomial(20, 1/2), so
    # the exact p of 14 ones and 6 minus ones (sum 8) is P(K >= 14) + P(K <= 6).
    d = np.array([1.0] * 14 + [-1.0] * 6)
    exact = 2 * stats.binom.sf(13, 20, 0.5)
    b = 20000
    p = sign_flip_pvalue(d, permutations=b, generator=np.random.default_rng(1))
    assert p == pytest.approx(exact, abs=5 * math.sqrt(exact * (1 - exact) / b))
    # All 20 equal: the exact p is 2 / 2^20, so no random flip is as extreme and the +1
    # correction gives exactly 1 / (1 + B).
    assert sign_flip_pvalue(np.ones(20), permutations=99, generator=np.random.default_rng(2)) == 1 / 100


def test_holm_and_benjamini_hochberg_by_hand():
    p = [0.045, 0.01, math.nan, 0.04, 0.005, 0.3]
    # m = 5 finite p-values (the NaN is out of the family). Sorted: 0.005, 0.01, 0.04, 0.045, 0.3.
    # Holm (m - j + 1) p_(j): 0.025, 0.04, 0.12, 0.09, 0.3; running max -> 0.025, 0.04, 0.12, 0.12, 0.3.
    expected_holm = [0.12, 0.04, math.nan, 0.12, 0.025, 0.3]
    # BH m p_(j) / j: 0.025, 0.025, 0.0666.., 0.05625, 0.3; running min from the top
    # -> 0.025, 0.025, 0.05625, 0.05625, 0.3.
    expected_bh = [0.05625, 0.025, math.nan, 0.05625, 0.025, 0.3]
    np.testing.assert_allclose(holm(p), expected_holm, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(benjamini_hochberg(p), expected_bh, rtol=1e-12, equal_nan=True)
    # Capped at 1: Holm 2 x 0.6 = 1.2 -> 1; BH 2 x 0.6 / 1 = 1.2 -> 1, then min with 0.9.
    np.testing.assert_allclose(holm([0.6, 0.9]), [1.0, 1.0])
    np.testing.assert_allclose(benjamini_hochberg([0.6, 0.9]), [0.9, 0.9])
    assert holm([]).shape == (0,) and np.isnan(benjamini_hochberg([math.nan])).all()


def _two_arms(rng: np.random.Generator, *, g: int = 3, r: int = 7) -> dict:
    base = rng.uniform(0.2, 0.8, size=(g, r))
    arm = base + rng.normal(0.05, 0.05, size=(g, r))
    arm[1, 2] = math.nan  # a missing value drops that pair only
    return {"mle": {"coverage/minority": base, "recall/minority": base**2},
            "ple": {"coverage/minority": arm, "recall/minority": arm**2}}  # fmt: skip


def test_paired_t_statistics_equal_scipy_ttest_rel():
    values = _two_arms(np.random.default_rng(3))
    result = paired_comparisons(values, generations=[0, 1, 2])
    assert result.baseline == "mle" and len(result.rows) == 2 * 3
    for row in result.rows:
        key, i = f"{row['metric']}/{row['group']}", row["generation"]
        x, y = values["ple"][key][i], values["mle"][key][i]
        reference = stats.ttest_rel(x, y, nan_policy="omit")
        interval = stats.ttest_rel(x[np.isfinite(x)], y[np.isfinite(x)]).confidence_interval(0.95)
        assert row["n"] == np.isfinite(x).sum() == (6 if i == 1 else 7)
        assert row["mean_diff"] == pytest.approx(np.nanmean(x - y), rel=1e-12)
        assert row["p_t"] == pytest.approx(reference.pvalue, rel=1e-9)
        assert (row["lo"], row["hi"]) == pytest.approx((interval.low, interval.high), rel=1e-9)
        assert row["se"] == pytest.approx(row["mean_diff"] / reference.statistic, rel=1e-9)
    # The family: 6 exploratory cells, adjusted together.
    np.testing.assert_allclose([r["p_signflip_holm"] for r in result.rows], holm([r["p_signflip"] for r in result.rows]))
    np.testing.assert_allclose([r["q_t_bh"] for r in result.rows], benjamini_hochberg([r["p_t"] for r in result.rows]))


def test_primary_endpoint_by_hand(tmp_path):
    # Generation 0 has a large difference that the primary endpoint (generations 1-2) must leave out.
    base = np.array([[0.0, 0.0, 0.0], [0.2, 0.4, 0.6], [0.4, 0.4, 0.2]])
    arm = np.array([[0.9, 0.9, 0.9], [0.3, 0.6, 0.6], [0.5, 0.6, 0.4]])
    values = {
        "mle": {"coverage/3": base, "coverage/6": base, "recall/3": base},
        "ple": {"coverage/3": arm, "coverage/6": base, "recall/3": arm},
    }
    result = paired_comparisons(values, generations=[0, 1, 2], minority="3")
    primary = result.primary["ple"]
    # Per replicate, mean of generations 1 and 2: mle 0.3, 0.4, 0.4; ple 0.4, 0.6, 0.5.
    # d = 0.1, 0.2, 0.1: mean 0.4/3, s^2 = (1 + 4 + 1)/900 / 2 = 1/300, se = sqrt(1/900) = 1/30.
    mean, se = 0.4 / 3, 1 / 30
    assert (primary["metric"], primary["group"], primary["generation"], primary["n"]) == ("coverage", "3", "1-2", 3)
    assert (primary["mean_baseline"], primary["mean_arm"]) == pytest.approx((1.1 / 3, 1.5 / 3))
    assert primary["mean_diff"] == pytest.approx(mean, rel=1e-12)
    assert primary["se"] == pytest.approx(se, rel=1e-12)
    t_975_2 = 4.302652729911275  # Student's t, 97.5 % quantile, 2 degrees of freedom (tables: 4.3027)
    assert (primary["lo"], primary["hi"]) == pytest.approx((mean - t_975_2 * se, mean + t_975_2 * se), rel=1e-9)
    # t = 4 on 2 degrees of freedom: two-sided p = 1 - t / sqrt(t^2 + 2) = 1 - 4 / sqrt(18).
    assert primary["p_t"] == pytest.approx(1 - 4 / math.sqrt(18), rel=1e-9)
    # Sign flips of (0.1, 0.2, 0.1): only all + and all - reach |sum| = 0.4: 2 of 8.
    assert primary["p_signflip"] == 0.25
    # One declared contrast: Holm over a family of one leaves p as it is.
    assert primary["p_signflip_holm"] == primary["p_signflip"] and primary["relative_to"] == "none"
    # The file: the primary row first, the columns of COMPARISON_COLUMNS.
    write_comparisons_csv(tmp_path / "comparisons.csv", result)
    with open(tmp_path / "comparisons.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == COMPARISON_COLUMNS
    assert [row["endpoint"] for row in rows] == ["primary"] + ["exploratory"] * 9
    assert {row["relative_to"] for row in rows} == {"none"}
    assert float(rows[0]["mean_diff"]) == pytest.approx(mean) and rows[0]["generation"] == "1-2"
    # A declared window and a named group.
    config = CompareConfig(primary_metric="recall", primary_group="3", primary_first=2, primary_last=2)
    only_two = paired_comparisons(values, generations=[0, 1, 2], config=config).primary["ple"]
    # generation 2 alone: d = 0.1, 0.2, 0.2.
    assert only_two["mean_diff"] == pytest.approx(0.5 / 3) and only_two["generation"] == "2-2"


def test_random_flips_are_reproducible_and_used_above_16_pairs():
    rng = np.random.default_rng(4)
    values = {"a": {"coverage/minority": rng.uniform(size=(2, 20))}, "b": {"coverage/minority": rng.uniform(size=(2, 20))}}
    config = CompareConfig(permutations=500)
    first = paired_comparisons(values, generations=[0, 1], config=config, seed=7)
    again = paired_comparisons(values, generations=[0, 1], config=config, seed=7)
    assert [r["p_signflip"] for r in first.rows] == [r["p_signflip"] for r in again.rows]
    assert {r["signflip"] for r in first.rows} == {"500 random"}
    assert all(round(r["p_signflip"] * 501) == pytest.approx(r["p_signflip"] * 501) for r in first.rows)


def _one_line_error(call) -> str:
    with pytest.raises(ConfigError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message
    return message


def test_refusals_name_the_key_the_value_and_what_is_allowed():
    values = _two_arms(np.random.default_rng(5))
    run = lambda config, **kw: paired_comparisons(values, generations=[0, 1, 2], config=config, **kw)  # noqa: E731
    message = _one_line_error(lambda: run(CompareConfig(baseline="none")))
    assert message == "compare.baseline must be one of the arms ['mle', 'ple'], got 'none'"
    message = _one_line_error(lambda: run(CompareConfig(primary_metric="precision")))
    assert message == "compare.primary_metric must be one of the measured metrics ['coverage', 'recall'], got 'precision'"
    message = _one_line_error(lambda: run(CompareConfig(primary_group="minority"), minority="3"))
    assert message.startswith("compare.primary_group must be 'minority' or one of the groups ['minority'] of coverage")
    assert "got 'minority' (the minority, '3')" in message
    message = _one_line_error(lambda: run(CompareConfig(primary_first=5)))
    assert message.startswith("compare.primary_first..primary_last must cover a measured generation [0, 1, 2], got 5")
    one = {arm: {key: array[:, :1] for key, array in arms.items()} for arm, arms in values.items()}
    message = _one_line_error(lambda: paired_comparisons(one, generations=[0, 1, 2]))
    assert message == "replicates (columns of values) must be an integer >= 2 for paired inference (compare), got 1"
    no_coverage = {"mle": values["mle"], "ple": {"recall/minority": values["ple"]["recall/minority"]}}
    message = _one_line_error(lambda: paired_comparisons(no_coverage, generations=[0, 1, 2]))
    assert message == "compare.primary_metric 'coverage/minority' must be measured in every arm, got none in ['ple']"
    message = _one_line_error(lambda: paired_comparisons(values, generations=[0, 1]))
    assert "must have shape (generations, replicates) = (2, R)" in message and "got (3, 7)" in message
    # Before a run: check_compare.
    assert check_compare(CompareConfig(), ["mle", "ple"], 8) == "mle"
    assert check_compare(CompareConfig(baseline="ple"), ["mle", "ple"], 8) == "ple"
    message = _one_line_error(lambda: check_compare(CompareConfig(), ["mle", "ple"], 1))
    assert message == "loop.replicates must be an integer >= 2 for paired inference (compare), got 1"
    message = _one_line_error(lambda: check_compare(CompareConfig(), ["mle"], 8))
    assert message == "compare needs at least 2 arms (a baseline and an arm to compare with it), got ['mle']"
    # The config itself.
    assert _one_line_error(lambda: CompareConfig(level=1.5)) == "compare.level must be a number in (0, 1), got 1.5"
    assert _one_line_error(lambda: CompareConfig(permutations=0)) == (
        "compare.permutations must be a positive integer, got 0"
    )
    assert _one_line_error(lambda: CompareConfig(primary_first=3, primary_last=2)) == (
        "compare.primary_last must be an integer >= 3, got 2"
    )
    assert _one_line_error(lambda: CompareConfig(primary_metric="")) == "compare.primary_metric must be a metric name, got ''"
    assert _one_line_error(lambda: CompareConfig(baseline=3)).startswith("compare.baseline must be an arm name")


def test_paired_figure(tmp_path):
    from genfair.plots import save_paired_figure

    result = paired_comparisons(_two_arms(np.random.default_rng(6)), generations=[0, 1, 2])
    path = save_paired_figure(tmp_path / "paired.png", result, metrics=["coverage", "recall"], group="minority")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    message = _one_line_error(lambda: save_paired_figure(tmp_path / "x.png", result, metrics=["fd"], group="minority"))
    assert message == "metrics must be a non-empty list of the compared metrics of group 'minority' ['coverage', 'recall'], got ['fd']"


def test_many_pairs_use_the_normal_limit_of_the_sign_flip_distribution():
    """From 2000 pairs on the sign-flip p-value is the normal limit 2 (1 - Phi(|sum d| / sqrt(sum d^2)));
    it agrees with 20 000 random flips within their Monte-Carlo error."""
    import math

    from scipy import stats

    from genfair._paired_tests import NORMAL_MIN, _SignCache, sign_flip_pvalue

    d = np.random.default_rng(3).normal(0.03, 1.0, size=NORMAL_MIN)
    normal = _SignCache(seed=0, permutations=10).pvalue(d)
    assert normal == pytest.approx(2 * stats.norm.sf(abs(d.sum()) / math.sqrt((d**2).sum())), rel=1e-12)
    flips = sign_flip_pvalue(d, permutations=20000, generator=np.random.default_rng(1))
    assert abs(normal - flips) < 4 * math.sqrt(normal * (1 - normal) / 20000) + 1e-3
    assert _SignCache(seed=0, permutations=10).label(NORMAL_MIN) == "normal limit"


def test_an_endpoint_relative_to_generation_0_is_a_difference_in_differences_by_hand(tmp_path):
    # 3 generations, 4 replicates; generation 0 differs per replicate, and the arm starts higher.
    base = np.array([[0.50, 0.40, 0.60, 0.30],
                     [0.40, 0.30, 0.40, 0.30],
                     [0.30, 0.30, 0.20, 0.10]])  # fmt: skip
    arm = np.array([[0.70, 0.50, 0.60, 0.60],
                    [0.70, 0.40, 0.50, 0.60],
                    [0.60, 0.50, 0.40, 0.40]])  # fmt: skip
    values = {"mle": {"coverage/6": base, "coverage/3": base}, "ple": {"coverage/6": arm, "coverage/3": 1 - arm}}
    config = CompareConfig(relative_to="generation_0")
    result = paired_comparisons(values, generations=[0, 1, 2], minority="6", config=config)
    primary, start = result.primary["ple"], result.start["ple"]
    # Changes, mean of generations 1-2 minus generation 0, per replicate:
    #   mle: 0.35-0.50, 0.30-0.40, 0.30-0.60, 0.20-0.30 = -0.15, -0.10, -0.30, -0.10
    #   ple: 0.65-0.70, 0.45-0.50, 0.45-0.60, 0.50-0.60 = -0.05, -0.05, -0.15, -0.10
    # d = 0.10, 0.05, 0.15, 0.00: mean 0.075, s^2 = (0.025^2 + 0.025^2 + 0.075^2 + 0.075^2) / 3
    d = np.array([0.10, 0.05, 0.15, 0.00])
    mean, se = 0.075, math.sqrt((2 * 0.025**2 + 2 * 0.075**2) / 3 / 4)
    assert (primary["endpoint"], primary["relative_to"], primary["generation"], primary["n"]) == (
        "primary", "generation_0", "1-2", 4
    )
    assert (primary["mean_arm"], primary["mean_baseline"]) == pytest.approx((-0.0875, -0.1625), rel=1e-12)
    assert primary["mean_diff"] == pytest.approx(mean, rel=1e-12)
    assert primary["se"] == pytest.approx(se, rel=1e-12)
    t_975_3 = 3.182446305284263  # Student's t, 97.5 % quantile, 3 degrees of freedom (tables: 3.1824)
    assert (primary["lo"], primary["hi"]) == pytest.approx((mean - t_975_3 * se, mean + t_975_3 * se), rel=1e-9)
    # Sign flips of (0.10, 0.05, 0.15, 0): the zero doubles every pattern; |sum| >= 0.30 only for
    # all-plus or all-minus of the three non-zero ones: 4 of 16.
    assert primary["p_signflip"] == pytest.approx(_brute_force_pvalue(list(d))) == 0.25
    # Where the arms started: generation 0's paired difference, 0.2, 0.1, 0.0, 0.3.
    assert (start["endpoint"], start["relative_to"], start["generation"]) == ("start", "none", "0")
    assert start["mean_diff"] == pytest.approx(0.15, rel=1e-12) and start["n"] == 4
    assert math.isnan(start["p_signflip_holm"])
    # The file: primary, then start, then the exploratory levels.
    write_comparisons_csv(tmp_path / "comparisons.csv", result)
    with open(tmp_path / "comparisons.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["endpoint"], r["relative_to"]) for r in rows[:3]] == [
        ("primary", "generation_0"), ("start", "none"), ("exploratory", "none")
    ]


def test_a_relative_endpoint_pairs_replicate_r_with_replicate_r_and_drops_a_lost_one():
    # The baseline's replicates are the arm's in reverse: pairing by position gives d_r = c_r(arm)
    # - c_{R-1-r}(arm), which a pairing by sorted values or by means would not.
    change = np.array([0.4, 0.1, -0.2, 0.3, 0.0])
    start = np.array([0.50, 0.65, 0.70, 0.30, 0.45])  # no symmetry: a reversed generation 0 changes d
    arm = np.stack([start, start + change])  # (2, 5): generation 0, generation 1
    baseline = arm[:, ::-1].copy()
    baseline[0, 2] = math.nan  # replicate 2 of the baseline lost its generation 0
    values = {"mle": {"coverage/6": baseline}, "ple": {"coverage/6": arm}}
    result = paired_comparisons(values, generations=[0, 1], minority="6", config=CompareConfig(relative_to="generation_0"))
    d = change - change[::-1]  # 0.4, -0.2, 0.0, 0.2, -0.4; replicate 2 dropped
    kept = np.delete(d, 2)
    primary = result.primary["ple"]
    assert primary["n"] == 4
    assert primary["mean_diff"] == pytest.approx(kept.mean(), abs=1e-12)
    assert primary["se"] == pytest.approx(kept.std(ddof=1) / 2, rel=1e-12)
    assert primary["mean_baseline"] == pytest.approx(np.delete(change[::-1], 2).mean(), abs=1e-12)
    assert result.start["ple"]["n"] == 4  # the start row leaves the lost replicate out too


def test_a_relative_endpoint_is_refused_without_generation_0_or_with_a_lost_arm():
    values = _two_arms(np.random.default_rng(8))
    relative = CompareConfig(relative_to="generation_0")
    message = _one_line_error(lambda: paired_comparisons(values, generations=[1, 2, 3], config=relative))
    assert message.startswith("compare.relative_to 'generation_0' needs generation 0 among the measured generations [1, 2, 3]")
    lost = {arm: dict(arrays) for arm, arrays in values.items()}
    lost["ple"]["coverage/minority"] = lost["ple"]["coverage/minority"].copy()
    lost["ple"]["coverage/minority"][0] = math.nan
    message = _one_line_error(lambda: paired_comparisons(lost, generations=[0, 1, 2], config=relative))
    assert message == (
        "compare.relative_to 'generation_0' needs a finite generation-0 value of coverage/minority in some "
        "replicate of every arm, got none in ['ple']"
    )
    assert _one_line_error(lambda: CompareConfig(relative_to="generation_0", primary_first=0)) == (
        "compare.primary_first must be >= 1 with compare.relative_to 'generation_0' (a change from "
        "generation 0 over generations that include it), got 0"
    )
    assert _one_line_error(lambda: CompareConfig(relative_to="gen0")) == (
        "compare.relative_to must be one of ['none', 'generation_0'], got 'gen0'"
    )


def test_several_arms_primary_rows_are_holm_adjusted_among_themselves():
    base = np.zeros((2, 4))
    d_b = np.array([[0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4]])  # all positive: exact p = 2/16
    # |sum| = |1 - 2 x (|d| flipped)| >= 0.6 when the flipped |d| sum to <= 0.2 ({}, {0.1}, {0.2}) or
    # >= 0.8 (their complements): 6 of 16 flips.
    d_c = np.array([[0, 0, 0, 0], [0.1, -0.2, 0.3, 0.4]])
    values = {"a": {"coverage/m": base}, "b": {"coverage/m": base + d_b}, "c": {"coverage/m": base + d_c}}
    primary = paired_comparisons(values, generations=[0, 1], minority="m").primary
    assert (primary["b"]["p_signflip"], primary["c"]["p_signflip"]) == (0.125, 0.375)
    # Holm over the two contrasts: 2 x 0.125 = 0.25, then max(0.25, 1 x 0.375) = 0.375.
    assert (primary["b"]["p_signflip_holm"], primary["c"]["p_signflip_holm"]) == (0.25, 0.375)


def test_changes_from_generation_0_per_replicate_by_hand():
    x = np.array([[0.5, 0.4, 0.6], [0.3, 0.3, 0.3], [0.4, math.nan, 0.2]])
    rows = changes_from_generation_0({"a": {"coverage/6": x}}, generations=[0, 1, 2])
    by_generation = {row["generation"]: row for row in rows}
    # generation 1: -0.2, -0.1, -0.3 -> mean -0.2, s = 0.1, se = 0.1 / sqrt(3)
    one = by_generation[1]
    assert (one["mean"], one["n"]) == (pytest.approx(-0.2), 3)
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    assert (one["lo"], one["hi"]) == pytest.approx((-0.2 - half, -0.2 + half))
    # generation 2: -0.1, (dropped), -0.4 -> mean -0.25, n = 2
    assert (by_generation[2]["mean"], by_generation[2]["n"]) == (pytest.approx(-0.25), 2)
    assert by_generation[0]["mean"] == 0.0

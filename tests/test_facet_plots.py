"""Figures that stay readable with many arms, read back from the matplotlib artists' data: each
arm in its factor level's panel, one colour per level in every panel, the change from
generation 0 as computed by hand, the forest plot's rows from the right rows of comparisons.csv,
and ``genfair-plot --facet`` / ``--facet-by-prefix``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from genfair._outputs import write_metrics_csv
from genfair.cli import plot_main
from genfair.comparisons import CompareConfig, changes_from_generation_0, paired_comparisons, read_comparisons_csv, write_comparisons_csv
from genfair.factors import ArmFactorsConfig, place_arms
from genfair.plots import change_figure, faceted_fidelity_figure, forest_figure

LOOPS = ["fully_synthetic", "augment", "fresh", "accumulate"]
ESTIMATORS = ["mle", "hyper_mle", "ple", "anchor"]
ARMS = [f"{loop}-{estimator}" for loop in LOOPS for estimator in ESTIMATORS]
FACTORS = ArmFactorsConfig(levels={"loop": LOOPS, "estimator": ESTIMATORS}, pattern="{loop}-{estimator}")


def _value(arm: str, generation: int, metric: str) -> float:
    """A value that names its arm: 0.01 x (arm index) + 0.001 x generation (+0.2 for the majority)."""
    return 0.05 + 0.01 * ARMS.index(arm) + 0.001 * generation + 0.1 * ("share", "precision", "recall", "coverage").index(metric)


def _rows(arms=ARMS, generations: int = 3) -> list[dict]:
    rows = []
    for arm in arms:
        for g in range(generations):
            for metric in ("share", "precision", "recall", "coverage"):
                for group, shift in (("6", 0.0), ("3", 0.2)):
                    v = _value(arm, g, metric) + shift
                    rows.append({"arm": arm, "generation": g, "group": group, "metric": metric, "mean": v, "se": 0.01,
                                 "median": v, "q05": v - 0.01, "q95": v + 0.01, "n": 8, "lo": v - 0.02, "hi": v + 0.02})  # fmt: skip
    return rows


def _lines_by_gid(figure) -> dict[str, list]:
    found: dict[str, list] = {}
    for index, ax in enumerate(figure.axes):
        for line in ax.get_lines():
            if line.get_gid():
                found.setdefault(line.get_gid(), []).append((index, ax, line))
    return found


def test_each_arm_lands_in_its_loop_panel_with_its_estimators_colour_in_every_panel():
    placed = place_arms(FACTORS, ARMS)
    figure = faceted_fidelity_figure(_rows(), placed, minority="6", majority="3", target_share=0.1)
    lines = _lines_by_gid(figure)
    colours: dict[str, set] = {}
    for arm in ARMS:
        loop, estimator = arm.split("-", 1)
        drawn = lines[f"{arm}/6"]
        assert len(drawn) == 4  # one line per metric row
        for row, (index, ax, line) in enumerate(sorted(drawn, key=lambda t: t[0])):
            assert index == row * 4 + LOOPS.index(loop), (arm, index)  # row-major: metric row x loop column
            assert ax.get_title() in ("", f"loop = {loop}")
            metric = ("share", "precision", "recall", "coverage")[row]
            np.testing.assert_allclose(line.get_ydata(), [_value(arm, g, metric) for g in range(3)])
            colours.setdefault(estimator, set()).add(to_rgba(line.get_color()))
    assert [figure.axes[c].get_title() for c in range(4)] == [f"loop = {loop}" for loop in LOOPS]
    assert all(len(found) == 1 for found in colours.values())  # one colour per estimator across the 16 panels
    assert len({next(iter(found)) for found in colours.values()}) == 4  # and four different ones
    legend = figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()][:4] == ESTIMATORS  # the legend once, by level
    shared = figure.axes[0].get_shared_y_axes()
    assert all(shared.joined(figure.axes[0], figure.axes[c]) for c in range(4))


def test_the_change_from_generation_0_is_the_mean_of_each_replicates_change():
    # Two arms of one loop kind, 3 replicates: the mean change is drawn, its band the t-interval.
    arms = ["fresh-mle", "fresh-ple"]
    x = {"fresh-mle": np.array([[0.5, 0.4, 0.6], [0.3, 0.3, 0.3]]), "fresh-ple": np.array([[0.5, 0.5, 0.5], [0.6, 0.5, 0.4]])}
    values = {arm: {"coverage/6": x[arm], "recall/6": x[arm]} for arm in arms}
    rows = changes_from_generation_0(values, generations=[0, 1])
    placed = place_arms(ArmFactorsConfig(levels={"loop": ["fresh"], "estimator": ["mle", "ple"]}), arms)
    figure = change_figure(rows, group="6", metrics=["coverage", "recall"], factors=placed)
    lines = _lines_by_gid(figure)
    (_, ax, line), = [entry for entry in lines["fresh-mle/coverage"]]
    np.testing.assert_allclose(line.get_ydata(), [0.0, -0.2])  # changes -0.2, -0.1, -0.3
    np.testing.assert_allclose(lines["fresh-ple/coverage"][0][2].get_ydata(), [0.0, 0.0])  # +0.1, 0, -0.1
    band = ax.collections[0].get_paths()[0].vertices[:, 1]  # mle's band: -0.2 -+ t_{0.975,2} 0.1 / sqrt(3)
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    assert (band.min(), band.max()) == pytest.approx((-0.2 - half, -0.2 + half))  # generation 0: 0 to 0
    assert to_rgba(line.get_color()) != to_rgba(lines["fresh-ple/coverage"][0][2].get_color())


def test_the_forest_plot_draws_each_primary_row_of_comparisons_csv(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.6, size=(3, 8))
    values = {"mle": {"coverage/6": base}}
    for k, arm in enumerate(["hyper_mle", "ple", "anchor"]):
        values[arm] = {"coverage/6": base + 0.02 * k + rng.normal(0, 0.01, size=(3, 8))}
    result = paired_comparisons(values, generations=[0, 1, 2], minority="6", config=CompareConfig(relative_to="generation_0"))
    write_comparisons_csv(tmp_path / "comparisons.csv", result)
    rows = read_comparisons_csv(tmp_path / "comparisons.csv")
    primary = [row for row in rows if row["endpoint"] == "primary"]
    figure = forest_figure(primary)
    ax = figure.axes[0]
    by_gid = {artist.get_gid(): artist for artist in [*ax.get_lines(), *ax.texts] if artist.get_gid()}
    for index, row in enumerate(primary):
        y = len(primary) - 1 - index
        interval, estimate, p = by_gid[f"interval:{row['arm']}"], by_gid[f"estimate:{row['arm']}"], by_gid[f"p:{row['arm']}"]
        np.testing.assert_allclose(interval.get_xdata(), [row["lo"], row["hi"]])
        np.testing.assert_allclose(interval.get_ydata(), [y, y])
        np.testing.assert_allclose(estimate.get_xdata(), [row["mean_diff"]])
        assert p.get_text() == f"p_adj = {row['p_signflip_holm']:.3g}" and p.xy[1] == y
        filled = estimate.get_markerfacecolor() != "white"
        assert filled == (row["p_signflip_holm"] < 0.05)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"{row['arm']} − mle" for row in reversed(primary)]
    # The primary rows differ: swapping two rows' intervals would show.
    assert len({(row["lo"], row["hi"]) for row in primary}) == 3


def _run(folder: Path, arms, *, factors: dict | None) -> Path:
    folder.mkdir(parents=True)
    write_metrics_csv(folder / "metrics.csv", _rows(arms))
    config = {"data": {"proportions": [0.9, 0.1]}, **({"arm_factors": factors} if factors else {})}
    summary = {"family": "images", "headline_metrics": ["coverage"], "groups": ["3", "6"], "minority": "6", "config": config}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_genfair_plot_facets_by_a_declared_factor_or_by_prefix(tmp_path, monkeypatch):
    import genfair.plots._facets as facets

    drawn = []
    monkeypatch.setattr(facets, "save_figure", lambda path, figure: drawn.append(figure) or path)
    declared = {"levels": {"loop": LOOPS, "estimator": ESTIMATORS}, "pattern": "{loop}-{estimator}"}
    run = _run(tmp_path / "run", ARMS, factors=declared)
    for option in (["--facet", "loop"], ["--facet-by-prefix", "-"]):
        drawn.clear()
        plot_main([str(run), "--metric", "coverage", "--groups", "minority", "--out", str(tmp_path / "out"), *option])
        (figure,) = drawn
        assert [ax.get_title() for ax in figure.axes] == [f"{'loop' if option[0] == '--facet' else 'prefix'} = {loop}" for loop in LOOPS]
        for column, ax in enumerate(figure.axes):
            labels = [line.get_label() for line in ax.get_lines()]
            assert labels == [f"{LOOPS[column]}-{estimator} · 6" for estimator in ESTIMATORS]
    drawn.clear()
    plot_main([str(run), "--metric", "coverage", "--groups", "minority", "--out", str(tmp_path / "out"), "--facet", "estimator"])
    assert [ax.get_title() for ax in drawn[0].axes] == [f"estimator = {e}" for e in ESTIMATORS]


@pytest.mark.parametrize(
    "option, expected",
    [
        (["--facet", "remedy"], "genfair-plot: error: --facet must be one of the declared factors ['loop', 'estimator'], got 'remedy'"),
        (["--facet-by-prefix", "+"], "genfair-plot: error: --facet-by-prefix '+' must split every arm's name in two, got"),
    ],
)
def test_genfair_plot_refuses_a_bad_facet_in_one_line(tmp_path, capsys, option, expected):
    declared = {"levels": {"loop": LOOPS, "estimator": ESTIMATORS}, "pattern": "{loop}-{estimator}"}
    run = _run(tmp_path / "run", ARMS, factors=declared)
    with pytest.raises(SystemExit) as exit_:
        plot_main([str(run), "--metric", "coverage", "--out", str(tmp_path / "out"), *option])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "\n" not in err and err.startswith(expected), err
    assert not (tmp_path / "out").exists()

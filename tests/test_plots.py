"""The figures say what they show: an axis label per metric (an image run's "share" is the
generated images' corrected share, an analytic run's the training set's), whole-number
generation ticks, the classes by default (the pooled group and ratios when asked), the minority's
share panel scaled to the minority, legends outside the axes; and ``genfair-plot`` picks a
metric the runs have in common or refuses in one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure

import genfair.plots
from genfair._outputs import write_metrics_csv
from genfair.cli import plot_main
from genfair.plots import save_samples_across_generations
from genfair.plots._curves import metric_figure, metric_label
from genfair.plots._fidelity import fidelity_figure

IMAGE_GROUPS = ("3", "6", "all", "minority_to_majority")


def _row(arm: str, generation: int, group: str, metric: str, value: float, *, n: int = 1) -> dict:
    return {
        "arm": arm, "generation": generation, "group": group, "metric": metric, "mean": value, "se": math.nan,
        "median": value, "q05": value - 0.01, "q95": value + 0.01, "n": n, "lo": value - 0.02, "hi": value + 0.02,
    }  # fmt: skip


def _image_rows(generations: int = 4) -> list[dict]:
    """A deep run's rows: the minority ``6`` at ~0.1 of the generated images, the majority ``3``."""
    rows = []
    for g in range(generations):
        for metric in ("share", "train_share", "precision", "recall", "coverage"):
            values = {"3": 0.9, "6": 0.1 - 0.01 * g, "all": 0.5, "minority_to_majority": 0.2}
            rows += [_row("mle", g, group, metric, values[group]) for group in IMAGE_GROUPS if not (metric.endswith("share") and group in ("all", "minority_to_majority"))]
    return rows


def _analytic_rows(generations: int = 4) -> list[dict]:
    return [
        _row(arm, g, group, metric, value, n=200)
        for arm in ("mle", "unbiased")
        for g in range(generations)
        for metric, values in (("share", {"majority": 0.95, "minority": 0.05}), ("extinct", {"majority": 0.0, "minority": 0.01 * g}))
        for group, value in values.items()
    ]


def test_each_metric_has_its_own_label_and_share_depends_on_the_run():
    image, analytic = _image_rows(), _analytic_rows()
    assert metric_label("share", image) == "share of generated images (classifier, confusion-corrected)"
    assert metric_label("share", analytic).startswith("class share of the training set")
    assert metric_label("train_share", image) == "class share of the training set"
    for metric in ("extinct", "w2_sq", "trace_cov", "precision", "recall", "coverage", "density", "fd", "kid"):
        assert metric_label(metric, image) != metric, metric  # labelled, not just named


def test_generation_ticks_are_whole_numbers_and_the_legend_is_outside_the_axes():
    figure = metric_figure([("", _analytic_rows())], metric="extinct")
    ax = figure.axes[0]
    figure.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert ax.get_legend() is None and len(figure.legends) == 1


def test_default_groups_are_the_classes_and_pooled_ones_are_drawn_when_asked():
    rows = _image_rows()
    figure = metric_figure([("", rows)], metric="precision")
    assert sorted(line.get_label().split(" · ")[-1] for line in figure.axes[0].get_lines()) == ["3", "6"]
    figure = metric_figure([("", rows)], metric="precision", groups=[["6", "all", "minority_to_majority"]])
    assert sorted(line.get_label().split(" · ")[-1] for line in figure.axes[0].get_lines()) == ["6", "all", "minority_to_majority"]
    only_pooled = [_row("mle", g, "all", "w2_sq", 0.1 * g, n=10) for g in range(3)]  # a one-class Gaussian run
    assert [line.get_label() for line in metric_figure([("", only_pooled)], metric="w2_sq").axes[0].get_lines()] == ["mle · all"]


def test_the_minority_share_panel_spans_the_minority_not_the_majority():
    figure = fidelity_figure(_image_rows(), minority="6", majority="3", target_share=0.1)
    share = figure.axes[0]
    low, high = share.get_ylim()
    assert 0.0 <= low <= 0.07 - 0.02 and 0.12 <= high < 0.3, (low, high)  # the minority's values 0.07-0.1 and bands, its real share 0.1
    assert "6" in share.get_ylabel()
    assert all(ax.get_legend() is None for ax in figure.axes) and len(figure.legends) == 1
    figure.canvas.draw()
    assert all(float(t).is_integer() for ax in figure.axes for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1])


def test_samples_across_generations_name_each_class_block(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda figure, *args, **kwargs: saved.append(figure))
    grids = [torch.rand(2, 4, 1, 8, 8) for _ in range(3)]  # (classes, columns, C, H, W) per generation
    save_samples_across_generations(tmp_path / "samples.png", grids, class_names=["3", "6"], per_class=4)
    ax = saved[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["class 3", "class 6"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["gen 0", "gen 1", "gen 2"]


# ------------------------------------------------------------------------------ genfair-plot
def _run_dir(folder: Path, rows: list[dict], *, family: str, headline: list[str], groups: list[str], minority: str, shares: list[float]) -> Path:
    folder.mkdir(parents=True)
    write_metrics_csv(folder / "metrics.csv", rows)
    summary = {"family": family, "headline_metrics": headline, "groups": groups, "minority": minority, "config": {"data": {"proportions": shares}}}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture
def runs(tmp_path) -> dict[str, Path]:
    return {
        "images": _run_dir(tmp_path / "deep", _image_rows(), family="images", headline=["share", "precision", "recall", "coverage", "train_share"], groups=["3", "6"], minority="6", shares=[0.9, 0.1]),
        "analytic": _run_dir(tmp_path / "analytic", _analytic_rows(), family="class_mixture", headline=["share", "extinct"], groups=["majority", "minority"], minority="minority", shares=[0.95, 0.05]),
    }  # fmt: skip


def _drawn(monkeypatch) -> list[dict]:
    calls = []

    def record(path, runs, *, metric, title="", groups=None):
        calls.append({"metric": metric, "groups": groups})
        return path

    monkeypatch.setattr(genfair.plots, "save_metric_figure", record)
    return calls


def test_plot_draws_each_runs_minority_and_majority_by_default(runs, tmp_path, monkeypatch):
    calls = _drawn(monkeypatch)
    plot_main([str(runs["images"]), "--out", str(tmp_path / "out")])
    assert [c["metric"] for c in calls] == ["share", "precision", "recall", "coverage", "train_share"]
    assert all(c["groups"] == [["6", "3"]] for c in calls)
    calls.clear()
    plot_main([str(runs["images"]), "--metric", "precision", "--groups", "minority,all,minority_to_majority", "--out", str(tmp_path / "out")])
    assert calls == [{"metric": "precision", "groups": [["6", "all", "minority_to_majority"]]}]


def test_plot_of_an_image_and_an_analytic_run_refuses_in_one_line_without_a_common_metric(runs, tmp_path, capsys):
    """Their only common headline metric is "share", which is another quantity in each."""
    with pytest.raises(SystemExit) as exit_:
        plot_main([str(runs["images"]), str(runs["analytic"]), "--out", str(tmp_path / "out")])
    stderr = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("genfair-plot: error: the runs have no headline metric in common") and "--metric" in stderr
    assert "must be one of" not in stderr
    with pytest.raises(SystemExit):
        plot_main([str(runs["images"]), str(runs["analytic"]), "--metric", "share", "--out", str(tmp_path / "out")])
    stderr = capsys.readouterr().err.strip()
    assert len(stderr.splitlines()) == 1 and "'share' means different things" in stderr, stderr
    assert not (tmp_path / "out").exists()


def test_plot_refuses_an_unknown_group_naming_the_allowed_ones(runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        plot_main([str(runs["images"]), "--groups", "minority,bogus", "--out", str(tmp_path / "out")])
    stderr = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(stderr.splitlines()) == 1, stderr
    assert all(word in stderr for word in ("--groups", "'bogus'", "minority", "'all'", "'6'")), stderr


def test_sixteen_arms_get_sixteen_colours_in_the_lines_and_the_legend():
    """experiment=fairness_x_madness has 16 arms: matplotlib's C0-C9 would give two arms one colour."""
    from matplotlib.colors import to_rgba

    arms = [f"arm{i}" for i in range(16)]
    rows = [{**row, "arm": arm} for arm in arms for row in _image_rows(2)]
    figure = fidelity_figure(rows, minority="6", majority="3", target_share=0.1)
    solid = [line for line in figure.axes[3].get_lines() if line.get_linestyle() == "-"]
    assert len(solid) == 16
    assert len({to_rgba(line.get_color()) for line in solid}) == 16
    assert len({to_rgba(handle.get_color()) for handle in figure.legends[0].legend_handles[:16]}) == 16
    # the per-metric figures and genfair-plot's overlay: one colour per arm of each run
    for runs in ([("", rows)], [("a", rows[: len(rows) // 2]), ("b", rows[len(rows) // 2 :])]):
        lines = metric_figure(runs, metric="coverage", groups=[["6"]] * len(runs)).axes[0].get_lines()
        assert len(lines) == 16 and len({to_rgba(line.get_color()) for line in lines}) == 16

"""The prior studies' endpoints, ``metrics.csv`` rows and figure.

Endpoints (``endpoints.csv``), per chain r and metric m: the loop's change
``delta_r = m_r(last generation) - m_r(generation 0)``; a contrast of arms A and B is the paired
difference ``delta_r(A) - delta_r(B)`` over the chains (a difference in differences), with its
mean, 95 % t-interval and two-sided sign-flip p-value (``genfair.comparisons``). Rows:

- ``role = primary``: the declared endpoint, ``primary_metric``, ``primary_arm`` minus
  ``primary_baseline``, tested alone at 0.05;
- ``role = start``: the same pair's generation-0 difference (where the arms started, before
  any synthetic data), reported apart from the loop's effect;
- ``role = exploratory``: ``primary_metric``'s change for every other arm against ``refit`` and
  every PLE arm against ``hyper_mle``, p-values Holm-adjusted over these rows (``p_holm``);
- ``role = change``: each arm's own mean change with its t-interval (no test);
- ``role = wright_fisher`` (mixtures): each arm's mean (w_hat - w)^2 at the last generation beside
  the Wright-Fisher prediction for shares refit from counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from genfair.comparisons import holm, sign_flip_pvalue
from genfair.metrics import mean_interval, summarize_replicates
from genfair.studies._prior_config import PriorStudyConfig
from genfair.studies._prior_measures import wright_fisher_drift

__all__ = ["endpoint_rows", "loop_rows", "paired_contrast", "save_prior_figure"]

Values = Mapping[str, Mapping[str, np.ndarray]]  # {arm: {metric: (generations, chains)}}


def paired_contrast(a: np.ndarray, b: np.ndarray, *, seed: int) -> dict:
    """Mean of ``a - b`` (paired per chain), its 95 % t-interval and sign-flip p-value."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    summary = summarize_replicates(d)
    lo, hi = mean_interval(summary)
    p = sign_flip_pvalue(d[np.isfinite(d)], generator=np.random.default_rng(seed))
    return {"mean_diff": summary.mean, "se": summary.se, "lo": lo, "hi": hi, "p_signflip": p, "n": summary.n}


def endpoint_rows(values: Values, *, config: PriorStudyConfig, seed: int, true_weights: np.ndarray | None = None) -> list[dict]:
    """Every row of ``endpoints.csv`` (see the module docstring); ``true_weights (chains,)``: the
    chains' true minority weights, for the Wright-Fisher rows of a mixture."""
    metric = config.primary_metric
    change = {arm: v[metric][-1] - v[metric][0] for arm, v in values.items()}
    last = config.generations - 1
    base = {"metric": metric, "first": 0, "last": last}
    pair = (config.primary_arm, config.primary_baseline)
    rows = [
        {"role": "primary", "arm": pair[0], "baseline": pair[1], **base, **paired_contrast(change[pair[0]], change[pair[1]], seed=seed)},
        {"role": "start", "arm": pair[0], "baseline": pair[1], **base, "last": 0,
         **paired_contrast(values[pair[0]][metric][0], values[pair[1]][metric][0], seed=seed)},
    ]
    pairs = [(arm, "refit") for arm in values if arm != "refit"]
    pairs += [(arm, "hyper_mle") for arm in config.hyper_arms() if arm != "hyper_mle"]
    exploratory = [
        {"role": "exploratory", "arm": a, "baseline": b, **base, **paired_contrast(change[a], change[b], seed=seed)}
        for a, b in dict.fromkeys(pairs) if (a, b) != pair
    ]
    for row, adjusted in zip(exploratory, holm([row["p_signflip"] for row in exploratory])):
        row["p_holm"] = float(adjusted)
    rows += exploratory
    for arm, delta in change.items():
        summary = summarize_replicates(delta)
        lo, hi = mean_interval(summary)
        rows.append({"role": "change", "arm": arm, "baseline": "", **base, "mean_diff": summary.mean, "se": summary.se,
                     "lo": lo, "hi": hi, "p_signflip": math.nan, "n": summary.n})
    if true_weights is not None:
        rows += _wright_fisher_rows(values, config=config, true_weights=true_weights)
    return rows


def _wright_fisher_rows(values: Values, *, config: PriorStudyConfig, true_weights: np.ndarray) -> list[dict]:
    predicted = wright_fisher_drift(true_weights, n=config.loop_size, generation=config.generations - 1)
    rows = []
    for arm, v in values.items():
        summary = summarize_replicates(v["weight_drift_sq"][-1])
        lo, hi = mean_interval(summary)
        rows.append({"role": "wright_fisher", "arm": arm, "baseline": "wright_fisher", "metric": "weight_drift_sq",
                     "first": 0, "last": config.generations - 1, "mean_diff": summary.mean, "se": summary.se, "lo": lo,
                     "hi": hi, "p_signflip": math.nan, "n": summary.n, "predicted": predicted})
    return rows


def loop_rows(values: Values) -> list[dict]:
    """``metrics.csv`` rows: per arm, generation and metric, the summary across chains."""
    rows = []
    for arm, metrics in values.items():
        for metric, table in metrics.items():
            for generation, chains in enumerate(table):
                summary = summarize_replicates(chains)
                lo, hi = mean_interval(summary)
                rows.append({"arm": arm, "generation": generation, "group": "all", "metric": metric,
                             **summary.as_dict(), "lo": lo, "hi": hi})
    return rows


def save_prior_figure(
    path: Path, assessment: Sequence[dict], rows: Sequence[dict], *, metric: str, chains: int
) -> Path:
    """Top row: RMSE against set size per parameter (in-prior draws), each arm beside the best
    constant (grey dashes); bottom: the loop's ``metric`` per generation from ``rows``
    (:func:`loop_rows`, or a run's ``metrics.csv``): the mean across chains with its 95 % t-band,
    one colour per arm, on a log scale when it spans more than a factor of 100."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genfair.plots._curves import arm_colors

    parameters = list(dict.fromkeys(row["parameter"] for row in assessment))
    arms = list(dict.fromkeys(row["arm"] for row in assessment))
    colors = dict(zip(arms, arm_colors(len(arms))))
    fig, axes = plt.subplots(2, len(parameters), figsize=(3.2 * len(parameters), 6.4), squeeze=False)
    for ax, parameter in zip(axes[0], parameters):
        mine = [r for r in assessment if r["parameter"] == parameter and _in_prior(r)]
        sizes = sorted({int(r["set_size"]) for r in mine})
        for arm in arms:
            rmse = [float(next(r["rmse"] for r in mine if r["arm"] == arm and int(r["set_size"]) == n)) for n in sizes]
            ax.plot(sizes, rmse, "o-", color=colors[arm], label=arm, ms=3)
        constant = [float(next(r["rmse_constant"] for r in mine if int(r["set_size"]) == n)) for n in sizes]
        ax.plot(sizes, constant, "--", color="grey", label="best constant")
        ax.set(xscale="log", yscale="log", title=f"{parameter}: RMSE", xlabel="set size n")
        ax.set_xticks(sizes, [str(n) for n in sizes], minor=False)
        ax.set_xticks([], minor=True)  # the log axis's minor labels would overlap the set sizes
    for ax in axes[1, 1:]:
        ax.remove()
    ax = axes[1, 0]
    shown = [r for r in rows if r["metric"] == metric]
    for arm in arms:
        mine = sorted((int(r["generation"]), float(r["mean"]), float(r["lo"]), float(r["hi"])) for r in shown if r["arm"] == arm)
        generations, mean, lo, hi = (np.array(column) for column in zip(*mine))
        ax.plot(generations, mean, color=colors[arm], label=arm)
        ax.fill_between(generations, lo, hi, color=colors[arm], alpha=0.2)
    means = np.array([float(r["mean"]) for r in shown])
    if (means > 0).all() and means.max() > 100 * means.min():
        ax.set_yscale("log")
    ax.set(xlabel="generation", title=f"loop: {metric}\n(mean, 95 % band, {chains} chains)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _in_prior(row: dict) -> bool:
    """``in_prior`` of an assessment row, a bool or as ``assessment.csv`` writes it."""
    return row["in_prior"] in (True, "True")

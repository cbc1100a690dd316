"""The variance-bias study: which variance estimator does a trained hypernetwork become?

From sets of ``n`` points of a Gaussian, a hypernetwork ``H`` predicts the Gaussian's mean and
variance (Mayer et al., arXiv 2405.13977, Eq. 6). Trained by maximum likelihood (``hyper_mle``)
it should become the MLE, ``SS / n`` (``SS = sum_i (x_i - mean)^2``), whose relative bias is
``E[sigma_hat^2 / sigma^2] - 1 = -1/n``. The PLE constraint ``E[H(Y) - H(X)] = 0`` (Eq. 4) picks,
among the estimators ``c SS``, Bessel's ``c = 1/(n-1)``: relative bias 0 (docs/references.md §1).

Every arm trains one hypernetwork with its own PLE options (``genfair.hypernets.PLEConfig``) on the same
stream of training sets, then estimates the variance of the same ``test_sets`` fresh sets
(common random numbers). Reported per arm: the relative bias ``mean(sigma_hat^2 / sigma^2 - 1)``
over test sets and its standard error; the paired difference from the closed-form MLE on the
same sets (a much smaller standard error); the input sensitivity of the trained ``H`` (the
degeneracy probe: a constant ``H`` meets the constraint trivially and scores 0).

The true variances are log-uniform on ``variance_range`` and the true means uniform on
``[-mean_range, mean_range]``, so ``H`` must read its input. Each arm also gets the relative bias
at the minimiser of its expected objective (``_variance_bias_theory``): a fixed-lam per-draw
penalty shrinks the variance beyond the MLE, and above lam of about 2 its optimum is the constant
``H``; the expectation-level penalty approaches Bessel as lam grows, yet training from the
residual hypernetwork's constant start stays near the constant for lam >= 10 (between the
constant and Bessel, both with D = 0, the penalty is a barrier); the augmented Lagrangian of
``genfair.hypernets.PLEObjective`` reaches Bessel.

Outputs in ``run_dir``: ``relative_bias.csv`` and ``figures/relative_bias.png``; run through
``genfair.studies.run_study``, also ``summary.json`` with the numbers under ``results``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from genfair.checkpoint import write_bytes_atomic
from genfair.models import ClassGaussianModel, psd_sqrt
from genfair.seeding import torch_generator
from genfair.studies._runner import StudyResult
from genfair.studies._variance_bias_config import VarianceBiasArm, VarianceBiasConfig
from genfair.studies._variance_bias_figure import save_relative_bias_figure
from genfair.studies._variance_bias_theory import predict_relative_bias
from genfair.training import take_step
from genfair.hypernets import HyperNetwork, PLEConfig, PLEObjective, input_sensitivity

__all__ = ["VarianceBiasArm", "VarianceBiasConfig", "draw_sets", "run_variance_bias"]

log = logging.getLogger("genfair")
DTYPES = {"float32": torch.float32, "float64": torch.float64}  # the names of DTYPE_NAMES
_EVAL_CHUNK = 10_000  # test sets per forward pass


def draw_sets(
    count: int, config: VarianceBiasConfig, *, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` Gaussian sets: points ``(count, n, dim)`` (in ``config.dtype``) and each set's
    true variance ``sigma^2 (count,)`` (float64), log-uniform on ``variance_range``."""
    low, high = (math.log(v) for v in config.variance_range)
    f64 = dict(dtype=torch.float64)
    variance = torch.exp(low + (high - low) * torch.rand(count, generator=generator, **f64))
    mean = config.mean_range * (2 * torch.rand(count, 1, config.dim, generator=generator, **f64) - 1)
    z = torch.randn(count, config.n, config.dim, generator=generator, **f64)
    return (mean + variance.sqrt()[:, None, None] * z).to(DTYPES[config.dtype]), variance


def run_variance_bias(config: VarianceBiasConfig, *, seed: int, run_dir: Path) -> StudyResult:
    """Train one hypernetwork per arm, measure every arm's variance bias; write the table and figure.

    Seeds (``genfair.seeding``, the same for every arm): stream ``fit`` initialises the
    hypernetwork, ``real`` draws the training sets, ``sample`` the synthetic sets Y, ``measure``
    the test sets and ``bootstrap`` the probe's split into halves.

    Returns:
        ``results``: ``{"n", "test_sets", "theory": {...}, "references": {...}, "arms": {name:
        {"relative_bias", "se", "minus_mle", "minus_mle_se", "constraint_gap", "constraint_gap_se",
        "sensitivity", "lam", "discrepancy", "constraint", ..., "seconds"}}}``; ``files``: the
        table and the figure.
    """
    run_dir = Path(run_dir)
    x_test, variance = draw_sets(config.test_sets, config, generator=torch_generator(seed, 0, "measure"))
    mle = _closed_form_ratio(x_test, variance, "mle")
    results: dict[str, Any] = {
        "n": config.n,
        "test_sets": config.test_sets,
        "theory": {  # relative biases: the MLE, Bessel's correction, the per-draw D's fixed point (detached target)
            "mle": -1.0 / config.n,
            "bessel": 0.0,
            "per_draw_detached_fixed_point": -2.0 / (config.n + 1),
        },
        "references": {
            "closed_form_mle": _bias_stats(mle, mle),
            "closed_form_unbiased": _bias_stats(_closed_form_ratio(x_test, variance, "unbiased"), mle),
        },
        "arms": {},
    }
    for name, arm in config.selected_arms().items():
        hnet = _build_hypernetwork(config, seed)
        if "constant" not in results["references"]:  # the residual hypernetwork starts constant
            results["references"]["constant"] = _measure(hnet, x_test, variance, mle, config, seed)
        arm_started = time.perf_counter()
        training = _train(hnet, arm.ple_config(), config, seed)
        result = _measure(hnet, x_test, variance, mle, config, seed)
        seconds = time.perf_counter() - arm_started
        options = {**dataclasses.asdict(arm), "theory": _theory(arm, config)}
        results["arms"][name] = {**result, **options, **training, "seconds": round(seconds, 2)}
        log.info(
            "variance_bias %s: relative bias %+.4f +- %.4f, sensitivity %.3f (%.1f s)",
            name, result["relative_bias"], result["se"], result["sensitivity"], seconds,
        )
    table, figure = run_dir / "relative_bias.csv", run_dir / "figures" / "relative_bias.png"
    _write_table(table, results)
    save_relative_bias_figure(figure, results)
    return StudyResult(results=results, files=(table, figure), rows=tuple(_metric_rows(results)))


_ROW_METRICS = {  # metrics.csv: metric -> its standard error's key over the test sets (None: none)
    "relative_bias": "se", "minus_mle": "minus_mle_se", "constraint_gap": "constraint_gap_se",
    "sensitivity": None, "final_nll": None, "final_discrepancy": None,
}


def _metric_rows(results: dict[str, Any]) -> list[dict]:
    """``metrics.csv`` rows (generation 0, group ``all``) of the references and arms: each metric
    with its standard error over the test sets and the normal 95 % interval (n = 50,000 by
    default, so the t and normal quantiles agree to 1e-5)."""
    z = statistics.NormalDist().inv_cdf(0.975)
    rows = []
    for arm, values in {**results["references"], **results["arms"]}.items():
        for metric, se_key in _ROW_METRICS.items():
            if values.get(metric) is None:
                continue
            mean, se = float(values[metric]), float(values[se_key]) if se_key in values else math.nan
            rows.append({"arm": arm, "generation": 0, "group": "all", "metric": metric, "mean": mean, "se": se,
                         "n": results["test_sets"], "lo": mean - z * se, "hi": mean + z * se})  # fmt: skip
    return rows


def _theory(arm: VarianceBiasArm, config: VarianceBiasConfig) -> dict[str, Any] | None:
    """The relative bias at the minimiser of the arm's expected objective, and whether that is a
    scale-equivariant or the constant estimator (see ``_variance_bias_theory``); ``None`` outside
    its assumptions (dim 1, n > 3, ``parameter`` normalisation, no stop-gradient)."""
    if config.dim != 1 or config.n <= 3 or arm.normalize != "parameter" or arm.detach_target or arm.detach_samples:
        return None
    prediction = predict_relative_bias(
        n=config.n, lam=arm.lam, discrepancy=arm.discrepancy, constraint=arm.constraint,
        variance_range=tuple(config.variance_range), mean_range=config.mean_range,
    )
    return {"relative_bias": prediction.relative_bias, "solution": prediction.solution}


def _build_hypernetwork(config: VarianceBiasConfig, seed: int) -> HyperNetwork:
    """A fresh hypernetwork around ``ClassGaussianModel(1, dim)``, initialised from stream ``fit``."""
    target = ClassGaussianModel(1, config.dim, replicates=config.sets_per_step).to(DTYPES[config.dtype])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_generator(seed, 0, "fit").initial_seed())
        return HyperNetwork(
            target,
            sample_shape=(config.dim,),
            per_replicate=True,
            exclude=["shares"],
            positive={"covs": "softplus"},
            hidden=config.hidden,
            embedding_dim=config.embedding_dim,
        )


def _train(hnet: HyperNetwork, ple: PLEConfig, config: VarianceBiasConfig, seed: int) -> dict[str, Any]:
    """Adam on the PLE objective, learning rate cosine-decayed to 0; returns the last 10 % of
    steps' mean NLL and discrepancy, and the final multiplier (augmented Lagrangian only).
    A NaN or infinite objective raises :class:`FloatingPointError` naming the PLE options, the
    step and the value (:func:`genfair.training.take_step`)."""
    objective = PLEObjective(ple)
    optimiser = torch.optim.Adam(hnet.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.steps)
    real, synthetic = torch_generator(seed, 0, "real"), torch_generator(seed, 0, "sample")
    tail = max(1, config.steps // 10)
    nll_sum = discrepancy_sum = 0.0
    for step in range(config.steps):
        x, _ = draw_sets(config.sets_per_step, config, generator=real)
        terms = objective(hnet, x, generator=synthetic)
        take_step(terms.total, optimiser, what=f"variance_bias hypernetwork ({ple})", step=step, steps=config.steps)
        schedule.step()
        objective.update_multiplier(terms)
        if step >= config.steps - tail:
            nll_sum += terms.nll.item()
            discrepancy_sum += terms.discrepancy.item()
    multiplier = None if objective.multiplier is None else objective.multiplier.tolist()
    return {"final_nll": nll_sum / tail, "final_discrepancy": discrepancy_sum / tail, "multiplier": multiplier}


@torch.no_grad()
def _measure(
    hnet: HyperNetwork,
    x: torch.Tensor,
    variance: torch.Tensor,
    mle: torch.Tensor,
    config: VarianceBiasConfig,
    seed: int,
) -> dict[str, float]:
    """Relative bias of ``H`` on the test sets (see :func:`_bias_stats`), the residual of Eq. (4)
    on them (:func:`_constraint_gap`) and the input sensitivity of ``H``."""
    weights = [hnet(chunk) for chunk in x.split(_EVAL_CHUNK)]
    covs = torch.cat([w["covs"] for w in weights])  # (T, 1, d, d)
    gap = _constraint_gap(hnet, weights, variance, config.n, generator=torch_generator(seed, 1, "sample"))
    probe = input_sensitivity(hnet, x[: config.probe_sets], generator=torch_generator(seed, 0, "bootstrap"))
    return {**_bias_stats(_diagonal_ratio(covs, variance), mle), **gap, "sensitivity": probe["disjoint"]}


def _constraint_gap(
    hnet: HyperNetwork,
    weights: list[dict[str, torch.Tensor]],
    variance: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator,
) -> dict[str, float]:
    """Eq. (4)'s residual for the variance: ``mean(H(Y) - H(X)) / mean(sigma^2)`` over the test
    sets, one draw ``Y ~ N(H(X))`` of n points each, with its standard error. The augmented
    Lagrangian drives it to 0 on the training sets; so does a constant H, trivially."""
    gaps = []
    for w in weights:
        mean, cov = w["means"][:, 0], w["covs"][:, 0]  # (c, d), (c, d, d)
        z = torch.randn(cov.shape[0], n, cov.shape[-1], generator=generator, dtype=torch.float64).to(cov.dtype)
        y = mean[:, None, :] + (psd_sqrt(cov)[:, None] @ z[..., None])[..., 0]  # (c, n, d)
        gaps.append(_diagonal_ratio(hnet(y)["covs"], torch.ones(())) - _diagonal_ratio(w["covs"], torch.ones(())))
    gap = torch.cat(gaps) / variance.mean()
    return {"constraint_gap": float(gap.mean()), "constraint_gap_se": float(gap.std() / math.sqrt(gap.numel()))}


def _closed_form_ratio(x: torch.Tensor, variance: torch.Tensor, estimator: str) -> torch.Tensor:
    """``sigma_hat^2 / sigma^2 (T,)`` of the closed-form ``mle`` or ``unbiased`` estimator."""
    model = ClassGaussianModel(1, x.shape[-1], replicates=x.shape[0], estimator=estimator)
    model.fit(x.to(torch.float64))
    return _diagonal_ratio(model.covs.detach(), variance)


def _diagonal_ratio(covs: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """``covs (T, 1, d, d)`` -> the mean over the diagonal of ``covs / sigma^2``, ``(T,)`` (``sigma^2``
    ``(T,)``, or a scalar)."""
    return torch.diagonal(covs[:, 0].to(torch.float64), dim1=-2, dim2=-1).mean(-1) / variance


def _bias_stats(ratio: torch.Tensor, mle: torch.Tensor) -> dict[str, float]:
    """``relative_bias = mean(ratio - 1)`` with its standard error over sets, and the paired
    difference from the closed-form MLE on the same sets (``minus_mle``, ``minus_mle_se``)."""
    count = ratio.numel()
    difference = ratio - mle
    return {
        "relative_bias": float(ratio.mean() - 1),
        "se": float(ratio.std() / math.sqrt(count)),
        "minus_mle": float(difference.mean()),
        "minus_mle_se": float(difference.std() / math.sqrt(count)),
    }


TABLE_COLUMNS = (
    "name", "kind", "lam", "discrepancy", "constraint", "relative_bias", "se", "ci95_low", "ci95_high",
    "minus_mle", "minus_mle_se", "constraint_gap", "constraint_gap_se", "sensitivity", "seconds",
)


def _write_table(path: Path, results: dict) -> None:
    """``relative_bias.csv``: one row per reference and per arm, columns :data:`TABLE_COLUMNS`."""
    rows = [{"name": k, "kind": "reference", **v} for k, v in results["references"].items()]
    rows += [{"name": k, "kind": "arm", **v} for k, v in results["arms"].items()]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        half = 1.96 * row["se"]
        writer.writerow({**row, "ci95_low": row["relative_bias"] - half, "ci95_high": row["relative_bias"] + half})
    write_bytes_atomic(path, buffer.getvalue().encode())


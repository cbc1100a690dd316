"""The GMM study: PLE vs hypernetwork MLE vs EM on the authors' 1-D mixture (``experiment=gmm_ple``).

Mayer et al. (arXiv 2405.13977, §5) fit 0.8 N(0, 1) + 0.2 N(2, 1) and report Monte-Carlo
KL(data || model). This study measures, per estimator (see ``_gmm_estimators``) and set size n:

1. Train the hypernetworks: one amortised estimator H_n per (lam, n), on fresh sets of size n.
2. Estimate on ``test_sets`` sets of each size (the same sets for every arm) and measure
   KL(data || model) (Monte Carlo, ``kl_samples`` draws of the exactly known data density), and
   the minority component's weight, mean and variance (components named by
   ``match_components``); probe each hypernetwork's input sensitivity.
3. Run a fully synthetic self-consuming loop at n = ``loop_size``: generation 0 estimates on
   real data, generation g on n samples of generation g-1's mixture (H_n(X_g), or an EM refit).
4. Write ``estimators.csv`` (per arm and n) and ``figures/gmm_ple.png``, and return the numbers
   (``genfair.studies.run_study`` writes them to ``summary.json``) and the loop's rows with each
   arm's input sensitivity at n = ``loop_size`` (generation 0), which ``run_study`` writes as
   ``metrics.csv`` in the format of ``genfair``'s loop runs (``genfair-plot`` and
   ``genfair-aggregate`` read it).

Randomness: the root seed is split into four phase roots (train, test, kl, loop) and each phase
draws from ``genfair.seeding`` streams; every arm reuses the same streams (common random numbers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from genfair.data import Batch
from genfair.metrics import monte_carlo_kl, summarize_replicates
from genfair.models import GaussianMixtureModel
from genfair.seeding import child_seed, torch_generator
from genfair.studies._gmm_config import GmmPleConfig
from genfair.studies._gmm_estimators import (
    MixtureEstimate,
    TrainedHyperNetwork,
    em_estimate,
    hyper_estimate,
    match_components,
    train_hypernetwork,
)
from genfair.studies._gmm_report import save_gmm_figure, write_rows
from genfair.studies._runner import StudyResult
from genfair.hypernets import input_sensitivity
from genfair.loops import FitContext, LoopConfig, simulate

__all__ = ["GmmPleConfig", "run_gmm_ple"]

log = logging.getLogger("genfair")

Phase = Literal["train", "test", "kl", "loop"]
_PHASES: tuple[str, ...] = ("train", "test", "kl", "loop")
Estimator = Callable[[torch.Tensor, torch.Generator], MixtureEstimate]


def run_gmm_ple(config: GmmPleConfig, *, seed: int, run_dir: Path) -> StudyResult:
    """Run the study into ``run_dir``: write its tables and figure, return its numbers.

    Returns:
        ``results``: ``{"truth", "minority_rule", "sizes", "loop", "input_sensitivity",
        "training", "seconds"}`` (``sizes`` and ``loop``: ``{arm: {"metric/group": {str(n or
        generation): statistics}}}``); ``files``: the two tables and the figure.

    Example:
        >>> config = GmmPleConfig(sample_sizes=[50], loop_size=50, steps=20, test_sets=10,
        ...                       ablation_lams=[], generations=2, chains=4, kl_samples=1000)
        >>> result = run_gmm_ple(config, seed=0, run_dir=Path(tmp_path))  # doctest: +SKIP
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    truth = _truth(config)
    roots = {phase: _phase_root(seed, phase) for phase in _PHASES}
    seconds: dict[str, float] = {}

    # 1. Train one hypernetwork per (lam, set size).
    tick = time.perf_counter()
    trained = {
        n: {arm: _train(config, truth, n, lam, roots["train"], i) for arm, lam in config.hyper_arms(n).items()}
        for i, n in enumerate(config.sample_sizes)
    }
    seconds["train"] = time.perf_counter() - tick

    # 2. Estimate on the test sets of every size; measure fidelity and input sensitivity.
    tick = time.perf_counter()
    size_rows, sensitivity = [], {}
    for i, n in enumerate(config.sample_sizes):
        rows, sensitivity_n = _measure_size(config, truth, trained[n], n=n, index=i, roots=roots)
        size_rows += rows
        for arm, result in sensitivity_n.items():
            sensitivity.setdefault(arm, {})[str(n)] = result
    seconds["sizes"] = time.perf_counter() - tick

    # 3. The fully synthetic self-consuming loop at n = loop_size.
    tick = time.perf_counter()
    loop_rows = []
    for arm, estimator in _estimators(config, trained[config.loop_size]).items():
        loop_rows += _loop(arm, estimator, truth, config, roots)
    seconds["loop"] = time.perf_counter() - tick

    # 4. Write the results.
    sizes_table = run_dir / "estimators.csv"
    write_rows(sizes_table, size_rows, first=("arm", "set_size"))
    lams = {arm: t.lam for arm, t in trained[config.loop_size].items()}
    figure = run_dir / "figures" / "gmm_ple.png"
    save_gmm_figure(figure, size_rows, loop_rows, sensitivity=sensitivity, lams=lams, config=config)
    seconds["total"] = time.perf_counter() - started
    results = {
        "truth": {"weights": config.weights, "means": config.means, "variances": config.variances, "minority": config.minority},
        "minority_rule": (
            "the fitted component matched to the true minority by the permutation of components "
            "minimising the squared distance between fitted and true means"
        ),
        "sizes": _nest(size_rows, "set_size"),
        "loop": _nest(loop_rows, "generation"),
        "input_sensitivity": sensitivity,
        "training": {str(n): {arm: _training_record(t) for arm, t in arms.items()} for n, arms in trained.items()},
        "seconds": seconds,
    }
    log.info("gmm_ple: results in %s (%.0f s)", run_dir, seconds["total"])
    probes = [
        {"arm": arm, "generation": 0, "group": "all", "metric": "sensitivity", "mean": by_n[str(config.loop_size)]["disjoint"], "n": 1}
        for arm, by_n in sensitivity.items() if str(config.loop_size) in by_n
    ]  # fmt: skip
    return StudyResult(results=results, files=(sizes_table, figure), rows=(*loop_rows, *probes))


def _measure_size(
    config: GmmPleConfig,
    truth: GaussianMixtureModel,
    trained: dict[str, TrainedHyperNetwork],
    *,
    n: int,
    index: int,
    roots: dict[str, int],
) -> tuple[list[dict], dict[str, dict[str, float]]]:
    """Every arm on the same ``test_sets`` sets of size n: the rows of ``estimators.csv`` and
    ``{arm: input sensitivity}`` on the same ``probe_sets`` sets of 2n samples."""
    x, _ = _draw(truth, config.test_sets, n, torch_generator(roots["test"], index, "real"))
    probe, components = _draw(truth, config.probe_sets, 2 * n, torch_generator(roots["test"], index, "measure"))
    rows, sensitivity = [], {}
    for arm, estimator in _estimators(config, trained).items():
        estimate = estimator(x, torch_generator(roots["test"], index, "fit"))
        values = _measure(estimate, truth, config, roots["kl"])
        if arm == "em":
            values["converged/all"] = estimate.converged.to(torch.float64)
        rows += [{"arm": arm, "set_size": n, **row} for row in _rows(values)]
        probe_generator = torch_generator(roots["test"], index, "bootstrap")
        if arm in trained:
            sensitivity[arm] = _probe_hypernetwork(trained[arm], probe, components, probe_generator)
        else:
            sensitivity[arm] = _probe_estimator(estimator, probe, components, config, probe_generator)
        kl, weight = values["kl/all"].mean(), values["weight/minority"].mean()
        log.info("n=%d %s: KL %.4f, minority weight %.3f, input sensitivity %s", n, arm, kl, weight, sensitivity[arm])
    return rows, sensitivity


def _truth(config: GmmPleConfig) -> GaussianMixtureModel:
    truth = GaussianMixtureModel(len(config.weights), 1)
    with torch.no_grad():
        truth.weights.copy_(torch.tensor([config.weights], dtype=torch.float64))
        truth.means.copy_(torch.tensor(config.means, dtype=torch.float64).reshape(1, -1, 1))
        truth.variances.copy_(torch.tensor(config.variances, dtype=torch.float64).reshape(1, -1, 1))
    return truth.requires_grad_(False)


def _phase_root(seed: int, phase: Phase) -> int:
    """A root seed per phase, independent of the others: ``SeedSequence([seed, phase + 1])``."""
    return int(np.random.SeedSequence([seed, 1 + _PHASES.index(phase)]).generate_state(1, dtype=np.uint64)[0])


def _draw(truth: GaussianMixtureModel, sets: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``sets`` iid sets of n samples ``(sets, n, 1)`` and their true components ``(sets, n)``."""
    components = truth.draw_components(sets * n, generator=generator)
    x = truth.sample(sets * n, components=components, generator=generator)
    return x.reshape(sets, n, truth.dim), components.reshape(sets, n)


def _train(
    config: GmmPleConfig, truth: GaussianMixtureModel, n: int, lam: float, root: int, index: int
) -> TrainedHyperNetwork:
    trained = train_hypernetwork(
        truth,
        set_size=n,
        lam=lam,
        steps=config.steps,
        samples_per_step=config.samples_per_step,
        lr=config.lr,
        hidden=config.hidden,
        embedding_dim=config.embedding_dim,
        discrepancy=config.discrepancy,
        init_seed=int(child_seed(root, index, "fit").generate_state(1)[0]),
        data_generator=torch_generator(root, index, "real"),
        ple_generator=torch_generator(root, index, "sample"),
    )
    log.info("trained H for n=%d, lam=%g: NLL %.4f, D %.2e, %.1f s", n, lam, trained.nll, trained.discrepancy, trained.seconds)
    return trained


def _estimators(config: GmmPleConfig, trained: dict[str, TrainedHyperNetwork]) -> dict[str, Estimator]:
    """``{arm: (x (R, n, 1), generator) -> MixtureEstimate}``: the hypernetworks and EM."""
    estimators: dict[str, Estimator] = {arm: (lambda x, _, h=t.hnet: hyper_estimate(h, x)) for arm, t in trained.items()}
    estimators["em"] = lambda x, generator: em_estimate(
        x,
        num_components=len(config.weights),
        n_init=config.em_n_init,
        tol=config.em_tol,
        max_iter=config.em_max_iter,
        generator=generator,
    )
    return estimators


def _measure(
    estimate: MixtureEstimate, truth: GaussianMixtureModel, config: GmmPleConfig, kl_root: int
) -> dict[str, torch.Tensor]:
    """``{"metric/group": (R,)}``: KL(data || model) and its Monte-Carlo SE, and the minority's
    weight, mean and variance. Every call draws the same ``kl_samples`` (common random numbers)."""
    kl_generator = torch_generator(kl_root, 0, "measure")
    kl = monte_carlo_kl(truth, estimate.as_model(), samples=config.kl_samples, generator=kl_generator)
    matched = estimate.permuted(match_components(estimate.means, truth.means[0]))
    k = config.minority
    return {
        "kl/all": kl.value,
        "kl_mc_se/all": kl.se,
        "weight/minority": matched.weights[:, k],
        "mean/minority": matched.means[:, k, 0],
        "variance/minority": matched.variances[:, k, 0],
    }


def _rows(values: dict[str, torch.Tensor]) -> list[dict]:
    rows = []
    for key, value in values.items():
        metric, group = key.split("/", 1)
        summary = summarize_replicates(value.detach().cpu().numpy().astype(np.float64)).as_dict()
        rows.append({"group": group, "metric": metric, **summary})
    return rows


def _probe_hypernetwork(
    trained: TrainedHyperNetwork, probe: torch.Tensor, components: torch.Tensor, generator: torch.Generator
) -> dict[str, float]:
    """``genfair.hypernets.input_sensitivity``: ``disjoint`` over every probe set of 2n samples (halves of
    n), and ``component_a_vs_b`` averaged over the sets (each set split by true component)."""
    result = {"disjoint": input_sensitivity(trained.hnet, probe, generator=generator)["disjoint"]}
    per_set = [
        input_sensitivity(trained.hnet, probe[p : p + 1], components[p : p + 1], generator=generator)
        for p in range(len(probe))
    ]
    return result | _component_means(per_set)


def _probe_estimator(
    estimator: Estimator, probe: torch.Tensor, components: torch.Tensor, config: GmmPleConfig, generator: torch.Generator
) -> dict[str, float]:
    """The same relative change, ``rms(theta(A) - theta(B)) / rms(theta(A))``, for EM, whose
    component order is arbitrary: each fit's components are first matched to the truth."""
    true_means = torch.tensor(config.means, dtype=torch.float64)[:, None]

    def flat(x: torch.Tensor) -> torch.Tensor:
        estimate = estimator(x, generator)
        return estimate.permuted(match_components(estimate.means, true_means)).flat()

    n = probe.shape[1] // 2
    result = {"disjoint": _relative_change(flat(probe[:, :n]), flat(probe[:, n:]))}
    per_set = []
    for x, labels in zip(probe, components):
        present = sorted(labels.unique().tolist())
        batches = {c: flat(x[labels == c][None]) for c in present}
        pairs = [(a, b) for a in present for b in present if a < b]
        per_set.append({f"class_{a}_vs_{b}": _relative_change(batches[a], batches[b]) for a, b in pairs})
    return result | _component_means(per_set)


def _component_means(per_set: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({key for result in per_set for key in result if key.startswith("class_")})
    return {key.replace("class_", "component_"): float(np.mean([r[key] for r in per_set if key in r])) for key in keys}


def _relative_change(a: torch.Tensor, b: torch.Tensor) -> float:
    """As in ``genfair.hypernets.input_sensitivity``: rms over all values of ``a - b`` over rms of ``a``."""
    return float((a - b).square().mean().sqrt() / a.square().mean().sqrt().clamp(min=1e-12))


class _MixtureSource:
    """The true mixture as a data source for ``genfair.loops.simulate``: unlabelled (one group, ``all``)."""

    group_names = ("all",)

    def __init__(self, truth: GaussianMixtureModel) -> None:
        self.truth = truth

    def draw(self, replicates: int, n: int, *, generator: torch.Generator) -> Batch:
        x, _ = _draw(self.truth, replicates, n, generator)
        return Batch(x, torch.zeros(replicates, n, dtype=torch.int64))


def _loop(
    arm: str, estimator: Estimator, truth: GaussianMixtureModel, config: GmmPleConfig, roots: dict[str, int]
) -> list[dict]:
    """Generation g's estimate is the estimator applied to n samples of generation g-1's mixture."""

    def fit(model: GaussianMixtureModel, train: Batch, generator: torch.Generator, _: FitContext) -> GaussianMixtureModel:
        estimator(train.x, generator).load_into(model)
        return model

    def measure(model: GaussianMixtureModel, train: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        converged = torch.ones(config.chains, dtype=torch.bool)
        fitted = MixtureEstimate(model.weights.detach(), model.means.detach(), model.variances.detach(), converged)
        return _measure(fitted, truth, config, roots["kl"])

    n = config.loop_size
    loop = LoopConfig(
        kind="fully_synthetic", generations=config.generations, n_real=n, n_synthetic=n, replicates=config.chains
    )
    model = GaussianMixtureModel(len(config.weights), 1, replicates=config.chains)
    started = time.perf_counter()
    result = simulate(data=_MixtureSource(truth), model=model, config=loop, seed=roots["loop"], measure=measure, fit=fit)
    log.info("loop %s: %d generations in %.1f s", arm, config.generations, time.perf_counter() - started)
    rows = []
    for record in result.records:
        values = {key: torch.from_numpy(value) for key, value in record.values.items()}
        rows += [{"arm": arm, "generation": record.generation, **row} for row in _rows(values)]
    return rows


def _nest(rows: list[dict], by: str) -> dict[str, dict[str, dict[str, list | dict]]]:
    """``{arm: {"metric/group": {str(by value): stats}}}`` for summary.json."""
    nested: dict[str, Any] = {}
    for row in rows:
        stats = {k: row[k] for k in ("mean", "se", "median", "q05", "q95", "n")}
        nested.setdefault(row["arm"], {}).setdefault(f"{row['metric']}/{row['group']}", {})[str(row[by])] = stats
    return nested


def _training_record(trained: TrainedHyperNetwork) -> dict[str, Any]:
    return {
        "lam": trained.lam,
        "sets_per_step": trained.sets_per_step,
        "final_nll": trained.nll,
        "final_discrepancy": trained.discrepancy,
        "seconds": trained.seconds,
        "hypernetwork_parameters": trained.hnet.size().hypernetwork,
    }

"""The prior studies: does PLE help when H reads its data? (``experiment=gaussian_prior``, ``gmm_prior``)

Every earlier hypernetwork in the lab was trained on sets of one distribution and could memorise
it. Here H is trained over a prior of distributions, as neural Bayes estimators are
(``genfair.studies._amortised``), then:

1. Train (or load) one H per lam over the prior: ``hyper_mle`` (lam = 0), ``ple`` (the first of
   ``lams``) and ``ple_lam<value>``; set sizes drawn from ``set_sizes`` and given to H.
2. Assess every arm on ``heldout_draws`` held-out draws of the prior at each of ``assess_sizes``,
   and on draws of ``outside`` (beyond the training ranges) at ``loop_size``: RMSE, bias and
   response per parameter against the refit and the best constant (``assessment.csv``,
   ``genfair.studies._assessment``); the sampling distribution at a few fixed parameters
   (``sampling.csv``).
3. Run a fully synthetic loop per arm from ``chains`` held-out draws: generation 0 estimates on
   n = ``loop_size`` real samples of chain r's distribution, generation g on n samples of
   generation g-1's fit, ``theta_{g+1} = H(Y_g)``: H is applied, never retrained. Chains share
   their distributions and random streams across arms (common random numbers).
4. The declared primary endpoint (``primary_metric``'s change from generation 0 to the last,
   ``primary_arm`` minus ``primary_baseline``, paired over chains) and the exploratory contrasts
   (every arm against ``refit``, every PLE arm against ``hyper_mle``; Holm over them), written
   to ``endpoints.csv``; the loop's rows become ``metrics.csv``.

Randomness: the root seed is split into phase roots (train, test, loop) with
``genfair.seeding`` streams below them; every arm uses the same streams.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from genfair.checkpoint import finite_or_null
from genfair.hypernets import HyperNetwork
from genfair.loops import FitContext, LoopConfig, simulate
from genfair.models import GaussianMixtureModel
from genfair.seeding import child_seed, torch_generator
from genfair.studies._amortised import AmortisedTraining, load_estimator, save_estimator, train_over_prior
from genfair.studies._assessment import assessment_row, write_assessment, write_table
from genfair.studies._gmm_estimators import MixtureEstimate, em_estimate, hyper_estimate
from genfair.studies._prior_config import GaussianPriorConfig, GmmPriorConfig, PriorStudyConfig
from genfair.studies._prior_measures import loop_measures, parameters_of
from genfair.studies._prior_report import endpoint_rows, loop_rows, save_prior_figure
from genfair.studies._runner import StudyResult

__all__ = ["run_gaussian_prior", "run_gmm_prior"]

log = logging.getLogger("genfair")

Estimator = Callable[[torch.Tensor, torch.Generator], MixtureEstimate]
_PHASES = ("train", "test", "loop")


def run_gaussian_prior(config: GaussianPriorConfig, *, seed: int, run_dir: Path) -> StudyResult:
    """The Gaussian prior study (see the module docstring) into ``run_dir``."""
    return _run(config, seed=seed, run_dir=Path(run_dir), components=1)


def run_gmm_prior(config: GmmPriorConfig, *, seed: int, run_dir: Path) -> StudyResult:
    """The two-component mixture prior study (see the module docstring) into ``run_dir``."""
    return _run(config, seed=seed, run_dir=Path(run_dir), components=2)


def _run(config: PriorStudyConfig, *, seed: int, run_dir: Path, components: int) -> StudyResult:
    started = time.perf_counter()
    roots = {phase: int(np.random.SeedSequence([seed, 11 + i]).generate_state(1, dtype=np.uint64)[0]) for i, phase in enumerate(_PHASES)}

    # 1. Train (or load) one H per lam over the prior; every saved one is checked before any training.
    directory = Path(config.estimators_dir) if config.estimators_dir else run_dir / "estimators"
    built = {arm: _built(config, lam, components, seed=seed, root=roots["train"]) for arm, lam in config.hyper_arms().items()}
    loaded = {arm: load_estimator(directory / arm, hnet, description=d) for arm, (hnet, d) in built.items()}
    trained = {arm: (hnet, loaded[arm] or _train(config, arm, hnet, d, roots["train"], directory)) for arm, (hnet, d) in built.items()}
    estimators = {**_refits(config, components), **{arm: _applied(hnet) for arm, (hnet, _) in trained.items()}}

    # 2. Assess every arm on held-out draws of the prior (and beyond it).
    assessment, sampling = _assess(config, estimators, roots["test"])

    # 3. The loop: theta_{g+1} = estimator(n samples of theta_g), from held-out draws.
    generator = torch_generator(roots["loop"], 0, "real")
    truths = config.prior.draw_parameters(config.chains, generator=generator)
    values = {arm: _loop(config, estimator, truths, roots["loop"], components) for arm, estimator in estimators.items()}

    # 4. Endpoints and files.
    rows = loop_rows(values)
    weights = truths["minority_weight"].numpy() if components == 2 else None
    endpoints = endpoint_rows(values, config=config, seed=seed, true_weights=weights)
    kept = [directory / f"{arm}{suffix}" for arm in trained for suffix in (".safetensors", ".json")]
    files = (
        *(path for path in kept if path.resolve().is_relative_to(run_dir.resolve())),
        write_assessment(run_dir / "assessment.csv", assessment),
        write_table(run_dir / "sampling.csv", sampling),
        write_table(run_dir / "endpoints.csv", endpoints),
        save_prior_figure(run_dir / "figures" / "assessment.png", assessment, rows, metric=config.primary_metric,
                          chains=config.chains),
    )
    primary = next(row for row in endpoints if row["role"] == "primary")
    log.info(
        "%s: primary endpoint %s change %s - %s = %+.4g [%.4g, %.4g], p = %.3g (n = %d chains)",
        type(config).__name__, primary["metric"], primary["arm"], primary["baseline"], primary["mean_diff"],
        primary["lo"], primary["hi"], primary["p_signflip"], primary["n"],
    )
    results = finite_or_null({  # as summary.json stores them: NaN (a correlation of a constant) is null
        "training": {arm: record.__dict__ for arm, (_, record) in trained.items()},
        "assessment": assessment,
        "endpoints": endpoints,
        "seconds": time.perf_counter() - started,
    })
    return StudyResult(results=results, files=files, rows=tuple(rows))


def _target(components: int) -> GaussianMixtureModel:
    return GaussianMixtureModel(components, 1).to(torch.float32)


def _built(config: PriorStudyConfig, lam: float, components: int, *, seed: int, root: int) -> tuple[HyperNetwork, dict]:
    """A fresh H (the same initial weights for every lam: common random numbers) and the
    description a saved one must match: target, prior, H's options and its training."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(child_seed(root, 0, "fit").generate_state(1)[0]))
        hnet = HyperNetwork(
            _target(components), sample_shape=(1,), head="dense", per_replicate=True, set_size_input=True,
            positive={"weights": "softmax", "variances": "softplus"}, hidden=config.hidden, embedding_dim=config.embedding_dim,
        )
    description = {
        "target": {"model": "GaussianMixtureModel", "components": components, "dim": 1},
        "prior": {"type": type(config.prior).__name__, **dataclasses.asdict(config.prior)},
        "hypernetwork": {"head": "dense", "hidden": config.hidden, "embedding_dim": config.embedding_dim, "set_size_input": True},
        "training": {
            "lam": lam, "discrepancy": config.discrepancy, "steps": config.steps, "sets": config.sets,
            "set_sizes": list(config.set_sizes), "lr": config.lr, "seed": seed,
        },
    }
    return hnet, description


def _train(
    config: PriorStudyConfig, arm: str, hnet: HyperNetwork, description: dict, root: int, directory: Path
) -> AmortisedTraining:
    """Train ``hnet`` over the prior and save it in ``directory``."""
    lam = description["training"]["lam"]
    record = train_over_prior(
        hnet, config.prior, lam=lam, steps=config.steps, sets=config.sets, set_sizes=tuple(config.set_sizes), lr=config.lr,
        discrepancy=config.discrepancy, data_generator=torch_generator(root, 0, "real"),
        ple_generator=torch_generator(root, 0, "sample"), what=f"H of arm {arm} (lam={lam:g})",
    )
    save_estimator(directory / arm, hnet, record, description=description)
    log.info("%s: trained H over the prior in %.0f s (NLL %.4f, D %.2e)", arm, record.seconds, record.nll, record.discrepancy)
    return record


def _applied(hnet: HyperNetwork) -> Estimator:
    return lambda x, _: hyper_estimate(hnet, x)


def _refits(config: PriorStudyConfig, components: int) -> dict[str, Estimator]:
    """The refits: the Gaussian's MLE and Bessel-corrected fits in closed form, or EM."""
    if components == 1:
        return {"refit": lambda x, _: _gaussian_fit(x, ddof=0), "unbiased": lambda x, _: _gaussian_fit(x, ddof=1)}
    return {
        "refit": lambda x, generator: em_estimate(
            x, num_components=2, n_init=config.em_n_init, tol=config.em_tol, max_iter=config.em_max_iter, generator=generator
        )
    }


def _gaussian_fit(x: torch.Tensor, *, ddof: int) -> MixtureEstimate:
    """Mean and ``sum (x - mean)^2 / (n - ddof)`` of each set of ``x (R, n, 1)``, as a one-component mixture."""
    x = x.to(torch.float64)
    mean = x.mean(1, keepdim=True)  # (R, 1, 1)
    variance = (x - mean).square().sum(1, keepdim=True) / (x.shape[1] - ddof)
    ones = torch.ones(x.shape[0], 1, dtype=torch.float64)
    return MixtureEstimate(ones, mean, variance, torch.ones(x.shape[0], dtype=torch.bool))


def _assess(config: PriorStudyConfig, estimators: dict[str, Estimator], root: int) -> tuple[list[dict], list[dict]]:
    """``assessment.csv``'s rows (every arm, parameter and set size, in and outside the prior)
    and ``sampling.csv``'s (the estimates' quantiles at a few fixed parameters)."""
    rows, sampling = [], []
    cases = [(n, True) for n in config.assess_sizes] + [(config.loop_size, False)]
    for index, (n, in_prior) in enumerate(cases):
        prior = config.prior if in_prior else config.outside
        draw = prior.draw_sets(config.heldout_draws, n, generator=torch_generator(root, index, "real"))
        estimates = {arm: parameters_of(e(draw.x, torch_generator(root, index, "fit")), draw.parameters) for arm, e in estimators.items()}
        for arm, values in estimates.items():
            for name, value in values.items():
                rows.append(assessment_row(
                    value, draw.parameters[name], estimates["refit"][name], arm=arm, parameter=name, set_size=n, in_prior=in_prior,
                ))
    points = {k: v[: config.sampling_points] for k, v in config.prior.draw_parameters(
        max(config.sampling_points, 1), generator=torch_generator(root, len(cases), "real")).items()}
    for p in range(config.sampling_points):
        fixed = {k: v[p : p + 1].expand(config.sampling_sets) for k, v in points.items()}
        x = config.prior.sample(fixed, config.loop_size, generator=torch_generator(root, len(cases) + 1 + p, "real"))
        for arm, estimator in estimators.items():
            values = parameters_of(estimator(x, torch_generator(root, len(cases) + 1 + p, "fit")), fixed)
            for name, value in values.items():
                q05, q50, q95 = np.quantile(value, [0.05, 0.5, 0.95])
                sampling.append({
                    "arm": arm, "point": p, "parameter": name, "truth": float(fixed[name][0]), "set_size": config.loop_size,
                    "mean": float(value.mean()), "sd": float(value.std(ddof=1)), "q05": q05, "q50": q50, "q95": q95,
                })
    return rows, sampling


def _loop(
    config: PriorStudyConfig, estimator: Estimator, truths: dict[str, torch.Tensor], root: int, components: int
) -> dict[str, np.ndarray]:
    """One arm's fully synthetic loop over every chain: ``{metric: (generations, chains)}``."""

    def fit(model: GaussianMixtureModel, train, generator: torch.Generator, _: FitContext) -> GaussianMixtureModel:
        estimator(train.x, generator).load_into(model)
        return model

    def measure(model: GaussianMixtureModel, train, generator: torch.Generator) -> dict[str, torch.Tensor]:
        fitted = MixtureEstimate(model.weights.detach(), model.means.detach(), model.variances.detach(), torch.ones(1, dtype=torch.bool))
        kl_generator = torch_generator(root, 0, "measure")  # the same draws every generation and arm
        return loop_measures(fitted, truths, config=config, source=source, kl_generator=kl_generator)

    source = config.prior.fixed(truths)
    loop = LoopConfig(
        kind="fully_synthetic", generations=config.generations, n_real=config.loop_size, n_synthetic=config.loop_size,
        replicates=config.chains,
    )
    model = GaussianMixtureModel(components, 1, replicates=config.chains)
    result = simulate(data=source, model=model, config=loop, seed=root, measure=measure, fit=fit)
    return {key.split("/")[0]: np.stack([record.values[key] for record in result.records]) for key in result.records[0].values}


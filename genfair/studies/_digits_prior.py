"""A fair test of PLE on the digits: hypernetworks trained over a prior of class shares, assessed
like amortised estimators, then run in the loop (``genfair experiment=digits_prior``).

Every hypernetwork of the default experiment was trained on sets from one distribution and
memorised it; its stability in a loop was insensitivity. Here (neural Bayes estimators,
Sainsbury-Dale et al. 2024) each training set comes from a fresh distribution drawn from a prior
(``SharePrior``: the minority's share, Uniform(0, 1) by default), with a fresh set size given to
H. The generator is the conditional VAE whose weights carry the class shares (``class_logits``):
its synthetic labels are drawn from them, so an estimator that does not read the shares from its
data cannot keep them.

1. Train (or load, ``hypernetworks``) one H per arm over the prior: ``hyper_mle`` (lam 0) and
   ``ple_lam<lam>`` (``ple_lams``); each is kept as safetensors with its description.
2. Assess every arm and the refit on held-out draws from the prior: ``assessment.csv``.
3. The share response (only majority images, only minority images, sets at given shares):
   ``share_response.csv`` and each arm's slope.
4. The loop, ``theta_{g+1} = E(Y_g)`` for ``generations`` over ``chains`` paired chains; the
   declared primary endpoint (``primary_metric`` of ``primary_group`` at the last generation
   minus generation 0, arm minus ``refit``) and the exploratory cells: ``comparisons.csv``;
   per-generation means across chains: ``metrics.csv`` (written by ``run_study``); every chain's
   values: ``chains.csv``; each ``ple`` arm against ``hyper_mle`` (the control, exploratory):
   ``comparisons_control.csv``.

Randomness: the root seed is split into four phase roots (train, assess, response, loop); every
arm reuses the same streams (common random numbers).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from genfair.checkpoint import finite_or_null
from genfair.comparisons import CompareConfig, PairedComparisons, paired_comparisons, write_comparisons_csv
from genfair.errors import ConfigError
from genfair.evaluation import in_unit_interval
from genfair.hypernets import HyperNetwork
from genfair.metrics import mean_interval, summarize_replicates
from genfair.seeding import child_seed, torch_generator
from genfair.studies._amortised import AmortisedTraining, load_estimator, save_estimator
from genfair.studies._assessment import write_assessment, write_table
from genfair.studies._digits_prior_assessment import RESPONSE_COLUMNS, assess, share_response
from genfair.studies._digits_prior_config import DigitsPriorConfig
from genfair.studies._digits_prior_estimators import build_estimators, build_hypernetwork, train_amortised
from genfair.studies._digits_prior_loop import run_loop
from genfair.studies._digits_prior_measure import DigitsMeasure
from genfair.studies._runner import StudyResult
from genfair.studies._share_prior import SharePriorSource

__all__ = ["DigitsPriorConfig", "run_digits_prior"]

log = logging.getLogger("genfair")

_PHASES = ("train", "assess", "response", "loop")


def run_digits_prior(config: DigitsPriorConfig, *, seed: int, run_dir: Path) -> StudyResult:
    """Run the study into ``run_dir`` (see the module docstring); returns its numbers, files and
    the loop's ``metrics.csv`` rows."""
    started, run_dir = time.perf_counter(), Path(run_dir)
    source = SharePriorSource(config.classes, config.prior)
    _check_set_sizes(config, source)  # refused before any work
    roots = {phase: int(np.random.SeedSequence([seed, 1 + i]).generate_state(1, dtype=np.uint64)[0]) for i, phase in enumerate(_PHASES)}
    measure = DigitsMeasure(source, samples=config.samples, k=config.k, bootstrap=config.bootstrap)
    seconds: dict[str, float] = {}

    # 1. Train (or load) one amortised H per arm over the prior; every saved one is checked first.
    tick = time.perf_counter()
    directory = Path(config.hypernetworks) if config.hypernetworks is not None else run_dir / "hypernetworks"
    hypernetworks, trained = load_or_train(config, source, seed=seed, root=roots["train"], directory=directory)
    estimators = build_estimators(config, hypernetworks)
    seconds["train"] = time.perf_counter() - tick

    # 2. Assess every arm on held-out draws from the prior.
    tick = time.perf_counter()
    assessment = assess(estimators, source, measure, config, root=roots["assess"])
    seconds["assessment"] = time.perf_counter() - tick
    log.info("digits_prior: assessment on %d held-out draws per size in %.1f s", config.assessment_draws, seconds["assessment"])

    # 3. The share response.
    tick = time.perf_counter()
    response, slopes = share_response(estimators, source, measure, config, root=roots["response"])
    seconds["response"] = time.perf_counter() - tick
    log.info("digits_prior: share response in %.1f s, slopes %s", seconds["response"], {a: round(v, 3) for a, v in slopes.items()})

    # 4. The loop, every arm's chains on the same streams; the declared endpoint against refit.
    tick = time.perf_counter()
    loop = run_loop(estimators, source, measure, config, root=roots["loop"])
    comparisons, controls = _compare(loop, config, minority=source.group_names[1], seed=seed)
    seconds["loop"] = time.perf_counter() - tick

    # 5. Write the tables; run_study writes metrics.csv from the rows.
    files = [
        write_assessment(run_dir / "assessment.csv", assessment),
        write_table(run_dir / "share_response.csv", response, columns=RESPONSE_COLUMNS),
        write_comparisons_csv(run_dir / "comparisons.csv", comparisons),
        write_comparisons_csv(run_dir / "comparisons_control.csv", controls),
        write_table(run_dir / "chains.csv", _chain_rows(loop)),
    ]
    if directory.resolve().is_relative_to(run_dir.resolve()):  # the hypernetworks trained by this run
        files += sorted(directory.glob("*"))
    seconds["total"] = time.perf_counter() - started
    results = finite_or_null({  # as summary.json stores them: NaN (an undefined p-value, a constant's correlation) is null
        "classes": dict(zip(("majority", "minority"), source.group_names)),
        "prior": dataclasses.asdict(config.prior),
        "response_slope": {**slopes, "constant": 0.0},
        "assessment": assessment,
        "share_response": response,
        "primary": comparisons.primary,
        "control": controls.primary,
        "training": {arm: dataclasses.asdict(record) for arm, record in trained.items()},
        "seconds": seconds,
    })
    log.info("digits_prior: results in %s (%.0f s)", run_dir, seconds["total"])
    return StudyResult(results=results, files=tuple(files), rows=tuple(_metric_rows(loop)))


def _check_set_sizes(config: DigitsPriorConfig, source: SharePriorSource) -> None:
    if config.set_size_range[1] > source.largest_set:
        raise ConfigError(
            f"set_size_range must end at most at {source.largest_set} (the smaller class pool of digits "
            f"{list(config.classes)}, what a set of share 0 or 1 needs), got {list(config.set_size_range)}"
        )


def _compare(
    loop: dict[str, dict[str, np.ndarray]], config: DigitsPriorConfig, *, minority: str, seed: int
) -> tuple[PairedComparisons, PairedComparisons]:
    """The declared endpoint and the exploratory cells, every arm against ``refit``; and the
    control, each ``ple`` arm against ``hyper_mle`` (the same H without the penalty), whose
    endpoint rows are marked ``control``: the declared metric, not the declared contrast."""
    generations = list(range(config.generations))
    compare = CompareConfig(baseline="refit", primary_metric=config.primary_metric, primary_group=config.primary_group,
                            primary_first=config.generations - 1)  # fmt: skip
    comparisons = paired_comparisons(loop, generations=generations, minority=minority, config=compare, seed=seed)
    hypernetworks = {arm: values for arm, values in loop.items() if arm != "refit"}
    controls = paired_comparisons(hypernetworks, generations=generations, minority=minority,
                                  config=dataclasses.replace(compare, baseline="hyper_mle"), seed=seed)  # fmt: skip
    for row in controls.primary.values():
        row["endpoint"] = "control"
    return comparisons, controls


def description(config: DigitsPriorConfig, *, arm: str, lam: float, seed: int) -> dict[str, Any]:
    """What a saved H was trained for: a saved one is reused only where every entry is the run's."""
    return {
        "study": "digits_prior",
        "arm": arm,
        "lam": float(lam),
        "seed": int(seed),
        "classes": list(config.classes),
        "prior": dataclasses.asdict(config.prior),
        "target": {"model": "VAE", "sample_shape": [1, 8, 8], "hidden": list(config.vae_hidden),
                   "latent_dim": config.latent_dim, "num_classes": 2},  # fmt: skip
        "hypernetwork": {"head": "dense", "hidden": config.hidden, "embedding_dim": config.embedding_dim,
                         "set_size_input": True, "labels": True},  # fmt: skip
        "training": {"steps": config.steps, "sets_per_step": config.sets_per_step, "lr": config.lr,
                     "set_size_range": list(config.set_size_range)},  # fmt: skip
    }


def load_or_train(
    config: DigitsPriorConfig, source: SharePriorSource, *, seed: int, root: int, directory: Path
) -> tuple[dict[str, HyperNetwork], dict[str, AmortisedTraining]]:
    """Every arm's H and its training record: loaded from ``directory`` where saved there for this
    very setting (:func:`description`), else trained over the prior and saved. Every saved one is
    checked before any training: one for another setting, or failing its checksum, is refused in
    one line (:func:`genfair.studies._amortised.load_estimator`)."""
    init_seed = int(child_seed(root, 0, "fit").generate_state(1)[0])  # the same initial H for every lam
    built = {arm: build_hypernetwork(config, init_seed=init_seed) for arm in config.arms}
    wanted = {arm: description(config, arm=arm, lam=lam, seed=seed) for arm, lam in config.arms.items()}
    loaded = {arm: load_estimator(_path(directory, arm), hnet, description=wanted[arm]) for arm, hnet in built.items()}
    trained = {
        arm: loaded[arm] or _train(config, source, arm, lam, built[arm], wanted[arm], root=root, directory=directory)
        for arm, lam in config.arms.items()
    }
    return built, trained


def _train(
    config: DigitsPriorConfig, source: SharePriorSource, arm: str, lam: float, hnet: HyperNetwork, wanted: dict, *,
    root: int, directory: Path,
) -> AmortisedTraining:
    """Train ``hnet`` over the prior (every arm on the same training sets: common random numbers)
    and save it with its description into ``directory``."""
    record = train_amortised(hnet, source, config, lam=lam, data_generator=torch_generator(root, 0, "real"),
                             ple_generator=torch_generator(root, 0, "sample"))  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    save_estimator(_path(directory, arm), hnet, record, description=wanted)
    log.info("digits_prior: trained %s (lam %g) in %.1f s: NLL %.2f, D %.2e", arm, lam, record.seconds, record.nll, record.discrepancy)
    return record


def _path(directory: Path, arm: str) -> Path:
    """Where ``arm``'s H is kept: ``ple_lam0.1`` -> ``ple_lam0p1.{json,safetensors}`` (no dot in the stem)."""
    return directory / arm.replace(".", "p")


def _metric_rows(loop: dict[str, dict[str, np.ndarray]]) -> list[dict]:
    """``metrics.csv`` rows: per arm, generation and ``metric/group``, the summary across chains
    and its 95 % t-interval (on the logit scale for metrics in [0, 1], the model's own share
    ``weight`` among them)."""
    rows = []
    for arm, values in loop.items():
        for key, table in values.items():
            metric, group = key.split("/", 1)
            for g, row in enumerate(table):
                summary = summarize_replicates(row)
                lo, hi = mean_interval(summary, bounded=in_unit_interval(metric, group, declared=("weight",)))
                rows.append({"arm": arm, "generation": g, "group": group, "metric": metric, **summary.as_dict(), "lo": lo, "hi": hi})
    return rows


def _chain_rows(loop: dict[str, dict[str, np.ndarray]]) -> list[dict]:
    """``chains.csv``: every chain's value per arm, generation and ``metric/group`` (NaN where
    undefined, e.g. the precision of a class with fewer than k + 1 generated images)."""
    return [
        {"arm": arm, "chain": r, "generation": g, "key": key, "value": float(table[g, r])}
        for arm, values in loop.items() for key, table in values.items()
        for g in range(table.shape[0]) for r in range(table.shape[1])
    ]  # fmt: skip

"""The fully synthetic loop of the digits prior study: ``theta_{g+1} = E(Y_g)``, ``Y_g ~ p(.; theta_g)``.

For an amortised arm E is the trained hypernetwork, applied as it is to each generation's data:
a generation costs one forward pass of H and the sampling, no training step. For ``refit`` E is
maximum likelihood on that generation's set. Each chain of each arm:

  1. generation 0's data: a real set of ``loop_size`` digits at ``loop_shares`` (exact counts);
  2. estimate ``theta_g = E(Y_g)`` from this generation's labelled set;
  3. measure ``theta_g`` (``DigitsMeasure.loop_values``: shares, precision, recall, coverage);
  4. draw ``Y_{g+1}``: ``loop_size`` labelled images from ``theta_g``, the labels from the
     model's own class shares (its weights), not from a label policy.

Random streams (``genfair.seeding``, keyed by generation, stream and chain r): every arm's chain
r uses the same streams (common random numbers), so arms are compared chain by chain.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import numpy as np
import torch

from genfair.seeding import torch_generator
from genfair.studies._digits_prior_config import DigitsPriorConfig
from genfair.studies._digits_prior_estimators import Estimator, draw_from
from genfair.studies._digits_prior_measure import DigitsMeasure
from genfair.studies._share_prior import SharePriorSource

__all__ = ["run_chain", "run_loop"]

log = logging.getLogger("genfair")


def run_chain(
    estimate: Estimator, source: SharePriorSource, measure: DigitsMeasure, config: DigitsPriorConfig, *, root: int, chain: int
) -> dict[str, np.ndarray]:
    """One chain: ``{"metric/group": (generations,)}``, with ``share_change/<minority>``, the
    generated minority share's change from generation 0."""
    minority_share = torch.tensor([float(config.loop_shares[1])])
    streams = lambda g, stream: torch_generator(root, g, stream, replicate=chain)  # noqa: E731
    # 1. Generation 0's data: real digits at the loop's shares.
    data = source.draw_sets(minority_share, config.loop_size, generator=streams(0, "real"), exact=True)
    rows: list[dict[str, float]] = []
    for g in range(config.generations):
        # 2. Estimate theta_g from this generation's data.
        model = estimate(data, streams(g, "fit"))
        # 3. Measure it.
        rows.append(measure.loop_values(model, streams(g, "measure"), target_shares=list(config.loop_shares)))
        # 4. Draw the next generation's data from it, labels from its own class shares.
        data = draw_from(model, config.loop_size, generator=streams(g, "sample"))
    values = {key: np.array([row.get(key, np.nan) for row in rows], dtype=np.float64) for key in rows[0]}
    minority = source.group_names[1]
    values[f"share_change/{minority}"] = values[f"share/{minority}"] - values[f"share/{minority}"][0]
    return values


def run_loop(
    estimators: Mapping[str, Estimator], source: SharePriorSource, measure: DigitsMeasure, config: DigitsPriorConfig, *, root: int
) -> dict[str, dict[str, np.ndarray]]:
    """Every arm's ``config.chains`` chains: ``{arm: {"metric/group": (generations, chains)}}``."""
    result = {}
    for arm, estimate in estimators.items():
        started = time.perf_counter()
        chains = [run_chain(estimate, source, measure, config, root=root, chain=r) for r in range(config.chains)]
        result[arm] = {key: np.stack([c[key] for c in chains], axis=1) for key in chains[0]}
        log.info("digits_prior loop %s: %d chains x %d generations in %.1f s", arm, config.chains, config.generations,
                 time.perf_counter() - started)  # fmt: skip
    return result

"""The digits prior study's assessment of its estimators, before any loop:

- **Assessment** (:func:`assess`): ``assessment_draws`` held-out draws from the share prior per
  set size (a share t, then a set of n digits at it); every arm estimates a VAE from each set and
  the evaluation classifier measures the share of its generated images it calls the minority
  (``share/<minority>``, confusion-corrected); the model's own class share
  (``weight/<minority>``, ``softmax(class_logits)``) is a second parameter. One row of
  ``assessment.csv`` per arm, parameter and set size (``genfair.studies._assessment``), the refit's
  estimates on the same sets as its ``r``.
- **Share response** (:func:`share_response`, the reviewers' test): ``response_sets`` sets of
  ``loop_size`` digits at each of ``response_shares`` exactly (0: only majority images, 1: only
  minority images); per arm and input share, the mean generated minority share over the sets.
  :func:`response_slope` is the least-squares slope of generated on input share over every set
  (1: the estimate follows its data; a constant estimator's is 0).

Random streams: draw i of size index j uses ``torch_generator(root, j, stream, replicate=i)`` for
its set (``real``), its fit (``fit``) and its measurement (``measure``), the same for every arm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from genfair.data import Batch
from genfair.seeding import torch_generator
from genfair.studies._assessment import assessment_row
from genfair.studies._digits_prior_config import DigitsPriorConfig
from genfair.studies._digits_prior_estimators import Estimator, minority_weight
from genfair.studies._digits_prior_measure import DigitsMeasure
from genfair.studies._share_prior import SharePriorSource

__all__ = ["RESPONSE_COLUMNS", "assess", "response_slope", "share_response"]

RESPONSE_COLUMNS = ("arm", "input_share", "generated_share", "se", "sets", "weight", "slope")


def assess(
    estimators: Mapping[str, Estimator], source: SharePriorSource, measure: DigitsMeasure, config: DigitsPriorConfig, *, root: int
) -> list[dict]:
    """The rows of ``assessment.csv`` (see the module docstring); ``estimators`` must hold ``refit``."""
    minority = source.group_names[1]
    rows = []
    for j, n in enumerate(config.assessment_sizes):
        truth = source.shares(config.assessment_draws, generator=torch_generator(root, j, "real"))
        sets = [
            source.draw_sets(truth[i : i + 1], n, generator=torch_generator(root, j, "real", replicate=i + 1))
            for i in range(config.assessment_draws)
        ]
        values = {arm: _estimate_all(estimate, sets, measure, root=root, index=j) for arm, estimate in estimators.items()}
        for parameter, column in ((f"share/{minority}", 0), (f"weight/{minority}", 1)):
            refit = values["refit"][:, column]
            for arm, estimates in values.items():
                rows.append(assessment_row(estimates[:, column], truth.numpy(), refit, arm=arm, parameter=parameter, set_size=n))
    return rows


def share_response(
    estimators: Mapping[str, Estimator], source: SharePriorSource, measure: DigitsMeasure, config: DigitsPriorConfig, *, root: int
) -> tuple[list[dict], dict[str, float]]:
    """The rows of ``share_response.csv`` (one per arm and input share) and each arm's slope."""
    inputs = [float(s) for s in config.response_shares]
    sets = {
        j: [
            source.draw_sets(torch.tensor([share]), config.loop_size, exact=True,
                             generator=torch_generator(root, j, "real", replicate=i))
            for i in range(config.response_sets)
        ]
        for j, share in enumerate(inputs)
    }  # fmt: skip
    rows, slopes = [], {}
    for arm, estimate in estimators.items():
        per_share = {j: _estimate_all(estimate, sets[j], measure, root=root, index=j) for j in sets}
        x = np.repeat(inputs, config.response_sets)
        y = np.concatenate([per_share[j][:, 0] for j in sets])
        slopes[arm] = response_slope(x, y)
        for j, share in enumerate(inputs):
            generated = per_share[j][:, 0]
            se = float(generated.std(ddof=1) / np.sqrt(len(generated))) if len(generated) > 1 else float("nan")
            rows.append({
                "arm": arm, "input_share": share, "generated_share": float(generated.mean()), "se": se,
                "sets": len(generated), "weight": float(per_share[j][:, 1].mean()), "slope": slopes[arm],
            })  # fmt: skip
    return rows, slopes


def response_slope(input_shares: Sequence[float] | np.ndarray, generated: Sequence[float] | np.ndarray) -> float:
    """The least-squares slope of ``generated`` on ``input_shares`` (``(N,)`` each):
    ``cov(x, y) / var(x)``, population moments; NaN when the inputs do not vary."""
    x, y = np.asarray(input_shares, dtype=np.float64), np.asarray(generated, dtype=np.float64)
    spread = np.mean((x - x.mean()) ** 2)
    return float(np.mean((x - x.mean()) * (y - y.mean())) / spread) if spread > 0 else float("nan")


def _estimate_all(estimate: Estimator, sets: Sequence[Batch], measure: DigitsMeasure, *, root: int, index: int) -> np.ndarray:
    """``(len(sets), 2)``: per set, the generated minority share and the model's own share."""
    out = []
    for i, data in enumerate(sets):
        model = estimate(data, torch_generator(root, index, "fit", replicate=i + 1))
        out.append((measure.share(model, torch_generator(root, index, "measure", replicate=i + 1)), minority_weight(model)))
    return np.array(out, dtype=np.float64)

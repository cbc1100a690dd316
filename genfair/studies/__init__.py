"""Studies that are not a self-consuming loop of an analytic model, run by ``genfair study=NAME``.

Each study is a config dataclass and a function
``run(config, *, seed, run_dir, record) -> summary`` that writes its results (``summary.json``,
tables, figures) into ``run_dir``; ``record`` is the composed config, stored in the summary.
The CLI type-checks the ``<name>:`` node of the config against the dataclass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "STUDIES",
    "DownstreamArm",
    "DownstreamMindiffConfig",
    "GmmPleConfig",
    "Study",
    "VarianceBiasConfig",
    "run_downstream_mindiff",
    "run_gmm_ple",
    "run_variance_bias",
]


@dataclass(frozen=True)
class Study:
    config: type
    run: Callable[..., dict[str, Any]]


STUDIES: dict[str, Study] = {}

# The GMM study (experiment=gmm_ple): PLE, hypernetwork MLE and EM on a 1-D Gaussian mixture.
from genfair.studies._gmm_ple import GmmPleConfig, run_gmm_ple  # noqa: E402

STUDIES["gmm_ple"] = Study(GmmPleConfig, run_gmm_ple)

# The variance-bias study (experiment=variance_bias): the bias of a hypernetwork's variance
# estimate under hypernetwork MLE, fixed-lam PLE penalties and the enforced constraint.
from genfair.studies._variance_bias import VarianceBiasConfig, run_variance_bias  # noqa: E402

STUDIES["variance_bias"] = Study(VarianceBiasConfig, run_variance_bias)

# The downstream MinDiff study (experiment=downstream_mindiff): the MinDiff case study on digits,
# an FPR gap of a rare negative digit, baseline against the classifier-side remedies. A study of
# a classifier rather than of the loop, it lives with the fairness code.
from genfair.fairness import DownstreamArm, DownstreamMindiffConfig, run_downstream_mindiff  # noqa: E402

STUDIES["downstream_mindiff"] = Study(DownstreamMindiffConfig, run_downstream_mindiff)

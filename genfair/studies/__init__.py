"""Studies that are not the self-consuming loop of ``genfair.experiment``, run by
``genfair study=NAME`` (or the experiment of the same name, ``genfair experiment=NAME``).

Each study is a config dataclass, a subclass of :class:`StudyConfig`, and a function
``run(config, *, seed, run_dir) -> StudyResult`` that writes its tables and figures into
``run_dir`` and returns its numbers; :func:`run_study` runs it and writes ``summary.json``, the
same keys for every study (:data:`SUMMARY_KEYS`). ``STUDIES`` maps each study's name to its
:class:`Study` (config class and ``run``); the ``genfair`` command offers every one as an option
of its ``study`` config group. The MinDiff case study, a study of a downstream classifier rather
than of the loop, lives in ``genfair.fairness`` and is registered here as ``downstream_mindiff``.

Example:
    >>> from genfair.studies import GmmPleConfig, run_study
    >>> config = GmmPleConfig(sample_sizes=[50], loop_size=50, steps=20, test_sets=10,
    ...                       ablation_lams=[], generations=2, chains=4, kl_samples=1000)
    >>> run_study(config, seed=0, run_dir=tmp_path)["results"]["loop"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from genfair.studies._gmm_config import GmmPleConfig
from genfair.studies._gmm_ple import run_gmm_ple
from genfair.studies._runner import SUMMARY_KEYS, Study, StudyConfig, StudyResult, run_study
from genfair.studies._variance_bias import VarianceBiasArm, VarianceBiasConfig, run_variance_bias

__all__ = [
    "STUDIES",
    "SUMMARY_KEYS",
    "GmmPleConfig",
    "Study",
    "StudyConfig",
    "StudyResult",
    "VarianceBiasArm",
    "VarianceBiasConfig",
    "run_gmm_ple",
    "run_study",
    "run_variance_bias",
]

STUDIES: dict[str, Study]  # built on first use, see __getattr__


def __getattr__(name: str) -> Any:
    """``STUDIES``, built when first asked for: the MinDiff case study's config (in
    ``genfair.fairness``) subclasses :class:`StudyConfig` from this package, so importing it
    here at import time would make the two packages import each other."""
    if name != "STUDIES":
        raise AttributeError(f"module 'genfair.studies' has no attribute {name!r}")
    from genfair.fairness import DownstreamMindiffConfig, run_downstream_mindiff

    studies = {
        # PLE, hypernetwork MLE and EM on a 1-D Gaussian mixture (experiment=gmm_ple).
        "gmm_ple": Study(GmmPleConfig, run_gmm_ple),
        # The bias of a hypernetwork's variance estimate under hypernetwork MLE, fixed-lam PLE
        # penalties and the enforced constraint (experiment=variance_bias).
        "variance_bias": Study(VarianceBiasConfig, run_variance_bias),
        # The MinDiff case study on digits: the FPR gap of a rare negative digit, baseline
        # against the classifier-side remedies (experiment=downstream_mindiff).
        "downstream_mindiff": Study(DownstreamMindiffConfig, run_downstream_mindiff),
    }
    globals()["STUDIES"] = studies
    return studies

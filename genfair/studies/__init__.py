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

from typing import TYPE_CHECKING

from genfair._lazy import lazy_exports

if TYPE_CHECKING:  # the public names, each imported on first use (genfair._lazy)
    from genfair.studies._gmm_config import GmmPleConfig
    from genfair.studies._gmm_ple import run_gmm_ple
    from genfair.studies._amortised import AmortisedTraining, load_estimator, save_estimator, train_over_prior
    from genfair.studies._assessment import ASSESSMENT_COLUMNS, assessment_row, write_assessment
    from genfair.studies._prior_config import GaussianPriorConfig, GmmPriorConfig, PriorStudyConfig
    from genfair.studies._prior_study import run_gaussian_prior, run_gmm_prior
    from genfair.studies._registry import STUDIES
    from genfair.studies._runner import SUMMARY_KEYS, Study, StudyConfig, StudyResult, run_study
    from genfair.studies._variance_bias import run_variance_bias
    from genfair.studies._variance_bias_config import VarianceBiasArm, VarianceBiasConfig
    from genfair.studies._digits_prior import run_digits_prior
    from genfair.studies._digits_prior_config import DigitsPriorConfig, SharePrior

__all__ = [
    "ASSESSMENT_COLUMNS",
    "AmortisedTraining",
    "GaussianPriorConfig",
    "GmmPriorConfig",
    "PriorStudyConfig",
    "assessment_row",
    "load_estimator",
    "run_gaussian_prior",
    "run_gmm_prior",
    "save_estimator",
    "train_over_prior",
    "write_assessment",
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
    "DigitsPriorConfig",
    "SharePrior",
    "run_digits_prior",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)

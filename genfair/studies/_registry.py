"""``STUDIES``: every study the ``genfair`` command offers (``study=<name>``), by name.

Its own module, imported on first use (``genfair.studies.STUDIES``): the MinDiff case study's
config (in ``genfair.fairness``) subclasses :class:`StudyConfig` from ``genfair.studies``, so
building the registry while that package initialises would make the two import each other. The
studies' code is named by dotted paths and imported when a study runs.
"""

from __future__ import annotations

from genfair.fairness._mindiff_config import DownstreamMindiffConfig
from genfair.studies._digits_prior_config import DigitsPriorConfig
from genfair.studies._gmm_config import GmmPleConfig
from genfair.studies._prior_config import GaussianPriorConfig, GmmPriorConfig
from genfair.studies._runner import Study
from genfair.studies._variance_bias_config import VarianceBiasConfig

__all__ = ["STUDIES"]

STUDIES: dict[str, Study] = {
    # PLE, hypernetwork MLE and EM on a 1-D Gaussian mixture (experiment=gmm_ple).
    "gmm_ple": Study(GmmPleConfig, "genfair.studies._gmm_ple.run_gmm_ple"),
    # Hypernetworks trained over a prior of distributions, assessed on held-out draws and run in
    # the loop as amortised estimators (experiment=gaussian_prior, experiment=gmm_prior).
    "gaussian_prior": Study(GaussianPriorConfig, "genfair.studies._prior_study.run_gaussian_prior"),
    "gmm_prior": Study(GmmPriorConfig, "genfair.studies._prior_study.run_gmm_prior"),
    # The same on the digits: H over a prior of class shares around the conditional VAE, its share
    # response and the amortised loop against the refit (experiment=digits_prior).
    "digits_prior": Study(DigitsPriorConfig, "genfair.studies._digits_prior.run_digits_prior"),
    # The bias of a hypernetwork's variance estimate under hypernetwork MLE, fixed-lam PLE
    # penalties and the enforced constraint (experiment=variance_bias).
    "variance_bias": Study(VarianceBiasConfig, "genfair.studies._variance_bias.run_variance_bias"),
    # The MinDiff case study on digits: the FPR gap of a rare negative digit, baseline against
    # the classifier-side remedies (experiment=downstream_mindiff).
    "downstream_mindiff": Study(DownstreamMindiffConfig, "genfair.fairness._mindiff_case_study.run_downstream_mindiff"),
}

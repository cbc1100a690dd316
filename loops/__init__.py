"""Self-consuming loops: fit, measure, sample, retrain, over many generations and chains.

Import name: ``genfair.loops``. The code lives in the repository's top-level folder ``loops/``
(the design card's layout) and installs inside genfair; the bare name ``loops`` is not
importable. Unlike ``genfair.hypernets`` it is part of genfair and uses its shared
infrastructure: ``genfair.data`` (batches, stratified counts), ``genfair.errors``,
``genfair.checkpoint``, ``genfair.seeding``, ``genfair.devices``, ``genfair.targets`` (the
user-code targets of ``model=custom`` and ``data=custom``, and of every loop kind's rule) and the
protocols of ``genfair.models``; it reads the YAML files of ``genfair.configs.loop`` (the
registered loop kinds, ``genfair.loops._registry``). ``genfair.errors`` and ``genfair.models`` load ``genfair.hypernets`` (its error class and ``ReparameterizedSampler``),
which imports only torch. It never imports the estimators, experiments, metrics, studies or the
CLI (``tests/test_packaging.py`` checks).

Example:
    >>> from genfair.data import GaussianData
    >>> from genfair.models import ClassGaussianModel
    >>> from genfair.loops import LoopConfig, simulate
    >>> config = LoopConfig(kind="fully_synthetic", generations=5, n_real=10, n_synthetic=10, replicates=2000)
    >>> result = simulate(data=GaussianData(), model=ClassGaussianModel(replicates=2000), config=config,
    ...                   seed=0, measure=lambda model, train, generator: {"var/all": model.covs[:, 0, 0, 0]})
    >>> result.values("var/all").mean(axis=1).round(2)  # E = 0.9 ** (g + 1)
    array([0.9 , 0.81, 0.73, 0.66, 0.59])
"""

from typing import TYPE_CHECKING

from genfair._lazy import lazy_exports

if TYPE_CHECKING:  # the public names, each imported on first use (genfair._lazy)
    from genfair.loops._config import CURATION_RULES, LABEL_POLICIES, LOOP_KINDS, CurationConfig, LoopConfig
    from genfair.loops._curation import (
        ClassifierVerifier,
        Curated,
        Verdict,
        Verifier,
        check_curation,
        curate,
        gaussian_verifier,
    )
    from genfair.loops._records import (
        FinishedGeneration,
        Fit,
        FitCheckpoint,
        FitContext,
        FitOutput,
        GenerationRecord,
        GenerationStore,
        LoopResult,
        Measure,
        Measurement,
    )
    from genfair.loops._kinds import Accumulate, Augment, Fresh, FullySynthetic
    from genfair.loops._registry import read_kinds, registered_kinds
    from genfair.loops._simulate import check_finite_parameters, fit_closed_form, loop_generations, simulate
    from genfair.loops._store import RunStore
    from genfair.loops._theory import LoopKind
    from genfair.loops._training_set import (
        TrainingSetRule,
        build_rule,
        check_label_policy,
        check_training_set,
        draw_labels,
        policy_labels,
        training_rule,
        training_set,
        training_set_size,
    )

__all__ = [
    "Accumulate",
    "Augment",
    "Fresh",
    "FullySynthetic",
    "TrainingSetRule",
    "build_rule",
    "check_training_set",
    "read_kinds",
    "registered_kinds",
    "training_rule",
    "CURATION_RULES",
    "LABEL_POLICIES",
    "LOOP_KINDS",
    "ClassifierVerifier",
    "Curated",
    "CurationConfig",
    "FinishedGeneration",
    "Fit",
    "FitCheckpoint",
    "FitContext",
    "FitOutput",
    "GenerationRecord",
    "GenerationStore",
    "LoopConfig",
    "LoopKind",
    "LoopResult",
    "Measure",
    "Measurement",
    "RunStore",
    "Verdict",
    "Verifier",
    "check_curation",
    "check_finite_parameters",
    "check_label_policy",
    "curate",
    "draw_labels",
    "fit_closed_form",
    "gaussian_verifier",
    "loop_generations",
    "policy_labels",
    "simulate",
    "training_set",
    "training_set_size",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)

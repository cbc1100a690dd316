"""The structured configs behind the ``genfair`` command, registered in Hydra's ConfigStore.

The schemas are the library's own dataclasses (``LoopConfig``, ``GaussianData``, ...); the YAML
files in ``configs/`` only set values on them, so every key is type-checked when composed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from genfair.comparisons import CompareConfig
from genfair.data import ClassMixtureData, DigitsData, GaussianData, ImageFileData
from genfair.estimators import EstimatorConfig
from genfair._evaluation_config import EvaluationConfig
from genfair.factors import ArmFactorsConfig
from genfair.models import registered_model_configs
from genfair.remedies import RemedyConfig
from genfair.loops import LoopConfig
from genfair.studies import STUDIES, StudyConfig

__all__ = ["GenfairConfig", "register_configs"]


@dataclass
class GenfairConfig:
    """The root config.

    Attributes:
        data, model, loop, estimator: the config groups (see ``configs/<group>/``).
        evaluation: how deep models' generations are measured (``genfair.evaluation``).
        remedy: the fairness remedy applied to every generation's training (``genfair.remedies``).
        device: where models and hypernetworks compute: ``auto`` (CUDA when present, else the
            CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        seed: root seed; every generation's randomness derives from it (``genfair.seeding``).
        threads: torch intra-op threads; 1 is fastest for analytic models and right for
            parallel sweep workers.
        compare: how the arms are compared replicate by replicate (``genfair.comparisons``):
            the baseline arm, the primary endpoint declared before the run, permutations, level.
        workers: processes that run a deep experiment's chains (every arm's replicates), one
            torch thread each; ``null`` (default): every core this process may run on; 1: one
            after another in the command's own process. It does not change the results.
        arms: ``{name: overrides}``, the overrides a list of ``key=value`` strings
            (``{mle: [model.estimator=mle]}``) or a mapping of dotted keys to values
            (``{lam05: {loop.sampling_bias: 0.5}}``, the command line's form); every arm runs the
            same loop with the same seed and its overrides applied. Empty: one arm, ``main``.
            Command-line forms: docs/arms.md.
        arm_factors: how the arms decompose into factors (``genfair.factors``): each factor's
            levels, the pattern an arm's name spells them with (``"{loop}-{estimator}"``) and
            the facet (the figures' columns); every arm must sit in exactly one cell, checked
            before the run. Empty: the arms are not factored.
        study: ``null`` (the default): the command runs the self-consuming loop above.
            ``study=<name>`` runs that study instead, one of the ``study`` group's options
            (``configs/study/``: ``variance_bias``, ``gmm_ple``, ``downstream_mindiff``, the
            studies of ``genfair.studies.STUDIES``); ``experiment=<name>`` picks the same one.
            Its keys are ``study.<key>``, the fields of its config dataclass
            (``genfair study=variance_bias study.steps=500``); the loop's keys are then unused.
            ``~study`` drops the study that an experiment picked.
    """

    data: Any = MISSING
    model: Any = MISSING
    loop: LoopConfig = MISSING
    estimator: Any = MISSING
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    remedy: RemedyConfig = field(default_factory=RemedyConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    device: str = "auto"
    seed: int = 0
    threads: int = 1
    workers: int | None = None
    arms: dict[str, Any] = field(default_factory=dict)
    arm_factors: ArmFactorsConfig = field(default_factory=ArmFactorsConfig)
    study: StudyConfig | None = None


@dataclass
class _GenfairSchema(GenfairConfig):
    """The root schema as stored: :class:`GenfairConfig` with a Hydra defaults list that makes
    ``study`` a config group whose default is no option (the loop), so that ``study=<name>`` picks
    one without a ``+``. ``_self_`` comes first: the schema's ``study: null`` must not override
    the option chosen."""

    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"study": None}])


def register_configs() -> None:
    """Store the schemas that the YAML files in ``configs/`` extend (``defaults: [<name>]``)."""
    store = ConfigStore.instance()
    store.store(name="genfair_schema", node=_GenfairSchema)
    store.store(group="data", name="gaussian_schema", node=GaussianData)
    store.store(group="data", name="class_mixture_schema", node=ClassMixtureData)
    store.store(group="data", name="digits_schema", node=DigitsData)
    store.store(group="data", name="image_files_schema", node=ImageFileData)
    for name, config_class in registered_model_configs().items():  # configs/model/<name>.yaml extends <name>_schema
        store.store(group="model", name=f"{name}_schema", node=config_class)
    store.store(group="loop", name="loop_schema", node=LoopConfig)
    store.store(group="estimator", name="estimator_schema", node=EstimatorConfig)
    store.store(group="remedy", name="remedy_schema", node=RemedyConfig)
    for name, study in STUDIES.items():  # configs/study/<name>.yaml extends <name>_schema
        store.store(group="study", name=f"{name}_schema", node=study.config)

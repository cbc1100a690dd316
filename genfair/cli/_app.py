"""``genfair``: compose the config with Hydra, check it, run the experiment.

Exit status: 0 when the run completed (also when degraded, see ``genfair.experiment``); 2 for a
bad config, data file or run directory (nothing was run; also a run directory that another run
holds, ``genfair.run_lock``: in a sweep that job is refused and the others run), or an output file that cannot be
written (a read-only folder, a full disk: the run stops there, every file written before is
intact and the same command resumes it once there is room); 3 when an arm's generation failed
(a NaN or infinite loss: the finished generations are kept, summary.json says ``failed``).
Every error is one line on stderr, ``genfair: error: ...``, naming the key, value or file.

The config is checked before the experiment's modules (models, metrics, figures) are imported, so
that a refused override answers without waiting for them.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
import sys
from pathlib import Path

from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genfair.checkpoint import check_writable_dir
from genfair.cli._arms import arm_changes
from genfair.cli._config import register_configs
from genfair.cli._group_options import check_group_options
from genfair.errors import USER_ERRORS, ConfigError, GenerationFailed, check_positive_int
from genfair.run_lock import LOCK_FILE, RunDirInUse, hold_run_dir, lock_holder

if TYPE_CHECKING:
    from genfair.experiment import Arm
    from genfair.studies import StudyConfig

__all__ = ["RunDirCheck", "arms_from_config", "run_app", "study_config"]

log = logging.getLogger("genfair")
# Errors of writing output (a read-only folder, a full disk or quota), reported as "cannot write".
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


_GROUPS = ("data", "model", "loop", "estimator", "evaluation", "remedy")


def arms_from_config(cfg: DictConfig) -> list[Arm]:
    """One :class:`Arm` per entry of ``cfg.arms`` (its overrides merged, every key type-checked).

    The experiment's own groups are checked too, before any arm: a bad value on the command line
    (``estimator.name=magic``) is refused even where every arm sets that key.
    """
    _config_groups(cfg, OmegaConf.create(), "")
    arms = cfg.get("arms") or {"main": []}
    built = []
    for name, overrides in arms.items():
        changes = arm_changes(str(name), overrides)
        try:
            merged = OmegaConf.merge(cfg, changes)
        except OmegaConfBaseException as error:
            raise ConfigError(f"arms.{name}: {_first_line(error)}") from None
        built.append((str(name), _config_groups(merged, changes, str(name))))
    from genfair.experiment import Arm  # after the checks: it imports the models, metrics and figures

    return [Arm(name, **groups) for name, groups in built]


def _config_groups(merged: DictConfig, changes: DictConfig, arm: str) -> dict[str, object]:
    """The config dataclass of every group of ``merged`` (an arm's ``changes`` applied)."""
    groups = {}
    for group in _GROUPS:
        try:
            groups[group] = OmegaConf.to_object(merged[group])
            if group == "model" and isinstance(groups[group], dict):  # model=custom: a plain node
                from genfair.models import CustomModelConfig

                groups[group] = CustomModelConfig.from_node(groups[group])
                continue  # its keys are the target's arguments, checked when it is built
            if group == "estimator" and isinstance(groups[group], dict):  # estimator=custom: a plain node
                from genfair.estimators import CustomEstimatorConfig

                groups[group] = CustomEstimatorConfig.from_node(groups[group])
                continue  # its keys are the target's arguments, checked when it is built
            if group == "data" and isinstance(groups[group], dict):  # data=custom: a plain node
                from genfair.data import CustomData

                groups[group] = CustomData.from_node(groups[group])
                continue  # its keys are the target's arguments, checked before the arm runs
        except USER_ERRORS as error:
            # Name the arm only when its own overrides touch the group: a bad value that every
            # arm shares is not the first arm's fault.
            touched = group in changes
            raise ConfigError(f"{group}.{error}" + (f" (in arm {arm!r})" if touched else "")) from None
        except OmegaConfBaseException as error:
            raise ConfigError(f"{group}: {_first_line(error)}") from None
        _reject_unknown_keys(group, merged[group], groups[group])
    return groups


def study_config(cfg: DictConfig) -> StudyConfig | None:
    """The config dataclass of the study that ``cfg.study`` configures (its subclass of
    ``genfair.studies.StudyConfig``), or ``None`` without a study (the loop); a bad value or an
    unknown key is refused naming ``study.<key>``."""
    if cfg.study is None:
        return None
    try:
        built = OmegaConf.to_object(cfg.study)
    except USER_ERRORS as error:
        raise ConfigError(f"study.{error}") from None
    except OmegaConfBaseException as error:
        raise ConfigError(f"study: {_first_line(error)}") from None
    _reject_unknown_keys("study", cfg.study, built)
    return built


def _run(cfg: DictConfig) -> None:
    check_positive_int("seed", cfg.seed, minimum=0)
    threads = check_positive_int("threads", cfg.threads)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    config["overrides"] = list(HydraConfig.get().overrides.task)
    if cfg.study is None:
        arms = arms_from_config(cfg)
        # torch only now: a refused config answers without it (benchmarks/cli_startup.md)
        from genfair.devices import resolve_device
        from genfair.experiment import run_experiment

        _set_threads(threads)
        device = resolve_device(cfg.device)

        run_experiment(
            arms, seed=cfg.seed, run_dir=run_dir, config=config, device=device, workers=cfg.workers,
            compare=OmegaConf.to_object(cfg.compare), arm_factors=OmegaConf.to_object(cfg.arm_factors),
        )
        return
    study = study_config(cfg)  # checked before anything is written
    from genfair.studies import run_study

    _set_threads(threads)

    run_study(study, seed=cfg.seed, run_dir=run_dir, overrides=config["overrides"])


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


@dataclasses.dataclass(frozen=True)
class _Refused:
    """What the job returns when its config was refused (the one line already printed):
    :meth:`RunDirCheck.on_job_end` removes the run folder that this command made and exits with
    status 2."""


@hydra.main(version_base="1.3", config_path="pkg://genfair.configs", config_name="config")
def _hydra_main(cfg: DictConfig) -> _Refused | None:
    # The run directory's lock first (genfair.run_lock): a directory in use is refused before the
    # config is checked, and nothing is written into it. In a sweep, a job whose directory is in
    # use is refused in its line and the other jobs run.
    sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        with hold_run_dir(Path(HydraConfig.get().runtime.output_dir), key="hydra.sweep.dir" if sweep else "hydra.run.dir"):
            return _run_or_refuse(cfg)
    except USER_ERRORS as error:  # the lock was not taken: in use, or a file system that cannot lock
        if _debugging():
            raise
        print(f"genfair: error: {_one_line(error)}", file=sys.stderr)
        if not (isinstance(error, RunDirInUse) and sweep):
            sys.exit(2)
        return None


def _run_or_refuse(cfg: DictConfig) -> _Refused | None:
    """:func:`_run`, its errors answered in one line with the command's exit status; a refused
    config returns :class:`_Refused`, for the callback that knows which folder this command made."""
    try:
        _run(cfg)
    except (*USER_ERRORS, GenerationFailed, OSError) as error:
        if _debugging():
            raise
        print(f"genfair: error: {_one_line(error)}", file=sys.stderr)
        if isinstance(error, USER_ERRORS):
            return _Refused()
        sys.exit(3 if isinstance(error, GenerationFailed) else 2)
    return None


def _debugging() -> bool:
    return bool(os.environ.get("GENFAIR_DEBUG") or os.environ.get("HYDRA_FULL_ERROR"))


class RunDirCheck(Callback):
    """Refuse a run (or sweep) directory that cannot be written before Hydra makes it, in the
    command's one line with exit status 2 (``hydra.callbacks.run_dir_check`` in config.yaml):
    otherwise Hydra's own attempt to make it ends in a traceback. A run directory that another
    run holds (``genfair.run_lock``) is refused here too, before Hydra opens its job log there.

    It also remembers the outermost folder of ``hydra.run.dir`` that did not exist when the
    command started (Hydra makes it, and its job log, before the config can be checked): a
    refused config (the job returns :class:`_Refused`) removes it, so that a refused command leaves
    no folder and the corrected one starts afresh.
    """

    def __init__(self) -> None:
        self._made: Path | None = None

    def on_run_start(self, config: DictConfig, **kwargs: object) -> None:
        run_dir = Path(str(config.hydra.run.dir)).absolute()
        _check_writable(run_dir, "hydra.run.dir")
        holder = lock_holder(run_dir)
        if holder is not None:
            print(f"genfair: error: {RunDirInUse(run_dir, holder, key='hydra.run.dir')}", file=sys.stderr)
            sys.exit(2)
        missing = [folder for folder in (run_dir, *run_dir.parents) if not folder.exists()]
        self._made = missing[-1] if missing else None

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        _check_writable(Path(str(config.hydra.sweep.dir)), "hydra.sweep.dir")

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: object) -> None:
        if job_return.status != JobStatus.COMPLETED or not isinstance(job_return.return_value, _Refused):
            return
        if self._made is not None:  # a single run's folder; a sweep's jobs remove nothing
            _remove_refused(self._made, run_dir=Path(str(config.hydra.runtime.output_dir)))
        sys.exit(2)


def _remove_refused(top: Path, *, run_dir: Path) -> None:
    """Remove ``top`` (the outermost folder of ``run_dir`` that this refused command made) if it
    holds nothing but folders, Hydra's job log and this command's lock file. The run directory's
    lock is taken again for it: a run that took the directory meanwhile keeps it."""
    if not top.is_dir():
        return
    try:
        with hold_run_dir(run_dir):
            files = [path for path in top.rglob("*") if not path.is_dir()]
            if all(path.suffix == ".log" or path.name == LOCK_FILE for path in files):
                logging.shutdown()  # close Hydra's handler on the job log first
                shutil.rmtree(top, ignore_errors=True)
    except USER_ERRORS:  # held by another run now, or cannot be locked: leave it
        pass


def _check_writable(directory: Path, key: str) -> None:
    try:
        check_writable_dir(directory, key=key)
    except USER_ERRORS as error:
        print(f"genfair: error: {error}", file=sys.stderr)
        sys.exit(2)


def run_app() -> None:
    """The Hydra app behind the ``genfair`` command (``genfair.cli.main`` answers ``--help`` and
    ``--version`` itself and then calls this)."""
    try:
        check_group_options(sys.argv[1:])
    except ConfigError as error:
        print(f"genfair: error: {error}", file=sys.stderr)
        sys.exit(2)
    register_configs()
    _hydra_main()


def _reject_unknown_keys(group: str, node: DictConfig, built: object) -> None:
    """``+group.key=value`` can add a key that the schema lacks, and ``to_object`` would drop it.
    A key of one of the group's nested configs is named (``estimator.discrepancy``: did you mean
    ``estimator.ple.discrepancy``?)."""
    allowed = [f.name for f in dataclasses.fields(built)]
    unknown = [key for key in node.keys() if key not in allowed]
    if unknown:
        nested = [
            f"{group}.{name}.{unknown[0]}" for name in allowed
            if dataclasses.is_dataclass(value := getattr(built, name))
            and unknown[0] in {f.name for f in dataclasses.fields(value)}
        ]
        hint = f" (did you mean {nested[0]}?)" if nested else ""
        raise ConfigError(f"{group}.{unknown[0]} is not a key of {type(built).__name__}{hint}; allowed: {allowed}")


def _one_line(error: Exception) -> str:
    """The message of ``error`` on one line; an ``OSError`` names its file and what went wrong
    (``cannot write /run/summary.json: No space left on device``)."""
    if isinstance(error, OSError) and error.filename is not None:
        verb = "write" if error.errno in _WRITE_ERRNOS else "use"
        message = f"cannot {verb} {error.filename}: {error.strerror or error}"
    else:
        message = str(error)
    return " ".join(message.split())


def _first_line(error: Exception) -> str:
    """OmegaConf's message without its multi-line context, but with the key it concerns."""
    line = str(error).strip().splitlines()[0]
    key = getattr(error, "full_key", None)
    return f"{key}: {line}" if key and key not in line else line

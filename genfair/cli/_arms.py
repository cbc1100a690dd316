"""The ``arms`` of the ``genfair`` command: how each arm's overrides are written, on the command
line and in the experiment files (docs/arms.md).

An arm is ``name: overrides``, the overrides either a list of ``key=value`` strings (the
experiment files' ``mle: [estimator.name=mle]``) or a mapping ``{key: value}`` (the command
line's ``+arms.lam05={loop.sampling_bias:0.5}``: Hydra's grammar has no ``=`` inside an unquoted
value). ``arms={...}`` on the command line replaces the whole set; Hydra alone would merge it into
the experiment's arms, so :func:`command_line` passes it on as ``~arms '+arms={...}'``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from genfair.errors import ConfigError

__all__ = ["arm_changes", "command_line"]

_ARM_KEY = re.compile(r"^\+{0,2}arms(\.|=)")
_HINT = "write +arms.NAME={key:value,...} or '+arms.NAME=[\"key=value\",...]' (docs/arms.md)"


def command_line(arguments: Sequence[str]) -> list[str]:
    """``arguments`` of the ``genfair`` command as Hydra should get them: ``arms={...}`` becomes
    ``~arms`` and ``+arms={...}`` (the experiment's arms replaced, not merged with), and an arm
    written ``[key=value]``, which Hydra cannot parse, is refused with the forms it can."""
    passed = []
    for argument in arguments:
        if _ARM_KEY.match(argument):
            _check_parses(argument)
        if argument.startswith("arms={"):
            passed += ["~arms", "+" + argument]
        else:
            passed.append(argument)
    return passed


def _check_parses(argument: str) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        OverridesParser.create().parse_override(argument)
    except HydraException:
        key, _, value = argument.partition("=")
        if "=" in value and value.lstrip().startswith("[") and not any(q in value for q in "'\""):
            raise ConfigError(f"{key}={value}: an arm's key=value overrides need quotes inside [...]; {_HINT}") from None
        # any other syntax error: Hydra's own message says where


def arm_changes(name: str, overrides: object) -> DictConfig:
    """The config that arm ``name``'s ``overrides`` (a list of ``key=value`` strings or a mapping
    of dotted keys to values) merge into the experiment's config."""
    changes = OmegaConf.create()
    if overrides is None:
        return changes
    if isinstance(overrides, (DictConfig, dict)):
        for key, value in overrides.items():
            OmegaConf.update(changes, str(key), value, merge=True)
        return changes
    if isinstance(overrides, (ListConfig, list, tuple)):
        items = list(overrides)
        bad = next((item for item in items if not isinstance(item, str) or "=" not in item), None)
        if bad is None:
            return OmegaConf.from_dotlist(items)
        shown = OmegaConf.to_container(bad) if OmegaConf.is_config(bad) else bad
        raise ConfigError(f"arms.{name}: {shown!r} is not a 'key=value' override; {_HINT}")
    raise ConfigError(f"arms.{name} must be a list of 'key=value' overrides or a mapping {{key: value}}, got {overrides!r}")

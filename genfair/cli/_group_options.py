"""An unknown option of a config group on the command line (``model=vea``, ``experiment=gmm_prio``),
refused in genfair's one line before Hydra composes the config: Hydra's own answer spans a screen,
exits 1 and lists the schemas that the ConfigStore registers beside the YAML options
(``vae_schema``), which no user picks.

The options are the YAML files of ``configs/<group>/`` (:func:`genfair.cli._help.config_groups`).
Each option of a sweep's plain list (``-m model=vae,ddpm``) is checked; sweep functions,
interpolations and globs (``model=choice(...)``, ``model=${...}``) and commands that add config
folders of their own (``--config-dir``, ``hydra.searchpath=...``) are left to Hydra.
"""

from __future__ import annotations

import difflib

from genfair.errors import ConfigError

__all__ = ["check_group_options"]

# Flags and keys that let Hydra find options beyond configs/: such a command is left to Hydra.
_OTHER_CONFIGS = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn", "hydra.searchpath")
_HYDRA_SYNTAX = set("()[]{}$*'\"")  # sweep functions, interpolations, globs, quoting
_NOUNS = {"data": "data source"}
_NOTES = {"study": " (no study: the self-consuming loop; ~study drops one)"}


def check_group_options(arguments: list[str]) -> None:
    """Raise :class:`~genfair.errors.ConfigError` for the first ``group=option`` (also ``+group=``,
    ``++group=``) of ``arguments`` whose option ``configs/<group>/`` lacks, naming the group, the
    value, the options and the closest one:
    ``model=vea: not a model; choose class_mixture, custom, ddpm, gaussian or vae (did you mean vae?)``.
    """
    if any(argument.split("=", 1)[0].lstrip("+") in _OTHER_CONFIGS for argument in arguments):
        return
    from genfair.cli._help import config_groups

    groups = config_groups()
    for argument in arguments:
        if argument.startswith(("-", "~")):
            continue
        key, assigned, values = argument.partition("=")
        group = key.lstrip("+")
        if not assigned or group not in groups or _HYDRA_SYNTAX & set(values):
            continue
        for value in values.split(","):  # a sweep's plain list (-m model=vae,ddpm): each option
            if value not in groups[group]:
                raise ConfigError(unknown_option(group, value, groups[group]))


def unknown_option(group: str, value: str, options: list[str]) -> str:
    """The one line for ``group=value`` where ``value`` is not among ``options``."""
    noun = _NOUNS.get(group, group)
    article = "an" if noun[0] in "aeiou" else "a"
    listed = options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"
    closest = difflib.get_close_matches(value, options, n=1)
    hint = f" (did you mean {closest[0]}?)" if closest else ""
    return f"{group}={value}: not {article} {noun}; choose {listed}{hint}{_NOTES.get(group, '')}"

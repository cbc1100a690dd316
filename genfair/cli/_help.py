"""``genfair --help``: the template ``hydra.help.template`` of ``configs/config.yaml`` with the
config groups' user-facing options, printed without composing the config.

Hydra's own ``--help`` composes the whole config (every schema: torch and the models load, seconds)
and lists the schemas that :func:`genfair.cli.register_configs` stores beside the YAML options
(``data: ..., digits_schema, ...``); this reads the YAML files only.
"""

from __future__ import annotations

import textwrap
from importlib import resources

import yaml

__all__ = ["app_help", "config_groups"]


def app_help() -> str:
    """The text of ``genfair --help``: the template with ``$APP_CONFIG_GROUPS`` filled in."""
    root = yaml.safe_load(resources.files("genfair.configs").joinpath("config.yaml").read_text())
    template = root["hydra"]["help"]["template"]
    defaults = {}
    for entry in root["defaults"]:
        if isinstance(entry, dict):
            defaults.update(entry)
    groups = config_groups()
    width = max(map(len, groups))
    lines = []
    for group, options in groups.items():
        listed = ", ".join(f"{option}*" if option == defaults.get(group) else option for option in options)
        lines.append(textwrap.fill(listed, 100, initial_indent=f"  {group:<{width}}  ", subsequent_indent=" " * (width + 4)))
    return template.replace("$APP_CONFIG_GROUPS", "\n".join(lines))


def config_groups() -> dict[str, list[str]]:
    """``{group: [option, ...]}`` of the YAML files in ``configs/<group>/``, sorted by name."""
    folder = resources.files("genfair.configs")
    groups = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            options = sorted(f.name[: -len(".yaml")] for f in entry.iterdir() if f.name.endswith(".yaml"))
            if options:
                groups[entry.name] = options
    return groups

"""Write docs/reference/config.md from the structured configs and their docstrings.

    python docs/gen_config_reference.py          # rewrite docs/reference/config.md
    python docs/gen_config_reference.py --check  # exit 1 if the committed page is stale

The page lists every key the ``genfair`` command accepts: the root config
(``genfair.cli._config.GenfairConfig``), each schema registered in Hydra's ConfigStore by
``genfair.cli._config.register_configs`` (the ``data``, ``model``, ``loop``, ``estimator`` and
``remedy`` groups), the ``evaluation`` node, the studies of ``genfair.studies.STUDIES``, and every
dataclass nested in them. For each key: its type and default (the dataclass's), and the
description its class's docstring gives it (an ``Args:`` or ``Attributes:`` entry; names
documented together, ``steps, lr: ...``, share one description; a subclass finds the entries of
its bases). The option files in ``configs/<group>/`` and the experiments in
``configs/experiment/`` are listed with the values they set.

``tests/test_docs.py`` renders the page in memory and fails when the committed one differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import typing
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "reference" / "config.md"
CONFIGS = REPO / "configs"

# The groups of the root config's defaults list, in the order the page shows them.
GROUPS = ("data", "model", "loop", "estimator", "remedy")
_ENTRY = re.compile(r"^(?P<indent>\s+)(?P<names>[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*):\s+(?P<text>.*)$")
_SECTION = re.compile(r"^(Args|Arguments|Attributes|Example|Examples|Returns|Raises|Note|Notes):\s*$")
_ROLE = re.compile(r":(?:class|func|data|meth|attr|mod|obj):`~?([^`]+)`")


# ---------------------------------------------------------------- docstrings


def _markdown(text: str) -> str:
    """reST-flavoured docstring text as Markdown: roles and double backticks become code."""
    text = _ROLE.sub(r"`\1`", text)
    return text.replace("``", "`")


def _own_docstring(cls: type) -> list[str]:
    return inspect.cleandoc(cls.__doc__ or "").splitlines()


def field_docs(cls: type) -> dict[str, str]:
    """``{field: description}`` from the ``name: text`` entries of the class's docstring and its
    dataclass bases' (the class's own entry wins). Only names that are fields count."""
    names = {f.name for f in dataclasses.fields(cls)}
    docs: dict[str, str] = {}
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        lines = _own_docstring(klass)
        i = 0
        while i < len(lines):
            match = _ENTRY.match(lines[i])
            entry = [n.strip() for n in match["names"].split(",")] if match else []
            if not entry or not set(entry) <= names:
                i += 1
                continue
            indent = len(match["indent"])
            text = [match["text"].strip()]
            i += 1
            while i < len(lines) and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) > indent:
                text.append(lines[i].strip())
                i += 1
            for name in entry:
                docs[name] = " ".join(text)
    return docs


def class_description(cls: type) -> str:
    """The docstring's prose as Markdown: everything outside its sections (``Args:``,
    ``Attributes:``, ``Example:``...) except entries that describe fields, which the table shows.
    Indented bullet lists become Markdown lists."""
    names = {f.name for f in dataclasses.fields(cls)}
    out: list[str] = []
    in_section = False
    skipping_entry = -1  # indentation of the field entry being skipped, or -1
    for line in _own_docstring(cls):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if _SECTION.match(line):
            in_section = True
            continue
        if not stripped:
            skipping_entry = -1
            if out and out[-1]:
                out.append("")
            continue
        if in_section and indent == 0:
            in_section = False
        if in_section or (skipping_entry >= 0 and indent > skipping_entry):
            continue
        skipping_entry = -1
        match = _ENTRY.match(line)
        if match and {n.strip() for n in match["names"].split(",")} <= names:
            skipping_entry = indent
            if out and not out[-1]:
                out.pop()
            if out and out[-1].endswith(":"):
                out[-1] = out[-1][:-1] + "."
            continue
        if stripped.startswith(("- ", "* ")):
            if out and out[-1] and not out[-1].startswith(("- ", "  ")):
                out.append("")
            out.append("- " + stripped[2:])
        elif indent and out and out[-1].startswith(("- ", "  ")):
            out.append("  " + stripped)
        else:
            out.append(stripped)
    return _markdown("\n".join(out).strip())


# ---------------------------------------------------------------- values


def _format(value: Any, *, limit: int = 8) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        items = [_format(v) for v in value]
        if len(items) > limit:
            return f"[{', '.join(items[:3])}, …, {items[-1]}] ({len(items)} values)"
        return f"[{', '.join(items)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_format(v)}" for k, v in value.items()) + "}"
    if dataclasses.is_dataclass(value):
        return "{" + ", ".join(f"{f.name}: {_format(getattr(value, f.name))}" for f in dataclasses.fields(value)) + "}"
    if isinstance(value, str) and value == "":
        return '""'
    return str(value)


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _cell(text: str) -> str:
    """Text for one table cell: one line, ``|`` escaped outside code spans (Python-Markdown's
    tables leave a pipe inside backticks alone, and would show an escaped one as ``\\|``)."""
    parts = text.replace("\n", " ").split("`")
    return "`".join(part if i % 2 else part.replace("|", "\\|") for i, part in enumerate(parts))


def _default_value(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _nested(cls: type) -> dict[str, tuple[str, type]]:
    """``{field: (kind, dataclass)}`` for fields typed as a dataclass (``node``) or as a
    ``dict[str, dataclass]`` (``mapping``)."""
    hints = typing.get_type_hints(cls)
    found: dict[str, tuple[str, type]] = {}
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            found[f.name] = ("node", hint)
        elif typing.get_origin(hint) is dict:
            args = typing.get_args(hint)
            if len(args) == 2 and isinstance(args[1], type) and dataclasses.is_dataclass(args[1]):
                found[f.name] = ("mapping", args[1])
    return found


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _public_name(cls: type) -> str:
    """The shortest public import path of a class (``genfair.data.DigitsData``, not
    ``genfair.data._images.DigitsData``): a public package above its module, else a public module
    that re-exports it (``genfair.evaluation.EvaluationConfig``, whose dataclass lives in the
    torch-free ``genfair._evaluation_config``)."""
    import importlib

    parts = cls.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module = ".".join(parts[:end])
        if any(p.startswith("_") for p in parts[:end]):
            break
        if getattr(importlib.import_module(module), cls.__qualname__, None) is cls:
            return f"{module}.{cls.__qualname__}"
    for module in _REEXPORTING:
        if getattr(importlib.import_module(module), cls.__qualname__, None) is cls:
            return f"{module}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


# Public modules that re-export config dataclasses kept in private torch-free modules.
_REEXPORTING = ("genfair.evaluation",)


def _anchor(path: str) -> str:
    return path.replace(".", "-").replace("<", "").replace(">", "").replace("=", "-")


# ---------------------------------------------------------------- page


class _Page:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.documented: dict[type, str] = {}  # class -> the key path of its section

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def schema(self, cls: type, path: str, title: str, *, anchor: str | None = None, level: int = 3,
               note: str = "", recurse: bool = True) -> None:
        """One class: its heading, prose, the table of its fields, then its nested nodes."""
        anchor = anchor or _anchor(path)
        self.documented[cls] = anchor
        self.add(f"{'#' * level} {title} {{#{anchor}}}", "")
        self.add(f"Schema: `{_public_name(cls)}`.", "")
        description = class_description(cls)
        if description:
            self.add(description, "")
        if note:
            self.add(note, "")
        docs = field_docs(cls)
        nested = _nested(cls)
        first: dict[type, str] = {}  # where each node class will be documented: the first field that holds it
        for name, (kind, inner) in nested.items():
            if kind == "node":
                first.setdefault(inner, _anchor(_join(path, name)))
        self.add("| key | type | default | description |", "|---|---|---|---|")
        for f in dataclasses.fields(cls):
            default = _default_value(f)
            if default is dataclasses.MISSING or default == "???":  # omegaconf.MISSING
                shown = "required"
            elif f.name in nested and nested[f.name][0] == "node":
                cls_f = nested[f.name][1]
                shown = self._node_default(default, cls_f, self.documented.get(cls_f, first[cls_f]))
            elif f.name in nested:
                shown = _code(_format(sorted(default))) if isinstance(default, dict) else _code(_format(default))
                shown += f" ([entries](#{_anchor(_join(path, f.name))}))"
            else:
                shown = _code(_format(default))
            description = _markdown(docs.get(f.name, "*(not documented in the docstring)*"))
            key = f"`{_join(path, f.name)}`"
            self.add(f"| {key} | {_cell(_code(str(f.type)))} | {_cell(shown)} | {_cell(description)} |")
        self.add("")
        for name, (kind, inner) in nested.items() if recurse else ():
            child = _join(path, name)
            if kind == "mapping":
                self.schema(inner, f"{child}.<name>", f"`{child}.<name>`: `{inner.__qualname__}`",
                            anchor=_anchor(child), level=level + 1,
                            note=f"Each entry of the mapping `{child}` (`<name>: {{...}}`) has these keys.")
            elif inner not in self.documented:
                self.schema(inner, child, f"`{child}`: `{inner.__qualname__}`", level=level + 1)

    def _node_default(self, value: Any, cls: type, anchor: str) -> str:
        base = cls() if all(_default_value(f) is not dataclasses.MISSING for f in dataclasses.fields(cls)) else None
        link = f"#{anchor}"
        changed = []
        if base is not None:
            for f in dataclasses.fields(cls):
                if getattr(value, f.name) != getattr(base, f.name):
                    changed.append(f"{f.name}={_format(getattr(value, f.name))}")
        text = f"[`{cls.__qualname__}`]({link}) defaults"
        return text + (f" except `{', '.join(changed)}`" if changed else "")


def _yaml_files(group: str) -> list[Path]:
    return sorted((CONFIGS / group).glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _header_comment(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].strip()
        if text != "@package _global_":
            lines.append(text)
    return " ".join(lines)


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    flat: list[tuple[str, Any]] = []
    for key, value in values.items():
        if key == "defaults":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key != "arms":
            flat.extend(_flatten(value, f"{name}."))
        else:
            flat.append((name, value))
    return flat


def _root_defaults() -> dict[str, str]:
    chosen: dict[str, str] = {}
    for entry in _read_yaml(CONFIGS / "config.yaml").get("defaults", []):
        if isinstance(entry, dict):
            chosen.update({k: str(v) for k, v in entry.items()})
    return chosen


def _schemas() -> dict[str, dict[type, list[str]]]:
    """``{group: {dataclass: its schema names}}`` as ``register_configs`` stores them (one class may
    be stored under several names: ``model=gaussian`` and ``model=class_mixture`` extend
    ``gaussian_schema`` and ``class_mixture_schema``, both ``AnalyticModelConfig``)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from genfair.cli._config import register_configs

    register_configs()
    repo = ConfigStore.instance().repo
    found: dict[str, dict[type, list[str]]] = {}
    for group in GROUPS:
        for filename, node in sorted(repo.get(group, {}).items()):
            found.setdefault(group, {}).setdefault(OmegaConf.get_type(node.node), []).append(filename.removesuffix(".yaml"))
    return found


def _option_schema(path: Path) -> str | None:
    for entry in _read_yaml(path).get("defaults", []):
        if isinstance(entry, str) and entry.endswith("_schema"):
            return entry
    return None


def render() -> str:
    """The page, as ``docs/reference/config.md`` should hold it."""
    from genfair.cli._config import GenfairConfig
    from genfair.studies import STUDIES

    schemas = _schemas()
    chosen = _root_defaults()
    page = _Page()
    page.add(
        "# Configuration reference",
        "",
        "<!-- Generated by docs/gen_config_reference.py from the config dataclasses' docstrings: do not edit;",
        "     run `python docs/gen_config_reference.py` (tests/test_docs.py fails when this page is stale). -->",
        "",
        "Every key that `genfair` accepts on the command line (`genfair key=value`, `genfair group=option`), "
        "with its type, its default and the description from its dataclass's docstring. The YAML files in "
        "`configs/` only set values on these typed schemas (Hydra structured configs), so a misspelled key "
        "or a value of the wrong type is refused before any work. The defaults in the tables are the "
        "dataclasses' own; an option file or an experiment may set others (listed under each group). The "
        "same dataclasses configure the library from Python, without Hydra.",
        "",
        "## Config groups",
        "",
        "| group | options (default in bold) | schema |",
        "|---|---|---|",
    )
    for group in (*GROUPS, "experiment"):
        options = [p.stem for p in _yaml_files(group)]
        shown = ", ".join(f"**`{o}`**" if chosen.get(group) == o else f"`{o}`" for o in options)
        if group == "experiment":
            schema = "`# @package _global_` files that set the groups and keys below"
        else:
            schema = ", ".join(f"[`{c.__qualname__}`](#{_anchor(group + '=' + names[0].removesuffix('_schema'))})"
                               if len(schemas[group]) > 1 else f"[`{c.__qualname__}`](#{_anchor(group)})"
                               for c, names in schemas[group].items())
        page.add(f"| `{group}` | {shown} | {schema} |")
    page.add("")

    page.add("## Top-level keys", "")
    page.schema(GenfairConfig, "", "The root config", anchor="root", level=3,
                note="The nodes `loop`, `estimator`, `evaluation` and `remedy` are detailed below; `data` and "
                     "`model` take the schema of the option chosen; the studies' nodes are read only with "
                     "`study=<name>`.", recurse=False)

    for group in GROUPS:
        page.add(f"## `{group}`", "")
        files = _yaml_files(group)
        if len(schemas[group]) > 1:
            for cls, names in schemas[group].items():
                users = [p for p in files if _option_schema(p) in names]
                options = ", ".join(f"`{group}={p.stem}`" for p in users) or f"`{group}` ({', '.join(names)})"
                page.schema(cls, group, f"{options}: `{cls.__qualname__}`",
                            anchor=_anchor(f"{group}={names[0].removesuffix('_schema')}"), note=_options_note(users))
        else:
            (cls,) = schemas[group]
            page.schema(cls, group, f"`{group}`: `{cls.__qualname__}`", note=_options_note(files))

    from genfair.evaluation import EvaluationConfig

    page.add("## `evaluation`", "")
    page.schema(EvaluationConfig, "evaluation", "`evaluation`: `EvaluationConfig`",
                note="Used by the deep models (images); the analytic models ignore it.")

    from genfair.comparisons import CompareConfig

    page.add("## `compare`", "")
    page.schema(CompareConfig, "compare", "`compare`: `CompareConfig`",
                note="Paired comparisons of the arms (`comparisons.csv`); see genfair.comparisons.")

    from genfair.factors import ArmFactorsConfig

    page.add("## `arm_factors`", "")
    page.schema(ArmFactorsConfig, "arm_factors", "`arm_factors`: `ArmFactorsConfig`",
                note="How the arms decompose into factors, for the figures' small multiples; see docs/arms.md.")

    page.add("## `experiment`", "",
             "Each experiment is a `# @package _global_` file in `configs/experiment/`: it picks the groups "
             "and sets keys of the root config. `genfair experiment=<name>`; the default is "
             f"`{chosen.get('experiment', 'digits_vae')}`.", "",
             "| experiment | what it runs | groups | arms |", "|---|---|---|---|")
    for path in _yaml_files("experiment"):
        values = _read_yaml(path)
        groups = []
        for entry in values.get("defaults", []):
            if isinstance(entry, dict):
                groups += [f"{k.removeprefix('override /')}={v}" for k, v in entry.items()]
        if "study" in values:
            groups.append(f"study={values['study']}")
        arms = values.get("arms") or (values.get(values.get("study", ""), {}) or {}).get("arms") or {}
        page.add(f"| `{path.stem}` | {_cell(_header_comment(path))} | {_cell(', '.join(f'`{g}`' for g in groups))} "
                 f"| {_cell(', '.join(f'`{a}`' for a in arms))} |")
    page.add("")

    page.add("## Studies", "",
             "`study=<name>` runs a study instead of the loop (`genfair.studies.STUDIES`); its node of the "
             "same name configures it. Each study's experiment file lists every key, so each can be "
             "overridden (`genfair experiment=variance_bias variance_bias.steps=500`).", "")
    for name, study in STUDIES.items():
        page.schema(study.config, name, f"`{name}`: `{study.config.__qualname__}`")
    return "\n".join(page.lines).rstrip() + "\n"


def _options_note(files: list[Path]) -> str:
    if not files:
        return ""
    rows = ["| option file | what it is | sets |", "|---|---|---|"]
    for path in files:
        sets = ", ".join(f"`{k}={_format(v)}`" for k, v in _flatten(_read_yaml(path)))
        rows.append(f"| `configs/{path.parent.name}/{path.name}` | {_cell(_header_comment(path))} | {_cell(sets)} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed page is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE.relative_to(REPO)} is stale: run python docs/gen_config_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

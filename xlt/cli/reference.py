"""The docs' references, generated from the code so that they cannot go stale: the configuration
(every group and its options, every field with its type, default and help) and the command line.
docs/hooks.py writes them into the site's reference pages as `mkdocs build` renders them."""
from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Dict, Iterator, List, Tuple

from xlt.cli.precheck import group_options
from xlt.config import CONF_DIR, XltConfig, plugins


def _help(cls: type) -> Dict[str, str]:
    """field -> its comment in the dataclass's source: trailing, or the lines just above it."""
    found, above = {}, []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        match = re.match(r"(\w+): [^=#]+(?:=[^#]*)?(?:#\s*(.*))?$", stripped)
        if match:
            found[match[1]] = " ".join(filter(None, [*above, match[2] or ""]))
        above = []
    return found


def _type(annotation) -> str:
    text = str(annotation).replace("typing.", "")
    return re.sub(r"<class '(\w+)'>", r"\1", text)


def fields(cls: type, prefix: str = "", instance=None) -> Iterator[Tuple[str, str, object, str]]:
    """(dotted name, type, default, help) of a dataclass's fields, nested dataclasses unfolded with
    the values the outer one gives them (a technique's own training budget)."""
    instance = cls() if instance is None else instance
    hints, helps = typing.get_type_hints(cls), {}
    for klass in reversed(cls.__mro__):  # a subclass's comments win over its base's
        if dataclasses.is_dataclass(klass):
            helps.update(_help(klass))
    for f in dataclasses.fields(cls):
        default = getattr(instance, f.name)
        if dataclasses.is_dataclass(default):
            yield from fields(type(default), f"{prefix}{f.name}.", default)
            continue
        inner = next((t for t in typing.get_args(hints[f.name]) if dataclasses.is_dataclass(t)), None)
        yield prefix + f.name, _type(hints[f.name]), default, helps.get(f.name, "")
        if inner is not None and default is None:  # e.g. model.tiny: set by an option
            yield from fields(inner, f"{prefix}{f.name}.")


def _cell(value) -> str:
    if value is dataclasses.MISSING or value == "???":
        return "(required)"
    return f"`{value}`".replace("|", "\\|")


def _table(rows: List[Tuple[str, str, object, str]]) -> List[str]:
    out = ["| field | type | default | what it is |", "|---|---|---|---|"]
    out += [f"| `{name}` | {kind.replace('|', '/')} | {_cell(default)} | {text.replace('|', '/')} |"
            for name, kind, default, text in rows]
    return out


def config_reference() -> str:
    """Markdown: the groups and their options, then every field of a job's config by concern, and each
    technique's and protocol's own options."""
    lines = ["## Config groups", "", "| group | options (`conf/<group>/<option>.yaml`) |", "|---|---|"]
    groups = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra")  # Hydra's own: its docs
    lines += [f"| `{g}` | {', '.join(f'`{o}`' for o in group_options(g))} |" for g in groups]
    lines += ["", "## Fields", "", "Every field of a job, from the typed schema (`xlt/config/schema.py`); "
              "`python run.py --cfg job` prints a composed one. A plugin group's node (`technique`, `protocol`) "
              "holds the chosen option's own fields, below.", ""]
    root = XltConfig()
    for f in dataclasses.fields(XltConfig):
        default = getattr(root, f.name)
        if dataclasses.is_dataclass(default):
            lines += [f"### `{f.name}`", "", *_table(list(fields(type(default), f"{f.name}."))), ""]
        elif f.name not in plugins.GROUPS:
            lines += [f"### `{f.name}`", "", *_table([(f.name, _type(f.type), default, "")]), ""]
    for group, options in plugins.registered_options().items():
        lines += [f"### `{group}`: each option's own fields", ""]
        for name, cls in options.items():
            lines += [f"`{group}={name}` (`{cls.__module__}.{cls.__name__}`)", "",
                      *_table(list(fields(cls, f"{group}."))), ""]
    return "\n".join(lines)


def listed_fields(reference: str) -> List[str]:
    """The field names a reference lists (its table rows' first cells)."""
    return re.findall(r"^\| `([\w.]+)` \|", reference, flags=re.M)


def cli_reference() -> str:
    """Markdown: `xlt --help` and each subcommand's, as argparse prints them."""
    import argparse

    from xlt.cli.main import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = ["## `xlt`", "", "```", parser.format_help().strip(), "```", ""]
    for name, sub in commands.choices.items():
        out += [f"## `xlt {name}`", "", "```", sub.format_help().strip(), "```", ""]
    out += ["## `python run.py`", "", "Hydra's command line: `python run.py [-m] [group=option ...] "
            "[field=value ...]`; `python run.py --help` lists the groups and the composed config, `--cfg job` "
            "prints a job's config.", ""]
    return "\n".join(out)

"""Where each configuration value came from (a flag, an environment variable, a file line), for error messages.

Worked out from the raw inputs, independently of how they are merged, so it stays right however the layers
(file, ``DATAKIT_*`` environment, flags) are combined.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")

Origins = dict[tuple[str, ...], str]


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip().strip("\"'") for p in re.split(r"\.(?=(?:[^\"']*[\"'][^\"']*[\"'])*[^\"']*$)", dotted))


def file_lines(text: str) -> dict[tuple[str, ...], int]:
    """Dotted key → line number of each ``key = value`` and ``[table]`` line of a TOML text."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _parts(header.group(1))
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault(table + _parts(key.group(1)), number)
    return lines


def origins(path: Path | None, text: str, environ: dict[str, str], overrides: dict[str, Any],
            flags: dict[str, str] | None) -> Origins:
    """Dotted key → where its value came from; later layers (environment, then flags) win, as in the merge."""
    out: Origins = {}
    if path is not None:
        for key, number in file_lines(text).items():
            out[key] = f"{path}:{number}"
    for name in environ:
        if name.startswith("DATAKIT_") and "__" in name:
            out[tuple(name[len("DATAKIT_"):].lower().split("__"))] = f"environment variable {name}"
    for dotted in overrides:
        flag = (flags or {}).get(dotted)
        out[tuple(dotted.split("."))] = f"flag {flag}" if flag else "a command-line option"
    return out


def origin_of(loc: tuple[str, ...], where: Origins) -> str | None:
    """The origin of the longest prefix of ``loc`` that has one."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in where:
            return where[loc[:n]]
    return None


def _model_at(model: type[BaseModel], loc: tuple[str, ...]) -> type[BaseModel] | None:
    """The pydantic model a (section) path leads to, if it leads to one."""
    for part in loc:
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def describe_errors(err: ValidationError, where: Origins, root: type[BaseModel]) -> str:
    """One line per problem: the key, what is wrong or allowed, the value given and where it came from."""
    lines = []
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        key = ".".join(loc) or "(top)"
        source = origin_of(loc, where)
        if e["type"] == "extra_forbidden":
            section = _model_at(root, loc[:-1])
            allowed = ", ".join(section.model_fields) if section is not None else ""
            close = difflib.get_close_matches(loc[-1], list(section.model_fields), n=1) if section else []
            text = f"{key}: unknown key" + (f" (did you mean {close[0]}?)" if close else "")
            if allowed:
                text += f"; [{'.'.join(loc[:-1]) or 'top level'}] allows: {allowed}"
        else:
            given = e.get("input")
            shown = f"; got {given!r}" if not isinstance(given, dict) else ""
            text = f"{key}: {e['msg']}{shown}"
        lines.append(text + (f" (from {source})" if source else ""))
    return "\n  " + "\n  ".join(lines) if len(lines) > 1 else lines[0]

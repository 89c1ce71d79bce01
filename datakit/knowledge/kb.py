"""The knowledge base: finding entries and the perception tree, loaded from YAML and checked.

Layout of a knowledge folder (the shipped one is ``knowledge/`` in a checkout, ``datakit/_data/knowledge``
in a wheel; a user folder has the same shape)::

    tree.yaml              regions in reading order: name, what to inspect, normal phrases, finding ids
    findings/<id>.yaml     one entry per finding (schemas/knowledge_entry.v1.json)

Folders are applied in order: shipped first, then each user folder. An entry whose id is already known
replaces the earlier one (the user wins; ``Entry.overrides`` names the file it replaced). A user ``tree.yaml``
adds phrases and finding ids to existing regions, or adds regions; a user entry whose region does not list it
is added to that region's findings.

Every entry is validated against the JSON Schema on load, then cross-checked (region exists, label is one of
the 14, tree ids exist, ids unique per folder). Problems are collected and raised together as one
:class:`~datakit.errors.KnowledgeError` that names the file, the entry and the field of each.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datakit.config import DatakitConfig, KnowledgeConfig
from datakit.errors import KnowledgeError
from datakit.knowledge.entries import ENTRY_SCHEMA, TREE_SCHEMA, Entry, KnowledgeBase, Region, _close, _close_hint
from datakit.memo import Memo
from datakit.resources import data_path
from datakit.vocabulary import LABELS
from datakit.yamldoc import Problem, problems_error, read_yaml, schema_problems


def knowledge_error(problems: list[Problem]) -> KnowledgeError:
    """One error for all problems found; the first one's path, entry and field are attributes."""
    return problems_error(problems, KnowledgeError, f"fix the entry; the format is schemas/{ENTRY_SCHEMA}")


# ------------------------------------------------------------------------------------------------------------
# reading and validating


def user_home_dir() -> Path:
    """The default user knowledge folder: ``$DATAKIT_HOME/knowledge`` (``~/.datakit/knowledge``)."""
    return Path(os.environ.get("DATAKIT_HOME") or "~/.datakit").expanduser() / "knowledge"


# hints for the mistakes people make most in an entry
_HINTS = {
    ("enum", "chexpert"): f"use one of: {', '.join(LABELS)}, or null",
    ("pattern", "radlex"): "a RadLex id looks like RID34539; use null when unknown",
    ("pattern", "id"): "ids are snake_case: lowercase letters, digits and single underscores",
}


def _read_yaml(path: Path, problems: list[Problem]) -> Any:
    return read_yaml(path, problems, entry_id=path.stem)


def _schema_problems(doc: Any, path: Path, schema: str) -> list[Problem]:
    """JSON-Schema errors of one entry document, naming the entry and the field."""
    entry_id = doc.get("id") if isinstance(doc, dict) and isinstance(doc.get("id"), str) else path.stem
    found = schema_problems(doc, path, schema, entry_id=entry_id, hints=_HINTS)
    for p in found:
        if p.kind == "enum" and p.field == "chexpert":
            p.message = f"{doc.get('chexpert')!r} is not a CheXpert label column"
    return found


def _entry_from_doc(doc: dict, path: Path, origin: str) -> Entry:
    if origin != "shipped" and (doc.get("provenance") or {}).get("oifm_id"):
        origin = "imported"
    return Entry(
        id=doc["id"],
        name=doc["name"],
        region=doc["region"],
        chexpert=doc["chexpert"],
        synonyms=list(doc["synonyms"]),
        definition=doc["definition"].strip(),
        signs=list(doc["signs"]),
        differential=list(doc["differential"]),
        pitfalls=list(doc["pitfalls"]),
        radlex=doc["radlex"],
        laterality=doc["laterality"],
        severity_terms=list(doc.get("severity_terms") or []),
        sources=[dict(s) for s in doc["sources"]],
        license=doc["license"],
        origin=origin,
        path=str(path),
        index_codes=[dict(c) for c in doc.get("index_codes") or []],
        provenance=doc.get("provenance"),
        differential_ids=list(doc.get("differential_ids") or []),
    )


def _read_entries(folder: Path, origin: str, problems: list[Problem]) -> list[Entry]:
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    entries: list[Entry] = []
    first_file: dict[str, str] = {}
    for path in files:
        before = len(problems)
        doc = _read_yaml(path, problems)
        if len(problems) > before:  # a syntax error, already reported
            continue
        if doc is None:
            problems.append(Problem(str(path), path.stem, None, "the file is empty (no entry in it)"))
            continue
        if not isinstance(doc, dict):
            problems.append(
                Problem(
                    str(path), path.stem, None, f"should hold one entry (a mapping), got {type(doc).__name__}"
                )
            )
            continue
        found = _schema_problems(doc, path, ENTRY_SCHEMA)
        if found:
            problems.extend(found)
            continue
        if doc["id"] in first_file:
            problems.append(
                Problem(
                    str(path),
                    doc["id"],
                    "id",
                    f"duplicate id: {first_file[doc['id']]} already defines it",
                    hint="ids must be unique within a folder; rename one of the entries",
                )
            )
            continue
        first_file[doc["id"]] = str(path)
        entries.append(_entry_from_doc(doc, path, origin))
    return entries


def _read_tree(path: Path, problems: list[Problem]) -> list[dict]:
    before = len(problems)
    doc = _read_yaml(path, problems)
    if len(problems) > before:
        return []
    found = _schema_problems(doc, path, TREE_SCHEMA)
    for p in found:
        p.entry_id = None
        parts = (p.field or "").split(".")
        if len(parts) >= 2 and parts[0] == "regions" and isinstance(doc, dict):
            try:
                p.message = f"region {doc['regions'][int(parts[1])].get('id')!r}: {p.message}"
            except (LookupError, ValueError, AttributeError, TypeError):
                pass
    problems.extend(found)
    return [] if found else list(doc["regions"])


def _merge_tree(
    regions: dict[str, dict], additions: list[dict], path: Path, problems: list[Problem], *, shipped: bool
) -> None:
    for reg in additions:
        rid = reg["id"]
        if rid in regions:
            cur = regions[rid]
            for key in ("name", "description"):
                if reg.get(key):
                    cur[key] = reg[key]
            for key in ("normal_phrases", "findings"):
                cur[key] = list(dict.fromkeys([*cur[key], *reg.get(key, [])]))
            continue
        needed = ("name", "description", "normal_phrases", "findings") if shipped else ("name", "description")
        missing = [k for k in needed if k not in reg or (k in ("name", "description") and not reg[k])]
        if missing:
            problems.append(
                Problem(
                    str(path),
                    None,
                    f"regions.{rid}.{missing[0]}",
                    f"new region {rid!r} needs {', '.join(missing)}",
                    hint="a user tree.yaml may extend a shipped region by id alone; "
                    "a new region needs a name and a description",
                )
            )
            continue
        regions[rid] = {
            "id": rid,
            "name": reg["name"],
            "description": reg["description"],
            "normal_phrases": list(reg.get("normal_phrases", [])),
            "findings": list(reg.get("findings", [])),
        }


def _folder_signature(folder: Path) -> tuple:
    items = []
    for sub in (folder, folder / "findings"):
        if sub.is_dir():
            for p in sorted(sub.iterdir()):
                if p.suffix in (".yaml", ".yml"):
                    st = p.stat()
                    items.append((str(p), st.st_mtime_ns, st.st_size))
    return (str(folder), tuple(items))


_CACHE: Memo[KnowledgeBase] = Memo(8)


def load_kb(paths: Sequence[str | Path] = (), *, shipped: bool = True) -> KnowledgeBase:
    """Load the shipped knowledge (unless ``shipped=False``) extended by user folders, later folders winning.

    Cached per (folders, file names, modification times and sizes): an edited file is read again.
    """
    folders: list[tuple[Path, str]] = [(Path(data_path("knowledge")), "shipped")] if shipped else []
    for p in paths:
        folder = Path(p).expanduser()
        if not folder.is_dir():
            raise KnowledgeError(
                f"knowledge folder {folder} does not exist",
                hint="check knowledge.paths in datakit.toml (or the --knowledge option)",
            )
        if not (folder / "findings").is_dir() and not (folder / "tree.yaml").is_file():
            raise KnowledgeError(
                f"{folder} has neither findings/ nor tree.yaml",
                hint="a knowledge folder holds findings/<id>.yaml entries and/or a tree.yaml",
            )
        folders.append((folder.resolve(), "user"))
    key = (shipped, tuple(_folder_signature(f) for f, _ in folders))
    return _CACHE.get(key, lambda: _load(folders))


def _load(folders: list[tuple[Path, str]]) -> KnowledgeBase:
    problems: list[Problem] = []
    entries: dict[str, Entry] = {}
    regions: dict[str, dict] = {}
    user_entries: list[Entry] = []
    for folder, origin in folders:
        tree_file = folder / "tree.yaml"
        if tree_file.is_file():
            _merge_tree(
                regions, _read_tree(tree_file, problems), tree_file, problems, shipped=origin == "shipped"
            )
        elif origin == "shipped":
            problems.append(Problem(str(tree_file), None, None, "the shipped perception tree is missing"))
        for entry in _read_entries(folder / "findings", origin, problems):
            if entry.id in entries:
                entry = _replace(entry, overrides=entries[entry.id].path)
            entries[entry.id] = entry
            if origin != "shipped":
                user_entries.append(entry)
    _cross_check(entries, regions, user_entries, problems)
    if problems:
        raise knowledge_error(problems)
    built = {
        rid: Region(r["id"], r["name"], r["description"], r["normal_phrases"], r["findings"])
        for rid, r in regions.items()
    }
    return KnowledgeBase(entries, built, [str(f) for f, _ in folders])


def _replace(entry: Entry, **changes: Any) -> Entry:
    from dataclasses import replace

    return replace(entry, **changes)


def _cross_check(
    entries: dict[str, Entry], regions: dict[str, dict], user_entries: list[Entry], problems: list[Problem]
) -> None:
    region_hint = f"use one of: {', '.join(regions)}, or null"
    user_ids = {e.id for e in user_entries}
    for entry in entries.values():
        if entry.region is not None and entry.region not in regions:
            close = _close(entry.region, regions)
            problems.append(
                Problem(
                    entry.path,
                    entry.id,
                    "region",
                    f"unknown region {entry.region!r}",
                    hint=(f"did you mean {close[0]}? " if close else "") + region_hint,
                )
            )
        if entry.chexpert is not None and entry.chexpert not in LABELS:  # the schema's enum also says so
            problems.append(
                Problem(
                    entry.path,
                    entry.id,
                    "chexpert",
                    f"{entry.chexpert!r} is not a label",
                    hint=f"use one of: {', '.join(LABELS)}, or null",
                )
            )
    for rid, reg in regions.items():
        for fid in reg["findings"]:
            if fid not in entries:
                problems.append(
                    Problem(
                        f"tree.yaml (region {rid})",
                        None,
                        f"regions.{rid}.findings",
                        f"lists {fid!r}, which no entry defines",
                        hint=_close_hint(fid, entries),
                    )
                )
    for entry in entries.values():
        reg = regions.get(entry.region) if entry.region else None
        if reg is None or entry.id in reg["findings"]:
            continue
        if entry.id in user_ids:
            reg["findings"].append(entry.id)  # a user entry joins its region's findings by itself
        else:
            problems.append(
                Problem(
                    entry.path,
                    entry.id,
                    "region",
                    f"region {entry.region!r} of the tree does not list this entry",
                    hint=f"add {entry.id} to the findings of {entry.region} in tree.yaml",
                )
            )


def load_configured(config: Any = None) -> KnowledgeBase:
    """The knowledge base of a run: shipped + ``$DATAKIT_HOME/knowledge`` (if present) + ``knowledge.paths``.

    ``config`` is a :class:`~datakit.config.DatakitConfig` or its ``knowledge`` section (defaults when None).
    """
    if config is None:
        kcfg = KnowledgeConfig()
    elif isinstance(config, DatakitConfig):
        kcfg = config.knowledge
    else:
        kcfg = config
    paths: list[Path] = []
    home = user_home_dir()
    if kcfg.use_home and home.is_dir():
        paths.append(home)
    paths += [Path(p) for p in kcfg.paths]
    return load_kb(paths)

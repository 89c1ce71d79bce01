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

import difflib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from datakit.errors import DatakitError, KnowledgeError
from datakit.hashing import content_hash
from datakit.resources import data_path, schema_path
from datakit.tables import LABELS

ENTRY_SCHEMA = "knowledge_entry.v1.json"
TREE_SCHEMA = "perception_tree.v1.json"
ORIGINS = ("shipped", "user", "imported")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Entry:
    """One finding: what it is, what it looks like, what reports call it, where it is looked for."""

    id: str
    name: str
    region: str | None
    chexpert: str | None
    synonyms: list[str]
    definition: str
    signs: list[str]
    differential: list[str]
    pitfalls: list[str]
    radlex: str | None
    laterality: bool
    severity_terms: list[str]
    sources: list[dict]
    license: str
    origin: str  # "shipped" | "user" | "imported"
    path: str  # the file it came from
    index_codes: list[dict] = field(default_factory=list)
    provenance: dict | None = None
    overrides: str | None = None  # the file of the entry this one replaced, if any
    differential_ids: list[str] = field(default_factory=list)  # curated: entries that look like this one

    @cached_property
    def terms(self) -> list[str]:
        """Name and synonyms, lowercased and de-duplicated, in order."""
        seen: dict[str, None] = {}
        for text in (self.name, *self.synonyms):
            term = " ".join(text.lower().split())
            if term:
                seen.setdefault(term, None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain data (what its YAML holds, plus origin and path)."""
        return {
            k: v for k, v in asdict(self).items() if v is not None or k in ("region", "chexpert", "radlex")
        }


@dataclass(frozen=True)
class Region:
    """One region of the perception tree: what to inspect there, how normal reads, what can be found."""

    id: str
    name: str
    description: str
    normal_phrases: list[str]
    findings: list[str]


class UnknownKnowledgeId(DatakitError):
    """An entry, region or label id the knowledge base does not have."""


@dataclass
class Problem:
    """One thing wrong with one entry (or the tree), before it becomes part of a KnowledgeError."""

    path: str
    entry_id: str | None
    field: str | None
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}: entry {self.entry_id!r}" if self.entry_id else f"{self.path}"
        if self.field:
            where += f", field {self.field!r}"
        return f"{where}: {self.message}"


def knowledge_error(problems: list[Problem]) -> KnowledgeError:
    """One error for all problems found; the first one's path, entry and field are attributes."""
    first = problems[0]
    message = str(first)
    if len(problems) > 1:
        rest = "\n".join(f"  - {p}" for p in problems[1:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        message += f"\n{len(problems) - 1} more problem(s):\n{rest}{more}"
    err = KnowledgeError(message, hint=first.hint or f"fix the entry; the format is schemas/{ENTRY_SCHEMA}")
    err.problems = problems  # type: ignore[attr-defined]
    err.path, err.entry_id, err.field = first.path, first.entry_id, first.field  # type: ignore[attr-defined]
    return err


class KnowledgeBase:
    """Entries by id and regions in reading order. Treat it as read-only: loads are cached and shared."""

    def __init__(self, entries: dict[str, Entry], regions: dict[str, Region], folders: list[str]) -> None:
        self.entries = entries
        self.regions = regions
        self.folders = folders

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self.entries

    def get(self, entry_id: str) -> Entry:
        """The entry with this id; an error with the closest ids as hint if there is none."""
        try:
            return self.entries[entry_id]
        except KeyError:
            raise UnknownKnowledgeId(
                f"no knowledge entry {entry_id!r}", hint=_close_hint(entry_id, self.entries)
            ) from None

    def by_label(self, label_column: str) -> list[Entry]:
        """Entries counting towards a CheXpert label column: the label's own entry first, then by id."""
        if label_column not in LABELS:
            raise UnknownKnowledgeId(
                f"{label_column!r} is not a CheXpert label column", hint=_close_hint(label_column, LABELS)
            )
        found = [e for e in self.entries.values() if e.chexpert == label_column]
        return sorted(found, key=lambda e: (e.id != label_column, e.id))

    def by_region(self, region_id: str) -> list[Entry]:
        """Entries that can be seen in a region, in the tree's order."""
        if region_id not in self.regions:
            raise UnknownKnowledgeId(
                f"no perception-tree region {region_id!r}", hint=_close_hint(region_id, self.regions)
            )
        return [self.entries[i] for i in self.regions[region_id].findings]

    def regions_of(self, entry_id: str) -> list[str]:
        """The regions whose findings list this entry (its own region first)."""
        entry = self.get(entry_id)
        listed = [r.id for r in self.regions.values() if entry_id in r.findings]
        return sorted(listed, key=lambda r: r != entry.region)

    def close_ids(self, text: str, n: int = 5) -> list[str]:
        """Entry ids that look like ``text`` (for hints)."""
        return _close(text, self.entries, n)

    @cached_property
    def fingerprint(self) -> str:
        """Hash of every entry and region: changes when any knowledge changes."""
        # Paths are left out: the same knowledge in a checkout and in a wheel has the same fingerprint.
        entries = {
            k: {f: v for f, v in e.to_dict().items() if f not in ("path", "overrides")}
            for k, e in sorted(self.entries.items())
        }
        return content_hash({"entries": entries, "regions": [asdict(r) for r in self.regions.values()]})


def _close(text: str, known: Iterable[str], n: int = 5) -> list[str]:
    known = list(known)
    low = text.lower().replace("-", "_").replace(" ", "_")
    hits = difflib.get_close_matches(low, known, n=n, cutoff=0.6)
    hits += [k for k in known if low and (low in k or k in low) and k not in hits]
    return hits[:n]


def _close_hint(text: str, known: Iterable[str]) -> str:
    known = list(known)
    close = _close(text, known)
    if close:
        return f"did you mean: {', '.join(close)}?"
    return f"known ids include: {', '.join(sorted(known)[:12])}" + (" …" if len(known) > 12 else "")


# ------------------------------------------------------------------------------------------------------------
# reading and validating


def user_home_dir() -> Path:
    """The default user knowledge folder: ``$DATAKIT_HOME/knowledge`` (``~/.datakit/knowledge``)."""
    return Path(os.environ.get("DATAKIT_HOME") or "~/.datakit").expanduser() / "knowledge"


def _schema_validator(name: str):
    import jsonschema

    schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


_VALIDATORS: dict[str, Any] = {}


def _validator(name: str):
    if name not in _VALIDATORS:
        _VALIDATORS[name] = _schema_validator(name)
    return _VALIDATORS[name]


def _read_yaml(path: Path, problems: list[Problem]) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        problems.append(
            Problem(
                str(path),
                path.stem,
                None,
                f"YAML syntax error{where}: {what}",
                hint="fix the YAML syntax (indentation, quotes, a missing colon)",
            )
        )
    except UnicodeDecodeError as err:
        problems.append(Problem(str(path), path.stem, None, f"not UTF-8 text: {err}"))
    return None


_TYPE_WORDS = {
    "array": "a list",
    "string": "text",
    "boolean": "true or false",
    "object": "a mapping",
    "null": "null",
    "integer": "a whole number",
}


def _schema_problems(doc: Any, path: Path, schema: str) -> list[Problem]:
    """JSON-Schema errors of one document, as problems naming the entry and the field."""
    entry_id = doc.get("id") if isinstance(doc, dict) and isinstance(doc.get("id"), str) else path.stem
    out = []
    for err in sorted(_validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        loc = ".".join(str(p) for p in err.absolute_path)
        message, hint = err.message, f"see schemas/{schema}"
        if err.validator == "required":
            missing = [k for k in err.validator_value if k not in (err.instance or {})]
            loc = ".".join(filter(None, [loc, missing[0] if missing else ""]))
            message = "is missing (required)"
        elif err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            loc = ".".join(filter(None, [loc, extra[0] if extra else ""]))
            message = f"is not a known field (known: {', '.join(err.schema.get('properties', {}))})"
            hint = "remove it or fix its spelling"
        elif err.validator == "type":
            want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
            message = (
                f"should be {' or '.join(_TYPE_WORDS.get(w, w) for w in want)}, "
                f"got {type(err.instance).__name__} {err.instance!r}"
            )
        elif err.validator == "enum" and loc == "chexpert":
            message = f"{err.instance!r} is not a CheXpert label column"
            hint = f"use one of: {', '.join(LABELS)}, or null"
        elif err.validator == "pattern" and loc == "radlex":
            hint = "a RadLex id looks like RID34539; use null when unknown"
        elif err.validator == "pattern" and loc == "id":
            hint = "ids are snake_case: lowercase letters, digits and single underscores"
        out.append(Problem(str(path), entry_id, loc or None, message, hint))
    return out


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


_CACHE: dict[tuple, KnowledgeBase] = {}
_CACHE_SIZE = 8


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
    if key in _CACHE:
        return _CACHE[key]
    kb = _load(folders)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = kb
    return kb


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
    from datakit.config import DatakitConfig, KnowledgeConfig

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

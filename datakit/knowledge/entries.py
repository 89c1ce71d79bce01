"""The knowledge base as data: finding entries, the regions of the perception tree, and lookups over them.

Loading and checking the YAML is :mod:`datakit.knowledge.kb`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from datakit.errors import DatakitError
from datakit.hashing import content_hash
from datakit.vocabulary import LABELS

ENTRY_SCHEMA = "knowledge_entry.v1.json"
TREE_SCHEMA = "perception_tree.v1.json"
ORIGINS = ("shipped", "user", "imported")


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

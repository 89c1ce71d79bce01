"""IU-Xray MeSH terms → the 14 CheXpert labels, through a mapping table kept as data.

The table is ``data/mesh_to_chexpert.csv``, one row per rule: ``mesh_heading, qualifiers, label, value,
knowledge_id, note``. A MeSH term is ``Heading/qualifier/qualifier…`` (the Open-i ecgen-radiology XML), e.g.
``Cardiomegaly/borderline`` or ``Opacity/lung/base/left``. A rule applies to a term when the headings are
equal (case and spacing ignored) and each of the rule's qualifiers (``+``-joined, maybe none) is among the
term's. For each label the rule with the most qualifiers wins: ``Cardiac Shadow/enlarged/borderline`` is -1
through ``enlarged+borderline``, not 1 through ``enlarged``; between equally specific rules the earlier row
wins. A row whose value is ``null`` takes the label away from the terms it fits (``Opacity/ribs`` is no
Lung Opacity although ``Opacity`` is). A row without a label records a heading looked at on purpose that gets
no label (``note`` says why); ``knowledge_id`` names the entry of datakit's knowledge base the heading corresponds to.

What the labels mean, since MeSH lists only what is *present*:

- a label no term speaks of stays **null** ("not mentioned"); it is never folded into 0;
- ``normal`` is the coders' statement that the study is normal: No Finding = 1 and the other 13 = 0, because
  the coder judged each abnormality absent (those rows are in the table, not in code);
- several terms of one study combine as CheXpert's aggregation does (chexpert-labeler): 1 wins, then -1, then 0;
- No Finding is dropped to null when any other label but Support Devices ends 1 or -1 (CheXpert's rule);
- ``No Indexing`` (the report was not coded) maps to nothing, so such a study has every label null.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from datakit.tables import LABEL_BY_NAME, LABEL_COLUMNS

MAPPING_PATH = Path(__file__).with_name("data") / "mesh_to_chexpert.csv"
_COLUMNS = ["mesh_heading", "qualifiers", "label", "value", "knowledge_id", "note"]
_SPACES = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACES.sub(" ", text.strip()).casefold()


def split_term(term: str) -> tuple[str, frozenset[str]]:
    """``"Opacity/lung/base/left"`` → ``("opacity", {"lung", "base", "left"})``, normalised for matching."""
    head, *quals = term.split("/")
    return _norm(head), frozenset(_norm(q) for q in quals if q.strip())


@dataclass(frozen=True)
class MeshRule:
    """One row of the mapping table."""

    heading: str  # normalised
    qualifiers: frozenset[str]
    label: str | None  # a column of datakit.tables.Studies, or None for "looked at, no label"
    value: int | None
    knowledge_id: str | None
    note: str
    line: int


@dataclass
class MeshLabels:
    """The labels of one study and the terms that gave none."""

    values: dict[str, int | None]
    unmapped: list[str] = field(default_factory=list)

    @property
    def label_source(self) -> str | None:
        """``"mesh"`` when at least one label is set, else None (a study MeSH says nothing about)."""
        return "mesh" if any(v is not None for v in self.values.values()) else None


def combine(values: Iterable[int]) -> int | None:
    """CheXpert's aggregation of several mentions of one observation: 1 wins, then -1, then 0."""
    seen = set(values)
    for v in (1, -1, 0):
        if v in seen:
            return v
    return None


class MeshMap:
    """The mapping table, loaded and indexed by heading."""

    def __init__(self, rules: list[MeshRule]) -> None:
        self.rules = rules
        self.by_heading: dict[str, list[MeshRule]] = {}
        for rule in rules:
            self.by_heading.setdefault(rule.heading, []).append(rule)

    @classmethod
    def load(cls, path: Path | None = None) -> MeshMap:
        """Read a mapping table (the shipped one by default); a malformed row raises ``ValueError``."""
        return _load_default() if path is None else cls(_read_rules(path))

    def term_labels(self, term: str) -> dict[str, int]:
        """Label column → value for one term; empty when no rule gives it a label."""
        heading, quals = split_term(term)
        best: dict[str, MeshRule] = {}
        for rule in self.by_heading.get(heading, ()):
            if rule.label is None or not rule.qualifiers <= quals:
                continue
            held = best.get(rule.label)
            if held is None or len(rule.qualifiers) > len(held.qualifiers):
                best[rule.label] = rule
        return {label: rule.value for label, rule in best.items() if rule.value is not None}

    def labels(self, terms: Iterable[str]) -> MeshLabels:
        """The 14 labels of a study from its MeSH terms (null where no term speaks of a label)."""
        found: dict[str, list[int]] = {}
        unmapped: list[str] = []
        for term in terms:
            if not term.strip():
                continue
            got = self.term_labels(term)
            if not got:
                unmapped.append(term.strip())
            for label, value in got.items():
                found.setdefault(label, []).append(value)
        values = {col: combine(found.get(col, ())) for col in LABEL_COLUMNS}
        findings = [c for c in LABEL_COLUMNS if c not in ("no_finding", "support_devices")]
        if values["no_finding"] is not None and any(values[c] in (1, -1) for c in findings):
            values["no_finding"] = None
        return MeshLabels(values, unmapped)


def _read_rules(path: Path) -> list[MeshRule]:
    rules: list[MeshRule] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != _COLUMNS:
            raise ValueError(f"{path}: the header must be {','.join(_COLUMNS)}, not {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            label_name = (row["label"] or "").strip()
            value_text = (row["value"] or "").strip()
            if label_name and label_name not in LABEL_BY_NAME:
                raise ValueError(f"{path}:{line}: {label_name!r} is not one of the 14 CheXpert labels")
            if bool(label_name) != bool(value_text) or (value_text and value_text not in ("1", "0", "-1", "null")):
                raise ValueError(f"{path}:{line}: a label needs a value of 1, 0, -1 or null and a value a label")
            quals = frozenset(_norm(q) for q in (row["qualifiers"] or "").split("+") if q.strip())
            rules.append(
                MeshRule(
                    heading=_norm(row["mesh_heading"]),
                    qualifiers=quals,
                    label=LABEL_BY_NAME[label_name] if label_name else None,
                    # "null": a more specific term that takes the label away ("Opacity/ribs" is bone, not lung)
                    value=int(value_text) if value_text and value_text != "null" else None,
                    knowledge_id=(row["knowledge_id"] or "").strip() or None,
                    note=(row["note"] or "").strip(),
                    line=line,
                )
            )
    return rules


@lru_cache(maxsize=1)
def _load_default() -> MeshMap:
    return MeshMap(_read_rules(MAPPING_PATH))

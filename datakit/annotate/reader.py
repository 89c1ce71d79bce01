"""Read a report for knowledge-base findings: which entry, present / absent / uncertain, which side, what grade.

This is the labeler's engine (:mod:`datakit.retrieve.labeler_rules`: the same cues, scopes, anchors and
unmentions from ``knowledge/labeler/lexicon.yaml``) with every knowledge entry's terms as mentions of that entry,
instead of the 13 CheXpert label columns: "small left apical pneumothorax, no effusion" gives pneumothorax
present (left, small) and pleural_effusion absent. The offline teacher places these on the perception tree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from datakit.annotate.offline import Perceived
from datakit.annotate.offline_words import SEVERITY_WORDS, laterality_of, severity_of
from datakit.retrieve import labeler_rules as rules
from datakit.retrieve.labeler_lexicon import build_tables, default_lexicon_path, read_lexicon

_STATUS = {1: "present", -1: "uncertain", 0: "absent"}
_CLAUSE_END = re.compile(r"[.;:!?]|,\s|\b(?:and|but|with|while|whereas)\b")


class FindingReader:
    """Entry-level mentions with status, side and grade; built once per process."""

    def __init__(self, kb: Any, lexicon_path: str | Path | None = None) -> None:
        path = Path(lexicon_path) if lexicon_path is not None else default_lexicon_path()
        self.kb = kb
        self.tables = build_tables(kb, read_lexicon(path), path, keyed_by="entries")

    def read(self, text: str) -> list[Perceived]:
        """Every finding mentioned in ``text``, in text order (an entry may appear more than once)."""
        if not text:
            return []
        norm = rules.normalize(text)
        out: list[Perceived] = []
        for f in rules.find(self.tables, norm):
            found = {e: st for e, st in rules.statuses(f, self.tables.anchors).items() if e in self.kb}
            # "rib fractures" names rib_fracture and the generic fracture: keep the specific entry only
            specific_labels = {self.kb.get(e).chexpert for e in found if self.kb.get(e).chexpert != e}
            for entry_id, status in found.items():
                if entry_id in specific_labels:
                    continue
                entry = self.kb.get(entry_id)
                if entry.region is None:
                    continue
                context = _context(norm, f.start, f.end)
                side = laterality_of(context) if entry.laterality else "none"
                grade = severity_of(_before(norm, f.start) + " " + norm[f.start : f.end]) if status != 0 else None
                out.append(Perceived(entry_id, entry.region, _STATUS[status],
                                     side if status != 0 else "none", grade, text[f.start : f.end]))
        return out


def _context(norm: str, start: int, end: int) -> str:
    """The clause around a mention: from the previous clause break to the next one."""
    left = norm.rfind(".", 0, start)
    for m in _CLAUSE_END.finditer(norm, max(left, 0), start):
        left = m.end()
    right_m = _CLAUSE_END.search(norm, end)
    right = right_m.start() if right_m else len(norm)
    return norm[max(left, 0) : right]


def _before(norm: str, start: int, width: int = 30) -> str:
    """The words just before a mention, within its clause (where a grade is written: 'small left effusion')."""
    chunk = norm[max(0, start - width) : start]
    cut = max(chunk.rfind("."), chunk.rfind(";"), chunk.rfind(","))
    chunk = chunk[cut + 1 :]
    return chunk if SEVERITY_WORDS.search(chunk) else ""

"""Which regions a report's global normal statements cover, and how a silent region is worded.

The data is ``knowledge/coverage.yaml``: statements ("the lungs are clear", "no acute cardiopulmonary
abnormality") with the regions each covers and wordings that claim no more than the statement does, and the
words for a region the report says nothing about.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from datakit.errors import KnowledgeError
from datakit.reading import rules
from datakit.reading.lexicon import expand, trie_regex
from datakit.resources import data_path

# A sentence that says something is normal, absent, unremarkable or unchanged states no unread abnormality.
# Nor does advice ("recommend CT of the chest and abdomen").
_SAYS_NORMAL = re.compile(r"\b(?:no|not|without|normal|normally|unremarkable|intact|clear|negative|free of|"
                          r"within normal limits|limits of normal|grossly normal|stable|unchanged|interval|"
                          r"well[\s-]aerated|well[\s-]expanded|well[\s-]inflated|"
                          r"recommend\w*|correlat\w*|follow ?up|consider\w*)\b")


@dataclass(frozen=True)
class Coverage:
    """The compiled statements and the silent-region words."""

    statements: tuple[tuple[object, dict[str, tuple[str, ...]]], ...]  # (regex, region → wordings)
    verbs: tuple[str, ...]
    tails: tuple[str, ...]
    structures: dict[str, tuple[str, ...]]
    unread_words: dict[str, object] | None = None  # region → regex of the words that put a sentence there

    def covered(self, text: str) -> dict[str, tuple[str, ...]]:
        """Region → the wordings its covering statements allow, for the statements found in ``text``."""
        norm = rules.normalize(text or "")
        out: dict[str, tuple[str, ...]] = {}
        for regex, regions in self.statements:
            if regex.search(norm):
                for region, wordings in regions.items():
                    out.setdefault(region, wordings)  # the first (most specific) statement words it
        return out

    def unread_candidates(self, text: str) -> list[tuple[str, set[str]]]:
        """Report sentences that may state what no entry reads: (sentence, the regions its words name).

        Sentences with a normal or negative word, or matching a covering statement, are left out.
        """
        out = []
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", text or ""):
            norm = rules.normalize(sentence)
            if len(norm.split()) < 2 or _SAYS_NORMAL.search(norm) or any(rx.search(norm) for rx, _ in self.statements):
                continue
            regions = {r for r, rx in (self.unread_words or {}).items() if rx.search(norm)}
            if regions:
                out.append((sentence, regions))
        return out

    def silent(self, region: str, rng: random.Random) -> str:
        """Words saying the region was examined and nothing is reported, asserting nothing about it."""
        parts = list(self.structures.get(region, ()))
        picked = rng.sample(parts, k=min(len(parts), rng.choice((1, 2)))) if parts else ["region"]
        picked.sort(key=parts.index if parts else str)
        what = " and the ".join(picked)
        return f"{rng.choice(self.verbs)} the {what}; {rng.choice(self.tails)}."


def default_path() -> Path:
    """The shipped coverage file."""
    return Path(data_path("knowledge")) / "coverage.yaml"


@lru_cache(maxsize=4)
def load_coverage(path: str | None = None) -> Coverage:
    """Read and compile ``knowledge/coverage.yaml`` (or ``path``)."""
    where = Path(path) if path else default_path()
    try:
        doc = yaml.safe_load(where.read_text(encoding="utf-8"))
        statements = []
        for st in doc["statements"]:
            keys = [k for phrase in st["phrases"] for k in expand(phrase)]
            regions = {r: tuple(w) for r, w in st["regions"].items()}
            statements.append((trie_regex(keys), regions))
        silent = doc["silent"]
        unread = {r: trie_regex([k for w in words for k in expand(w)]) for r, words in silent.get("unread", {}).items()}
        return Coverage(tuple(statements), tuple(silent["verbs"]), tuple(silent["tails"]),
                        {r: tuple(v) for r, v in silent["structures"].items()}, unread)
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        raise KnowledgeError(f"{where}: not a valid coverage file ({err})",
                             hint="see the comments at the top of the shipped knowledge/coverage.yaml") from err

"""Tree-driven lookup: which findings a text names, and so which regions of the perception tree it concerns.

Every entry's terms (name and synonyms) are tokenized the way BM25 tokenizes text (stop words out, light
stemming), and a text is scanned left to right for the longest term starting at each token. A match is a
*mention*, negated or not: "no pleural effusion" mentions pleural_effusion, which is what a reader needs to
write the pleura's pertinent negative. Entries without a region (no_finding) are not tree-driven.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from datakit.knowledge.bm25 import tokenize_terms
from datakit.knowledge.entries import KnowledgeBase
from datakit.memo import Memo

MAX_TERM_TOKENS = 8


@dataclass(frozen=True)
class Mention:
    """A term of an entry found in a text."""

    entry_id: str
    region: str
    term: str


class TermMatcher:
    """Longest-match lookup of every entry's terms in token sequences."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.fingerprint = kb.fingerprint
        self._terms: dict[tuple[str, ...], list[tuple[str, str, str]]] = {}
        for entry in sorted(kb.entries.values(), key=lambda e: e.id):
            if entry.region is None:
                continue
            for term in entry.terms:
                key = tuple(tokenize_terms(term))
                if not key or len(key) > MAX_TERM_TOKENS:
                    continue
                bucket = self._terms.setdefault(key, [])
                if all(e != entry.id for e, _, _ in bucket):
                    bucket.append((entry.id, entry.region, term))
        self.max_len = max((len(k) for k in self._terms), default=0)

    def mentions(self, text: str | None) -> list[Mention]:
        """Entries whose terms occur in ``text``, in order of first occurrence, each once."""
        tokens = tokenize_terms(text)
        found: dict[str, Mention] = {}
        i, n = 0, len(tokens)
        while i < n:
            step = 1
            for size in range(min(self.max_len, n - i), 0, -1):
                bucket = self._terms.get(tuple(tokens[i : i + size]))
                if bucket:
                    for entry_id, region, term in bucket:
                        found.setdefault(entry_id, Mention(entry_id, region, term))
                    step = size
                    break
            i += step
        return list(found.values())

    def regions(self, text: str | None) -> dict[str, list[str]]:
        """Regions whose findings ``text`` mentions → the mentioned entry ids."""
        out: dict[str, list[str]] = {}
        for m in self.mentions(text):
            out.setdefault(m.region, []).append(m.entry_id)
        return out

    def mentions_many(self, texts: Sequence[str | None]) -> list[list[Mention]]:
        """:meth:`mentions` for many texts."""
        return [self.mentions(t) for t in texts]


_MATCHERS: Memo[TermMatcher] = Memo(4)


def get_matcher(kb: KnowledgeBase) -> TermMatcher:
    """The term matcher of a knowledge base, built once per knowledge fingerprint."""
    return _MATCHERS.get(kb.fingerprint, lambda: TermMatcher(kb))


def regions_mentioned(text: str | None, kb: KnowledgeBase) -> dict[str, list[str]]:
    """Regions of the perception tree whose findings ``text`` mentions → the entry ids, in reading order."""
    found = get_matcher(kb).regions(text)
    return {r: found[r] for r in kb.regions if r in found}

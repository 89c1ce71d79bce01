"""Lexical retrieval over the knowledge base with BM25 (the ``bm25s`` library), and the tokenizer it uses.

Each entry becomes one document: its name three times, each synonym twice, then its signs and definition
once (field weighting by repetition). Differential and pitfalls are left out: they name *other* findings and
would pull queries towards the wrong entry.

The tokenizer is built for radiology text; its choices were measured on the held-out phrases
(tests/retrieve/data/retrieval_heldout.yaml, see benchmarks/retrieval.py):
- lowercase; words are runs of letters and digits; pure numbers, single characters and de-identification
  placeholders (``___``, ``XXXX``) are dropped;
- a hyphenated word gives its parts *and* the joined word ("ground-glass" → ground, glass, groundglass), so
  "ground glass", "groundglass" and "ground-glass" meet;
- stop words: function words, hedges ("likely", "may"), laterality, location ("lobe", "upper", "base"),
  severity and status words ("status post", "unchanged"); these say *where* or *how* a finding is, not *which*
  finding it is;
- light stemming: plurals and the endings -ed/-ing/-ation/-ment/-ened ("blunted", "blunting" → blunt;
  "opacities" → opacity; "enlargement", "enlarged" → enlarg) plus a few Greek and Latin plurals
  (atelectases, bullae, hila).

Retrieval is deterministic: equal scores are ordered by entry id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from datakit.knowledge.entries import Entry, KnowledgeBase
from datakit.memo import Memo

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

STOPWORDS = frozenset(
    """
    a an and or nor but the of to in into on onto at by for from with without within as is are was were
    be been
    being am this that these those there here it its it's their his her he she they them we our you your
    which who
    whom whose what when where while than then so such very also again still other another each both either
    neither no not none any all some more most less least few several only just about above below over under
    between through during after before since until per via vs versus
    has have had having do does did can could may might must shall should will would
    seen noted identified demonstrated visualized visualised shown show shows appear appears appearing
    seem seems suggest suggests suggesting suggestive consistent compatible concerning concern likely unlikely
    possible possibly probable probably presumably perhaps definite definitely questionable question
    evidence finding findings sign signs change changes study exam examination image images film films
    view views
    radiograph radiographs compared comparison prior previous previously interval since today now again
    acute subacute chronic new old stable unchanged improved improving worsened worsening increased
    increasing decreased decreasing
    right left bilateral bilaterally unilateral side sided both rightward leftward
    lobe lobes zone zones base bases upper lower mid middle anterior posterior lateral medial
    status post
    mild mildly moderate moderately severe severely small smaller large larger tiny trace minimal slight
    slightly
    marked markedly extensive minimally
    present noted there patient clinical correlation recommended recommend
    xxxx
    """.split()
)

# Greek and Latin plurals and a few forms the suffix rules below would get wrong.
_IRREGULAR = {
    "atelectases": "atelectasis",
    "metastases": "metastasis",
    "bronchiectases": "bronchiectasis",
    "pneumothoraces": "pneumothorax",
    "pneumothoraxes": "pneumothorax",
    "scolioses": "scoliosis",
    "bullae": "bulla",
    "vertebrae": "vertebra",
    "hila": "hilum",
    "hilar": "hilum",
    "bronchi": "bronchus",
    "granulomata": "granuloma",
    "diverticula": "diverticulum",
    "apices": "apex",
    "lungs": "lung",
    "ribs": "rib",
    "aortic": "aorta",
    "cardiac": "heart",
    "pleura": "pleural",
    "mediastinal": "mediastinum",
    "clavicular": "clavicle",
    "vertebral": "vertebra",
    "pulmonary": "lung",
    "thoracic": "thorax",
    "calcified": "calcif",
    "calcification": "calcif",
    "calcifications": "calcif",
}


def stem(word: str) -> str:
    """Light suffix stripping: plurals, -ed, -ing, -ation, -ment, -ened, a final -e (module docstring)."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or word[-1].isdigit():
        return word
    base = _strip(word)
    # "enlarge", "enlarged" and "enlargement" meet at "enlarg"
    return base[:-1] if len(base) > 4 and base.endswith("e") and not base.endswith("ee") else base


def _strip(word: str) -> str:
    for suffix, keep in (
        ("ations", 5),
        ("ation", 5),
        ("ments", 4),
        ("ment", 4),
        ("ening", 4),
        ("ened", 4),
        ("ings", 4),
        ("ing", 4),
        ("ies", 3),
        ("ied", 3),
        ("ed", 4),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            base = word[: -len(suffix)]
            if suffix in ("ies", "ied"):
                return base + "y"
            if (
                suffix in ("ed", "ing", "ings")
                and len(base) > 2
                and base[-1] == base[-2]
                and base[-1] not in "ls"
            ):
                base = base[:-1]  # "dilatting" style doubling; keeps "fill", "pass"
            return base
    if word.endswith("sses") or word.endswith("xes") or word.endswith("ches") or word.endswith("shes"):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "ys", "as")):
        return word[:-1]
    return word


@lru_cache(maxsize=200_000)
def _word_tokens(word: str) -> tuple[str, ...]:
    """Tokens of one lowercase (maybe hyphenated) word: stop words and numbers dropped, then stemmed."""
    parts = word.split("-")
    out: list[str] = []
    for part in parts:
        if len(part) > 1 and not part.isdigit() and part not in STOPWORDS:
            out.append(stem(part))
    if len(parts) > 1:
        joined = "".join(parts)
        if not joined.isdigit() and joined not in STOPWORDS:
            out.append(stem(joined))
    return tuple(out)


def tokenize(text: str | None) -> list[str]:
    """Tokens of a text for BM25 and term matching."""
    if not text:
        return []
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        out.extend(_word_tokens(word))
    return out


def tokenize_terms(text: str | None) -> list[str]:
    """Tokens in reading order without the joined forms of hyphenated words (for phrase matching)."""
    if not text:
        return []
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        for part in word.split("-"):
            if len(part) > 1 and not part.isdigit() and part not in STOPWORDS:
                out.append(stem(part))
    return out


def entry_document(entry: Entry) -> list[str]:
    """The tokens BM25 indexes for one entry (field weighting by repetition)."""
    name = tokenize(entry.name)
    tokens = name * 3
    for synonym in entry.synonyms:
        tokens += tokenize(synonym) * 2
    for sign in entry.signs:
        tokens += tokenize(sign)
    tokens += tokenize(entry.definition)
    return tokens


@dataclass(frozen=True)
class Hit:
    """One retrieved entry and its BM25 score."""

    entry_id: str
    score: float


class BM25Index:
    """A bm25s index over the knowledge base's entries."""

    def __init__(self, kb: KnowledgeBase, *, k1: float = 1.5, b: float = 0.75) -> None:
        import bm25s

        self.entry_ids = sorted(kb.entries)
        self.fingerprint = kb.fingerprint
        self._retriever = bm25s.BM25(k1=k1, b=b)
        self._retriever.index([entry_document(kb.entries[i]) for i in self.entry_ids], show_progress=False)
        self._vocab = self._retriever.vocab_dict

    def _known(self, tokens: list[str]) -> list[str]:
        return [t for t in tokens if t in self._vocab]

    def search_many(self, queries: Sequence[str | None], k: int = 5) -> list[list[Hit]]:
        """Top-k entries for each query, in one batched bm25s call; zero-score entries are left out."""
        if not queries:
            return []
        n_docs = len(self.entry_ids)
        depth = min(
            n_docs, k + 5
        )  # a little deeper than k, so ties at the cut are resolved by id, not by chance
        tokens = [self._known(tokenize(q)) for q in queries]
        results = self._retriever.retrieve(tokens, k=depth, show_progress=False, n_threads=0, sorted=True)
        docs = np.asarray(results.documents)
        scores = np.asarray(results.scores, dtype=np.float64)
        out: list[list[Hit]] = []
        for row_docs, row_scores in zip(docs, scores, strict=True):
            hits = [
                (float(s), self.entry_ids[int(d)]) for d, s in zip(row_docs, row_scores, strict=True) if s > 0
            ]
            hits.sort(key=lambda h: (-round(h[0], 9), h[1]))
            out.append([Hit(entry_id, score) for score, entry_id in hits[:k]])
        return out

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """Top-k entries for one query."""
        return self.search_many([query], k)[0]


_INDEXES: Memo[BM25Index] = Memo(4)


def get_index(kb: KnowledgeBase) -> BM25Index:
    """The BM25 index of a knowledge base, built once per knowledge fingerprint."""
    return _INDEXES.get(kb.fingerprint, lambda: BM25Index(kb))


def explain(kb: KnowledgeBase, query: str, entry_id: str) -> list[str]:
    """The query's tokens that the entry's document contains (why BM25 found it), in query order."""
    document = set(entry_document(kb.get(entry_id)))
    return list(dict.fromkeys(t for t in tokenize(query) if t in document))


def search(kb: KnowledgeBase, query: str, k: int = 5) -> list[Hit]:
    """Top-k entries of ``kb`` for a free-text query (e.g. "blunted costophrenic angle")."""
    return get_index(kb).search(query, k)

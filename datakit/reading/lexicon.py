"""The labeler's lexicon: read and check ``knowledge/labeler/lexicon.yaml``, merge it with the knowledge base.

What it builds (:class:`Tables`) is plain data plus three compiled regular expressions, so a labeler pickles
cheaply into worker processes:

- **phrases** — every mention phrase: the knowledge base's synonyms of each label's entries, the lexicon's
  supplements, hedged phrases, unmentions, anchors, No-Finding suppressors. One regex finds them all,
  leftmost-longest. A phrase also counts for every label whose own phrase it contains as whole words
  ("aspiration pneumonia" is a pneumonia mention), unless an unmention covers that part ("pericardial
  effusion" is not a pleural effusion) — the independent per-label matching CheXpert does, in one pass.
- **cues** — negation, uncertainty, pre-negation uncertainty, interpretive, pseudo and terminator phrases.
- **qualifiers** — the words that give an anchor ("heart size") its status ("normal", "enlarged", "stable").

Phrases are keyed by :func:`key`: lowercase, runs of spaces, line breaks and hyphens as one space. The regexes
are character tries, so matching cost grows with the text, not with the number of phrases.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datakit.errors import KnowledgeError
from datakit.hashing import content_hash
from datakit.resources import data_path
from datakit.tables import LABEL_COLUMNS
from datakit.yamldoc import load_document

LEXICON_SCHEMA = "labeler_lexicon.v1.json"
# Bump when the engine's rules change, so labels computed under older rules are not reused.
ENGINE_VERSION = "2"

# cue kinds
NEG, UNC, PNU, INTERP, PSEUDO, TERM = (
    "negation",
    "uncertainty",
    "pre_negation_uncertainty",
    "interpretive",
    "pseudo",
    "terminator",
)
PRE, POST, BOTH = "pre", "post", "both"
# qualifier classes → the status they give an anchor
# "unstated" describes the structure without a verdict ("stable cardiomediastinal silhouette"): no mention
QUALIFIER_STATUS = {"positive": 1, "negative": 0, "uncertain": -1, "unstated": None}
FINDING_LABELS = [c for c in LABEL_COLUMNS if c != "no_finding"]

# De-identification placeholders become runs of this character before matching (labeler_rules.normalize).
# It counts as part of a word at phrase boundaries, so a fragment glued to a placeholder ("pneumo___thorax")
# is never a mention or a cue.
PLACEHOLDER_CHAR = "\u00a4"
# a de-identification placeholder between two words of a phrase is skipped ("calcified XXXX granuloma")
_SEP = re.compile(r"[\s\-\u00a4]+")
_CHOICE = re.compile(r"\{([^{}]*)\}")
_MAX_EXPANSION = 2000


def key(text: str) -> str:
    """The lookup key of a phrase or of matched text: lowercase, spaces/line breaks/hyphens as one space."""
    return _SEP.sub(" ", text.lower()).strip()


def expand(phrase: str) -> list[str]:
    """``"{is |are |}absent"`` → ``["is absent", "are absent", "absent"]`` (keys, de-duplicated, in order)."""
    parts = _CHOICE.split(phrase)
    if len(parts) == 1:
        return [key(phrase)]
    pools = [[p] if i % 2 == 0 else p.split("|") for i, p in enumerate(parts)]
    size = 1
    for pool in pools:
        size *= len(pool)
    if size > _MAX_EXPANSION:
        raise ValueError(f"{phrase!r} expands to {size} phrases (at most {_MAX_EXPANSION})")
    out = dict.fromkeys(key("".join(combo)) for combo in itertools.product(*pools))
    return [k for k in out if k]


def trie_regex(keys: list[str]) -> re.Pattern:
    """One regex for all ``keys``, on word boundaries, longest first at each start: a character trie."""
    trie: dict = {}
    for k in keys:
        node = trie
        for ch in k:
            node = node.setdefault(ch, {})
        node[""] = True
    if not trie:
        return re.compile(r"(?!x)x")  # matches nothing

    def build(node: dict, last: str) -> str:
        alts = []
        for ch in sorted(c for c in node if c):
            piece = rf"[\s\-]+(?:{PLACEHOLDER_CHAR}+[\s\-]+)?" if ch == " " else re.escape(ch)
            alts.append(piece + build(node[ch], ch))
        if "" in node:  # a phrase may end here, if no word character follows
            alts.append(rf"(?![\w{PLACEHOLDER_CHAR}])" if (last.isalnum() or last == "_") else "")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return re.compile(rf"(?<![\w{PLACEHOLDER_CHAR}])" + build(trie, ""))


@dataclass(frozen=True)
class Cue:
    """One cue phrase: what it does, which way it looks, how far."""

    phrase: str
    kind: str  # NEG, UNC, PNU, INTERP, PSEUDO, TERM
    direction: str | None  # PRE, POST, BOTH; None for pseudo and terminators
    window: int


@dataclass
class Phrase:
    """What one mention phrase stands for."""

    phrase: str
    labels: dict[str, int] = field(default_factory=dict)  # label column → status when nothing modifies it
    anchor: str | None = None  # anchor id: needs a qualifier
    suppressor: bool = False  # an abnormality outside the 13 findings: blocks No Finding
    heart_failure: bool = False
    attributable: bool = False  # a shadow a report may explain by bone or a device (see Tables.attribution_re)
    blocked: set[str] = field(default_factory=set)  # labels an unmention keeps it from counting towards

    @property
    def inert(self) -> bool:
        """Matched only to hide the shorter mentions inside it."""
        return not (self.labels or self.anchor or self.suppressor or self.heart_failure)


@dataclass
class Tables:
    """Everything the engine needs, built once per (knowledge base, lexicon)."""

    phrases: dict[str, Phrase]
    cues: dict[str, Cue]
    qualifiers: dict[str, dict[str, int]]  # qualifier key → {anchor id: status}
    anchors: dict[str, list[str]]  # anchor id → label columns
    windows: dict[str, int]
    mention_re: re.Pattern
    cue_re: re.Pattern
    qualifier_re: re.Pattern
    breaker_re: re.Pattern
    auxiliary_re: re.Pattern
    relation_re: re.Pattern
    # "opacity ... related to | a healing rib fracture": cue, then target; the mention is not a lung finding
    attribution_re: re.Pattern
    attribution_target_re: re.Pattern
    attribution_window: int
    other_study_re: re.Pattern  # a sentence about another study or modality ("on the prior CT")
    history_re: re.Pattern  # the rest of the sentence is a history ("with a history of lymphoma")
    fingerprint: str
    # The finding reader (keyed by entries) reads a finding right after a placeholder that hid a link word as
    # uncertain (:func:`datakit.reading.rules._hidden_link`); the labeler keeps the label a coder would give.
    hidden_links: bool = False
    # ... and "scarring/atelectasis" as two hedged alternatives, as "scarring or atelectasis" (MeSH coders, whom
    # the labeler is measured against, code both arms of a slash as present)
    slash_alternatives: bool = False


DEFAULT_WINDOWS = {"pre": 8, "post": 6, "chain": 6, "anchor_before": 3, "anchor_after": 10}


def default_lexicon_path() -> Path:
    """The shipped lexicon file."""
    return Path(data_path("knowledge")) / "labeler" / "lexicon.yaml"


def read_lexicon(path: str | Path | None = None) -> dict[str, Any]:
    """Read a lexicon file and check it against ``schemas/labeler_lexicon.v1.json``."""
    path = Path(path) if path is not None else default_lexicon_path()
    hint = f"the format is schemas/{LEXICON_SCHEMA}; the shipped example is knowledge/labeler/lexicon.yaml"
    return load_document(path, LEXICON_SCHEMA, KnowledgeError, hint)


def _expand_all(items: list, where: str, path: Path) -> list[tuple[str, int | None]]:
    out = []
    for item in items:
        phrase, window = (item, None) if isinstance(item, str) else (item["phrase"], item.get("window"))
        try:
            keys = expand(phrase)
        except ValueError as err:
            raise KnowledgeError(f"{path}: {where}: {err}", hint="split the phrase into several") from None
        for k in keys:
            if not (k[:1].isalnum()):
                raise KnowledgeError(
                    f"{path}: {where}: phrase {k!r} must start with a letter or digit",
                    hint="phrases are matched on word boundaries",
                )
            out.append((k, window))
    return out


def _build_cues(doc: dict, windows: dict[str, int], path: Path) -> dict[str, Cue]:
    cues: dict[str, Cue] = {}
    where_of: dict[str, str] = {}
    spec = doc["cues"]

    def add(items: list, kind: str, direction: str | None, where: str) -> None:
        default = windows["post"] if direction == POST else windows["pre"]
        for k, window in _expand_all(items, where, path):
            cue = Cue(k, kind, direction, default if window is None else window)
            held = cues.get(k)
            if held is not None and (held.kind, held.direction) != (kind, direction):
                raise KnowledgeError(
                    f"{path}: cue {k!r} is in both {where_of[k]} and {where}",
                    hint="a phrase can play one role only; remove one of them",
                )
            cues[k] = cue
            where_of[k] = where

    for kind, section in ((NEG, "negation"), (UNC, "uncertainty"), (PNU, "pre_negation_uncertainty")):
        for direction in (PRE, POST, BOTH):
            add(spec.get(section, {}).get(direction, []), kind, direction, f"cues.{section}.{direction}")
    add(spec.get("uncertainty", {}).get("interpretive", []), INTERP, PRE, "cues.uncertainty.interpretive")
    add(spec.get("pseudo", []), PSEUDO, None, "cues.pseudo")
    add(spec.get("terminators", []), TERM, None, "cues.terminators")
    return cues


def _containment(phrases: dict[str, Phrase], unmentions: dict[str, list[str]]) -> None:
    """Give each phrase the labels of the label phrases it holds as whole words (see the module docstring)."""
    by_first: dict[str, list[tuple[tuple[str, ...], str, int]]] = {}
    for k, p in phrases.items():
        if p.anchor:
            continue
        for label, status in p.labels.items():
            toks = tuple(k.split(" "))
            by_first.setdefault(toks[0], []).append((toks, label, status))
    unmention_toks = {label: [tuple(u.split(" ")) for u in us] for label, us in unmentions.items()}

    def occurrences(hay: tuple[str, ...], needle: tuple[str, ...]) -> list[int]:
        n = len(needle)
        return [i for i in range(len(hay) - n + 1) if hay[i : i + n] == needle]

    added: dict[str, dict[str, int]] = {}
    for k, p in phrases.items():
        if p.anchor:
            continue
        toks = tuple(k.split(" "))
        for i, tok in enumerate(toks):
            for sub, label, status in by_first.get(tok, ()):
                if sub == toks or label in p.labels or label in p.blocked or toks[i : i + len(sub)] != sub:
                    continue
                covered = any(
                    a <= i and i + len(sub) <= a + len(u)
                    for u in unmention_toks.get(label, ())
                    for a in occurrences(toks, u)
                )
                if not covered:
                    added.setdefault(k, {}).setdefault(label, status)
    for k, labels in added.items():
        for label, status in labels.items():
            phrases[k].labels.setdefault(label, status)


def build_tables(kb: Any, doc: dict[str, Any], path: Path, *, keyed_by: str = "labels") -> Tables:
    """Merge the knowledge base's synonyms with a checked lexicon document and compile the matchers.

    ``keyed_by="labels"`` (the labeler): mentions stand for the 13 finding label columns. ``keyed_by="entries"``
    (the offline teacher's reader): every knowledge entry's terms stand for that entry, with the same cues,
    scopes, anchors and unmentions; the lexicon's per-label phrases stand for the entry of the same id.
    """
    if keyed_by not in ("labels", "entries"):
        raise ValueError(f"keyed_by must be 'labels' or 'entries', not {keyed_by!r}")
    windows = {**DEFAULT_WINDOWS, **doc.get("windows", {})}
    cues = _build_cues(doc, windows, path)
    phrases: dict[str, Phrase] = {}

    def get(k: str) -> Phrase:
        return phrases.setdefault(k, Phrase(k))

    def keys_of(section: str) -> dict[str, list[str]]:
        return {
            label: [k for k, _ in _expand_all(items, f"{section}.{label}", path)]
            for label, items in doc.get(section, {}).items()
        }

    drop = {label: set(ks) for label, ks in keys_of("drop").items()}
    if keyed_by == "labels":
        for label in FINDING_LABELS:
            for entry in kb.by_label(label):
                for term in entry.terms:
                    k = key(term)
                    if k and k[0].isalnum() and k not in drop.get(label, ()):
                        get(k).labels[label] = 1
    else:
        for entry in kb.entries.values():
            # a dropped synonym is too vague for the label's own entry ("density" is no lung opacity), but a
            # specific entry keeps it ("sternotomy" is sternotomy wires, though no Support Devices label)
            dropped = drop.get(entry.id, ()) if entry.id == entry.chexpert else ()
            for term in entry.terms:
                k = key(term)
                if k and k[0].isalnum() and k not in dropped:
                    get(k).labels[entry.id] = 1
    for label, ks in keys_of("mentions").items():
        for k in ks:
            get(k).labels[label] = 1
    def known(section: str, entry_id: str) -> None:
        if entry_id not in kb:
            raise KnowledgeError(f"{path}: {section} names {entry_id!r}, which the knowledge base lacks",
                                 hint="use the id of a knowledge entry (datakit knowledge list)")

    for entry_id, ks in keys_of("entry_mentions").items():
        known("entry_mentions", entry_id)
        label = entry_id if keyed_by == "entries" else kb.get(entry_id).chexpert
        for k in ks:
            if label and k in drop.get(label, ()):
                continue  # the label does not take this phrase of its entry ("fractured sternotomy wire")
            if label:
                get(k).labels[label] = 1
            elif entry_id in doc.get("no_finding", {}).get("suppressor_entries", []):
                get(k).suppressor = True
    for label, ks in keys_of("hedged").items():
        for k in ks:
            get(k).labels[label] = -1
    if keyed_by == "entries":
        for entry_id, ks in keys_of("entry_hedged").items():
            known("entry_hedged", entry_id)
            for k in ks:
                get(k).labels[entry_id] = -1

    anchors: dict[str, list[str]] = {}
    qualifiers: dict[str, dict[str, int]] = {}
    for anchor in doc.get("anchors", []):
        aid = anchor["id"]
        if aid in anchors:
            raise KnowledgeError(f"{path}: anchor id {aid!r} is used twice", hint="anchor ids must be unique")
        anchors[aid] = list(anchor["labels"])
        for k, _ in _expand_all(anchor["phrases"], f"anchors.{aid}.phrases", path):
            p = get(k)
            p.anchor, p.labels = aid, {}
        for cls, items in anchor["qualifiers"].items():
            for k, _ in _expand_all(items, f"anchors.{aid}.qualifiers.{cls}", path):
                qualifiers.setdefault(k, {})[aid] = QUALIFIER_STATUS[cls]
    if keyed_by == "entries":
        # "heart size within normal limits": a qualifier of the heart size, not the No Finding entry's own term
        # (its mention would hide the anchor from the finding reader, which reads No Finding from no phrase)
        for k in qualifiers:
            if k in phrases:
                phrases[k].labels.pop("no_finding", None)

    nf = doc.get("no_finding", {})
    for entry_id in nf.get("suppressor_entries", []):
        known("no_finding.suppressor_entries", entry_id)
        for term in kb.get(entry_id).terms:
            k = key(term)
            if k and k[0].isalnum() and not phrases.get(k, Phrase(k)).anchor:
                get(k).suppressor = True
    for k, _ in _expand_all(nf.get("suppressors", []), "no_finding.suppressors", path):
        get(k).suppressor = True

    unmentions = keys_of("unmentions")
    for label, ks in unmentions.items():
        # keyed by entries, an unmention of a label stands for every entry of that label ("monitor leads" is no
        # pacemaker, although "leads" is one of its terms)
        of_label = {e.id for e in kb.by_label(label)} if keyed_by == "entries" else {label}
        for k in ks:
            p = get(k)
            for name in of_label:
                p.labels.pop(name, None)
            p.blocked |= of_label
            if p.anchor in _anchors_of(anchors, label):
                p.anchor = None
    if keyed_by == "entries":
        for entry_id, ks in keys_of("entry_unmentions").items():
            for k in ks:
                p = get(k)
                p.labels.pop(entry_id, None)
                p.blocked.add(entry_id)
    for k, _ in _expand_all(doc.get("heart_failure", []), "heart_failure", path):
        get(k).heart_failure = True

    _containment(phrases, unmentions)
    if keyed_by == "entries":
        _own_device_terms(kb, phrases)
        # a phrase that names a narrower entry is not also its broader one ("degenerative changes of the spine" is
        # degenerative spine, not a degenerative change named without its place as well)
        for broad, narrow in doc.get("broader", {}).items():
            for name in (broad, *narrow):
                known("broader", name)
            for p in phrases.values():
                if broad in p.labels and set(narrow) & set(p.labels):
                    del p.labels[broad]
    attribution = doc.get("attribution", {})
    owned = set(attribution.get("labels", [])) | set(attribution.get("entries", []))
    for p in phrases.values():
        ids = set(p.labels)
        if keyed_by == "entries":
            ids |= {kb.get(e).chexpert for e in p.labels if e in kb and kb.get(e).chexpert}
        p.attributable = bool(ids & owned)
    fingerprint = content_hash(
        {"engine": ENGINE_VERSION, "kb": getattr(kb, "fingerprint", None), "lexicon": doc, "keyed_by": keyed_by}
    )
    return Tables(
        phrases=phrases,
        cues=cues,
        qualifiers=qualifiers,
        anchors=anchors,
        windows=windows,
        mention_re=trie_regex(sorted(phrases)),
        cue_re=trie_regex(sorted(cues)),
        qualifier_re=trie_regex(sorted(qualifiers)),
        breaker_re=_words_re(doc["cues"].get("breakers", [])),
        auxiliary_re=_words_re(doc["cues"].get("auxiliaries", [])),
        relation_re=_words_re(doc["cues"].get("relations", [])),
        attribution_re=trie_regex([k for k, _ in _expand_all(attribution.get("cues", []), "attribution.cues", path)]),
        attribution_target_re=trie_regex(
            [k for k, _ in _expand_all(attribution.get("targets", []), "attribution.targets", path)]
        ),
        attribution_window=int(attribution.get("window", 8)),
        other_study_re=trie_regex([k for k, _ in _expand_all(doc.get("other_study", []), "other_study", path)]),
        history_re=trie_regex([k for k, _ in _expand_all(doc.get("history", []), "history", path)]),
        fingerprint=fingerprint,
        hidden_links=keyed_by == "entries",
        slash_alternatives=keyed_by == "entries",
    )


def _own_device_terms(kb: Any, phrases: dict[str, Phrase]) -> None:
    """An entry's own term does not name entries of another region or other devices that it holds.

    "Pleural scarring" is no lung scarring; "pacemaker electrodes" are no external electrodes.
    """
    own: dict[str, set[str]] = {}
    for entry in kb.entries.values():
        for term in entry.terms:
            own.setdefault(key(term), set()).add(entry.id)

    def region(entry_id: str) -> str | None:
        return kb.get(entry_id).region if entry_id in kb else None

    for k, p in phrases.items():
        mine = {e for e in own.get(k, set()) if e in kb}
        if not mine:
            continue
        regions = {region(e) for e in mine}
        for e in [e for e in p.labels if e not in mine]:
            if region(e) not in regions or region(e) == "lines_devices":
                del p.labels[e]


def _words_re(words: list[str]) -> re.Pattern:
    if not words:
        return re.compile(r"(?!x)x")
    return re.compile(r"\b(?:" + "|".join(sorted(set(words), key=lambda w: (-len(w), w))) + r")\b")


def _anchors_of(anchors: dict[str, list[str]], label: str) -> set[str]:
    return {aid for aid, labels in anchors.items() if label in labels}

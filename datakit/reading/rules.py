"""The labeler's engine: report text → mentions, each classified positive, negative or uncertain.

Steps, per text:

1. **Normalise** without changing length, so every span points into the original text: lowercase, and each
   de-identification placeholder (MIMIC's ``___``, IU-Xray's ``XXXX`` — also inside words, as in
   ``x-XXXX``) becomes a run of ``¤``, which is no word character and so never part of a mention or a cue.
2. **Find** mentions, cues and (when an anchor was found) qualifiers, each with one trie regex.
3. **Segment**: sentences end at ``. ! ?`` followed by a space (not after "vs", "e.g", "dr" …), at blank lines
   and at ``2)``-style numbers; clauses also end at ``;``, ``:`` and the lexicon's terminator words.
4. **Anchors** ("heart size") take their status from the nearest qualifier of their clause ("normal",
   "enlarged", "stable"); an anchor without one is no mention.
5. **Scopes**: a ``pre`` cue reaches the first mention after it within its window, then along a coordinated
   list (gaps of few words, no breaker verb, no other cue); a ``post`` cue reaches the nearest mention before
   it (no comma or conjunction in between) and the list that mention ends; ``both`` cues reach the nearest
   mention on each side. Interpretive cues ("to suggest") are transparent to a negation's list and negative
   right after a negated mention, uncertain otherwise.
6. **Status**, first that applies: pre-negation uncertainty → -1, negation → 0, uncertainty → -1, else the
   phrase's own status (1, or -1 for a hedged phrase).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right

from datakit.reading.lexicon import (
    BOTH,
    INTERP,
    NEG,
    PLACEHOLDER_CHAR,
    PNU,
    POST,
    PRE,
    PSEUDO,
    TERM,
    UNC,
    Cue,
    Phrase,
    Tables,
    key,
)

_PLACEHOLDER = re.compile(r"_{2,}|x{4,}")
# IU-Xray's de-identification takes "Port-A-Cath" for a name and hides both halves: "Right XXXX-a-XXXX remains in
# XXXX". The pattern is that device's and no other's; read it as the device (same length, so offsets hold).
_HIDDEN_PORT = re.compile(r"\bxxxx-a-xxxx\b")
# ... and "lymph XXXX" hides only "node" or "nodes" ("stable calcified superior mediastinal lymph XXXX")
_HIDDEN_NODE = re.compile(r"\blymph xxxx\b")
_ABBREVIATIONS = ("vs", r"e\.g", r"i\.e", "dr", "approx", "mr", "mrs", "ms", "st", "fig", "cf", "resp")
# The punctuation is matched first and the abbreviations checked behind it: lookbehinds tried at every
# position made this the slowest step.
_SENTENCE_END = re.compile(
    r"[.!?]" + "".join(rf"(?<!\b{a}.)" for a in _ABBREVIATIONS) + r"(?=\s|$)"
    r"|\n[ \t]*\n"
    r"|\s\d{1,2}\)(?=\s)"
)
_CLAUSE_PUNCT = re.compile(r";|:(?!\d)")
_WORD = re.compile(r"\w+")
# What may not stand between a mention and a post cue: "cardiomegaly, vascularity is normal".
_JOIN = re.compile(r",|\b(?:and|or|with|but|while|plus)\b")
# What joins the members of a list: "pneumothorax, effusion or consolidation".
_LIST = re.compile(r"[,/]|\b(?:and|or|nor|plus)\b")


def normalize(text: str) -> str:
    """Lowercase, placeholders as runs of ``¤``; the result has the same length as ``text``."""
    low = text.lower()
    if len(low) != len(text):  # a few characters lowercase to two; keep those as they are
        low = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
    if "__" in low or "xxxx" in low:
        low = _HIDDEN_PORT.sub("port-a-cath", low)
        low = _HIDDEN_NODE.sub("lymph node", low)
        low = _PLACEHOLDER.sub(lambda m: PLACEHOLDER_CHAR * (m.end() - m.start()), low)
    return low


class Found:
    """One mention found in a text, with everything that decides its status."""

    __slots__ = (
        "start",
        "end",
        "phrase",
        "clause",
        "sentence",
        "qual",
        "interior_breaker",
        "pnu",
        "neg",
        "unc",
        "interp",
        "status",
        "cue",
    )

    def __init__(self, start: int, end: int, phrase: Phrase) -> None:
        self.start, self.end, self.phrase = start, end, phrase
        self.clause = self.sentence = 0
        self.qual: tuple[int, int, int] | None = None  # qualifier start, end, status
        self.interior_breaker = False
        self.pnu = self.neg = self.unc = self.interp = None  # (cue, start, end) that scopes it
        self.status: int | None = None
        self.cue: tuple[int, int] | None = None  # span of what decided the status


def find(t: Tables, norm: str) -> list[Found]:
    """Every mention of a normalised text, classified (anchors without a qualifier left out)."""
    phrases = t.phrases
    found = []
    for m in t.mention_re.finditer(norm):
        p = phrases[key(m.group())]
        if not p.inert:
            found.append(Found(m.start(), m.end(), p))
    if not found:
        return found
    cues: list[tuple[int, int, Cue]] = []
    cuts = [m.end() for m in _CLAUSE_PUNCT.finditer(norm)]
    for m in t.cue_re.finditer(norm):
        c = t.cues[key(m.group())]
        if c.kind == TERM:
            cuts.append(m.start())
        else:
            cues.append((m.start(), m.end(), c))
    sentence_cuts = [m.end() for m in _SENTENCE_END.finditer(norm)]
    cuts = sorted(cuts + sentence_cuts)
    for f in found:
        f.clause = bisect_right(cuts, f.start)
        f.sentence = bisect_right(sentence_cuts, f.start)
    if any(f.phrase.anchor for f in found):
        found = _resolve_anchors(t, norm, found, cuts)
    clause_cues: dict[int, list[tuple[int, int, Cue]]] = {}
    for c in cues:
        clause_cues.setdefault(bisect_right(cuts, c[0]), []).append(c)
    i = 0
    while i < len(found):
        j = i
        while j < len(found) and found[j].clause == found[i].clause:
            j += 1
        here = clause_cues.get(found[i].clause)
        if here:
            _apply_cues(t, norm, found[i:j], here)
        i = j
    _decide(found, cues, sentence_cuts)
    _hedge_alternatives(norm, found, t.slash_alternatives)
    _differential_list(norm, found, sentence_cuts)
    if t.hidden_links:
        _hidden_link(norm, found)
    return _not_this_image(t, norm, found, sentence_cuts)


# "Primary differential considerations include epicardial fat, pericardial mass, pleural mass or cardiac aneurysm":
# everything the list names after it is a candidate, not a finding, however long the list.
_DIFFERENTIAL = re.compile(r"\b(?:differential (?:diagnosis |considerations? )?(?:includes?|is|are)|"
                           r"(?:differential )?considerations include)\b")


def _differential_list(norm: str, found: list[Found], sentence_cuts: list[int]) -> None:
    for m in _DIFFERENTIAL.finditer(norm):
        sentence = bisect_right(sentence_cuts, m.start())
        for f in found:
            if f.sentence == sentence and f.start >= m.end() and f.status in (None, 1):
                f.status, f.cue = -1, (m.start(), m.end())


# IU-Xray's de-identification also hides ordinary words, most often the link that interprets a shadow: "opacity in
# the right middle lobe, XXXX atelectasis", "The appearance XXXX scarring or atelectasis", "most XXXX representing".
# What was hidden may have been a hedge ("likely", "suggests"), so a finding right after such a placeholder is
# read as uncertain, never as certain, by the finding reader (a trace states no more than the report); the labeler
# keeps the coder's reading. A placeholder after an adjective ("calcified XXXX granuloma") is left alone.
_HIDDEN_LINK = re.compile(rf"(?:(?:,|\b(?:appearance|this|these|which|findings?|opacity|opacities|density|densities|"
                          rf"most|represents?|representing))\s*{PLACEHOLDER_CHAR}+\s+"
                          rf"|\b(?:most|more)\s*{PLACEHOLDER_CHAR}+\s+(?:[a-z]+\s+){{1,3}}"
                          rf"|{PLACEHOLDER_CHAR}+\s+(?:a|an)\s+(?:(?:combination|mixture|focus|area|region|degree)\s+of\s+)?)$")


def _hidden_link(norm: str, found: list[Found]) -> None:
    hedged: Found | None = None
    for f in found:
        m = _HIDDEN_LINK.search(norm, max(0, f.start - 40), f.start) if f.status in (None, 1) else None
        if m is not None:
            f.status, f.cue = -1, (m.start(), m.end())
            hedged = f
        elif hedged is not None and f.status in (None, 1) and f.clause == hedged.clause and \
                _LIST_JOIN.match(norm, hedged.end, f.start):
            f.status, f.cue = -1, hedged.cue  # the list it heads: "XXXX a combination of atelectasis and consolidation"
            hedged = f
        else:
            hedged = None


_LIST_JOIN = re.compile(r"\s*(?:,\s*)?(?:and|or|and/or)?\s*$|\s*(?:,|and|or|and/or)\s+")


# "atelectasis or scarring", "atelectasis or early pneumonia", "scar/atelectasis": alternatives offered, neither
# asserted
_ALTERNATIVE = re.compile(rf"^[\s{PLACEHOLDER_CHAR}]*(?:,?\s*or\s+(?:[\w{PLACEHOLDER_CHAR}]+\s+)?|\s*/\s*"
                          rf"(?:[\w{PLACEHOLDER_CHAR}]+\s+)?)$")


def _hedge_alternatives(norm: str, found: list[Found], slash: bool) -> None:
    """Two unnegated mentions joined by "or" (and by "/" when ``slash``) are both uncertain."""
    for a, b in zip(found, found[1:], strict=False):
        between = norm[a.end : b.start]
        if a.clause != b.clause or not _ALTERNATIVE.match(between):
            continue
        if "/" in between and (not slash or a.phrase.labels == b.phrase.labels):
            continue  # "CABG/sternotomy": two names of one thing, not alternatives
        # "atelectasis or possibly pneumonia": the second is hedged by its own cue, the first by the "or"
        if a.status in (None, 1, -1) and b.status in (None, 1, -1) and (a.status, b.status) != (-1, -1):
            m = re.search(r"\bor\b|/", norm[a.end : b.start])
            span = (a.end + m.start(), a.end + m.end()) if m else None
            for f in (a, b):
                f.status, f.cue = -1, span


def _not_this_image(t: Tables, norm: str, found: list[Found], sentence_cuts: list[int]) -> list[Found]:
    """Drop mentions of another study and shadows the report explains by bone or a device.

    "Consolidation on the prior CT"; "opacity related to a healing rib fracture".
    """
    other: dict[int, int] = {}  # sentence → where its first mention of another study starts
    for m in t.other_study_re.finditer(norm):
        other.setdefault(bisect_right(sentence_cuts, m.start()), m.start())
    history = {}  # sentence → where its history starts
    for m in t.history_re.finditer(norm):
        history.setdefault(bisect_right(sentence_cuts, m.start()), m.start())
    explained = _explained_sentences(t, norm, sentence_cuts)
    kept = []
    for f in found:
        if f.sentence in other and not _read_through_other_study(norm, f, other[f.sentence]):
            continue
        if f.start >= history.get(f.sentence, len(norm)):
            continue
        if f.phrase.attributable and f.sentence in explained:
            continue
        if f.phrase.attributable and _attributed(t, norm, f, sentence_cuts):
            continue
        kept.append(f)
    return kept


# "Opacity in the left apex consistent with radiation change seen on prior CT": the shadow is on this film; only
# what the link introduces is read on the other study. Chapman et al. 2001's NegEx scopes a trigger to the phrase it
# governs, not the whole sentence (J Biomed Inform 34(5):301-310).
_INTERPRETED_BY = re.compile(r"\b(?:consistent with|compatible with|in keeping with|likely|representing|represents)\b")


def _read_through_other_study(norm: str, f: Found, other_at: int) -> bool:
    """Whether a mention before another study's mention is this film's, interpreted by what that study showed."""
    return f.end <= other_at and _INTERPRETED_BY.search(norm, f.end, other_at) is not None


# "Vague nodular opacity near the first rib. This may be artifact from calcification": the next sentence explains
# ("which" points inside its own sentence: "nodular density which could represent overlapping shadows" explains
# that density, not the sentence before it)
_THIS = re.compile(r"\b(?:this|these|it)\b")


def _explained_sentences(t: Tables, norm: str, sentence_cuts: list[int]) -> set[int]:
    """Sentences whose shadow the next sentence explains away ("This may be artifact …")."""
    out = set()
    for i, cut in enumerate(sentence_cuts):
        end = sentence_cuts[i + 1] if i + 1 < len(sentence_cuts) else len(norm)
        m = _THIS.search(norm, cut, end)  # "This may be …", "…, XXXX this represents vascular shadows"
        if m is None or _words(norm, cut, m.start()) > 12:
            continue
        cue = t.attribution_re.search(norm, m.end(), end)
        if cue is None or _words(norm, m.end(), cue.start()) > 4:
            continue
        target = t.attribution_target_re.search(norm, cue.end(), end)
        if target is not None and _words(norm, cue.end(), target.start()) <= t.attribution_window:
            out.add(i)  # the sentence before this cut
    return out


# "… could represent overlapping shadows or actual pulmonary nodule": an explanation weighed against a lung
# finding does not explain the shadow away; the sentence keeps both possibilities
_WEIGHED_AGAINST = re.compile(r"[\w\s]{0,40}?\bor\s+(?:an?\s+|the\s+)?(?:actual|true|real)?\s*(?:\w+\s+){0,2}?"
                              r"(?:nodules?|opacity|opacities|mass|masses|lesions?|infiltrates?|pneumonia|"
                              r"consolidation|atelectasis)\b")


# "right basilar nodular density, likely nipple shadow": a bare hedge word right after the shadow explains it only
# when the explanation follows at once ("opacity, likely atelectasis, though superimposed pneumonia …" does not)
_APPOSED = re.compile(r"\s*,?\s*(?:likely|probably|most likely|presumably|possibly)\s+(?:an?\s+|the\s+)?")


def _attributed(t: Tables, norm: str, f: Found, sentence_cuts: list[int]) -> bool:
    i = bisect_right(sentence_cuts, f.start)
    end = sentence_cuts[i] if i < len(sentence_cuts) else len(norm)
    window = t.attribution_window
    apposed = _APPOSED.match(norm, f.end, end)
    if apposed and t.attribution_target_re.match(norm, apposed.end(), end):
        return _WEIGHED_AGAINST.match(norm, apposed.end(), end) is None
    for m in t.attribution_re.finditer(norm, f.end, end):
        if _words(norm, f.end, m.start()) > window:
            break
        target = t.attribution_target_re.search(norm, m.end(), end)
        if target is not None and _words(norm, m.end(), target.start()) <= window:
            return _WEIGHED_AGAINST.match(norm, target.end(), end) is None
    return False


def _words(norm: str, a: int, b: int) -> int:
    return len(_WORD.findall(norm, a, b)) if b > a else 0


# Which qualifier wins when several describe one anchor: "normal and stable contours" is normal, "stable,
# mildly enlarged heart" is enlarged.
_QUALIFIER_RANK = {1: 3, 0: 2, -1: 1, None: 0}
# Anchors joined like this share the qualifier after them: "heart size and mediastinal contours are normal".
_COORDINATED = re.compile(r"[\s,]*(?:and|or|/|,)[\s,]*(?:the\s+)?$")


def _resolve_anchors(t: Tables, norm: str, found: list[Found], cuts: list[int]) -> list[Found]:
    """Give each anchor its qualifier; drop anchors that have none."""
    spans = [(f.start, f.end) for f in found if not f.phrase.anchor]
    quals = []
    for m in t.qualifier_re.finditer(norm):
        s, e = m.start(), m.end()
        if not any(a < e and s < b for a, b in spans):  # "enlargement" inside "cardiac enlargement" is taken
            quals.append((s, e, t.qualifiers[key(m.group())]))
    before_w, after_w = t.windows["anchor_before"], t.windows["anchor_after"]
    starts = [f.start for f in found]
    kept = []
    for idx, f in enumerate(found):
        aid = f.phrase.anchor
        if not aid:
            kept.append(f)
            continue
        best = None
        # just before, with no other mention in between: "normal heart size", "blunting of the left | angle"
        for s, e, groups in quals:
            if e > f.start or aid not in groups or bisect_right(cuts, s) != f.clause:
                continue
            # ", " between them: the qualifier belongs to what came before ("heart borderline enlarged,
            # mediastinal contours similar")
            if _words(norm, e, f.start) <= before_w and bisect_left(starts, e) == idx and "," not in norm[e : f.start]:
                if best is None or _QUALIFIER_RANK[groups[aid]] >= _QUALIFIER_RANK[best[2]]:
                    best = (s, e, groups[aid])
        if best is None:
            # after it (and after the anchors coordinated with it), before the next other mention
            group_end, nxt = f.end, idx + 1
            while (
                nxt < len(found)
                and found[nxt].phrase.anchor
                and _COORDINATED.match(norm, group_end, found[nxt].start)
            ):
                group_end, nxt = found[nxt].end, nxt + 1
            limit = found[nxt].start if nxt < len(found) else len(norm)
            for s, e, groups in quals:
                if s < group_end or s >= limit or aid not in groups or bisect_right(cuts, s) != f.clause:
                    continue
                if _words(norm, group_end, s) <= after_w and (
                    best is None or _QUALIFIER_RANK[groups[aid]] > _QUALIFIER_RANK[best[2]]
                ):
                    best = (s, e, groups[aid])
            if best is not None:
                f.interior_breaker = t.breaker_re.search(norm, f.end, best[0]) is not None
        if best is not None and best[2] is not None:  # an "unstated" qualifier ("stable") says nothing
            f.qual = best
            kept.append(f)
    return kept


def _blocked(norm: str, cues: list[tuple[int, int, Cue]], cue: Cue, a: int, b: int) -> bool:
    """Whether another cue in [a, b) ends ``cue``'s reach (interpretive cues let a negation by)."""
    for s, _, c in cues:
        if a <= s < b and c is not cue and not (cue.kind == NEG and c.kind == INTERP):
            return True
    return False


def _mark(f: Found, c: Cue, s: int, e: int) -> None:
    slot = {PNU: "pnu", NEG: "neg", UNC: "unc", INTERP: "interp"}[c.kind]
    if getattr(f, slot) is None:
        setattr(f, slot, (c, s, e))


def _apply_cues(t: Tables, norm: str, items: list[Found], cues: list[tuple[int, int, Cue]]) -> None:
    """Mark the mentions of one clause with the cues whose scope reaches them."""
    chain_w, breaker = t.windows["chain"], t.breaker_re
    n = len(items)
    starts = [f.start for f in items]
    ends = [f.end for f in items]
    # an anchor's qualifier takes the cue before it: "heart size may be enlarged with small effusions"
    quals = [(f.qual[0], f) for f in items if f.qual is not None]

    def qualifier_between(a: int, b: int, target: Found) -> bool:
        return any(a <= q < b and owner is not target for q, owner in quals)

    def linked(a: Found, b: Found, c: Cue) -> bool:
        """Whether b continues a's list.

        A coordinator (or one plain word) and no verb or cue between: "no pneumothorax after chest tube
        placement" is no list. An interpretive cue links for a negation ("no X to suggest Y").
        """
        if _words(norm, a.end, b.start) > chain_w or breaker.search(norm, a.end, b.start) is not None:
            return False
        if _blocked(norm, cues, c, a.end, b.start):
            return False
        if _LIST.search(norm, a.end, b.start) is not None:
            return True
        if _words(norm, a.end, b.start) <= 1 and t.relation_re.search(norm, a.end, b.start) is None:
            return True  # a dropped comma: "no consolidation large effusion or pneumothorax"
        return c.kind == NEG and any(a.end <= s < b.start and k.kind == INTERP for s, _, k in cues)

    for cs, ce, c in cues:
        if c.kind == PSEUDO:
            continue
        if c.kind == UNC and c.direction == POST:
            j = bisect_left(starts, ce)
            if j < n and _words(norm, ce, items[j].start) <= 1:
                # "this is likely pneumonia": a hedge right before a finding hedges that finding, not the one
                # before it ("opacity ... is likely pneumonia" keeps the opacity)
                _mark(items[j], c, cs, ce)
                continue
        if c.direction in (PRE, BOTH):
            j = bisect_left(starts, ce)
            if j < n:
                f = items[j]
                if (
                    _words(norm, ce, f.start) <= c.window
                    and not f.interior_breaker
                    # "no acute process is seen, small effusion"; a modal may have verbs ("may be due to")
                    and (c.kind != NEG or t.auxiliary_re.search(norm, ce, f.start) is None)
                    # only a negation reaches over a comma ("no acute bony abnormality, pneumothorax ..."); any
                    # cue reaches over the comma right after it ("or, alternatively, calcified granulomas")
                    and ((c.kind == NEG and c.direction == PRE) or "," not in norm[ce : f.start].lstrip(" ,"))
                    and not _blocked(norm, cues, c, ce, f.start)
                    and not qualifier_between(ce, f.start, f)
                ):
                    _mark(f, c, cs, ce)
                    k = j
                    while (
                        k + 1 < n and not items[k + 1].interior_breaker and linked(items[k], items[k + 1], c)
                    ):
                        k += 1
                        _mark(items[k], c, cs, ce)
        if c.direction in (POST, BOTH):
            j = bisect_right(ends, cs) - 1
            if j >= 0:
                f = items[j]
                if (
                    _words(norm, f.end, cs) <= c.window
                    # "cardiomegaly, vascularity is normal": no comma or conjunction in between
                    and _JOIN.search(norm, f.end, cs) is None
                    and not _blocked(norm, cues, c, f.end, cs)
                    and not qualifier_between(f.end, cs, f)
                ):
                    _mark(f, c, cs, ce)
                    k = j
                    while c.direction == POST and k > 0 and linked(items[k - 1], items[k], c):
                        k -= 1
                        _mark(items[k], c, cs, ce)
    for f in items:  # cues between an anchor and its qualifier: "heart size may be mildly enlarged"
        if f.qual is None:
            continue
        a, b = (f.end, f.qual[0]) if f.qual[0] >= f.end else (f.qual[1], f.start)
        for cs, ce, c in cues:
            if a <= cs < b and c.kind != PSEUDO:
                _mark(f, c, cs, ce)


def _decide(found: list[Found], cues: list[tuple[int, int, Cue]], sentence_cuts: list[int]) -> None:
    """Set each mention's status, in text order (an interpretive cue looks at the mention before it)."""
    for idx, f in enumerate(found):
        if f.interp is not None and f.pnu is None and f.neg is None:
            c, cs, ce = f.interp
            prev = None
            for g in reversed(found[:idx]):
                if g.end <= cs:
                    prev = g
                    break
            if prev is not None and prev.sentence == f.sentence:
                negative = prev.status == 0
            else:
                sent = bisect_right(sentence_cuts, cs)
                negative = any(
                    k.kind == NEG and s < cs and bisect_right(sentence_cuts, s) == sent for s, _, k in cues
                )
            if negative:
                f.neg = f.interp
            elif f.unc is None:
                f.unc = f.interp
        decided = f.pnu or f.neg or f.unc
        q = f.qual
        if q is None:
            if f.pnu is not None or (f.neg is None and f.unc is not None):
                f.status = -1
            elif f.neg is not None:
                f.status = 0
            else:
                f.status = None  # the phrase's own status, per label
            f.cue = (decided[1], decided[2]) if decided else None
            continue
        qs = q[2]
        if qs == 1:
            f.status = -1 if f.pnu is not None else 0 if f.neg is not None else -1 if f.unc is not None else 1
            f.cue = (decided[1], decided[2]) if decided else (q[0], q[1])
        elif qs == -1 and f.neg is not None and f.pnu is None:
            f.status, f.cue = 0, (f.neg[1], f.neg[2])
        else:
            f.status, f.cue = qs, (q[0], q[1])


def statuses(f: Found, anchors: dict[str, list[str]]) -> dict[str, int]:
    """Label column → status for one classified mention (empty for a No-Finding suppressor alone)."""
    if f.phrase.anchor:
        return dict.fromkeys(anchors[f.phrase.anchor], f.status)
    if f.status is None:
        return dict(f.phrase.labels)
    return dict.fromkeys(f.phrase.labels, f.status)


def own_status(f: Found) -> int:
    """The status of a mention as such (for suppressors and heart failure): 1 unless a cue says otherwise."""
    if f.status is not None:
        return f.status
    return min(f.phrase.labels.values(), default=1) if f.phrase.labels else 1

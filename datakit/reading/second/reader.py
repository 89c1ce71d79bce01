"""A second, deliberately different reading of a report, for validation (issue 15).

The offline teacher reads reports with the labeler's cue engine (:mod:`datakit.reading.rules` through
:mod:`datakit.reading.findings`): a phrase trie over the lexicon, clause-bounded cue scopes, the lexicon's
anchors. Validation must not share its blind spots, so this reader shares none of that code or word lists;
only the knowledge base's entry names and synonyms (what the findings are called) are common, plus its own
:data:`~datakit.reading.second.words.EXTRA_TERMS`. It differs in each step:

- **Units**: sentences, cut into clauses (``;`` ``:``) and segments (commas and joining words).
- **Matching**: a term matches when all its content words (stemmed, word forms folded: "elevation" is
  "elevated") occur in one segment, in any order, within its length plus two tokens — "elevation of the right
  hemidiaphragm", "the aorta is tortuous", "calcified XXXX granuloma". Terms that only name a structure
  ("cardiomediastinal silhouette", "heart size") count only with an abnormality word beside them ("enlarged",
  "prominent") and read as absent beside a normal word; "stable cardiomediastinal silhouette" is neither.
- **Negation and hedges**: NegEx-style triggers (pre, post, pseudo) whose scope runs to a termination term, a
  clause break, a new subject after a comma, or a finite verb that starts a new predicate ("no effusion, heart
  is enlarged"). Two findings joined by "or", "versus", "vs" are both uncertain.
- **Context**: a lung density explained by a bone, device, nipple or overlap ("represents a healing rib
  fracture") is *attributed*, not a lung finding; a clause about another modality (CT, MRI), a history or an
  indication ("history of", "evaluate for") is *historical*. Neither supports a current finding.
- **Sides and grades** come from the mention's segment and the finding-free segments of its clause ("small
  right and moderate left effusions"); sides of anatomy ("right atrium", "left hemidiaphragm") are not the
  finding's, except for a finding named by that anatomy.
- **Region statements**: "lungs are clear", "bones are unremarkable", "no acute osseous abnormality",
  "no tubes or lines" say a whole region is normal; "no acute cardiopulmonary process" is a global one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from datakit.reading.second import words as W

# "xxxx-a-xxxx" is one word: IU-Xray's de-identification of "Port-A-Cath" (:data:`~words.EXTRA_TERMS`)
_TOKEN = re.compile(r"xxxx-a-xxxx|[a-z0-9]+|[,;:/]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+|\.(?=[A-Z])")


def stem(token: str) -> str:
    """A word's folded form: plural dropped, derived forms folded (:data:`~words.FORMS`)."""
    w = W.FORMS.get(token, token)
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is", "xs")):
        w = w[:-1]
    return W.FORMS.get(w, w)


def tokens_of(text: str) -> list[str]:
    """Lower-case word tokens and the punctuation that breaks clauses."""
    return _TOKEN.findall(text.lower())


def sentences_of(text: str) -> list[str]:
    """The sentences of a report (at sentence ends and line breaks)."""
    return [s.strip() for s in _SENTENCE.split(text or "") if s and re.search(r"[A-Za-z]", s)]


@dataclass(frozen=True)
class Mention:
    """One finding named in a sentence, as this reader reads it."""

    entry: str
    status: str  # present | absent | uncertain
    sides: tuple[str, ...]  # left, right, bilateral given beside it
    levels: tuple[int, ...]  # grade steps given beside it (0 trace … 3 large/severe)
    context: str  # current | attributed | historical | unassessed (a structure that could not be judged)
    qualified: bool  # a negation limited by a size word: "no large effusion"
    sentence: str
    # a grade said of one side ("small right and moderate left effusions": right 1, left 2); empty when the grade
    # words do not stand before a side word
    side_levels: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Reading:
    """What a text says: its mentions, the regions it calls normal, and whether it is globally normal."""

    mentions: tuple[Mention, ...]
    normal_regions: frozenset[str]
    global_normal: bool


@dataclass(frozen=True)
class _Term:
    entry: str
    stems: frozenset[str]
    order: tuple[str, ...]
    n: int
    structure: bool


def _phrases(items: list[str], kind: str) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(tokens_of(p)), kind) for p in items]


class SecondReader:
    """Reads texts for knowledge-base findings with its own matcher and scope rules; memoises sentences."""

    def __init__(self, kb: Any) -> None:
        self.kb = kb
        terms: list[_Term] = []
        for entry in kb.entries.values():
            phrases = [t for t in entry.terms if t not in W.SKIP_TERMS] + W.EXTRA_TERMS.get(entry.id, [])
            for phrase in dict.fromkeys(phrases):
                stems = [stem(t) for t in tokens_of(phrase) if t not in W.STOP]
                if not stems or len(set(stems)) < len(stems):
                    continue
                structure = all(s in W.STRUCTURE for s in stems)
                terms.append(_Term(entry.id, frozenset(stems), tuple(stems), len(stems), structure))
        self._terms = terms
        self._by_stem: dict[str, list[int]] = {}  # stem → indexes into _terms
        for k, term in enumerate(terms):
            for s in term.stems:
                self._by_stem.setdefault(s, []).append(k)
        both = set(W.PRE_NEGATION) & set(W.POST_NEGATION)  # "resolved" looks both ways
        triggers = (
            _phrases(sorted(both), "both_neg")
            + _phrases(W.PSEUDO, "pseudo")
            + _phrases(W.POST_HEDGE, "post_hedge")
            + _phrases(W.PRE_HEDGE, "pre_hedge")
            + _phrases(W.POST_NEGATION, "post_neg")
            + _phrases(W.PRE_NEGATION, "pre_neg")
            + _phrases(W.TERMINATION, "term")
            + _phrases(W.HISTORY, "history")
            + _phrases(W.ATTRIBUTION, "attrib")
        )
        self._triggers: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for phrase, kind in sorted(triggers, key=lambda pk: -len(pk[0])):
            self._triggers.setdefault(phrase[0], []).append((phrase, kind))
        self._regions = {e.id: e.region for e in kb.entries.values()}
        self._memo: dict[str, tuple[tuple[Mention, ...], frozenset[str], bool]] = {}

    # --- public -------------------------------------------------------------------------------------------
    def read(self, text: str | None) -> Reading:
        """Every finding the text names, the regions it calls normal, and whether it says all is normal."""
        mentions: list[Mention] = []
        regions: set[str] = set()
        glob = False
        for sentence in sentences_of(text or ""):
            got = self._memo.get(sentence)
            if got is None:
                got = self._memo[sentence] = self._sentence(sentence)
                if len(self._memo) > 200_000:
                    self._memo.clear()
            mentions.extend(got[0])
            regions |= got[1]
            glob = glob or got[2]
        return Reading(tuple(mentions), frozenset(regions), glob)

    def region_of(self, entry: str) -> str | None:
        """The perception-tree region of an entry."""
        return self._regions.get(entry)

    # --- one sentence ---------------------------------------------------------------------------------------
    def _sentence(self, sentence: str) -> tuple[tuple[Mention, ...], frozenset[str], bool]:
        toks = tokens_of(sentence)
        if not toks:
            return (), frozenset(), False
        stems = [stem(t) for t in toks]
        seg, clause = [], []
        s = c = 0
        for k, t in enumerate(toks):
            if t in W.CLAUSE_BREAK:
                c += 1
                s += 1
            elif t in W.SEGMENT_BREAK and not (t == "," and k and toks[k - 1] in W.LIST_ADJECTIVES) and not (
                t == "and" and k and toks[k - 1] in W.LIST_ADJECTIVES and toks[k + 1 : k + 2] and
                toks[k + 1] in W.LIST_ADJECTIVES
            ) and not (
                t == "and" and k and toks[k - 1] in W.SHARED_PLACES and toks[k + 1 : k + 2] and
                toks[k + 1] in W.SIDE_WORDS and toks[k + 2 : k + 3] and toks[k + 2] in W.SHARED_PLACES
            ):  # "a tortuous, calcified aorta"; "the aorta is tortuous and ectatic": one noun's adjectives; "the
                # right lower and left upper lobes": one noun's places
                s += 1
            seg.append(s)
            clause.append(c)
        trig = self._find_triggers(toks)
        matches = self._match(toks, stems, seg)
        neg = self._scopes(toks, trig, "pre_neg", "post_neg")
        hedge = self._scopes(toks, trig, "pre_hedge", "post_hedge")
        attrib = {i for start, end, kind in trig if kind == "attrib" for i in range(start, end)}
        history = [(start, clause[start]) for start, _, kind in trig if kind == "history"]
        mentions: list[Mention] = []
        glob = False
        kept: list[tuple[int, int, str, set[int], bool]] = []
        findings_at = frozenset(i for _, _, entry, p, structure in matches if not structure and entry != "no_finding"
                                for i in p)
        for start, end, entry, pos, structure in matches:
            state = None
            negated = any(i in neg for i in pos)
            hedged = any(i in hedge for i in pos)
            if structure:
                state = self._structure_state(stems, seg, clause, pos, findings_at)
                if state is None:
                    continue
                if state == "normal":
                    negated = True
                elif state == "unassessed":
                    hedged = True  # "heart size is difficult to assess": neither normal nor enlarged
                qualifiers = [i for i in range(len(toks)) if seg[i] == seg[start] and stems[i] in W.ABNORMAL]
                negated = negated or any(i in neg for i in qualifiers)
                hedged = hedged or any(i in hedge for i in qualifiers)
            if entry == "no_finding":
                glob = glob or (not hedged and bool(pos))
                continue
            if not structure and not negated and self._said_normal(stems, seg, start, pos):
                negated = True  # "pulmonary vascular engorgement appears within normal limits"
            status = "absent" if negated else "uncertain" if hedged else "present"
            kept.append((start, end, entry, pos, status == "absent"))
            m = self._mention(
                sentence, toks, stems, seg, clause, matches, start, end, entry, pos, status, attrib, history
            )
            if state == "unassessed":
                m = replace(m, context="unassessed")  # supports a hedged finding, states none
            mentions.append(m)
        mentions = self._alternatives(toks, clause, kept, mentions)
        regions = self._normal_regions(toks, stems, seg, neg, hedge, kept)
        return tuple(mentions), frozenset(regions), glob

    def _find_triggers(self, toks: list[str]) -> list[tuple[int, int, str]]:
        """Scope triggers, longest first and never overlapping; attribution and history markers beside them."""
        found, used = [], set()
        for i, t in enumerate(toks):
            scoped = False
            for phrase, kind in self._triggers.get(t, ()):
                n = len(phrase)
                if tuple(toks[i : i + n]) != phrase:
                    continue
                if kind in ("attrib", "history"):
                    found.append((i, i + n, kind))
                elif not scoped and not used.intersection(range(i, i + n)):
                    used.update(range(i, i + n))
                    found.append((i, i + n, kind))
                    scoped = True
        return found

    def _scopes(self, toks: list[str], trig: list[tuple[int, int, str]], pre: str, post: str) -> set[int]:
        ends = {i for start, end, kind in trig if kind == "term" for i in range(start, end)}
        covered: set[int] = set()
        n = len(toks)
        hedge = pre == "pre_hedge"
        for start, end, kind in trig:
            if kind == "both_neg" and pre == "pre_neg":
                terms = [t for t in trig if t[2] == "term"]
                covered |= self._scopes(toks, [(start, end, "pre_neg"), (start, end, "post_neg"), *terms], pre, post)
                continue
            if kind == pre:
                covered.update(range(start, end))
                last_break = None
                for j in range(end, min(n, end + 14)):
                    t = toks[j]
                    if t in W.CLAUSE_BREAK or j in ends:
                        break
                    nxt = toks[j + 1] if j + 1 < n else ""
                    if t in (",", "and", "but", "with") and nxt in W.NEW_SUBJECT:
                        break
                    if hedge and t == ",":  # a hedge governs its own phrase, not a list after a comma
                        break
                    if t in W.VERBS and nxt not in W.EXISTENTIAL and j > end:
                        if last_break is not None:
                            covered.difference_update(range(last_break, j))
                        break
                    if t == ",":
                        last_break = j
                    covered.add(j)
            elif kind == post:
                covered.update(range(start, end))
                j = start - 1
                while j >= 0 and toks[j] in W.VERBS:  # its own verb: "effusion *is* not seen"
                    j -= 1
                stop = max(-1, j - 16)
                span = []
                while j > stop:
                    t = toks[j]
                    if t in W.CLAUSE_BREAK or j in ends or t in W.VERBS:
                        break
                    span.append(j)
                    j -= 1
                if j > stop and toks[j] in W.VERBS:  # a verb of an earlier clause: start after its comma
                    span = [k for k in span if not any(toks[m] == "," for m in range(j, k))]
                covered.update(span)
        return covered

    def _match(self, toks: list[str], stems: list[str], seg: list[int]) -> list[tuple[int, int, str, set[int], bool]]:
        cands: list[tuple[int, int, int, str, tuple[int, ...], bool]] = []
        by_seg: dict[int, list[int]] = {}
        for i, t in enumerate(toks):
            if t not in W.SEGMENT_BREAK and t not in W.CLAUSE_BREAK:
                by_seg.setdefault(seg[i], []).append(i)
        for positions in by_seg.values():
            where: dict[str, list[int]] = {}
            for i in positions:
                where.setdefault(stems[i], []).append(i)
            seen: set[int] = set()
            have = where.keys()
            for st in where:
                for k in self._by_stem.get(st, ()):
                    if k in seen:
                        continue
                    seen.add(k)
                    term = self._terms[k]
                    if not term.stems <= have:
                        continue
                    best = _window([where[x] for x in term.order])
                    # in the term's own order a few words may come between; out of order, fewer
                    slack = 3 if best and (term.n > 2 or list(best[2]) == sorted(best[2])) else 2
                    if best is None:
                        continue
                    # words that only place the finding ("of the right posterolateral 7th rib", "is seen within
                    # the") do not count against the window, up to a few of them
                    raw = best[1] - best[0] + 1
                    between = [toks[i] for i in range(best[0], best[1] + 1) if i not in best[2]]
                    width = raw if W.FILLER_STOP.intersection(between) else raw - sum(map(_filler, between))
                    if width <= term.n + slack and raw <= term.n + slack + W.FILLER_MAX:
                        cands.append((-term.n, best[1] - best[0], best[0], term.entry, best[2], term.structure))
        cands.sort()
        used: set[int] = set()
        taken: set[tuple[int, ...]] = set()
        named: set[tuple[str, tuple[int, ...]]] = set()
        out = []
        for _, _, _, entry, pos, structure in cands:
            key = tuple(sorted(pos))
            shared = {i for i in used.intersection(pos) if stems[i] not in W.SHARED_NOUNS}
            if (entry, key) in named or (shared and key not in taken):
                continue  # overlaps a longer match; the same words as one already taken name both entries
            # (the aorta may be shared: "the aorta is mildly tortuous and ectatic", "tortuous and dilated aorta")
            used.update(pos)
            taken.add(key)
            named.add((entry, key))
            out.append((min(pos), max(pos) + 1, entry, set(pos), structure))
        out.sort()
        return out

    @staticmethod
    def _said_normal(stems: list[str], seg: list[int], start: int, pos: set[int]) -> bool:
        after = [stems[i] for i in range(start, len(stems)) if seg[i] == seg[start] and i not in pos]
        return "limit" in after and "normal" in after and not set(after) & W.ABNORMAL

    @staticmethod
    def _structure_state(stems: list[str], seg: list[int], clause: list[int], pos: set[int],
                         others: frozenset[int] = frozenset()) -> str | None:
        s = seg[min(pos)]
        c = clause[min(pos)]
        # a grade word on another finding's term is that finding's ("cardiomediastinal silhouette demonstrates
        # stable mild tortuosity of the thoracic aorta": nothing is said of the silhouette's size)
        own = [i for i in range(len(stems)) if i not in pos and i not in others and i + 1 not in others]
        in_seg = [stems[i] for i in own if seg[i] == s]
        in_clause = [stems[i] for i in own if clause[i] == c]
        if any(w in W.UNASSESSED for w in in_clause):
            return "unassessed"
        if any(w in W.ABNORMAL for w in in_seg):
            return "abnormal"
        if any(w in W.NORMAL for w in in_seg):
            return "normal"
        if any(w in W.ABNORMAL for w in in_clause):
            return None
        if any(w in W.NORMAL for w in in_clause):
            return "normal"
        return None

    def _mention(
        self, sentence, toks, stems, seg, clause, matches, start, end, entry, pos, status, attrib, history
    ) -> Mention:
        c = clause[start]
        taken = {seg[m[0]] for m in matches if clause[m[0]] == c}
        near = {seg[start]} | {seg[i] for i in range(len(toks)) if clause[i] == c and seg[i] not in taken}
        idx = [i for i in range(len(toks)) if seg[i] in near and clause[i] == c]
        own = {stems[i] for i in pos}
        sides: set[str] = set()
        levels: set[int] = set()
        side_levels: set[tuple[str, int]] = set()
        for i in idx:
            t = toks[i]
            side = _side_word(toks, i)
            nxt = stems[i + 1] if i + 1 < len(toks) else ""
            prev = toks[i - 1] if i else ""
            if t == "left" and (i + 1 == len(toks) or toks[i + 1] in W.CLAUSE_BREAK) and prev not in W.SIDE_LEAD:
                side = None  # "only trace blunting of the angle left": what remains, not a side
            if side and (nxt not in W.ANATOMY or nxt in own):
                sides.add(side)
            if (t, toks[i + 1] if i + 1 < len(toks) else "") in W.SIDE_PHRASES:
                sides.add(W.SIDE_PHRASES[(t, toks[i + 1])])
            if t in ("greater", "worse", "larger") and toks[i + 1 : i + 3] in (["at", "the"], ["on", "the"]):
                sides.add("bilateral")  # "apical capping slightly greater at the left": both sides, one more
            if t in W.GRADE_WORDS and i not in pos:
                levels.update(W.GRADE_WORDS[t])
                paired = W.SIDE_WORDS.get(toks[i + 1]) if i + 1 < len(toks) else None
                if paired in ("left", "right"):
                    side_levels.update((paired, lv) for lv in W.GRADE_WORDS[t])
        if not sides:  # "densities in the left base may be … atelectasis": the side of what it explains
            for i in range(len(toks)):
                side = _side_word(toks, i)
                nxt = stems[i + 1] if i + 1 < len(toks) else ""
                if clause[i] == c and side and (nxt not in W.ANATOMY or nxt in own):
                    sides.add(side)
        qualified = status == "absent" and any(
            toks[i] in W.GRADE_WORDS or toks[i] in ("significant", "substantial", "sizable", "appreciable")
            for i in range(max(0, start - 3), start)
        )
        context = "current"
        clause_toks = [toks[i] for i in range(len(toks)) if clause[i] == c]
        clause_stems = {stems[i] for i in range(len(toks)) if clause[i] == c and i not in pos}
        if entry == "surgical_clips":
            if clause_stems & {
                "clavicle",
                "clavicular",
                "rib",
                "humeral",
                "shoulder",
                "spine",
                "spinal",
                "bone",
                "osseous",
                "cervical",
                "thoracic",
            }:
                context = "attributed"
        elif entry in W.LUNG_LIKE:
            # the density is explained by what follows an attribution word: "… represents a healing fracture"
            after = [i for i in attrib if clause[i] == c and i >= end]
            if after and {stems[i] for i in range(min(after), len(toks)) if clause[i] == c} & W.NON_LUNG:
                context = "attributed"
            elif {stems[i] for i in range(len(toks)) if seg[i] == seg[start] and i not in pos} & W.NOT_LUNG_HERE:
                context = "attributed"  # "soft tissue density", "rib density", "paratracheal density"
        if context == "current" and not (set(clause_toks) & W.CURRENT):
            if set(clause_toks) & W.OTHER_MODALITY or any(hc == c and hs < start for hs, hc in history):
                context = "historical"
        return Mention(entry, status, tuple(sorted(sides)), tuple(sorted(levels)), context, qualified, sentence,
                       tuple(sorted(side_levels)))

    @staticmethod
    def _alternatives(toks, clause, kept, mentions: list[Mention]) -> list[Mention]:
        """Two findings joined by "or" / "versus" in one clause, neither negated: both uncertain."""
        out = list(mentions)
        for a in range(len(kept) - 1):
            b = a + 1
            sa, ea, xa, _, na = kept[a]
            sb, _, xb, _, nb = kept[b]
            if xa == xb or na or nb or clause[sa] != clause[sb] or sb - ea > 4:
                continue
            if any(toks[i] in W.ALTERNATIVE for i in range(ea, sb)):
                for k in (a, b):
                    if out[k].status == "present":
                        m = out[k]
                        out[k] = Mention(m.entry, "uncertain", m.sides, m.levels, m.context, m.qualified, m.sentence,
                                     m.side_levels)
        return out

    def _normal_regions(self, toks, stems, seg, neg, hedge, kept) -> set[str]:
        regions: set[str] = set()
        abnormal_segs = {seg[s] for s, _, _, _, absent in kept if not absent}
        by_seg: dict[int, list[int]] = {}
        for i in range(len(toks)):
            by_seg.setdefault(seg[i], []).append(i)
        for s, idx in by_seg.items():
            words = {stems[i] for i in idx}
            negated = any(i in neg for i in idx)
            if s in abnormal_segs or any(i in hedge for i in idx) or words & W.ABNORMAL:
                continue
            for region, subjects in W.REGION_SUBJECTS.items():
                if not words & subjects:
                    continue
                says_normal = any(stems[i] in W.NORMAL and i not in neg for i in idx)
                no_abnormality = negated and words & {"abnormality", "disease", "lesion", "finding", "process"}
                if says_normal or no_abnormality:
                    regions.add(region)
            plain_no = {toks[i] for i in idx} & {"no", "without", "not", "none"}
            if negated and plain_no and words & {"device", "line", "tube", "catheter", "hardware", "wire", "lead"}:
                regions.add("lines_devices")
        return regions


def _side_word(toks: list[str], i: int) -> str | None:
    """The side a token gives; "both" of two views gives none ("identified both on PA and lateral views")."""
    if toks[i] == "both" and set(toks[i + 1 : i + 4]) & W.VIEWS:
        return None
    return W.SIDE_WORDS.get(toks[i])


_ORDINAL = re.compile(r"\d+(st|nd|rd|th)?")


def _filler(token: str) -> bool:
    """A word that places or links a finding without naming anything: "the", "right", "posterolateral", "7th"."""
    return token in W.FILLER or token in W.SIDE_WORDS or _ORDINAL.fullmatch(token) is not None


def _window(lists: list[list[int]]) -> tuple[int, int, tuple[int, ...]] | None:
    """The narrowest span holding one position from each list (and those positions)."""
    if len(lists) == 1:
        p = lists[0][0]
        return p, p, (p,)
    best = None
    for anchor in lists[0]:
        picks = [anchor]
        for other in lists[1:]:
            picks.append(min(other, key=lambda q: abs(q - anchor)))
        lo, hi = min(picks), max(picks)
        if len(set(picks)) == len(picks) and (best is None or hi - lo < best[1] - best[0]):
            best = (lo, hi, tuple(picks))
    return best

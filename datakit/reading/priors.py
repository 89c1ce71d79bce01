"""Sentences of a report that compare with an earlier study, and the report without them (issue 15).

A model trained on one study's images cannot see a prior study, so a target report that says "unchanged",
"again seen", "has resolved" or "compared with the prior" teaches it to invent comparisons. CXR-PRO (Ramesh,
Chi and Rajpurkar, "Improving radiology report generation systems by removing hallucinated references to
non-existent priors", arXiv:2210.06340, 2022; the dataset: PhysioNet, doi:10.13026/frag-yn96) removed them
from MIMIC-CXR by rewriting reports with a few-shot GPT-3 prompt and by deleting the words a BioBERT token
classifier marks as prior references. :func:`strip_priors` does the same job with rules and no model: it
deletes the comparison words and clauses where what is left still states the current finding ("Unchanged
small left effusion." → "Small left effusion."), and drops the sentence where the comparison *is* the
statement ("The effusion has resolved.", "Stable cardiomediastinal silhouette.", "Interval improvement.").

What counts as a comparison is precise: "stable", "unchanged", "persistent", "again seen", "redemonstrated",
"new", "no longer", "interval …", "has resolved", "improved", "worsened", "increased in size", "since the
prior", "compared with the prior study", "as before"; "prior" or "previous" only beside a study word (a
"prior CABG" or "sequela of prior granulomatous disease" is history, not a comparison). A bare "no
pneumothorax" compares with nothing.
"""

from __future__ import annotations

import re

_STUDY = (
    r"(?:study|studies|exam|exams|examination|examinations|radiograph|radiographs|film|films|image|images|"
    r"imaging|chest x-?ray|x-?rays?|ct|cxr|one|comparison)"
)
_EARLIER = r"(?:prior|previous|previously|earlier|recent|most recent|last|preceding|outside|old)"
# phrases that compare with an earlier study (matched case-insensitively on word boundaries)
_COMPARISON = [
    r"compared (?:with|to)\b",
    r"\bcomparison\b",
    rf"\b{_EARLIER}\s+(?:\w+\s+)?{_STUDY}\b",
    rf"\bsince\s+(?:the\s+)?(?:{_EARLIER}|last|\d)",
    r"\bas before\b",
    r"\bagain\b",
    r"\bredemonstrat\w*",
    r"\bre-demonstrat\w*",
    r"\bstable\b",
    r"\bstably\b",
    r"\bunchanged\b",
    r"\bunaltered\b",
    r"\bpersist\w*",
    r"\bnew\b",
    r"\bnewly\b",
    r"\bno longer\b",
    r"\binterval\w*",
    r"\bresolv\w*",
    r"\bresolution\b",
    r"\bimprov\w*",
    r"\bworse\w*",
    r"\bprogress\w*",
    r"\bregress\w*",
    r"\b(?:has|have|had)\s+(?:\w+\s+)?(?:increased|decreased|enlarged|grown|developed|cleared|changed)\b",
    r"\b(?:increas|decreas)\w*\s+in\s+(?:size|extent|conspicuity)\b",
    r"\b(?:appears?|appearing|is|are|has|have)\s+(?:slightly\s+|mildly\s+|markedly\s+)?(?:increased|decreased)\b"
    r"(?!\s+(?:density|opacity|opacities|interstitial|markings|lung|attenuation|lucency|radiodensity))",
    r"\b(?:increasing|decreasing)\b",
    r"\bno (?:significant |appreciable |substantial )?change\b",
    r"\bwithout (?:significant |interval )?change\b",
    r"\bremains?\b",
    r"\bremained\b",
    r"\bstill\b",
    r"\bcontinue[sd]?\b",
    r"\bcontinuing\b",
    r"\bsimilar(?:ly)?\s+(?:to|in|compared)\b",
    r"\bpreviously\b",
    r"\brecurren\w*",
    r"\bresidual\b",
]
_PRIOR = re.compile("|".join(f"(?:{p})" for p in _COMPARISON), re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])|\n\s*\n|\n(?=\s*\d+\.\s)")

# Words and clauses that only carry the comparison: deleting them leaves the current finding.
_CLAUSES = [
    rf",?\s*(?:when\s+|as\s+)?compared\s+(?:with|to)\s+(?:the\s+)?{_EARLIER}?\s*(?:\w+\s+)?{_STUDY}?(?:\s+(?:of|from|dated)\s+[\w/-]+)?",
    rf",?\s*(?:unchanged|stable|similar|not (?:significantly )?changed)\s+(?:from|since|compared (?:with|to)|to|"
    rf"relative to)\s+(?:the\s+)?{_EARLIER}?\s*(?:\w+\s+)?{_STUDY}",
    rf",?\s*since\s+(?:the\s+)?{_EARLIER}\s*(?:\w+\s+)?{_STUDY}?",
    rf",?\s*(?:from|on|than on|than)\s+(?:the\s+)?{_EARLIER}\s+(?:\w+\s+)?{_STUDY}",
    r",?\s*as before\b",
    r",?\s*and\s+(?:appears?|is|are)\s+(?:slightly\s+)?(?:increased|decreased|improved|worse|unchanged|stable)"
    r"(?:\s+in\s+(?:size|extent))?",
    r",?\s*(?:and\s+)?(?:unchanged|stable)(?=\s*[.;]|\s*$)",
    r"\bagain\s+(?=seen|noted|demonstrated|identified|visualized)",
]
_CLAUSE_RX = [re.compile(c, re.IGNORECASE) for c in _CLAUSES]
# Modifiers in front of a finding that only say it was there before ("Persistent small left effusion").
_LEADING = re.compile(
    r"^(?:(?:there\s+(?:is|are)\s+)?(?:a\s+)?)?(?:stable|unchanged|persistent|persisting|redemonstrated|"
    r"re-demonstrated|again seen|again noted|previously seen|previously noted|known|grossly stable|"
    r"grossly unchanged|overall stable|similar|new|newly seen|newly noted|residual)\s+"
    r"(?:appearance\s+of\s+(?:the\s+)?)?",
    re.IGNORECASE,
)
# After rewriting, a sentence must still say something: a finding word or a normal statement.
_CONTENT = re.compile(
    r"\b(?:effusion|pneumothorax|opacit|consolidation|atelecta|edema|nodule|mass|granuloma|cardiomegaly|"
    r"enlarg|widen|fracture|deformit|scoliosis|kyphosis|degenerative|osteophyt|spondylo|calcifi|scar|"
    r"thickening|emphysema|hyperinfla|tortu|ectati|hernia|catheter|tube|line|pacemaker|wire|clip|hardware|"
    r"device|port|picc|stent|elevat|infiltrat|airspace|air space|density|densities|lesion|adenopathy|"
    r"lymph|fibrosis|bronchiectasis|interstitial|markings|normal|clear|unremarkable|intact|within)",
    re.IGNORECASE,
)


def sentences(text: str) -> list[str]:
    """The sentences of a report, in order (at sentence ends, blank lines and numbered items)."""
    return [s.strip() for s in _SENTENCE.split(text or "") if s.strip()]


# Every comparison pattern holds one of these (lower case): a sentence with none is skipped without the regex,
# which is slow on its many alternatives.
_KEYS = (
    "compar",
    "since",
    "before",
    "again",
    "demonstrat",
    "stabl",
    "unchang",
    "unalter",
    "persist",
    "new",
    "longer",
    "interval",
    "resol",
    "improv",
    "worse",
    "progress",
    "regress",
    "increas",
    "decreas",
    "grown",
    "develop",
    "cleared",
    "change",
    "remain",
    "still",
    "continu",
    "similar",
    "previous",
    "recurren",
    "residual",
    "prior",
    "earlier",
    "recent",
    "last",
    "preceding",
    "outside",
    "old ",
    "enlarged",
)
KEYS_PATTERN = "|".join(_KEYS)  # plain words: the same pattern for re and for polars
_KEYS_RX = re.compile(KEYS_PATTERN)


def refers_to_prior(sentence: str) -> bool:
    """Whether the sentence compares with an earlier study."""
    return _KEYS_RX.search(sentence.lower()) is not None and _PRIOR.search(sentence) is not None


def prior_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that compare with an earlier study."""
    return [s for s in sentences(text) if refers_to_prior(s)]


def rewrite(sentence: str) -> str | None:
    """The sentence without its comparison, or None when nothing current would be left to say."""
    out = sentence
    for rx in _CLAUSE_RX:
        out = rx.sub("", out)
    out = _LEADING.sub("", out.strip())
    out = re.sub(r"\bremains\b", "is", out, flags=re.IGNORECASE)
    out = re.sub(r"\bremain\b", "are", out, flags=re.IGNORECASE)
    out = re.sub(r"\s{2,}", " ", out).strip(" ,;")
    out = re.sub(r"\s+([,.;])", r"\1", out)
    if not out or refers_to_prior(out):
        return None
    words = re.findall(r"[A-Za-z]+", out)
    if len(words) < 2 or not _CONTENT.search(out):
        return None
    out = out[0].upper() + out[1:]
    return out if out.endswith((".", "!", "?")) else out + "."


def strip_priors(text: str) -> str:
    """``text`` without its references to earlier studies: comparisons deleted, or their sentences dropped.

    Sentences that compare with nothing are kept word for word; paragraph breaks between kept sentences stay.
    """
    if not text:
        return text
    kept: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        out = []
        for sentence in sentences(paragraph):
            if not refers_to_prior(sentence):
                out.append(sentence)
            elif (new := rewrite(sentence)) is not None:
                out.append(new)
        if out:
            kept.append(" ".join(out))
    return "\n\n".join(kept)

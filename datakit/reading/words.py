"""The words a reader of a report uses for a finding's side and grade: shared by the teacher and the checks."""

from __future__ import annotations

import re

# Graded scales the offline teacher understands; a word outside them is a descriptor, not a severity.
SIZE_SCALE = ("trace", "small", "moderate", "large")
DEGREE_SCALE = ("mild", "moderate", "severe")
_SEVERITY_ALIASES = {"tiny": "trace", "minimal": "mild", "marked": "severe", "massive": "large",
                     "small-to-moderate": "moderate", "moderate-to-large": "large", "mild-to-moderate": "moderate",
                     "mildly": "mild", "moderately": "moderate", "severely": "severe", "markedly": "severe",
                     # "slightly large" is a mild grade, not a large one
                     "slight": "mild", "slightly": "mild",
                     # "advanced degenerative change", "extremely low lung volumes" (the report's word is kept)
                     "advanced": "severe", "extremely": "severe"}
_KEPT_WORDS = frozenset({"advanced", "extremely"})
SEVERITY_WORDS = re.compile(
    r"\b(" + "|".join(sorted({*SIZE_SCALE, *DEGREE_SCALE, *_SEVERITY_ALIASES}, key=len, reverse=True)) + r")\b"
)
# ("both" of two views is no side: "identified both on PA and lateral views")
_SIDE = re.compile(r"\b(left|right|bilateral|bilaterally|both(?![\s-]+(?:on[\s-]+|in[\s-]+)?(?:the[\s-]+)?"
                   r"(?:pa|ap|frontal|lateral|views?|projections?|films?|images?|exams?|studies|examinations?)\b)|"
                   r"bibasilar|bibasal|bibasalar|biapical|bihilar|"
                   r"lingula|lingular|middle lobe|rightward|leftward|dextroscoliosis|dextrocurvature|dextroconvex|"
                   r"levoscoliosis|levocurvature|levoconvex)\b")
# lobes that exist on one side only: the lingula is left, the middle lobe right; a shift towards a side is that side
_ONE_SIDED = {"lingula": "left", "lingular": "left", "middle lobe": "right", "rightward": "right",
              "leftward": "left", "dextroscoliosis": "right", "dextrocurvature": "right", "dextroconvex": "right",
              "levoscoliosis": "left", "levocurvature": "left", "levoconvex": "left"}


_PREDOMINANT = re.compile(r"\b(?:greater|worse|more|larger)\s+(?:at|on)\s+the\s+(?:left|right)\b")
_TOWARDS = re.compile(r"\b(left|right)[\s-]+to[\s-]+(left|right)\b")


def severity_of(sentence: str) -> str | None:
    """The first grade word of the sentence, mapped onto the scales.

    A range takes its upper grade, as "small-to-moderate" does: "small to moderate sized effusions" and "mildly to
    moderately enlarged" are moderate, never the smaller grade alone.
    """
    low = sentence.lower()
    m = SEVERITY_WORDS.search(low)
    if not m:
        return None
    upper = _upper(low, m)
    word = upper or m.group(1)
    return _SEVERITY_ALIASES.get(word, word)


def _upper(low: str, m: re.Match[str]) -> str:
    """The upper grade of a range that starts at ``m`` ("mild to moderate", "moderate-severe"), or ""."""
    upper = _RANGE.match(low, m.end())
    if upper and SEVERITY_WORDS.fullmatch(upper.group(1)):
        return upper.group(1)
    # two grades side by side on one scale, the smaller first: "moderate severe hyperexpansion"
    bare = _BARE_RANGE.match(low, m.end())
    for scale in (DEGREE_SCALE, SIZE_SCALE):
        if bare and m.group(1) in scale and bare.group(1) in scale \
                and scale.index(bare.group(1)) > scale.index(m.group(1)):
            return bare.group(1)
    return ""


def grade_range(sentence: str) -> str:
    """The report's own words for a graded range ("mild to moderate"), or "" when it gives a single grade."""
    low = sentence.lower()
    m = SEVERITY_WORDS.search(low)
    upper = _upper(low, m) if m else ""
    if not upper:
        # a word the scale reads as its top grade but the report's own is more exact: "advanced", "extremely"
        return m.group(1) if m and m.group(1) in _KEPT_WORDS else ""
    # the report's own words, adverbs as adjectives ("mildly to moderately" → "mild to moderate", "marked" stays)
    lo, hi = (w[:-2] if w.endswith("ly") else w for w in (m.group(1), upper))
    return f"{lo} to {hi}" if lo != hi else ""


_RANGE = re.compile(r"\s*(?:-\s*|\s)to(?:\s*-\s*|\s+)(\w+)")
_BARE_RANGE = re.compile(r"(?:\s*-\s*|\s+)(\w+)")


def laterality_of(sentence: str) -> str:
    """left, right, bilateral or none, from the sentence's side words ("right-to-left shift" is to the left)."""
    low = _TOWARDS.sub(lambda m: " " * (m.start(2) - m.start()) + m.group(2), sentence.lower())
    if _PREDOMINANT.search(low):
        return "bilateral"  # "apical capping slightly greater at the left": both sides, the left more
    sides = {_ONE_SIDED.get(m.group(1), m.group(1)) for m in _SIDE.finditer(low)}
    if not sides:
        return "none"
    both = {"bilateral", "bilaterally", "both", "bibasilar", "bibasal", "bibasalar", "biapical", "bihilar"}
    if sides & both or {"left", "right"} <= sides:
        return "bilateral"
    return sides.pop()

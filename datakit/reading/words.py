"""The words a reader of a report uses for a finding's side and grade: shared by the teacher and the checks."""

from __future__ import annotations

import re

# Graded scales the offline teacher understands; a word outside them is a descriptor, not a severity.
SIZE_SCALE = ("trace", "small", "moderate", "large")
DEGREE_SCALE = ("mild", "moderate", "severe")
_SEVERITY_ALIASES = {"tiny": "trace", "minimal": "mild", "marked": "severe", "massive": "large",
                     "small-to-moderate": "moderate", "moderate-to-large": "large", "mild-to-moderate": "moderate",
                     "mildly": "mild", "moderately": "moderate", "severely": "severe", "markedly": "severe"}
SEVERITY_WORDS = re.compile(
    r"\b(" + "|".join(sorted({*SIZE_SCALE, *DEGREE_SCALE, *_SEVERITY_ALIASES}, key=len, reverse=True)) + r")\b"
)
_SIDE = re.compile(r"\b(left|right|bilateral|bilaterally|both|bibasilar|bibasal|bibasalar)\b")


def severity_of(sentence: str) -> str | None:
    """The first grade word of the sentence, mapped onto the scales."""
    m = SEVERITY_WORDS.search(sentence.lower())
    if not m:
        return None
    word = m.group(1)
    return _SEVERITY_ALIASES.get(word, word)


def laterality_of(sentence: str) -> str:
    """left, right, bilateral or none, from the sentence's side words."""
    sides = {m.group(1) for m in _SIDE.finditer(sentence.lower())}
    if not sides:
        return "none"
    if sides & {"bilateral", "bilaterally", "both", "bibasilar", "bibasal", "bibasalar"} or {"left", "right"} <= sides:
        return "bilateral"
    return sides.pop()

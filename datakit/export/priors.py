"""``export.prior_sentences = "remove"``: leave out report sentences about prior studies.

One study's images cannot show a prior study, so a report sentence comparing with one teaches the model to
invent history. The finder here is a stand-in: sentences holding one of ``validate.prior_phrases``. It is the
one place to swap for the reading package's own finder when that lands.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def prior_sentence_finder(phrases: list[str]) -> Callable[[str], bool]:
    """Whether a sentence refers to a prior study (any of ``phrases``, case-insensitive, on word bounds)."""
    if not phrases:
        return lambda _sentence: False
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)
    return lambda sentence: bool(pattern.search(sentence))


def prior_remover(phrases: list[str]) -> Callable[[str], str]:
    """A function that drops the prior-referring sentences of a text and keeps the rest as written."""
    is_prior = prior_sentence_finder(phrases)

    def remove(text: str) -> str:
        if not text:
            return text
        kept = [s for s in _SENTENCE.split(text.strip()) if s and not is_prior(s)]
        return " ".join(kept)

    return remove

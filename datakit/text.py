"""Small text helpers shared by the stages."""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")
_PLACEHOLDER = re.compile(r"_{3,}|\bX{4}\b", re.IGNORECASE)
PLACEHOLDER = "___"


def clean(text: str | None) -> str:
    """Collapse the hard wraps and runs of whitespace of a report section into single spaces."""
    if not text:
        return ""
    return _WS.sub(" ", text).strip()


def normalize_placeholders(text: str) -> str:
    """MIMIC's ``___`` and IU-Xray's ``XXXX`` (FACTS.md §3.1) become one placeholder token."""
    return _PLACEHOLDER.sub(PLACEHOLDER, text)


def split_sentences(text: str) -> list[str]:
    """Split cleaned report text into sentences (on '.', '?', '!' followed by space, and on numbered items)."""
    text = re.sub(r"(?:(?<=\s)|^)\d{1,2}[.)]\s+", "", text)  # "1. " / "2) " list numbering
    parts = re.split(r"(?<=[.?!])\s+(?=[A-Z0-9_])", text)
    return [p.strip() for p in parts if p.strip()]

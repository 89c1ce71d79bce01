"""Small text helpers shared by the stages."""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")


def clean(text: str | None) -> str:
    """Collapse the hard wraps and runs of whitespace of a report section into single spaces."""
    if not text:
        return ""
    return _WS.sub(" ", text).strip()

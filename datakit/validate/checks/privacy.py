"""Check 6, privacy: no dates, times, phone numbers, record numbers or names in the think text or the report.

The datasets' de-identification placeholders are fine: MIMIC's ``___`` and IU-Xray's ``XXXX``
(Demner-Fushman et al., JAMIA 2016), also after a title ("Dr. ___"). Measurements and anatomy ("4 cm",
"2.5 mm", "T7", "5th rib", "1:2") are not identifiers. A cheap polars pre-filter picks the texts that could
hold one; precise patterns (Python ``re``, with look-arounds) then find and quote each hit.

Codes: ``phi_date``, ``phi_phone``, ``phi_record_number``, ``phi_name`` (errors) and ``phi_time`` (a warning:
clock times are not identifiers under HIPAA Safe Harbor, and de-identified reports keep them in communication
statements; make it an error with ``validate.severity``).
"""

from __future__ import annotations

import re

import polars as pl

from datakit.validate.context import Context, ascii_boundaries
from datakit.validate.registry import check, no_problems

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_TITLE = r"\b(?:Dr|Mr|Mrs|Ms|Miss|Prof|Doctor)\.?"

PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "phi_date": [
        re.compile(r"(?<![\d.])\d{1,2}[/-]\d{1,2}[/-](?:\d{4}|\d{2})(?![\d/])"),
        re.compile(r"(?<!\d)(?:19|20)\d{2}[/-]\d{1,2}[/-]\d{1,2}(?!\d)"),
        re.compile(r"(?<![\d.])\d{1,2}\.\d{1,2}\.(?:19|20)\d{2}(?!\d)"),
        re.compile(
            rf"\b{_MONTH}\.?\s+(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?(?:,?\s+(?:19|20)\d{{2}})?"
            r"(?!\s*(?:cm|mm|%|x\b|\d))\b"
        ),
        re.compile(
            rf"\b(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b(?:,?\s+(?:19|20)\d{{2}})?"
        ),
        re.compile(rf"\b{_MONTH}\s+(?:19|20)\d{{2}}\b"),
    ],
    "phi_time": [
        re.compile(
            r"(?<![\d:])(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?:\s*[ap]\.?\s?m\b\.?)?(?![\d:])", re.I
        ),
        re.compile(r"(?<![\d.:])(?:1[0-2]|0?[1-9])\s*[ap]\.\s?m\.", re.I),
        re.compile(r"(?<![\d.:])(?:1[0-2]|0?[1-9])\s*[ap]m\b", re.I),
        re.compile(r"(?<![\d.])(?:[01]\d|2[0-3])[0-5]\d\s*(?:hours|hrs|h)\b", re.I),
    ],
    "phi_phone": [
        re.compile(r"(?<![\d.])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?![\d.])"),
        re.compile(
            r"\b(?:pager|phone|tel|telephone|beeper|ext|extension)\.?\s*(?:#|no\.?|number)?\s*:?\s*\d{3,}",
            re.I,
        ),
    ],
    "phi_record_number": [
        re.compile(r"(?<![\d.,])\d{6,}(?![\d.,]\d)"),
        re.compile(
            r"\b(?:MRN|medical\s+record(?:\s+number)?|record\s+(?:number|no\.?)|accession(?:\s+(?:number|no\.?))?"
            r"|acc\s*#|unit\s+no\.?|patient\s+id)\s*[:#]?\s*[A-Z]*-?\d{3,}",
            re.I,
        ),
    ],
    "phi_name": [
        # a title and a capitalised word; "Dr. ___" and "Dr. XXXX" (placeholders) do not match
        re.compile(rf"{_TITLE}\s+(?!X{{2,}}\b)[A-Z][a-zA-Z'-]+"),
    ],
}
WHAT = {
    "phi_date": "a date",
    "phi_time": "a time",
    "phi_phone": "a phone number",
    "phi_record_number": "a record number",
    "phi_name": "a name",
}
# Pre-filter for polars: a superset of the patterns above (its Rust regex has no look-arounds), used with
# ASCII word boundaries. ASCII classes ([0-9], not \d) keep the regex small: Unicode \d and \s made it 600
# times slower.
_S = r"[ \t\r\n]"
_MONTHS = "(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
PREFILTER = "|".join(
    [
        r"[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{2,4}",
        r"[0-9]{4}[/-][0-9]{1,2}[/-][0-9]{1,2}",
        rf"{_MONTHS}[a-z]*\.?{_S}+[0-9]",
        rf"[0-9](?:st|nd|rd|th)?{_S}+(?:of{_S}+)?{_MONTHS}",
        r"[0-9]:[0-9][0-9]",
        rf"[0-9]{_S}*(?i:[ap]\.?{_S}?m)",
        rf"[0-9]{{4}}{_S}*(?i:hours|hrs|h)",
        r"[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4}",
        r"[0-9]{6}",
        r"\b(?i:pager|phone|tel|telephone|beeper|ext|extension|mrn|record|accession|acc|unit|patient)\b[^\n0-9]{0,24}"
        r"[0-9]{3}",
        rf"\b(?:Dr|Mr|Mrs|Ms|Miss|Prof|Doctor)\.?{_S}+[A-Z]",
    ]
)


def find_phi(text: str) -> list[tuple[str, str]]:
    """(code, matched text) for every identifier-like span in ``text``, in text order.

    Of overlapping spans the longest is kept ("MRN: 00123456" rather than "00123456").
    """
    spans = [
        (m.start(), m.end(), code, m.group(0))
        for code, patterns in PATTERNS.items()
        for rx in patterns
        for m in rx.finditer(text)
    ]
    kept: list[tuple[int, int, str, str]] = []
    for span in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
        if all(span[1] <= k[0] or span[0] >= k[1] for k in kept):
            kept.append(span)
    return [(code, found) for _, _, code, found in sorted(kept)]


@check(
    "privacy",
    codes={
        "phi_date": "error",
        "phi_time": "warning",
        "phi_phone": "error",
        "phi_record_number": "error",
        "phi_name": "error",
    },
)
def privacy(ctx: Context) -> pl.DataFrame:
    """No dates, times, phone numbers, record numbers or names beyond the datasets' placeholders."""
    texts = ctx.texts
    rx = ascii_boundaries(PREFILTER)
    maybe = texts.filter(pl.col("think").str.contains(rx) | pl.col("report").str.contains(rx))
    if maybe.height == 0:
        return no_problems()
    rows = []
    for sid, think, report in maybe.select("study_id", "think", "report").iter_rows():
        per_code: dict[str, list[str]] = {}
        for part, text in (("think text", think), ("report", report)):
            for code, span in find_phi(text or ""):
                per_code.setdefault(code, []).append(f'"{span}" in the {part}')
        for code, spans in per_code.items():
            rows.append((sid, code, f"{WHAT[code]}: {', '.join(spans[:4])}"))
    return pl.DataFrame(rows, schema={"study_id": pl.Utf8, "code": pl.Utf8, "message": pl.Utf8}, orient="row")

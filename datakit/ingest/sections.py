"""MIMIC-CXR report sections, reproducing the official parser's output (MIT-LCP/mimic-cxr txt/section_parser.py).

The official code is ``txt/section_parser.py`` and ``txt/create_section_files.py`` in ``MIT-LCP/mimic-cxr``. This is
our own implementation of the same algorithm, quirks included, because results must stay comparable with work
that used the official sections:

- a header is a newline + one space + a name of ``[A-Z ()/,-]`` + ``:`` + one whitespace character; a header on the
  first line is therefore never seen;
- after a header, the search for the next one resumes at the first newline *after the header's match*; because the
  match's trailing whitespace may itself be that newline, a header on the very next line can be swallowed;
- names are normalised by a synonym table, then by substring (impression, findings, history, comparison,
  addendum, in that order), then view titles ("CHEST, PA AND LATERAL") become ``findings``;
- blank findings/impression sections are dropped; a report with neither gets a ``last_paragraph`` section cut from
  its last section at the first blank line;
- the extracted text is the *last* occurrence of impression > findings > last_paragraph > comparison (stripped),
  after per-study rules (fixed spans, named sections) that the official code keeps for oddly formatted reports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_HEADER = re.compile(r"\n ([A-Z ()/,-]+):\s")

# Synonyms and typos of section names → canonical name. Values from the official parser's table (a fact table;
# the counts there rank how often each spelling occurs in MIMIC-CXR). Quirks kept on purpose: the typo "ndication"
# maps to impression, and "concusion"/"coinclusion" map to "conclusion", which is not mapped again.
SECTION_SYNONYMS: dict[str, str] = {
    "preamble": "preamble",
    "impression": "impression",
    "comparison": "comparison",
    "indication": "indication",
    "findings": "findings",
    "examination": "examination",
    "technique": "technique",
    "history": "history",
    "comparisons": "comparison",
    "clinical history": "history",
    "reason for examination": "indication",
    "notification": "notification",
    "reason for exam": "indication",
    "clinical information": "history",
    "exam": "examination",
    "clinical indication": "indication",
    "conclusion": "impression",
    "chest, two views": "findings",
    "recommendation(s)": "recommendations",
    "type of examination": "examination",
    "reference exam": "comparison",
    "patient history": "history",
    "addendum": "addendum",
    "comparison exam": "comparison",
    "date": "date",
    "comment": "comment",
    "findings and impression": "impression",
    "wet read": "wet read",
    "comparison film": "comparison",
    "recommendations": "recommendations",
    "findings/impression": "impression",
    "pfi": "history",
    "recommendation": "recommendations",
    "wetread": "wet read",
    "ndication": "impression",
    "impresson": "impression",
    "imprression": "impression",
    "imoression": "impression",
    "impressoin": "impression",
    "imprssion": "impression",
    "impresion": "impression",
    "imperssion": "impression",
    "mpression": "impression",
    "impession": "impression",
    "findings/ impression": "impression",
    "finding": "findings",
    "findins": "findings",
    "findindgs": "findings",
    "findgings": "findings",
    "findngs": "findings",
    "findnings": "findings",
    "finidngs": "findings",
    "idication": "indication",
    "reference findings": "findings",
    "comparision": "comparison",
    "comparsion": "comparison",
    "comparrison": "comparison",
    "comparisions": "comparison",
    "concusion": "conclusion",
    "coinclusion": "conclusion",
}
# A name containing one of these becomes that name (first match wins, in this order).
_MAIN_NAMES = ("impression", "findings", "history", "comparison", "addendum")
# A name containing a view phrase is a title over the findings ("CHEST, PA AND LATERAL:").
_VIEW_TITLE = re.compile(
    "chest|portable|pa and lateral|lateral and pa|ap and lateral|lateral and ap|frontal and|two views|"
    "frontal view|pa view|ap view|one view|lateral view|bone window|frontal upright|frontal semi-upright|"
    "ribs|pa and lat"
)
EXTRACTION_ORDER = ("impression", "findings", "last_paragraph", "comparison")
BLANK_LINE = "\n \n"


@lru_cache(maxsize=4096)
def normalize_section_name(name: str) -> str:
    """Map a raw header name to its canonical section name."""
    key = name.lower().strip()
    mapped = SECTION_SYNONYMS.get(key)
    if mapped is not None:
        return mapped
    for main in _MAIN_NAMES:
        if main in key:
            return main
    if _VIEW_TITLE.search(key):
        return "findings"
    return key


@dataclass(frozen=True)
class Sections:
    """A report split into sections: parallel lists of canonical names, texts and start offsets."""

    names: list[str]
    texts: list[str]
    starts: list[int]

    def last(self, name: str) -> str | None:
        """Text of the last section with this name, stripped; None if there is none."""
        for i in range(len(self.names) - 1, -1, -1):
            if self.names[i] == name:
                return self.texts[i].strip()
        return None


def split_sections(text: str) -> Sections:
    """Split a report into sections exactly as the official parser does."""
    match = _HEADER.search(text)
    if match is None:
        names, texts, starts = ["full report"], [text], [0]
    else:
        names, texts, starts = ["preamble"], [text[: match.start(1)]], [0]
        while match is not None:
            header = match.group(1)
            body = match.end()
            newline = text.find("\n", body)
            following = _HEADER.search(text, newline if newline != -1 else body)
            names.append(header)
            texts.append(text[body : following.start() if following else len(text)])
            starts.append(body)
            match = following
        names = [normalize_section_name(n) for n in names]

    keep = [i for i, n in enumerate(names) if n not in ("impression", "findings") or texts[i].strip()]
    if len(keep) != len(names):
        names = [names[i] for i in keep]
        texts = [texts[i] for i in keep]
        starts = [starts[i] for i in keep]

    if "impression" not in names and "findings" not in names and BLANK_LINE in texts[-1]:
        head, *rest = texts[-1].split(BLANK_LINE)
        texts[-1] = head
        texts.append(BLANK_LINE.join(rest))
        names.append("last_paragraph")
        starts.append(starts[-1] + len(head))
    return Sections(names, texts, starts)


@dataclass(frozen=True)
class CustomRules:
    """The official per-study rules for oddly formatted reports (keys are ``s<study_id>``)."""

    section_by_study: dict[str, str]
    span_by_study: dict[str, tuple[int, int]]

    @classmethod
    def load(cls, path: Path | None = None) -> CustomRules:
        """Load the rules shipped with datakit, or a file in the same JSON shape."""
        path = path or Path(__file__).parent / "data" / "mimic_cxr_custom_rules.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            section_by_study=dict(data["section_by_study"]),
            span_by_study={k: (int(v[0]), int(v[1])) for k, v in data["span_by_study"].items()},
        )


@dataclass(frozen=True)
class Extracted:
    """The sections a study keeps, and the text the official extraction picks."""

    indication: str | None
    comparison: str | None
    findings: str | None
    impression: str | None
    last_paragraph: str | None
    section: str | None  # which rule/section gave ``text``: a section name, "custom_span", or None
    text: str


def extract(text: str, study_key: str | None = None, rules: CustomRules | None = None) -> Extracted:
    """Section a report and pick its main text the way ``create_section_files.py`` does.

    ``study_key`` is the report's file stem (``s50414267``), used to look up the per-study rules.
    """
    sections = split_sections(text)
    columns = {n: sections.last(n) for n in ("indication", "comparison", "findings", "impression", "last_paragraph")}
    chosen: str | None = None
    main = ""
    if rules is not None and study_key is not None and study_key in rules.span_by_study:
        start, end = rules.span_by_study[study_key]
        chosen, main = "custom_span", text[start:end]
    elif rules is not None and study_key is not None and study_key in rules.section_by_study:
        name = rules.section_by_study[study_key]
        picked = sections.last(name)
        if picked is not None:
            chosen, main = name, picked
    if chosen is None:
        for name in EXTRACTION_ORDER:
            picked = sections.last(name) if name not in columns else columns[name]
            if picked is not None:
                chosen, main = name, picked
                break
    return Extracted(**columns, section=chosen, text=main)

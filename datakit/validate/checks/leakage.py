"""Check 5, leakage: think text that gives away it was written from the report or the labels, not the image.

- ``leaked_source``: a phrase of ``validate.leakage_phrases`` (+ ``extra_leakage_phrases``): "the report
  states", "ground truth", "according to the labels", "provided findings", …
- ``prior_reference``: a phrase of ``validate.prior_phrases`` ("compared with the prior", "again seen", …):
  the teacher sees one study's images, so a comparison with an earlier study can only come from the report.
- ``copies_report``: a sentence of the report of at least ``validate.copied_sentence_words`` words is also a
  sentence (or a clause after ':', ';' or '→') of the think text, case, digits and punctuation aside.

Only the think text is searched: the report is the study's own and may say "compared with the prior" rightly.
Phrases match case-insensitively, on word boundaries, with any run of whitespace between their words.
"""

from __future__ import annotations

import re

import polars as pl

from datakit.validate.context import Context, ascii_boundaries, sentence_units
from datakit.validate.registry import check, concat_problems, no_problems, problems


def phrase_regex(phrases: list[str]) -> str | None:
    """One case-insensitive regex matching any of the phrases.

    Written for :mod:`re`; polars gets it through :func:`~datakit.validate.context.ascii_boundaries`.
    """
    parts = []
    for phrase in phrases:
        words = phrase.split()
        if not words:
            continue
        body = r"[ \t\r\n]+".join(pl.escape_regex(w) for w in words)
        if re.match(r"\w", words[0]):
            body = r"\b" + body
        if re.search(r"\w$", words[-1]):
            body += r"\b"
        parts.append(body)
    return "(?i)(?:" + "|".join(parts) + ")" if parts else None


def _quote(text: str, start: int, end: int, width: int = 30) -> str:
    left = max(0, start - width)
    right = min(len(text), end + width)
    snippet = " ".join(text[left:right].split())
    return ("…" if left else "") + snippet + ("…" if right < len(text) else "")


def phrase_problems(texts: pl.DataFrame, phrases: list[str], code: str, what: str) -> pl.DataFrame:
    """A problem for every study whose ``think`` contains one of ``phrases``, quoting each hit."""
    pattern = phrase_regex(phrases)
    if pattern is None:
        return no_problems()
    hits = texts.filter(pl.col("think").str.contains(ascii_boundaries(pattern)))
    if hits.height == 0:
        return no_problems()
    rx = re.compile(pattern)
    rows = []
    for sid, think in hits.select("study_id", "think").iter_rows():
        found = [
            (" ".join(m.group(0).lower().split()), _quote(think, m.start(), m.end()))
            for m in rx.finditer(think)
        ]
        said = "; ".join(f'"{phrase}" in "{quote}"' for phrase, quote in found[:3])
        rows.append((sid, code, f"the think text {what}: {said}"))
    return pl.DataFrame(rows, schema={"study_id": pl.Utf8, "code": pl.Utf8, "message": pl.Utf8}, orient="row")


def copied_sentences(ctx: Context) -> pl.DataFrame:
    """``copies_report``: report sentences of at least N words that are also sentences of the think text."""
    n = ctx.config.copied_sentence_words
    report = ctx.texts.select(
        "study_id",
        pl.col("report").str.replace_all(r"(?:FINDINGS|IMPRESSION):[ \t\r\n]*", "\n").alias("report"),
    )
    sentences = sentence_units(report, "report", min_words=n, keep_text=True)
    copied = sentences.join(ctx.think_units.select("study_id", "h"), on=["study_id", "h"], how="semi")
    if copied.height == 0:
        return no_problems()
    copied = copied.group_by("study_id", maintain_order=True).agg(
        pl.col("text").str.strip_chars().first(), pl.len()
    )
    msg = pl.format(
        'the think text repeats {} sentence(s) of the report word for word, e.g. "{}"',
        pl.col("len"),
        pl.col("text").str.slice(0, 100),
    )
    return problems(copied, "copies_report", msg)


@check("leakage", codes={"leaked_source": "error", "prior_reference": "warning", "copies_report": "warning"})
def leakage(ctx: Context) -> pl.DataFrame:
    """No wording that reveals the trace was written from the report or the labels."""
    cfg = ctx.config
    return concat_problems(
        [
            phrase_problems(
                ctx.texts,
                [*cfg.leakage_phrases, *cfg.extra_leakage_phrases],
                "leaked_source",
                "refers to the report or labels it was written from",
            ),
            phrase_problems(ctx.texts, cfg.prior_phrases, "prior_reference", "compares with a prior study"),
            copied_sentences(ctx),
        ]
    )

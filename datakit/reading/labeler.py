"""A CheXpert-style labeler: report text → the 14 CheXpert labels.

Values: 1 positive, 0 negative, -1 uncertain, None not mentioned. Mention phrases are the knowledge base's
synonyms of each label's entries plus ``knowledge/labeler/lexicon.yaml`` (supplements, unmentions, anchors,
cues); the engine is in :mod:`datakit.reading.rules`. Validation uses it to check a trace against a
study's labels, eval for clinical-efficacy metrics.

Aggregation per label (chexpert-labeler stages/aggregate.py): positive beats uncertain beats negative; a
label with no mention is None, never 0. Two rules on top:

- **No Finding** is 1 when no finding other than Support Devices is 1 or -1 and no other abnormality the
  lexicon lists (emphysema, hernia, granuloma …) is mentioned as present or possible; else None. It is set by
  that rule only, as CheXpert does: phrases like "no acute cardiopulmonary process" or "normal chest" decide
  nothing by themselves, and they leave the other labels unlabelled. An empty text (or placeholders only) gets
  no label at all.
- **Heart failure**: a positive or uncertain "CHF"/"heart failure" mention makes Cardiomegaly -1 when the text
  says nothing about the heart's size. A report that does ("heart size is normal. Mild CHF.") keeps its own
  value: the explicit statement is about cardiomegaly, the rule only guesses.

Which text a study is labelled from is the ``sections`` option of :func:`label_studies`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from datakit.errors import ConfigError
from datakit.memo import Memo
from datakit.parallel import chunked, cores, given, map_chunks
from datakit.reading import rules
from datakit.reading.lexicon import Tables, build_tables, default_lexicon_path, read_lexicon
from datakit.tables import LABEL_COLUMNS

SECTIONS = ("extracted", "impression", "findings", "findings+impression", "report")
_FINDINGS = [c for c in LABEL_COLUMNS if c not in ("no_finding", "support_devices")]
_INDEX = {c: i for i, c in enumerate(LABEL_COLUMNS)}
_NULL = -128  # stands for "not mentioned" inside int8 arrays
_PRIORITY = {1: 3, -1: 2, 0: 1, _NULL: 0}
# label_many runs in-process below this many characters of text. Measured on 2 cores: one process labels about
# 3.5 million characters a second and a pool takes about 1.5 s to start (spawn, import, unpickle), so a pool
# of two only pays off beyond about 10 million characters (e.g. 140,000 impressions or 25,000 whole reports).
PARALLEL_MIN_CHARS = 10_000_000
CHUNK = 4_000


@dataclass(frozen=True)
class Mention:
    """One mention and how it was read, for review screens and validation messages.

    ``label`` is a label column, or None for an abnormality outside the 14 that only blocks No Finding.
    ``span`` indexes the text given to :meth:`Labeler.explain`; ``cue`` is the cue or qualifier that decided
    the status (None when nothing modified the mention).
    """

    label: str | None
    phrase: str
    span: tuple[int, int]
    status: int
    cue: str | None


class Labeler:
    """Report text → the 14 CheXpert labels. Build once and reuse: building compiles the phrase tables."""

    def __init__(self, kb: Any = None, lexicon_path: str | Path | None = None) -> None:
        if kb is None:
            from datakit.knowledge.kb import load_kb

            kb = load_kb()
        path = Path(lexicon_path) if lexicon_path is not None else default_lexicon_path()
        self.lexicon_path = path
        self.tables: Tables = build_tables(kb, read_lexicon(path), path)

    @property
    def fingerprint(self) -> str:
        """Hash of the knowledge, the lexicon and the engine version: changes whenever labels could."""
        return self.tables.fingerprint

    def _found(self, text: str | None) -> tuple[str, list[rules.Found]]:
        if not text:
            return "", []
        norm = rules.normalize(text)
        return norm, rules.find(self.tables, norm)

    def _codes(self, text: str | None) -> list[int]:
        """The 14 values of one text, with ``_NULL`` for not mentioned (what label_many stores)."""
        norm, found = self._found(text)
        values = [_NULL] * len(LABEL_COLUMNS)
        if not norm or not any(ch.isalnum() for ch in norm):
            return values
        blocked = False
        heart_failure = False
        anchors = self.tables.anchors
        for f in found:
            for label, st in rules.statuses(f, anchors).items():
                i = _INDEX[label]
                if _PRIORITY[st] > _PRIORITY[values[i]]:
                    values[i] = st
            if f.phrase.suppressor or f.phrase.heart_failure:
                own = rules.own_status(f)
                blocked = blocked or (f.phrase.suppressor and own != 0)
                heart_failure = heart_failure or (f.phrase.heart_failure and own != 0)
        if heart_failure and values[_INDEX["cardiomegaly"]] == _NULL:
            values[_INDEX["cardiomegaly"]] = -1
        if not blocked and not any(values[_INDEX[c]] in (1, -1) for c in _FINDINGS):
            values[_INDEX["no_finding"]] = 1
        return values

    def label(self, text: str | None) -> dict[str, int | None]:
        """The 14 labels of one report text, in CheXpert order."""
        return {c: None if v == _NULL else v for c, v in zip(LABEL_COLUMNS, self._codes(text), strict=True)}

    def explain(self, text: str | None) -> list[Mention]:
        """Every mention behind :meth:`label`, in text order (one per label for multi-label phrases).

        A Cardiomegaly added by the heart-failure rule comes last, on the heart-failure phrase.
        """
        norm, found = self._found(text)
        out = []
        has_size = False
        hf: Mention | None = None
        for f in found:
            cue = text[f.cue[0] : f.cue[1]] if f.cue else None
            phrase = text[f.start : f.end]
            labels = rules.statuses(f, self.tables.anchors)
            has_size = has_size or "cardiomegaly" in labels
            for label, st in labels.items():
                out.append(Mention(label, phrase, (f.start, f.end), st, cue))
            if f.phrase.suppressor and not labels:
                out.append(Mention(None, phrase, (f.start, f.end), rules.own_status(f), cue))
            if f.phrase.heart_failure and rules.own_status(f) != 0 and hf is None:
                hf = Mention("cardiomegaly", phrase, (f.start, f.end), -1, "heart failure implies it")
        if hf is not None and not has_size:
            out.append(hf)
        return out

    def label_many(self, texts: Sequence[str | None], *, workers: int | None = None) -> pl.DataFrame:
        """Labels of many texts: 14 Int8 columns in CheXpert order, one row per text, in order.

        ``workers`` None picks in-process below ``PARALLEL_MIN_CHARS`` characters of text and one process per
        available core above; 1 forces in-process. Texts go to the pool in chunks of ``CHUNK``; each worker
        process receives (unpickles) the labeler once.
        """
        texts = list(texts)
        if workers is None:
            size = sum(len(t) for t in texts if t)
            workers = 1 if size < PARALLEL_MIN_CHARS else cores()
        if workers <= 1 or len(texts) <= CHUNK:
            return _frame(_encode(self, texts))
        chunks = chunked(texts, CHUNK)
        parts = map_chunks(_encode, chunks, workers=min(workers, len(chunks)), setup=given, setup_args=(self,))
        return _frame(np.concatenate(list(parts)))


def _encode(labeler: Labeler, texts: list[str | None]) -> np.ndarray:
    if not texts:
        return np.zeros((0, len(LABEL_COLUMNS)), dtype=np.int8)
    return np.array([labeler._codes(t) for t in texts], dtype=np.int8)


def _frame(codes: np.ndarray) -> pl.DataFrame:
    """The (n, 14) int8 codes as 14 nullable Int8 columns (``_NULL`` → null)."""
    frame = pl.DataFrame(
        {name: codes[:, i] for i, name in enumerate(LABEL_COLUMNS)},
        schema={c: pl.Int8 for c in LABEL_COLUMNS},
    )
    return frame.with_columns(pl.when(pl.col(c) != _NULL).then(pl.col(c)).alias(c) for c in LABEL_COLUMNS)


_DEFAULT: Memo[Labeler] = Memo(4)


def default_labeler(kb: Any = None) -> Labeler:
    """The labeler over ``kb`` (default: the shipped knowledge) and the shipped lexicon, built once per process."""
    if kb is None:
        from datakit.knowledge.kb import load_kb

        kb = load_kb()
    return _DEFAULT.get((kb.fingerprint, str(default_lexicon_path())), lambda: Labeler(kb))


def section_texts(studies: pl.DataFrame, sections: str = "extracted") -> pl.Series:
    """The text each study is labelled from (see :func:`label_studies`)."""
    if sections not in SECTIONS:
        raise ConfigError(
            f"unknown labeler sections option {sections!r}", hint=f"use one of: {', '.join(SECTIONS)}"
        )
    column = {
        "extracted": "extracted_text",
        "impression": "impression",
        "findings": "findings",
        "report": "report_text",
    }.get(sections)
    if column is not None:
        if column not in studies.columns:
            raise ConfigError(f"the studies table has no {column!r} column", hint="label a studies table")
        return studies.get_column(column).cast(pl.Utf8)
    for name in ("findings", "impression"):
        if name not in studies.columns:
            raise ConfigError(f"the studies table has no {name!r} column", hint="label a studies table")
    parts = pl.concat_list(
        [pl.col("findings").cast(pl.Utf8), pl.col("impression").cast(pl.Utf8)]
    ).list.drop_nulls()
    joined = studies.select(
        pl.when(parts.list.len() > 0).then(parts.list.join("\n\n")).otherwise(None).alias("text")
    )
    return joined.get_column("text")


def label_studies(
    studies: pl.DataFrame,
    *,
    sections: str = "extracted",
    labeler: Labeler | None = None,
    workers: int | None = None,
) -> pl.DataFrame:
    """``study_id`` + the 14 label columns (Int8, null = not mentioned) of each study's report.

    ``sections`` says which text is read: ``extracted`` (default; the CheXpert convention: the impression,
    else the findings, else the last section — the studies table's ``extracted_text``), ``impression``,
    ``findings``, ``findings+impression`` (joined by a blank line; either alone when the other is missing), or
    ``report`` (the whole report). A study whose chosen text is missing gets no label at all.
    """
    texts = section_texts(studies, sections)
    labeler = labeler or default_labeler()
    labels = labeler.label_many(texts.to_list(), workers=workers)
    return pl.concat([studies.select(pl.col("study_id")), labels], how="horizontal")

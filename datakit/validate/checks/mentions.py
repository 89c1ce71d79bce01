"""Findings named in trace text, as tables: what the knowledge base's finding reader reads in it.

Each distinct text is read once per run (``Context.readings``; in worker processes when there are many) by
``ctx.reader``, the engine the offline teacher reads reports with (``datakit.reading.findings``): entry,
status, side and grade of every mention, with its anatomic sides ("right atrium", "left hemidiaphragm")
already set apart from the finding's side.

Two things the reader leaves out are added here, both to keep the side and grade checks from blaming a trace
for what the reader did not see:

- ``loose_side``: the side words of a text that belong to no mention's clause (anatomic sides left out).
  "Small right and moderate left pleural effusions" gives one mention, left, and the loose side right.
- ``levels``: every grade word of a mention's clause on one scale (trace 0; small, mild 1; moderate 2; large,
  severe 3), so "mild to moderate" and "small-to-moderate" allow both ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from datakit.parallel import chunked, given, map_chunks, pool_size
from datakit.reading.words import SEVERITY_WORDS, laterality_of, severity_of

if TYPE_CHECKING:
    from datakit.validate.context import Context

# One ordinal scale for both of the teacher's grade scales (offline_words.SIZE_SCALE and DEGREE_SCALE): a
# "mild" cardiomegaly and a "small" effusion are the same step above nothing.
GRADE_LEVEL = {"trace": 0, "small": 1, "mild": 1, "moderate": 2, "large": 3, "severe": 3}
SIDES = ("left", "right", "bilateral")

MENTIONS = {
    "text": pl.Utf8,
    "entry": pl.Utf8,
    "m_status": pl.Utf8,
    "m_side": pl.Utf8,
    "levels": pl.List(pl.Int8),
    "clause": pl.Utf8,
    "loose_side": pl.Utf8,
}


def grade_level(word: str | None) -> int | None:
    """The scale step of a grade word or phrase ("small-to-moderate" → 2); None when it is not a grade."""
    if not word:
        return None
    canonical = severity_of(word)
    return GRADE_LEVEL.get(canonical) if canonical else None


def _levels(clause: str) -> list[int]:
    low = clause.lower()
    words = {m.group(1) for m in SEVERITY_WORDS.finditer(low)}
    words |= {m.group(1) for m in SEVERITY_WORDS.finditer(low.replace("-", " "))}
    return sorted({lv for w in words if (lv := grade_level(w)) is not None})


def _read_one(reader, text: str) -> list[tuple]:
    from datakit.reading.findings import ANATOMIC_SIDE  # the reader's own list of anatomic sides

    found = reader.read(text)
    if not found:
        return []
    rest = " ".join(text.split()).lower()
    for p in found:
        if p.sentence:
            rest = rest.replace(p.sentence.lower(), " ")
    loose = laterality_of(ANATOMIC_SIDE.sub(" ", rest))
    return [(p.entry_id, p.status, p.laterality, _levels(p.sentence), p.sentence, loose) for p in found]


def read(ctx: Context, texts: pl.Series) -> pl.DataFrame:
    """One row per mention in each distinct text of ``texts`` (columns :data:`MENTIONS`)."""
    memo = ctx.readings
    distinct = texts.drop_nulls().unique().to_list()
    todo = [t for t in distinct if t not in memo]
    workers = pool_size(ctx.config.workers, len(todo), min_items=PARALLEL_MIN_TEXTS, per_worker=CHUNK)
    if workers > 1:
        chunks = chunked(todo, CHUNK)
        for chunk, got in zip(chunks, map_chunks(_read_chunk, chunks, workers=workers, setup=given,
                                                 setup_args=(ctx.reader,)), strict=True):
            memo.update(zip(chunk, got, strict=True))
    elif todo:
        reader = ctx.reader
        memo.update((t, _read_one(reader, t)) for t in todo)
    rows = [(text, *m) for text in distinct for m in memo[text]]
    return pl.DataFrame(rows, schema=MENTIONS, orient="row")


# Texts read in one process below this many (a pool costs more than it saves); chunks sent to each worker.
# Reading runs at about 30 µs a sentence (measured on real IU-Xray report sentences).
PARALLEL_MIN_TEXTS = 50_000
CHUNK = 5_000


def _read_chunk(reader, texts: list[str]) -> list[list[tuple]]:
    return [_read_one(reader, t) for t in texts]


def kin(ctx: Context) -> pl.DataFrame:
    """finding, entry: pairs that name the same finding.

    An entry names itself, and a label's own entry (id equal to its CheXpert column, e.g. ``fracture``)
    names each entry of that label (``rib_fracture``) and is named by it: the reader keeps only the most
    specific entry of a phrase, and a trace may use either.
    """
    e = ctx.entries.select("entry_id", "chexpert")
    ids = e.select(pl.col("entry_id").alias("chexpert"))
    general = e.filter(pl.col("chexpert") != pl.col("entry_id")).join(ids, on="chexpert", how="semi")
    return pl.concat(
        [
            e.select(pl.col("entry_id").alias("finding"), pl.col("entry_id").alias("entry")),
            general.select(pl.col("entry_id").alias("finding"), pl.col("chexpert").alias("entry")),
            general.select(pl.col("chexpert").alias("finding"), pl.col("entry_id").alias("entry")),
        ]
    ).unique()


def with_kin(frame: pl.DataFrame, kin_pairs: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (with finding and entry) and ``same``: whether the mention names the item's finding."""
    marked = kin_pairs.with_columns(pl.lit(True).alias("_kin"))
    return (
        frame.join(marked, on=["finding", "entry"], how="left")
        .with_columns(
            ((pl.col("finding") == pl.col("entry")) | pl.col("_kin").fill_null(False)).alias("same")
        )
        .drop("_kin")
    )


def sides_given(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Per ``keys`` where an abnormal mention gives a side: the sides they allow (loose sides included).

    Columns: keys, said_bilateral, named (the clauses that give a side, for messages), ok_left, ok_right,
    ok_bilateral.
    """
    abnormal = frame.filter(pl.col("m_status").is_in(["present", "uncertain"]))
    allowed = pl.concat(
        [
            abnormal.select(*keys, pl.col("m_side").alias("s")),
            abnormal.select(*keys, pl.col("loose_side").alias("s")),
        ]
    )
    ok = allowed.group_by(keys).agg(
        ((pl.col("s") == "left") | (pl.col("s") == "bilateral")).any().alias("ok_left"),
        ((pl.col("s") == "right") | (pl.col("s") == "bilateral")).any().alias("ok_right"),
        (pl.col("s") == "bilateral").any().alias("_bi"),
        (pl.col("s") == "left").any().alias("_l"),
        (pl.col("s") == "right").any().alias("_r"),
    )
    ok = ok.with_columns((pl.col("_bi") | (pl.col("_l") & pl.col("_r"))).alias("ok_bilateral")).drop(
        "_bi", "_l", "_r"
    )
    sided = abnormal.filter(pl.col("m_side").is_in(SIDES))
    said = sided.group_by(keys).agg(
        (pl.col("m_side") == "bilateral").any().alias("said_bilateral"),
        pl.format('"{}"', pl.col("clause")).unique(maintain_order=True).str.join(", ").alias("named"),
    )
    return said.join(ok, on=keys, how="left")


def supported(side: str) -> pl.Expr:
    """Whether the side in column ``side`` is allowed by :func:`sides_given`'s ok_* columns."""
    s = pl.col(side)
    return (
        pl.when(s == "left")
        .then(pl.col("ok_left"))
        .when(s == "right")
        .then(pl.col("ok_right"))
        .when(s == "bilateral")
        .then(pl.col("ok_bilateral"))
        .otherwise(pl.lit(None, dtype=pl.Boolean))
        .fill_null(False)
    )

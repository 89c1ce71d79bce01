"""Trace semantics: the draft, its corrections, the final perception and conclusions, as tables.

The rules every reader of a trace follows (validate, export, review):

- ``perception`` is the *draft*, the first look; ``reasoning`` reasons from the draft.
- Each correction ``{kind, finding, before, after}`` fixes the draft. ``before`` must match it: for ``missed``
  (and ``other`` with ``before.status`` absent) the draft has no present or uncertain item of the finding; for
  the other kinds it has an item of the finding whose status, laterality and severity all equal ``before``.
  For ``no_finding`` (the overall normal/abnormal conclusion) ``before`` matches the draft's ``no_finding``
  conclusion, absent when the reasoning draws none.
- The *final perception* is the draft with the matched corrections applied: a ``missed`` finding is added with
  the ``after`` state (replacing absent items of it), any other matched item takes the ``after`` state.
- The *final conclusions* are the draft reasoning's conclusions (``normal`` read as ``no_finding``; the
  strongest status when several steps conclude one finding) with every correction's ``after`` status applied
  to its finding.
- Items with ``finding == "normal"`` say that a region looks normal; they are not findings.

The functions take and return polars DataFrames (one row per item, step or correction), so a full-scale run is
handled in bulk; :func:`final_items` applies the same rules to one trace dict, for code that shows one study.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import polars as pl

from datakit.trace import trace_schema

ABNORMAL = ["present", "uncertain"]
STATUS_RANK = {"absent": 0, "uncertain": 1, "present": 2}
STATE_FIELDS = ("status", "laterality", "severity")


def _dtype(node: dict[str, Any], defs: dict[str, Any]) -> pl.DataType:
    """The polars dtype a JSON-Schema node decodes to (strings, arrays, objects, $refs: enough for traces)."""
    if "$ref" in node:
        return _dtype(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    kind = node.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    if "object" in kinds:
        return pl.Struct({name: _dtype(sub, defs) for name, sub in node.get("properties", {}).items()})
    if "array" in kinds:
        return pl.List(_dtype(node.get("items", {}), defs))
    if "integer" in kinds:
        return pl.Int64
    if "number" in kinds:
        return pl.Float64
    if "boolean" in kinds:
        return pl.Boolean
    return pl.Utf8


@lru_cache(maxsize=1)
def trace_dtype() -> pl.Struct:
    """The polars Struct dtype of a trace, derived from ``schemas/trace.v1.json``."""
    schema = trace_schema()
    return _dtype(schema, schema.get("definitions", {}))  # type: ignore[return-value]


# Rows per slice of the heavier text work (JSON decoding, sentence hashing): bounds its transient memory, and
# polars runs the slices in parallel. One pass over all 227,835 traces at once held 3 GB more at its peak.
SLICE_ROWS = 16_384
# Entries that count towards a second label besides their own: air and fluid in the pleural space is both
# (as the MeSH → CheXpert mapping reads "Hydropneumothorax"), although its knowledge entry files it under
# pneumothorax only. The offline teacher and the label checks read labels through it alike.
ALSO_LABELS = {"hydropneumothorax": ("pleural_effusion",)}


def sliced(frame: pl.DataFrame, build: Callable[[pl.LazyFrame], pl.LazyFrame]) -> pl.DataFrame:
    """``build`` applied to slices of ``frame``, run in parallel by polars, concatenated in order."""
    starts = range(0, frame.height, SLICE_ROWS) if frame.height else [0]
    parts = pl.collect_all([build(frame.slice(i, SLICE_ROWS).lazy()) for i in starts])
    return pl.concat(parts, rechunk=False) if len(parts) > 1 else parts[0]


def adds_a_finding() -> pl.Expr:
    """Whether a correction adds its finding to the draft (``missed``, or ``other`` from absent)."""
    return (pl.col("kind") == "missed") | (
        (pl.col("kind") == "other") & (pl.col("before_status") == "absent")
    )


def state_expr(prefix: str = "") -> pl.Expr:
    """A state as the messages show it, e.g. 'present, left, small', from ``{prefix}status`` etc."""
    lat = pl.col(f"{prefix}laterality")
    sev = pl.col(f"{prefix}severity")
    return pl.concat_str(
        [
            pl.col(f"{prefix}status"),
            pl.when(lat.is_not_null() & (lat != "none")).then(pl.lit(", ") + lat).otherwise(pl.lit("")),
            pl.when(sev.is_not_null() & (sev != "")).then(pl.lit(", ") + sev).otherwise(pl.lit("")),
        ]
    )


def _one_row_each(frame: pl.DataFrame, column: str, index: str) -> pl.DataFrame:
    """One row per element of the list-of-structs ``column``, numbered from 0 in ``index``, fields unnested."""
    numbered = frame.with_columns(pl.int_ranges(0, pl.col(column).list.len(), dtype=pl.Int32).alias(index))
    return numbered.explode([column, index]).drop_nulls(index).unnest(column)


def decode(traces: pl.DataFrame) -> pl.DataFrame:
    """study_id + the trace's four parts as struct/list columns, from ``study_id, trace_json`` rows."""
    dtype = trace_dtype()
    return sliced(
        traces.select("study_id", "trace_json"),
        lambda lf: lf.select("study_id", pl.col("trace_json").str.json_decode(dtype).alias("t")).unnest("t"),
    )


def draft_items(decoded: pl.DataFrame) -> pl.DataFrame:
    """The draft perception, one row per item (``normal`` items included).

    Columns: study_id, item, region, finding, status, laterality, severity, evidence.
    """
    return _one_row_each(decoded.select("study_id", "perception"), "perception", "item")


def reasoning_steps(decoded: pl.DataFrame) -> pl.DataFrame:
    """The reasoning, one row per step: study_id, step, observation, inference, knowledge, conclusion, status."""
    return _one_row_each(decoded.select("study_id", "reasoning"), "reasoning", "step")


def draft_conclusions(steps: pl.DataFrame) -> pl.DataFrame:
    """study_id, finding, status: the reasoning's conclusions (``normal`` read as ``no_finding``)."""
    s = steps.select(
        "study_id",
        pl.when(pl.col("conclusion") == "normal")
        .then(pl.lit("no_finding"))
        .otherwise(pl.col("conclusion"))
        .alias("finding"),
        "status",
    )
    rank = pl.col("status").replace_strict(STATUS_RANK, default=-1, return_dtype=pl.Int8)
    return (
        s.with_columns(rank.alias("_r"))
        .sort("_r", descending=True, maintain_order=True)
        .group_by("study_id", "finding", maintain_order=True)
        .first()
        .drop("_r")
    )


def corrections(decoded: pl.DataFrame, draft: pl.DataFrame, draft_concl: pl.DataFrame) -> pl.DataFrame:
    """The reflection's corrections, one row per correction, matched to the draft.

    Columns: study_id, corr, kind, finding, before_*/after_* (status, laterality, severity), note,
    ``matched`` (its before is in the draft) and ``draft_state`` (what the draft has, for messages).
    """
    c = decoded.select("study_id", pl.col("reflection").struct.field("corrections").alias("c"))
    c = _one_row_each(c, "c", "corr")
    c = c.with_columns(
        *[pl.col("before").struct.field(f).alias(f"before_{f}") for f in STATE_FIELDS],
        *[pl.col("after").struct.field(f).alias(f"after_{f}") for f in STATE_FIELDS],
    ).drop("before", "after")
    draft = draft.filter(pl.col("finding") != "normal")
    abnormal = (
        draft.filter(pl.col("status").is_in(ABNORMAL)).group_by("study_id", "finding").len("n_abnormal")
    )
    exact = (
        c.join(
            draft.select("study_id", "finding", "status", "laterality", "severity").unique(),
            left_on=["study_id", "finding", "before_status", "before_laterality", "before_severity"],
            right_on=["study_id", "finding", "status", "laterality", "severity"],
            how="semi",
            nulls_equal=True,
        )
        .select("study_id", "corr")
        .with_columns(pl.lit(True).alias("exact"))
    )
    described = (
        draft.with_columns(state_expr().alias("s"))
        .group_by("study_id", "finding")
        .agg(pl.col("s").unique(maintain_order=True).str.join("; ").alias("draft_state"))
    )
    nf = draft_concl.filter(pl.col("finding") == "no_finding").select(
        "study_id", pl.col("status").alias("nf_status")
    )
    out = (
        c.join(exact, on=["study_id", "corr"], how="left")
        .join(abnormal, on=["study_id", "finding"], how="left")
        .join(described, on=["study_id", "finding"], how="left")
        .join(nf, on="study_id", how="left")
        .with_columns(pl.col("nf_status").fill_null("absent"))
    )
    is_nf = pl.col("finding") == "no_finding"
    matched = (
        pl.when(is_nf)
        .then(pl.col("before_status") == pl.col("nf_status"))
        .when(adds_a_finding())
        .then(pl.col("n_abnormal").is_null())
        .otherwise(pl.col("exact").fill_null(False))
    )
    draft_state = (
        pl.when(is_nf)
        .then(pl.lit("normal-study conclusion ") + pl.col("nf_status"))
        .otherwise(pl.col("draft_state").fill_null("not in the draft"))
    )
    return (
        out.with_columns(matched.alias("matched"), draft_state.alias("draft_state"))
        .drop("exact", "n_abnormal", "nf_status")
        .sort("study_id", "corr")
    )


def final_perception(draft: pl.DataFrame, corr: pl.DataFrame, entries: pl.DataFrame) -> pl.DataFrame:
    """The final perception: the draft with the matched corrections applied (``normal`` items excluded).

    Columns as :func:`draft_items` plus ``source``: draft, corrected or added. ``entries`` maps ``entry_id`` to
    ``region`` (where an added finding goes).
    """
    draft = draft.filter(pl.col("finding") != "normal")
    corr = corr.filter(pl.col("matched") & (pl.col("finding") != "no_finding"))
    adds = corr.filter(adds_a_finding())
    edits = corr.join(adds.select("study_id", "corr"), on=["study_id", "corr"], how="anti")
    # an edit applies to the draft items in its before state; the last correction of an item wins
    hit = (
        draft.select("study_id", "item", "finding", "status", "laterality", "severity")
        .join(
            edits,
            left_on=["study_id", "finding", "status", "laterality", "severity"],
            right_on=["study_id", "finding", "before_status", "before_laterality", "before_severity"],
            nulls_equal=True,
        )
        .sort("corr")
        .group_by("study_id", "item")
        .agg(pl.col("after_status", "after_laterality", "after_severity").last())
    )
    # added findings replace the draft's absent items of the same finding
    kept = (
        draft.join(
            adds.select("study_id", "finding").unique().with_columns(pl.lit(True).alias("_added")),
            on=["study_id", "finding"],
            how="left",
        )
        .filter(~(pl.col("_added").fill_null(False) & (pl.col("status") == "absent")))
        .drop("_added")
    )
    kept = (
        kept.join(hit, on=["study_id", "item"], how="left")
        .with_columns(
            pl.when(pl.col("after_status").is_not_null())
            .then(pl.lit("corrected"))
            .otherwise(pl.lit("draft"))
            .alias("source"),
            pl.coalesce("after_status", "status").alias("status"),
            pl.when(pl.col("after_status").is_not_null())
            .then(pl.col("after_laterality"))
            .otherwise(pl.col("laterality"))
            .alias("laterality"),
            pl.when(pl.col("after_status").is_not_null())
            .then(pl.col("after_severity"))
            .otherwise(pl.col("severity"))
            .alias("severity"),
        )
        .drop("after_status", "after_laterality", "after_severity")
    )
    added = adds.join(
        entries.select("entry_id", "region"), left_on="finding", right_on="entry_id", how="left"
    ).select(
        "study_id",
        pl.lit(None, dtype=pl.Int32).alias("item"),
        "region",
        "finding",
        pl.col("after_status").alias("status"),
        pl.col("after_laterality").alias("laterality"),
        pl.col("after_severity").alias("severity"),
        pl.col("note").alias("evidence"),
        pl.lit("added").alias("source"),
    )
    return pl.concat([kept.select(added.columns), added], how="vertical_relaxed")


def final_conclusions(draft_concl: pl.DataFrame, corr: pl.DataFrame) -> pl.DataFrame:
    """study_id, finding, status, source (draft or corrected): the final conclusions."""
    after = (
        corr.sort("corr").group_by("study_id", "finding", maintain_order=True).agg(pl.col("after_status").last())
    )
    out = draft_concl.join(after, on=["study_id", "finding"], how="full", coalesce=True)
    return out.select(
        "study_id",
        "finding",
        pl.coalesce("after_status", "status").alias("status"),
        pl.when(pl.col("after_status").is_not_null())
        .then(pl.lit("corrected"))
        .otherwise(pl.lit("draft"))
        .alias("source"),
    )


def entries_table(kb: Any) -> pl.DataFrame:
    """The knowledge base as a table: entry_id, region, chexpert (the label column it counts towards)."""
    rows = [(e.id, e.region, e.chexpert) for e in kb.entries.values()]
    return pl.DataFrame(rows, schema={"entry_id": pl.Utf8, "region": pl.Utf8, "chexpert": pl.Utf8}, orient="row")


def study_semantics(study_id: str, trace_json: str, entries: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """One trace read by the same rules: its draft, corrections (matched or not), final perception, conclusions.

    For code that shows or renders one study (review, show); each value is a list of plain dicts.
    """
    decoded = decode(pl.DataFrame({"study_id": [study_id], "trace_json": [trace_json]}))
    draft = draft_items(decoded)
    concl = draft_conclusions(reasoning_steps(decoded))
    corr = corrections(decoded, draft, concl)
    return {
        "draft": draft.drop("study_id").to_dicts(),
        "corrections": corr.drop("study_id").to_dicts(),
        "final": final_perception(draft, corr, entries).drop("study_id").to_dicts(),
        "conclusions": final_conclusions(concl, corr).drop("study_id").to_dicts(),
    }

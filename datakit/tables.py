"""The canonical tables, as pandera (polars) schemas, in one place.

Stages validate their input and their output against these schemas, never in between.
Label columns hold the CheXpert convention (stanfordmlgroup/chexpert-labeler): 1 positive, 0 negative
(mentioned as absent), -1 uncertain, null = not mentioned. Null is never folded into 0.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

# the vocabularies live apart from the schemas (datakit.vocabulary); re-exported here
from datakit.vocabulary import (  # noqa: F401
    DATASETS,
    FRONTAL_VIEWS,
    LABEL_BY_NAME,
    LABEL_COLUMNS,
    LABEL_SOURCES,
    LABELS,
    LABELS_5,
    NEGATIVE,
    POSITIVE,
    SPLITS,
    UNCERTAIN,
    VIEWS,
)

_label_col = {c: pa.Column(pl.Int8, nullable=True, checks=pa.Check.isin([-1, 0, 1])) for c in LABEL_COLUMNS}
_text = pa.Column(pl.Utf8, nullable=True)

Studies = pa.DataFrameSchema(
    {
        "study_id": pa.Column(pl.Utf8, unique=True),
        "subject_id": pa.Column(pl.Utf8),
        "dataset": pa.Column(pl.Utf8, checks=pa.Check.isin(DATASETS)),
        "source_format": pa.Column(pl.Utf8),
        "split": pa.Column(pl.Utf8, checks=pa.Check.isin(SPLITS)),
        "split_source": pa.Column(pl.Utf8, checks=pa.Check.isin(["official", "patient_hash"])),
        "indication": _text,
        "comparison": _text,
        "findings": _text,
        "impression": _text,
        "last_paragraph": _text,
        # The section the official MIMIC-CXR extraction picks (impression > findings > last_paragraph >
        # comparison, or a per-study custom rule) and its text: what a CheXpert-style labeller reads.
        "extracted_section": _text,
        "extracted_text": _text,
        "report_text": pa.Column(pl.Utf8),
        "report_path": _text,
        "n_images": pa.Column(pl.Int16, checks=pa.Check.ge(1)),
        **_label_col,
        "label_source": pa.Column(pl.Utf8, nullable=True, checks=pa.Check.isin(LABEL_SOURCES)),
    },
    strict=True,
    ordered=True,
    name="studies",
)

Images = pa.DataFrameSchema(
    {
        "image_id": pa.Column(pl.Utf8, unique=True),
        "study_id": pa.Column(pl.Utf8),
        "subject_id": pa.Column(pl.Utf8),
        "dataset": pa.Column(pl.Utf8, checks=pa.Check.isin(DATASETS)),
        "source_path": pa.Column(pl.Utf8),
        "view": pa.Column(pl.Utf8, checks=pa.Check.isin(VIEWS)),
        "view_raw": _text,
        "source_width": pa.Column(pl.Int32, nullable=True),
        "source_height": pa.Column(pl.Int32, nullable=True),
        "source_digest": _text,
        # hash of (source digest, conversion settings): an image is converted again only when this changes
        "convert_key": _text,
        # relative to the run directory, e.g. images/<image_id>.png; null when conversion was not run
        "converted_path": _text,
        "width": pa.Column(pl.Int32, nullable=True),
        "height": pa.Column(pl.Int32, nullable=True),
    },
    strict=True,
    ordered=True,
    name="images",
)

KnowledgeHits = pa.DataFrameSchema(
    {
        "study_id": pa.Column(pl.Utf8),
        "rank": pa.Column(pl.Int16, checks=pa.Check.ge(1)),
        "entry_id": pa.Column(pl.Utf8),
        "score": pa.Column(pl.Float64),
        # why it was retrieved: "bm25", "label:<column>", "tree:<region>"; ";"-joined when several apply
        "reason": pa.Column(pl.Utf8),
    },
    strict=True,
    ordered=True,
    name="knowledge_hits",
)

Traces = pa.DataFrameSchema(
    {
        "study_id": pa.Column(pl.Utf8, unique=True),
        # the trace itself, canonical JSON valid against schemas/<schema_id>.json
        "trace_json": pa.Column(pl.Utf8),
        "schema_id": pa.Column(pl.Utf8),
        "teacher": pa.Column(pl.Utf8),
        "model": _text,
        # names of the prompt templates (comma-joined) and the hash of their text; null for the offline teacher
        "templates": _text,
        "template_sha": _text,
        "knowledge_ids": pa.Column(pl.List(pl.Utf8)),
        # offline teacher: the error injected into the draft perception, if any (missed, hallucinated, ...)
        "injected_error": _text,
        "n_images": pa.Column(pl.Int16, checks=pa.Check.ge(1)),
        "input_tokens": pa.Column(pl.Int64),
        "output_tokens": pa.Column(pl.Int64),
        "cost_usd": pa.Column(pl.Float64),
        # every teacher cache key behind the row (re-asks and stages included), so it leads back to its calls
        "cache_keys": pa.Column(pl.List(pl.Utf8)),
    },
    strict=True,
    ordered=True,
    name="traces",
)

Validation = pa.DataFrameSchema(
    {
        "study_id": pa.Column(pl.Utf8),
        "check": pa.Column(pl.Utf8),
        "code": pa.Column(pl.Utf8),
        "passed": pa.Column(pl.Boolean),
        "severity": pa.Column(pl.Utf8, checks=pa.Check.isin(["error", "warning"])),
        "message": pa.Column(pl.Utf8),
    },
    strict=True,
    ordered=True,
    name="validation",
)


def empty(schema: pa.DataFrameSchema) -> pl.DataFrame:
    """An empty DataFrame with the schema's columns and dtypes."""
    return pl.DataFrame(schema={name: col.dtype.type for name, col in schema.columns.items()})


def conform(df: pl.DataFrame, schema: pa.DataFrameSchema) -> pl.DataFrame:
    """Add missing nullable columns as nulls, cast to the schema's dtypes and order columns as the schema does."""
    exprs = []
    for name, col in schema.columns.items():
        dtype = col.dtype.type
        if name in df.columns:
            exprs.append(pl.col(name).cast(dtype))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return df.select(exprs)

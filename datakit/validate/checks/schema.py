"""Check 1, schema: the traces table against ``tables.Traces``, every trace against ``schemas/trace.v1.json``.

Column-level problems (a missing column, a wrong dtype, another schema version) make the whole table
unreadable and raise before any check runs (:func:`table_problems`); row-level ones reject the row's trace.
"""

from __future__ import annotations

import polars as pl

from datakit import tables
from datakit.errors import SchemaVersionError
from datakit.trace import SCHEMA_ID, check_schema_id
from datakit.validate.context import Context
from datakit.validate.registry import check, concat_problems, problems

_HINT = "re-run `datakit annotate` for this run (cached teacher calls are reused)"


def check_table_version(traces: pl.DataFrame) -> None:
    """Refuse a traces table written under another trace schema, or without the columns this datakit reads."""
    if "schema_id" not in traces.columns:
        raise SchemaVersionError(
            "traces.parquet has no schema_id column: it was written by a datakit older than the trace schema "
            f"{SCHEMA_ID!r}",
            hint=_HINT,
        )
    for schema_id in traces["schema_id"].drop_nulls().unique().sort().to_list():
        check_schema_id(schema_id)
    missing = [c for c in tables.Traces.columns if c not in traces.columns]
    if missing:
        raise SchemaVersionError(
            f"traces.parquet lacks the column(s) {', '.join(missing)}: "
            "it was written by another datakit version",
            hint=_HINT,
        )


def table_problems(traces: pl.DataFrame) -> pl.DataFrame:
    """Row-level failures of the pandera ``tables.Traces`` schema as problems (study_id, code, message).

    Raises :class:`SchemaVersionError` for column-level failures (wrong dtype, extra column), which no row can
    fix.
    """
    import pandera.errors as pe

    check_table_version(traces)
    try:
        tables.Traces.validate(traces, lazy=True)
        return problems(traces.clear(), "table_row_invalid", "")
    except pe.SchemaErrors as err:
        cases = err.failure_cases
    whole = cases.filter(pl.col("index").is_null())
    if whole.height:
        what = "; ".join(
            f"{col or '(table)'}: {chk} (found {case})"
            for col, chk, case in whole.select("column", "check", "failure_case").iter_rows()
        )
        raise SchemaVersionError(f"traces.parquet does not match the traces table: {what}", hint=_HINT)
    rows = cases.join(
        traces.select(pl.col("study_id").alias("sid"))
        .with_row_index("index")
        .with_columns(pl.col("index").cast(pl.Int64)),
        left_on=pl.col("index").cast(pl.Int64),
        right_on="index",
        how="left",
    )
    message = pl.format(
        "traces.parquet column {} fails {} (value {})", "column", "check", pl.col("failure_case")
    )
    out = rows.select(pl.col("sid").alias("study_id"), message.alias("m")).drop_nulls("study_id")
    out = out.group_by("study_id", maintain_order=True).agg(
        pl.col("m").unique(maintain_order=True).str.join("; ")
    )
    return problems(out, "table_row_invalid", pl.col("m"))


@check(
    "schema",
    codes={
        "table_row_invalid": "error",
        "invalid_json": "error",
        "schema_violation": "error",
        "unknown_study": "error",
    },
    judges="all",
)
def schema(ctx: Context) -> pl.DataFrame:
    """The traces table against its pandera schema; every trace against the trace JSON Schema."""
    bad = ctx.parsed.filter(pl.col("parse_code") != "ok")
    parsed = bad.select(
        "study_id", pl.col("parse_code").alias("code"), pl.col("parse_message").alias("message")
    )
    unknown = ctx.traces.select("study_id").join(ctx.studies.select("study_id"), on="study_id", how="anti")
    return concat_problems(
        [
            ctx.table_problems if ctx.table_problems is not None else table_problems(ctx.traces),
            parsed,
            problems(
                unknown,
                "unknown_study",
                "the study is not in studies.parquet, so nothing can be checked "
                "against its labels and images",
            ),
        ]
    )

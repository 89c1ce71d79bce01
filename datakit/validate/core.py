"""The pure core of validation: tables in, one row per (study, check) out, and the summary of those rows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from datakit import tables
from datakit.config import ValidateConfig
from datakit.validate.context import Context
from datakit.validate.registry import (
    OK,
    PROBLEM_SCHEMA,
    SEVERITY_RANK,
    Check,
    load_builtin,
    load_plugins,
    selected,
)


@dataclass
class Outcome:
    """What :func:`run_checks` found: the validation table, the context, timings and set-aside rows."""

    table: pl.DataFrame
    context: Context
    checks: list[Check]
    seconds: dict[str, float] = field(default_factory=dict)
    duplicates: pl.DataFrame | None = None  # extra rows of a study_id that occurs more than once


def _assemble(chk: Check, found: pl.DataFrame, judged: pl.Series, overrides: dict[str, Any]) -> pl.DataFrame:
    """One row per judged study for one check, from the problems it returned."""
    missing = [c for c in PROBLEM_SCHEMA if c not in found.columns]
    if missing:
        raise TypeError(
            f"check {chk.name!r} returned a frame without {', '.join(missing)}: a check returns "
            "study_id, code and message, one row per problem"
        )
    found = found.select(list(PROBLEM_SCHEMA)).cast(PROBLEM_SCHEMA).with_row_index("_order")
    codes = found["code"].unique().to_list()
    sev = {c: chk.severity_of(c, overrides) for c in codes}
    found = found.with_columns(pl.col("code").replace_strict(sev, return_dtype=pl.Utf8).alias("severity"))
    found = found.filter(pl.col("severity") != "off").with_columns(
        pl.col("severity").replace_strict(SEVERITY_RANK, return_dtype=pl.Int8).alias("_rank")
    )
    failed = (
        found.sort("study_id", "_rank", "_order")
        .group_by("study_id", maintain_order=True)
        .agg(
            pl.col("code").first(),
            pl.col("severity").first(),
            pl.col("code").n_unique().alias("_codes"),
            (pl.col("code") + pl.lit(": ") + pl.col("message")).str.join("; ").alias("_tagged"),
            pl.col("message").str.join("; ").alias("_plain"),
        )
        .select(
            "study_id",
            pl.lit(chk.name).alias("check"),
            "code",
            pl.lit(False).alias("passed"),
            "severity",
            pl.when(pl.col("_codes") > 1).then("_tagged").otherwise("_plain").alias("message"),
        )
    )
    passed = (
        judged.to_frame("study_id")
        .join(failed.select("study_id"), on="study_id", how="anti")
        .select(
            "study_id",
            pl.lit(chk.name).alias("check"),
            pl.lit(OK).alias("code"),
            pl.lit(True).alias("passed"),
            pl.lit(chk.level(overrides)).alias("severity"),
            pl.lit("").alias("message"),
        )
    )
    return pl.concat([failed, passed])


def split_duplicates(traces: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(first row of every study_id, the extra rows)."""
    marked = traces.with_columns(pl.col("study_id").is_first_distinct().alias("_first"))
    return marked.filter("_first").drop("_first"), marked.filter(~pl.col("_first")).drop("_first")


def run_checks(
    traces: pl.DataFrame,
    studies: pl.DataFrame,
    images: pl.DataFrame,
    hits: pl.DataFrame,
    *,
    kb: Any,
    labeler: Any,
    config: ValidateConfig,
    run: Any = None,
    progress: bool = False,
) -> Outcome:
    """Run every selected check over the tables (see :func:`datakit.validate.validate`); ``progress``: a bar."""
    from datakit.progress import StageProgress
    from datakit.validate.checks.schema import table_problems

    load_builtin()
    load_plugins(config.plugins)
    # the LLM judge runs only when it is switched on
    checks = [c for c in selected(config.skip) if c.name != "judge" or config.llm_judge.enabled]
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    found_in_table = table_problems(traces)
    traces, duplicates = split_duplicates(traces)
    ctx = Context(traces, studies, images, hits, kb, labeler, config)
    del traces  # ctx holds the table now; it drops the JSON column once decoded (Context.release_json)
    ctx.table_problems = found_in_table
    ctx.run = run
    parts = []
    # every check is one vectorised pass over all traces: the bar counts the passes (parsing first)
    with StageProgress(f"validate {ctx.traces.height:,} traces: parse", total=len(checks) + 1, enabled=progress,
                       unit="passes") as bar:
        _ = ctx.parsed
        if all(c.fn.__module__.startswith("datakit.validate.checks.") for c in checks):
            # the raw JSON (the largest column) is read once; the built-in checks use what came of it (a
            # plug-in may read it through Context.iter_traces, so then it stays)
            ctx.release_json()
        seconds["parse"] = time.perf_counter() - started
        bar.advance()
        for chk in checks:
            bar.describe(f"validate {ctx.traces.height:,} traces: {chk.name}")
            t0 = time.perf_counter()
            judged = ctx.valid_ids if chk.judges == "valid" else ctx.traces["study_id"]
            parts.append(_assemble(chk, chk.fn(ctx), judged, config.severity))
            seconds[chk.name] = time.perf_counter() - t0
            bar.advance()
    table = pl.concat(parts) if parts else tables.empty(tables.Validation)
    order = {c.name: i for i, c in enumerate(checks)}
    table = table.with_columns(pl.col("check").replace_strict(order, return_dtype=pl.Int32).alias("_c"))
    table = tables.Validation.validate(table.sort("study_id", "_c").drop("_c"))
    return Outcome(table, ctx, checks, seconds, duplicates)


def rejected(table: pl.DataFrame) -> pl.DataFrame:
    """study_id, code, message: the traces with a failed error row, with every reason (errors first)."""
    failed = table.filter(~pl.col("passed"))
    rank = pl.col("severity").replace_strict(SEVERITY_RANK, return_dtype=pl.Int8)
    reasons = failed.with_row_index("_o").with_columns(rank.alias("_r")).sort("study_id", "_r", "_o")
    line = (
        pl.when(pl.col("severity") == "warning").then(pl.lit("[warning] ")).otherwise(pl.lit(""))
        + pl.col("check")
        + pl.lit("/")
        + pl.col("code")
        + pl.lit(": ")
        + pl.col("message")
    )
    out = reasons.group_by("study_id", maintain_order=True).agg(
        (pl.col("severity") == "error").any().alias("_error"),
        pl.col("code").first(),
        line.str.join(" | ").alias("message"),
    )
    return out.filter("_error").drop("_error")


def summarize(outcome: Outcome, *, examples: int = 2) -> dict[str, Any]:
    """The summary as plain data: totals, and per check its pass/fail counts, codes and example failures."""
    table = outcome.table
    n = outcome.context.traces.height
    bad = rejected(table)
    flagged = table.filter(~pl.col("passed") & (pl.col("severity") == "warning"))["study_id"].unique()
    n_rejected = bad.height
    n_flagged = flagged.to_frame().join(bad.select("study_id"), on="study_id", how="anti").height
    per_check = []
    for chk in outcome.checks:
        rows = table.filter(pl.col("check") == chk.name)
        fails = rows.filter(~pl.col("passed"))
        codes = fails.group_by("code").len().sort("len", "code", descending=[True, False])
        ex = fails.with_columns(
            pl.col("severity").replace_strict(SEVERITY_RANK, return_dtype=pl.Int8).alias("_r")
        )
        ex = ex.sort("_r", "study_id").unique("code", keep="first", maintain_order=True).head(examples)
        if ex.height < examples:
            ex = pl.concat(
                [
                    ex,
                    fails.with_columns(pl.lit(0, pl.Int8).alias("_r"))
                    .join(ex.select("study_id"), on="study_id", how="anti")
                    .head(examples - ex.height),
                ]
            )
        per_check.append(
            {
                "check": chk.name,
                "description": chk.description,
                "judged": rows.height,
                "passed": int(rows["passed"].sum()),
                "failed": int((fails["severity"] == "error").sum()),
                "flagged": int((fails["severity"] == "warning").sum()),
                "codes": {code: int(k) for code, k in codes.iter_rows()},
                "examples": [
                    {"study_id": s, "code": c, "severity": v, "message": m}
                    for s, c, v, m in ex.select("study_id", "code", "severity", "message").iter_rows()
                ],
                "seconds": round(outcome.seconds.get(chk.name, 0.0), 3),
            }
        )
    duplicates = 0 if outcome.duplicates is None else outcome.duplicates.height
    total = n + duplicates
    passed = n - n_rejected
    return {
        "traces": total,
        "passed": passed,
        "rejected": n_rejected + duplicates,
        "flagged": n_flagged,
        "duplicates": duplicates,
        "pass_rate": round(passed / total, 6) if total else 0.0,
        "checks": per_check,
        "notes": list(dict.fromkeys(outcome.context.notes)),
        **outcome.context.summary_extra,
        "seconds": {k: round(v, 3) for k, v in outcome.seconds.items()},
    }

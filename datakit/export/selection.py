"""Which studies are exported: validation's verdict, the review decisions, and the config.

A trace with a failed ``error`` row in validation.parquet is rejected; one with only failed ``warning`` rows is
flagged (kept unless ``export.include_flagged = false``). ``RUN/review/decisions.jsonl`` is append-only JSON lines
``{"study_id", "decision": accept | reject | flag, "note", "time", "reviewer"}``; the last decision per study wins.
Rejected in review: left out. Flagged in review: treated as flagged. Accepted in review: kept even where
validation only warned, but a validation error still rejects (the trace is unfit to render).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from datakit.errors import RunDirError

DECISIONS = ("accept", "reject", "flag")


def decisions_path(root: Path) -> Path:
    """Where the review writes its decisions."""
    return root / "review" / "decisions.jsonl"


def read_decisions(path: Path) -> dict[str, str]:
    """The last decision per study; a line that does not parse is an error naming the file and the line."""
    last: dict[str, str] = {}
    if not path.is_file():
        return last
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                sid, decision = str(row["study_id"]), row["decision"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise RunDirError(f"{path} line {n} is not a review decision ({err.__class__.__name__})",
                                  hint="fix or remove the line; each is {\"study_id\", \"decision\", ...}") from err
            if decision not in DECISIONS:
                raise RunDirError(f"{path} line {n}: unknown decision {decision!r}",
                                  hint=f"a decision is one of: {', '.join(DECISIONS)}")
            last[sid] = decision
    return last


def verdicts(validation: Path, keep: pl.Expr) -> pl.LazyFrame:
    """Per validated study among ``keep``: ``rejected`` (an error failed), ``flagged`` and the first failing code."""
    failed = ~pl.col("passed")
    error = failed & (pl.col("severity") == "error")
    return (
        pl.scan_parquet(validation)
        .filter(keep)
        .group_by("study_id")
        .agg(
            validated=pl.lit(True),
            rejected=error.any(),
            flagged=(failed & (pl.col("severity") == "warning")).any(),
            code=pl.col("code").filter(error).first().fill_null(pl.col("code").filter(failed).first()),
        )
    )


def select(frame: pl.DataFrame, review: dict[str, str], include_flagged: bool) -> pl.DataFrame:
    """Add ``exclude`` (why a study is left out, or null) and ``flagged`` to a batch with validation's verdict."""
    decision = pl.col("study_id").replace_strict(review, default=None, return_dtype=pl.Utf8) if review else \
        pl.lit(None, dtype=pl.Utf8)
    rejected = pl.col("rejected").fill_null(False)
    flagged = pl.col("flagged").fill_null(False) | (decision == "flag").fill_null(False)
    accepted = (decision == "accept").fill_null(False)
    exclude = (
        pl.when(decision == "reject").then(pl.lit("rejected_in_review"))
        .when(rejected).then(pl.lit("rejected_by_validation"))
        .when(flagged & ~accepted & pl.lit(not include_flagged)).then(pl.lit("flagged_excluded"))
        .otherwise(None)
    )
    return frame.with_columns(exclude=exclude, flagged=flagged & ~accepted, decision=decision)

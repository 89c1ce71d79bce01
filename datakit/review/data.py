"""A run's traces for review, paged lazily from its parquet files.

Opening a run reads only small columns (study id, split, teacher, labels, the failed validation rows) into one
index table; a study's trace, report, images and checks are read when it is shown, by row slice or a filter
pushed down into the parquet scan. Filters are polars expressions over the index; text search and "has
corrections" scan the trace column once and keep the matching ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import polars as pl

from datakit.errors import DatakitError
from datakit.rundir import RunDir
from datakit.vocabulary import LABEL_BY_NAME, LABEL_COLUMNS

STATUSES = ("passed", "rejected", "flagged", "unvalidated")
# words a reviewer may type for a validation status
STATUS_ALIASES = {"accepted": "passed", "ok": "passed", "pass": "passed", "failed": "rejected", "reject": "rejected",
                  "flag": "flagged", "warned": "flagged", "none": "unvalidated"}
DECISION_ALIASES = {"accepted": "accept", "rejected": "reject", "flagged": "flag", "undecided": "none",
                    "no": "none", "yes": "any", "reviewed": "any"}
LABEL_VALUES = {"1": 1, "pos": 1, "positive": 1, "0": 0, "neg": 0, "negative": 0, "-1": -1, "uncertain": -1,
                "u": -1, "none": None, "null": None, "blank": None}
# canonical JSON has no spaces, but a trace written by hand may
HAS_CORRECTIONS = r'"corrections"\s*:\s*\[\s*\{'


class FilterError(DatakitError):
    """A filter the review cannot apply (unknown key or value)."""


@dataclass(frozen=True)
class Filter:
    """What the study list shows: every field left None matches everything."""

    split: str | None = None
    status: str | None = None  # validation: passed, rejected, flagged, unvalidated
    decision: str | None = None  # review: accept, reject, flag, none (undecided), any (decided)
    code: str | None = None  # a failed check code (or check name)
    label: tuple[str, int | None] | None = None  # (label column, value)
    teacher: str | None = None
    corrections: bool | None = None
    text: str | None = None

    def describe(self) -> str:
        """The filter written back as a query."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or f.name == "text":
                continue
            if f.name == "label":
                col, v = value
                value = col if v == 1 else f"{col}={'none' if v is None else v}"
            elif f.name == "corrections":
                value = "yes" if value else "no"
            parts.append(f"{f.name}:{value}")
        if self.text:
            parts.append(self.text)
        return " ".join(parts)


FILTER_KEYS = ("split", "status", "decision", "code", "label", "teacher", "corrections")


def _label(value: str) -> tuple[str, int | None]:
    name, _, wanted = value.partition("=")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    by_name = {n.lower().replace(" ", "_"): c for n, c in LABEL_BY_NAME.items()}
    col = key if key in LABEL_COLUMNS else by_name.get(key)
    if col is None:
        raise FilterError(f"no label {name!r}", hint=f"labels: {', '.join(LABEL_COLUMNS)}")
    wanted = wanted.strip().lower() or "1"
    if wanted not in LABEL_VALUES:
        raise FilterError(f"label value {wanted!r} is not 1, 0, -1 or none", hint="e.g. label:edema=-1")
    return col, LABEL_VALUES[wanted]


def parse_query(query: str) -> Filter:
    """``split:test status:rejected code:leaked_source label:edema=-1 teacher:llm corrections:yes words``."""
    values: dict[str, Any] = {}
    words = []
    for token in query.split():
        key, sep, value = token.partition(":")
        if not sep or key.lower() not in FILTER_KEYS:
            words.append(token)
            continue
        key, value = key.lower(), value.strip()
        if not value:
            raise FilterError(f"{key}: needs a value", hint=f"e.g. {key}:{_EXAMPLES[key]}")
        if key == "status":
            value = STATUS_ALIASES.get(value.lower(), value.lower())
            if value not in STATUSES:
                raise FilterError(f"status {value!r} is not one of {', '.join(STATUSES)}", hint="e.g. status:rejected")
        elif key == "decision":
            value = DECISION_ALIASES.get(value.lower(), value.lower())
            if value not in ("accept", "reject", "flag", "none", "any"):
                raise FilterError(f"decision {value!r} is not accept, reject, flag, none or any",
                                  hint="e.g. decision:none for the studies not yet reviewed")
        elif key == "label":
            value = _label(value)
        elif key == "corrections":
            if value.lower() not in ("yes", "no", "true", "false", "1", "0"):
                raise FilterError(f"corrections:{value} is not yes or no", hint="corrections:yes")
            value = value.lower() in ("yes", "true", "1")
        values[key] = value
    text = " ".join(words).strip()
    return Filter(**values, text=text or None)


_EXAMPLES = {"split": "test", "status": "rejected", "decision": "none", "code": "leaked_source",
             "label": "pleural_effusion", "teacher": "offline", "corrections": "yes"}


def _scan(path: Path) -> pl.LazyFrame:
    return pl.scan_parquet(path)


class ReviewData:
    """The run's index (one small row per trace) and one-study reads on demand."""

    def __init__(self, run: RunDir | str | Path, *, defer: bool = False) -> None:
        self.run = run if isinstance(run, RunDir) else RunDir.open(run)
        if not self.run.has_table("traces"):
            raise DatakitError(f"{self.run.root} has no traces.parquet",
                               hint="run `datakit annotate` (and `datakit validate`) for this run first")
        self.validated = self.run.has_table("validation")
        self._index: pl.DataFrame | None = None
        self._id_cache: dict[str, set[str]] = {}
        self._row_of: dict[str, int] | None = None
        if not defer:  # the app builds it in a thread while the terminal starts
            self.load()

    def load(self) -> pl.DataFrame:
        """Build the index (once)."""
        if self._index is None:
            self._index = self._build_index()
        return self._index

    @property
    def loaded(self) -> bool:
        """Whether the index has been built."""
        return self._index is not None

    @property
    def index(self) -> pl.DataFrame:
        """One row per trace: trace_row, study_id, teacher, study_row, split, the labels, status, codes, checks."""
        return self.load()

    # the index -------------------------------------------------------------------------------------------
    def _build_index(self) -> pl.DataFrame:
        traces = _scan(self.run.table_path("traces")).select("study_id", "teacher").with_row_index("trace_row")
        if self.run.has_table("studies"):
            studies = _scan(self.run.table_path("studies")).select("study_id", "split", *LABEL_COLUMNS)
            studies = studies.with_row_index("study_row")
            frame = traces.join(studies, on="study_id", how="left", maintain_order="left")
        else:
            frame = traces.with_columns(pl.lit(None, pl.Utf8).alias("split"),
                                        pl.lit(None, pl.UInt32).alias("study_row"),
                                        *[pl.lit(None, pl.Int8).alias(c) for c in LABEL_COLUMNS])
        if self.validated:
            failed = (
                _scan(self.run.table_path("validation"))
                .select("study_id", "check", "code", "passed", "severity")
                .filter(~pl.col("passed"))
                .group_by("study_id")
                .agg(
                    (pl.col("severity") == "error").any().alias("_error"),
                    pl.col("code").unique(maintain_order=True).alias("codes"),
                    pl.col("check").unique(maintain_order=True).alias("checks"),
                )
            )
            judged = _scan(self.run.table_path("validation")).select("study_id").unique()
            frame = (
                frame.join(failed, on="study_id", how="left", maintain_order="left")
                .join(judged.with_columns(pl.lit(True).alias("_judged")), on="study_id", how="left",
                      maintain_order="left")
                .with_columns(
                    pl.when(pl.col("_judged").is_null()).then(pl.lit("unvalidated"))
                    .when(pl.col("_error").fill_null(False)).then(pl.lit("rejected"))
                    .when(pl.col("codes").is_not_null()).then(pl.lit("flagged"))
                    .otherwise(pl.lit("passed")).alias("status"),
                    pl.col("codes").fill_null(pl.lit([], pl.List(pl.Utf8))),
                    pl.col("checks").fill_null(pl.lit([], pl.List(pl.Utf8))),
                )
                .drop("_error", "_judged")
            )
        else:
            frame = frame.with_columns(pl.lit("unvalidated").alias("status"),
                                       pl.lit([], pl.List(pl.Utf8)).alias("codes"),
                                       pl.lit([], pl.List(pl.Utf8)).alias("checks"))
        return frame.collect()

    def counts(self) -> dict[str, int]:
        """Traces per validation status, and in all."""
        c = dict(self.index.group_by("status").len().iter_rows())
        return {"traces": self.index.height, **{s: int(c.get(s, 0)) for s in STATUSES}}

    def values(self, column: str) -> list[str]:
        """The distinct values of an index column (split, teacher; codes flattened), for the filter's help."""
        s = self.index[column]
        if s.dtype == pl.List(pl.Utf8):
            s = s.explode()
        return sorted(v for v in s.drop_nulls().unique().to_list())

    # filters ---------------------------------------------------------------------------------------------
    def _matching_ids(self, key: str, build: Any) -> set[str]:
        """Study ids a trace scan matches, computed once per key."""
        if key not in self._id_cache:
            self._id_cache[key] = set(build().collect()["study_id"].to_list())
        return self._id_cache[key]

    def with_corrections(self) -> set[str]:
        """Ids of the traces whose reflection corrects something."""
        return self._matching_ids("corrections", lambda: _scan(self.run.table_path("traces")).select(
            "study_id", "trace_json").filter(pl.col("trace_json").str.contains(HAS_CORRECTIONS)).select("study_id"))

    def matching_text(self, text: str) -> set[str]:
        """Ids of the studies whose trace or report contains ``text`` (case-insensitive)."""
        pattern = "(?i)" + re.escape(text)

        def build() -> pl.LazyFrame:
            hits = (_scan(self.run.table_path("traces")).select("study_id", "trace_json")
                    .filter(pl.col("trace_json").str.contains(pattern)).select("study_id"))
            if self.run.has_table("studies"):
                reports = (_scan(self.run.table_path("studies")).select("study_id", "report_text")
                           .filter(pl.col("report_text").str.contains(pattern)).select("study_id"))
                hits = pl.concat([hits, reports]).unique()
            return hits

        return self._matching_ids("text:" + text.lower(), build)

    def expression(self, flt: Filter, decisions: dict[str, dict[str, Any]] | None = None) -> pl.Expr:
        """The filter as one boolean expression over the index (trace scans run here, once per query)."""
        conds: list[pl.Expr] = []
        if flt.split:
            conds.append(pl.col("split") == flt.split)
        if flt.teacher:
            conds.append(pl.col("teacher") == flt.teacher)
        if flt.status:
            conds.append(pl.col("status") == flt.status)
        if flt.code:
            conds.append(pl.col("codes").list.contains(flt.code) | pl.col("checks").list.contains(flt.code))
        if flt.label:
            col, value = flt.label
            conds.append(pl.col(col).is_null() if value is None else pl.col(col) == value)
        if flt.decision:
            latest = decisions or {}
            if flt.decision in ("none", "any"):
                decided = pl.col("study_id").is_in(list(latest))
                conds.append(~decided if flt.decision == "none" else decided)
            else:
                ids = [s for s, r in latest.items() if r["decision"] == flt.decision]
                conds.append(pl.col("study_id").is_in(ids))
        if flt.corrections is not None:
            has = pl.col("study_id").is_in(list(self.with_corrections()))
            conds.append(has if flt.corrections else ~has)
        if flt.text:
            conds.append(pl.col("study_id").is_in(list(self.matching_text(flt.text))))
        return pl.all_horizontal(conds) if conds else pl.lit(True)

    def select(self, flt: Filter, decisions: dict[str, dict[str, Any]] | None = None) -> pl.DataFrame:
        """The index rows the filter keeps, in run order."""
        return self.index.filter(self.expression(flt, decisions))

    # one study -------------------------------------------------------------------------------------------
    def row(self, study_id: str) -> dict[str, Any]:
        """The index row of one study."""
        if self._row_of is None:
            self._row_of = {s: i for i, s in enumerate(self.index["study_id"].to_list())}
        if study_id not in self._row_of:
            raise DatakitError(f"{self.run.root} has no trace for study {study_id!r}",
                               hint="`datakit review` lists the studies; ids are the traces.parquet study_id")
        return self.index.row(self._row_of[study_id], named=True)

    def _slice(self, table: str, row: int | None) -> dict[str, Any] | None:
        if row is None or not self.run.has_table(table):
            return None
        rows = _scan(self.run.table_path(table)).slice(row, 1).collect().to_dicts()
        return rows[0] if rows else None

    def _rows(self, table: str, study_id: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
        if not self.run.has_table(table):
            return []
        lf = _scan(self.run.table_path(table)).filter(pl.col("study_id") == study_id)
        if columns:
            lf = lf.select(columns)
        return lf.collect().to_dicts()

    def study(self, study_id: str) -> dict[str, Any]:
        """Everything stored about one study: trace row, study row, images, validation rows, knowledge hits."""
        idx = self.row(study_id)
        return {
            "study_id": study_id,
            "status": idx["status"],
            "trace": self._slice("traces", idx["trace_row"]),
            "study": self._slice("studies", idx["study_row"]),
            "images": self._rows("images", study_id, ["image_id", "view", "converted_path", "source_path",
                                                      "width", "height"]),
            "validation": self._rows("validation", study_id),
            "knowledge": self._rows("knowledge", study_id),
        }


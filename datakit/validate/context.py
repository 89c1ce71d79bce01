"""What every check gets: the run's tables, the traces decoded into tables, the knowledge base, the labeler.

Everything derived is computed on first use and shared by all checks, so a check pays only for what it reads.
The trace semantics the checks are written against (issue #5):

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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import cached_property, lru_cache
from typing import Any

import polars as pl

from datakit import tables
from datakit.config import ValidateConfig

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
    from datakit.trace import trace_schema

    schema = trace_schema()
    return _dtype(schema, schema.get("definitions", {}))  # type: ignore[return-value]


def ascii_boundaries(pattern: str) -> str:
    r"""``pattern`` with ASCII word boundaries, for polars.

    Its Rust regex engine runs a Unicode ``\b`` about 70 times slower over long texts (measured: 4.3 s against
    0.06 s for 20,000 think texts).
    """
    return pattern.replace(r"\b", r"(?-u:\b)")


# Rows per slice of the heavier text work (JSON decoding, sentence hashing): bounds its transient memory, and
# polars runs the slices in parallel. One pass over all 227,835 traces at once held 3 GB more at its peak.
SLICE_ROWS = 16_384


def sliced(frame: pl.DataFrame, build: Callable[[pl.LazyFrame], pl.LazyFrame]) -> pl.DataFrame:
    """``build`` applied to slices of ``frame``, run in parallel by polars, concatenated in order."""
    starts = range(0, frame.height, SLICE_ROWS) if frame.height else [0]
    parts = pl.collect_all([build(frame.slice(i, SLICE_ROWS).lazy()) for i in starts])
    return pl.concat(parts, rechunk=False) if len(parts) > 1 else parts[0]


UNIT_SPLIT = r"[.;:!?→]+(?:[ \t\r\n]+|$)|\n+"  # ASCII classes: polars runs Unicode \s far slower


def normalized_unit(col: pl.Expr) -> pl.Expr:
    """A sentence as compared: lower case, digits as 0, punctuation as space, single spaces."""
    return (
        col.str.to_lowercase()
        .str.replace_all(r"[0-9]+", "0")
        .str.replace_all(r"[^a-z0 ]+", " ")
        .str.replace_all(r" {2,}", " ")
        .str.strip_chars()
    )


def sentence_units(
    frame: pl.DataFrame, column: str, *, min_words: int = 3, keep_text: bool = False
) -> pl.DataFrame:
    """study_id, h (u64), words [, text]: the distinct normalised sentences of ``frame[column]``."""

    def build(lf: pl.LazyFrame) -> pl.LazyFrame:
        units = lf.select(
            "study_id", pl.col(column).str.replace_all(UNIT_SPLIT, "\n").str.split("\n").alias("text")
        )
        units = units.explode("text").with_columns(normalized_unit(pl.col("text")).alias("norm"))
        units = units.with_columns((pl.col("norm").str.count_matches(" ") + 1).cast(pl.UInt32).alias("words"))
        units = units.filter((pl.col("norm") != "") & (pl.col("words") >= min_words))
        cols = ["study_id", pl.col("norm").hash(seed=0).alias("h"), "words", *(["text"] if keep_text else [])]
        return units.select(cols).unique(["study_id", "h"], keep="first", maintain_order=True)

    return sliced(frame, build)


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


def positive_names(values: tuple[int, ...]) -> pl.Expr:
    """Comma-joined names of the finding labels holding one of ``values`` ("" when none).

    Finding labels are all but No Finding and Support Devices; evaluated on a frame with the 14 label columns.
    """
    cols = [c for c in tables.LABEL_COLUMNS if c not in ("no_finding", "support_devices")]
    parts = [pl.when(pl.col(c).is_in(list(values))).then(pl.lit(tables.LABELS[c])) for c in cols]
    return pl.concat_list(parts).list.drop_nulls().list.join(", ")


def _one_row_each(frame: pl.DataFrame, column: str, index: str) -> pl.DataFrame:
    """One row per element of the list-of-structs ``column``, numbered from 0 in ``index``, fields unnested."""
    numbered = frame.with_columns(pl.int_ranges(0, pl.col(column).list.len(), dtype=pl.Int32).alias(index))
    return numbered.explode([column, index]).drop_nulls(index).unnest(column)


class Context:
    """The run as the checks see it. Tables are polars DataFrames; derived ones are built on first use."""

    def __init__(
        self,
        traces: pl.DataFrame,
        studies: pl.DataFrame,
        images: pl.DataFrame,
        hits: pl.DataFrame,
        kb: Any,
        labeler: Any,
        config: ValidateConfig,
    ) -> None:
        self.traces = traces
        self.studies = studies
        self.images = images
        self.hits = hits
        self.kb = kb
        self.labeler = labeler
        self.config = config
        self.notes: list[str] = []  # things the summary should say (e.g. a part skipped)
        # row-level failures of the pandera table schema, found before duplicates are set aside
        self.table_problems: pl.DataFrame | None = None
        # text → what the finding reader read in it, shared by the checks that read texts (checks/mentions.py)
        self.readings: dict[str, list[tuple]] = {}

    # --- the bulk pass ---
    @cached_property
    def parsed(self) -> pl.DataFrame:
        """The bulk pass, per trace in table order.

        ``parse_code`` (ok, invalid_json, schema_violation), its message, and for valid traces the rendered
        ``think`` text, ``report`` text and ``tag_problem`` (null when well-formed).
        """
        from datakit.validate.parse import parse_chunks

        names = ["parse_code", "parse_message", "think", "report", "tag_problem"]
        schema = dict.fromkeys(names, pl.Utf8)
        parts = [
            pl.DataFrame(rows, schema=schema, orient="row")
            for rows in parse_chunks(
                self.traces["trace_json"], tuple(self.config.think_tags), self.config.workers
            )
        ]
        parsed = pl.concat(parts, rechunk=False) if parts else pl.DataFrame(schema=schema)
        return pl.concat([self.traces.select("study_id"), parsed], how="horizontal")

    @cached_property
    def _valid_mask(self) -> pl.Series | None:
        """Per trace row, whether it is valid against the JSON Schema; None when all are."""
        mask = self.parsed["parse_code"] == "ok"
        return None if mask.all() else mask

    def only_valid(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``frame`` (aligned with the traces) whose trace is valid; no copy when all are."""
        return frame if self._valid_mask is None else frame.filter(self._valid_mask)

    @cached_property
    def valid_ids(self) -> pl.Series:
        """Study ids of the traces valid against the JSON Schema: what the content checks judge."""
        return self.only_valid(self.traces.select("study_id"))["study_id"]

    @cached_property
    def texts(self) -> pl.DataFrame:
        """study_id, think (the rendered think text), report (rendered), tag_problem — valid traces only."""
        return self.only_valid(self.parsed).select("study_id", "think", "report", "tag_problem")

    @cached_property
    def think_units(self) -> pl.DataFrame:
        """study_id, h, words: the hashed sentences of each think text, for near-duplicate and copy checks.

        Sentences, and clauses after ':', ';' or '→', of three words or more; normalised by
        :func:`sentence_units`.
        """
        return sentence_units(self.texts, "think")

    def iter_traces(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(study_id, trace dict) of every valid trace, for checks easiest written in plain Python."""
        for sid, text in self.only_valid(self.traces.select("study_id", "trace_json")).iter_rows():
            yield sid, json.loads(text)

    # --- decoded traces ---
    @cached_property
    def decoded(self) -> pl.DataFrame:
        """study_id + the trace's four parts as struct/list columns (valid traces only)."""
        valid = self.only_valid(self.traces.select("study_id", "trace_json"))
        dtype = trace_dtype()
        return sliced(
            valid,
            lambda lf: lf.select("study_id", pl.col("trace_json").str.json_decode(dtype).alias("t")).unnest(
                "t"
            ),
        )

    @cached_property
    def draft(self) -> pl.DataFrame:
        """The draft perception, one row per item (``normal`` items included).

        Columns: study_id, item, region, finding, status, laterality, severity, evidence.
        """
        return _one_row_each(self.decoded.select("study_id", "perception"), "perception", "item")

    @cached_property
    def steps(self) -> pl.DataFrame:
        """The reasoning, one row per step.

        Columns: study_id, step, observation, inference, knowledge, conclusion, status.
        """
        return _one_row_each(self.decoded.select("study_id", "reasoning"), "reasoning", "step")

    @cached_property
    def reflection(self) -> pl.DataFrame:
        """study_id, checked (list), summary, n_corrections."""
        r = self.decoded.select("study_id", pl.col("reflection"))
        return r.select(
            "study_id",
            pl.col("reflection").struct.field("checked"),
            pl.col("reflection").struct.field("summary"),
            pl.col("reflection").struct.field("corrections").list.len().alias("n_corrections"),
        )

    @cached_property
    def corrections(self) -> pl.DataFrame:
        """The reflection's corrections, one row per correction, matched to the draft.

        Columns: study_id, corr, kind, finding, before_*/after_* (status, laterality, severity), note,
        ``matched`` (its before is in the draft) and ``draft_state`` (what the draft has, for messages).
        """
        c = self.decoded.select("study_id", pl.col("reflection").struct.field("corrections").alias("c"))
        c = _one_row_each(c, "c", "corr")
        c = c.with_columns(
            *[pl.col("before").struct.field(f).alias(f"before_{f}") for f in STATE_FIELDS],
            *[pl.col("after").struct.field(f).alias(f"after_{f}") for f in STATE_FIELDS],
        ).drop("before", "after")
        return self._match(c)

    def _match(self, c: pl.DataFrame) -> pl.DataFrame:
        draft = self.draft.filter(pl.col("finding") != "normal")
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
        nf = self.draft_conclusions.filter(pl.col("finding") == "no_finding").select(
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

    @cached_property
    def final(self) -> pl.DataFrame:
        """The final perception: the draft with the matched corrections applied (``normal`` items excluded).

        Columns as :attr:`draft` plus ``source``: draft, corrected or added.
        """
        draft = self.draft.filter(pl.col("finding") != "normal")
        corr = self.corrections.filter(pl.col("matched") & (pl.col("finding") != "no_finding"))
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
            self.entries.select("entry_id", "region"), left_on="finding", right_on="entry_id", how="left"
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

    @cached_property
    def draft_conclusions(self) -> pl.DataFrame:
        """study_id, finding, status: the reasoning's conclusions (``normal`` read as ``no_finding``)."""
        s = self.steps.select(
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

    @cached_property
    def conclusions(self) -> pl.DataFrame:
        """study_id, finding, status, source (draft or corrected): the final conclusions."""
        after = (
            self.corrections.sort("corr").group_by("study_id", "finding").agg(pl.col("after_status").last())
        )
        out = self.draft_conclusions.join(after, on=["study_id", "finding"], how="full", coalesce=True)
        return out.select(
            "study_id",
            "finding",
            pl.coalesce("after_status", "status").alias("status"),
            pl.when(pl.col("after_status").is_not_null())
            .then(pl.lit("corrected"))
            .otherwise(pl.lit("draft"))
            .alias("source"),
        )

    # --- knowledge and labels ---
    @cached_property
    def entries(self) -> pl.DataFrame:
        """The knowledge base as a table: entry_id, region, chexpert (the label column it counts towards)."""
        rows = [(e.id, e.region, e.chexpert) for e in self.kb.entries.values()]
        return pl.DataFrame(
            rows, schema={"entry_id": pl.Utf8, "region": pl.Utf8, "chexpert": pl.Utf8}, orient="row"
        )

    @cached_property
    def labels(self) -> pl.DataFrame:
        """study_id, dataset, label_source and the 14 label columns of the studies with a valid trace."""
        cols = ["study_id", "dataset", "label_source", *tables.LABEL_COLUMNS]
        return self.studies.select(cols).join(self.valid_ids.to_frame(), on="study_id", how="semi")

    @cached_property
    def labels_long(self) -> pl.DataFrame:
        """study_id, label, value: the labels that are mentioned (1, 0, -1)."""
        return (
            self.labels.select("study_id", *tables.LABEL_COLUMNS)
            .unpivot(index="study_id", variable_name="label", value_name="value")
            .drop_nulls("value")
        )

    @cached_property
    def reader(self) -> Any:
        """The finding reader over the knowledge base: text → entries with status, side and grade.

        The same engine the offline teacher reads reports with (``datakit.annotate.reader``), so the checks
        that read evidence and report text judge them the way the teacher was built to write them.
        """
        from datakit.annotate.reader import FindingReader

        return FindingReader(self.kb)

    @cached_property
    def report_sentences(self) -> pl.DataFrame:
        """study_id, sentence: the final report (findings, then impression) cut at sentence ends."""
        rep = self.decoded.select(
            "study_id",
            pl.concat_str(
                [
                    pl.col("report").struct.field("findings").fill_null(""),
                    pl.col("report").struct.field("impression").fill_null(""),
                ],
                separator="\n",
            )
            .str.replace_all(r"([.!?])[ \t\r\n]+", "${1}\n")
            .str.split("\n")
            .alias("sentence"),
        )
        return rep.explode("sentence").filter(pl.col("sentence").str.contains(r"[A-Za-z]"))

    @cached_property
    def label_texts(self) -> pl.DataFrame:
        """study_id, text: the part of each final report the labeler reads (``validate.label_text``)."""
        rep = self.decoded.select(
            "study_id",
            pl.col("report").struct.field("findings").str.strip_chars().alias("f"),
            pl.col("report").struct.field("impression").str.strip_chars().alias("i"),
        )
        if self.config.label_text == "impression":
            text = pl.when(pl.col("i") != "").then(pl.col("i")).otherwise(pl.col("f"))
        else:
            text = pl.concat_str([pl.col("f"), pl.col("i")], separator="\n\n").str.strip_chars()
        return rep.select("study_id", text.alias("text"))

    @cached_property
    def report_labels(self) -> pl.DataFrame | None:
        """study_id + the 14 label columns as the labeler reads each final report; None without a labeler."""
        if self.labeler is None:
            self.notes.append("no labeler: the final reports were not read against the labels")
            return None
        texts = self.label_texts
        got = self.labeler.label_many(texts["text"].to_list(), workers=self.config.workers)
        got = got.select([pl.col(c).cast(pl.Int8) for c in tables.LABEL_COLUMNS])
        return pl.concat([texts.select("study_id"), got], how="horizontal")

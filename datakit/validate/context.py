"""What every check gets: the run's tables, the traces decoded into tables, the knowledge base, the labeler.

Everything derived is computed on first use and shared by all checks, so a check pays only for what it reads.
The checks are written against the trace semantics of :mod:`datakit.semantics` (draft, corrections matched
to it, final perception, final conclusions); its module docstring states the rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import polars as pl

from datakit import semantics as sem
from datakit import tables
from datakit.config import ValidateConfig
from datakit.semantics import sliced


def ascii_boundaries(pattern: str) -> str:
    r"""``pattern`` with ASCII word boundaries, for polars.

    Its Rust regex engine runs a Unicode ``\b`` about 70 times slower over long texts (measured: 4.3 s against
    0.06 s for 20,000 think texts).
    """
    return pattern.replace(r"\b", r"(?-u:\b)")


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


def positive_names(values: tuple[int, ...]) -> pl.Expr:
    """Comma-joined names of the finding labels holding one of ``values`` ("" when none).

    Finding labels are all but No Finding and Support Devices; evaluated on a frame with the 14 label columns.
    """
    cols = [c for c in tables.LABEL_COLUMNS if c not in ("no_finding", "support_devices")]
    parts = [pl.when(pl.col(c).is_in(list(values))).then(pl.lit(tables.LABELS[c])) for c in cols]
    return pl.concat_list(parts).list.drop_nulls().list.join(", ")


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
        # text → what the second reader read in it (checks/second_read.py)
        self.second_readings: dict[str, Any] = {}
        # more figures for the summary, by name (e.g. the priors check's counts)
        self.summary_extra: dict[str, Any] = {}
        self.run: Any = None  # the RunDir, when validating one (the LLM judge keeps its cache there)

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

    def release_json(self) -> None:
        """Decode what the checks read from ``trace_json`` now, then drop the column (half a GB at MIMIC scale)."""
        if "trace_json" not in self.traces.columns:
            return
        _ = self.parsed, self.decoded, self.think_units
        self.traces = self.traces.drop("trace_json")

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
        return sem.decode(self.only_valid(self.traces.select("study_id", "trace_json")))

    @cached_property
    def draft(self) -> pl.DataFrame:
        """The draft perception, one row per item (``normal`` items included).

        Columns: study_id, item, region, finding, status, laterality, severity, evidence.
        """
        return sem.draft_items(self.decoded)

    @cached_property
    def steps(self) -> pl.DataFrame:
        """The reasoning, one row per step.

        Columns: study_id, step, observation, inference, knowledge, conclusion, status.
        """
        return sem.reasoning_steps(self.decoded)

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
        return sem.corrections(self.decoded, self.draft, self.draft_conclusions)

    @cached_property
    def final(self) -> pl.DataFrame:
        """The final perception: the draft with the matched corrections applied (``normal`` items excluded).

        Columns as :attr:`draft` plus ``source``: draft, corrected or added.
        """
        return sem.final_perception(self.draft, self.corrections, self.entries)

    @cached_property
    def draft_conclusions(self) -> pl.DataFrame:
        """study_id, finding, status: the reasoning's conclusions (``normal`` read as ``no_finding``)."""
        return sem.draft_conclusions(self.steps)

    @cached_property
    def conclusions(self) -> pl.DataFrame:
        """study_id, finding, status, source (draft or corrected): the final conclusions."""
        return sem.final_conclusions(self.draft_conclusions, self.corrections)

    # --- knowledge and labels ---
    @cached_property
    def entries(self) -> pl.DataFrame:
        """The knowledge base as a table: entry_id, region, chexpert (the label column it counts towards)."""
        return sem.entries_table(self.kb)

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

        The same engine the offline teacher reads reports with (``datakit.reading.findings``), so the checks
        that read evidence and report text judge them the way the teacher was built to write them.
        """
        from datakit.reading.findings import FindingReader

        return FindingReader(self.kb)

    @cached_property
    def second_reader(self) -> Any:
        """The second reader (``datakit.reading.second``): reads reports apart from the teacher's reader."""
        from datakit.reading.second import SecondReader

        return SecondReader(self.kb)

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

"""Annotate: studies + images + retrieved knowledge → ``traces.parquet`` (one trace per study).

The teacher is chosen by ``teacher.kind``: ``offline`` (deterministic, no network, the default) or ``llm`` (any
OpenAI-compatible endpoint, every call cached in ``cache.sqlite``). Studies the teacher cannot annotate go to
quarantine with a reason; for the stage, studies in = traces out + quarantined.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from datakit import tables
from datakit.annotate.prompts import PromptSet
from datakit.annotate.teacher import ImageRef, StudyInput, TraceOutcome, get_teacher
from datakit.config import DatakitConfig
from datakit.errors import ConfigError, RunDirError
from datakit.hashing import content_hash, file_digest
from datakit.knowledge import load_configured
from datakit.reading.lexicon import default_lexicon_path
from datakit.resources import schema_path
from datakit.rundir import Quarantine, RunDir
from datakit.stage import STAGES, Stage, open_run
from datakit.text import clean
from datakit.trace import SCHEMA_ID, SCHEMA_NAME


@dataclass
class AnnotateResult:
    """What annotate produced."""

    run: RunDir
    teacher: str
    traces: pl.DataFrame
    counts: dict[str, int]
    quarantine: Quarantine
    injected: dict[str, int]
    skipped: bool = False


_SWALLOWED = re.compile(r"(?:^|\s)(?:IMPRESSION|CONCLUSION)\s*:\s*")


def _split_swallowed(findings: str, impression: str) -> tuple[str, str]:
    """Undo the official parser's swallowed header for the report a model is trained to write.

    A FINDINGS header followed on the next line by IMPRESSION: leaves "IMPRESSION: …" inside the findings text
    (mimic-cxr section_parser.py; the studies table keeps it, for comparability). The trace's report should not
    teach a model to write a header inside its findings, so that text becomes the impression when there is none.
    """
    m = _SWALLOWED.search(findings)
    if m is None or impression:
        return findings, impression
    return findings[: m.start()].strip(), findings[m.end() :].strip()


def build_inputs(run: RunDir, studies: pl.DataFrame, images: pl.DataFrame, hits: pl.DataFrame) -> list[StudyInput]:
    """One :class:`StudyInput` per study, from the run's tables."""
    root = str(run.root.resolve())
    by_study: dict[str, list[ImageRef]] = {}
    order = {"PA": 0, "AP": 1, "FRONTAL": 2, "LATERAL": 3, "LL": 4}
    for image_id, study_id, view, converted, key in images.select(
        "image_id", "study_id", "view", "converted_path", "convert_key"
    ).iter_rows():
        path = os.path.join(root, converted) if converted else None  # (a Path per image costs 10 µs)
        by_study.setdefault(study_id, []).append(ImageRef(image_id, view, path, key if converted else None))
    knowledge: dict[str, list[str]] = {}
    for study_id, entry_id in hits.sort("study_id", "rank").select("study_id", "entry_id").iter_rows():
        knowledge.setdefault(study_id, []).append(entry_id)
    out = []
    cols = ["study_id", "dataset", "indication", "comparison", "findings", "impression", "extracted_text",
            *tables.LABEL_COLUMNS]
    for row in studies.select(cols).iter_rows(named=True):
        sid = row["study_id"]
        findings, impression = _split_swallowed(clean(row["findings"]), clean(row["impression"]))
        if not findings and not impression:
            # no FINDINGS/IMPRESSION header (a final paragraph or a custom rule gave the text): that text is the report
            findings = clean(row["extracted_text"])
        refs = sorted(by_study.get(sid, []), key=lambda r: (order.get(r.view, 9), r.image_id))
        out.append(
            StudyInput(
                study_id=sid,
                dataset=row["dataset"],
                indication=clean(row["indication"]),
                comparison=clean(row["comparison"]),
                findings=findings,
                impression=impression,
                labels={c: row[c] for c in tables.LABEL_COLUMNS},
                images=tuple(refs),
                knowledge=tuple(dict.fromkeys(knowledge.get(sid, []))),
            )
        )
    return out


def outcomes_to_table(outcomes: list[TraceOutcome], teacher: str, n_images: dict[str, int]) -> pl.DataFrame:
    """The traces table from the successful outcomes.

    Built in slices, each outcome's JSON text released once it is in the table, so a full-scale run never holds
    the 227k traces twice (as Python strings and as Arrow).
    """
    schema = {name: col.dtype.type for name, col in tables.Traces.columns.items()}
    ok = [o.compact() for o in outcomes if o.ok]
    parts = []
    for start in range(0, len(ok), 16_384):
        part = ok[start : start + 16_384]
        parts.append(pl.DataFrame(
            {
                "study_id": [o.study_id for o in part],
                "trace_json": [o.trace_json for o in part],
                "schema_id": [SCHEMA_ID] * len(part),
                "teacher": [teacher] * len(part),
                "model": [o.model for o in part],
                "templates": [o.templates for o in part],
                "template_sha": [o.template_sha for o in part],
                "knowledge_ids": [o.cited for o in part],
                "injected_error": [o.injected_error for o in part],
                "n_images": [n_images[o.study_id] for o in part],
                "input_tokens": [o.input_tokens for o in part],
                "output_tokens": [o.output_tokens for o in part],
                "cost_usd": [o.cost_usd for o in part],
                "cache_keys": [o.cache_keys for o in part],
            },
            schema=schema,
        ))
        for o in part:
            o.trace_json = None  # in the table now
    df = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
    return tables.Traces.validate(df.sort("study_id"))


def _depends(run: RunDir, config: DatakitConfig) -> dict:
    """What the traces depend on besides the tables and the teacher's settings."""
    deps = {
        "teacher_version": TEACHER_VERSIONS.get(config.teacher.kind),
        "knowledge": load_configured(config).fingerprint,
        "schema": file_digest(schema_path(SCHEMA_NAME)),
    }
    if config.teacher.kind == "offline":
        deps["lexicon"] = file_digest(default_lexicon_path())
    else:  # every template of the prompt folder: a changed one re-asks only what it touches (the cache)

        folder = PromptSet(config.teacher.prompts_dir).folder
        deps["templates"] = content_hash({str(t.relative_to(folder)): t.read_text(encoding="utf-8")
                                          for t in sorted(folder.rglob("*.j2"))})
    return deps


# The version of each teacher's own rules: bump it when the same inputs give different traces.
TEACHER_VERSIONS = {"offline": 1, "llm": 1}
STAGE = Stage(
    "annotate",
    reads=("studies", "images", "knowledge"),
    writes=("traces",),
    config_sections=("teacher", "knowledge"),
    depends=_depends,
    options=("limit",),
    # how fast and how patiently the teacher is asked, never what: the cache answers a re-run either way
    ignore=tuple(f"teacher.{k}" for k in (
        "workers", "max_concurrency", "max_requests_per_minute", "max_tokens_per_minute", "max_retries",
        "request_timeout_s", "connect_timeout_s", "backoff_initial_s", "backoff_max_s", "max_retry_after_s",
        "batch_poll_s", "batch_poll_max_s", "cache_path")),
)
STAGES.add(STAGE.name, STAGE)


def _prepare(run_dir: str | RunDir, config: DatakitConfig | str | Path | None, limit: int | None):

    run, config = open_run(run_dir, config)
    run.check_upstream(STAGE.reads, STAGE.name)
    studies = tables.Studies.validate(run.read_table("studies"))
    images = tables.Images.validate(run.read_table("images"))
    hits = tables.KnowledgeHits.validate(run.read_table("knowledge"))
    if limit is not None:
        studies = studies.head(limit)
    kb = load_configured(config)
    return config, run, studies, kb, build_inputs(run, studies, images, hits)


def guard_limit(run: RunDir, studies: pl.DataFrame, limit: int) -> None:
    """Refuse a ``--limit`` that would replace a run's traces with fewer."""
    if not run.has_table("traces"):
        return
    before = pl.read_parquet(run.table_path("traces"), columns=["study_id"])["study_id"]
    dropped = int((~before.is_in(studies["study_id"].implode())).sum())
    if dropped:
        raise RunDirError(
            f"--limit {limit} would replace the {before.len()} traces of {run.root} with {studies.height} "
            f"({dropped} studies would lose their trace)",
            hint="take a quick look in its own run (`datakit build CONFIG --limit N` makes RUN-limitN), "
                 "or add --replace to replace them",
        )


def estimate(run_dir: str | RunDir, config: DatakitConfig | str | Path | None = None, *, limit: int | None = None):
    """What an LLM run would send and cost (``--dry-run``): nothing is sent."""
    from datakit.annotate.cache import Cache
    from datakit.annotate.dryrun import estimate as estimate_requests

    config, run, _, kb, inputs = _prepare(run_dir, config, limit)
    if config.teacher.kind != "llm":
        raise ConfigError("--dry-run estimates the LLM teacher's requests; the offline teacher sends none",
                          hint="add --teacher llm --model NAME")
    teacher = get_teacher("llm")(config=config, kb=kb, run=run, progress=False)
    requests = teacher.first_requests(inputs)
    est = estimate_requests(requests, Cache.for_run(run, config.teacher.cache_path), config.teacher,
                            transport=config.teacher.transport)
    stages = 1 if config.teacher.prompt_mode == "single" else 3
    return est, stages


def run(
    run_dir: str | RunDir,
    config: DatakitConfig | str | Path | None = None,
    *,
    limit: int | None = None,
    progress: bool = True,
    force: bool = False,
    replace: bool = False,
) -> AnnotateResult:
    """Write a trace for every study of the run (or the first ``limit``); skipped when nothing changed.

    A ``limit`` that would leave out studies the run already has traces for is refused unless ``replace``.
    """
    run, config = open_run(run_dir, config)
    started = STAGE.start(run, config, force=force, limit=limit)
    if started.skipped:
        entry = started.entry or {}
        return AnnotateResult(run, entry.get("teacher", config.teacher.kind), run.read_table("traces"),
                              entry.get("counts", {}), Quarantine(STAGE.name), entry.get("injected_errors", {}),
                              skipped=True)
    config, run, studies, kb, inputs = _prepare(run, config, limit)
    if limit is not None and not replace:
        guard_limit(run, studies, limit)
    teacher = get_teacher(config.teacher.kind)(config=config, kb=kb, run=run, progress=progress)
    outcomes = teacher.annotate(inputs)

    quarantine = Quarantine(STAGE.name)
    for o in outcomes:
        if not o.ok:
            why = o.error or "the teacher gave no trace"
            quarantine.add("study", o.study_id, o.error_code or "teacher_failed", why)
    n_images = dict(studies.select("study_id", "n_images").iter_rows())
    traces = outcomes_to_table(outcomes, teacher.name, n_images)
    counts = quarantine.balance("study", studies.height, traces.height)
    outputs = {"traces": run.write_table("traces", traces)}
    run.write_quarantine(quarantine)
    injected = traces.group_by("injected_error").len().drop_nulls().iter_rows()
    injected_counts = {k: v for k, v in injected}
    STAGE.finish(
        run,
        config,
        started,
        counts=counts,
        outputs=outputs,
        teacher=teacher.name,
        schema_id=SCHEMA_ID,
        tokens={"input": int(traces["input_tokens"].sum()), "output": int(traces["output_tokens"].sum())},
        cost_usd=float(traces["cost_usd"].sum()),
        injected_errors=injected_counts,
        quarantined_by_code=dict(quarantine.by_code()),
        limit=limit,
    )
    return AnnotateResult(run, teacher.name, traces, counts, quarantine, injected_counts)

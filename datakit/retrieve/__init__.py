"""Retrieve: studies → ``knowledge.parquet``, the knowledge entries each study's reasoning should draw on.

Three lookups are merged per study:
- **label** — each positive (1) or uncertain (-1) CheXpert label brings its own entry (``label:<column>``);
- **tree** — every entry whose name or synonym the report mentions, negated or not (``tree:<region>``);
- **bm25** — the top ``knowledge.top_k`` entries for the report text as a query (``bm25``), leaving out those
  scoring under a quarter of the study's best.

The query text is the study's findings and impression, or its extracted text when both are empty. One row per
(study, entry); ``reason`` lists every lookup that found it, ``;``-joined in the order label, tree, bm25.
``score`` = BM25 score divided by the study's best BM25 score (0–1) + 0.5 if mentioned + 1.0 for a positive
label or 0.5 for an uncertain one; rows are ranked by score (ties by entry id) and cut at
``knowledge.max_hits``.

Usage::

    result = datakit.retrieve.run("runs/demo")           # reads studies.parquet, writes knowledge.parquet
    hits = datakit.retrieve.retrieve(studies, datakit.knowledge.load_kb())  # the pure function underneath
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from datakit import tables
from datakit.config import DatakitConfig
from datakit.knowledge import KnowledgeBase, load_configured
from datakit.knowledge.bm25 import get_index
from datakit.knowledge.tree import get_matcher
from datakit.rundir import RunDir
from datakit.stage import STAGES, Stage, open_run

__all__ = ["STAGE", "RetrieveResult", "label_entries", "query_texts", "retrieve", "run"]

# Bump when the merge or the scoring changes, so an unchanged run is not wrongly skipped.
ALGORITHM_VERSION = 1
LABEL_BONUS = {tables.POSITIVE: 1.0, tables.UNCERTAIN: 0.5}
TREE_BONUS = 0.5
# BM25 hits scoring under this fraction of the study's best hit are dropped: the long tail of a query that
# matched only a common word ("acute", "process") is noise, not knowledge.
BM25_MIN_RELATIVE = 0.25


@dataclass
class RetrieveResult:
    """What the stage produced, for the CLI summary and for callers."""

    run: RunDir
    hits: pl.DataFrame
    counts: dict[str, int]
    entries: int
    skipped: bool = False
    seconds: float = 0.0
    notes: dict[str, str] = field(default_factory=dict)


def query_texts(studies: pl.DataFrame) -> list[str]:
    """Each study's query: findings + impression, else the extracted text, else empty."""
    both = pl.concat_str([pl.col("findings"), pl.col("impression")], separator="\n", ignore_nulls=True)
    both = pl.when(both.str.strip_chars().str.len_chars() > 0).then(both)
    return studies.select(pl.coalesce(both, pl.col("extracted_text"), pl.lit(""))).to_series().to_list()


def label_entries(kb: KnowledgeBase, column: str) -> list[str]:
    """The entries a positive or uncertain label brings: its own entry, else every entry mapped to it."""
    entries = kb.by_label(column)
    own = [e.id for e in entries if e.id == column]
    return own or [e.id for e in entries]


def _label_rows(studies: pl.DataFrame) -> dict[int, list[tuple[str, int]]]:
    """Row index → [(label column, value)] for values 1 and -1."""
    out: dict[int, list[tuple[str, int]]] = {}
    for column in tables.LABEL_COLUMNS:
        values = studies[column]
        idx = (values.is_in([tables.POSITIVE, tables.UNCERTAIN]).fill_null(False)).arg_true().to_list()
        if not idx:
            continue
        vals = values.gather(idx).to_list()
        for i, v in zip(idx, vals, strict=True):
            out.setdefault(i, []).append((column, v))
    return out


def _merge(
    labels: list[tuple[str, int]], mentions: list, hits: list, by_label: dict[str, list[str]], max_hits: int
) -> list[tuple[str, float, str]]:
    """One study's hits from the three lookups: (entry id, score, reason), best first."""
    found: dict[str, list] = {}  # entry id → [score, label reasons, tree reasons, found by bm25]

    def slot(entry_id: str) -> list:
        return found.setdefault(entry_id, [0.0, [], [], False])

    for column, value in labels:
        for entry_id in by_label[column]:
            s = slot(entry_id)
            s[0] += LABEL_BONUS[value]
            s[1].append(f"label:{column}")
    for m in mentions:
        s = slot(m.entry_id)
        if not s[2]:
            s[0] += TREE_BONUS
            s[2].append(f"tree:{m.region}")
    best = hits[0].score if hits else 0.0
    for h in hits:
        if h.score >= BM25_MIN_RELATIVE * best:
            s = slot(h.entry_id)
            s[0] += h.score / best
            s[3] = True
    ranked = sorted(found.items(), key=lambda kv: (-round(kv[1][0], 9), kv[0]))[:max_hits]
    return [
        (e, round(sc, 6), ";".join([*lab, *tre, *(["bm25"] if bm else [])]))
        for e, (sc, lab, tre, bm) in ranked
    ]


def retrieve(studies: pl.DataFrame, kb: KnowledgeBase, *, k: int = 5, max_hits: int = 12) -> pl.DataFrame:
    """Knowledge hits for every study: the pure function under :func:`run` (validated on entry and exit)."""
    tables.Studies.validate(studies)
    texts = query_texts(studies)
    bm25_hits = get_index(kb).search_many(texts, k=k)
    mentions = get_matcher(kb).mentions_many(texts)
    labels = _label_rows(studies)
    by_label = {c: label_entries(kb, c) for c in tables.LABEL_COLUMNS}

    cols: dict[str, list] = {"study_id": [], "rank": [], "entry_id": [], "score": [], "reason": []}
    for i, study_id in enumerate(studies["study_id"].to_list()):
        merged = _merge(labels.get(i, []), mentions[i], bm25_hits[i], by_label, max_hits)
        for rank, (entry_id, score, reason) in enumerate(merged, start=1):
            cols["study_id"].append(study_id)
            cols["rank"].append(rank)
            cols["entry_id"].append(entry_id)
            cols["score"].append(score)
            cols["reason"].append(reason)
    out = pl.DataFrame(
        cols,
        schema={
            "study_id": pl.Utf8,
            "rank": pl.Int16,
            "entry_id": pl.Utf8,
            "score": pl.Float64,
            "reason": pl.Utf8,
        },
    )
    return tables.KnowledgeHits.validate(out)


def _counts(studies: pl.DataFrame, hits: pl.DataFrame) -> dict[str, int]:
    with_hits = hits["study_id"].n_unique() if hits.height else 0
    reason = hits["reason"]
    return {
        "study_in": studies.height,
        "study_with_hits": with_hits,
        "study_without_hits": studies.height - with_hits,
        "hits": hits.height,
        "hits_label": int(reason.str.contains("label:").sum()),
        "hits_tree": int(reason.str.contains("tree:").sum()),
        "hits_bm25": int(reason.str.contains("bm25").sum()),
    }


def _depends(run: RunDir, config: DatakitConfig) -> dict:
    return {"knowledge": load_configured(config).fingerprint}


STAGE = Stage(
    "retrieve",
    reads=("studies",),
    writes=("knowledge",),
    config_sections=("knowledge",),
    version=ALGORITHM_VERSION,
    depends=_depends,
)
STAGES.add(STAGE.name, STAGE)


def run(
    run: RunDir | str | Path, config: DatakitConfig | str | Path | None = None, *, force: bool = False
) -> RetrieveResult:
    """Read the run's studies, retrieve knowledge for each, write ``knowledge.parquet`` and the manifest.

    Skipped (the old table is returned) when the studies, the knowledge and the settings are all unchanged.
    """
    run, config = open_run(run, config)
    started = STAGE.start(run, config, force=force)
    kb = load_configured(config)
    if started.skipped:  # the counts are the manifest's: no need to read every report to say "skipped"
        hits = run.read_table("knowledge")
        return RetrieveResult(run, hits, (started.entry or {}).get("counts", {}), len(kb), skipped=True,
                              seconds=started.seconds)
    studies = run.read_table("studies")
    hits = retrieve(studies, kb, k=config.knowledge.top_k, max_hits=config.knowledge.max_hits)
    counts = _counts(studies, hits)
    outputs = {"knowledge": run.write_table("knowledge", hits)}
    STAGE.finish(
        run, config, started, counts=counts, outputs=outputs,
        knowledge_fingerprint=kb.fingerprint, knowledge_entries=len(kb), knowledge_folders=kb.folders,
    )
    return RetrieveResult(run, hits, counts, len(kb), seconds=started.seconds)

"""What a run holds, stage by stage, from its manifest: the summary of ``datakit build`` and ``datakit status``.

It reads a half-finished run too: the stages not finished yet are listed, and what to run next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datakit.rundir import RunDir

STAGES = ("ingest", "retrieve", "annotate", "validate", "export")


@dataclass
class RunStatus:
    """A run's state: which stages finished, their counts, and what comes next."""

    run: RunDir
    finished: dict[str, dict[str, Any]]  # stage → its manifest entry
    missing: list[str]  # stages not finished yet, in order
    studies: dict[str, int] = field(default_factory=dict)  # in / kept / quarantined
    ingest_reasons: dict[str, int] = field(default_factory=dict)  # studies set aside, by reason
    images: dict[str, int] = field(default_factory=dict)
    image_reasons: dict[str, int] = field(default_factory=dict)
    traces: dict[str, int] = field(default_factory=dict)  # in / out / quarantined (teacher)
    teacher_reasons: dict[str, int] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)  # accepted / rejected / flagged / pass rate
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    exported: dict[str, dict[str, int]] = field(default_factory=dict)  # format → split → rows
    teacher: dict[str, Any] = field(default_factory=dict)  # kind, tokens, cost, cached answers, failed calls
    export_dir: Path | None = None
    next_commands: list[str] = field(default_factory=list)


def _cache_rows(run: RunDir) -> tuple[int, int]:
    from datakit.annotate.cache import Cache

    if not run.cache_path.is_file():
        return 0, 0
    with Cache(run.cache_path) as cache:
        answered = cache.count(answered=True)
        return answered, cache.count(answered=False) - answered  # rows without an answer: calls that failed


def _exported(entry: dict[str, Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    rows = (entry.get("stats") or {}).get("rows") or {}
    for key, n in rows.items():
        fmt, _, split = key.partition("/")
        out.setdefault(fmt, {})[split] = int(n)
    return out


def run_status(run_dir: str | Path | RunDir) -> RunStatus:
    """Read the state of a run (nothing is written)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)
    stages = run.manifest().get("stages", {})
    finished = {s: stages[s] for s in STAGES if s in stages}
    status = RunStatus(run, finished, [s for s in STAGES if s not in stages])
    if "ingest" in finished:
        c = finished["ingest"].get("counts", {})
        status.studies = {"in": c.get("study_in", 0), "kept": c.get("study_out", 0),
                          "quarantined": c.get("study_quarantined", 0)}
        status.images = {"in": c.get("image_in", 0), "kept": c.get("image_out", 0),
                         "quarantined": c.get("image_quarantined", 0)}
        for row in run.read_quarantine("ingest"):
            reasons = status.ingest_reasons if row.get("kind") == "study" else status.image_reasons
            if row.get("kind") in ("study", "image"):
                reasons[row["code"]] = reasons.get(row["code"], 0) + 1
    if "annotate" in finished:
        a = finished["annotate"]
        c = a.get("counts", {})
        status.traces = {"in": c.get("study_in", 0), "out": c.get("study_out", 0),
                         "quarantined": c.get("study_quarantined", 0)}
        status.teacher_reasons = dict(a.get("quarantined_by_code") or {})
        tokens = a.get("tokens") or {}
        status.teacher = {"kind": a.get("teacher"), "input_tokens": tokens.get("input", 0),
                          "output_tokens": tokens.get("output", 0), "cost_usd": a.get("cost_usd", 0.0)}
    answered, failed = _cache_rows(run)
    if answered or failed:
        status.teacher.update({"cached_answers": answered, "failed_calls": failed})
    if "validate" in finished:
        v = finished["validate"]
        c = v.get("counts", {})
        status.validation = {"judged": c.get("trace_in", 0), "accepted": c.get("trace_out", 0),
                             "rejected": c.get("trace_quarantined", 0), "flagged": c.get("trace_flagged", 0),
                             "pass_rate": v.get("pass_rate"),
                             "gate": v.get("min_pass_rate", (v.get("summary") or {}).get("min_pass_rate"))}
        status.rejected_reasons = dict(v.get("quarantined_by_code") or {})
    if "export" in finished:
        status.exported = _exported(finished["export"])
        status.export_dir = run.path("export")
    status.next_commands = _next(run, status)
    return status


def _next(run: RunDir, status: RunStatus) -> list[str]:
    root = str(run.root)
    if status.missing:
        return [f"datakit build {run.config_path} --run {root}   # finishes {', '.join(status.missing)}; "
                "finished stages are skipped"]
    return [f"datakit review --run {root}   # look through the traces, accept or reject them",
            f"datakit finetune {run.path('export') / 'trl'} --model MODEL   # LoRA fine-tune a VLM on the export"]

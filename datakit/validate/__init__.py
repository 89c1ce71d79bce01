"""Validate: decide for every trace whether it is fit to train on, and say why (issue #5).

Reads traces.parquet with studies, images and knowledge of the run; writes ``validation.parquet`` (one row per
(study, check): the first failing code or ``ok``, its severity, and a message listing every problem the check
found), sets rejected traces aside in quarantine.jsonl with all their reasons, and records the counts in the
manifest. A trace is rejected when a row of severity ``error`` fails; ``warning`` rows only flag it. A row
that passed carries the most severe level its check can give (what a failure of it would have meant).

Checks are plain functions over tables, registered with :func:`check`: the built-in ones (schema,
clinical, evidence, faithfulness, knowledge, reflection, leakage, privacy, form, diversity, priors and the
optional judge) live in ``datakit/validate/checks/`` and
use the same decorator a user's check does::

    import polars as pl
    from datakit.validate import check, problems

    @check("hedging", codes={"hedged_impression": "warning"})
    def hedging(ctx):
        \"\"\"The report does not hedge.\"\"\"
        hedged = ctx.texts.filter(pl.col("report").str.contains("(?i)cannot be excluded"))
        return problems(hedged, "hedged_impression", "the report hedges")

Usage::

    result = datakit.validate.run("runs/demo", min_pass_rate=0.9)   # raises ValidationGateError below 90 %
    table = datakit.validate.validate(traces, studies, images, hits, kb=kb, labeler=labeler)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from datakit import tables
from datakit.config import DatakitConfig, ValidateConfig
from datakit.errors import RunDirError, ValidationGateError
from datakit.hashing import file_digest
from datakit.knowledge import load_configured
from datakit.reading.labeler import default_labeler
from datakit.reading.lexicon import default_lexicon_path
from datakit.rundir import Quarantine, RunDir
from datakit.stage import STAGES, Stage, open_run
from datakit.validate.context import Context
from datakit.validate.core import Outcome, rejected, run_checks, summarize
from datakit.validate.registry import CHECKS, Check, check, concat_problems, no_problems, problems

__all__ = [
    "CHECKS",
    "Check",
    "Context",
    "ValidationResult",
    "check",
    "concat_problems",
    "default_labeler",
    "no_problems",
    "problems",
    "run",
    "validate",
]


@dataclass
class ValidationResult:
    """What validation found: the table, the summary (plain data, JSON-ready) and the quarantine."""

    run: RunDir
    table: pl.DataFrame
    summary: dict[str, Any]
    quarantine: Quarantine
    counts: dict[str, int]
    skipped: bool = False

    @property
    def pass_rate(self) -> float:
        """Share of traces fit to train on."""
        return float(self.summary["pass_rate"])


def validate(
    traces: pl.DataFrame,
    studies: pl.DataFrame,
    images: pl.DataFrame,
    hits: pl.DataFrame | None = None,
    *,
    kb: Any = None,
    labeler: Any = None,
    config: ValidateConfig | None = None,
) -> pl.DataFrame:
    """The validation table (``tables.Validation``) of ``traces``: the pure function under :func:`run`.

    ``labeler`` reads the final reports (``label_many(texts, workers=)``); None loads the default one.
    """
    return _outcome(traces, studies, images, hits, kb=kb, labeler=labeler, config=config).table


def _outcome(traces, studies, images, hits, *, kb, labeler, config, run=None) -> Outcome:

    config = config or ValidateConfig()
    kb = kb if kb is not None else load_configured()
    if labeler is None:
        labeler = default_labeler(kb)
    if hits is None:
        hits = tables.empty(tables.KnowledgeHits)
    return run_checks(traces, studies, images, hits, kb=kb, labeler=labeler, config=config, run=run)


def _check_traces(run: RunDir) -> None:
    """A clear error when there are no traces to validate."""
    if not run.has_table("traces"):
        raise RunDirError(
            f"{run.root} has no traces.parquet: there is nothing to validate",
            hint=f"write traces first: `datakit annotate --run {run.root}`",
        )
    if run.table_rows("traces") == 0:
        raise RunDirError(
            f"{run.table_path('traces')} holds no traces: there is nothing to validate",
            hint="see why annotate wrote none in quarantine.jsonl (stage annotate), then re-run it",
        )


def _depends(run: RunDir, config: DatakitConfig) -> dict:
    """What the verdicts depend on besides the tables and the settings: knowledge, lexicon, plugins' code."""
    plugins = {}
    for name in config.validate.plugins:
        path = Path(name).expanduser()
        plugins[name] = file_digest(path) if path.is_file() else name  # a module: its name (installed code)
    out = {"knowledge": load_configured(config).fingerprint, "lexicon": file_digest(default_lexicon_path()),
           "plugins": plugins}
    judge = config.validate.llm_judge
    if judge.enabled:  # the judge's verdicts follow its prompt template
        from datakit.chat import SERVICES

        out["judge_prompt"] = SERVICES.get("openai").prompts(judge.prompts_dir).sha(judge.prompt)
    return out


# Bump when a built-in check changes its verdicts (2: faithfulness, priors and the optional judge, issue 15).
CHECKS_VERSION = 2
STAGE = Stage(
    "validate",
    reads=("traces", "studies", "images", "knowledge"),
    writes=("validation",),
    config_sections=("validate", "knowledge"),
    version=CHECKS_VERSION,
    depends=_depends,
    ignore=("validate.min_pass_rate", "validate.workers"),
)
STAGES.add(STAGE.name, STAGE)


def _gate(summary: dict[str, Any], gate: float | None) -> None:
    summary["min_pass_rate"] = gate
    summary["gate"] = None if gate is None else ("passed" if summary["pass_rate"] >= gate else "failed")


def _raise_if_gated(result: ValidationResult) -> ValidationResult:
    summary = result.summary
    if summary["gate"] == "failed":
        gate = summary["min_pass_rate"]
        err = ValidationGateError(
            f"{summary['pass_rate']:.1%} of traces passed validation, below the gate of {gate:.1%} "
            f"({summary['rejected']} of {summary['traces']} rejected)",
            hint=f"see why in {result.run.table_path('validation')} and quarantine.jsonl, or lower --min-pass-rate",
        )
        err.result = result  # type: ignore[attr-defined]
        raise err
    return result


def run(
    run: RunDir | str | Path,
    config: DatakitConfig | str | Path | None = None,
    *,
    min_pass_rate: float | None = None,
    labeler: Any = None,
    force: bool = False,
    workers: int | None = None,
    progress: bool = False,
) -> ValidationResult:
    """Validate every trace of the run; write validation.parquet, quarantine and manifest.

    Skipped when the traces, the tables they were judged against, the knowledge and the settings are unchanged
    (a custom ``labeler`` always runs). Raises :class:`ValidationGateError` (exit code 4) after writing, when
    the pass rate is below ``min_pass_rate`` (default ``validate.min_pass_rate``); the error's ``result`` holds
    the :class:`ValidationResult`.
    """
    run, config = open_run(run, config)
    vcfg = config.validate if workers is None else config.validate.model_copy(update={"workers": workers})
    gate = vcfg.min_pass_rate if min_pass_rate is None else min_pass_rate
    _check_traces(run)  # read after the skip check: a skipped validate reads no trace
    # traces judged against studies or hits rewritten since retrieve or annotate ran would be judged wrongly;
    # the earliest stale stage is named first, so the hint sends the user back far enough
    started = STAGE.start(run, config, force=force or labeler is not None)
    if started.skipped:
        entry = started.entry or {}
        summary = dict(entry.get("summary") or {})
        _gate(summary, gate)
        result = ValidationResult(run, run.read_table("validation"), summary, Quarantine(STAGE.name),
                                  entry.get("counts", {}), skipped=True)
        return _raise_if_gated(result)
    studies = run.read_table("studies")
    images = run.read_table("images")
    hits = run.read_table("knowledge") if run.has_table("knowledge") else tables.empty(tables.KnowledgeHits)
    kb = load_configured(config)
    if labeler is None:
        labeler = default_labeler(kb)
    # the traces table is read into the call, never held here: validation drops its JSON once decoded
    # (Context.release_json), which frees the memory only if no caller holds the frame
    outcome = run_checks(run.read_table("traces"), studies, images, hits, kb=kb, labeler=labeler, config=vcfg,
                         run=run, progress=progress)
    if not run.has_table("knowledge"):
        outcome.context.notes.append(
            "no knowledge.parquet: citations were grounded in perceived findings only"
        )

    quarantine = Quarantine(STAGE.name)
    dataset = dict(studies.select("study_id", "dataset").iter_rows())
    for sid, code, message in rejected(outcome.table).iter_rows():
        quarantine.add("trace", sid, code, message, dataset=dataset.get(sid))
    if outcome.duplicates is not None:
        for sid in outcome.duplicates["study_id"].to_list():
            quarantine.add(
                "trace",
                sid,
                "duplicate_trace",
                "traces.parquet holds more than one trace of this study; "
                "the first was validated, this one is set aside",
                dataset=dataset.get(sid),
            )
    summary = summarize(outcome, examples=vcfg.examples)
    _gate(summary, gate)
    summary["run"] = str(run.root)
    summary["seconds"]["total"] = round(started.seconds, 3)

    n_in = summary["traces"]
    counts = quarantine.balance("trace", n_in, n_in - summary["rejected"]) | {
        "trace_flagged": summary["flagged"]
    }
    outputs = {"validation": run.write_table("validation", outcome.table)}
    run.write_quarantine(quarantine)
    STAGE.finish(
        run,
        config,
        started,
        counts=counts,
        outputs=outputs,
        pass_rate=summary["pass_rate"],
        by_check={c["check"]: {"failed": c["failed"], "flagged": c["flagged"]} for c in summary["checks"]},
        quarantined_by_code=dict(quarantine.by_code()),
        summary=summary,
    )
    return _raise_if_gated(ValidationResult(run, outcome.table, summary, quarantine, counts))

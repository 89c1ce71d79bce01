"""Export: training files for TRL, LLaMA-Factory, ms-swift, Qwen2.5-VL and LLaVA, with a dataset card (issue #16).

``RUN/export/<format>/`` holds ``train``, ``val`` and ``test`` split files (JSON Lines; LLaVA one JSON list per
split), the images where the image mode puts them, and the format's registry file (``dataset_info.json`` for
LLaMA-Factory, ``data_registry.py`` for Qwen-VL). ``RUN/export/README.md`` is the dataset card,
``RUN/export/plots/`` its figures. Every accepted study becomes one canonical record
(:mod:`datakit.export.record`) rendered by one small registered module per format; every rendered row passes the
export checks (:mod:`datakit.export.checks`) or is left out with its reason.

Usage::

    result = datakit.export.run("runs/demo", formats=["trl", "llava"])
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from datakit.config import DatakitConfig, ExportConfig
from datakit.decisions import decisions_path, latest_decisions
from datakit.errors import ConfigError, ExportCheckError, RunDirError
from datakit.export.base import EXPORTERS, Exporter, Layout, Turn
from datakit.export.engine import Plan, Renderer, jobs, render_chunk, slices
from datakit.export.record import Prompts
from datakit.export.stats import Stats, length_measure
from datakit.export.writer import SplitWriter
from datakit.hashing import file_digest
from datakit.parallel import cores, map_chunks
from datakit.progress import StageProgress
from datakit.reading import priors
from datakit.rundir import Quarantine, RunDir
from datakit.stage import STAGES, Stage, open_run
from datakit.tables import SPLITS

__all__ = ["EXPORTERS", "STAGE", "ExportResult", "Exporter", "Layout", "Turn", "depends", "run"]

STAGE_NAME = "export"
READS = ("traces", "validation", "studies", "images")
# Already quarantined by validate, or a choice of the config: counted, not quarantined again.
COUNTED_ONLY = ("rejected_by_validation", "flagged_excluded")


@dataclass
class ExportResult:
    """What was written: rows per (format, split), the counts, and where."""

    run: RunDir
    root: Path
    formats: list[str]
    stats: Stats
    counts: dict[str, int]
    skipped: bool = False
    seconds: float = 0.0
    unit: str = "words"
    quarantine: Quarantine = field(default_factory=lambda: Quarantine(STAGE_NAME))


def _formats(config: DatakitConfig, formats: list[str] | None) -> list[str]:
    names = list(formats or config.export.formats)
    for name in names:
        EXPORTERS.get(name)  # an unknown name is an UnknownFormat listing the known ones
    return names


def depends(run: RunDir, config: DatakitConfig) -> dict[str, Any]:
    """What the export depends on beyond its tables and ``[export]``: templates, review decisions, prior phrases."""
    ec = config.export
    prompts = Prompts(ec.prompts_dir, ec.system_template, ec.user_template, ec.tag_style, ec.system_prompt)
    review = decisions_path(run)
    return {
        "templates": prompts.sha,
        "review": file_digest(review) if review.is_file() else None,
        # the rules that find prior-study sentences are code: their source is what the removal depends on
        "priors": file_digest(Path(priors.__file__)) if ec.prior_sentences == "remove" else None,
    }


# Bump when a format's rows change for the same inputs and settings.
EXPORT_VERSION = 1
STAGE = Stage(
    STAGE_NAME,
    reads=READS,
    writes=(),  # files under RUN/export/, not tables: their presence is checked beside the fingerprint
    config_sections=("export",),
    version=EXPORT_VERSION,
    depends=depends,
    ignore=("export.workers", "export.batch_size"),
)
STAGES.add(STAGE.name, STAGE)


def _check_inputs(run: RunDir) -> None:
    for table, stage in (("traces", "annotate"), ("validation", "validate"), ("studies", "ingest"),
                         ("images", "ingest")):
        if not run.has_table(table):
            raise RunDirError(f"{run.root} has no {run.table_path(table).name}: there is nothing to export",
                              hint=f"run `datakit {stage} --run {run.root}` first")


def run(
    run: RunDir | str | Path,
    config: DatakitConfig | str | Path | None = None,
    *,
    formats: list[str] | None = None,
    force: bool = False,
    progress: bool = False,
    **options: Any,
) -> ExportResult:
    """Export the run's accepted traces in each format; write the card, the plots, quarantine and manifest.

    ``formats`` and ``options`` (any ``[export]`` key, e.g. ``tag_style="none"``) apply to this call only; the
    run's saved config keeps its own. Skipped (and says so) when the tables it reads, ``[export]``, the templates
    and the review decisions are what they were at the last export and its files are still there.
    """
    run, config = open_run(run, config)
    keep = config
    updates = {k: v for k, v in {**options, "formats": formats}.items() if v}
    if updates:
        try:
            export = ExportConfig.model_validate({**config.export.model_dump(), **updates})
        except ValidationError as err:
            raise ConfigError(f"invalid export option: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}",
                              hint="see README.md, 'Export'") from err
        config = config.model_copy(update={"export": export})
    ec = config.export
    names = _formats(config, None)
    _check_inputs(run)
    final = run.path("export")
    started = STAGE.start(run, config, force=force or not (final / "README.md").is_file(), keep=keep)
    if started.skipped:
        entry = started.entry or {}
        return ExportResult(run, final, names, Stats(), entry.get("counts", {}), skipped=True,
                            seconds=started.seconds)

    build = run.path(".export.partial")
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    review = {sid: rec["decision"] for sid, rec in latest_decisions(run).items()}
    plan = Plan(run_root=run.root.resolve(), final_root=final.resolve(), build_root=build.resolve(),
                formats=names, tag_style=ec.tag_style, image_mode=ec.image_mode, image_paths=ec.image_paths,
                max_images=ec.max_images, system_prompt=ec.system_prompt, prompts_dir=ec.prompts_dir,
                system_template=ec.system_template, user_template=ec.user_template,
                remove_priors=ec.prior_sentences == "remove",
                tokenizer=ec.tokenizer)
    unit, _ = length_measure(ec.tokenizer)  # fails here, before any worker starts, if it cannot load
    try:
        stats, quarantine, n_traces, fallback = _write(run, plan, ec, review, build, progress)
        shutil.rmtree(build / ".chunks", ignore_errors=True)
        exporters = {n: EXPORTERS.get(n)(Layout(final / n, ec.image_paths, ec.tag_style)) for n in names}
        for name, exp in exporters.items():
            per_split = {s: stats.rows[(name, s)] for s in SPLITS}
            for file, text in exp.side_files(per_split).items():
                (build / name / file).write_text(text, encoding="utf-8")
        from datakit.export.card import write_card

        write_card(build, run=run, config=config, exporters=exporters, stats=stats, unit=unit,
                   fallback_copies=fallback, n_traces=n_traces)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    _swap(build, final)
    exported = sum(stats.studies.values())
    counts = {"trace_in": n_traces, "study_out": exported, "study_excluded": sum(stats.excluded.values()),
              "study_flagged_kept": stats.flagged}
    if n_traces != exported + counts["study_excluded"]:
        raise RuntimeError(f"export: {n_traces} traces in, {exported} exported, {counts['study_excluded']} left out")
    counts |= {f"rows_{f}_{s}": n for (f, s), n in sorted(stats.rows.items())}
    run.write_quarantine(quarantine)
    STAGE.finish(run, keep, started, counts=counts, outputs={}, formats=names, excluded=dict(stats.excluded),
                 stats=stats.to_json())
    return ExportResult(run, final, names, stats, counts, seconds=started.seconds, unit=unit,
                        quarantine=quarantine)


def _write(run: RunDir, plan: Plan, ec: Any, review: dict[str, str], build: Path, progress: bool = False):
    quarantine = Quarantine(STAGE_NAME)
    stats = Stats()
    writers: dict[tuple[str, str], SplitWriter] = {}
    for name in plan.formats:
        exp_cls = EXPORTERS.get(name)
        for split in SPLITS:
            writers[(name, split)] = SplitWriter(build / name / f"{split}{exp_cls.suffix}",
                                                 json_list=exp_cls.suffix == ".json")
    stats.review.update(review.values())
    counted = {"traces": 0, "fallback": 0}

    def on_frame(frame: Any) -> None:
        counted["traces"] += frame.height
        for sid, reason, dataset in frame.filter(pl_not_null("exclude")).select(
                "study_id", "exclude", "dataset").iter_rows():
            bar.advance()
            stats.excluded[reason] += 1
            if reason not in COUNTED_ONLY:
                quarantine.add("study", sid, reason, _reason_message(reason), dataset=dataset)
        for key in frame.select("teacher", "model", "template_sha", "schema_id").iter_rows():
            stats.provenance[key] += 1

    workers = ec.workers or cores()
    frames = slices(run.root, workers * ec.batch_size, review, ec.include_flagged)
    n = len(plan.formats)
    bar = StageProgress(f"exporting {n} format{'s' if n > 1 else ''}", total=run.table_rows("traces"),
                        enabled=progress, unit="traces")
    try:
        with bar:
            for out in map_chunks(render_chunk, jobs(frames, ec.batch_size, on_frame), workers=workers,
                                  setup=Renderer, setup_args=(plan,)):
                bar.advance(sum(out.stats.studies.values()) + len(out.set_aside))
                counted["fallback"] += out.fallback_copies
                stats.merge(out.stats)
                for sid, code, message in out.set_aside:
                    quarantine.add("study", sid, code, message)
                for key in sorted(out.chunks):  # (format, split): the same order whatever the workers
                    chunk, w = out.chunks[key], writers[key]
                    for before, sid, (code, message) in chunk.failed:
                        where = f"{key[0]}/{w.path.name} row {w.rows + before + 1}"
                        if ec.strict:
                            raise ExportCheckError(f"study {sid}, {where}: {code}: {message}",
                                                   hint="fix the trace or the template, or set export.strict "
                                                        "= false to leave such rows out")
                        stats.left_out[(key[0], code)] += 1
                        quarantine.add("row", sid, code, f"{where} left out: {message}")
                    w.append(Path(chunk.path), chunk.rows)
                    stats.rows[key] += chunk.rows
    finally:
        for w in writers.values():
            w.close()
    return stats, quarantine, counted["traces"], counted["fallback"]


def pl_not_null(column: str):
    """``column`` is not null (a small helper so the module imports polars lazily)."""
    import polars as pl

    return pl.col(column).is_not_null()


_MESSAGES = {
    "rejected_in_review": "rejected in review (review/decisions.jsonl); left out of every format",
    "unknown_study": "the trace's study is not in studies.parquet; left out of every format",
    "not_validated": "validation.parquet has no row for this trace; run `datakit validate` again",
}


def _reason_message(reason: str) -> str:
    return _MESSAGES.get(reason, reason)


def _swap(build: Path, final: Path) -> None:
    """Replace the old export with the new one: the old is moved aside first, so a crash leaves one of them."""
    old = final.with_name(".export.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    build.rename(final)
    shutil.rmtree(old, ignore_errors=True)

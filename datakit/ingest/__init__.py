"""Ingest: a source dataset → ``studies.parquet`` + ``images.parquet`` (+ converted images) in a run directory.

Usage from Python::

    result = datakit.ingest.run("path/to/mimic-cxr-jpg", "runs/demo")
    result.studies, result.images   # polars DataFrames, validated against datakit.tables
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from datakit import tables
from datakit.config import DatakitConfig
from datakit.errors import IngestError, RunDirError, SourceLayoutError
from datakit.ingest.base import (
    FORMATS,
    ReadContext,
    SourceFormat,
    get_format,
    normalize_view_expr,
)
from datakit.ingest.listing import source_listing
from datakit.ingest.splits import assign_splits, check_no_leak
from datakit.rundir import Quarantine, RunDir
from datakit.stage import STAGES, Stage, open_run


@dataclass
class IngestResult:
    """What ingest produced, for the CLI summary and for callers."""

    run: RunDir
    format: str
    studies: pl.DataFrame
    images: pl.DataFrame
    counts: dict[str, int]
    quarantine: Quarantine
    notes: dict[str, int] = field(default_factory=dict)
    skipped: bool = False  # then the tables hold only the columns the summary shows (ids, split, view, labels)


def detect_format(root: Path) -> SourceFormat:
    """The one format whose layout ``root`` matches; an error listing what was looked for otherwise."""
    if not root.exists():
        raise SourceLayoutError(f"{root} does not exist", hint="check the path")
    matches = [fmt for fmt in FORMATS.values() if fmt.detect(root)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        looked = "\n".join(f"  - {f.name}: {f.looks_for}" for f in FORMATS.values())
        raise SourceLayoutError(
            f"{root} does not look like any dataset datakit reads. Looked for:\n{looked}",
            hint="point at the dataset's top folder, or name the format with --format",
        )
    names = ", ".join(f.name for f in matches)
    raise SourceLayoutError(f"{root} matches several formats ({names})", hint="choose one with --format")


def _finish_images(
    studies: pl.DataFrame, images: pl.DataFrame, quarantine: Quarantine
) -> pl.DataFrame:
    """Images whose study was set aside are set aside too; views are normalised; subject and dataset attached."""
    keep = images.join(studies.select("study_id"), on="study_id", how="semi")
    orphans = images.join(studies.select("study_id"), on="study_id", how="anti")
    for row in orphans.select("image_id", "study_id", "source_path").iter_rows():
        quarantine.add("image", row[0], "study_quarantined",
                       f"its study {row[1]} was set aside (see that study's quarantine row)", path=row[2])
    if "view_raw" not in keep.columns:
        keep = keep.with_columns(view_raw=pl.lit(None, pl.Utf8))
    keep = keep.drop([c for c in ("subject_id", "dataset") if c in keep.columns])
    keep = keep.join(studies.select("study_id", "subject_id", "dataset"), on="study_id", how="left")
    return keep.with_columns(view=normalize_view_expr())


def _drop_studies_without_images(
    studies: pl.DataFrame, images: pl.DataFrame, quarantine: Quarantine, *, after_conversion: bool = False
) -> pl.DataFrame:
    """Set aside studies with no image left: a report alone cannot train a vision-language model."""
    counts = images.group_by("study_id").len("n_images")
    studies = studies.drop("n_images", strict=False).join(counts, on="study_id", how="left")
    studies = studies.with_columns(pl.col("n_images").fill_null(0))
    if after_conversion:
        msg = "every image of this study failed conversion (see its image rows in quarantine)"
    else:
        msg = "the study has no usable image (none listed, or each one set aside: see its image rows)"
    for row in studies.filter(pl.col("n_images") == 0).select("study_id", "report_path", "dataset").iter_rows():
        quarantine.add("study", row[0], "no_images", msg + ", so it cannot train a vision-language model",
                       path=row[1], dataset=row[2])
    return studies.filter(pl.col("n_images") > 0).with_columns(pl.col("n_images").cast(pl.Int16))


def nothing_kept(root: Path, studies_in: int, quarantine: Quarantine) -> IngestError:
    """The error for an ingest that set every study aside: the main reasons, with counts, and what to do."""

    def top(kind: str) -> tuple[str, str]:
        codes = quarantine.by_code(kind).most_common(3)
        if not codes:
            return "", ""
        example = next(r for r in quarantine.records if r.kind == kind and r.code == codes[0][0])
        return "; ".join(f"{code} ({n:,})" for code, n in codes), f"{example.key}: {example.message}"

    studies, example = top("study")
    images, image_example = top("image")
    reasons = f"studies: {studies or 'none listed'}"
    if images and "no_images" in studies:
        reasons += f"; their images: {images}"  # a study without images: the image rows say why
        example = image_example
    what = f"{studies_in:,} studies" if studies_in else "no study"
    return IngestError(
        f"ingest kept no study of {root}: {what} read, all set aside. Main reasons, {reasons}"
        + (f"\nfor example, {example}" if example else ""),
        hint="fix the main reason above, then ingest again; nothing was written",
    )


def prune_images(run: RunDir, images: pl.DataFrame) -> int:
    """Remove converted PNGs the images table no longer lists (an earlier ingest's); returns how many."""
    listed = {Path(p).name for p in images["converted_path"].drop_nulls().to_list()}
    removed = 0
    for path in run.images_dir.glob("*.png"):
        if path.name not in listed:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _depends(run: RunDir, config: DatakitConfig) -> dict:
    root = Path(config.source).expanduser().resolve() if config.source else None
    return {"source": str(root), "listing": source_listing(root) if root and root.exists() else None}


STAGE = Stage("ingest", reads=(), writes=("studies", "images"), config_sections=("source", "ingest"),
              depends=_depends, ignore=("ingest.workers", "ingest.images.workers"))
STAGES.add(STAGE.name, STAGE)


def run(
    source: str | Path,
    run_dir: str | Path | RunDir,
    config: DatakitConfig | str | Path | None = None,
    *,
    force: bool = False,
    replace: bool = False,
    progress: bool = False,
) -> IngestResult:
    """Read ``source`` into the run directory: tables, converted images, quarantine, manifest.

    Skipped when the source folder's files, the settings and the tables are unchanged since the last ingest.
    A run folder this call made is removed again when ingest fails. ``replace`` lets another source, or a
    ``limit`` that keeps fewer studies, replace what an earlier ingest wrote into the run.
    """
    folder = Path(run_dir.root if isinstance(run_dir, RunDir) else run_dir)
    made = not folder.exists()
    try:
        return _run(source, run_dir, config, force=force, replace=replace, progress=progress)
    except BaseException:
        if made:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def guard_replace(run: RunDir, root: Path, fmt: str, limit: int | None) -> None:
    """Refuse to replace a run's studies with another source's, or with the first ``limit`` of them."""
    entry = run.stage_entry(STAGE.name)
    if not entry:
        return
    before = entry.get("source"), entry.get("format")
    if before != (str(root), fmt):
        raise RunDirError(
            f"{run.root} holds studies ingested from {before[0]} ({before[1]}); ingesting {root} ({fmt}) "
            "would replace them and make the run's knowledge, traces and validation stale",
            hint="ingest into a new run folder (--run), or add --replace to replace them",
        )
    kept = (entry.get("counts") or {}).get("study_out", 0)
    if limit is not None and kept > limit:
        raise RunDirError(
            f"--limit {limit} would replace the {kept} studies of {run.root} with {limit}",
            hint=f"take the quick look in its own run (e.g. --run {run.root}-limit{limit}), or add --replace",
        )


def _run(source: str | Path, run_dir: str | Path | RunDir, config: DatakitConfig | str | Path | None, *,
         force: bool, replace: bool, progress: bool = False) -> IngestResult:
    run, config = open_run(run_dir, config, create=True)
    root = Path(source).expanduser().resolve()
    config = config.model_copy(update={"source": str(root)})
    cfg = config.ingest
    # --limit is for one command, never a setting the run keeps
    keep = config.model_copy(update={"ingest": cfg.model_copy(update={"limit": None})})
    started = STAGE.start(run, config, force=force, keep=keep)
    if started.skipped:
        entry = started.entry or {}
        # only what the summary shows: the report texts of 227,835 studies would cost 2 GB to say "skipped"
        studies = run.read_table("studies", ["study_id", "subject_id", "split", "label_source", *tables.LABEL_COLUMNS])
        images = run.read_table("images", ["study_id", "image_id", "view"])
        return IngestResult(run, entry.get("format", ""), studies, images, entry.get("counts", {}),
                            Quarantine(STAGE.name), entry.get("notes", {}), skipped=True)
    fmt = get_format(cfg.format) if cfg.format else detect_format(root)
    if not replace:
        guard_replace(run, root, fmt.name, cfg.limit)
    quarantine = Quarantine(STAGE.name)

    raw = fmt.read(ReadContext(root=root, config=cfg, quarantine=quarantine))
    studies = tables.conform(raw.studies, tables.Studies.remove_columns(["split_source", "n_images"]))
    studies = _drop_studies_without_images(studies, raw.images, quarantine)
    studies = assign_splits(studies, cfg.split, quarantine)
    images = _finish_images(studies, raw.images, quarantine)

    check_no_leak(studies)  # before hours of image conversion, not after
    if cfg.images.convert:
        from datakit.ingest.images import convert_images

        previous = run.read_table("images") if run.has_table("images") else None
        images = convert_images(images, run, cfg.images, quarantine, previous, progress=progress)
        studies = _drop_studies_without_images(studies, images, quarantine, after_conversion=True)
    check_no_leak(studies)
    if studies.is_empty():
        raise nothing_kept(root, raw.studies_in, quarantine)

    studies = tables.Studies.validate(tables.conform(studies, tables.Studies).sort("study_id"))
    images = tables.Images.validate(tables.conform(images, tables.Images).sort("study_id", "image_id"))
    counts = {
        **quarantine.balance("study", raw.studies_in, studies.height),
        **quarantine.balance("image", raw.images_in, images.height),
    }
    outputs = {"studies": run.write_table("studies", studies), "images": run.write_table("images", images)}
    prune_images(run, images)
    run.write_quarantine(quarantine)
    STAGE.finish(
        run,
        keep,
        started,
        counts=counts,
        outputs=outputs,
        source=str(root),
        format=fmt.name,
        notes=raw.notes,
        quarantined_by_code=dict(quarantine.by_code()),
    )
    return IngestResult(run, fmt.name, studies, images, counts, quarantine, raw.notes)

"""Ingest: a source dataset → ``studies.parquet`` + ``images.parquet`` (+ converted images) in a run directory.

Usage from Python::

    result = datakit.ingest.run("path/to/mimic-cxr-jpg", "runs/demo")
    result.studies, result.images   # polars DataFrames, validated against datakit.tables
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from datakit import tables
from datakit.config import DatakitConfig
from datakit.errors import SourceLayoutError
from datakit.hashing import content_hash
from datakit.ingest.base import (
    FORMATS,
    ReadContext,
    SourceFormat,
    get_format,
    normalize_view_expr,
)
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
    skipped: bool = False


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


def source_listing(root: Path) -> str:
    """An identity of the source folder's files: every relative path with its size and modification time.

    Hashing the bytes of 377,110 DICOM files to decide whether to skip would cost more than ingest itself; a
    changed, added or removed file changes the listing. A copied source tree reads as changed, so ingest runs
    again, and its tables come out with the same content: the stages after it still skip.
    """
    items = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(folder, root)
        for name in sorted(files):
            try:
                st = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            items.append(f"{rel}/{name}:{st.st_size}:{st.st_mtime_ns}")
    return content_hash("\n".join(items))


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
) -> IngestResult:
    """Read ``source`` into the run directory: tables, converted images, quarantine, manifest.

    Skipped when the source folder's files, the settings and the tables are unchanged since the last ingest.
    """
    run, config = open_run(run_dir, config, create=True)
    root = Path(source).expanduser().resolve()
    config = config.model_copy(update={"source": str(root)})
    cfg = config.ingest
    # --limit is for one command, never a setting the run keeps
    keep = config.model_copy(update={"ingest": cfg.model_copy(update={"limit": None})})
    started = STAGE.start(run, config, force=force, keep=keep)
    if started.skipped:
        entry = started.entry or {}
        return IngestResult(run, entry.get("format", ""), run.read_table("studies"), run.read_table("images"),
                            entry.get("counts", {}), Quarantine(STAGE.name), entry.get("notes", {}), skipped=True)
    fmt = get_format(cfg.format) if cfg.format else detect_format(root)
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
        images = convert_images(images, run, cfg.images, quarantine, previous)
        studies = _drop_studies_without_images(studies, images, quarantine, after_conversion=True)
    check_no_leak(studies)

    studies = tables.Studies.validate(tables.conform(studies, tables.Studies).sort("study_id"))
    images = tables.Images.validate(tables.conform(images, tables.Images).sort("study_id", "image_id"))
    counts = {
        **quarantine.balance("study", raw.studies_in, studies.height),
        **quarantine.balance("image", raw.images_in, images.height),
    }
    outputs = {"studies": run.write_table("studies", studies), "images": run.write_table("images", images)}
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

"""MIMIC-CXR (DICOM) and MIMIC-CXR-JPG: the ``files/`` tree plus the CSVs (MIMIC-CXR-JPG on PhysioNet).

The tree on disk decides which studies exist (users often hold a partial download); the CSVs are lookup tables:
``mimic-cxr-2.0.0-metadata.csv`` (views, sizes), ``-split.csv`` (official split), ``-chexpert.csv`` and
``-negbio.csv`` (labels per study). Each may be plain or ``.gz``. Studies the CSVs list but that are not on disk
are counted in the manifest as ``listed_not_on_disk``, not quarantined one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from datakit.errors import MissingColumnError, SourceLayoutError
from datakit.ingest.base import ReadContext, SourceTables, register
from datakit.ingest.mimic_walk import ScanResult, list_patient_dirs, scan_patients
from datakit.ingest.sections import CustomRules
from datakit.parallel import given, map_chunks, pool_size
from datakit.tables import LABEL_BY_NAME

CSV_NAMES = {
    "metadata": "mimic-cxr-2.0.0-metadata.csv",
    "split": "mimic-cxr-2.0.0-split.csv",
    "chexpert": "mimic-cxr-2.0.0-chexpert.csv",
    "negbio": "mimic-cxr-2.0.0-negbio.csv",
}
# MIMIC's official split file says "validate"; datakit's tables say "val" (MIMIC-CXR-JPG on PhysioNet).
SPLIT_NAMES = {"train": "train", "validate": "val", "val": "val", "test": "test"}


def find_csv(root: Path, kind: str) -> Path | None:
    """The CSV of ``kind`` in ``root``, plain or gzipped, if present."""
    for name in (CSV_NAMES[kind], CSV_NAMES[kind] + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def read_csv(path: Path, required: Iterable[str]) -> pl.DataFrame:
    """Read a MIMIC CSV with every column as text; a missing required column is one clear error."""
    try:
        df = pl.read_csv(path, infer_schema_length=0)
    except (pl.exceptions.ComputeError, OSError) as err:
        raise SourceLayoutError(f"cannot read {path}: {err}", hint="re-download the file") from err
    for col in required:
        if col not in df.columns:
            raise MissingColumnError(path, col, found=df.columns)
    return df


def _first_image_ext(files_dir: Path) -> str | None:
    """Peek into the tree for the image extension of the first study folder that holds an image."""
    for group in sorted(files_dir.glob("p1?"))[:2]:
        for patient in sorted(group.iterdir())[:20]:
            for study in sorted(patient.iterdir()):
                if study.is_dir():
                    for f in study.iterdir():
                        ext = f.suffix.lower()
                        if ext in (".dcm", ".jpg", ".jpeg", ".png"):
                            return ext
    return None


class MimicCxr:
    """MIMIC-CXR with DICOM images, or MIMIC-CXR-JPG with JPG images: the same tree and CSVs."""

    dataset = "mimic-cxr"

    def __init__(self, name: str, image_exts: tuple[str, ...]) -> None:
        self.name = name
        self.image_exts = image_exts
        self.looks_for = (
            f"a files/p1X/pNNNNNNNN/sNNNNNNNN.txt tree with {'/'.join('.' + e for e in image_exts)} images "
            "and mimic-cxr-2.0.0-*.csv(.gz) beside files/"
        )

    def detect(self, root: Path) -> bool:
        """A ``files/p1X`` folder, the MIMIC CSVs, and images of this format's type."""
        files_dir = root / "files"
        if not files_dir.is_dir() or not any(files_dir.glob("p1?")):
            return False
        if find_csv(root, "metadata") is None and find_csv(root, "split") is None:
            return False
        ext = _first_image_ext(files_dir)
        return ext is None and self.name == "mimic-cxr-jpg" or (ext is not None and ext[1:] in self.image_exts)

    # ------------------------------------------------------------------------------------------------------------
    def read(self, ctx: ReadContext) -> SourceTables:
        """Walk the tree, section the reports, join the CSVs."""
        root = ctx.root
        files_dir = root / "files"
        if not files_dir.is_dir():
            raise SourceLayoutError(f"{root} has no files/ folder", hint="point datakit at the dataset's top folder")
        scan = self._scan(files_dir, ctx)
        for path, message in scan.unreadable:
            # not a study or an image row (what it held is unknown), so outside the studies/images balance
            ctx.quarantine.add("folder", path, "unreadable_folder",
                               f"{message}; its studies and images are not read — fix the permissions and re-run",
                               path=path, dataset=self.dataset)
        studies, studies_in, on_disk = self._studies(scan, ctx)
        images, images_in = self._images(scan, ctx, on_disk)
        studies = self._attach_split(studies, images, root, ctx)
        studies = self._attach_labels(studies, root, ctx)
        notes = {}
        meta_path = find_csv(root, "metadata")
        if meta_path is not None and ctx.limit is None:
            listed = pl.read_csv(meta_path, columns=["study_id"], infer_schema_length=0)["study_id"].unique()
            notes["listed_not_on_disk"] = int((~listed.is_in(list(on_disk))).sum())
        return SourceTables(studies=studies, images=images, studies_in=studies_in, images_in=images_in, notes=notes)

    def _scan(self, files_dir: Path, ctx: ReadContext) -> ScanResult:
        patients = list_patient_dirs(str(files_dir))
        if not patients:
            raise SourceLayoutError(
                f"{files_dir} holds no pXX/pNNNNNNNN patient folders", hint="point datakit at the dataset's top folder"
            )
        rules = CustomRules.load()
        workers = pool_size(ctx.workers, len(patients), min_items=2000, per_worker=2000)
        if ctx.limit is not None or workers <= 1:
            return scan_patients(patients, self.image_exts, rules, ctx.limit)
        # Chunks small enough to balance the workers, large enough that start-up and pickling stay cheap.
        n_chunks = workers * 8
        size = -(-len(patients) // n_chunks)
        chunks = [patients[i : i + size] for i in range(0, len(patients), size)]
        result = ScanResult()
        for part in map_chunks(_scan_in_worker, chunks, workers=workers, setup=given,
                               setup_args=((self.image_exts, rules),)):
            result.merge(part)
        return result

    def _studies(self, scan: ScanResult, ctx: ReadContext) -> tuple[pl.DataFrame, int, dict[str, str]]:
        """One row per study on disk; reports that are missing, unreadable or empty are set aside."""
        q = ctx.quarantine
        on_disk: dict[str, str] = {}  # study_id → subject_id of its first occurrence, in walk order
        duplicates: list[tuple[str, str, str]] = []
        entries = [(s, subj, p) for s, subj, p in scan.folders]
        entries += [(s, subj, p) for s, subj, p in zip(scan.studies["study_id"], scan.studies["subject_id"],
                                                       scan.studies["report_path"], strict=False)]
        entries += [(s, subj, p) for s, subj, _, _, p in scan.bad_reports]
        entries.sort(key=lambda e: (e[1], e[0]))
        for study, subject, path in entries:
            if study not in on_disk:
                on_disk[study] = subject
            elif on_disk[study] != subject:
                duplicates.append((study, subject, path))
        dup_keys = {(s, subj) for s, subj, _ in duplicates}

        if ctx.limit is not None:
            keep = set(sorted(on_disk, key=lambda s: (on_disk[s], s))[: ctx.limit])
            on_disk = {s: on_disk[s] for s in keep}
            dup_keys = {(s, subj) for s, subj in dup_keys if s in keep}
        studies_in = len(on_disk) + len(dup_keys)
        for study, subject in sorted(dup_keys):
            q.add("study", study, "duplicate_study",
                  f"study {study} appears under patient p{on_disk[study]} and again under p{subject}; "
                  f"the copy under p{subject} is set aside — check the download for a misplaced folder",
                  dataset=self.dataset)

        bad: set[str] = set()
        for study, subject, code, message, path in scan.bad_reports:
            if on_disk.get(study) == subject and study not in bad:
                q.add("study", study, code, message, path=path, dataset=self.dataset)
                bad.add(study)
        pairs = zip(scan.studies["study_id"], scan.studies["subject_id"], strict=True)
        reported = {s for s, subj in pairs if on_disk.get(s) == subj}
        for study, subject, path in scan.folders:
            if on_disk.get(study) == subject and study not in reported and study not in bad:
                q.add("study", study, "missing_report",
                      f"the study folder has no report: expected {Path(path).with_suffix('.txt')}; "
                      "reports ship separately (mimic-cxr-reports.zip) — extract them into files/",
                      path=path, dataset=self.dataset)
                bad.add(study)

        df = pl.DataFrame(scan.studies, schema={c: pl.Utf8 for c in scan.studies})
        df = df.join(pl.DataFrame({"study_id": list(on_disk), "subject_id": list(on_disk.values())}),
                     on=["study_id", "subject_id"], how="semi")
        df = df.unique(subset="study_id", keep="first", maintain_order=True)
        df = df.with_columns(dataset=pl.lit(self.dataset), source_format=pl.lit(self.name))
        return df.sort("study_id"), studies_in, on_disk

    def _images(self, scan: ScanResult, ctx: ReadContext, on_disk: dict[str, str]) -> tuple[pl.DataFrame, int]:
        """Images of the studies on disk: files joined with metadata rows; each row kept or set aside once."""
        q = ctx.quarantine
        cols = ["image_id", "study_id", "subject_id", "source_path"]
        disk = pl.DataFrame(scan.images, schema={c: pl.Utf8 for c in cols}, orient="row")
        if disk.is_empty() and on_disk:
            self._no_images(ctx, len(on_disk))
        owners = pl.DataFrame({"study_id": list(on_disk), "owner": list(on_disk.values())})
        disk = disk.join(owners, on="study_id", how="inner")  # drops studies outside --limit
        meta_path = find_csv(ctx.root, "metadata")
        duplicates_in = 0
        if meta_path is None:
            merged = disk.with_columns(
                view_raw=pl.lit(None, pl.Utf8), rows=pl.lit(None, pl.Utf8), columns=pl.lit(None, pl.Utf8),
                meta_study=pl.col("study_id"), meta_subject=pl.col("subject_id"),
                in_meta=pl.lit(True), in_disk=pl.lit(True),
            )
        else:
            meta = read_csv(meta_path, ["dicom_id", "subject_id", "study_id", "ViewPosition", "Rows", "Columns"])
            meta = meta.select(image_id="dicom_id", meta_study="study_id", meta_subject="subject_id",
                               view_raw="ViewPosition", rows="Rows", columns="Columns")
            meta = meta.join(owners.select(meta_study="study_id"), on="meta_study", how="semi")
            dups = meta.filter(~pl.col("image_id").is_first_distinct())
            duplicates_in = dups.height
            for image_id in dups["image_id"].to_list():
                q.add("image", image_id, "duplicate_image",
                      f"{meta_path.name} lists image {image_id} more than once; the first row is used",
                      path=meta_path, dataset=self.dataset)
            meta = meta.filter(pl.col("image_id").is_first_distinct())
            merged = disk.with_columns(in_disk=pl.lit(True)).join(
                meta.with_columns(in_meta=pl.lit(True)), on="image_id", how="full", coalesce=True
            )
            merged = merged.with_columns(
                pl.col("in_disk").fill_null(False),
                pl.col("in_meta").fill_null(False),
                pl.coalesce("study_id", "meta_study").alias("study_id"),
                pl.coalesce("subject_id", "meta_subject").alias("subject_id"),
                pl.coalesce("owner", "meta_subject").alias("owner"),
            )
        images_in = merged.height + duplicates_in
        status = (
            pl.when(~pl.col("in_disk")).then(pl.lit("missing_image"))
            .when(~pl.col("in_meta")).then(pl.lit("unlisted_image"))
            .when(pl.col("subject_id") != pl.col("owner")).then(pl.lit("duplicate_study"))
            .when((pl.col("meta_study") != pl.col("study_id")) | (pl.col("meta_subject") != pl.col("subject_id")))
            .then(pl.lit("id_mismatch"))
            .otherwise(pl.lit(None, pl.Utf8))
        )
        merged = merged.with_columns(status=status)
        meta_name = CSV_NAMES["metadata"]
        for row in merged.filter(pl.col("status").is_not_null()).iter_rows(named=True):
            code, image_id, study = row["status"], row["image_id"], row["study_id"]
            if code == "missing_image":
                msg = (f"{meta_name} lists image {image_id} of study {study}, but the file is not on disk; "
                       "download it, or ignore this row if you hold a partial copy on purpose")
            elif code == "unlisted_image":
                msg = (f"{row['source_path']} has no row in {meta_name}, so its view is unknown; "
                       "remove the stray file or use the metadata CSV of the same release")
            elif code == "duplicate_study":
                msg = (f"image of study {study} under p{row['subject_id']}, but that study belongs to "
                       f"p{row['owner']}; the misplaced copy is set aside")
            else:
                msg = (f"image {image_id} lies in p{row['subject_id']}/s{study} but {meta_name} "
                       f"says p{row['meta_subject']}/s{row['meta_study']}")
            q.add("image", image_id, code, msg, path=row["source_path"], dataset=self.dataset)
        images = merged.filter(pl.col("status").is_null()).select(
            "image_id", "study_id", "subject_id", "source_path", "view_raw",
            pl.col("columns").cast(pl.Int32, strict=False).alias("source_width"),
            pl.col("rows").cast(pl.Int32, strict=False).alias("source_height"),
        )
        return images.sort("study_id", "image_id"), images_in

    def _no_images(self, ctx: ReadContext, n_studies: int) -> None:
        """Not one image file in the study folders read: the images were never downloaded or extracted."""
        exts = "/".join(f"*.{e}" for e in self.image_exts)
        meta_path = find_csv(ctx.root, "metadata")
        listed = ""
        if meta_path is not None:
            n = read_csv(meta_path, ["dicom_id"]).height
            listed = f"; {meta_path.name} lists {n:,} images"
        other = ("; if your images are DICOMs (*.dcm), the format is --format mimic-cxr" if self.name == "mimic-cxr-jpg"
                 else "; if your images are JPGs, the format is --format mimic-cxr-jpg")
        raise SourceLayoutError(
            f"{ctx.root / 'files'} holds {n_studies:,} studies with reports but not one image file: looked for "
            f"{exts} in files/p1X/pNNNNNNNN/sNNNNNNNN/{listed}",
            hint="the reports and the images are separate downloads: extract the image files into the same "
                 f"files/ tree, beside the reports{other}",
        )

    def _attach_split(self, studies: pl.DataFrame, images: pl.DataFrame, root: Path, ctx: ReadContext) -> pl.DataFrame:
        """The official split of a study is the split of its images (one per study in the real file)."""
        path = find_csv(root, "split")
        if path is None:
            return studies.with_columns(split=pl.lit(None, pl.Utf8))
        split = read_csv(path, ["dicom_id", "study_id", "subject_id", "split"])
        unknown = split.filter(~pl.col("split").is_in(list(SPLIT_NAMES)) | pl.col("split").is_null())
        bad_ids: set[str] = set()
        if unknown.height:
            known = set(studies["study_id"].to_list())
            for study_id, value in unknown.select("study_id", "split").unique("study_id").sort("study_id").iter_rows():
                if study_id in known:
                    bad_ids.add(study_id)
                    ctx.quarantine.add("study", study_id, "bad_split",
                                       f"{path.name} gives study {study_id} the split {value!r}, not train, validate "
                                       "or test; fix the row, or use --split patient to re-split by patient",
                                       path=path, dataset=self.dataset)
            split = split.filter(~pl.col("study_id").is_in(list(bad_ids)))
            studies = studies.filter(~pl.col("study_id").is_in(list(bad_ids)))
        per_study = (
            split.select("study_id", pl.col("split").replace_strict(SPLIT_NAMES))
            .unique()
            .group_by("study_id")
            .agg(pl.col("split").sort())
        )
        conflicts = per_study.filter(pl.col("split").list.len() > 1)
        conflict_ids = set(conflicts["study_id"].to_list()) & set(studies["study_id"].to_list())
        for row in conflicts.filter(pl.col("study_id").is_in(list(conflict_ids))).iter_rows(named=True):
            ctx.quarantine.add("study", row["study_id"], "split_conflict",
                               f"{path.name} puts the images of study {row['study_id']} in several splits "
                               f"({', '.join(row['split'])}); use --split patient to re-split",
                               path=path, dataset=self.dataset)
        per_study = per_study.filter(pl.col("split").list.len() == 1).with_columns(pl.col("split").list.first())
        studies = studies.filter(~pl.col("study_id").is_in(list(conflict_ids)))
        return studies.join(per_study, on="study_id", how="left")

    def _attach_labels(self, studies: pl.DataFrame, root: Path, ctx: ReadContext) -> pl.DataFrame:
        """Labels per study from the chexpert (default) or negbio CSV: 1, 0, -1, blank = not mentioned (null)."""
        source = ctx.config.label_source
        path = find_csv(root, source)
        label_cols = list(LABEL_BY_NAME.values())
        if path is None:
            return studies.with_columns(
                *[pl.lit(None, pl.Int8).alias(c) for c in label_cols], label_source=pl.lit(None, pl.Utf8)
            )
        names = list(LABEL_BY_NAME)
        raw = read_csv(path, ["study_id", *names])
        raw = raw.join(studies.select("study_id"), on="study_id", how="semi")
        for study_id in raw.filter(~pl.col("study_id").is_first_distinct())["study_id"].unique().sort().to_list():
            # a label row, not a study: outside the studies balance; the study keeps its first row
            ctx.quarantine.add("label_row", study_id, "duplicate_label_row",
                               f"{path.name} has more than one row for study {study_id}; the first is used",
                               path=path, dataset=self.dataset)
        raw = raw.unique(subset="study_id", keep="first", maintain_order=True)
        parsed = raw.select(
            "study_id",
            *[pl.col(n).cast(pl.Float64, strict=False).alias(LABEL_BY_NAME[n]) for n in names],
        )
        bad = pl.any_horizontal(
            [
                (raw[n].is_not_null() & (raw[n].str.strip_chars() != ""))
                & ~parsed[LABEL_BY_NAME[n]].is_in([-1.0, 0.0, 1.0]).fill_null(False)
                for n in names
            ]
        )
        bad_rows = raw.filter(bad)
        for row in bad_rows.iter_rows(named=True):
            values = {n: row[n] for n in names if row[n] not in (None, "", "1.0", "0.0", "-1.0", "1", "0", "-1")}
            ctx.quarantine.add("study", row["study_id"], "bad_labels",
                               f"{path.name} has label values other than 1, 0, -1 or blank: {values}",
                               path=path, dataset=self.dataset)
        bad_ids = bad_rows["study_id"].to_list()
        parsed = parsed.filter(~pl.col("study_id").is_in(bad_ids)).with_columns(
            *[pl.col(c).cast(pl.Int8) for c in label_cols], label_source=pl.lit(source)
        )
        studies = studies.filter(~pl.col("study_id").is_in(bad_ids))
        return studies.join(parsed, on="study_id", how="left")


register(MimicCxr("mimic-cxr", ("dcm",)))
register(MimicCxr("mimic-cxr-jpg", ("jpg", "jpeg")))


def _scan_in_worker(state: tuple, patients: list) -> ScanResult:
    exts, rules = state
    return scan_patients(patients, exts, rules)

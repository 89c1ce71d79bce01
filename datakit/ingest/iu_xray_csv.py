"""IU-Xray as the Kaggle copy: `indiana_reports.csv` + `indiana_projections.csv` (layouts: `iu_xray`)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from datakit.errors import MissingColumnError, SourceLayoutError
from datakit.ingest.base import ReadContext, SourceTables, register
from datakit.ingest.iu_xray import (
    DATASET,
    KAGGLE_NAME,
    PROJECTIONS_CSV,
    REPORTS_CSV,
    SECTIONS,
    IuImage,
    IuReport,
    build_tables,
    find_image_dir,
    kaggle_image_id,
    study_id_of,
)


def _read_csv(path: Path, required: list[str]) -> tuple[pl.DataFrame, bool]:
    """Every column as text; whether the file is valid UTF-8 (else bad bytes read as U+FFFD, rows flagged)."""
    if not path.is_file():
        raise SourceLayoutError(f"{path} is missing", hint=f"the Kaggle layout has {REPORTS_CSV} and "
                                f"{PROJECTIONS_CSV} side by side")
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    try:
        df = pl.read_csv(raw, infer_schema_length=0, encoding="utf8-lossy")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as err:
        raise SourceLayoutError(f"cannot read {path}: {err}", hint="re-download the file") from err
    for col in required:
        if col not in df.columns:
            raise MissingColumnError(path, col, found=df.columns)
    return df.with_row_index("row", offset=1), valid


def _uid_order(row: dict) -> tuple[int, int]:
    study_id = study_id_of(row["uid"])
    return (0, int(study_id)) if study_id else (1, row["row"])


def _bad_text(row: dict, columns: list[str]) -> bool:
    return any("\ufffd" in (row[c] or "") for c in columns)


class KaggleCsv:
    """The Kaggle CSV pair with its PNGs."""

    name = "iu-xray-csv"
    dataset = DATASET
    looks_for = f"{REPORTS_CSV} + {PROJECTIONS_CSV} with PNGs in images/images_normalized/ or images/"

    def detect(self, root: Path) -> bool:
        """Both CSVs side by side."""
        return (root / REPORTS_CSV).is_file() and (root / PROJECTIONS_CSV).is_file()

    def read(self, ctx: ReadContext) -> SourceTables:
        """Reports in uid order (the first ``limit``), their projection rows as images."""
        root = ctx.root.resolve()
        q = ctx.quarantine
        reports_path, proj_path = root / REPORTS_CSV, root / PROJECTIONS_CSV
        columns = ["uid", "MeSH", "indication", "comparison", "findings", "impression"]
        df, valid = _read_csv(reports_path, columns)
        rows = df.to_dicts()
        rows.sort(key=_uid_order)
        if ctx.limit is not None:
            rows = rows[: ctx.limit]
        reports: list[IuReport] = []
        for r in rows:
            where = f"{REPORTS_CSV} row {r['row']}"
            study_id = study_id_of(r["uid"])
            if study_id is None:
                q.add("study", f"row {r['row']}", "bad_row",
                      f"{where}: uid {r['uid']!r} is not a number; fix or remove the row",
                      path=reports_path, dataset=DATASET)
                continue
            order = [c for c in df.columns if c in SECTIONS]  # the file's column order
            sections = [(c.upper(), (r[c] or "").strip()) for c in order]
            terms = [t for t in (r["MeSH"] or "").split(";") if t.strip()]
            rep = IuReport(study_id, reports_path, where, sections, terms)
            if not valid and _bad_text(r, df.columns[1:]):
                rep.problem = ("not_utf8", f"{where}: its text holds bytes that are not UTF-8; re-save "
                                           "the file as UTF-8 or restore it from the original download")
            reports.append(rep)
        extra_in, set_aside_names = self._attach_images(reports, proj_path, ctx)
        image_dir = find_image_dir((root / "images" / "images_normalized", root / "images"))
        studies, images, images_in, notes = build_tables(
            self.name, reports, ctx, image_dir, KAGGLE_NAME, kaggle_image_id, extra_images_in=extra_in,
            listed_elsewhere=set_aside_names,
        )
        return SourceTables(studies, images, studies_in=len(rows), images_in=images_in, notes=notes)

    def _attach_images(self, reports: list[IuReport], path: Path, ctx: ReadContext) -> tuple[int, set[str]]:
        """Give each report its projection rows; returns how many rows were set aside, and their files."""
        q = ctx.quarantine
        df, valid = _read_csv(path, ["uid", "filename", "projection"])
        owner = {}
        for rep in reports:
            owner.setdefault(rep.study_id, rep)
        set_aside: set[str] = set()
        n_set_aside = 0
        for r in df.to_dicts():
            study_id = study_id_of(r["uid"])
            name = (r["filename"] or "").strip()
            if ctx.limit is not None and study_id not in owner:
                continue  # a study outside --limit
            where = f"{PROJECTIONS_CSV} row {r['row']}"
            m = KAGGLE_NAME.match(name)
            problem = None
            if study_id is None:
                problem = ("bad_row", f"{where}: uid {r['uid']!r} is not a number; fix or remove the row")
            elif not valid and _bad_text(r, ["uid", "filename", "projection"]):
                problem = ("not_utf8", f"{where}: its text holds bytes that are not UTF-8; fix the row")
            elif not name:
                problem = ("bad_row", f"{where}: the filename is empty; fix or remove the row")
            elif m is not None and str(int(m.group(1))) != study_id:
                problem = ("bad_row", f"{where}: file {name} belongs to uid {int(m.group(1))}, but the row "
                                      f"says uid {study_id}; fix the row")
            elif study_id not in owner:
                problem = ("missing_report", f"{where} lists image {name} of uid {study_id}, but "
                                             f"{REPORTS_CSV} has no such report; use the CSVs of one release")
            if problem:
                q.add("image", kaggle_image_id(name) if name else f"row {r['row']}", problem[0], problem[1],
                      path=path, dataset=DATASET)
                n_set_aside += 1
                set_aside.add(name)
                continue
            projection = (r["projection"] or "").strip().upper() or None
            owner[study_id].images.append(IuImage(kaggle_image_id(name), name, projection))
        return n_set_aside, set_aside


register(KaggleCsv())

"""IU-Xray (Indiana University Chest X-ray Collection; Demner-Fushman et al., JAMIA 2016) in two layouts.

``iu_xray_xml`` and ``iu_xray_csv`` read them; the ids, report rows and image lookup they share are here.

- ``iu-xray-xml``, the Open-i release: ``ecgen-radiology/<n>.xml`` (one report per file: AbstractText
  sections, MeSH terms, one ``parentImage`` per image) and the PNGs in a sibling folder, looked for in this
  order: ``NLMCXR_png/`` (as ``NLMCXR_png.tgz`` extracts), ``images/``, then the top folder itself. A PNG is
  named after its ``parentImage`` id (``CXR1_1_IM-0001-3001.png``).
- ``iu-xray-csv``, the Kaggle copy: ``indiana_reports.csv`` + ``indiana_projections.csv`` and the PNGs in
  ``images/images_normalized/`` (or ``images/``), named ``1_IM-0001-4001.dcm.png``.

Study ids are the same in both (``"5"`` for ``CXR5`` / uid 5), and so are image ids as far as the Kaggle file
names allow: ``5_IM-2117-1003002.dcm.png`` is Open-i's ``CXR5_IM-2117-1003002``. A few Open-i ids repeat the
uid (``CXR1_1_IM-0001-4001``) where the Kaggle name does not (``1_IM-0001-4001.dcm.png``); the name alone
cannot tell, so such images are ``CXR1_IM-0001-4001`` in the CSV layout. IU-Xray publishes no patient ids
(each study is its own subject) and no split. Labels come from the MeSH terms through ``datakit.ingest.mesh``
(``<major>`` terms only: see ``_parse_xml``). The report text is CC BY-NC-ND 4.0: it is kept as published
(surrounding whitespace stripped), never rewritten.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from datakit.errors import SourceLayoutError
from datakit.ingest.base import ReadContext
from datakit.ingest.mesh import MeshMap
from datakit.tables import LABEL_COLUMNS

DATASET = "iu-xray"
SECTIONS = ("indication", "comparison", "findings", "impression")
REPORTS_CSV = "indiana_reports.csv"
PROJECTIONS_CSV = "indiana_projections.csv"
_UID = re.compile(r"^\s*(?:CXR)?(\d+)\s*$")
KAGGLE_NAME = re.compile(r"^(\d+)_(.+?)(?:\.dcm)?\.png$", re.IGNORECASE)
XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
# A caption names the view only when it names exactly one of these (real captions are the exam title,
# "Xray Chest PA and Lateral", shared by every image of the study: no view).
_CAPTION_VIEWS = {
    "PA": re.compile(r"\b(PA|postero-?anterior)\b", re.IGNORECASE),
    "AP": re.compile(r"\b(AP|antero-?posterior)\b", re.IGNORECASE),
    "LATERAL": re.compile(r"\b(lateral|lat)\b", re.IGNORECASE),
    "FRONTAL": re.compile(r"\bfrontal\b", re.IGNORECASE),
}


def study_id_of(uid: str | None) -> str | None:
    """``"CXR0012"``, ``"12"`` or ``" 12 "`` → ``"12"``; None when it is not a uid."""
    m = _UID.match(uid or "")
    return str(int(m.group(1))) if m else None


def kaggle_image_id(filename: str) -> str:
    """``5_IM-2117-1003002.dcm.png`` → ``CXR5_IM-2117-1003002``: ``CXR`` + the name without ``.dcm.png``."""
    m = KAGGLE_NAME.match(filename)
    return f"CXR{m.group(1)}_{m.group(2)}" if m else Path(filename).stem


def caption_view(caption: str | None) -> str | None:
    """The projection a caption names, when it names exactly one."""
    if not caption:
        return None
    hits = [view for view, pattern in _CAPTION_VIEWS.items() if pattern.search(caption)]
    return hits[0] if len(hits) == 1 else None


def _plain_name(name: str) -> bool:
    """A file name with no folder part, so it cannot point outside the image folder."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in ("/", "\\", "\0"))


@dataclass
class IuImage:
    """One image a report lists."""

    image_id: str
    file_name: str  # inside the image folder
    view_raw: str | None = None


@dataclass
class IuReport:
    """One report, whichever layout it came from."""

    study_id: str
    path: Path
    where: str  # for messages: "ecgen-radiology/1.xml" or "indiana_reports.csv row 3"
    sections: list[tuple[str, str]]  # (header as the source writes it, stripped text) in source order
    mesh_terms: list[str]
    images: list[IuImage] = field(default_factory=list)
    unused_terms: int = 0  # MeSH children other than <major> (XML only)
    problem: tuple[str, str] | None = None  # (code, message): the study is set aside, its images still listed


class BadReport(Exception):
    """One report cannot be read; ``code`` is the quarantine reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def find_image_dir(candidates: Iterable[Path]) -> Path | None:
    """The first folder that holds a PNG."""
    for folder in candidates:
        if folder.is_dir():
            with os.scandir(folder) as it:
                if any(e.name.lower().endswith(".png") for e in it):
                    return folder
    return None


def _disk_names(folder: Path | None) -> set[str]:
    if folder is None:
        return set()
    with os.scandir(folder) as it:
        return {e.name for e in it if e.name.lower().endswith(".png") and e.is_file()}


# ------------------------------------------------------------------------------------------------------------
# reports → tables (both layouts)


def build_tables(
    fmt: str,
    reports: list[IuReport],
    ctx: ReadContext,
    image_dir: Path | None,
    unlisted_uid: re.Pattern[str],
    image_id_of_name,
    extra_images_in: int = 0,
    listed_elsewhere: Iterable[str] = (),
) -> tuple[pl.DataFrame, pl.DataFrame, int, dict[str, int]]:
    """Duplicates, empty reports, labels, images on disk, unlisted files: the rules both layouts share."""
    q = ctx.quarantine
    mesh = MeshMap.load()
    if image_dir is None and any(r.images for r in reports):
        raise SourceLayoutError(
            f"{ctx.root} has reports that list images but no folder of PNGs beside them",
            hint="extract the images next to the reports (NLMCXR_png/ for the Open-i XML, "
            "images/images_normalized/ for the Kaggle CSVs)",
        )
    on_disk = _disk_names(image_dir)
    first: dict[str, str] = {}
    studies: list[dict] = []
    images: list[dict] = []
    seen_images: set[str] = set()
    referenced: set[str] = set(listed_elsewhere)  # file names some listing names, used or set aside
    images_in = extra_images_in
    notes = {"mesh_terms": 0, "mesh_terms_unmapped": 0}
    for rep in reports:
        images_in += len(rep.images)
        referenced.update(img.file_name for img in rep.images)
        if rep.study_id in first:
            msg = (f"study {rep.study_id} is reported twice: {first[rep.study_id]} and {rep.where}; "
                   f"the first is kept and {rep.where} is set aside — remove the copy")
            q.add("study", rep.study_id, "duplicate_study", msg, path=rep.path, dataset=DATASET)
            for img in rep.images:
                q.add("image", img.image_id, "duplicate_study", f"listed by {rep.where}; {msg}",
                      path=rep.path, dataset=DATASET)
            continue
        first[rep.study_id] = rep.where
        row = _study_row(fmt, rep, mesh, notes)
        if rep.problem is not None:
            q.add("study", rep.study_id, rep.problem[0], rep.problem[1], path=rep.path, dataset=DATASET)
        elif row["findings"] is None and row["impression"] is None:
            q.add("study", rep.study_id, "empty_report",
                  f"{rep.where} has no FINDINGS or IMPRESSION text, so there is no report to learn from; "
                  "if the file was cut short, restore it from the original download",
                  path=rep.path, dataset=DATASET)
        else:
            studies.append(row)
        for img in rep.images:
            source = None if image_dir is None else image_dir / img.file_name
            if img.image_id in seen_images:
                q.add("image", img.image_id, "duplicate_image",
                      f"{rep.where} lists image {img.image_id}, which an earlier report already lists; "
                      "the first listing is kept", path=source, dataset=DATASET)
            elif not _plain_name(img.file_name):
                q.add("image", img.image_id, "path_escape",
                      f"{rep.where} names the image file {img.file_name!r}, which is not a plain file name "
                      "inside the image folder; it was refused and not read — fix the listing",
                      path=rep.path, dataset=DATASET)
            elif img.file_name not in on_disk:
                q.add("image", img.image_id, "missing_image",
                      f"{rep.where} lists image {img.image_id}, but {source} is not on disk; extract the "
                      "images of the same release there, or ignore this for a partial copy held on purpose",
                      path=source, dataset=DATASET)
            else:
                images.append({"image_id": img.image_id, "study_id": rep.study_id,
                               "source_path": str(source), "view_raw": img.view_raw})
            seen_images.add(img.image_id)
    for name in sorted(on_disk - referenced):
        m = unlisted_uid.match(name)
        if ctx.limit is not None and (m is None or str(int(m.group(1))) not in first):
            continue  # outside the studies --limit reads
        images_in += 1
        q.add("image", image_id_of_name(name), "unlisted_image",
              f"{image_dir / name} is in the image folder but no report lists it, so it has no report to "
              "pair with; remove the stray file, or check that reports and images come from one release",
              path=image_dir / name, dataset=DATASET)
    study_df = pl.DataFrame(studies, schema=_STUDY_SCHEMA)
    image_df = pl.DataFrame(images, schema=dict.fromkeys(("image_id", "study_id", "source_path", "view_raw"),
                                                         pl.Utf8))
    return study_df, image_df, images_in, notes


_STUDY_SCHEMA = {
    **{c: pl.Utf8 for c in ("study_id", "subject_id", "dataset", "source_format", "split", *SECTIONS,
                            "extracted_section", "extracted_text", "report_text", "report_path")},
    **{c: pl.Int8 for c in LABEL_COLUMNS},
    "label_source": pl.Utf8,
}


def _study_row(fmt: str, rep: IuReport, mesh: MeshMap, notes: dict[str, int]) -> dict:
    found: dict[str, list[str]] = {}
    for header, text in rep.sections:
        if header.lower() in SECTIONS and text:
            found.setdefault(header.lower(), []).append(text)
    sections = {s: "\n".join(found[s]) if s in found else None for s in SECTIONS}
    # What a CheXpert-style labeller reads: the impression, else the findings (as CheXpert reads MIMIC-CXR).
    extracted = "impression" if sections["impression"] else "findings" if sections["findings"] else None
    labels = mesh.labels(rep.mesh_terms)
    notes["mesh_terms"] += sum(1 for t in rep.mesh_terms if t.strip())
    notes["mesh_terms_unmapped"] += len(labels.unmapped)
    return {
        "study_id": rep.study_id,
        "subject_id": rep.study_id,  # IU-Xray publishes no patient ids
        "dataset": DATASET,
        "source_format": fmt,
        "split": None,
        **sections,
        "extracted_section": extracted,
        "extracted_text": sections[extracted] if extracted else None,
        "report_text": "\n".join(f"{h.upper()}: {t}" if h else t for h, t in rep.sections if t),
        "report_path": str(rep.path),
        **labels.values,
        "label_source": labels.label_source,
    }

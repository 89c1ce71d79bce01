"""IU-Xray (Indiana University Chest X-ray Collection) in its two common layouts (FACTS.md §3).

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
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from datakit.errors import MissingColumnError, SourceLayoutError
from datakit.ingest.base import ReadContext, SourceTables, register
from datakit.ingest.mesh import MeshMap
from datakit.tables import LABEL_COLUMNS

DATASET = "iu-xray"
SECTIONS = ("indication", "comparison", "findings", "impression")
REPORTS_CSV = "indiana_reports.csv"
PROJECTIONS_CSV = "indiana_projections.csv"
_UID = re.compile(r"^\s*(?:CXR)?(\d+)\s*$")
_KAGGLE_NAME = re.compile(r"^(\d+)_(.+?)(?:\.dcm)?\.png$", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
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
    m = _KAGGLE_NAME.match(filename)
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


class _Bad(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _find_image_dir(candidates: Iterable[Path]) -> Path | None:
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


def _build(
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
    # What a CheXpert-style labeller reads: the impression, else the findings (FACTS.md §2.2, §4.1).
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


# ------------------------------------------------------------------------------------------------------------
# Open-i XML


def _decode_check(data: bytes) -> None:
    """Files that declare UTF-8 (or nothing, which means UTF-8) must be valid UTF-8."""
    m = _XML_ENCODING.match(data[:300])
    if m and m.group(1).decode("ascii").lower().replace("_", "-") not in ("utf-8", "utf8"):
        return  # another declared encoding: the XML parser decodes it
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Bad("not_utf8", f"byte 0x{data[err.start]:02X} at offset {err.start} is not UTF-8") from err


def _parse_xml(path: Path, rel: str) -> IuReport:
    data = path.read_bytes()
    _decode_check(data)
    try:
        root = ET.fromstring(data)  # expat: no external entities, bounded entity expansion
    except ET.ParseError as err:
        raise _Bad("malformed_xml", f"not well-formed XML ({err})") from err
    if root.tag != "eCitation":
        raise _Bad("malformed_xml", f"the root element is <{root.tag}>, not the Open-i <eCitation>")
    uid_el = root.find("uId")
    if uid_el is not None:
        study_id = study_id_of(uid_el.get("id"))
        if study_id is None:
            raise _Bad("bad_row", f"its uId {uid_el.get('id')!r} is not CXR followed by a number")
    else:  # no uId: the file name is the uid (ecgen-radiology/1.xml holds CXR1)
        study_id = study_id_of(path.stem)
        if study_id is None:
            raise _Bad("bad_row", "it has no <uId> and its file name is not a number")
    sections = [
        ((el.get("Label") or "").strip(), "".join(el.itertext()).strip()) for el in root.iter("AbstractText")
    ]
    # Labels come from <major> only: the coders' terms, which the Kaggle CSV carries, so both layouts agree.
    # <automatic> (machine-assigned) and any other child are read but not used; the notes count them.
    mesh = root.find("MeSH")
    children = list(mesh) if mesh is not None else []
    terms = [(c.text or "").strip() for c in children if c.tag == "major"]
    images = []
    for k, el in enumerate(root.findall("parentImage"), start=1):
        image_id = (el.get("id") or "").strip()
        if not image_id:
            raise _Bad("bad_row", f"its parentImage number {k} has no id, so its file cannot be named")
        images.append(IuImage(image_id, image_id + ".png", caption_view(el.findtext("caption"))))
    unused = sum(1 for c in children if c.tag != "major" and (c.text or "").strip())
    return IuReport(study_id, path, rel, sections, terms, images, unused)


_XML_HINTS = {
    "malformed_xml": "restore it from NLMCXR_reports.tgz",
    "not_utf8": "re-save it as UTF-8 or restore it from NLMCXR_reports.tgz",
}
_OPENI_NAME = re.compile(r"^CXR(\d+)_", re.IGNORECASE)


def _xml_order(path: Path) -> tuple[int, int, str]:
    return (0, int(path.stem), path.name) if path.stem.isdigit() else (1, 0, path.name)


class OpenIXml:
    """The Open-i XML reports with their PNGs."""

    name = "iu-xray-xml"
    dataset = DATASET
    looks_for = "ecgen-radiology/<n>.xml (Open-i reports), PNGs in NLMCXR_png/, images/ or beside them"

    def detect(self, root: Path) -> bool:
        """An ``ecgen-radiology`` folder holding at least one ``.xml`` file."""
        folder = root / "ecgen-radiology"
        return folder.is_dir() and next(folder.glob("*.xml"), None) is not None

    def read(self, ctx: ReadContext) -> SourceTables:
        """Parse the XML files (the first ``limit`` in numeric order), then check images on disk."""
        root = ctx.root.resolve()
        folder = root / "ecgen-radiology"
        if not folder.is_dir():
            raise SourceLayoutError(f"{root} has no ecgen-radiology/ folder", hint="point at the top folder")
        files = sorted((p for p in folder.glob("*.xml") if p.is_file()), key=_xml_order)
        if ctx.limit is not None:
            files = files[: ctx.limit]
        reports: list[IuReport] = []
        unused = 0
        for path in files:
            rel = f"ecgen-radiology/{path.name}"
            try:
                rep = _parse_xml(path, rel)
            except _Bad as bad:
                hint = _XML_HINTS.get(bad.code, "fix the file")
                ctx.quarantine.add("study", rel, bad.code, f"{rel}: {bad}; {hint}", path=path,
                                   dataset=DATASET)
                continue
            unused += rep.unused_terms
            reports.append(rep)
        image_dir = _find_image_dir((root / "NLMCXR_png", root / "images", root))
        studies, images, images_in, notes = _build(
            self.name, reports, ctx, image_dir, _OPENI_NAME, lambda name: Path(name).stem
        )
        notes["mesh_terms_not_used"] = unused
        return SourceTables(studies, images, studies_in=len(files), images_in=images_in, notes=notes)


# ------------------------------------------------------------------------------------------------------------
# Kaggle CSVs


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
        image_dir = _find_image_dir((root / "images" / "images_normalized", root / "images"))
        studies, images, images_in, notes = _build(
            self.name, reports, ctx, image_dir, _KAGGLE_NAME, kaggle_image_id, extra_images_in=extra_in,
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
            m = _KAGGLE_NAME.match(name)
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


register(OpenIXml())
register(KaggleCsv())

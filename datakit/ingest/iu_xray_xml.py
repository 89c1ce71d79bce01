"""IU-Xray as the Open-i release: `ecgen-radiology/<n>.xml` and the PNGs beside it (layouts: `iu_xray`)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from datakit.errors import SourceLayoutError
from datakit.ingest.base import ReadContext, SourceTables, register
from datakit.ingest.iu_xray import (
    DATASET,
    XML_ENCODING,
    BadReport,
    IuImage,
    IuReport,
    build_tables,
    caption_view,
    find_image_dir,
    study_id_of,
)


def _decode_check(data: bytes) -> None:
    """Files that declare UTF-8 (or nothing, which means UTF-8) must be valid UTF-8."""
    m = XML_ENCODING.match(data[:300])
    if m and m.group(1).decode("ascii").lower().replace("_", "-") not in ("utf-8", "utf8"):
        return  # another declared encoding: the XML parser decodes it
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadReport("not_utf8", f"byte 0x{data[err.start]:02X} at offset {err.start} is not UTF-8") from err


def _parse_xml(path: Path, rel: str) -> IuReport:
    data = path.read_bytes()
    _decode_check(data)
    try:
        root = ET.fromstring(data)  # expat: no external entities, bounded entity expansion
    except ET.ParseError as err:
        raise BadReport("malformed_xml", f"not well-formed XML ({err})") from err
    if root.tag != "eCitation":
        raise BadReport("malformed_xml", f"the root element is <{root.tag}>, not the Open-i <eCitation>")
    uid_el = root.find("uId")
    if uid_el is not None:
        study_id = study_id_of(uid_el.get("id"))
        if study_id is None:
            raise BadReport("bad_row", f"its uId {uid_el.get('id')!r} is not CXR followed by a number")
    else:  # no uId: the file name is the uid (ecgen-radiology/1.xml holds CXR1)
        study_id = study_id_of(path.stem)
        if study_id is None:
            raise BadReport("bad_row", "it has no <uId> and its file name is not a number")
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
            raise BadReport("bad_row", f"its parentImage number {k} has no id, so its file cannot be named")
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
            except BadReport as bad:
                hint = _XML_HINTS.get(bad.code, "fix the file")
                ctx.quarantine.add("study", rel, bad.code, f"{rel}: {bad}; {hint}", path=path,
                                   dataset=DATASET)
                continue
            unused += rep.unused_terms
            reports.append(rep)
        image_dir = find_image_dir((root / "NLMCXR_png", root / "images", root))
        studies, images, images_in, notes = build_tables(
            self.name, reports, ctx, image_dir, _OPENI_NAME, lambda name: Path(name).stem
        )
        notes["mesh_terms_not_used"] = unused
        return SourceTables(studies, images, studies_in=len(files), images_in=images_in, notes=notes)


register(OpenIXml())

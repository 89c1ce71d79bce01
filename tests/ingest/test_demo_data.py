"""The demo data in examples/demo/: reproducible, in the real layouts, broken only where README.md says."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import polars as pl
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import pixel_array

from datakit.config import ImageConfig, IngestConfig
from datakit.ingest.base import ReadContext
from datakit.ingest.images import convert_images
from datakit.ingest.mimic_cxr import MimicCxr
from datakit.ingest.sections import CustomRules, extract
from datakit.rundir import Quarantine, RunDir

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo"
MIMIC = DEMO / "mimic-cxr"
IU = DEMO / "iu-xray"

LABELS = [
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
    "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
    "Pneumothorax", "Support Devices",
]
# MIMIC-CXR-JPG on PhysioNet, in the files' order
META_COLUMNS = [
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows",
    "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
]
# words that mention each observation in these reports: a label that is set needs one, a mention needs a label
MENTIONS = {
    "Atelectasis": r"atelectasis",
    "Cardiomegaly": r"cardiomegaly|\bheart\b|\bcardiac\b",
    "Consolidation": r"consolidation",
    "Edema": r"edema",
    # "stable" contours compare with a prior and are no mention (the labeler reads them so since issue 15)
    "Enlarged Cardiomediastinum": r"cardiomediastinal contours(?! are stable)(?<!stable cardiomediastinal contours)"
                                  r"|widened mediastinum|mediastinum is widened",
    "Fracture": r"fracture",
    "Lung Lesion": r"nodule|\bmass\b",
    "Lung Opacity": r"opacit",
    "Pleural Effusion": r"effusion",
    "Pleural Other": r"pleural thickening",
    "Pneumonia": r"pneumonia",
    "Pneumothorax": r"pneumothorax",
    "Support Devices": r"\btubes?\b|\blines?\b|pacemaker|catheter",
}
DICOM_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")


def load_make_demo():
    spec = importlib.util.spec_from_file_location("make_demo", REPO / "examples" / "make_demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_demo"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def read_csv(path: Path) -> list[dict[str, str]]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))


def readme_faults() -> dict[str, str]:
    """README.md's fault table: file (relative to examples/demo) → reason code."""
    rows = re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", (DEMO / "README.md").read_text(), flags=re.M)
    return {path: code for code, path in rows}


def all_files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    load_make_demo().build(out)
    return out


# ----------------------------------------------------------------------------------------------------
# reproducible, and what is committed is what the script makes


def test_generator_is_deterministic(fresh, tmp_path):
    load_make_demo().build(tmp_path)
    first, second = all_files(fresh), all_files(tmp_path)
    assert first.keys() == second.keys()
    changed = [name for name in first if first[name].read_bytes() != second[name].read_bytes()]
    assert changed == []


def _same_content(name: str, a: Path, b: Path) -> bool:
    """Byte-equal, or equal once decoded (zlib and float rounding may differ between machines)."""
    if a.read_bytes() == b.read_bytes():
        return True
    if name.endswith(".gz"):
        return gzip.decompress(a.read_bytes()) == gzip.decompress(b.read_bytes())
    if name.endswith(".png"):
        return np.abs(np.asarray(Image.open(a), int) - np.asarray(Image.open(b), int)).max() <= 2
    if name.endswith(".dcm"):
        da, db = pydicom.dcmread(a, force=True), pydicom.dcmread(b, force=True)
        if [e for e in da if e.tag != 0x7FE00010] != [e for e in db if e.tag != 0x7FE00010]:
            return False
        if "PixelData" not in da or len(a.read_bytes()) != len(b.read_bytes()):
            return "PixelData" not in da and "PixelData" not in db
        return np.abs(pixel_array(da, index=0).astype(int) - pixel_array(db, index=0).astype(int)).max() <= 2
    return False


def test_committed_demo_is_what_the_script_makes(fresh):
    committed, made = all_files(DEMO), all_files(fresh)
    assert committed.keys() == made.keys(), "run `python examples/make_demo.py` and commit examples/demo/"
    stale = [name for name in made if not _same_content(name, committed[name], made[name])]
    assert stale == [], "run `python examples/make_demo.py` and commit examples/demo/"


def test_size_and_shape_of_the_demo():
    assert sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file()) <= 6_000_000
    meta = read_csv(MIMIC / "mimic-cxr-2.0.0-metadata.csv.gz")
    reports = list((MIMIC / "files").glob("p1?/p*/s*.txt"))
    folders = [p for p in (MIMIC / "files").glob("p1?/p*/s*") if p.is_dir()]
    patients = {p.parent.name for p in folders}
    assert len(folders) >= 24 and len(patients) >= 12 and len(reports) == len(folders) - 1
    per_patient = {pid: sum(1 for f in folders if f.parent.name == pid) for pid in patients}
    assert sum(1 for n in per_patient.values() if n > 1) >= 6
    views: dict[str, set[str]] = {}
    for row in meta:
        views.setdefault(row["study_id"], set()).add(row["ViewPosition"])
    both = [s for s, v in views.items() if v & {"PA", "AP"} and v & {"LATERAL", "LL"}]
    single = [s for s, v in views.items() if len(v) == 1]
    assert len(both) >= len(views) * 0.7 and len(single) >= 3
    assert {row["ViewPosition"] for row in meta} >= {"PA", "AP", "LATERAL", "LL"}


# ----------------------------------------------------------------------------------------------------
# MIMIC-CXR layout, ids, CSVs, reports, labels


def test_ids_and_tree_follow_the_real_formats():
    for path in (MIMIC / "files").glob("p1?/p*/s*"):
        group, patient, study = path.parts[-3], path.parts[-2], path.name
        assert re.fullmatch(r"p1\d", group) and re.fullmatch(r"p1\d{7}", patient) and patient[:3] == group
        assert re.fullmatch(r"s5\d{7}(\.txt)?", study)
    for dcm in (MIMIC / "files").glob("p1?/p*/s*/*.dcm"):
        assert DICOM_ID.match(dcm.stem)


def test_csvs_have_the_real_columns_and_values():
    meta = read_csv(MIMIC / "mimic-cxr-2.0.0-metadata.csv.gz")
    assert list(meta[0]) == META_COLUMNS
    split = read_csv(MIMIC / "mimic-cxr-2.0.0-split.csv.gz")
    assert list(split[0]) == ["dicom_id", "study_id", "subject_id", "split"]
    assert {r["split"] for r in split} == {"train", "validate", "test"}
    subject_splits: dict[str, set[str]] = {}
    for r in split:
        subject_splits.setdefault(r["subject_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in subject_splits.values())  # split by patient
    assert {r["dicom_id"] for r in split} == {r["dicom_id"] for r in meta}
    chexpert = read_csv(MIMIC / "mimic-cxr-2.0.0-chexpert.csv.gz")
    negbio = read_csv(MIMIC / "mimic-cxr-2.0.0-negbio.csv")
    assert list(chexpert[0]) == list(negbio[0]) == ["subject_id", "study_id", *LABELS]
    assert chexpert == negbio
    for row in chexpert:
        assert {row[name] for name in LABELS} <= {"", "1.0", "0.0", "-1.0"}
        findings = [name for name in LABELS if name not in ("No Finding", "Support Devices")
                    and row[name] in ("1.0", "-1.0")]
        assert row["No Finding"] == ("" if findings else "1.0")  # CheXpert's rule (stanfordmlgroup/chexpert-labeler)


def test_reports_use_the_mimic_text_layout():
    texts = {p.stem: p.read_text(encoding="ascii") for p in (MIMIC / "files").glob("p1?/p*/s*.txt")}
    for text in texts.values():
        lines = text.split("\n")
        assert text.endswith("\n") and "\t" not in text and "\r" not in text
        assert all(line.startswith(" ") and len(line) <= 79 for line in lines[:-1])
    centred = " " * 33 + "FINAL REPORT"
    assert sum(centred in t.split("\n") for t in texts.values()) >= len(texts) - 2
    assert sum("___" in t for t in texts.values()) >= len(texts) // 2
    assert any(" " + "_" * 78 in t.split("\n") for t in texts.values())  # an addendum's underscore line


def test_labels_agree_with_the_text_the_labeller_reads():
    labels = {r["study_id"]: r for r in read_csv(MIMIC / "mimic-cxr-2.0.0-chexpert.csv.gz")}
    rules = CustomRules.load()
    checked = 0
    for path in (MIMIC / "files").glob("p1?/p*/s*.txt"):
        text = " ".join(extract(path.read_text(), path.stem, rules).text.lower().split())
        row = labels[path.stem[1:]]
        for name, pattern in MENTIONS.items():
            mentioned = re.search(pattern, text) is not None
            assert mentioned == (row[name] != ""), (path.stem, name, row[name], text)
            checked += 1
    assert checked == 26 * len(MENTIONS)


def test_section_parser_edge_cases_are_all_there():
    rules = CustomRules.load()
    texts = {p.stem: p.read_text() for p in (MIMIC / "files").glob("p1?/p*/s*.txt")}
    sections = {stem: extract(text, stem, rules) for stem, text in texts.items()}
    picked = {s.section for s in sections.values()}
    assert {"impression", "findings", "last_paragraph"} <= picked
    assert any(t.startswith(" FINDINGS:") for t in texts.values())  # header on the first line
    assert any(t.startswith(" ADDENDUM:") for t in texts.values())
    assert any("\n CHEST, PA AND LATERAL:\n" in t for t in texts.values())
    assert any(re.search(r"\n 1\.  .*\n 2\.  .*\n 3\.  ", t) for t in texts.values())
    assert any("\n FINDINGS: \n \n IMPRESSION:" in t for t in texts.values())
    assert any("\n IMPRESSON:" in t for t in texts.values())
    assert any("WET READ:" in t for t in texts.values())
    assert any("\n NOTIFICATION:" in t for t in texts.values())
    assert any("\n RECOMMENDATION(S):" in t for t in texts.values())
    assert any(":" not in t for t in texts.values())  # no headers at all
    swallowed = [s for s in sections.values() if s.section == "findings" and s.text.startswith("IMPRESSION:")]
    assert len(swallowed) == 1  # FINDINGS:\n IMPRESSION: — the official parser's quirk, reproduced


# ----------------------------------------------------------------------------------------------------
# DICOM files


def test_dicoms_parse_as_their_metadata_says():
    meta = {r["dicom_id"]: r for r in read_csv(MIMIC / "mimic-cxr-2.0.0-metadata.csv.gz")}
    faults = readme_faults()
    seen = {"syntax": set(), "photometric": set(), "bits": set(), "voi": set(), "signed": set()}
    for path in sorted((MIMIC / "files").glob("p1?/p*/s*/*.dcm")):
        rel = path.relative_to(DEMO).as_posix()
        ds = pydicom.dcmread(path)
        if faults.get(rel) == "no_pixel_data":
            assert "PixelData" not in ds and ds.Rows > 0
            continue
        if faults.get(rel) == "corrupt_image":
            with pytest.raises(ValueError):  # pydicom: fewer pixel bytes than Rows x Columns need
                pixel_array(ds, index=0)
            continue
        assert ds.SOPClassUID in ("1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1")
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.PatientID == path.parts[-3][1:] and ds.StudyID == path.parent.name[1:]
        row = meta.get(path.stem)
        if faults.get(rel) == "unlisted_image":
            assert row is None
        else:
            assert (int(row["Rows"]), int(row["Columns"]), row["ViewPosition"]) == (ds.Rows, ds.Columns,
                                                                                  ds.ViewPosition)
            assert (row["StudyDate"], row["StudyTime"]) == (ds.StudyDate, ds.StudyTime)
        arr = pixel_array(ds, index=0)
        assert arr.shape == (ds.Rows, ds.Columns) and arr.std() > 0
        seen["syntax"].add(ds.file_meta.TransferSyntaxUID.name)
        seen["photometric"].add(ds.PhotometricInterpretation)
        seen["bits"].add(ds.BitsStored)
        seen["voi"].add("lut" if "VOILUTSequence" in ds else "window" if "WindowCenter" in ds else "none")
        seen["signed"].add(ds.PixelRepresentation)
    assert seen == {
        "syntax": {"Explicit VR Little Endian", "Implicit VR Little Endian", "RLE Lossless",
                   "Deflated Explicit VR Little Endian"},
        "photometric": {"MONOCHROME1", "MONOCHROME2"},
        "bits": {12, 16},
        "voi": {"lut", "window", "none"},
        "signed": {0, 1},
    }


def test_demo_ingests_with_only_the_listed_faults(tmp_path):
    """The MIMIC reader and the converter, on the demo: every quarantined row is one README.md lists."""
    quarantine = Quarantine("ingest")
    raw = MimicCxr("mimic-cxr", ("dcm",)).read(ReadContext(MIMIC, IngestConfig(), quarantine))
    assert raw.studies_in == 27 and raw.studies.height == 26 and raw.images_in == 52
    images = raw.images.join(raw.studies.select("study_id"), on="study_id", how="semi")
    set_aside_with_study = raw.images.height - images.height
    cfg = ImageConfig(max_size=128, workers=2)
    out = convert_images(images, RunDir.create(tmp_path / "run"), cfg, quarantine)
    found = {(r.code, Path(r.path).resolve().relative_to(DEMO.resolve()).as_posix())
             for r in quarantine.records}
    # the reader names the study folder of a missing report; README.md names the missing file
    found = {(c, p + ".txt" if c == "missing_report" else p) for c, p in found}
    expected = {(code, path) for path, code in readme_faults().items()}
    assert found == expected
    assert out.height == 52 - 3 - set_aside_with_study == 47
    assert out["width"].max() <= 128 and (out["source_width"] > 200).all()
    for voi in (True, False):  # every good file also converts with the file's own VOI
        q = Quarantine("ingest")
        cfg = ImageConfig(max_size=64, voi_lut=voi)
        convert_images(images, RunDir.create(tmp_path / f"voi{voi}"), cfg, q)
        assert {r.code for r in q.records} == {"corrupt_image", "no_pixel_data"}


# ----------------------------------------------------------------------------------------------------
# IU-Xray


def test_iu_xray_xml_follows_the_open_i_layout():
    xmls = sorted((IU / "ecgen-radiology").glob("*.xml"), key=lambda p: int(p.stem))
    assert len(xmls) == 10
    pngs = {p.stem for p in (IU / "NLMCXR_png").glob("*.png")}
    listed, missing, empty, without_images = set(), 0, 0, 0
    for path in xmls:
        root = ET.parse(path).getroot()
        assert root.tag == "eCitation"
        uid = root.find("uId").get("id")
        assert re.fullmatch(r"CXR\d+", uid) and root.find("IUXRId").get("id") == uid[3:]
        assert root.findtext("licenseType") == "open-access" and "by-nc-nd" in root.findtext("licenseURL")
        texts = root.findall("MedlineCitation/Article/Abstract/AbstractText")
        labels = [t.get("Label") for t in texts]
        assert set(labels) <= {"COMPARISON", "INDICATION", "FINDINGS", "IMPRESSION"}
        assert "IMPRESSION" in labels
        missing += 4 - len(labels)
        empty += sum(1 for t in texts if not (t.text or "").strip())
        assert {child.tag for child in root.find("MeSH")} <= {"major", "automatic"}
        images = root.findall("parentImage")
        without_images += not images
        for image in images:
            m = re.fullmatch(r"CXR(\d+)_(\d+)_IM-(\d{4})-(\d{4})", image.get("id"))
            assert m and m.group(1) == uid[3:] and image.findtext("figureId")
            listed.add(image.get("id"))
    assert listed == pngs and without_images == 1 and empty >= 1 and missing >= 1
    assert any("XXXX" in p.read_text() for p in xmls)
    for name in pngs:
        with Image.open(IU / "NLMCXR_png" / f"{name}.png") as im:
            assert im.mode == "L" and min(im.size) >= 200


def test_iu_pngs_convert(tmp_path):
    pngs = sorted((IU / "NLMCXR_png").glob("*.png"))
    df = pl.DataFrame({"image_id": [p.stem for p in pngs], "source_path": [str(p) for p in pngs]})
    q = Quarantine("ingest")
    out = convert_images(df, RunDir.create(tmp_path), ImageConfig(workers=1), q)
    assert not q.records and out.height == len(pngs) == 18

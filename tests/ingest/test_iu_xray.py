"""IU-Xray readers: the real Kaggle CSVs (964 reports), Open-i XML written here, the MeSH → label table."""

import csv
import io
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from PIL import Image

from datakit import ingest
from datakit.config import load_config
from datakit.errors import MissingColumnError, SourceLayoutError
from datakit.ingest.base import ReadContext
from datakit.ingest.iu_xray import caption_view, kaggle_image_id, study_id_of
from datakit.ingest.iu_xray_csv import KaggleCsv
from datakit.ingest.iu_xray_xml import OpenIXml
from datakit.ingest.mesh import MAPPING_PATH, MeshMap
from datakit.rundir import Quarantine
from datakit.tables import LABEL_BY_NAME, LABEL_COLUMNS

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "tests" / "data" / "iu-xray-reports-dev"
SECTIONS = ("indication", "comparison", "findings", "impression")


def cfg(**over):
    return load_config(overrides={"ingest.images.convert": False, **over})


def tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buf, format="PNG")
    return buf.getvalue()


PNG = tiny_png()


def read(fmt, root, **over):
    q = Quarantine("ingest")
    tables = fmt.read(ReadContext(Path(root), cfg(**over).ingest, q))
    return tables, q


def codes(q, kind=None):
    return sorted((r.code, r.key) for r in q.records if kind is None or r.kind == kind)


def require_dev():
    if not DEV.is_dir():  # the sdist leaves the CC BY-NC-ND reports out (pyproject.toml)
        pytest.skip("the IU-Xray development reports are only in the repository")


def dev_rows(name):
    require_dev()
    with open(DEV / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def kaggle_csvs(tmp_path):
    """The real CSV pair, unchanged, and no images."""
    root = tmp_path / "iu"
    root.mkdir()
    require_dev()
    for name in ("indiana_reports.csv", "indiana_projections.csv"):
        shutil.copyfile(DEV / name, root / name)
    return root


@pytest.fixture
def kaggle(kaggle_csvs):
    """The real CSV pair with a tiny PNG for every image the projections name."""
    folder = kaggle_csvs / "images" / "images_normalized"
    folder.mkdir(parents=True)
    for row in dev_rows("indiana_projections.csv"):
        (folder / row["filename"]).write_bytes(PNG)
    return kaggle_csvs


# -- the real Kaggle CSVs ------------------------------------------------------------------------------------


def test_real_csv_counts_add_up(kaggle, tmp_path):
    reports = dev_rows("indiana_reports.csv")
    empty = {r["uid"] for r in reports if not r["findings"].strip() and not r["impression"].strip()}
    assert len(reports) == 964 and len(empty) == 10
    tables, q = read(KaggleCsv(), kaggle)
    assert tables.studies_in == 964 and tables.images_in == 1850
    assert tables.studies.height == 954
    assert codes(q) == sorted(("empty_report", uid) for uid in empty)
    # the pipeline checks in = out + quarantined for both kinds, and sets the empty reports' images aside
    result = ingest.run(kaggle, tmp_path / "run", cfg())
    assert result.format == "iu-xray-csv"
    assert result.counts["study_out"] == 954 and result.counts["study_quarantined"] == 10
    n_empty_images = sum(1 for r in dev_rows("indiana_projections.csv") if r["uid"] in empty)
    assert result.counts["image_out"] == 1850 - n_empty_images
    assert result.quarantine.by_code("image") == {"study_quarantined": n_empty_images}
    assert set(result.studies["split_source"]) == {"patient_hash"}
    assert (result.studies["subject_id"] == result.studies["study_id"]).all()


def test_real_rows_spot_checked(kaggle):
    tables, _ = read(KaggleCsv(), kaggle)
    s = {r["study_id"]: r for r in tables.studies.iter_rows(named=True)}
    one = s["1"]
    assert one["indication"] == "Positive TB test" and one["comparison"] == "None."
    assert one["findings"].startswith("The cardiac silhouette and mediastinum size are within normal limits.")
    assert one["impression"] == "Normal chest x-XXXX."
    assert one["report_text"].splitlines()[0] == "INDICATION: Positive TB test"
    assert one["report_text"].splitlines()[-1] == "IMPRESSION: Normal chest x-XXXX."
    assert one["report_path"].endswith("indiana_reports.csv") and one["split"] is None
    # "normal": No Finding 1; the other 13 were not mentioned one by one, so they stay null (never folded into 0)
    assert one["no_finding"] == 1 and one["label_source"] == "mesh"
    assert all(one[c] is None for c in LABEL_COLUMNS if c != "no_finding")
    # uid 5: Thickening/pleura → Pleural Other; the rest not mentioned stays null; empty comparison is null
    five = s["5"]
    assert five["pleural_other"] == 1 and five["no_finding"] is None and five["cardiomegaly"] is None
    assert five["comparison"] is None and "COMPARISON" not in five["report_text"]
    # uid 13: Cardiac Shadow/borderline → uncertain cardiomegaly
    assert s["13"]["cardiomegaly"] == -1
    # uid 9: a calcified granuloma and a density outside the lung: no CheXpert label at all
    assert all(s["9"][c] is None for c in LABEL_COLUMNS) and s["9"]["label_source"] is None
    # uid 21 has no findings: kept, and the impression is what a labeller reads
    assert s["21"]["findings"] is None and s["21"]["extracted_section"] == "impression"
    assert "673" not in s  # neither findings nor impression
    images = {r["image_id"]: r for r in tables.images.iter_rows(named=True)}
    assert images["CXR1_IM-0001-4001"]["view_raw"] == "FRONTAL"
    assert images["CXR1_IM-0001-3001"]["view_raw"] == "LATERAL"
    assert images["CXR1_IM-0001-3001"]["study_id"] == "1"
    assert Path(images["CXR1_IM-0001-3001"]["source_path"]).is_absolute()


def test_real_mesh_headings_with_a_chexpert_meaning_are_mapped():
    mesh = MeshMap.load()
    cases = {
        "Opacity/lung/base/left": {"lung_opacity": 1},
        "Pleural Effusion/right/small": {"pleural_effusion": 1},
        "Cardiomegaly/mild": {"cardiomegaly": 1},
        "Pulmonary Atelectasis/base/left": {"atelectasis": 1},
        "Consolidation/lung/base/right": {"consolidation": 1},
        "Pneumonia/upper lobe/right": {"pneumonia": 1},
        "Pulmonary Edema/interstitial": {"edema": 1},
        "Pneumothorax/right/large": {"pneumothorax": 1},
        "Fractures, Bone/ribs/left/healed": {"fracture": 1},
        "Nodule/lung/upper lobe/right": {"lung_lesion": 1},
        "Catheters, Indwelling/right": {"support_devices": 1},
        "Tube, Inserted/trachea, carina": {"support_devices": 1},
        "Thickening/pleura/apex/bilateral": {"pleural_other": 1},
        "Airspace Disease/lung/base/left": {"lung_opacity": 1},
        "Costophrenic Angle/right/blunted": {"pleural_effusion": -1},
        "Hydropneumothorax/left/large": {"pneumothorax": 1, "pleural_effusion": 1},
        "Lymph nodes/bilateral/enlarged": {},
        "Density/ribs/right/focal": {},
    }
    for term, expected in cases.items():
        assert mesh.term_labels(term) == expected, term
    headings = {t.split("/")[0] for r in dev_rows("indiana_reports.csv") for t in r["MeSH"].split(";")}
    for term in cases:
        assert term.split("/")[0].lower() in {h.lower() for h in headings}, f"{term} is not in the real data"


# -- the MeSH mapping ----------------------------------------------------------------------------------------


def test_mesh_most_specific_rule_wins_and_studies_combine():
    mesh = MeshMap.load()
    assert mesh.term_labels("Cardiac Shadow/enlarged") == {"cardiomegaly": 1}
    assert mesh.term_labels("Cardiac Shadow/enlarged/borderline") == {"cardiomegaly": -1}
    assert mesh.term_labels("cardiomegaly / BORDERLINE") == {"cardiomegaly": -1}
    # 1 and -1 for the same label combine to 1; a finding drops normal's No Finding
    labels = mesh.labels(["normal", "Cardiomegaly/borderline", "Cardiomegaly/severe", "Aorta/tortuous"])
    assert labels.values["cardiomegaly"] == 1 and labels.values["no_finding"] is None
    assert labels.values["edema"] is None and labels.unmapped == ["Aorta/tortuous"]
    # a device alone keeps No Finding (CheXpert's rule excludes Support Devices)
    assert mesh.labels(["normal", "Catheters, Indwelling"]).values["no_finding"] == 1
    # not indexed: nothing known, every label null, no label source
    none = mesh.labels(["No Indexing"])
    assert set(none.values.values()) == {None} and none.label_source is None


def test_mesh_table_agrees_with_the_knowledge_base():
    folder = REPO / "knowledge" / "findings"
    kb = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in folder.glob("*.yaml")}
    mesh = MeshMap.load()
    assert len(mesh.rules) > 60
    for rule in mesh.rules:
        if rule.knowledge_id is None:
            continue
        assert rule.knowledge_id in kb, f"line {rule.line}: no knowledge entry {rule.knowledge_id}"
        if rule.label is not None and rule.value is None:
            # a "null" row takes a label away: the entry it names is something else
            assert kb[rule.knowledge_id]["chexpert"] != rule.label, f"line {rule.line}: {rule}"
        else:
            assert kb[rule.knowledge_id]["chexpert"] == rule.label, f"line {rule.line}: {rule}"


def test_a_null_row_takes_the_label_away_from_more_specific_terms():
    mesh = MeshMap.load()
    assert mesh.labels(["Opacity/lung/base/left"]).values["lung_opacity"] == 1
    assert mesh.labels(["Opacity/ribs/anterior"]).values["lung_opacity"] is None
    assert mesh.labels(["Nodule/lung/calcified"]).values["lung_lesion"] is None
    assert mesh.labels(["Pleural Effusion/borderline"]).values["pleural_effusion"] == -1


def test_mesh_table_rejects_bad_rows(tmp_path):
    header = MAPPING_PATH.read_text(encoding="utf-8").splitlines()[0]
    bad = tmp_path / "m.csv"
    bad.write_text(header + "\nOpacity,,Lung Opacities,1,,\n", encoding="utf-8")
    with pytest.raises(ValueError, match="Lung Opacities"):
        MeshMap.load(bad)
    bad.write_text(header + "\nOpacity,,Lung Opacity,2,,\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":2:"):
        MeshMap.load(bad)
    assert set(LABEL_BY_NAME) >= {"Lung Opacity", "No Finding"}


# -- Kaggle CSVs with faults ---------------------------------------------------------------------------------

REPORT_HEADER = ["uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression"]


def write_kaggle(root, reports, projections, images=None, encoding_fault=None):
    root.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(REPORT_HEADER)
    w.writerows(reports)
    data = buf.getvalue().encode("utf-8")
    if encoding_fault:
        data = data.replace(encoding_fault.encode("utf-8"), encoding_fault.encode("latin-1"))
    (root / "indiana_reports.csv").write_bytes(data)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["uid", "filename", "projection"])
    w.writerows(projections)
    (root / "indiana_projections.csv").write_text(buf.getvalue(), encoding="utf-8")
    folder = root / "images"
    folder.mkdir(exist_ok=True)
    for name in images if images is not None else [p[1] for p in projections]:
        (folder / name).write_bytes(PNG)
    return root


def report(uid, findings="Lungs clear.", impression="Normal.", mesh="normal"):
    return [uid, mesh, mesh.split("/")[0], "Xray Chest PA and Lateral", "Cough.", "", findings, impression]


def test_csv_faults_are_quarantined(tmp_path):
    root = write_kaggle(
        tmp_path / "iu",
        [report("2"), report("x7"), report("2", findings="Copy."), report("3", "", " "), report("4"),
         report("6", findings="Heart norm\u00e1l.")],
        [["2", "2_IM-1-1001.dcm.png", "Frontal"], ["2", "2_IM-1-2001.dcm.png", "Lateral"],
         ["4", "4_IM-3-1001.dcm.png", "Frontal"], ["4", "../../outside.png", "Lateral"],
         ["8", "8_IM-5-1001.dcm.png", "Frontal"], ["6", "6_IM-4-1001.dcm.png", ""]],
        images=["2_IM-1-1001.dcm.png", "6_IM-4-1001.dcm.png", "4_IM-3-1001.dcm.png", "9_IM-9-1001.dcm.png",
                "8_IM-5-1001.dcm.png"],
        encoding_fault="norm\u00e1l",
    )
    tables, q = read(KaggleCsv(), root)
    assert codes(q, "study") == [("bad_row", "row 2"), ("duplicate_study", "2"), ("empty_report", "3"),
                                 ("not_utf8", "6")]
    assert codes(q, "image") == [("missing_image", "CXR2_IM-1-2001"), ("missing_report", "CXR8_IM-5-1001"),
                                 ("path_escape", "outside"), ("unlisted_image", "CXR9_IM-9-1001")]
    dup = next(r for r in q.records if r.code == "duplicate_study")
    assert "row 1" in dup.message and "row 3" in dup.message
    assert sorted(tables.studies["study_id"]) == ["2", "4"]
    assert tables.studies_in == 6
    # every image row seen is returned or set aside (study 6's image is returned: the pipeline drops it)
    assert tables.images_in == tables.images.height + q.count("image")
    assert dict(tables.images.select("image_id", "view_raw").iter_rows()) == {
        "CXR2_IM-1-1001": "FRONTAL", "CXR4_IM-3-1001": "FRONTAL", "CXR6_IM-4-1001": None}


def test_csv_missing_column_names_file_and_column(tmp_path):
    root = tmp_path / "iu"
    write_kaggle(root, [report("1")], [["1", "1_IM-1-1001.dcm.png", "Frontal"]])
    text = (root / "indiana_reports.csv").read_text().replace("findings", "finding")
    (root / "indiana_reports.csv").write_text(text)
    with pytest.raises(MissingColumnError) as err:
        read(KaggleCsv(), root)
    assert "indiana_reports.csv" in str(err.value) and "'findings'" in str(err.value)
    (root / "indiana_reports.csv").write_text(text.replace("finding", "findings"))
    (root / "indiana_projections.csv").write_text("uid,file,projection\n1,a.png,Frontal\n")
    with pytest.raises(MissingColumnError, match="indiana_projections.csv has no column 'filename'"):
        read(KaggleCsv(), root)


def test_csv_without_images_is_a_layout_error(kaggle_csvs):
    with pytest.raises(SourceLayoutError, match="no folder of PNGs"):
        read(KaggleCsv(), kaggle_csvs)


def test_csv_limit_reads_the_first_uids(kaggle):
    tables, q = read(KaggleCsv(), kaggle, **{"ingest.limit": 4})
    assert sorted(tables.studies["study_id"], key=int) == ["1", "5", "9", "13"]
    assert tables.studies_in == 4 and set(tables.images["study_id"]) == {"1", "5", "9", "13"}
    assert tables.images_in == tables.images.height and not q.records  # no unlisted flood from other studies


# -- Open-i XML ----------------------------------------------------------------------------------------------


def openi(uid, sections=None, mesh=(("major", "normal"),), images=(), uid_attr=None):
    """One ecgen-radiology file in the Open-i structure (Open-i); ``sections``: label → text/None."""
    if sections is None:
        sections = {"COMPARISON": "None.", "INDICATION": "Cough.", "FINDINGS": "The lungs are clear.",
                    "IMPRESSION": "No acute disease."}
    texts = "".join(
        f'<AbstractText Label="{label}"/>' if text is None
        else f'<AbstractText Label="{label}">{text}</AbstractText>'
        for label, text in sections.items()
    )
    terms = "".join(f"<{tag}>{text}</{tag}>" for tag, text in mesh)
    parents = "".join(
        f'<parentImage id="{image_id}"><figureId>F{k}</figureId><caption>{caption}</caption>'
        f'<panel type="single"><url>/hadoop/storage/radiology/extract/{image_id}.jpg</url></panel>'
        "</parentImage>"
        for k, (image_id, caption) in enumerate(images, start=1)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<eCitation><meta type="rr"/>'
        f'<uId id="{uid_attr or f"CXR{uid}"}"/><pmcId id="{uid}"/><docSource>CXR</docSource>'
        f'<IUXRId id="{uid}"/>'
        "<licenseType>open-access</licenseType><licenseURL>http://creativecommons.org/licenses/by-nc-nd/4.0/"
        "</licenseURL><ccLicense>byncnd</ccLicense><articleDate>2013-08-01</articleDate>"
        '<MedlineCitation Owner="Indiana University" Status="supplied by publisher">'
        '<Article PubModel="Electronic">'
        f"<ArticleTitle>Indiana University Chest X-ray Collection</ArticleTitle><Abstract>{texts}</Abstract>"
        f"</Article></MedlineCitation><MeSH>{terms}</MeSH>{parents}</eCitation>"
    ).encode()


def write_openi(root, files, pngs=(), folder="NLMCXR_png"):
    (root / "ecgen-radiology").mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / "ecgen-radiology" / name).write_bytes(data)
    target = root / folder if folder else root
    target.mkdir(parents=True, exist_ok=True)
    for image_id in pngs:
        (target / f"{image_id}.png").write_bytes(PNG)
    return root


def test_xml_sections_mesh_children_and_image_counts(tmp_path):
    three = [("CXR1_1_IM-0001-1001", "Xray Chest PA and Lateral"), ("CXR1_1_IM-0001-2001", "Lateral chest"),
             ("CXR1_1_IM-0001-3001", "Chest, PA view")]
    files = {
        "1.xml": openi(1, mesh=[("major", "Pleural Effusion/left/small"),
                                ("major", "Cardiomegaly/borderline"),
                                ("automatic", "Pneumothorax"), ("minor", "Opacity")], images=three),
        "2.xml": openi(2, {"COMPARISON": None, "FINDINGS": "Heart normal.", "IMPRESSION": None},
                       images=[("CXR2_1_IM-0002-1001", "Xray Chest PA and Lateral")]),
        "3.xml": openi(3, images=[]),
    }
    root = write_openi(tmp_path / "iu", files, pngs=[i for i, _ in three] + ["CXR2_1_IM-0002-1001"])
    tables, q = read(OpenIXml(), root)
    assert not q.records and tables.studies_in == 3 and tables.images_in == 4
    s = {r["study_id"]: r for r in tables.studies.iter_rows(named=True)}
    one = s["1"]
    assert [one[c] for c in SECTIONS] == ["Cough.", "None.", "The lungs are clear.", "No acute disease."]
    assert one["report_text"] == ("COMPARISON: None.\nINDICATION: Cough.\nFINDINGS: The lungs are clear.\n"
                                  "IMPRESSION: No acute disease.")
    # labels from <major> only: <automatic> and the unknown <minor> are read but not used
    got = (one["pleural_effusion"], one["cardiomegaly"], one["pneumothorax"], one["lung_opacity"])
    assert got == (1, -1, None, None)
    assert tables.notes["mesh_terms_not_used"] == 2 and tables.notes["mesh_terms"] == 4
    two = s["2"]
    assert (two["comparison"], two["indication"], two["impression"]) == (None, None, None)
    assert two["report_text"] == "FINDINGS: Heart normal." and two["extracted_section"] == "findings"
    assert s["3"]["no_finding"] == 1
    views = dict(tables.images.select("image_id", "view_raw").iter_rows())
    assert views == {"CXR1_1_IM-0001-1001": None, "CXR1_1_IM-0001-2001": "LATERAL",
                     "CXR1_1_IM-0001-3001": "PA", "CXR2_1_IM-0002-1001": None}
    assert tables.images.filter(pl.col("study_id") == "1").height == 3


def test_xml_faults_are_quarantined_and_counts_add_up(tmp_path):
    def latin(uid):
        return openi(uid, {"FINDINGS": "Heart size normal.", "IMPRESSION": "Clear."})

    files = {
        "1.xml": openi(1, images=[("CXR1_1_IM-0001-1001", ""), ("CXR1_1_IM-0001-2001", "")]),
        "2.xml": openi(2, images=[("CXR2_1_IM-0002-1001", "")])[:-20],  # cut short
        "3.xml": openi(3, {"INDICATION": "Pain.", "FINDINGS": " ", "IMPRESSION": None},
                       images=[("CXR3_1_IM-0003-1001", "")]),
        "4.xml": openi(4, images=[("../../../outside", "")]),
        "5.xml": openi(1, images=[("CXR1_1_IM-0001-1001", "")]),  # a second copy of CXR1
        "6.xml": latin(6).replace(b"normal", b"norm\xe1l"),
        "7.xml": latin(7).replace(b'"utf-8"', b'"ISO-8859-1"').replace(b"normal", b"norm\xe1l"),
        "8.xml": openi(8, images=[]),
        "9.xml": openi(9, uid_attr="PT9"),
    }
    pngs = ["CXR1_1_IM-0001-1001", "CXR3_1_IM-0003-1001", "CXR9_1_IM-0009-1001"]
    root = write_openi(tmp_path / "iu", files, pngs=pngs)
    tables, q = read(OpenIXml(), root)
    assert codes(q, "study") == [
        ("bad_row", "ecgen-radiology/9.xml"), ("duplicate_study", "1"), ("empty_report", "3"),
        ("malformed_xml", "ecgen-radiology/2.xml"), ("not_utf8", "ecgen-radiology/6.xml"),
    ]
    assert tables.studies_in == 9
    assert codes(q, "image") == [
        ("duplicate_study", "CXR1_1_IM-0001-1001"), ("missing_image", "CXR1_1_IM-0001-2001"),
        ("path_escape", "../../../outside"), ("unlisted_image", "CXR9_1_IM-0009-1001"),
    ]
    dup = next(r for r in q.records if r.kind == "study" and r.code == "duplicate_study")
    assert "1.xml" in dup.message and "5.xml" in dup.message
    assert "offset" in next(r.message for r in q.records if r.code == "not_utf8")
    s = {r["study_id"]: r for r in tables.studies.iter_rows(named=True)}
    assert sorted(s) == ["1", "4", "7", "8"] and s["7"]["findings"] == "Heart size norm\u00e1l."
    result = ingest.run(root, tmp_path / "run", cfg())  # raises if in != out + quarantined
    assert result.format == "iu-xray-xml"
    assert sorted(result.studies["study_id"]) == ["1"]
    assert result.quarantine.by_code("study")["no_images"] == 3  # 4 (refused image), 7 and 8 (none listed)


def test_xml_image_folder_alternatives(tmp_path):
    files = {"1.xml": openi(1, images=[("CXR1_1_IM-0001-1001", "")])}
    for folder in ("images", None):
        root = write_openi(tmp_path / str(folder), files, pngs=["CXR1_1_IM-0001-1001"], folder=folder)
        tables, q = read(OpenIXml(), root)
        assert not q.records and tables.images["source_path"][0].endswith("CXR1_1_IM-0001-1001.png")
    root = write_openi(tmp_path / "none", files, pngs=[], folder="NLMCXR_png")
    with pytest.raises(SourceLayoutError, match="no folder of PNGs") as err:
        read(OpenIXml(), root)
    assert "NLMCXR_png/" in err.value.hint


def test_xml_limit_takes_the_first_files_in_numeric_order(tmp_path):
    files = {f"{n}.xml": openi(n, images=[(f"CXR{n}_1_IM-{n:04d}-1001", "")]) for n in range(1, 13)}
    root = write_openi(tmp_path / "iu", files, pngs=[f"CXR{n}_1_IM-{n:04d}-1001" for n in range(1, 13)])
    tables, q = read(OpenIXml(), root, **{"ingest.limit": 3})
    assert sorted(tables.studies["study_id"]) == ["1", "2", "3"]
    assert tables.studies_in == 3 and tables.images.height == 3 and not q.records


def test_demo_open_i_folder_reads_cleanly(tmp_path):
    result = ingest.run(REPO / "examples" / "demo" / "iu-xray", tmp_path / "run", cfg())
    assert result.format == "iu-xray-xml"
    assert [(r.code, r.key) for r in result.quarantine.records] == [("no_images", "9005")]
    assert result.studies.height == 9 and result.images.height == 18


# -- detection and ids ---------------------------------------------------------------------------------------


def test_each_layout_is_detected_and_nothing_else(tmp_path, kaggle_csvs):
    xml_root = write_openi(tmp_path / "xml", {"1.xml": openi(1)})
    assert ingest.detect_format(xml_root).name == "iu-xray-xml"
    assert ingest.detect_format(kaggle_csvs).name == "iu-xray-csv"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    with pytest.raises(SourceLayoutError) as err:
        ingest.detect_format(tmp_path / "other")
    for name in ("iu-xray-xml", "iu-xray-csv", "r2gen-iu", "r2gen-mimic"):
        assert name in str(err.value)


def test_ids_and_captions():
    assert study_id_of("CXR0012") == study_id_of(" 12 ") == "12" and study_id_of("12a") is None
    # Open-i names this image CXR5_IM-2117-1003002; uid 1's are CXR1_1_IM-… there, which the name cannot show
    assert kaggle_image_id("5_IM-2117-1003002.dcm.png") == "CXR5_IM-2117-1003002"
    assert kaggle_image_id("1_IM-0001-4001.dcm.png") == "CXR1_IM-0001-4001"
    assert caption_view("Xray Chest PA and Lateral") is None
    assert caption_view("Frontal view") == "FRONTAL" and caption_view("bilateral effusions") is None

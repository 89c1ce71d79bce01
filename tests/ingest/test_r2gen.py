"""R2Gen annotation.json readers (IU-Xray and MIMIC-CXR flavours) on folders in R2Gen's layout, made here."""

import builtins
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from datakit import ingest
from datakit.config import load_config
from datakit.errors import MissingColumnError, SourceLayoutError
from datakit.ingest.base import ReadContext, get_format
from datakit.ingest.r2gen import resolve_inside
from datakit.rundir import Quarantine
from datakit.tables import LABEL_COLUMNS


def cfg(**over):
    return load_config(overrides={"ingest.images.convert": False, **over})


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (16, 16), 100).save(buf, format="PNG")
    return buf.getvalue()


PNG = png()


def read(name, root, **over):
    q = Quarantine("ingest")
    return get_format(name).read(ReadContext(Path(root), cfg(**over).ingest, q)), q


def codes(q, kind=None):
    return sorted((r.code, r.key) for r in q.records if kind is None or r.kind == kind)


def write(root, annotation, images=()):
    root.mkdir(parents=True, exist_ok=True)
    text = annotation if isinstance(annotation, (str, bytes)) else json.dumps(annotation)
    (root / "annotation.json").write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    for rel in images:
        path = root / "images" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PNG)
    (root / "images").mkdir(exist_ok=True)
    return root


def iu_entry(study, split, report="The heart is normal. The lungs are clear.", n_images=2):
    ident = f"CXR{study}_IM-{study:04d}"
    return {"id": ident, "report": report, "image_path": [f"{ident}/{k}.png" for k in range(n_images)],
            "split": split}


def iu_images(*studies, n=2):
    return [f"CXR{s}_IM-{s:04d}/{k}.png" for s in studies for k in range(n)]


# -- r2gen-iu ------------------------------------------------------------------------------------------------


def test_iu_studies_images_and_splits(tmp_path):
    ann = {"train": [iu_entry(2384, "train"), iu_entry(12, "train")], "val": [iu_entry(7, "val")],
           "test": [iu_entry(3000, "test", report="  Small left effusion.  ")]}
    root = write(tmp_path / "iu", ann, iu_images(2384, 12, 7, 3000))
    result = ingest.run(root, tmp_path / "run", cfg())
    assert result.format == "r2gen-iu"
    assert result.counts == {"study_in": 4, "study_out": 4, "study_quarantined": 0,
                             "image_in": 8, "image_out": 8, "image_quarantined": 0}
    s = {r["study_id"]: r for r in result.studies.iter_rows(named=True)}
    splits = {k: v["split"] for k, v in s.items()}
    assert splits == {"2384": "train", "12": "train", "7": "val", "3000": "test"}
    assert set(result.studies["split_source"]) == {"official"}
    row = s["3000"]
    assert row["subject_id"] == "3000" and row["dataset"] == "iu-xray" and row["source_format"] == "r2gen-iu"
    assert row["findings"] == row["report_text"] == "Small left effusion."
    assert row["impression"] is None and row["report_path"].endswith("annotation.json")
    assert all(row[c] is None for c in LABEL_COLUMNS) and row["label_source"] is None
    ids = set(result.images["image_id"])
    assert {"CXR2384_IM-2384_0", "CXR2384_IM-2384_1"} <= ids
    assert set(result.images["view"]) == {"other"}  # R2Gen does not record views


def test_iu_path_escapes_are_refused_and_never_read(tmp_path, monkeypatch):
    outside = tmp_path / "secret.png"
    outside.write_bytes(PNG)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "0.png").write_bytes(PNG)
    entry = iu_entry(5, "train")
    entry["image_path"] = ["../../secret.png", str(outside), "CXR5_IM-0005/0.png", "CXR5_IM-0005/link/0.png",
                           "CXR5_IM-0005/../../annotation.json"]
    root = write(tmp_path / "iu", {"train": [entry]}, ["CXR5_IM-0005/0.png"])
    os.symlink(tmp_path / "elsewhere", root / "images" / "CXR5_IM-0005" / "link")
    touched = []
    real_open = builtins.open

    def spy_open(file, *args, **kwargs):
        touched.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    result = ingest.run(root, tmp_path / "run", load_config())  # with image conversion: files are opened
    assert result.images["image_id"].to_list() == ["CXR5_IM-0005_0"]
    escapes = [r for r in result.quarantine.records if r.code == "path_escape"]
    assert len(escapes) == 4 and all("refused and not read" in r.message for r in escapes)
    assert not [t for t in touched if "secret" in t or "elsewhere" in t]
    assert any(t.endswith("CXR5_IM-0005/0.png") for t in touched)  # the good image was converted


def test_resolve_inside(tmp_path):
    base = tmp_path / "images"
    base.mkdir()
    assert resolve_inside(base, "a/b.png") == base / "a" / "b.png"
    assert resolve_inside(base, "a/../b.png") == base / "b.png"
    for bad in ("", "../x.png", "a/../../x.png", "/etc/passwd", "C:\\x.png", "..\\x.png", "."):
        assert resolve_inside(base, bad) is None, bad


def test_iu_faults_are_quarantined(tmp_path):
    dup = iu_entry(12, "test", report="Another copy.")
    wrong_split = iu_entry(40, "val")
    ann = {
        "train": [iu_entry(12, "train"), iu_entry(13, "train", report="  "), {"id": "XR9", "report": "x",
                  "image_path": []}, ["not", "an", "object"], wrong_split],
        "test": [dup, iu_entry(14, "test")],
    }
    images = iu_images(12, 13, 40) + ["CXR14_IM-0014/0.png", "CXR99_IM-0099/0.png", "CXR12_IM-0012/2.png"]
    root = write(tmp_path / "iu", ann, images)
    tables, q = read("r2gen-iu", root)
    assert codes(q, "study") == [("bad_row", "CXR40_IM-0040"), ("bad_row", "XR9"),
                                 ("bad_row", "annotation.json train[3]"), ("duplicate_study", "12"),
                                 ("empty_report", "13")]
    assert codes(q, "image") == [
        ("duplicate_study", "CXR12_IM-0012_0"), ("duplicate_study", "CXR12_IM-0012_1"),
        ("missing_image", "CXR14_IM-0014_1"), ("unlisted_image", "CXR12_IM-0012_2"),
        ("unlisted_image", "CXR99_IM-0099_0"),  # CXR40's files are named by its set-aside entry: not unlisted
    ]
    message = {r.code: r.message for r in q.records if r.kind == "study"}
    assert "train[0]" in message["duplicate_study"] and "test[0]" in message["duplicate_study"]
    wrong = next(r.message for r in q.records if r.key == "CXR40_IM-0040")
    assert "says split 'val' but sits in the 'train' list" in wrong
    assert sorted(tables.studies["study_id"]) == ["12", "14"]
    assert tables.studies_in == 7
    assert tables.images_in == tables.images.height + q.count("image")


def test_iu_limit_reads_the_first_entries_in_file_order(tmp_path):
    ann = {"train": [iu_entry(30, "train"), iu_entry(4, "train")], "test": [iu_entry(1, "test")]}
    root = write(tmp_path / "iu", ann, iu_images(30, 4, 1))
    tables, q = read("r2gen-iu", root, **{"ingest.limit": 2})
    assert tables.studies["study_id"].to_list() == ["30", "4"] and tables.studies_in == 2
    assert tables.images.height == 4 and tables.images_in == 4 and not q.records


# -- r2gen-mimic ---------------------------------------------------------------------------------------------

SUBJECT, STUDY = 10000032, 50414267


def dicom(n):
    return f"{n:08x}-bde0afdd-112c0b34-7bc16630-4e384014"


def mimic_entry(n, study=STUDY, subject=SUBJECT, split="train", report="The lungs are clear."):
    path = f"p{str(subject)[:2]}/p{subject}/s{study}/{dicom(n)}.jpg"
    return {"id": dicom(n), "study_id": study, "subject_id": subject, "report": report, "image_path": [path],
            "split": split}


def test_mimic_entries_are_grouped_into_studies(tmp_path):
    ann = {
        "train": [mimic_entry(1), mimic_entry(2, study=51000000, subject=10000040), mimic_entry(3)],
        "val": [mimic_entry(4, study=52000000, subject=10000050, split="val")],
        "test": [],
    }
    entries = [e for items in ann.values() for e in items]
    root = write(tmp_path / "mimic", ann, [e["image_path"][0] for e in entries])
    result = ingest.run(root, tmp_path / "run", cfg())
    assert result.format == "r2gen-mimic"
    assert result.counts["study_out"] == 3 and result.counts["image_out"] == 4
    s = {r["study_id"]: r for r in result.studies.iter_rows(named=True)}
    row = s[str(STUDY)]
    assert row["subject_id"] == str(SUBJECT) and row["n_images"] == 2 and row["dataset"] == "mimic-cxr"
    assert row["findings"] == "The lungs are clear." and row["label_source"] is None
    assert s["52000000"]["split"] == "val"
    images = result.images.filter(result.images["study_id"] == str(STUDY))
    assert sorted(images["image_id"]) == [dicom(1), dicom(3)]


def test_mimic_faults_are_quarantined(tmp_path):
    ann = {
        "train": [
            mimic_entry(1), mimic_entry(2),
            mimic_entry(3, study=53000000, report="Effusion."),
            mimic_entry(4, study=53000000, report="No effusion."),
            mimic_entry(5, study=54000000), mimic_entry(5, study=54000000),
            mimic_entry(6, study=55000000), {"id": "x", "study_id": "s5", "subject_id": 1, "report": "r",
                                             "image_path": ["a.jpg"]},
        ],
        "test": [mimic_entry(7, study=56000000, subject=10000099, split="test"),
                 mimic_entry(8, split="test")],  # study 50414267 again, in another split
    }
    entries = [e for items in ann.values() for e in items if e.get("id") not in (dicom(6), "x")]
    root = write(tmp_path / "mimic", ann, [e["image_path"][0] for e in entries])
    tables, q = read("r2gen-mimic", root)
    assert codes(q, "study") == [("conflicting_entries", "50414267"), ("conflicting_entries", "53000000")]
    conflicts = {r.key: r.message for r in q.records if r.code == "conflicting_entries"}
    assert "disagree on split" in conflicts["50414267"] and "disagree on report" in conflicts["53000000"]
    assert codes(q, "image") == [("bad_row", "x"), ("duplicate_image", dicom(5)), ("missing_image", dicom(6))]
    assert sorted(tables.studies["study_id"]) == ["54000000", "55000000", "56000000"]
    assert tables.studies_in == 5
    # the conflicting studies' images are returned: the pipeline sets them aside with their study
    result = ingest.run(root, tmp_path / "run", cfg())
    assert result.quarantine.by_code("image")["study_quarantined"] == 5
    assert result.quarantine.by_code("study")["no_images"] == 1  # 55000000: its only image is missing


def test_mimic_limit_keeps_every_entry_of_the_first_studies(tmp_path):
    ann = {"train": [mimic_entry(1), mimic_entry(2, study=51000000), mimic_entry(3)]}
    root = write(tmp_path / "mimic", ann, [e["image_path"][0] for e in ann["train"]])
    tables, q = read("r2gen-mimic", root, **{"ingest.limit": 1})
    assert tables.studies["study_id"].to_list() == [str(STUDY)] and tables.images.height == 2
    assert tables.studies_in == 1 and tables.images_in == 2 and not q.records


# -- detection and structure ---------------------------------------------------------------------------------


def test_each_flavour_is_detected(tmp_path):
    iu = write(tmp_path / "iu", {"train": [iu_entry(1, "train")]})
    mimic = write(tmp_path / "mimic", {"test": [], "train": [mimic_entry(1)]})
    assert ingest.detect_format(iu).name == "r2gen-iu"
    assert ingest.detect_format(mimic).name == "r2gen-mimic"
    assert not get_format("r2gen-iu").detect(mimic) and not get_format("r2gen-mimic").detect(iu)
    other = write(tmp_path / "other", {"train": [{"question": "q", "answer": "a"}]})
    with pytest.raises(SourceLayoutError, match="does not look like any dataset"):
        ingest.detect_format(other)


def test_structural_problems_raise(tmp_path):
    root = write(tmp_path / "a", [iu_entry(1, "train")])
    with pytest.raises(SourceLayoutError, match="top level is a JSON list"):
        read("r2gen-iu", root)
    entry = iu_entry(1, "train")
    del entry["report"]
    root = write(tmp_path / "b", {"train": [entry]})
    with pytest.raises(MissingColumnError) as err:
        read("r2gen-iu", root)
    assert "annotation.json has no column 'report'" in str(err.value)
    root = write(tmp_path / "c", {"train": [mimic_entry(1)], "extra": []})
    with pytest.raises(SourceLayoutError, match="top-level key 'extra'"):
        read("r2gen-mimic", root)
    root = write(tmp_path / "d", '{"train": [')
    with pytest.raises(SourceLayoutError, match="not valid JSON"):
        read("r2gen-iu", root)


def test_bytes_that_are_not_utf8_set_one_entry_aside(tmp_path):
    ann = json.dumps({"train": [iu_entry(1, "train", report="Heart normal."), iu_entry(2, "train")]},
                     ensure_ascii=False).replace("Heart normal.", "Heart norm\u00e1l.")
    data = ann.encode("utf-8").replace("norm\u00e1l".encode("utf-8"), b"norm\xe1l")
    root = write(tmp_path / "iu", data, iu_images(1, 2))
    tables, q = read("r2gen-iu", root)
    assert codes(q, "study") == [("not_utf8", "CXR1_IM-0001")]
    assert "not UTF-8" in q.records[0].message and tables.studies["study_id"].to_list() == ["2"]

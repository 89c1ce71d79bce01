"""MIMIC-CXR / MIMIC-CXR-JPG reader and the ingest pipeline around it, on trees in the real layout."""

import json

import polars as pl
import pytest

from datakit import ingest
from datakit.config import load_config
from datakit.errors import MissingColumnError, SourceLayoutError, SplitLeakError
from datakit.tables import LABEL_COLUMNS
from tests.ingest.mimic_fixture import Study, make_tree, read_csv_rows, report, write_csv


def cfg(**over):
    return load_config(overrides={"ingest.images.convert": False, **over})


def quarantine_rows(run):
    return [json.loads(line) for line in (run / "quarantine.jsonl").read_text().splitlines()]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "mimic"
    studies = [
        Study("10000032", "50414267", labels={"Pleural Effusion": "1.0", "Cardiomegaly": "0.0", "Edema": "-1.0"}),
        Study("10000032", "53189527", split="train", views=["AP"]),
        Study("10000764", "57375967", split="validate", labels={"No Finding": "1.0"}),
        Study("11000011", "52000001", split="test", views=["PA", "LATERAL", "LL"]),
    ]
    ids = make_tree(root, studies)
    return root, ids


def test_reads_studies_images_labels_and_splits(tree, tmp_path):
    root, ids = tree
    result = ingest.run(root, tmp_path / "run", cfg())
    assert result.format == "mimic-cxr-jpg"
    s = result.studies
    assert s.height == 4 and result.images.height == 8
    assert result.counts == {"study_in": 4, "study_out": 4, "study_quarantined": 0,
                             "image_in": 8, "image_out": 8, "image_quarantined": 0}
    row = s.filter(pl.col("study_id") == "50414267").row(0, named=True)
    assert (row["pleural_effusion"], row["cardiomegaly"], row["edema"], row["pneumonia"]) == (1, 0, -1, None)
    assert row["label_source"] == "chexpert"
    assert row["findings"] == "The lungs are clear."
    assert row["impression"] == row["extracted_text"] == "No acute process."
    assert row["indication"] == "___M with cough."
    assert row["n_images"] == 2
    # "validate" becomes "val"; splits come from the official file
    splits = dict(s.select("study_id", "split").iter_rows())
    assert splits == {"50414267": "train", "53189527": "train", "57375967": "val", "52000001": "test"}
    assert set(s["split_source"]) == {"official"}
    views = dict(result.images.select("image_id", "view").iter_rows())
    assert views[ids["52000001"][2]] == "LL" and views[ids["53189527"][0]] == "AP"
    # tables and manifest are written
    run = tmp_path / "run"
    assert pl.read_parquet(run / "studies.parquet").height == 4
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["ingest"]["counts"]["study_out"] == 4
    assert "[ingest]" in (run / "datakit.toml").read_text()


def test_null_labels_are_never_folded_into_zero(tree, tmp_path):
    root, _ = tree
    s = ingest.run(root, tmp_path / "run", cfg()).studies
    row = s.filter(pl.col("study_id") == "53189527").row(0, named=True)
    assert all(row[c] is None for c in LABEL_COLUMNS)
    assert row["label_source"] == "chexpert"  # the study has a row, with every cell blank


def test_negbio_labels_when_asked(tree, tmp_path):
    root, _ = tree
    header, rows = read_csv_rows(root / "mimic-cxr-2.0.0-chexpert.csv.gz")
    rows = [r[:2] + ["1.0"] * 14 if r[1] == "50414267" else r for r in rows]
    write_csv(root, "mimic-cxr-2.0.0-negbio.csv", header, rows, gz=False)
    s = ingest.run(root, tmp_path / "run", cfg(**{"ingest.label_source": "negbio"})).studies
    row = s.filter(pl.col("study_id") == "50414267").row(0, named=True)
    assert row["label_source"] == "negbio" and row["atelectasis"] == 1


def test_bad_inputs_are_quarantined_and_counts_add_up(tmp_path):
    root = tmp_path / "mimic"
    studies = [
        Study("10000001", "50000001"),  # fine
        Study("10000002", "50000002", text=None),  # missing report
        Study("10000003", "50000003", text=report(findings=None, impression=None).replace(" ", " ", 1)),
        Study("10000004", "50000004", text=" FINAL REPORT\n FINDINGS:  \n \n IMPRESSION:  \n"),  # empty sections
        Study("10000005", "50000005", text=b" FINAL REPORT\n IMPRESSION:  caf\xe9 \xff\n"),  # not UTF-8
        Study("10000006", "50000006", text=""),  # empty file
        Study("10000007", "50000007"),  # one image missing on disk
        Study("10000008", "50000008"),  # one extra image on disk without a metadata row
        Study("10000009", "50000009", views=[]),  # report but no image at all
    ]
    ids = make_tree(root, studies)
    (root / "files/p10/p10000007/s50000007" / f"{ids['50000007'][0]}.jpg").unlink()
    stray = root / "files/p10/p10000008/s50000008/ffffffff-ffffffff-ffffffff-ffffffff-ffffffff.jpg"
    stray.write_bytes((root / "files/p10/p10000008/s50000008" / f"{ids['50000008'][0]}.jpg").read_bytes())

    result = ingest.run(root, tmp_path / "run", cfg())
    rows = quarantine_rows(tmp_path / "run")
    codes = {(r["kind"], r["key"]): r["code"] for r in rows}
    assert codes[("study", "50000002")] == "missing_report"
    assert codes[("study", "50000003")] == "no_usable_section"
    assert codes[("study", "50000004")] == "no_usable_section"
    assert codes[("study", "50000005")] == "not_utf8"
    assert codes[("study", "50000006")] == "empty_report"
    assert codes[("image", ids["50000007"][0])] == "missing_image"
    assert codes[("image", "ffffffff-ffffffff-ffffffff-ffffffff-ffffffff")] == "unlisted_image"
    assert codes[("study", "50000009")] == "no_images"
    for sid in ("50000002", "50000003", "50000005"):
        for did in ids[sid]:
            assert codes[("image", did)] == "study_quarantined"
    assert "offset" in next(r["message"] for r in rows if r["code"] == "not_utf8")
    assert "mimic-cxr-reports.zip" in next(r["message"] for r in rows if r["code"] == "missing_report")
    kept = set(result.studies["study_id"])
    assert kept == {"50000001", "50000007", "50000008"}
    c = result.counts
    assert c["study_in"] == 9 == c["study_out"] + c["study_quarantined"]
    assert c["image_in"] == c["image_out"] + c["image_quarantined"]
    assert c["image_in"] == 2 * 8 + 1  # 8 studies with two listed images, plus the stray file
    n = dict(result.studies.select("study_id", "n_images").iter_rows())
    assert n == {"50000001": 2, "50000007": 1, "50000008": 2}


def test_study_under_two_patients_is_a_duplicate(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, [Study("10000001", "50000001"), Study("10000002", "50000002")])
    # the same study folder and report again under another patient (a misplaced copy)
    src = root / "files/p10/p10000001"
    dst = root / "files/p10/p10000009"
    dst.mkdir()
    (dst / "s50000001.txt").write_text(report())
    (dst / "s50000001").mkdir()
    for f in (src / "s50000001").iterdir():
        (dst / "s50000001" / f.name).write_bytes(f.read_bytes())
    result = ingest.run(root, tmp_path / "run", cfg())
    rows = quarantine_rows(tmp_path / "run")
    assert any(r["code"] == "duplicate_study" and r["kind"] == "study" and r["key"] == "50000001" for r in rows)
    assert result.studies.filter(pl.col("study_id") == "50000001")["subject_id"].to_list() == ["10000001"]
    assert result.counts["study_in"] == 3 and result.counts["study_out"] == 2


def test_missing_required_column_names_file_and_column(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, [Study("10000001", "50000001")])
    header, rows = read_csv_rows(root / "mimic-cxr-2.0.0-metadata.csv.gz")
    i = header.index("ViewPosition")
    write_csv(root, "mimic-cxr-2.0.0-metadata.csv", header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in rows])
    with pytest.raises(MissingColumnError) as err:
        ingest.run(root, tmp_path / "run", cfg())
    assert "mimic-cxr-2.0.0-metadata.csv.gz" in str(err.value) and "'ViewPosition'" in str(err.value)


def test_plain_csv_files_work_too(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, [Study("10000001", "50000001", labels={"Edema": "1.0"})], gz=False)
    s = ingest.run(root, tmp_path / "run", cfg()).studies
    assert s["edema"].to_list() == [1]


def test_split_leak_is_refused(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, [Study("10000001", "50000001", split="train"), Study("10000001", "50000002", split="test")])
    with pytest.raises(SplitLeakError, match="10000001"):
        ingest.run(root, tmp_path / "run", cfg())
    result = ingest.run(root, tmp_path / "run", cfg(**{"ingest.split.strategy": "patient"}))
    assert result.studies["split"].n_unique() == 1
    assert set(result.studies["split_source"]) == {"patient_hash"}


def test_patient_split_is_deterministic_and_patient_level(tmp_path):
    root = tmp_path / "mimic"
    studies = [Study(f"1{p:07d}", f"5{p:03d}{k:04d}", views=["PA"]) for p in range(60) for k in range(2)]
    make_tree(root, studies)
    a = ingest.run(root, tmp_path / "a", cfg(**{"ingest.split.strategy": "patient"})).studies
    b = ingest.run(root, tmp_path / "b", cfg(**{"ingest.split.strategy": "patient"})).studies
    assert a.select("study_id", "split").equals(b.select("study_id", "split"))
    assert a.group_by("subject_id").agg(pl.col("split").n_unique()).get_column("split").max() == 1
    assert set(a["split"]) == {"train", "val", "test"}


def test_limit_reads_the_first_studies(tree, tmp_path):
    root, _ = tree
    result = ingest.run(root, tmp_path / "run", cfg(**{"ingest.limit": 2}))
    assert result.studies["study_id"].to_list() == ["50414267", "53189527"]
    assert result.counts["study_in"] == 2 and result.counts["image_in"] == 3


def test_dicom_tree_is_detected_as_mimic_cxr(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, [Study("10000001", "50000001")], ext="dcm")
    fmt = ingest.detect_format(root)
    assert fmt.name == "mimic-cxr"


def test_unrelated_folder_lists_what_was_looked_for(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hello")
    with pytest.raises(SourceLayoutError) as err:
        ingest.detect_format(tmp_path / "stuff")
    msg = str(err.value)
    assert "does not look like any dataset" in msg
    assert "mimic-cxr-jpg" in msg and "mimic-cxr-2.0.0-*.csv" in msg


def test_rerun_replaces_the_stage_quarantine(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, [Study("10000001", "50000001"), Study("10000002", "50000002", text=None)])
    ingest.run(root, tmp_path / "run", cfg())
    ingest.run(root, tmp_path / "run", cfg())
    rows = quarantine_rows(tmp_path / "run")
    assert sum(r["code"] == "missing_report" for r in rows) == 1


def test_a_bad_split_value_sets_that_study_aside_and_the_rest_goes_on(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, [Study("10000001", "50000001"), Study("10000002", "50000002", split="valid")])
    result = ingest.run(root, tmp_path / "run", cfg())
    rows = quarantine_rows(tmp_path / "run")
    bad = [r for r in rows if r["code"] == "bad_split"]
    assert [r["key"] for r in bad] == ["50000002"] and "'valid'" in bad[0]["message"]
    assert result.studies["study_id"].to_list() == ["50000001"]
    assert result.counts["study_in"] == 2 == result.counts["study_out"] + result.counts["study_quarantined"]


def test_a_duplicate_label_row_is_reported_and_the_first_is_used(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, [Study("10000001", "50000001", labels={"Edema": "1.0"})])
    header, rows = read_csv_rows(root / "mimic-cxr-2.0.0-chexpert.csv.gz")
    dup = rows[0][:2] + ["0.0"] * 14
    write_csv(root, "mimic-cxr-2.0.0-chexpert.csv", header, rows + [dup])
    result = ingest.run(root, tmp_path / "run", cfg())
    assert result.studies["edema"].to_list() == [1]
    q = quarantine_rows(tmp_path / "run")
    assert [(r["kind"], r["code"]) for r in q] == [("label_row", "duplicate_label_row")]

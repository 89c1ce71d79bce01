"""Ingest refuses what would mislead: reports without images, nothing kept, another source, a --limit over a run."""

from __future__ import annotations

import json

import pytest

from datakit import ingest
from datakit.config import load_config
from datakit.errors import IngestError, RunDirError, SourceLayoutError
from tests.ingest.mimic_fixture import Study, make_tree


def cfg(**over):
    return load_config(overrides={"ingest.images.max_size": 32, "ingest.images.workers": 1, **over})


def studies(n: int) -> list[Study]:
    return [Study(f"1{i:07d}", f"5{i:07d}") for i in range(n)]


def drop_images(root, keep: int = 0) -> None:
    files = sorted(root.glob("files/p*/p*/s*/*.jpg"))
    for f in files[keep:]:
        f.unlink()


def test_reports_without_any_image_file_is_one_clear_error(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, studies(3))
    drop_images(root)
    with pytest.raises(SourceLayoutError) as err:
        ingest.run(root, tmp_path / "run", cfg())
    msg = str(err.value)
    assert "3 studies with reports but not one image file" in msg
    assert "*.jpg" in msg and str(root / "files") in msg and "lists 6 images" in msg
    assert "separate downloads" in err.value.hint
    assert not (tmp_path / "run").exists()  # a failed ingest leaves no empty run folder


def test_reports_with_some_images_quarantine_the_missing_ones(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, studies(3))
    drop_images(root, keep=2)  # the first study keeps both its images
    result = ingest.run(root, tmp_path / "run", cfg())
    assert result.studies["study_id"].to_list() == ["50000000"]
    codes = result.quarantine.by_code()
    assert codes["missing_image"] == 4 and codes["no_images"] == 2


def test_an_ingest_that_keeps_nothing_fails_with_the_main_reason(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, studies(3))
    for f in root.glob("files/p*/p*/s*/*.jpg"):
        f.write_text("<html><body>403 Forbidden</body></html>")
    with pytest.raises(IngestError) as err:
        ingest.run(root, tmp_path / "run", cfg())
    msg = str(err.value)
    assert "kept no study" in msg and "3 studies read" in msg
    assert "no_images (3)" in msg and "corrupt_image (6)" in msg
    assert "HTML or XML page" in msg  # the example says what the file holds
    assert not (tmp_path / "run").exists()


def test_an_existing_run_is_left_as_it_was_when_ingest_keeps_nothing(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    make_tree(good, studies(2))
    make_tree(bad, studies(2))
    drop_images(bad)
    run = tmp_path / "run"
    ingest.run(good, run, cfg())
    before = (run / "studies.parquet").read_bytes()
    with pytest.raises(SourceLayoutError):
        ingest.run(bad, run, cfg(), replace=True)
    assert (run / "studies.parquet").read_bytes() == before


def test_image_errors_say_which_file_and_what_is_wrong(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, studies(2))
    first = sorted(root.glob("files/p*/p*/s*/*.jpg"))[0]
    first.write_bytes(b"")
    result = ingest.run(root, tmp_path / "run", cfg())
    rec = next(r for r in result.quarantine.records if r.code == "corrupt_image")
    assert str(first) in rec.message and "an empty file (0 bytes)" in rec.message
    assert "object at 0x" not in rec.message and "BytesIO" not in rec.message


def test_another_source_into_an_existing_run_is_refused_unless_replaced(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_tree(a, studies(2))
    make_tree(b, studies(3))
    run = tmp_path / "run"
    ingest.run(a, run, cfg())
    with pytest.raises(RunDirError) as err:
        ingest.run(b, run, cfg())
    assert str(a) in str(err.value) and str(b) in str(err.value) and "--replace" in err.value.hint
    assert ingest.run(b, run, cfg(), replace=True).studies.height == 3


def test_limit_over_a_fuller_run_is_refused_and_stale_pngs_are_removed(tmp_path):
    root = tmp_path / "mimic"
    make_tree(root, studies(4))
    run = tmp_path / "run"
    ingest.run(root, run, cfg())
    assert len(list((run / "images").glob("*.png"))) == 8
    with pytest.raises(RunDirError) as err:
        ingest.run(root, run, cfg(**{"ingest.limit": 1}))
    assert "replace the 4 studies" in str(err.value) and "-limit1" in err.value.hint
    result = ingest.run(root, run, cfg(**{"ingest.limit": 1}), replace=True)
    pngs = sorted(p.name for p in (run / "images").glob("*.png"))
    assert pngs == sorted(p.split("/")[-1] for p in result.images["converted_path"])
    assert len(pngs) == 2
    assert json.loads((run / "manifest.json").read_text())["stages"]["ingest"]["counts"]["study_out"] == 1

"""The source folder's identity (datakit.ingest.listing): what makes ingest skip or run again."""

from __future__ import annotations

import os

import pytest

from datakit.ingest.listing import source_listing


def _tree(root):
    """A MIMIC-shaped tree: CSVs at the top, files/pNN/pSUBJECT/sSTUDY/*.jpg and reports beside."""
    root.mkdir()
    (root / "a.csv").write_text("x\n")
    for p in ("p10", "p11", "p12"):
        for subj in range(3):
            study = root / "files" / p / f"{p}0{subj}" / f"s5{subj}"
            study.mkdir(parents=True)
            (study / "img1.jpg").write_bytes(b"\xff\xd8" + bytes(subj))
            (study.parent / f"s5{subj}.txt").write_text("FINDINGS: clear.")
    return root


@pytest.fixture
def tree(tmp_path):
    return _tree(tmp_path / "src")


def test_the_same_tree_gives_the_same_identity(tree):
    assert source_listing(tree) == source_listing(tree)


@pytest.mark.parametrize("change", ["edit", "add", "remove", "rename", "touch", "add_folder_file"])
def test_every_kind_of_change_changes_the_identity(tree, change):
    before = source_listing(tree)
    report = tree / "files" / "p11" / "p1101" / "s51.txt"
    if change == "edit":
        report.write_text("FINDINGS: small left effusion.")
    elif change == "add":
        (report.parent / "s59.txt").write_text("new")
    elif change == "remove":
        report.unlink()
    elif change == "rename":
        report.rename(report.with_name("s58.txt"))
    elif change == "touch":
        st = report.stat()
        os.utime(report, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    else:
        (tree / "files" / "p12" / "p1200" / "s50" / "deep").mkdir()
        (tree / "files" / "p12" / "p1200" / "s50" / "deep" / "x.jpg").write_bytes(b"1")
    assert source_listing(tree) != before


def test_an_empty_folder_and_a_flat_folder_have_identities(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "reports.csv").write_text("uid\n1\n")
    assert source_listing(empty) != source_listing(flat)


def test_moving_a_file_between_subtrees_changes_the_identity(tree):
    before = source_listing(tree)
    src = tree / "files" / "p10" / "p1000" / "s50" / "img1.jpg"
    src.rename(tree / "files" / "p11" / "p1100" / "s50" / "img1b.jpg")
    assert source_listing(tree) != before

"""Trace text as the evidence check reads it: sides, grades, reading in worker processes."""

from __future__ import annotations

import polars as pl
import pytest

from datakit.config import ValidateConfig
from datakit.knowledge.kb import load_configured
from datakit.validate.checks import mentions
from datakit.validate.context import Context


@pytest.fixture(scope="module")
def ctx() -> Context:
    empty = pl.DataFrame()
    return Context(empty, empty, empty, empty, load_configured(), None, ValidateConfig())


def _read(ctx: Context, text: str) -> list[dict]:
    return mentions.read(ctx, pl.Series([text])).drop("text").to_dicts()


def test_anatomic_sides_are_not_the_findings(ctx):
    got = _read(ctx, "Left-sided pacemaker with leads in the right atrium and right ventricle.")
    assert {(m["entry"], m["m_side"]) for m in got} == {("pacemaker", "left"), ("pacemaker", "none")}
    assert {m["loose_side"] for m in got} == {"none"}



def test_a_findings_own_anatomy_gives_its_side(ctx):
    # the hemidiaphragm is the finding here, so its side is the finding's; the atrium is not the pacemaker
    got = _read(ctx, "Elevated left hemidiaphragm. Right-sided pacemaker, lead in the right atrium.")
    assert {(m["entry"], m["m_side"]) for m in got} >= {("elevated_hemidiaphragm", "left"), ("pacemaker", "right")}


@pytest.mark.parametrize(
    ("text", "side", "loose"),
    [
        ("No right effusion; small left effusion.", "left", "none"),
        ("Right IJ line ends in the SVC; left effusion.", "left", "none"),
    ],
)
def test_sides(ctx, text, side, loose):
    got = [m for m in _read(ctx, text) if m["entry"] == "pleural_effusion" and m["m_status"] == "present"]
    assert [(m["m_side"], m["loose_side"]) for m in got] == [(side, loose)]


def test_two_sides_with_their_own_grades_are_two_findings(ctx):
    # each side keeps its own grade, so neither side is a loose word beside the other's finding
    got = _read(ctx, "Small right and moderate left pleural effusions.")
    got = [m for m in got if m["entry"] == "pleural_effusion" and m["m_status"] == "present"]
    assert [(m["m_side"], m["loose_side"]) for m in got] == [("right", "none"), ("left", "none")]


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("Small-to-moderate left pleural effusion.", [1, 2]),
        ("Mild to moderate cardiomegaly.", [1, 2]),
        ("Trace left effusion.", [0]),
        ("Massive right pleural effusion.", [3]),
        ("Left pleural effusion.", []),
    ],
)
def test_grades_are_steps_of_one_scale(ctx, text, levels):
    assert _read(ctx, text)[0]["levels"] == levels


def test_grade_level_maps_both_scales():
    assert [mentions.grade_level(w) for w in ("tiny", "small", "mild", "moderate", "large", "severe")] == [
        0,
        1,
        1,
        2,
        3,
        3,
    ]
    assert mentions.grade_level("loculated") is None and mentions.grade_level(None) is None


def test_many_texts_are_read_in_worker_processes_the_same_way(monkeypatch):
    texts = pl.Series(
        [f"Small {side} pleural effusion number {i}." for i in range(40) for side in ("left", "right")]
        + ["No pneumothorax.", None]
    )
    empty = pl.DataFrame()
    serial = Context(empty, empty, empty, empty, load_configured(), None, ValidateConfig(workers=1))
    pooled = Context(empty, empty, empty, empty, load_configured(), None, ValidateConfig(workers=2))
    monkeypatch.setattr(mentions, "PARALLEL_MIN_TEXTS", 10)
    monkeypatch.setattr(mentions, "CHUNK", 7)
    one = mentions.read(serial, texts).sort("text", "entry")
    two = mentions.read(pooled, texts).sort("text", "entry")
    assert one.height == 81 and one.equals(two)

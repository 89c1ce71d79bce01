"""The trace semantics the checks rest on: draft, corrections matched to it, final perception and
conclusions."""

from __future__ import annotations

import polars as pl

from datakit.config import ValidateConfig
from datakit.knowledge.kb import load_kb
from datakit.semantics import trace_dtype
from datakit.validate.context import Context
from tests.validate.builders import (
    EFFUSION_LABELS,
    NORMAL_LABELS,
    Corpus,
    effusion_trace,
    item,
    normal_trace,
    spoil,
    state,
)


def _ctx(*cases) -> Context:
    corpus = Corpus()
    for sid, trace, lab in cases:
        corpus.add(sid, trace, lab)
    t = corpus.tables()
    return Context(t["traces"], t["studies"], t["images"], t["hits"], load_kb(), None, ValidateConfig())


def _corr(kind, finding, before, after, note="The second look shows it clearly."):
    return {"kind": kind, "finding": finding, "before": before, "after": after, "note": note}


def _final(ctx: Context, sid: str) -> set[tuple]:
    f = ctx.final.filter(pl.col("study_id") == sid)
    return set(f.select("finding", "status", "laterality", "severity", "source").iter_rows())


def test_trace_dtype_follows_the_schema():
    dtype = trace_dtype()
    assert [f.name for f in dtype.fields] == ["perception", "reasoning", "reflection", "report"]
    item_fields = [f.name for f in dtype.fields[0].dtype.inner.fields]
    assert item_fields == ["region", "finding", "status", "laterality", "severity", "evidence"]


def test_no_corrections_final_is_the_draft_without_normal_items():
    ctx = _ctx(("a", effusion_trace(), EFFUSION_LABELS))
    assert _final(ctx, "a") == {
        ("pleural_effusion", "present", "left", "small", "draft"),
        ("cardiomegaly", "absent", "none", None, "draft"),
    }
    concl = dict(ctx.conclusions.select("finding", "status").iter_rows())
    assert concl == {"pleural_effusion": "present", "cardiomegaly": "absent"}


def test_missed_finding_is_added_and_replaces_its_absent_item():
    def fn(t):
        t["perception"][2] = item("pleura", "pleural_effusion", "absent", "No effusion.")
        t["reasoning"][0].update(status="absent")
        t["reflection"]["corrections"].append(
            _corr("missed", "pleural_effusion", state("absent"), state("present", "left", "small"))
        )

    ctx = _ctx(("a", spoil(effusion_trace(), fn), EFFUSION_LABELS))
    assert ctx.corrections["matched"].to_list() == [True]
    assert _final(ctx, "a") == {
        ("pleural_effusion", "present", "left", "small", "added"),
        ("cardiomegaly", "absent", "none", None, "draft"),
    }
    added = ctx.final.filter(pl.col("source") == "added").row(0, named=True)
    assert added["region"] == "pleura" and added["evidence"].startswith("The second look")
    assert dict(ctx.conclusions.select("finding", "status").iter_rows())["pleural_effusion"] == "present"


def test_missed_does_not_match_a_finding_the_draft_already_has():
    fn = lambda t: t["reflection"]["corrections"].append(  # noqa: E731
        _corr("missed", "pleural_effusion", state("absent"), state("present", "left", "small"))
    )
    ctx = _ctx(("a", spoil(effusion_trace(), fn), EFFUSION_LABELS))
    row = ctx.corrections.row(0, named=True)
    assert row["matched"] is False and row["draft_state"] == "present, left, small"


def test_hallucinated_laterality_and_severity_edit_the_matched_item():
    def fn(t):
        pleura = t["perception"][2]
        pleura.update(laterality="right", severity="moderate")
        t["perception"].append(
            item("bones_soft_tissue", "rib_fracture", "present", "A lucent line in a rib.", "left")
        )
        t["reflection"]["corrections"] += [
            _corr(
                "laterality",
                "pleural_effusion",
                state("present", "right", "moderate"),
                state("present", "left", "moderate"),
            ),
            _corr(
                "severity",
                "pleural_effusion",
                state("present", "left", "moderate"),
                state("present", "left", "small"),
            ),
            _corr("hallucinated", "rib_fracture", state("present", "left"), state("absent")),
        ]

    ctx = _ctx(("a", spoil(effusion_trace(), fn), EFFUSION_LABELS))
    # the severity correction's before is the state after the side fix, not the draft: it does not match
    assert ctx.corrections["matched"].to_list() == [True, False, True]
    assert _final(ctx, "a") == {
        ("pleural_effusion", "present", "left", "moderate", "corrected"),
        ("cardiomegaly", "absent", "none", None, "draft"),
        ("rib_fracture", "absent", "none", None, "corrected"),
    }
    concl = dict(ctx.conclusions.select("finding", "status").iter_rows())
    assert concl["rib_fracture"] == "absent"


def test_no_finding_correction_matches_the_drafts_conclusion():
    def fn(t):
        t["perception"][2] = item("pleura", "pneumothorax", "present", "A pleural line.", "right")
        t["reasoning"] = [
            {
                "observation": "A line",
                "inference": "Pneumothorax [K:pneumothorax].",
                "knowledge": ["pneumothorax"],
                "conclusion": "pneumothorax",
                "status": "present",
            }
        ]
        t["reflection"]["corrections"] += [
            _corr("hallucinated", "pneumothorax", state("present", "right"), state("absent")),
            _corr("other", "no_finding", state("absent"), state("present")),
        ]

    ctx = _ctx(
        ("a", spoil(normal_trace(), fn), NORMAL_LABELS),
        (
            "b",
            spoil(
                normal_trace(),
                lambda t: t["reflection"]["corrections"].append(
                    _corr("other", "no_finding", state("absent"), state("present"))
                ),
            ),
            NORMAL_LABELS,
        ),
    )
    matched = dict(ctx.corrections.select(pl.concat_str("study_id", "corr"), "matched").iter_rows())
    assert matched == {"a0": True, "a1": True, "b0": False}  # b's draft already concludes the study is normal
    concl = ctx.conclusions.filter(pl.col("study_id") == "a")
    assert dict(concl.select("finding", "status").iter_rows()) == {
        "pneumothorax": "absent",
        "no_finding": "present",
    }


def test_normal_conclusion_reads_as_no_finding_and_strongest_status_wins():
    def fn(t):
        t["reasoning"][0]["conclusion"] = "normal"
        t["reasoning"] += [
            {
                "observation": "x",
                "inference": "y [K:edema].",
                "knowledge": ["edema"],
                "conclusion": "edema",
                "status": "absent",
            },
            {
                "observation": "x",
                "inference": "y [K:edema].",
                "knowledge": ["edema"],
                "conclusion": "edema",
                "status": "uncertain",
            },
        ]

    ctx = _ctx(("a", spoil(normal_trace(), fn), NORMAL_LABELS))
    assert dict(ctx.draft_conclusions.select("finding", "status").iter_rows()) == {
        "no_finding": "present",
        "edema": "uncertain",
    }

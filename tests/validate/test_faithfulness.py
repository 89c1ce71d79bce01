"""The faithfulness check: corruptions of good traces rejected with their code; faithful traces pass clean."""

from __future__ import annotations

import polars as pl
import pytest

from datakit.config import ValidateConfig
from datakit.validate import validate
from datakit.validate.core import rejected
from datakit.validate.registry import BUILTIN
from tests.validate import bad_traces
from tests.validate.builders import Corpus, KeywordLabeler
from tests.validate.faith_traces import BAD, GOOD

ONLY = ValidateConfig(skip=[c for c in BUILTIN if c not in ("faithfulness", "judge")])


def _table(cases) -> pl.DataFrame:
    corpus = Corpus()
    for sid, trace, lab in cases:
        corpus.add(sid, trace, lab)
    t = corpus.tables()
    return validate(t["traces"], t["studies"], t["images"], t["hits"], labeler=KeywordLabeler(), config=ONLY)


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return _table([*GOOD, *[(sid, trace, lab) for sid, _, trace, lab in BAD]])


@pytest.mark.parametrize("study", [g[0] for g in GOOD])
def test_faithful_trace_passes_without_a_warning(table, study):
    row = table.filter(pl.col("study_id") == study).to_dicts()
    assert len(row) == 1 and row[0]["check"] == "faithfulness"
    assert row[0]["passed"], row[0]["message"]


@pytest.mark.parametrize(("study", "code"), [(b[0], b[1]) for b in BAD], ids=[b[0] for b in BAD])
def test_corruption_is_caught_with_its_code(table, study, code):
    row = table.filter(pl.col("study_id") == study).to_dicts()[0]
    assert not row["passed"]
    assert row["code"] == code, row["message"]
    out = set(rejected(table)["study_id"])
    assert (study in out) == (code != "unsupported_negative")


def test_messages_quote_the_report():
    table = _table([(sid, trace, lab) for sid, code, trace, lab in BAD if sid in ("fb_side", "fb_no_devices")])
    msgs = dict(table.select("study_id", "message").iter_rows())
    assert "the report gives left" in msgs["fb_side"] and "small left pleural effusion" in msgs["fb_side"].lower()
    assert "sternotomy wires" in msgs["fb_no_devices"]


def test_the_existing_good_corpus_is_not_rejected():
    """The good traces the other checks are tested on state nothing their reports contradict (their stock
    normal phrases are pertinent negatives the reports never made: warnings, not errors)."""
    cases = [
        (sid, kw["trace"] if "report" not in kw else {**kw["trace"], "report": kw["report"]}, kw["lab"])
        for sid, kw in bad_traces.GOOD
    ]
    table = _table(cases)
    bad = table.filter(~pl.col("passed") & (pl.col("severity") == "error"))
    assert bad.height == 0, bad.to_dicts()
    assert set(table.filter(~pl.col("passed"))["code"]) <= {"unsupported_negative"}


def test_a_correction_is_judged_in_its_final_state():
    """A draft with the wrong side, corrected by the reflection, is judged by the corrected side."""
    from tests.validate.builders import spoil, state
    from tests.validate.faith_traces import EFFUSION_LABELS, effusion

    def draft_right(t):
        next(i for i in t["perception"] if i["finding"] == "pleural_effusion")["laterality"] = "right"
        t["reflection"]["corrections"].append(
            {
                "kind": "laterality",
                "finding": "pleural_effusion",
                "before": state("present", "right", "small"),
                "after": state("present", "left", "small"),
                "note": "The meniscus is on the left on both views: a left effusion, not a right one.",
            }
        )

    table = _table([("fc", spoil(effusion(), draft_right), EFFUSION_LABELS)])
    assert table["passed"].to_list() == [True], table["message"].to_list()

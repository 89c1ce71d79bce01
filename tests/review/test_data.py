"""The review index and its filters over a validated demo run."""

from __future__ import annotations

import polars as pl
import pytest

from datakit.review.data import Filter, FilterError, ReviewData, parse_query
from datakit.review.decisions import DecisionLog
from tests.review.conftest import FLAGGED, REJECTED


@pytest.fixture
def data(review_run):
    return ReviewData(review_run)


def ids(data, query, decisions=None):
    return set(data.select(parse_query(query), decisions)["study_id"].to_list())


def test_index_holds_one_small_row_per_trace(data, review_run):
    traces = pl.read_parquet(review_run / "traces.parquet")
    assert data.index["study_id"].to_list() == traces["study_id"].to_list()
    assert "trace_json" not in data.index.columns
    assert data.counts() == {"traces": 26, "passed": 24, "rejected": 1, "flagged": 1, "unvalidated": 0}
    assert data.row(REJECTED)["codes"] == ["leaked_source"]
    assert data.row(FLAGGED)["status"] == "flagged"


def test_filters_match_what_the_tables_say(data, review_run):
    studies = pl.read_parquet(review_run / "studies.parquet")
    traces = pl.read_parquet(review_run / "traces.parquet")
    assert ids(data, "split:test") == set(studies.filter(pl.col("split") == "test")["study_id"])
    assert ids(data, "status:rejected") == {REJECTED}
    assert ids(data, "status:flagged") == {FLAGGED}
    assert ids(data, "status:accepted") == set(traces["study_id"]) - {REJECTED, FLAGGED}
    assert ids(data, "code:prior_reference") == {FLAGGED}
    assert ids(data, "code:leakage") == {REJECTED, FLAGGED}  # a check name matches its codes
    assert ids(data, "label:cardiomegaly") == set(studies.filter(pl.col("cardiomegaly") == 1)["study_id"])
    assert ids(data, "label:Pleural-Effusion=0") == set(
        studies.filter(pl.col("pleural_effusion") == 0)["study_id"])
    assert ids(data, "label:edema=none") == set(studies.filter(pl.col("edema").is_null())["study_id"])
    assert ids(data, "teacher:offline") == set(traces["study_id"]) and not ids(data, "teacher:llm")
    corrected = set(traces.filter(pl.col("injected_error").is_not_null())["study_id"])
    assert corrected and ids(data, "corrections:yes") == corrected
    assert ids(data, "corrections:no") == set(traces["study_id"]) - corrected
    assert ids(data, "GROUND truth") == {REJECTED}  # text search, any case, trace or report
    split = studies.filter(pl.col("study_id") == REJECTED)["split"][0]
    other = next(s for s in ("train", "val", "test") if s != split)
    assert ids(data, f"status:rejected split:{split}") == {REJECTED}  # filters combine with and
    assert ids(data, f"status:rejected split:{other}") == set()


def test_decision_filter_reads_the_latest_decisions(data, review_run):
    log = DecisionLog(review_run, "t")
    log.record(REJECTED, "accept")
    log.record(REJECTED, "reject", "leaks")
    log.record(FLAGGED, "flag")
    assert ids(data, "decision:reject", log.latest) == {REJECTED}
    assert ids(data, "decision:accept", log.latest) == set()
    assert ids(data, "decision:any", log.latest) == {REJECTED, FLAGGED}
    assert len(ids(data, "decision:none", log.latest)) == 24


def test_a_query_reads_back_as_written():
    flt = parse_query("split:val status:rejected label:edema=-1 corrections:no pleural fluid")
    assert flt == Filter(split="val", status="rejected", label=("edema", -1), corrections=False,
                         text="pleural fluid")
    assert parse_query(flt.describe()) == flt


@pytest.mark.parametrize(("query", "message"), [
    ("status:maybe", "status 'maybe' is not one of"),
    ("label:lungs", "no label 'lungs'"),
    ("label:edema=2", "label value '2'"),
    ("decision:perhaps", "decision 'perhaps'"),
    ("corrections:some", "corrections:some is not yes or no"),
    ("split:", "split: needs a value"),
])
def test_a_bad_query_says_what_is_wrong(query, message):
    with pytest.raises(FilterError, match=message):
        parse_query(query)


def test_one_study_reads_only_its_rows(data):
    rec = data.study(REJECTED)
    assert rec["trace"]["study_id"] == REJECTED and rec["study"]["study_id"] == REJECTED
    assert rec["images"] and {r["study_id"] for r in rec["validation"]} == {REJECTED}
    assert {h["study_id"] for h in rec["knowledge"]} == {REJECTED}


def test_a_run_not_yet_validated_lists_every_trace_as_unvalidated(review_run):
    (review_run / "validation.parquet").unlink()
    data = ReviewData(review_run)
    assert data.counts()["unvalidated"] == 26 and not data.validated
    assert ids(data, "status:unvalidated") == set(data.index["study_id"]) and not ids(data, "code:leakage")
    assert data.study(REJECTED)["validation"] == []

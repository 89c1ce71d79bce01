"""Decisions: appended at once, read back in order, the last one per study wins, torn lines set aside."""

from __future__ import annotations

import json

import pytest

from datakit.review.decisions import DecisionError, DecisionLog, decisions_path, latest_decisions, read_decisions


def test_each_decision_is_on_disk_when_record_returns(tmp_path, monkeypatch):
    monkeypatch.setenv("USER", "ana")
    log = DecisionLog(tmp_path)
    rec = log.record("s1", "reject", "  wrong side  ")
    lines = decisions_path(tmp_path).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [rec]
    assert rec["note"] == "wrong side" and rec["reviewer"] == "ana" and rec["time"].endswith("Z")
    assert set(rec) == {"study_id", "decision", "note", "time", "reviewer"}


def test_last_decision_per_study_wins_across_sessions(tmp_path):
    DecisionLog(tmp_path, "a").record("s1", "accept")
    DecisionLog(tmp_path, "a").record("s2", "flag", "check the side")
    log = DecisionLog(tmp_path, "b")
    assert log.latest["s1"]["decision"] == "accept"  # a new session starts from what is on disk
    log.record("s1", "reject", "leaks the report")
    latest = latest_decisions(tmp_path)
    assert {s: r["decision"] for s, r in latest.items()} == {"s1": "reject", "s2": "flag"}
    assert latest["s1"]["reviewer"] == "b" and latest["s1"]["note"] == "leaks the report"
    assert len(read_decisions(tmp_path).records) == 3


def test_a_torn_or_foreign_line_is_kept_aside_with_why(tmp_path):
    DecisionLog(tmp_path, "a").record("s1", "accept")
    with open(decisions_path(tmp_path), "a", encoding="utf-8") as fh:
        fh.write('{"study_id": "s2", "decision": "maybe"}\n{"study_id": "s3", "deci')
    got = read_decisions(tmp_path)
    assert [r["study_id"] for r in got.records] == ["s1"]
    assert [n for n, _ in got.bad_lines] == [2, 3]
    assert "maybe" in got.bad_lines[0][1] and "not JSON" in got.bad_lines[1][1]
    DecisionLog(tmp_path, "a").record("s3", "flag")  # the torn line does not swallow the next decision
    again = read_decisions(tmp_path)
    assert [r["study_id"] for r in again.records] == ["s1", "s3"] and len(again.bad_lines) == 2


def test_unknown_decision_or_missing_study_is_refused(tmp_path):
    log = DecisionLog(tmp_path, "a")
    with pytest.raises(DecisionError, match="not one of accept, reject, flag"):
        log.record("s1", "maybe")
    with pytest.raises(DecisionError, match="study id"):
        log.record("", "accept")
    assert not decisions_path(tmp_path).exists()


def test_no_file_means_no_decisions(tmp_path):
    assert latest_decisions(tmp_path) == {}

"""The bulk pass: the same answers in worker processes as in-process, and what it renders."""

from __future__ import annotations

import pytest

from datakit.trace import dumps, render_report, render_think
from datakit.validate import parse
from tests.validate.builders import effusion_trace, normal_trace


def _texts() -> list[str | None]:
    good = [dumps(effusion_trace()), dumps(normal_trace(3))]
    bad = ['{"perception": [', dumps({**normal_trace(), "extra": 1}), None, "  "]
    return (good + bad) * 5


def test_workers_give_the_same_answers_in_order(monkeypatch):
    texts = _texts()
    serial = [row for chunk in parse.parse_chunks(texts, ("<think>", "</think>"), workers=1) for row in chunk]
    monkeypatch.setattr(parse, "PARALLEL_FROM", 1)
    monkeypatch.setattr(parse, "CHUNK", 7)
    chunks = list(parse.parse_chunks(texts, ("<think>", "</think>"), workers=2))
    assert len(chunks) == 5
    assert [row for chunk in chunks for row in chunk] == serial
    assert [r[0] for r in serial[:6]] == [
        "ok",
        "ok",
        "invalid_json",
        "schema_violation",
        "invalid_json",
        "invalid_json",
    ]


def test_valid_trace_is_cut_out_of_the_rendered_turn():
    trace = effusion_trace()
    code, message, think, report, problem = parse.parse_one(dumps(trace), ("<reasoning>", "</reasoning>"))
    assert (code, message, problem) == ("ok", None, None)
    assert think == render_think(trace) and report == render_report(trace)


@pytest.mark.parametrize(
    ("evidence", "problem"),
    [
        ("A <think> tag.", "<think> occurs 2 times and </think> 1 times (each should occur once)"),
        ("Closed early </think> and <think> reopened.", "<think> occurs 2 times and </think> 2 times"),
    ],
)
def test_tags_inside_the_trace_break_the_block(evidence, problem):
    trace = effusion_trace()
    trace["perception"][0]["evidence"] = evidence
    code, _, think, report, found = parse.parse_one(dumps(trace), ("<think>", "</think>"))
    assert code == "ok" and found.startswith(problem)
    assert think == render_think(trace)  # the texts still come from the renderer

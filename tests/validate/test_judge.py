"""The optional LLM judge against the local fake OpenAI server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json

import polars as pl
import pytest

import datakit.validate
from datakit.config import DatakitConfig, LlmJudgeConfig, ValidateConfig
from datakit.errors import ConfigError
from datakit.validate.judge import parse_answer
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.validate.builders import Corpus, KeywordLabeler
from tests.validate.faith_traces import GOOD


@pytest.fixture
def run(tmp_path):
    corpus = Corpus()
    for sid, trace, lab in GOOD[:3]:
        corpus.add(sid, trace, lab)
    return corpus.write(tmp_path / "run")


def _config(server, **judge) -> DatakitConfig:
    cfg = LlmJudgeConfig(enabled=True, model="judge-m", base_url=server.base_url, max_retries=0, **judge)
    return DatakitConfig(validate=ValidateConfig(skip=["diversity"], llm_judge=cfg))


def _problems(*items) -> str:
    return json.dumps({"problems": [{"kind": k, "statement": s, "reason": r} for k, s, r in items]})


def _answer(body, index):
    text = body["messages"][1]["content"]
    if "Small left pleural effusion" in text:
        return Reply(content=_problems(("contradicted", "Small left pleural effusion", "the report says right")))
    return Reply(content=_problems())


def test_off_by_default(run):
    result = datakit.validate.run(
        run, DatakitConfig(validate=ValidateConfig(skip=["diversity"])), labeler=KeywordLabeler()
    )
    assert "judge" not in {c["check"] for c in result.summary["checks"]}


def test_judge_problems_become_rows_and_a_rerun_sends_nothing(run):
    with FakeOpenAI(_answer) as server:
        cfg = _config(server)
        result = datakit.validate.run(run, cfg, labeler=KeywordLabeler())
        sent = server.chat_requests()
        assert len(sent) == 3
        body = sent[0].body
        assert body["model"] == "judge-m" and body["response_format"]["type"] == "json_schema"
        assert "FINDINGS" in body["messages"][1]["content"] and "<think>" not in body["messages"][1]["content"]
        rows = result.table.filter(pl.col("check") == "judge")
        bad = rows.filter(~pl.col("passed")).to_dicts()
        assert [(r["study_id"], r["code"]) for r in bad] == [("fg_effusion", "judge_contradicted")]
        assert "the report says right" in bad[0]["message"]
        assert result.summary["judge"] == {"asked": 3, "sent": 3, "cached": 0}
        assert "fg_effusion" in {r["key"] for r in run.read_quarantine("validate")}
        again = datakit.validate.run(run, cfg, labeler=KeywordLabeler())
        assert len(server.chat_requests()) == 3  # every answer came from cache.sqlite
        assert again.summary["judge"] == {"asked": 3, "sent": 0, "cached": 3}
        assert again.table.filter(pl.col("check") == "judge").equals(rows)


def test_a_malformed_answer_is_reasked_then_a_clear_problem(run):
    def answer(body, index):
        reasked = len(body["messages"]) > 2
        if "Left basilar" in body["messages"][1]["content"]:
            return Reply(content=_problems() if reasked else "Looks fine to me!")
        return Reply(content='{"problems": [{"kind": "maybe", "statement": "x"}]}')

    with FakeOpenAI(answer) as server:
        result = datakit.validate.run(run, _config(server, max_reasks=1), labeler=KeywordLabeler())
        assert len(server.chat_requests()) == 6  # each of 3 asked twice
    rows = {r["study_id"]: r for r in result.table.filter(pl.col("check") == "judge").to_dicts()}
    assert rows["fg_hedged"]["passed"]  # the re-ask was answered properly
    failed = rows["fg_effusion"]
    assert failed["code"] == "judge_failed" and failed["severity"] == "warning"
    assert "parse_error" in failed["message"] and "kind must be one of" in failed["message"]


def test_an_http_failure_is_a_problem_row_not_a_crash(run):
    with FakeOpenAI(lambda body, index: Reply(status=400, error={"error": {"message": "bad model"}})) as server:
        result = datakit.validate.run(run, _config(server), labeler=KeywordLabeler())
    rows = result.table.filter(pl.col("check") == "judge")
    assert set(rows["code"]) == {"judge_failed"} and rows.height == 3


def test_parse_answer_and_config_errors():
    assert parse_answer(_problems(("unsupported", " a ", ""))) == [
        {"kind": "unsupported", "statement": "a", "reason": ""}
    ]
    for bad in ("[]", '{"problems": {}}', '{"problems": [{"kind": "unsupported", "statement": ""}]}', "x"):
        with pytest.raises(ValueError):
            parse_answer(bad)
    from datakit.validate.judge import Judge

    with pytest.raises(ConfigError, match="needs a model"):
        Judge(LlmJudgeConfig(enabled=True))
    with pytest.raises(ConfigError, match="needs a cache"):
        Judge(LlmJudgeConfig(enabled=True, model="m", base_url="http://127.0.0.1:9")).ask([("s", "t", "r")])

"""The LLM teacher end to end against a real OpenAI-compatible server on 127.0.0.1."""

import json
import os
import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

import datakit.annotate
from datakit.annotate import _split_swallowed
from datakit.cli.app import app
from datakit.config import load_config
from datakit.resources import data_path
from datakit.text import clean
from datakit.trace import SCHEMA_ID, schema_errors
from tests.fakes.openai_server import FakeOpenAI, Reply

PERCEPTION = [
    {"region": r, "finding": "normal", "status": "present", "laterality": "none", "severity": None,
     "evidence": f"The {r.replace('_', ' ')} look normal."}
    for r in ("airway", "lungs", "pleura", "heart_mediastinum", "hila", "bones_soft_tissue", "upper_abdomen",
              "lines_devices")
]
PERCEPTION[2] = {"region": "pleura", "finding": "pleural_effusion", "status": "present", "laterality": "left",
                 "severity": "small", "evidence": "Blunted left costophrenic angle with a meniscus."}
REASONING = [{"observation": "Blunted left costophrenic angle", "inference": "Fluid in the pleural space "
              "[K:pleural_effusion].", "knowledge": ["pleural_effusion"], "conclusion": "pleural_effusion",
              "status": "present"}]
REFLECTION = {"checked": ["both costophrenic angles on both views"], "corrections": [],
              "summary": "The first look holds."}
REPORT = {"findings": "whatever the teacher wrote", "impression": "is replaced by the study's own"}
PARTS = {"perception": PERCEPTION, "reasoning": REASONING, "reflection": REFLECTION, "report": REPORT}


def answer_for(body, index):
    """A valid answer for whatever part of the trace the request's schema asks for."""
    schema = body["response_format"]["json_schema"]["schema"]
    return Reply(content=json.dumps({k: PARTS[k] for k in schema["required"]}))


def cfg(server, **over):
    return load_config(overrides={
        "teacher.kind": "llm", "teacher.base_url": server.base_url, "teacher.model": "teacher-m",
        "teacher.max_concurrency": 4, "teacher.backoff_initial_s": 0.01, "teacher.backoff_max_s": 0.05,
        "teacher.request_timeout_s": 5.0, **over,
    })


def traces_of(result):
    return {r["study_id"]: json.loads(r["trace_json"]) for r in result.traces.iter_rows(named=True)}


@pytest.fixture
def server():
    with FakeOpenAI(answer_for) as s:
        yield s


def test_single_call_traces_then_a_second_run_sends_nothing(demo_run, server):
    n = pl.read_parquet(demo_run / "studies.parquet").height
    first = datakit.annotate.run(demo_run, cfg(server), progress=False)
    assert first.counts["study_out"] == n
    assert len(server.chat_requests()) == n
    studies = {r["study_id"]: r for r in pl.read_parquet(demo_run / "studies.parquet").iter_rows(named=True)}
    for sid, trace in traces_of(first).items():
        assert schema_errors(trace) == []
        own = _split_swallowed(clean(studies[sid]["findings"]), clean(studies[sid]["impression"]))
        assert trace["report"]["impression"] == own[1]
    row = first.traces.row(0, named=True)
    assert row["teacher"] == "llm" and row["model"] == "teacher-m"
    assert row["templates"] == "annotate/system.j2,annotate/user.j2,annotate/reask.j2"
    assert row["template_sha"].startswith("b2:")
    assert row["cache_keys"] and row["cache_keys"][0].startswith("b2:")

    # what was sent: the rendered prompt, the images as PNG data URLs, the trace schema as strict json_schema
    body = server.chat_requests()[0].body
    user = body["messages"][1]["content"]
    assert user[0]["type"] == "text" and "Radiology knowledge you may cite" in user[0]["text"]
    images = [p["image_url"]["url"] for p in user if p["type"] == "image_url"]
    assert images and all(u.startswith("data:image/png;base64,") for u in images)
    assert body["response_format"]["json_schema"]["strict"] is True
    assert "the report" not in body["messages"][0]["content"].lower().replace("a report,", "")

    # a second run sends nothing, not even with the images gone (a cached run never reads them)
    for png in (demo_run / "images").glob("*.png"):
        png.unlink()
    second = datakit.annotate.run(demo_run, cfg(server), progress=False)
    assert len(server.chat_requests()) == n
    assert second.traces.select("study_id", "trace_json").equals(first.traces.select("study_id", "trace_json"))


def test_a_changed_parameter_re_asks_only_what_it_changes(demo_run, server):
    datakit.annotate.run(demo_run, cfg(server), progress=False)
    n = len(server.chat_requests())
    datakit.annotate.run(demo_run, cfg(server, **{"teacher.temperature": 0.7}), progress=False, limit=3, replace=True)
    assert len(server.chat_requests()) == n + 3


def test_unparseable_answers_are_re_asked_then_quarantined(demo_run):
    count = {"first": 0}

    def handler(body, index):
        text = body["messages"][1]["content"][0]["text"]
        if "Resolved bibasilar" in text:  # one study never answers in JSON
            return Reply(content="Sure! Here is the trace: {oops")
        if len(body["messages"]) > 2:  # a re-ask: now answer properly
            return answer_for(body, index)
        count["first"] += 1
        return Reply(content="not JSON at all") if count["first"] % 5 == 0 else answer_for(body, index)

    with FakeOpenAI(handler) as server:
        result = datakit.annotate.run(demo_run, cfg(server, **{"teacher.max_reasks": 1}), progress=False)
        reasks = [r for r in server.chat_requests() if len(r.body["messages"]) > 2]
    q = [json.loads(line) for line in (demo_run / "quarantine.jsonl").read_text().splitlines()]
    q = [r for r in q if r["stage"] == "annotate"]
    assert result.counts["study_in"] == result.counts["study_out"] + result.counts["study_quarantined"]
    assert result.counts["study_quarantined"] == len(q) == 1
    assert q[0]["key"] == "50015438" and q[0]["code"] == "parse_error"
    assert "not valid JSON" in q[0]["message"]
    assert len(reasks) >= 2  # the failing study's re-ask and the every-fifth studies' re-asks
    assert "not valid JSON" in reasks[0].body["messages"][-1]["content"]


def test_unknown_knowledge_ids_are_re_asked_with_the_reason(demo_run):
    def handler(body, index):
        if len(body["messages"]) == 2:
            wrong = dict(PARTS, reasoning=[dict(REASONING[0], knowledge=["made_up_entry"])])
            return Reply(content=json.dumps(wrong))
        return answer_for(body, index)

    with FakeOpenAI(handler) as server:
        result = datakit.annotate.run(demo_run, cfg(server), progress=False, limit=2, replace=True)
        reasks = [r.body for r in server.chat_requests() if len(r.body["messages"]) > 2]
    assert result.counts["study_out"] == 2
    assert len(reasks) == 2
    assert "made_up_entry" in reasks[0]["messages"][-1]["content"]


def test_multi_stage_sends_three_requests_each_seeing_the_earlier_answers(demo_run, server):
    result = datakit.annotate.run(demo_run, cfg(server, **{"teacher.prompt_mode": "multi"}), progress=False, limit=2,
                                  replace=True)
    assert result.counts["study_out"] == 2
    sent = [r.body for r in server.chat_requests()]
    assert len(sent) == 6
    names = [b["response_format"]["json_schema"]["name"] for b in sent]
    assert sum("perception" in n for n in names) == 2 and sum("reflection" in n for n in names) == 2
    reflection_prompt = next(b for b in sent if "reflection" in b["response_format"]["json_schema"]["name"])
    text = reflection_prompt["messages"][1]["content"][0]["text"]
    assert "Blunted left costophrenic angle with a meniscus" in text and "[K:pleural_effusion]" in text
    assert result.traces["templates"][0].endswith("annotate/reflection.j2,annotate/reask.j2")
    assert len(result.traces["cache_keys"][0]) == 3


def test_dry_run_sends_nothing_and_projects_cost(demo_run, server):
    runner = CliRunner()
    res = runner.invoke(app, ["annotate", "--run", str(demo_run), "--teacher", "llm", "--model", "teacher-m",
                              "--base-url", server.base_url, "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "Dry run" in res.output and "to send" in res.output
    assert server.chat_requests() == []
    assert not (demo_run / "traces.parquet").exists()


def test_the_key_is_never_written_to_the_run(demo_run, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-very-secret-0123456789")
    datakit.annotate.run(demo_run, cfg(server), progress=False, limit=2, replace=True)
    runner = CliRunner()
    runner.invoke(app, ["annotate", "--run", str(demo_run), "--teacher", "llm", "--model", "teacher-m",
                        "--base-url", server.base_url, "--limit", "2", "--no-progress", "--replace"])
    for root, _, files in os.walk(demo_run):
        for name in files:
            data = open(os.path.join(root, name), "rb").read()
            assert b"very-secret" not in data, name
    assert server.chat_requests()[0].headers.get("authorization", "").endswith("0123456789")


def test_llm_teacher_needs_a_model(demo_run):
    runner = CliRunner()
    res = runner.invoke(app, ["annotate", "--run", str(demo_run), "--teacher", "llm"])
    assert res.exit_code == 2
    assert "needs a model" in res.output and "--model" in res.output


def test_no_key_for_the_openai_endpoint_fails_at_once(demo_run):
    runner = CliRunner()
    res = runner.invoke(app, ["annotate", "--run", str(demo_run), "--teacher", "llm", "--model", "gpt-4o",
                              "--limit", "1", "--no-progress", "--replace"])
    assert res.exit_code == 3
    assert "OPENAI_API_KEY is empty or unset" in res.output and "--base-url" in res.output


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_json_object_endpoints_are_shown_the_schema_in_the_prompt(demo_run, mode):
    def answer(body, index):
        assert body["response_format"] == {"type": "json_object"}
        shown = body["messages"][1]["content"][-1]["text"]
        schema = json.loads(shown[shown.index("{"):])
        return Reply(content=json.dumps({k: PARTS[k] for k in schema["required"]}))

    with FakeOpenAI(answer) as server:
        over = {"teacher.structured_output": "json_object", "teacher.prompt_mode": mode}
        result = datakit.annotate.run(demo_run, cfg(server, **over), progress=False, limit=2, replace=True)
        sent = [r.body for r in server.chat_requests()]
    assert result.counts["study_out"] == 2 and len(sent) == (2 if mode == "single" else 6)
    assert all("JSON Schema" in b["messages"][1]["content"][-1]["text"] for b in sent)
    assert result.traces["templates"][0].endswith("annotate/schema.j2,annotate/reask.j2")


def _cli_annotate(demo_run, server, *more, verbose=False, limit=1):
    args = ["-v"] if verbose else []
    args += ["annotate", "--run", str(demo_run), "--teacher", "llm", "--model", "teacher-m", "--base-url",
             server.base_url, "--limit", str(limit), "--no-progress", *more]
    return CliRunner().invoke(app, args)


def test_a_user_reask_template_changes_the_reask_sent_and_the_template_hash(demo_run, tmp_path):
    mine = tmp_path / "prompts"
    shutil.copytree(data_path("prompts"), mine)
    (mine / "annotate" / "reask.j2").write_text(
        "{#- Variables: error, schema_name -#}\nNOT USABLE under {{ schema_name }}: {{ error }}. JSON only, please.\n"
    )

    def handler(body, index):  # the first try of every study is not JSON; a re-ask gets a trace
        return Reply(content="no JSON here") if len(body["messages"]) == 2 else answer_for(body, index)

    with FakeOpenAI(handler) as server:
        default = _cli_annotate(demo_run, server)
        shipped_sha = pl.read_parquet(demo_run / "traces.parquet")["template_sha"][0]
        own = _cli_annotate(demo_run, server, "--prompts", str(mine))
        own_sha = pl.read_parquet(demo_run / "traces.parquet")["template_sha"][0]
        reasks = [r.body["messages"][-1]["content"] for r in server.chat_requests() if len(r.body["messages"]) > 2]
        sent = len(server.chat_requests())
    assert default.exit_code == 0 and own.exit_code == 0, default.output + own.output
    assert reasks[0].startswith("Your previous reply could not be used: the reply is not valid JSON")
    assert reasks[1].startswith(f"NOT USABLE under {SCHEMA_ID}: the reply is not valid JSON")
    assert reasks[1].endswith("JSON only, please.")
    assert sent == 3  # the first request's reply came from the cache; only the new re-ask was sent
    assert own_sha != shipped_sha


def test_retries_are_in_the_run_log_and_on_the_console_with_verbose(demo_run, monkeypatch):
    monkeypatch.setenv("DATAKIT_TEACHER__BACKOFF_INITIAL_S", "0.01")
    busy = Reply(status=503, error={"error": {"message": "warming up"}})
    with FakeOpenAI(answer_for) as server:
        server.script(busy)
        quiet = _cli_annotate(demo_run, server)
        server.script(busy)
        loud = _cli_annotate(demo_run, server, verbose=True, limit=2)  # the second study is sent
    assert quiet.exit_code == 0 and loud.exit_code == 0, quiet.output + loud.output
    assert "retry" not in quiet.output
    assert "retry 1 of 6 in" in loud.output and "answered 503: warming up" in loud.output
    log = (demo_run / "datakit.log").read_text()
    assert log.count("retry 1 of 6 in") == 2 and "warming up" in log

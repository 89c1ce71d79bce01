"""Good traces from both teachers pass every check; a spoiled teacher answer is caught (demo data, real
labeler)."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

import datakit.annotate
import datakit.validate
from datakit.annotate import build_inputs
from datakit.annotate.offline import _make_writer
from datakit.config import load_config
from datakit.rundir import RunDir
from tests.annotate.run_fixture import make_demo_run
from tests.fakes.openai_server import FakeOpenAI, Reply


@pytest.fixture(scope="module")
def demo_bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate-demo")
    return {source: make_demo_run(root / source, source) for source in ("mimic-cxr", "iu-xray")}


@pytest.fixture
def demo(demo_bases, tmp_path):
    def copy(source: str = "mimic-cxr") -> RunDir:
        dest = tmp_path / source
        shutil.copytree(demo_bases[source], dest)
        return RunDir.open(dest)

    return copy


# Warnings the offline teacher's traces still get, for what it writes today: pertinent negatives the report never
# made (the stock normal phrases of every region), and reports that compare with a prior study (the report's
# doing, not the trace's).
TOLERATED = {"unsupported_negative", "report_refers_to_prior"}
# Demo traces the faithfulness check rejects because the offline teacher wrote them wrong (issue 15; the first is
# fixed by the issue-15 teacher, which these tests also accept): the
# report says "The cardiomediastinal contours are stable" and the trace has an uncertain enlarged
# cardiomediastinum (the stable-silhouette misreading; the study's labels say -1 from the same misreading); the
# report says "only trace blunting of the right costophrenic angle left" and the trace has a bilateral effusion
# ("left" read as a side, not as "remaining").
TEACHER_BUGS = {
    ("57564922", "faithfulness", "finding_not_in_report"),
    ("51984698", "faithfulness", "side_contradicted"),
}


def _failures(result) -> list[dict]:
    return result.table.filter(~pl.col("passed") & ~pl.col("code").is_in(list(TOLERATED))).to_dicts()


def _unexplained(result) -> list[dict]:
    """Failures that are neither tolerated warnings nor known teacher bugs."""
    return [f for f in _failures(result) if (f["study_id"], f["check"], f["code"]) not in TEACHER_BUGS]


@pytest.mark.parametrize("source", ["mimic-cxr", "iu-xray"])
@pytest.mark.parametrize("error_rate", [0.5, 1.0])
def test_offline_traces_pass_every_check(demo, source, error_rate):
    run = demo(source)
    cfg = load_config(overrides={"teacher.error_rate": error_rate})
    annotated = datakit.annotate.run(run, cfg, progress=False)
    if error_rate == 1.0:
        assert sum(annotated.injected.values()) > 0  # drafts with errors, corrected by the reflection
    result = datakit.validate.run(run, cfg)
    assert result.summary["traces"] == annotated.traces.height > 0
    assert _unexplained(result) == []
    bugs = {sid for sid, _, _ in TEACHER_BUGS}
    assert result.summary["rejected"] == len({f["study_id"] for f in _failures(result)} & bugs)
    assert [c["check"] for c in result.summary["checks"]] == [
        "schema",
        "clinical",
        "evidence",
        "faithfulness",
        "knowledge",
        "reflection",
        "leakage",
        "privacy",
        "form",
        "diversity",
        "priors",
    ]
    assert {r["key"] for r in run.read_quarantine("validate")} <= bugs


def _offline_traces_by_prompt(run: RunDir) -> dict[str, dict]:
    """What a good LLM would answer, keyed by the study text its prompt shows: the offline teacher's trace."""
    cfg = load_config()
    inputs = build_inputs(
        run, run.read_table("studies"), run.read_table("images"), run.read_table("knowledge")
    )
    writer = _make_writer(cfg)
    out = {}
    for study in inputs:
        key = f"FINDINGS: {study.findings}\n" if study.findings else f"IMPRESSION: {study.impression}\n"
        out.setdefault(f"{study.indication}|{key}", []).append(writer.write(study).trace)
    return out


def _answer(traces: dict[str, list[dict]], spoil=None):
    def answer(body, index):
        text = body["messages"][1]["content"][0]["text"]
        indication = text.split("Clinical indication: ", 1)[1].split("\n", 1)[0]
        indication = "" if indication == "not given" else indication
        found = [
            t for k, t in traces.items() if k.startswith(indication + "|") and k.split("|", 1)[1] in text
        ]
        trace = dict(found[0][0])
        if spoil is not None:
            trace = spoil(json.loads(json.dumps(trace)))
        schema = body["response_format"]["json_schema"]["schema"]
        return Reply(content=json.dumps({k: trace[k] for k in schema["required"]}))

    return answer


def _llm_config(server, **over):
    return load_config(
        overrides={
            "teacher.kind": "llm",
            "teacher.base_url": server.base_url,
            "teacher.model": "teacher-m",
            "teacher.max_concurrency": 4,
            "teacher.request_timeout_s": 10.0,
            **over,
        }
    )


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_llm_traces_pass_every_check(demo, mode):
    run = demo()
    with FakeOpenAI(_answer(_offline_traces_by_prompt(run))) as server:
        cfg = _llm_config(server, **{"teacher.prompt_mode": mode})
        annotated = datakit.annotate.run(run, cfg, progress=False)
    assert set(annotated.traces["teacher"]) == {"llm"} and annotated.counts["study_quarantined"] == 0
    result = datakit.validate.run(run, cfg)
    assert _unexplained(result) == []
    assert result.summary["traces"] == annotated.traces.height


def test_llm_trace_that_leaks_is_rejected(demo):
    run = demo()

    def spoil(trace):
        first = next(i for i in trace["perception"] if i["finding"] != "normal" or i["region"] == "lungs")
        first["evidence"] = (
            "According to the report, " + first["evidence"][:1].lower() + first["evidence"][1:]
        )
        return trace

    with FakeOpenAI(_answer(_offline_traces_by_prompt(run), spoil)) as server:
        cfg = _llm_config(server)
        annotated = datakit.annotate.run(run, cfg, progress=False)
    result = datakit.validate.run(run, cfg)
    leak = result.table.filter(pl.col("check") == "leakage")
    assert set(leak["code"]) == {"leaked_source"}
    assert result.summary["rejected"] == annotated.traces.height
    assert {r["code"] for r in run.read_quarantine("validate")} - {c for _, _, c in TEACHER_BUGS} == {"leaked_source"}

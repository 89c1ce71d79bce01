"""The offline teacher: valid, deterministic, consistent with the labels, and honest reflections."""

import json
import re

import polars as pl
import pytest

import datakit.annotate
from datakit.annotate import offline
from datakit.config import load_config
from datakit.tables import LABEL_COLUMNS
from datakit.trace import render_assistant, schema_errors
from tests.annotate.traces import final_findings

STATUS = {1: "present", -1: "uncertain", 0: "absent"}


def annotate(run, **over):
    return datakit.annotate.run(run, load_config(overrides=over), progress=False)


def traces_of(result):
    return {r["study_id"]: json.loads(r["trace_json"]) for r in result.traces.iter_rows(named=True)}


def test_every_study_gets_a_valid_trace_and_counts_add_up(demo_run):
    result = annotate(demo_run)
    studies = pl.read_parquet(demo_run / "studies.parquet")
    # every demo study's labels agree with its text, so none is quarantined as label_not_in_report
    assert result.counts == {"study_in": studies.height, "study_out": studies.height, "study_quarantined": 0}
    for sid, trace in traces_of(result).items():
        assert schema_errors(trace) == [], sid
        assert render_assistant(trace).count("<think>") == 1
    manifest = json.loads((demo_run / "manifest.json").read_text())
    assert manifest["stages"]["annotate"]["counts"]["study_out"] == studies.height
    assert set(result.traces["teacher"]) == {"offline"}


def test_deterministic_and_seeded(demo_run):
    a = annotate(demo_run).traces.select("study_id", "trace_json")
    b = annotate(demo_run).traces.select("study_id", "trace_json")
    assert a.equals(b)
    c = annotate(demo_run, **{"teacher.seed": 7}).traces.select("study_id", "trace_json")
    assert not a.equals(c)


def test_parallel_writers_give_the_same_traces(demo_run, monkeypatch):
    serial = annotate(demo_run).traces.select("study_id", "trace_json")
    monkeypatch.setattr(offline, "PARALLEL_MIN_STUDIES", 1)
    parallel = annotate(demo_run, **{"teacher.workers": 2}).traces.select("study_id", "trace_json")
    assert serial.equals(parallel)


def test_final_state_agrees_with_the_labels(demo_run):
    result = annotate(demo_run, **{"teacher.error_rate": 1.0})
    studies = {r["study_id"]: r for r in pl.read_parquet(demo_run / "studies.parquet").iter_rows(named=True)}
    from datakit.knowledge.kb import load_kb

    kb = load_kb()
    for sid, trace in traces_of(result).items():
        final = final_findings(trace)
        for label in LABEL_COLUMNS:
            value = studies[sid][label]
            if value is None or label == "no_finding":
                continue
            of_label = [st["status"] for fid, st in final.items() if fid in kb and kb.get(fid).chexpert == label]
            if value in (1, -1):
                # the text's certainty is kept: a label of -1 beside a plainly stated finding stays present,
                # and a hedged finding labelled 1 stays uncertain (labels never upgrade or create items)
                assert {"present", "uncertain"} & set(of_label), (sid, label, of_label)
            else:
                assert "present" not in of_label and "uncertain" not in of_label, (sid, label, of_label)


def test_the_report_is_the_studys_own(demo_run):
    result = annotate(demo_run)
    studies = {r["study_id"]: r for r in pl.read_parquet(demo_run / "studies.parquet").iter_rows(named=True)}
    for sid, trace in traces_of(result).items():
        report = trace["report"]
        from datakit.annotate import _split_swallowed
        from datakit.text import clean

        own = _split_swallowed(clean(studies[sid]["findings"]), clean(studies[sid]["impression"]))[1]
        assert report["impression"] == own
        assert report["findings"] or report["impression"], sid


def test_no_error_injected_means_a_specific_recheck(demo_run):
    result = annotate(demo_run, **{"teacher.error_rate": 0.0})
    assert result.traces["injected_error"].null_count() == result.traces.height
    for trace in traces_of(result).values():
        assert trace["reflection"]["corrections"] == []
        assert len(trace["reflection"]["checked"]) >= 2


@pytest.mark.parametrize("kind", ["missed", "hallucinated", "laterality", "severity"])
def test_each_error_kind_is_injected_into_the_draft_and_corrected(demo_run, kind):
    result = annotate(demo_run, **{"teacher.error_rate": 1.0, "teacher.error_kinds": [kind]})
    made = result.traces.filter(pl.col("injected_error") == kind)
    assert made.height >= 1
    for row in made.iter_rows(named=True):
        trace = json.loads(row["trace_json"])
        fixes = [c for c in trace["reflection"]["corrections"] if c["kind"] == kind]
        assert len(fixes) == 1
        fix = fixes[0]
        assert fix["before"] != fix["after"]
        draft = [i for i in trace["perception"] if i["finding"] == fix["finding"]]
        if kind == "missed":
            assert all(i["status"] == "absent" for i in draft)
            assert fix["after"]["status"] == "present"
        else:
            assert any(
                (i["status"], i["laterality"], i["severity"])
                == (fix["before"]["status"], fix["before"]["laterality"], fix["before"]["severity"])
                for i in draft
            )
        if kind == "hallucinated":
            assert fix["after"]["status"] == "absent"


def test_wording_varies_across_studies(demo_run):
    result = annotate(demo_run)
    evidence = [i["evidence"] for t in traces_of(result).values() for i in t["perception"]]
    summaries = {t["reflection"]["summary"] for t in traces_of(result).values()}
    normal_lungs = {i["evidence"] for t in traces_of(result).values() for i in t["perception"]
                    if i["region"] == "airway"}
    assert len(set(evidence)) > len(evidence) / 3
    assert len(summaries) >= 3 and len(normal_lungs) >= 3


def test_no_wording_reveals_the_report_or_labels(demo_run):
    result = annotate(demo_run, **{"teacher.error_rate": 1.0})
    leak = re.compile(r"\b(report|reported|label|labels|ground truth|reference)\b", re.IGNORECASE)
    for sid, trace in traces_of(result).items():
        think = json.dumps({k: trace[k] for k in ("perception", "reasoning", "reflection")})
        assert not leak.search(think), (sid, leak.search(think).group())


def test_cited_knowledge_exists(demo_run):
    from datakit.knowledge.kb import load_kb

    kb = load_kb()
    result = annotate(demo_run)
    for trace in traces_of(result).values():
        for step in trace["reasoning"]:
            assert all(k in kb for k in step["knowledge"])
            assert f"[K:{step['conclusion']}]" in step["inference"]


def test_tables_rewritten_upstream_are_not_used_silently(demo_run):
    import datakit.ingest
    from datakit.errors import RunDirError
    from tests.annotate.run_fixture import REPO

    annotate(demo_run)
    datakit.ingest.run(REPO / "examples/demo/mimic-cxr", demo_run,
                       load_config(overrides={"ingest.limit": 5, "ingest.images.max_size": 64}), replace=True)
    with pytest.raises(RunDirError) as err:
        annotate(demo_run)
    assert "studies.parquet changed after `datakit retrieve`" in str(err.value)
    assert "datakit retrieve" in err.value.hint
    import datakit.retrieve

    datakit.retrieve.run(demo_run, load_config())
    assert annotate(demo_run).counts["study_in"] == 5


def test_a_swallowed_impression_header_is_split_out_of_the_trace_report():
    from datakit.annotate import _split_swallowed

    assert _split_swallowed("IMPRESSION: Stable cardiomegaly.", "") == ("", "Stable cardiomegaly.")
    assert _split_swallowed("Clear lungs. IMPRESSION: Normal.", "") == ("Clear lungs.", "Normal.")
    assert _split_swallowed("Clear lungs.", "Normal.") == ("Clear lungs.", "Normal.")
    assert _split_swallowed("Impression of a nodule.", "") == ("Impression of a nodule.", "")

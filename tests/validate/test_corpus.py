"""The corpus of bad traces: each caught by the right check with the right code; the good ones pass."""

from __future__ import annotations

import polars as pl
import pytest

from datakit.config import ValidateConfig
from datakit.validate import validate
from datakit.validate.core import rejected
from tests.validate.bad_traces import CASES, GOOD
from tests.validate.builders import Corpus, KeywordLabeler

CHECKS = ["schema", "clinical", "evidence", "knowledge", "reflection", "leakage", "privacy", "form"]


def _corpus() -> Corpus:
    corpus = Corpus()
    for sid, _, _, kw in CASES:
        corpus.add(sid, **{k: v for k, v in kw.items() if k != "warning"})
    for sid, kw in GOOD:
        corpus.add(sid, **kw)
    return corpus


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    t = _corpus().tables()
    # diversity has its own corpus: these traces are variations of one trace on purpose; faithfulness has its
    # own too (test_faithfulness.py): several cases here spoil a trace against its report on purpose, for
    # another check to find
    return validate(
        t["traces"],
        t["studies"],
        t["images"],
        t["hits"],
        labeler=KeywordLabeler(),
        config=ValidateConfig(skip=["diversity", "faithfulness"]),
    )


def test_every_check_and_clinical_kind_has_a_case():
    assert {chk for _, chk, _, _ in CASES} >= set(CHECKS)
    clinical = {code for _, chk, code, _ in CASES if chk == "clinical"}
    assert clinical == {
        "report_contradicts_labels",
        "label_not_perceived",
        "label_not_concluded",
        "perceived_but_negative",
        "uncertain_but_negative",
        "status_mismatch",
        "conclusion_contradicts_label",
        "concluded_normal_but_abnormal",
    }
    evidence = {code for _, chk, code, _ in CASES if chk == "evidence"}
    assert evidence == {
        "evidence_contradicts_item",
        "evidence_side_mismatch",
        "evidence_mentions_unsupported_finding",
        "side_contradicts_report",
        "grade_contradicts_report",
    }


@pytest.mark.parametrize(
    ("study", "check", "code"), [(s, c, k) for s, c, k, _ in CASES], ids=[c[0] for c in CASES]
)
def test_bad_trace_is_caught_with_its_code(table, study, check, code):
    row = table.filter((pl.col("study_id") == study) & (pl.col("check") == check)).to_dicts()
    assert len(row) == 1
    assert row[0]["passed"] is False
    assert row[0]["code"] == code, row[0]["message"]
    assert row[0]["message"]


def test_errors_reject_and_warnings_only_flag(table):
    out = set(rejected(table)["study_id"].to_list())
    for sid, _, _, kw in CASES:
        if kw.get("warning"):
            assert sid not in out, f"{sid} should be flagged, not rejected"
            assert table.filter((pl.col("study_id") == sid) & ~pl.col("passed"))["severity"].to_list() == [
                "warning"
            ]
        else:
            assert sid in out, f"{sid} should be rejected"


@pytest.mark.parametrize("study", [g for g, _ in GOOD])
def test_good_traces_pass_every_check(table, study):
    rows = table.filter(pl.col("study_id") == study)
    assert rows["check"].to_list() == [*CHECKS, "priors"]
    failed = rows.filter(~pl.col("passed"))
    assert failed.height == 0, failed.to_dicts()
    assert set(rows["code"]) == {"ok"}


def test_one_row_per_study_and_check(table):
    assert table.height == table.select("study_id", "check").n_unique()
    invalid = {s for s, c, k, _ in CASES if k in ("invalid_json", "schema_violation")}
    judged_all = table.filter(pl.col("check") == "clinical")["study_id"].to_list()
    assert not invalid & set(judged_all)  # content checks judge only schema-valid traces
    assert set(table.filter(pl.col("check") == "schema")["study_id"]) >= invalid


def test_message_lists_every_problem_of_a_check(table):
    # the missed-finding case is also missing from the reasoning: both problems, one row, tagged by code
    row = table.filter((pl.col("study_id") == "r_after_vs_report") & (pl.col("check") == "clinical")).row(
        0, named=True
    )
    assert row["code"] == "label_not_perceived"
    assert "label_not_perceived: " in row["message"] and "label_not_concluded: " in row["message"]


def test_real_labeler_reads_the_report_the_same_way():
    corpus = Corpus()
    for sid, chk, code, kw in CASES:
        if chk == "clinical" and code == "report_contradicts_labels":
            corpus.add(sid, **kw)
    for sid, kw in GOOD[:2]:
        corpus.add(sid, **kw)
    t = corpus.tables()
    out = validate(
        t["traces"], t["studies"], t["images"], t["hits"], config=ValidateConfig(skip=["diversity"])
    )
    clinical = out.filter(pl.col("check") == "clinical")
    codes = dict(clinical.select("study_id", "code").iter_rows())
    assert codes == {
        "c_report_neg": "report_contradicts_labels",
        "c_report_normal": "report_contradicts_labels",
        "g_effusion": "ok",
        "g_normal": "ok",
    }
    neg = clinical.filter(pl.col("study_id") == "c_report_neg")["message"].item()
    assert "the report reads Pleural Effusion as negative, the labels say positive" in neg
    assert '"pleural effusion"' in neg.lower()  # the words the labeler read it from

def _with_label_text(t: dict, mode: str) -> pl.DataFrame:
    """The validation table of the corpus tables ``t`` with the labels read from ``mode`` text."""
    config = ValidateConfig(skip=["diversity"], label_text=mode)
    return validate(t["traces"], t["studies"], t["images"], t["hits"], labeler=KeywordLabeler(), config=config)



def test_impression_mode_also_holds_a_normal_label_against_a_positive_impression():
    from tests.validate.builders import NORMAL_LABELS, normal_trace

    corpus = Corpus()
    report = {"findings": "The lungs are clear.", "impression": "Mild cardiomegaly."}
    corpus.add("s1", normal_trace(), NORMAL_LABELS, report=report)
    t = corpus.tables()
    codes = {}
    for mode in ("report", "impression"):
        out = _with_label_text(t, mode)
        codes[mode] = out.filter(pl.col("check") == "clinical").row(0, named=True)
    assert codes["report"]["code"] == "ok"  # the labels may come from a part of the report
    assert codes["impression"]["code"] == "report_contradicts_labels"
    assert (
        codes["impression"]["message"]
        == "the study is labelled No Finding, the report reads positive: Cardiomegaly"
    )


@pytest.mark.parametrize("mode", ["report", "impression"])
def test_a_normal_label_allows_what_the_report_names_and_rejects_the_rest(mode):
    # CheXpert labels the impression: "no acute process" is labelled No Finding while the findings name
    # atelectasis, which the trace rightly perceives; a finding the report names nowhere is still rejected
    corpus = Corpus()
    for sid in ("g_normal_label_findings", "c_normal_study"):
        kw = dict(GOOD)[sid] if sid in dict(GOOD) else next(c[3] for c in CASES if c[0] == sid)
        corpus.add(sid, **kw)
    t = corpus.tables()
    out = _with_label_text(t, mode)
    clinical = dict(out.filter(pl.col("check") == "clinical").select("study_id", "code").iter_rows())
    assert clinical == {"g_normal_label_findings": "ok", "c_normal_study": "perceived_but_negative"}
    msg = out.filter((pl.col("study_id") == "c_normal_study") & (pl.col("check") == "clinical"))["message"]
    assert "the study is labelled No Finding and the report does not name it" in msg.item()

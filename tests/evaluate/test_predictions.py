"""Reading each input layout, matching by id, and counting what cannot be matched or read."""

import json

import polars as pl
import pytest

from datakit.evaluate.predictions import EvalInputError, read_pairs, report_after_think
from tests.evaluate.conftest import PREDICTIONS, REFERENCES, prediction_row, trl_row, write_jsonl, write_r2gen_csv


def test_datakit_predictions_with_a_trl_split_file(datakit_files):
    preds, refs = datakit_files
    pairs = read_pairs(preds, refs)
    assert pairs.layout == "datakit"
    assert pairs.ids == ["s1", "s2", "s3"]
    assert pairs.hyps[0] == PREDICTIONS["s1"]
    assert pairs.refs == [REFERENCES[k] for k in pairs.ids]  # the think block is gone
    assert pairs.predictions_without_reference == ["s5"]
    assert pairs.references_without_prediction == ["s4"]
    assert [(s["line"], s["reason"][:8]) for s in pairs.skipped] == [(5, "not JSON")]
    assert pairs.generation == [{"max_new_tokens": 512, "do_sample": False, "num_beams": 1}]


@pytest.mark.parametrize("tags", ["think", "thought", "reasoning_content", "none"])
def test_every_tag_style_of_the_export_gives_the_report(tmp_path, tags):
    refs = write_jsonl(tmp_path / "test.jsonl", [trl_row("s1", REFERENCES["s1"], tags)])
    preds = write_jsonl(tmp_path / "p.jsonl", [prediction_row("s1", PREDICTIONS["s1"])])
    assert read_pairs(preds, refs).refs == [REFERENCES["s1"]]


def test_report_after_think():
    assert report_after_think("<think>\na\n</think>\n\nFINDINGS: x") == "FINDINGS: x"
    assert report_after_think("FINDINGS: x") == "FINDINGS: x"


def test_bad_rows_and_duplicates_are_counted_not_dropped(tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl", [
        prediction_row("s1", "a"),
        prediction_row("s1", "b"),
        {"study_id": "s2", "report": None},
        {"report": "no id"},
        "[1, 2]",
    ])
    refs = write_jsonl(tmp_path / "test.jsonl", [trl_row("s1", "r"), trl_row("s2", "r"),
                                                  {"study_id": "s3", "messages": []}])
    pairs = read_pairs(preds, refs)
    assert pairs.hyps == ["a"]
    reasons = [s["reason"] for s in pairs.skipped]
    assert reasons[:4] == ["not a JSON object", "study s1: a second prediction (the first is scored)",
                           "study s2: report is not a string", "no study_id"]
    assert "study s3: no assistant message" in reasons[4]
    assert pairs.references_without_prediction == ["s2"]


def test_references_from_a_run_directory(tmp_path, ingested_run):
    studies = pl.read_parquet(ingested_run / "studies.parquet")
    test = studies.filter(pl.col("split") == "test").sort("study_id")
    row = test.row(0, named=True)
    preds = write_jsonl(tmp_path / "p.jsonl", [prediction_row(row["study_id"], "IMPRESSION: x"),
                                               prediction_row("nope", "y")])
    pairs = read_pairs(preds, ingested_run)
    assert pairs.ids == [row["study_id"]]
    parts = [f"{k.upper()}: {row[k].strip()}" for k in ("findings", "impression") if row[k]]
    assert pairs.refs == ["\n\n".join(parts)]
    # only the test split's other studies lack a prediction, not the whole run's
    assert sorted(pairs.references_without_prediction) == sorted(test["study_id"].to_list()[1:])
    assert pairs.predictions_without_reference == ["nope"]


def test_r2gen_csv_pair_by_row(tmp_path):
    res = ["the heart is normal . no effusion .", "small, left \"effusion\" ."]
    gts = ["the heart size is normal .", "small left pleural effusion .", "an extra row ."]
    write_r2gen_csv(tmp_path / "res.csv", res)
    write_r2gen_csv(tmp_path / "gts.csv", gts)
    for pairs in (read_pairs(tmp_path), read_pairs(tmp_path / "res.csv"), read_pairs(tmp_path / "res.csv",
                                                                                        tmp_path / "gts.csv")):
        assert pairs.layout == "r2gen-csv"
        assert pairs.ids == ["0", "1"]
        assert pairs.hyps == res and pairs.refs == gts[:2]
        assert pairs.references_without_prediction == ["2"]


def test_coco_json_as_r2gengpt_writes_it(tmp_path):
    result = tmp_path / "result"
    result.mkdir()
    (result / "test_result.json").write_text(json.dumps({"a1": ["heart normal ."], "a2": ["effusion ."]}))
    (result / "test_refs.json").write_text(json.dumps({"a1": ["heart normal ."], "a2": ["small effusion ."],
                                                       "a3": ["x", "y"]}))
    pairs = read_pairs(tmp_path)
    assert pairs.layout == "coco-json"
    assert pairs.ids == ["a1", "a2"] and pairs.refs == ["heart normal .", "small effusion ."]
    assert pairs.skipped[0]["reason"] == "id a3: a list of 2, not one report"
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"a1": "heart normal ."}))
    assert read_pairs(plain, result / "test_refs.json").hyps == ["heart normal ."]


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: d / "missing.jsonl", "does not exist"),
        (lambda d: (d / "p.txt").write_text("x") and d / "p.txt", "cannot tell the layout"),
        (lambda d: d, "is a folder without res.csv + gts.csv"),
        (lambda d: write_r2gen_csv(d / "preds.csv", ["a"]), "no references given"),
        (lambda d: write_jsonl(d / "p.jsonl", [{"id": 1, "text": "x"}]), "holds no object with study_id"),
    ],
)
def test_unreadable_inputs_say_what_was_expected(tmp_path, make, message):
    path = make(tmp_path)
    refs = write_jsonl(tmp_path / "test.jsonl", [trl_row("s1", "r")]) if path.suffix == ".jsonl" else None
    with pytest.raises(EvalInputError) as err:
        read_pairs(path, refs)
    assert message in str(err.value)
    assert err.value.hint


def test_a_file_that_is_not_utf8_is_an_error(tmp_path):
    (tmp_path / "res.csv").write_bytes("r\u00e9sum\u00e9\n".encode("latin-1"))
    write_r2gen_csv(tmp_path / "gts.csv", ["x"])
    with pytest.raises(EvalInputError, match="is not UTF-8 text"):
        read_pairs(tmp_path)


def test_no_match_at_all_is_an_error(tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl", [prediction_row("x1", "a")])
    refs = write_jsonl(tmp_path / "test.jsonl", [trl_row("s1", "r")])
    with pytest.raises(EvalInputError, match="no prediction in .* has a reference"):
        read_pairs(preds, refs)
    with pytest.raises(EvalInputError, match="unknown layout"):
        read_pairs(preds, refs, layout="nope")

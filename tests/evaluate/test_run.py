"""``datakit.evaluate.run`` and ``datakit eval`` end to end: values, conventions named, exit codes, messages."""

import json

import pytest
from typer.testing import CliRunner

import datakit.evaluate
from datakit.cli.app import app
from datakit.evaluate import nlg
from tests.evaluate.conftest import REFERENCES, prediction_row, trl_row, write_jsonl, write_r2gen_csv


@pytest.fixture
def runner():
    return CliRunner()


def test_identical_reports_score_perfectly(tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl", [prediction_row(k, v) for k, v in REFERENCES.items()])
    refs = write_jsonl(tmp_path / "test.jsonl", [trl_row(k, v) for k, v in REFERENCES.items()])
    s = datakit.evaluate.run(preds, refs, meteor=False).summary
    scores = s["nlg"]["scores"]
    for k in range(1, 5):
        assert scores[f"BLEU_{k}"] == pytest.approx(1.0, abs=1e-9)
    assert scores["ROUGE_L"] == 1.0
    assert scores["CIDEr"] == pytest.approx(10.0, abs=1e-9)  # every n-gram cosine is 1, times CIDEr's 10
    assert scores["METEOR"] is None and s["nlg"]["meteor"]["reason"] == "turned off (--no-meteor)"
    for conv in ("positive_only", "uncertain_as_positive"):
        block = s["clinical_efficacy"]["conventions"][conv]
        assert block["labels_14"]["micro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
        assert block["labels_5"]["example_accuracy"] == 1.0
    assert s["counts"] == {"scored": 4, "empty_predictions": 0, "predictions_without_reference": 0,
                           "references_without_prediction": 0, "unreadable_rows": 0}


def test_scores_are_pycocoevalcaps_on_the_cleaned_reports(datakit_files, tmp_path):
    pytest.importorskip("pycocoevalcap", reason="pycocoevalcap is in the test extra: pip install -e '.[test]'")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    preds, refs = datakit_files
    result = datakit.evaluate.run(preds, refs, meteor=False, per_example=True, out=tmp_path / "out" / "eval.json")
    pairs = result.pairs
    gts = {i: [nlg.clean_mimic_cxr(r)] for i, r in enumerate(pairs.refs)}
    res = {i: [nlg.clean_mimic_cxr(h)] for i, h in enumerate(pairs.hyps)}
    scores = result.summary["nlg"]["scores"]
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert [scores[f"BLEU_{k}"] for k in range(1, 5)] == pytest.approx(bleu, abs=1e-9)
    assert scores["ROUGE_L"] == pytest.approx(Rouge().compute_score(gts, res)[0], abs=1e-9)
    cider, cider_each = Cider().compute_score(gts, res)
    assert scores["CIDEr"] == pytest.approx(cider, abs=1e-9)
    each = result.summary["per_example"]
    assert [e["id"] for e in each] == pairs.ids
    assert [e["CIDEr"] for e in each] == pytest.approx(list(cider_each), abs=1e-9)
    assert [e["ROUGE_L"] for e in each] == pytest.approx(list(Rouge().compute_score(gts, res)[1]), abs=1e-9)
    written = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert written["nlg"]["scores"] == scores
    ce = written["clinical_efficacy"]["conventions"]
    # s3's reference has an uncertain atelectasis the prediction lacks: it counts only when uncertain is positive
    assert ce["positive_only"]["labels_14"]["per_label"]["Atelectasis"]["support"] == 0
    assert ce["uncertain_as_positive"]["labels_14"]["per_label"]["Atelectasis"]["support"] == 1


def test_cli_end_to_end(runner, datakit_files, tmp_path):
    preds, refs = datakit_files
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", str(preds), "--refs", str(refs), "--out", str(out), "--no-meteor",
                                 "--per-label"])
    assert result.exit_code == 0, result.output
    text = result.output
    for needle in ("Scored 3 reports (datakit layout)", "BLEU-4", "ROUGE-L", "CIDEr", "positive-only",
                   "uncertain-as-positive", "R2Gen compute_ce.py", "F1CheXbert", "Pleural Effusion",
                   "METEOR was not computed: turned off (--no-meteor)",
                   "1 prediction(s) without a reference, not scored (e.g. s5)",
                   "1 reference(s) without a prediction, not scored (e.g. s4)",
                   "1 unreadable row(s), not scored", "chexbert: not installed", "pip install f1chexbert",
                   "Generation: max_new_tokens=512, do_sample=False, num_beams=1"):
        assert needle in text, needle
    summary = json.loads(out.read_text())
    assert summary["counts"]["scored"] == 3
    assert set(summary["model_based"]) == {"chexbert", "radgraph", "green", "ratescore"}


def test_cli_says_why_meteor_is_missing_without_java(runner, datakit_files, tmp_path, monkeypatch):
    preds, refs = datakit_files
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH: no java
    result = runner.invoke(app, ["eval", str(preds), "--refs", str(refs), "--json"])
    assert result.exit_code == 0, result.output
    meteor = json.loads(result.output)["nlg"]["meteor"]
    assert meteor["computed"] is False and "no Java runtime" in meteor["reason"]
    assert "default-jre-headless" in meteor["install"]
    shown = runner.invoke(app, ["eval", str(preds), "--refs", str(refs)])
    assert "METEOR was not computed: no Java runtime" in shown.output
    assert "not computed" in shown.output.split("METEOR")[1]  # the table cell too


def test_cli_r2gen_folder(runner, tmp_path):
    write_r2gen_csv(tmp_path / "res.csv", ["the heart is normal .", "small left pleural effusion .", ""])
    write_r2gen_csv(tmp_path / "gts.csv", ["the heart size is normal .", "small left pleural effusion .", "x ."])
    result = runner.invoke(app, ["eval", str(tmp_path), "--no-meteor", "--clean", "none", "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.output)
    assert s["layout"] == "r2gen-csv" and s["counts"]["scored"] == 3 and s["counts"]["empty_predictions"] == 1
    assert s["references"] == str(tmp_path / "gts.csv")
    shown = runner.invoke(app, ["eval", str(tmp_path), "--no-meteor"])
    assert "1 prediction(s) with an empty report, scored as empty." in shown.output
    assert s["nlg"]["normalisation"].startswith("none")


@pytest.mark.parametrize(
    "args,code,message,hint",
    [
        (["--refs", "{missing}"], 1, "does not exist", "Hint: pass --refs an existing file"),
        ([], 1, "no references given", "Hint: pass --refs"),
        (["--refs", "{refs}", "--clean", "ptb"], 2, "unknown normalisation 'ptb'", "mimic_cxr, iu_xray, none"),
        (["--refs", "{refs}", "--labels-text", "all"], 2, "unknown --labels-text 'all'", "impression, report"),
        (["--refs", "{refs}", "--scorer", "bleurt"], 2, "unknown model-based scorer 'bleurt'",
         "chexbert, green, radgraph"),
    ],
)
def test_cli_errors(runner, datakit_files, tmp_path, args, code, message, hint):
    preds, refs = datakit_files
    args = [a.format(missing=tmp_path / "nope.jsonl", refs=refs) for a in args]
    result = runner.invoke(app, ["eval", str(preds), *args, "--no-meteor"])
    assert result.exit_code == code, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert hint in result.output


def test_score_lists_in_memory_as_r2gens_tester_keeps_them():
    from datakit.evaluate import pairs_from_lists, score
    from datakit.evaluate.predictions import EvalInputError

    test_res = ["the heart is normal .", "small left pleural effusion ."]
    test_gts = ["the heart size is normal .", "small left pleural effusion ."]
    s = score(pairs_from_lists(test_res, test_gts), meteor=False)
    assert s["layout"] == "lists" and s["counts"]["scored"] == 2
    # LCS 5 of 5 and 6 tokens for the first pair (P 1, R 5/6), the second pair identical
    first = 2.44 * (5 / 6) / (5 / 6 + 1.44)
    assert s["nlg"]["scores"]["ROUGE_L"] == pytest.approx((first + 1) / 2, abs=1e-12)
    with pytest.raises(EvalInputError, match="2 predictions but 1 references"):
        pairs_from_lists(test_res, test_gts[:1])


def test_a_scorer_of_your_own_in_the_plugin_slot(monkeypatch, datakit_files):
    from datakit.evaluate import plugins

    def length_ratio(hyps, refs):
        return {"length_ratio": sum(len(h.split()) for h in hyps) / sum(len(r.split()) for r in refs)}

    mine = plugins.Plugin("length_ratio", "json", "nothing to install", length_ratio, "words generated per word")
    monkeypatch.setitem(plugins.SCORERS._members, mine.name, mine)
    preds, refs = datakit_files
    s = datakit.evaluate.run(preds, refs, meteor=False, scorers=["length_ratio"]).summary
    entry = s["model_based"]["length_ratio"]
    assert entry["status"] == "computed" and 0 < entry["scores"]["length_ratio"] < 1.5
    assert s["model_based"]["chexbert"]["status"] == "not installed"
    # installed but not asked for: listed, not run
    s = datakit.evaluate.run(preds, refs, meteor=False).summary
    assert s["model_based"]["length_ratio"]["status"] == "installed, not requested"

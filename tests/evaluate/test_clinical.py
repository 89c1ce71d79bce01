"""Clinical efficacy: the label-matrix maths against scikit-learn, and both conventions on a crafted example."""

import numpy as np
import polars as pl
import pytest

from datakit.evaluate import clinical
from datakit.tables import LABEL_COLUMNS, LABELS, LABELS_5

P, N, U, B = 1, 0, -1, -2  # positive, negative, uncertain, blank (not mentioned)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_micro_macro_and_per_label_equal_sklearn(seed):
    sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn is in the test extra: pip install -e '.[test]'")
    rng = np.random.default_rng(seed)
    y_true = rng.random((40, 14)) < 0.3
    y_pred = rng.random((40, 14)) < 0.3
    y_true[:, 3] = False  # a label never positive in the references
    y_pred[:, 5] = False  # a label never predicted
    y_true[:, 7] = y_pred[:, 7] = False  # neither: every ratio is 0/0
    got = clinical.scores(y_true, y_pred, [str(i) for i in range(14)])
    for avg in ("micro", "macro"):
        p, r, f, _ = sk.precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)
        assert got[avg]["precision"] == pytest.approx(p, abs=1e-12)
        assert got[avg]["recall"] == pytest.approx(r, abs=1e-12)
        assert got[avg]["f1"] == pytest.approx(f, abs=1e-12)
    p, r, f, support = sk.precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    for i in range(14):
        row = got["per_label"][str(i)]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[i], r[i], f[i]), abs=1e-12)
        assert row["support"] == support[i]


def test_example_accuracy_equals_sklearn_subset_accuracy():
    sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn is in the test extra: pip install -e '.[test]'")
    rng = np.random.default_rng(7)
    y_true, y_pred = rng.random((50, 5)) < 0.2, rng.random((50, 5)) < 0.2
    assert clinical.example_accuracy(y_true, y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred))


def _codes(rows):
    """A (n, 14) code matrix from {label column: value} dicts; unnamed labels are blank."""
    return np.array([[row.get(c, B) for c in LABEL_COLUMNS] for row in rows])


def test_the_two_conventions_on_a_crafted_example():
    ref = _codes([
        {"cardiomegaly": P, "edema": U},
        {"pleural_effusion": P, "atelectasis": U},
        {"no_finding": P},
    ])
    hyp = _codes([
        {"cardiomegaly": P, "edema": P},
        {"pleural_effusion": U, "atelectasis": N},
        {"no_finding": P, "edema": N},
    ])
    ce = clinical.clinical_efficacy(hyp, ref)
    pos = ce["positive_only"]["labels_14"]
    # positive-only: references cardiomegaly, effusion, no finding; hypotheses cardiomegaly, edema, no finding
    assert pos["micro"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    assert pos["per_label"]["Edema"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 1}
    assert pos["per_label"]["Pleural Effusion"]["recall"] == 0.0
    unc = ce["uncertain_as_positive"]["labels_14"]
    # uncertain-as-positive: the uncertain edema and effusion count; atelectasis (ref -1, hyp 0) is missed
    assert unc["micro"]["precision"] == pytest.approx(4 / 4)
    assert unc["micro"]["recall"] == pytest.approx(4 / 5)
    assert unc["per_label"]["Edema"]["f1"] == 1.0
    assert unc["per_label"]["Atelectasis"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1,
                                               "predicted": 0}
    # macro over 14 divides by 14 labels, including the ones no report mentions (as sklearn does)
    assert unc["macro"]["f1"] == pytest.approx((1 + 1 + 1 + 1 + 0) / 14)
    # the 5-label subset and its exact match: example 1 agrees on all 5 under uncertain-as-positive only
    five = ce["uncertain_as_positive"]["labels_5"]
    assert list(five["per_label"]) == [LABELS[c] for c in LABELS_5]
    assert five["example_accuracy"] == pytest.approx(2 / 3)
    assert ce["positive_only"]["labels_5"]["example_accuracy"] == pytest.approx(1 / 3)
    assert "R2Gen" in ce["positive_only"]["description"] and "F1CheXbert" in ce["uncertain_as_positive"]["description"]


def test_label_codes_read_a_labelers_frame_with_nulls():
    frame = pl.DataFrame({c: [1, None] if c == "edema" else [None, -1] for c in LABEL_COLUMNS},
                         schema={c: pl.Int8 for c in LABEL_COLUMNS})
    codes = clinical.label_codes(frame)
    e = LABEL_COLUMNS.index("edema")
    assert codes[:, e].tolist() == [1, B]
    assert codes[1, 0] == U


def test_the_datakit_labeler_reads_impressions():
    from datakit.reading.labeler import default_labeler

    texts = [
        "FINDINGS: Heart size normal.\n\nIMPRESSION: Moderate left pleural effusion.",
        "FINDINGS: Possible small right effusion.",
        "no pneumothorax . mild cardiomegaly .",
    ]
    codes = clinical.label_texts(default_labeler(), [clinical.text_for_labels(t) for t in texts])
    eff, card, ptx = (LABEL_COLUMNS.index(c) for c in ("pleural_effusion", "cardiomegaly", "pneumothorax"))
    assert codes[0, eff] == P and codes[0, card] == B  # only the impression is read
    assert codes[1, eff] == U  # no impression: the findings
    assert codes[2, card] == P and codes[2, ptx] == N  # no headers: the whole text
    assert clinical.text_for_labels(texts[0], "report") == texts[0]

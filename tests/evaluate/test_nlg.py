"""BLEU, ROUGE-L and CIDEr: hand-computed values, and equality with pycocoevalcap on fixed pairs."""

import math

import pytest

from datakit.evaluate import nlg

# Fixed pairs, already normalised the way R2Gen feeds the scorers (lowercase, ' . ' between sentences)
HYPS = [
    "the heart is normal in size . no pleural effusion .",
    "there is a small left pleural effusion .",
    "lungs are clear",
    "",
    "no no no no pneumothorax . no pneumothorax .",
    "mild cardiomegaly with mild pulmonary edema . bibasilar atelectasis .",
]
REFS = [
    ["the heart size is normal . no effusion or pneumothorax ."],
    ["small left pleural effusion with adjacent atelectasis ."],
    ["the lungs are clear . no focal consolidation ."],
    ["no acute cardiopulmonary process ."],
    ["no pneumothorax ."],
    ["moderate cardiomegaly . mild pulmonary edema . no effusion ."],
]
# Several references per example: the COCO scorers' general case ('closest' length, max over references)
MULTI_REFS = [
    ["the heart size is normal .", "normal heart size . no pleural effusion .", "no effusion ."],
    ["small left effusion .", "there is a small left pleural effusion and atelectasis ."],
    ["lungs are clear .", "clear lungs"],
    ["no acute process .", "normal chest ."],
    ["no pneumothorax .", "no pneumothorax or effusion ."],
    ["cardiomegaly and edema .", "mild cardiomegaly . mild pulmonary edema . bibasilar atelectasis ."],
]
TOL = 1e-9


def test_bleu_and_rouge_by_hand():
    # hyp 4 tokens, ref 5: unigrams 4/4, bigrams 2/3 ("the heart", "is normal"), trigrams 0/2, 4-grams 0/1
    (b1, b2, b3, b4), _ = nlg.bleu(["the heart is normal"], [["the heart size is normal"]])
    bp = math.exp(1 - 5 / 4)  # brevity penalty, hypothesis shorter than the reference
    assert b1 == pytest.approx(1.0 * bp, abs=1e-9)
    assert b2 == pytest.approx(math.sqrt(2 / 3) * bp, abs=1e-9)
    # no matching trigram: only the 1e-15 smoothing keeps it above zero, as the COCO scorer does
    assert b3 == pytest.approx((2 / 3 * 1e-15 / 2) ** (1 / 3) * bp, rel=1e-6)
    assert 0 < b4 < b3
    # LCS 4: precision 4/4, recall 4/5, F with beta 1.2 = (1 + 1.44) * 1 * 0.8 / (0.8 + 1.44 * 1)
    score, _ = nlg.rouge_l(["the heart is normal"], [["the heart size is normal"]])
    assert score == pytest.approx(2.44 * 0.8 / 2.24, abs=1e-12)


def test_bleu_takes_the_closest_reference_length_and_clips_counts():
    # 'closest' of lengths 2 and 6 to a 5-token hypothesis is 6; "no" counts at most twice (its max in a reference)
    (b1, *_), _ = nlg.bleu(["no no no no effusion"], [["no effusion", "no effusion and no focal consolidation"]])
    assert b1 == pytest.approx(3 / 5 * math.exp(1 - 6 / 5), abs=1e-9)


def test_lcs_length():
    assert nlg.lcs_length("a b c d e".split(), "b d e f".split()) == 3
    assert nlg.lcs_length([], ["a"]) == 0


@pytest.mark.parametrize("refs", [REFS, MULTI_REFS], ids=["one-reference", "several-references"])
def test_equal_to_pycocoevalcap(refs):
    pytest.importorskip("pycocoevalcap", reason="pycocoevalcap is in the test extra: pip install -e '.[test]'")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: list(r) for i, r in enumerate(refs)}
    res = {i: [h] for i, h in enumerate(HYPS)}

    want, want_each = Bleu(4).compute_score(gts, res, verbose=0)
    got, got_each = nlg.bleu(HYPS, refs)
    assert max(abs(a - b) for a, b in zip(want, got, strict=True)) < TOL
    for k in range(4):
        assert max(abs(a - b) for a, b in zip(want_each[k], got_each[k], strict=True)) < TOL

    want, want_each = Rouge().compute_score(gts, res)
    got, got_each = nlg.rouge_l(HYPS, refs)
    assert abs(want - got) < TOL
    assert max(abs(a - b) for a, b in zip(want_each, got_each, strict=True)) < TOL

    want, want_each = Cider().compute_score(gts, res)
    got, got_each = nlg.cider(HYPS, refs)
    assert abs(want - got) < TOL
    assert max(abs(a - b) for a, b in zip(want_each, got_each, strict=True)) < TOL
    assert got > 0  # the example is not degenerate


def test_equal_to_pycocoevalcap_on_raw_text_too():
    """With normalisation off, text with capitals, punctuation and double spaces scores as pycocoevalcap's."""
    pytest.importorskip("pycocoevalcap", reason="pycocoevalcap is in the test extra: pip install -e '.[test]'")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    hyps = ["FINDINGS: Heart size is normal.  No effusion.", "IMPRESSION: Small left effusion."]
    refs = [["FINDINGS: The heart size is normal. No effusion."], ["IMPRESSION:  Small  left pleural effusion."]]
    gts, res = dict(enumerate(refs)), {i: [h] for i, h in enumerate(hyps)}
    assert max(abs(a - b) for a, b in zip(Bleu(4).compute_score(gts, res, verbose=0)[0], nlg.bleu(hyps, refs)[0],
                                          strict=True)) < TOL
    assert abs(Rouge().compute_score(gts, res)[0] - nlg.rouge_l(hyps, refs)[0]) < TOL
    assert abs(Cider().compute_score(gts, res)[0] - nlg.cider(hyps, refs)[0]) < TOL


def test_cider_of_a_single_example_is_zero():
    # one document: every n-gram's idf is log(1) - log(1) = 0, as in the COCO scorer
    assert nlg.cider(["no effusion ."], [["no effusion ."]])[0] == 0.0


@pytest.mark.parametrize(
    "raw,clean",
    [
        ("1. The heart is normal. 2. No effusion.", "the heart is normal . no effusion ."),
        ("Heart size is normal.. Lungs: clear!", "heart size is normal . lungs clear ."),
        ("AP/PA view; \"stable\" tube's tip (left)", "appa view stable tubes tip left ."),
        # R2Gen's class has the range ':'..'[' : < = > ? @ go too; digits and '-' stay
        ("a <b> = c @ d 3.5 cm, x-ray", "a b c d 35 cm x-ray ."),
        ("Line one\nline__two   end.", "line one linetwo end ."),  # '_' is in the class too
        ("", "."),
    ],
)
def test_r2gen_mimic_cleaner(raw, clean):
    assert nlg.clean_mimic_cxr(raw) == clean


def test_r2gen_iu_cleaner_splits_sentences_on_period_space_only():
    # no newline folding in the IU-Xray cleaner: ".\n" ends no sentence, its period is dropped as punctuation
    cleaned = nlg.clean_iu_xray("1. Heart normal.\nLungs clear. 2. No__effusion.")
    assert cleaned == "heart normal lungs clear . noeffusion ."
    assert nlg.clean_mimic_cxr("1. Heart normal.\nLungs clear.") == "heart normal . lungs clear ."


def test_cleaning_an_already_clean_report_changes_no_token():
    once = nlg.clean_mimic_cxr("The heart is normal. No pleural effusion or pneumothorax.")
    assert nlg.clean_mimic_cxr(once) == once

"""datakit.reading.priors: which sentences compare with a prior study, and the report without them; the
priors check and its summary count."""

from __future__ import annotations

import pytest

from datakit.reading.priors import prior_sentences, refers_to_prior, strip_priors

PRIOR = [
    "Stable cardiomediastinal silhouette.",
    "Unchanged small left pleural effusion.",
    "A small nodule is again seen in the right upper lobe.",
    "The left effusion has resolved.",
    "Compared with the prior radiograph, the heart size is normal.",
    "There is a small right effusion, unchanged from the prior study.",
    "Interval improvement in the left basilar opacity.",
    "New right pleural effusion since the last exam.",
    "The previously seen nodule is no longer visualized.",
    "Persistent right lower lobe opacity.",
    "Right pleural effusion is present and appears increased.",
    "The lungs remain clear.",
    "No significant change from the previous examination.",
    "Calcified granuloma is redemonstrated.",
]
NOT_PRIOR = [
    "No pneumothorax.",
    "The heart size is normal.",
    "Sequela of prior granulomatous disease.",
    "Status post prior CABG.",
    "There is increased opacity at the left base.",
    "Small left pleural effusion.",
    "Lungs are clear bilaterally.",
]


@pytest.mark.parametrize("sentence", PRIOR)
def test_comparisons_are_found(sentence):
    assert refers_to_prior(sentence)
    assert prior_sentences(f"No pneumothorax. {sentence} The trachea is midline.") == [sentence]


@pytest.mark.parametrize("sentence", NOT_PRIOR)
def test_sentences_without_a_comparison_are_not(sentence):
    assert not refers_to_prior(sentence)


@pytest.mark.parametrize(
    ("sentence", "becomes"),
    [
        ("Unchanged small left pleural effusion.", "Small left pleural effusion."),
        ("Persistent right lower lobe opacity.", "Right lower lobe opacity."),
        ("There is a small right effusion, unchanged from the prior study.", "There is a small right effusion."),
        ("Compared with the prior radiograph, the heart size is normal.", "The heart size is normal."),
        ("A small nodule is again seen in the right upper lobe.", "A small nodule is seen in the right upper lobe."),
        ("Mild cardiomegaly, stable.", "Mild cardiomegaly."),
        ("The lungs remain clear.", "The lungs are clear."),
        ("Right pleural effusion is present and appears increased.", "Right pleural effusion is present."),
        # the comparison is the statement: the sentence goes
        ("Stable cardiomediastinal silhouette.", ""),
        ("The left effusion has resolved.", ""),
        ("Interval improvement in the left basilar opacity.", ""),
        ("No significant change from the previous examination.", ""),
    ],
)
def test_strip_rewrites_or_drops(sentence, becomes):
    assert strip_priors(sentence) == becomes


def test_strip_keeps_the_rest_word_for_word():
    text = "FINDINGS: The heart is normal in size. The mediastinum is stable.\n\nNo pneumothorax. No effusion."
    out = strip_priors(text)
    assert out == "FINDINGS: The heart is normal in size.\n\nNo pneumothorax. No effusion."
    assert strip_priors("") == "" and prior_sentences("") == []
    assert prior_sentences(out) == []


def test_priors_check_flags_and_counts():
    import polars as pl

    from datakit.config import ValidateConfig
    from datakit.knowledge.kb import load_configured
    from datakit.validate import validate
    from datakit.validate.core import run_checks, summarize
    from tests.validate.builders import Corpus, KeywordLabeler, effusion_trace
    from tests.validate.faith_traces import EFFUSION_LABELS

    corpus = Corpus()
    corpus.add(
        "p1",
        effusion_trace(),
        EFFUSION_LABELS,
        report={
            "findings": "Unchanged small left pleural effusion. The heart size is normal. Stable mediastinum.",
            "impression": "Small left pleural effusion.",
        },
    )
    corpus.add("p2", effusion_trace(), EFFUSION_LABELS)
    t = corpus.tables()
    cfg = ValidateConfig(skip=["diversity", "faithfulness"])
    table = validate(t["traces"], t["studies"], t["images"], t["hits"], labeler=KeywordLabeler(), config=cfg)
    rows = {r["study_id"]: r for r in table.filter(pl.col("check") == "priors").to_dicts()}
    assert rows["p1"]["code"] == "report_refers_to_prior" and rows["p1"]["severity"] == "warning"
    assert rows["p1"]["message"].startswith("2 sentence(s)") and rows["p2"]["passed"]
    outcome = run_checks(
        t["traces"], t["studies"], t["images"], t["hits"], kb=load_configured(), labeler=KeywordLabeler(), config=cfg
    )
    assert summarize(outcome)["prior_references"] == {"traces": 1, "sentences": 2}

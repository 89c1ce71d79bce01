"""Report-level behaviour of the labeler: aggregation, No Finding, sections, layouts, many texts, lexicon."""

from __future__ import annotations

import pickle

import polars as pl
import pytest
import yaml

from datakit.errors import ConfigError, KnowledgeError
from datakit.ingest.sections import extract
from datakit.knowledge.kb import load_kb
from datakit.reading import labeler as labeler_module
from datakit.reading.labeler import SECTIONS, Labeler, label_studies
from datakit.reading.lexicon import default_lexicon_path, expand
from datakit.tables import LABEL_COLUMNS


@pytest.fixture(scope="module")
def labeler() -> Labeler:
    return Labeler()


def set_labels(labels: dict) -> dict:
    return {k: v for k, v in labels.items() if v is not None}


# A MIMIC-CXR-shaped report written for this test: hard-wrapped lines starting with one space, ___ for PHI.
MIMIC_LINES = [
    "                                FINAL REPORT",
    "EXAMINATION:  CHEST (PORTABLE AP)",
    "",
    "INDICATION:  ___-year-old woman with fever, evaluate for pneumonia.",
    "",
    "COMPARISON:  Chest radiograph from ___.",
    "",
    "FINDINGS:  The endotracheal tube terminates 4 cm above the carina.  A",
    "nasogastric tube courses below the diaphragm.  Heart size is top normal.",
    "There is a small left pleural effusion with adjacent opacity, which may",
    "reflect atelectasis, though pneumonia cannot be excluded.  No",
    "pneumothorax.",
    "",
    "IMPRESSION:  Small left pleural effusion and left basilar opacity, likely",
    "atelectasis; superimposed pneumonia cannot be excluded.  No pneumothorax.",
    "",
]
MIMIC_REPORT = "\n".join(" " + line for line in MIMIC_LINES)

# IU-Xray-shaped findings and impression written for this test: XXXX for de-identified words.
IU_FINDINGS = (
    "The heart is normal in size. The mediastinum is unremarkable. There are no XXXX of a pleural "
    "effusion. There is no evidence of pneumothorax. Calcified granuloma in the right upper lobe."
)
IU_IMPRESSION = "No acute cardiopulmonary disease. Normal chest x-XXXX."


# aggregation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("No effusion. Possible small effusion. Small left effusion.", 1),  # positive beats all
        ("No effusion. Cannot exclude a small effusion.", -1),  # uncertain beats negative
        ("Small effusion. No effusion on the right.", 1),
        ("No pleural effusion.", 0),
        ("The lungs are clear.", None),  # not mentioned stays None, never 0
    ],
)
def test_mentions_combine_positive_over_uncertain_over_negative(labeler, text, want):
    assert labeler.label(text)["pleural_effusion"] == want


def test_label_returns_the_14_columns_in_chexpert_order(labeler):
    assert list(labeler.label("No pneumothorax.")) == LABEL_COLUMNS


@pytest.mark.parametrize(
    ("text", "nf"),
    [
        ("No acute cardiopulmonary process.", 1),
        ("Comparison is made to the prior study.", 1),  # nothing mentioned: No Finding by the rule alone
        ("Endotracheal tube in place. No pneumothorax.", 1),  # support devices do not count
        ("Small left effusion. Otherwise normal chest.", None),  # a finding: None, not 0
        ("Possible pneumonia.", None),  # uncertain counts as a finding
        # "stable" compares with a prior and says nothing about the width: no mention, nothing blocks No Finding
        ("No effusion. Stable cardiomediastinal silhouette.", 1),
        ("Emphysema. No acute process.", None),  # an abnormality outside the 14 suppresses it
        ("No evidence of emphysema.", 1),  # ... but not when negated
        ("Mild degenerative changes of the spine. No acute process.", 1),  # incidental: left out on purpose
    ],
)
def test_no_finding_rule(labeler, text, nf):
    assert labeler.label(text)["no_finding"] == nf


@pytest.mark.parametrize("text", ["", None, "   \n ", "___", "XXXX XXXX.", " ___ \n ___"])
def test_empty_or_placeholder_only_text_gets_no_label(labeler, text):
    assert set_labels(labeler.label(text)) == {}


@pytest.mark.parametrize(
    ("text", "cardiomegaly"),
    [
        ("Mild CHF.", -1),
        ("Findings may represent heart failure.", -1),
        ("No CHF.", None),
        ("Heart size is normal. Mild CHF.", 0),  # the explicit statement wins
        ("Mild CHF. Moderate cardiomegaly.", 1),
        ("Congestive heart failure. Heart size is stable.", -1),
    ],
)
def test_heart_failure_adds_uncertain_cardiomegaly_only_when_heart_size_is_unsaid(
    labeler, text, cardiomegaly
):
    assert labeler.label(text)["cardiomegaly"] == cardiomegaly
    assert labeler.label(text)["edema"] in (1, -1, 0)


def test_explain_names_the_deciding_cue_and_points_into_the_original_text(labeler):
    text = "NO Pneumothorax.  Small LEFT effusion, XXXX atelectasis. Heart size is TOP normal."
    mentions = labeler.explain(text)
    for m in mentions:
        assert text[m.span[0] : m.span[1]] == m.phrase
    by_label = {m.label: m for m in mentions}
    assert (by_label["pneumothorax"].status, by_label["pneumothorax"].cue) == (0, "NO")
    assert (by_label["pleural_effusion"].status, by_label["pleural_effusion"].cue) == (1, None)
    assert (by_label["cardiomegaly"].phrase, by_label["cardiomegaly"].cue) == ("Heart size", "TOP normal")


def test_explain_keeps_spans_when_lowercasing_changes_length(labeler):
    text = "İİ No pleural effusion."  # "İ".lower() is two characters
    (m,) = labeler.explain(text)
    assert text[m.span[0] : m.span[1]] == "pleural effusion" and m.status == 0


def test_explain_lists_suppressors_and_the_heart_failure_rule(labeler):
    mentions = labeler.explain("Emphysema. Mild CHF.")
    assert [(m.label, m.status) for m in mentions] == [(None, 1), ("edema", 1), ("cardiomegaly", -1)]


# layouts and sections ---------------------------------------------------------------------------------------


def test_mimic_style_report_through_the_official_extraction(labeler):
    extracted = extract(MIMIC_REPORT)
    assert extracted.section == "impression"
    got = set_labels(labeler.label(extracted.text))
    assert got == {
        "pleural_effusion": 1,
        "lung_opacity": 1,
        "atelectasis": -1,
        "pneumonia": -1,
        "pneumothorax": 0,
    }
    whole = set_labels(labeler.label(MIMIC_REPORT))
    # the whole report also reads the indication ("evaluate for pneumonia"), the devices and the heart
    assert whole["support_devices"] == 1 and whole["cardiomegaly"] == 0 and whole["pneumonia"] == -1


def test_placeholders_never_become_mentions_or_cues(labeler):
    assert set_labels(labeler.label("___ ___ ___")) == {}
    # "x-XXXX" is x-ray; the XXXX of "no XXXX of" hides a word, not the negation
    assert labeler.label("There are no XXXX of a pleural effusion.")["pleural_effusion"] == 0
    assert labeler.label("Normal chest x-XXXX.")["no_finding"] == 1
    # a placeholder inside a word splits it; nothing is made of the pieces
    assert set_labels(labeler.label("Pneumo___thorax xxxxeffusion")) == {"no_finding": 1}


def studies_frame() -> pl.DataFrame:
    extracted = extract(MIMIC_REPORT)
    return pl.DataFrame(
        {
            "study_id": ["s1", "s2", "s3", "s4"],
            "findings": [extracted.findings, IU_FINDINGS, None, None],
            "impression": [extracted.impression, IU_IMPRESSION, "Mild cardiomegaly.", None],
            "extracted_text": [extracted.text, IU_IMPRESSION, "Mild cardiomegaly.", None],
            "report_text": [
                MIMIC_REPORT,
                f"FINDINGS: {IU_FINDINGS}\nIMPRESSION: {IU_IMPRESSION}",
                "IMPRESSION: Mild cardiomegaly.",
                "EXAMINATION: chest",
            ],
        }
    )


def test_label_studies_default_reads_the_extracted_text(labeler):
    out = label_studies(studies_frame(), labeler=labeler)
    assert out.columns == ["study_id", *LABEL_COLUMNS]
    assert all(out.schema[c] == pl.Int8 for c in LABEL_COLUMNS)
    rows = {
        r["study_id"]: set_labels({k: v for k, v in r.items() if k != "study_id"}) for r in out.to_dicts()
    }
    assert rows["s1"]["pneumonia"] == -1 and "support_devices" not in rows["s1"]
    assert rows["s2"] == {"no_finding": 1}
    assert rows["s3"] == {"cardiomegaly": 1}
    assert rows["s4"] == {}  # no text: no label at all


@pytest.mark.parametrize(
    ("sections", "s1", "s2"),
    [
        ("impression", {"support_devices": None, "pneumonia": -1}, {"no_finding": 1, "cardiomegaly": None}),
        (
            "findings",
            {"support_devices": 1, "cardiomegaly": 0},
            {"cardiomegaly": 0, "pleural_effusion": 0, "no_finding": None},
        ),
        (
            "findings+impression",
            {"support_devices": 1, "pneumonia": -1},
            {"cardiomegaly": 0, "pneumothorax": 0},
        ),
        ("report", {"support_devices": 1}, {"enlarged_cardiomediastinum": 0}),
    ],
)
def test_label_studies_sections_option(labeler, sections, s1, s2):
    out = label_studies(studies_frame(), sections=sections, labeler=labeler).to_dicts()
    for key, want in s1.items():
        assert out[0][key] == want, (sections, key)
    for key, want in s2.items():
        assert out[1][key] == want, (sections, key)
    if sections == "findings":
        assert set_labels(out[2]) == {"study_id": "s3"}  # no findings section: nothing to label
    if sections == "findings+impression":
        assert out[2]["cardiomegaly"] == 1  # the impression alone when findings are missing


def test_iu_granuloma_suppresses_no_finding_when_findings_are_read(labeler):
    out = label_studies(studies_frame(), sections="findings", labeler=labeler).to_dicts()
    assert out[1]["no_finding"] is None and out[1]["lung_lesion"] is None


def test_unknown_sections_option_is_a_config_error(labeler):
    with pytest.raises(ConfigError, match="unknown labeler sections option 'summary'") as err:
        label_studies(studies_frame(), sections="summary", labeler=labeler)
    assert all(name in err.value.hint for name in SECTIONS)


# many texts -------------------------------------------------------------------------------------------------


TEXTS = [
    "No pneumothorax.",
    "Small left effusion, likely atelectasis.",
    None,
    "",
    "Heart size is normal.",
    "Mild CHF.",
    "ET tube 4 cm above the carina. No acute process.",
    "Cannot exclude pneumonia.",
]


def expected_frame(labeler: Labeler, texts: list) -> pl.DataFrame:
    return pl.DataFrame([labeler.label(t) for t in texts], schema={c: pl.Int8 for c in LABEL_COLUMNS})


def test_label_many_in_process_matches_label(labeler):
    got = labeler.label_many(TEXTS)
    assert got.schema == {c: pl.Int8 for c in LABEL_COLUMNS}
    assert got.equals(expected_frame(labeler, TEXTS))
    assert got.row(2) == (None,) * 14  # a missing text


def test_label_many_of_nothing_has_the_columns(labeler):
    got = labeler.label_many([])
    assert got.height == 0 and got.columns == LABEL_COLUMNS


def test_label_many_process_pool_matches_in_process(labeler, monkeypatch):
    monkeypatch.setattr(labeler_module, "CHUNK", 5)  # several chunks, so the pool really splits the work
    texts = TEXTS * 3
    got = labeler.label_many(texts, workers=2)
    assert got.equals(expected_frame(labeler, texts))


def test_labeler_pickles(labeler):
    again = pickle.loads(pickle.dumps(labeler))
    assert [again.label(t) for t in TEXTS] == [labeler.label(t) for t in TEXTS]


# the lexicon and the knowledge base -------------------------------------------------------------------------


def test_expand_choices():
    assert expand("{is |are |}absent") == ["is absent", "are absent", "absent"]
    assert expand("Top-Normal") == ["top normal"]
    with pytest.raises(ValueError, match="expands to"):
        expand("{a|b|c|d|e|f|g}" * 5)


def lexicon_copy(tmp_path, change) -> str:
    doc = yaml.safe_load(default_lexicon_path().read_text(encoding="utf-8"))
    change(doc)
    path = tmp_path / "lexicon.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return str(path)


def test_a_user_lexicon_changes_behaviour(tmp_path, labeler):
    def likely_is_positive(doc):
        doc["cues"]["uncertainty"]["pre"] = [
            c for c in doc["cues"]["uncertainty"]["pre"] if c not in ("likely", "{most|more|less} likely")
        ]

    custom = Labeler(lexicon_path=lexicon_copy(tmp_path, likely_is_positive))
    assert labeler.label("Left basal opacity, likely atelectasis.")["atelectasis"] == -1
    assert custom.label("Left basal opacity, likely atelectasis.")["atelectasis"] == 1
    assert custom.fingerprint != labeler.fingerprint


def test_lexicon_schema_errors_name_the_field(tmp_path):
    path = lexicon_copy(tmp_path, lambda doc: doc["cues"]["negation"].update(sideways=["no"]))
    with pytest.raises(KnowledgeError, match=r"field 'cues\.negation\.sideways': is not a known field"):
        Labeler(lexicon_path=path)
    path = lexicon_copy(tmp_path, lambda doc: doc["windows"].update(pre="eight"))
    # the one wording of every YAML-with-schema file: file, field, what is wrong
    with pytest.raises(KnowledgeError, match=r"lexicon\.yaml, field 'windows\.pre': should be a whole number, "
                                             r"got str 'eight'"):
        Labeler(lexicon_path=path)


def test_a_cue_with_two_roles_is_refused(tmp_path):
    path = lexicon_copy(tmp_path, lambda doc: doc["cues"]["uncertainty"]["pre"].append("without"))
    with pytest.raises(
        KnowledgeError, match="cue 'without' is in both cues.negation.pre and cues.uncertainty.pre"
    ):
        Labeler(lexicon_path=path)


def test_unknown_suppressor_entry_and_missing_file_are_refused(tmp_path):
    path = lexicon_copy(tmp_path, lambda doc: doc["no_finding"]["suppressor_entries"].append("unicorn"))
    with pytest.raises(KnowledgeError, match="'unicorn', which the knowledge base lacks"):
        Labeler(lexicon_path=path)
    with pytest.raises(KnowledgeError, match="does not exist"):
        Labeler(lexicon_path=tmp_path / "nope.yaml")


def test_mention_phrases_come_from_the_knowledge_base(tmp_path, labeler):
    folder = tmp_path / "myknowledge"
    (folder / "findings").mkdir(parents=True)
    entry = yaml.safe_load((default_lexicon_path().parents[1] / "findings" / "pneumothorax.yaml").read_text())
    entry.update(id="apical_air_sign", name="Apical air crescent", synonyms=["apical air crescent"])
    (folder / "findings" / "apical_air_sign.yaml").write_text(yaml.safe_dump(entry), encoding="utf-8")
    extended = Labeler(kb=load_kb([folder]))
    text = "Small apical air crescent on the left."
    assert labeler.label(text)["pneumothorax"] is None
    assert extended.label(text)["pneumothorax"] == 1
    assert extended.label("No apical air crescent.")["pneumothorax"] == 0

"""The MIMIC-CXR section parser must agree with the official one (mimic-cxr txt/section_parser.py), quirks included."""

import pytest

from datakit.ingest.sections import CustomRules, extract, normalize_section_name, split_sections


def R(*lines: str) -> str:
    """A report in MIMIC's layout: every line starts with one space."""
    return "\n".join(lines) + "\n"


STANDARD = R(
    "                                 FINAL REPORT",
    " EXAMINATION:  CHEST (PA AND LAT)",
    " ",
    " INDICATION:  ___F with cough",
    " ",
    " COMPARISON:  ___",
    " ",
    " FINDINGS: ",
    " ",
    " No focal consolidation.  Heart size is normal.",
    " ",
    " IMPRESSION: ",
    " ",
    " No acute cardiopulmonary process.",
)


def test_standard_report_sections_and_offsets():
    s = split_sections(STANDARD)
    assert s.names == ["preamble", "examination", "indication", "comparison", "findings", "impression"]
    assert s.texts[0] == "                                 FINAL REPORT\n "
    # each section's text starts right after "NAME:" and one whitespace character
    for _name, text, start in zip(s.names[1:], s.texts[1:], s.starts[1:], strict=False):
        assert STANDARD[start:].startswith(text)
    ex = extract(STANDARD)
    assert ex.section == "impression"
    assert ex.text == "No acute cardiopulmonary process."
    assert ex.findings == "No focal consolidation.  Heart size is normal."
    assert ex.indication == "___F with cough"
    assert ex.comparison == "___"


def test_header_on_first_line_is_not_a_header():
    text = R(" FINDINGS:  Lungs are clear.", " ", " IMPRESSION:  Normal chest.")
    s = split_sections(text)
    assert s.names == ["preamble", "impression"]
    assert s.texts[0] == " FINDINGS:  Lungs are clear.\n \n "
    assert extract(text).findings is None


def test_no_headers_at_all_is_full_report_and_last_paragraph():
    text = R(" Chest radiograph.", " ", " The lungs are clear.", " ", " No effusion.")
    s = split_sections(text)
    assert s.names == ["full report", "last_paragraph"]
    assert s.texts == [" Chest radiograph.", " The lungs are clear.\n \n No effusion.\n"]
    assert s.starts == [0, len(" Chest radiograph.")]
    ex = extract(text)
    assert (ex.section, ex.text) == ("last_paragraph", "The lungs are clear.\n \n No effusion.")


def test_no_headers_and_no_blank_line_has_nothing_to_extract():
    ex = extract(R(" The lungs are clear."))
    assert ex.section is None and ex.text == ""


def test_addendum_at_the_top_separated_by_underscores():
    text = R(
        " ADDENDUM:  Findings were discussed with Dr. ___ at ___.",
        " " + "_" * 78,
        "                                 FINAL REPORT",
        " INDICATION:  Dyspnea.",
        " ",
        " IMPRESSION:  Small left effusion.",
    )
    s = split_sections(text)
    # the addendum sits on line 1, so it is part of the preamble, as in the official parser
    assert s.names == ["preamble", "indication", "impression"]
    assert "ADDENDUM" in s.texts[0]
    assert extract(text).text == "Small left effusion."


def test_addendum_after_the_report_is_its_own_section():
    text = R(" FINAL REPORT", " IMPRESSION:  Edema.", " ", " ADDENDUM:  Reviewed with attending.")
    assert split_sections(text).names == ["preamble", "impression", "addendum"]


def test_title_only_header_is_dropped_and_view_titles_are_findings():
    text = R(
        " CHEST, PA AND LATERAL:",
        " ",
        " INDICATION:  Cough.",
        " ",
        " CHEST, PA AND LATERAL:  The lungs are clear.",
    )
    s = split_sections(text)
    # first title is on line 1 (preamble); the second is a view title → findings with text
    assert s.names == ["preamble", "indication", "findings"]
    assert extract(text).text == "The lungs are clear."


def test_empty_title_header_between_sections_is_dropped():
    text = R(" FINAL REPORT", " PORTABLE CHEST:", " INDICATION:  Line placement.", " ", " IMPRESSION:  Line ok.")
    s = split_sections(text)
    # "PORTABLE CHEST:" is followed by a newline, which the header's trailing \s consumes; the search resumes at
    # the next newline, so INDICATION on the very next line is swallowed into the findings-like title section.
    assert s.names == ["preamble", "findings", "impression"]
    assert s.texts[1].startswith(" INDICATION:  Line placement.")


def test_findings_header_swallows_a_header_on_the_next_line():
    text = R(" FINAL REPORT", " FINDINGS:", " IMPRESSION:  Stable cardiomegaly.", " ", " NOTIFICATION:  None.")
    s = split_sections(text)
    assert s.names == ["preamble", "findings", "notification"]
    assert s.texts[1] == " IMPRESSION:  Stable cardiomegaly.\n "
    ex = extract(text)
    assert ex.impression is None
    assert (ex.section, ex.text) == ("findings", "IMPRESSION:  Stable cardiomegaly.")


def test_empty_findings_and_impression_are_dropped():
    text = R(" FINAL REPORT", " INDICATION:  Pain.", " ", " FINDINGS:  ", " ", " IMPRESSION:  ", " ")
    s = split_sections(text)
    # both are dropped; the blank lines were theirs, so the indication has none and no last_paragraph is cut
    assert s.names == ["preamble", "indication"]
    ex = extract(text)
    assert ex.section is None and ex.text == ""


def test_numbered_impressions_are_kept_whole():
    text = R(
        " FINAL REPORT",
        " IMPRESSION: ",
        " ",
        " 1.  Moderate right pleural effusion.",
        " 2.  No pneumothorax.",
        " 3.  Endotracheal tube 4 cm above the carina.",
    )
    ex = extract(text)
    assert ex.text.splitlines()[0] == "1.  Moderate right pleural effusion."
    assert len(ex.text.splitlines()) == 3


def test_last_occurrence_wins():
    text = R(" FINAL REPORT", " IMPRESSION:  First.", " ", " IMPRESSION:  Second.")
    assert extract(text).text == "Second."


def test_comparison_is_the_last_resort():
    text = R(" FINAL REPORT", " COMPARISON:  Compared to ___, the effusion is smaller.")
    ex = extract(text)
    assert (ex.section, ex.text) == ("comparison", "Compared to ___, the effusion is smaller.")


def test_lowercase_and_digit_headers_are_not_headers():
    text = R(" FINAL REPORT", " Impression:  Normal.", " 1. FINDINGS:  none")
    assert split_sections(text).names == ["full report"]


@pytest.mark.parametrize(
    "raw, name",
    [
        ("IMPRESSON", "impression"),
        ("FINDNGS", "findings"),
        ("NDICATION", "impression"),  # the official table's quirk
        ("CONCUSION", "conclusion"),  # mapped to "conclusion", never on to impression
        ("CONCLUSION", "impression"),
        ("COMPARISONS", "comparison"),
        ("REASON FOR EXAM", "indication"),
        ("CLINICAL HISTORY", "history"),
        ("PFI", "history"),
        ("RECOMMENDATION(S)", "recommendations"),
        ("WETREAD", "wet read"),
        ("FINAL IMPRESSION", "impression"),  # contains a main name
        ("PRELIMINARY FINDINGS", "findings"),
        ("ADDENDUM #1", "addendum"),
        ("CHEST, PA AND LATERAL", "findings"),
        ("PA VIEW", "findings"),
        ("BONE WINDOW", "findings"),
        ("TECHNIQUE", "technique"),
        ("SOMETHING ELSE", "something else"),
    ],
)
def test_name_normalisation(raw, name):
    assert normalize_section_name(raw) == name


def test_custom_span_rule_applies_to_raw_text_unstripped():
    rules = CustomRules.load()
    assert rules.span_by_study["s50196495"] == (59, 399)
    text = "x" * 59 + " The span.  " + "y" * 400
    ex = extract(text, "s50196495", rules)
    assert ex.section == "custom_span"
    assert ex.text == text[59:399]


def test_custom_empty_span_means_no_text():
    ex = extract(R(" FINAL REPORT", " IMPRESSION:  Something."), "s58235663", CustomRules.load())
    assert ex.section == "custom_span" and ex.text == ""


def test_custom_section_rule_uses_last_occurrence_of_that_section():
    text = R(
        " FINAL REPORT",
        " EXAMINATION:  old",
        " ",
        " IMPRESSION:  ignored for this study",
        " ",
        " EXAMINATION:  Chest radiograph shows no acute process.",
    )
    ex = extract(text, "s59363654", CustomRules.load())
    assert (ex.section, ex.text) == ("examination", "Chest radiograph shows no acute process.")


def test_custom_section_rule_falls_back_when_the_section_is_absent():
    # the official script would crash here; datakit uses the usual priority instead
    ex = extract(R(" FINAL REPORT", " IMPRESSION:  Clear."), "s59363654", CustomRules.load())
    assert (ex.section, ex.text) == ("impression", "Clear.")


def test_rules_file_has_the_official_counts():
    rules = CustomRules.load()
    assert len(rules.section_by_study) == 23
    assert len(rules.span_by_study) == 31
    assert sum(1 for v in rules.span_by_study.values() if v == (0, 0)) == 8

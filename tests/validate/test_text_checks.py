"""The text-level pieces: identifiers vs placeholders and measurements, phrase lists, English."""

from __future__ import annotations

import re

import polars as pl
import pytest

from datakit.validate.checks.leakage import phrase_regex
from datakit.validate.checks.privacy import PREFILTER, find_phi
from datakit.validate.context import ascii_boundaries


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Seen on 03/14/2021 and 2019-07-04.", [("phi_date", "03/14/2021"), ("phi_date", "2019-07-04")]),
        ("Compared with the study of March 3rd, 2019.", [("phi_date", "March 3rd, 2019")]),
        ("Imaged on 14 Feb 2020.", [("phi_date", "14 Feb 2020")]),
        ("Called at 10:45 a.m. and again at 4 pm.", [("phi_time", "10:45 a.m."), ("phi_time", "4 pm")]),
        ("Paged at 1430 hours.", [("phi_time", "1430 hours")]),
        (
            "Call (617) 555-0123 or pager 4412.",
            [("phi_phone", "(617) 555-0123"), ("phi_phone", "pager 4412")],
        ),
        ("MRN: 00123456 noted.", [("phi_record_number", "MRN: 00123456")]),
        ("Accession 8812345.", [("phi_record_number", "Accession 8812345")]),
        ("Dr. Smith and Mrs O'Brien were told.", [("phi_name", "Dr. Smith"), ("phi_name", "Mrs O'Brien")]),
    ],
)
def test_identifiers_are_found(text, expected):
    assert find_phi(text) == expected
    assert re.search(PREFILTER, text)  # the polars pre-filter lets it through
    assert pl.Series([text]).str.contains(ascii_boundaries(PREFILTER)).item()


@pytest.mark.parametrize(
    "text",
    [
        "Findings were discussed with Dr. ___ on ___ by telephone.",
        "Dr. XXXX was notified. XXXX-year-old with cough.",
        "A 4 cm mass and a 2.5 mm nodule; 1.2 x 3.4 cm opacity.",
        "Compression deformity of T7 and a fracture of the 5th rib; C5-C6 fusion.",
        "The tip is 3.5 cm above the carina at the level of T4-5.",
        "Ratio 1:2, heart 14 cm, 2 views, 100% oxygen, 0.5 cm.",
        "This may be 2 separate opacities. May represent atelectasis.",
        "No pneumothorax. MS and DR imaging.",
    ],
)
def test_placeholders_and_measurements_are_not_identifiers(text):
    assert find_phi(text) == []


def test_phrase_regex_is_case_and_space_insensitive_on_word_boundaries():
    rx = phrase_regex(["the report states", "ground-truth", "the radiologist's report"])
    assert rx is not None
    for text in ("As THE REPORT\n states", "a ground-truth label", "per the radiologist's report"):
        assert re.search(rx, text)
        assert pl.Series([text]).str.contains(rx).item()
    for text in ("the reports statement", "underground-truthful"):
        assert not re.search(rx, text)
    assert phrase_regex([]) is None and phrase_regex(["  "]) is None

"""A corpus of deliberately bad traces: at least one per check and per kind of clinical disagreement.

Each case is (study id, expected check, expected code, what Corpus.add gets). Error cases must be rejected;
warning cases must be flagged and still pass. Most start from the good effusion trace of builders.py and spoil
one thing.
"""

from __future__ import annotations

from typing import Any

from tests.validate.builders import (
    EFFUSION_LABELS,
    NORMAL_LABELS,
    NORMALS,
    effusion_trace,
    item,
    labels,
    normal_trace,
    spoil,
    state,
)

E = effusion_trace


def _pleura(t: dict) -> dict:
    return next(i for i in t["perception"] if i["finding"] == "pleural_effusion")


def _heart(t: dict) -> dict:
    return next(i for i in t["perception"] if i["finding"] == "cardiomegaly")


def _set(path: list, value: Any):
    def fn(t):
        node = t
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return fn


def _lateral_fix(before: dict, after: dict, kind: str = "laterality", note: str | None = None):
    def fn(t):
        t["reflection"]["corrections"].append(
            {
                "kind": kind,
                "finding": "pleural_effusion",
                "before": before,
                "after": after,
                "note": note or "Checking the side markers on both views: it is on the left, not the right.",
            }
        )

    return fn


def _draft_right(t):
    _pleura(t)["laterality"] = "right"


def _no_effusion_item(t):
    t["perception"][2] = item("pleura", "normal", "present", NORMALS["pleura"])


def _german(t):
    for i in t["perception"]:
        i["evidence"] = (
            "Die Lunge ist frei, kein Erguss und keine Verschattung, das Herz ist nicht vergrößert."
        )
    for s in t["reasoning"]:
        s["observation"] = "Die Lunge ist frei und das Herz ist normal groß"
        s["inference"] = (
            "Es gibt keinen Hinweis auf eine akute Erkrankung, der Befund ist unauffällig [K:no_finding]."
        )
    t["reflection"]["checked"] = ["die Lunge und die Pleura auf beiden Seiten"]
    t["reflection"]["summary"] = "Die zweite Durchsicht bestätigt den ersten Befund."


def _short(t):
    t["perception"] = [item("lungs", "normal", "present", "Clear.")]
    t["reasoning"] = [
        {
            "observation": "Clear",
            "inference": "Normal [K:no_finding].",
            "knowledge": ["no_finding"],
            "conclusion": "no_finding",
            "status": "present",
        }
    ]
    t["reflection"] = {"checked": ["lungs"], "corrections": [], "summary": "Same."}


def _two_edits(t):
    _lateral_fix(state("present", "left", "small"), state("present", "right", "small"))(t)
    _lateral_fix(
        state("present", "left", "small"),
        state("present", "left", "moderate"),
        kind="severity",
        note="Measured against the hemithorax the effusion is moderate.",
    )(t)


def _pacemaker(t):
    """A left pacemaker whose leads sit in the right heart: the right side is anatomy, not the finding's."""
    lines = next(i for i, x in enumerate(t["perception"]) if x["region"] == "lines_devices")
    t["perception"][lines] = item(
        "lines_devices",
        "pacemaker",
        "present",
        "Left-sided pacemaker with leads in the right atrium and right ventricle.",
        "left",
    )
    t["reasoning"].append(
        {
            "observation": "A generator over the left chest with two leads",
            "inference": "A generator with leads ending in the heart is a cardiac pacemaker [K:pacemaker].",
            "knowledge": ["pacemaker"],
            "conclusion": "pacemaker",
            "status": "present",
        }
    )


def _effusions(right: tuple[str, str], left: tuple[str, str]):
    """Two pleural effusion items, right and left, each with (severity, evidence)."""

    def fn(t):
        pleura = _pleura(t)
        pleura.update(severity=left[0], evidence=left[1])
        t["perception"].insert(
            t["perception"].index(pleura),
            item("pleura", "pleural_effusion", "present", right[1], "right", right[0]),
        )

    return fn


_NO_RIGHT = "No right effusion; small left effusion."
_BILATERAL = {
    "findings": "There are small bilateral pleural effusions. The heart size is normal.",
    "impression": "Small bilateral pleural effusions.",
}
_TWO_SIDES = {
    "findings": "Small right and moderate left pleural effusions. The heart size is normal.",
    "impression": "Small right and moderate left pleural effusions.",
}


def _atelectasis(t):
    t["perception"][1] = item(
        "lungs", "atelectasis", "present", "Mild bibasilar atelectasis.", "bilateral", "mild"
    )
    t["reasoning"][0] = {
        "observation": "Linear opacities at both lung bases",
        "inference": "Thin linear bands at the bases are subsegmental atelectasis [K:atelectasis].",
        "knowledge": ["atelectasis"],
        "conclusion": "atelectasis",
        "status": "present",
    }


# Labelled No Finding (labels come from the impression), with atelectasis named in the findings only
_NORMAL_WITH_ATELECTASIS = {
    **spoil(normal_trace(), _atelectasis),
    "report": {
        "findings": "Mild bibasilar atelectasis. The heart size is normal. No pleural effusion.",
        "impression": "No acute cardiopulmonary process.",
    },
}

_LEAK = "As the report states, there is a small left pleural effusion blunting the costophrenic angle."
_COPIED_REPORT = {
    "findings": "There is a small left pleural effusion layering posteriorly on the lateral view. "
    "The heart size is normal.",
    "impression": "Small left pleural effusion.",
}

# (study id, check, code, add kwargs)
CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    # 1 schema
    ("b_json", "schema", "invalid_json", {"trace": '{"perception": [', "lab": EFFUSION_LABELS}),
    (
        "b_enum",
        "schema",
        "schema_violation",
        {"trace": spoil(E(), lambda t: _pleura(t).update(status="maybe")), "lab": EFFUSION_LABELS},
    ),
    (
        "b_extra_key",
        "schema",
        "schema_violation",
        {"trace": spoil(E(), _set(["confidence"], 0.9)), "lab": EFFUSION_LABELS},
    ),
    (
        "b_table_row",
        "schema",
        "table_row_invalid",
        {"trace": E(), "lab": EFFUSION_LABELS, "n_images": 1, "trace_images": 0},
    ),
    (
        "b_unknown_study",
        "schema",
        "unknown_study",
        {"trace": E(), "lab": EFFUSION_LABELS, "in_studies": False},
    ),
    # 2 clinical: one case per kind of disagreement
    (
        "c_report_neg",
        "clinical",
        "report_contradicts_labels",
        {
            "trace": E(),
            "lab": EFFUSION_LABELS,
            "report": {"findings": "The heart size is normal.", "impression": "No pleural effusion."},
        },
    ),
    (
        "c_report_normal",
        "clinical",
        "report_contradicts_labels",
        {
            "trace": E(),
            "lab": EFFUSION_LABELS,
            "report": {
                "findings": "The heart size is normal.",
                "impression": "No acute cardiopulmonary process.",
            },
        },
    ),
    (
        "c_not_perceived",
        "clinical",
        "label_not_perceived",
        {"trace": spoil(E(), _no_effusion_item), "lab": EFFUSION_LABELS},
    ),
    (
        "c_not_concluded",
        "clinical",
        "label_not_concluded",
        {"trace": spoil(E(), lambda t: t["reasoning"].pop(0)), "lab": EFFUSION_LABELS},
    ),
    (
        "c_perceived_negative",
        "clinical",
        "perceived_but_negative",
        {
            "trace": spoil(
                E(), lambda t: _heart(t).update(status="present", evidence="The heart is enlarged.")
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "c_concluded_negative",
        "clinical",
        "conclusion_contradicts_label",
        {"trace": spoil(E(), _set(["reasoning", 1, "status"], "present")), "lab": EFFUSION_LABELS},
    ),
    (
        "c_concluded_normal",
        "clinical",
        "concluded_normal_but_abnormal",
        {
            "trace": spoil(
                E(),
                lambda t: t["reasoning"].append(
                    {
                        "observation": "Nothing else",
                        "inference": "No acute abnormality [K:no_finding].",
                        "knowledge": ["no_finding"],
                        "conclusion": "no_finding",
                        "status": "present",
                    }
                ),
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "c_normal_study",
        "clinical",
        "perceived_but_negative",
        {
            "trace": spoil(
                normal_trace(),
                lambda t: t["perception"].__setitem__(
                    1,
                    item(
                        "lungs",
                        "consolidation",
                        "present",
                        "Dense opacity in the right lower zone with air bronchograms.",
                        "right",
                    ),
                ),
            ),
            "lab": NORMAL_LABELS,
        },
    ),
    (
        "c_uncertain_negative",
        "clinical",
        "uncertain_but_negative",
        {
            "trace": spoil(
                E(), lambda t: _heart(t).update(status="uncertain", evidence="The heart may be enlarged.")
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    (
        "c_status",
        "clinical",
        "status_mismatch",
        {
            "trace": spoil(
                E(),
                lambda t: (
                    _pleura(t).update(status="uncertain"),
                    t["reasoning"][0].update(status="uncertain"),
                ),
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    # 3 evidence: each item's own words and the final report against its structured fields
    (
        "e_denied",
        "evidence",
        "evidence_contradicts_item",
        {
            "trace": spoil(
                E(),
                lambda t: _pleura(t).update(
                    evidence="No pleural effusion; the costophrenic angles are sharp."
                ),
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "e_asserted",
        "evidence",
        "evidence_contradicts_item",
        {
            "trace": spoil(E(), lambda t: _heart(t).update(evidence="Moderate cardiomegaly.")),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "e_side",
        "evidence",
        "evidence_side_mismatch",
        {
            "trace": spoil(
                E(),
                lambda t: _pleura(t).update(
                    evidence="Blunting of the costophrenic angle, in keeping with a small right effusion."
                ),
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "e_anatomic_side",
        "evidence",
        "evidence_side_mismatch",
        {
            "trace": spoil(
                E(),
                lambda t: (
                    _pacemaker(t),
                    next(i for i in t["perception"] if i["finding"] == "pacemaker").update(
                        laterality="right"
                    ),
                ),
            ),
            "lab": labels(pleural_effusion=1, cardiomegaly=0, support_devices=1),
        },
    ),
    (
        "e_unsupported",
        "evidence",
        "evidence_mentions_unsupported_finding",
        {
            "trace": spoil(
                E(),
                lambda t: t["perception"][1].update(
                    evidence="The lungs are well expanded; there is a small right apical pneumothorax."
                ),
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    (
        "e_report_side",
        "evidence",
        "side_contradicts_report",
        {
            "trace": spoil(
                E(),
                lambda t: _pleura(t).update(laterality="right", evidence="A small right pleural effusion."),
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "e_report_half",
        "evidence",
        "side_contradicts_report",
        {"trace": {**E(), "report": _BILATERAL}, "lab": EFFUSION_LABELS},
    ),
    (
        "e_grade",
        "evidence",
        "grade_contradicts_report",
        {
            "trace": spoil(
                E(), lambda t: _pleura(t).update(severity="large", evidence="A large left pleural effusion.")
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    # 4 knowledge
    (
        "k_unknown",
        "knowledge",
        "unknown_knowledge_id",
        {
            "trace": spoil(
                E(),
                lambda t: t["reasoning"][0].update(
                    knowledge=["pleural_efusion"], inference="Fluid blunts the angle [K:pleural_efusion]."
                ),
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "k_ungrounded",
        "knowledge",
        "ungrounded_citation",
        {
            "trace": spoil(
                E(),
                lambda t: t["reasoning"][0].update(
                    knowledge=["pleural_effusion", "pneumothorax"],
                    inference="Fluid blunts the angle [K:pleural_effusion], unlike air [K:pneumothorax].",
                ),
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "k_unlisted",
        "knowledge",
        "unlisted_citation",
        {
            "trace": spoil(
                E(),
                lambda t: t["reasoning"][0].update(
                    inference="Fluid blunts the angle [K:pleural_effusion]; "
                    "the heart is spared [K:cardiomegaly]."
                ),
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    (
        "k_uncited",
        "knowledge",
        "uncited_step",
        {
            "trace": spoil(
                E(),
                lambda t: t["reasoning"][1].update(
                    knowledge=[], inference="A normal cardiothoracic ratio excludes an enlarged heart."
                ),
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    # 5 reflection
    (
        "r_no_recheck",
        "reflection",
        "no_recheck",
        {
            "trace": spoil(E(), _set(["reflection", "checked"], ["everything", "my first impression"])),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "r_vague",
        "reflection",
        "vague_reflection",
        {
            "trace": spoil(
                E(),
                lambda t: (
                    _draft_right(t),
                    _lateral_fix(state("present", "right", "small"), state("present", "left", "small"))(t),
                    t["reflection"].update(checked=["everything once more"]),
                ),
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    (
        "r_not_in_draft",
        "reflection",
        "correction_not_in_draft",
        {
            "trace": spoil(
                E(), _lateral_fix(state("present", "right", "small"), state("present", "left", "small"))
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "r_after_not_final",
        "reflection",
        "after_not_final",
        {"trace": spoil(E(), _two_edits), "lab": EFFUSION_LABELS},
    ),
    (
        "r_after_vs_report",
        "reflection",
        "after_contradicts_report",
        {
            "trace": spoil(
                E(),
                _lateral_fix(
                    state("present", "left", "small"),
                    state("absent"),
                    kind="hallucinated",
                    note="On the second look the costophrenic angle is sharp: no fluid.",
                ),
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "r_no_change",
        "reflection",
        "correction_changes_nothing",
        {
            "trace": spoil(
                E(), _lateral_fix(state("present", "left", "small"), state("present", "left", "small"))
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "r_kind",
        "reflection",
        "correction_kind_mismatch",
        {
            "trace": spoil(
                E(),
                lambda t: (
                    _pleura(t).update(severity="moderate"),
                    _lateral_fix(
                        state("present", "left", "moderate"),
                        state("present", "left", "small"),
                        note="Measured against the hemithorax it is small.",
                    )(t),
                ),
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    (
        "r_note",
        "reflection",
        "vague_note",
        {
            "trace": spoil(
                E(),
                lambda t: (
                    _draft_right(t),
                    _lateral_fix(
                        state("present", "right", "small"), state("present", "left", "small"), note="Fixed."
                    )(t),
                ),
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    # 6 leakage
    (
        "l_source",
        "leakage",
        "leaked_source",
        {"trace": spoil(E(), lambda t: _pleura(t).update(evidence=_LEAK)), "lab": EFFUSION_LABELS},
    ),
    (
        "l_extra",
        "leakage",
        "leaked_source",
        {
            "trace": spoil(
                E(),
                lambda t: t["reasoning"][0].update(
                    inference="The effusion is confirmed by the Ground   Truth [K:pleural_effusion]."
                ),
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "l_prior",
        "leakage",
        "prior_reference",
        {
            "trace": spoil(
                E(),
                lambda t: _pleura(t).update(
                    evidence="A small left pleural effusion, unchanged from the prior radiograph."
                ),
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    (
        "l_copied",
        "leakage",
        "copies_report",
        {
            "trace": spoil(
                {**E(), "report": _COPIED_REPORT},
                lambda t: _pleura(t).update(evidence=_COPIED_REPORT["findings"].split(". ")[0] + "."),
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    # 7 privacy
    (
        "p_date",
        "privacy",
        "phi_date",
        {
            "trace": spoil(
                E(), lambda t: _pleura(t).update(evidence="Small left effusion on the film of 3/14/2021.")
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "p_month",
        "privacy",
        "phi_date",
        {
            "trace": spoil(
                E(), _set(["reflection", "summary"], "Checked again on March 3rd, 2019; nothing to correct.")
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "p_time",
        "privacy",
        "phi_time",
        {
            "trace": E(),
            "lab": EFFUSION_LABELS,
            "warning": True,
            "report": {
                "findings": "There is a small left pleural effusion. The heart size is normal.",
                "impression": "Small left pleural effusion. Discussed with Dr. ___ at 10:45 a.m. on ___.",
            },
        },
    ),
    (
        "p_phone",
        "privacy",
        "phi_phone",
        {
            "trace": spoil(
                E(), _set(["reflection", "summary"], "Nothing to correct; call 617-555-0123 with questions.")
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "p_record",
        "privacy",
        "phi_record_number",
        {
            "trace": spoil(E(), _set(["reflection", "summary"], "Nothing to correct for MRN 12345678.")),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "p_name",
        "privacy",
        "phi_name",
        {
            "trace": spoil(
                E(), _set(["reflection", "summary"], "Dr. Smith agrees; nothing needs correcting.")
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    # 8 form
    (
        "f_tags",
        "form",
        "think_tags",
        {
            "trace": spoil(E(), lambda t: _pleura(t).update(evidence="Small left effusion.</think> Done.")),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "f_blank",
        "form",
        "empty_section",
        {"trace": spoil(E(), lambda t: t["perception"][0].update(evidence="   ")), "lab": EFFUSION_LABELS},
    ),
    (
        "f_no_report",
        "form",
        "empty_report",
        {"trace": {**normal_trace(), "report": {"findings": "", "impression": " "}}, "lab": labels()},
    ),
    ("f_short", "form", "think_too_short", {"trace": spoil(normal_trace(), _short), "lab": NORMAL_LABELS}),
    (
        "f_long",
        "form",
        "think_too_long",
        {
            "trace": spoil(
                E(),
                lambda t: _pleura(t).update(
                    evidence="There is a small left pleural effusion with a meniscus at the base. " * 260
                ),
            ),
            "lab": EFFUSION_LABELS,
            "warning": True,
        },
    ),
    (
        "f_report_short",
        "form",
        "report_too_short",
        {
            "trace": {**normal_trace(), "report": {"findings": "", "impression": "Normal."}},
            "lab": NORMAL_LABELS,
            "warning": True,
        },
    ),
    (
        "f_report_long",
        "form",
        "report_too_long",
        {
            "trace": {
                **normal_trace(),
                "report": {
                    "findings": "The lungs are clear and there is no effusion. " * 100,
                    "impression": "Normal chest.",
                },
            },
            "lab": NORMAL_LABELS,
            "warning": True,
        },
    ),
    ("f_german", "form", "not_english", {"trace": spoil(normal_trace(), _german), "lab": NORMAL_LABELS}),
    (
        "f_chinese",
        "form",
        "not_english",
        {
            "trace": spoil(
                normal_trace(),
                lambda t: [
                    i.update(evidence="双肺清晰，未见胸腔积液及气胸，心影大小正常。") for i in t["perception"]
                ],
            ),
            "lab": NORMAL_LABELS,
        },
    ),
    (
        "f_images",
        "form",
        "image_count_mismatch",
        {"trace": E(), "lab": EFFUSION_LABELS, "n_images": 2, "trace_images": 1},
    ),
]

# Good traces that must pass every check (besides diversity, tested on its own corpus).
def _interstitial_and_left_opacity(t):
    t["perception"][1] = item("lungs", "interstitial_abnormality", "present", "Bibasal interstitial pattern.",
                              "bilateral")
    t["perception"].insert(2, item("lungs", "lung_opacity", "present", "Platelike left basal lung opacity.", "left"))
    t["reasoning"] = [
        {
            "observation": "Bibasal interstitial pattern",
            "inference": "Lines at both bases are an interstitial pattern [K:interstitial_abnormality].",
            "knowledge": ["interstitial_abnormality"],
            "conclusion": "interstitial_abnormality",
            "status": "present",
        },
        {
            "observation": "Platelike left basal lung opacity",
            "inference": "A plate of whiter lung at the left base is a lung opacity [K:lung_opacity].",
            "knowledge": ["lung_opacity"],
            "conclusion": "lung_opacity",
            "status": "present",
        },
    ]


GOOD: list[tuple[str, dict[str, Any]]] = [
    ("g_effusion", {"trace": E(), "lab": EFFUSION_LABELS}),
    ("g_normal", {"trace": normal_trace(), "lab": NORMAL_LABELS}),
    # near misses of the evidence check: none may be flagged
    (
        "g_anatomic_side",
        {
            "trace": spoil(E(), _pacemaker),
            "lab": labels(pleural_effusion=1, cardiomegaly=0, support_devices=1),
            "report": {
                "findings": "There is a small left pleural effusion. A left chest wall pacemaker has its "
                "leads in the right atrium and the right ventricle. The heart size is normal.",
                "impression": "Small left pleural effusion. Left-sided pacemaker.",
            },
        },
    ),
    (
        "g_no_right",
        {
            "trace": spoil(E(), lambda t: _pleura(t).update(evidence=_NO_RIGHT)),
            "lab": EFFUSION_LABELS,
            "report": {
                "findings": f"{_NO_RIGHT} The heart size is normal.",
                "impression": "Small left pleural effusion.",
            },
        },
    ),
    (
        "g_structured",
        {
            "trace": spoil(
                E(), lambda t: _pleura(t).update(evidence="Visible: small left pleural effusion.")
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "g_structured_uncertain",
        {
            "trace": spoil(
                E(),
                lambda t: (
                    _pleura(t).update(
                        status="uncertain", evidence="Possible small left pleural effusion, not definite."
                    ),
                    t["reasoning"][0].update(status="uncertain"),
                ),
            ),
            "lab": labels(pleural_effusion=-1, cardiomegaly=0),
            "report": {
                "findings": "Possible small left pleural effusion. The heart size is normal.",
                "impression": "Possible small left pleural effusion.",
            },
        },
    ),
    (
        "g_grade_range",
        {
            "trace": spoil(
                E(),
                lambda t: _pleura(t).update(severity="moderate", evidence="Moderate left pleural effusion."),
            ),
            "lab": EFFUSION_LABELS,
            "report": {
                "findings": "Small to moderate left pleural effusion. The heart size is normal.",
                "impression": "Small-to-moderate left pleural effusion.",
            },
        },
    ),
    (
        "g_two_sides",
        {
            "trace": spoil(
                E(),
                _effusions(
                    ("small", "Small right and moderate left pleural effusions."),
                    ("moderate", "Moderate left pleural effusion."),
                ),
            ),
            "lab": EFFUSION_LABELS,
            "report": _TWO_SIDES,
        },
    ),
    (
        "g_bilateral",
        {
            "trace": spoil(
                E(),
                lambda t: _pleura(t).update(
                    laterality="bilateral", evidence="Small bilateral pleural effusions."
                ),
            ),
            "lab": EFFUSION_LABELS,
            "report": _BILATERAL,
        },
    ),
    (
        "g_normal_label_findings",
        {"trace": _NORMAL_WITH_ATELECTASIS, "lab": NORMAL_LABELS, "hits": ("no_finding",)},
    ),
    (
        "g_fixed_side",
        {
            "trace": spoil(
                E(),
                lambda t: (
                    _draft_right(t),
                    _lateral_fix(state("present", "right", "small"), state("present", "left", "small"))(t),
                ),
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "g_fixed_missed",
        {
            "trace": spoil(
                E(),
                lambda t: (
                    _no_effusion_item(t),
                    t["reasoning"].pop(0),
                    t["reflection"]["corrections"].append(
                        {
                            "kind": "missed",
                            "finding": "pleural_effusion",
                            "before": state("absent"),
                            "after": state("present", "left", "small"),
                            "note": "A second pass over the pleura shows a blunted left costophrenic angle.",
                        }
                    ),
                ),
            ),
            "lab": EFFUSION_LABELS,
        },
    ),
    (
        "g_fixed_false",
        {
            "trace": spoil(
                normal_trace(),
                lambda t: (
                    t["perception"].__setitem__(
                        2,
                        item(
                            "pleura", "pneumothorax", "present", "A thin pleural line at the apex.", "right"
                        ),
                    ),
                    t["reasoning"].__setitem__(
                        0,
                        {
                            "observation": "A thin line at the right apex",
                            "inference": "A visceral pleural line suggests pneumothorax [K:pneumothorax].",
                            "knowledge": ["pneumothorax"],
                            "conclusion": "pneumothorax",
                            "status": "present",
                        },
                    ),
                    t["reflection"]["corrections"].extend(
                        [
                            {
                                "kind": "hallucinated",
                                "finding": "pneumothorax",
                                "before": state("present", "right"),
                                "after": state("absent"),
                                "note": "Re-inspection shows the line is the scapular edge, not pleura.",
                            },
                            {
                                "kind": "other",
                                "finding": "no_finding",
                                "before": state("absent"),
                                "after": state("present"),
                                "note": "Without it nothing abnormal remains: the study is normal.",
                            },
                        ]
                    ),
                ),
            ),
            "lab": NORMAL_LABELS,
            "hits": ("no_finding", "pneumothorax"),
        },
    ),
    # a bilateral interstitial pattern carries its own sides: the left lung opacity beside it is not half of it
    (
        "g_kin_sides",
        {
            "trace": spoil(normal_trace(), _interstitial_and_left_opacity),
            "lab": labels(lung_opacity=1),
            "report": {
                "findings": "There is bibasal interstitial opacity and left basal platelike opacity. The heart "
                "size is normal.",
                "impression": "Basilar interstitial opacity and left basal platelike opacity.",
            },
        },
    ),
]

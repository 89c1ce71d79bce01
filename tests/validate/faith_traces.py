"""Faithfulness corpus: good traces written from real-style reports, and one corruption per kind of error.

Each good trace states only what its report says (every pertinent negative is one the report makes), so it
passes the faithfulness check without a warning. Each corruption spoils one statement the way a teacher gets
it wrong, and must be rejected with its code. The report sentences are written for these tests in the style of
chest radiograph reports (IU-Xray's "XXXX" placeholders included).
"""

from __future__ import annotations

from typing import Any

from tests.validate.builders import item, labels, spoil

SILENT = "Examined; the report describes nothing in this region."


def _trace(report: dict[str, str], items: list[dict], conclusions: list[tuple[str, str]]) -> dict[str, Any]:
    regions = {i["region"] for i in items}
    perception = list(items)
    for region in (
        "airway",
        "lungs",
        "pleura",
        "heart_mediastinum",
        "hila",
        "bones_soft_tissue",
        "upper_abdomen",
        "lines_devices",
    ):
        if region not in regions:
            perception.append(item(region, "normal", "present", SILENT))
    return {
        "perception": perception,
        "reasoning": [
            {
                "observation": f"The {f.replace('_', ' ')} as seen on the radiograph",
                "inference": f"The appearance is read as {f.replace('_', ' ')} [K:{f}].",
                "knowledge": [f],
                "conclusion": f,
                "status": status,
            }
            for f, status in conclusions
        ],
        "reflection": {
            "checked": ["each region of the perception tree on both views"],
            "corrections": [],
            "summary": "The second look confirms the first reading; nothing needs correcting.",
        },
        "report": report,
    }


EFFUSION_REPORT = {
    "findings": "The heart size is normal. The lungs are clear. There is a small left pleural effusion. "
    "No pneumothorax. The visualized osseous structures are unremarkable.",
    "impression": "Small left pleural effusion.",
}


def effusion() -> dict[str, Any]:
    return _trace(
        EFFUSION_REPORT,
        [
            item("lungs", "normal", "present", "The lungs are clear."),
            item("pleura", "pleural_effusion", "present", "Small left pleural effusion.", "left", "small"),
            item("pleura", "pneumothorax", "absent", "No pneumothorax."),
            item("heart_mediastinum", "cardiomegaly", "absent", "The heart size is normal."),
            item("bones_soft_tissue", "normal", "present", "The osseous structures are unremarkable."),
        ],
        [("pleural_effusion", "present"), ("cardiomegaly", "absent")],
    )


HEDGE_REPORT = {
    "findings": "Heart size within normal limits. Left basilar XXXX opacity, atelectasis versus pneumonia. "
    "No pleural effusion or pneumothorax.",
    "impression": "Left basilar opacity which may represent atelectasis or pneumonia.",
}


def hedged() -> dict[str, Any]:
    return _trace(
        HEDGE_REPORT,
        [
            item("lungs", "lung_opacity", "present", "Left basilar opacity.", "left"),
            item("lungs", "pneumonia", "uncertain", "Possibly pneumonia at the left base.", "left"),
            item("lungs", "atelectasis", "uncertain", "Possibly atelectasis at the left base.", "left"),
            item("pleura", "pleural_effusion", "absent", "No pleural effusion."),
            item("pleura", "pneumothorax", "absent", "No pneumothorax."),
            item("heart_mediastinum", "cardiomegaly", "absent", "Heart size within normal limits."),
        ],
        [("lung_opacity", "present"), ("pneumonia", "uncertain")],
    )


POSTOP_REPORT = {
    "findings": "Median sternotomy wires are intact. Stable cardiomediastinal silhouette. Elevation of the right "
    "hemidiaphragm. Degenerative changes of the thoracic spine. The lungs are clear. No pneumothorax.",
    "impression": "No acute cardiopulmonary abnormality.",
}


def postop() -> dict[str, Any]:
    return _trace(
        POSTOP_REPORT,
        [
            item("lungs", "normal", "present", "The lungs are clear."),
            item("pleura", "pneumothorax", "absent", "No pneumothorax."),
            item("lines_devices", "sternotomy_wires", "present", "Median sternotomy wires."),
            item("upper_abdomen", "elevated_hemidiaphragm", "present", "The right hemidiaphragm is elevated.", "right"),
            item("bones_soft_tissue", "degenerative_spine", "present", "Degenerative changes of the spine."),
        ],
        [("sternotomy_wires", "present"), ("elevated_hemidiaphragm", "present")],
    )


RIB_REPORT = {
    "findings": "Nodular density in the left lower zone likely represents a healing left posterior rib fracture "
    "with callus. External cardiac monitor leads overlie the chest. Heart size is normal. The lungs are "
    "otherwise clear.",
    "impression": "Healing left rib fracture. No acute cardiopulmonary process.",
}


def rib() -> dict[str, Any]:
    return _trace(
        RIB_REPORT,
        [
            item("bones_soft_tissue", "rib_fracture", "present", "Healing left posterior rib fracture.", "left"),
            item("lines_devices", "ecg_leads", "present", "External monitoring leads."),
            item("heart_mediastinum", "cardiomegaly", "absent", "Heart size is normal."),
        ],
        [("rib_fracture", "present")],
    )


GRADE_REPORT = {
    "findings": "Large right pleural effusion with adjacent compressive atelectasis. Mild cardiomegaly. "
    "No pneumothorax.",
    "impression": "Large right pleural effusion.",
}


def graded() -> dict[str, Any]:
    return _trace(
        GRADE_REPORT,
        [
            item("pleura", "pleural_effusion", "present", "Large right pleural effusion.", "right", "large"),
            item("lungs", "atelectasis", "present", "Compressive atelectasis at the right base.", "right"),
            item("pleura", "pneumothorax", "absent", "No pneumothorax."),
            item("heart_mediastinum", "cardiomegaly", "present", "Mild cardiomegaly.", severity="mild"),
        ],
        [("pleural_effusion", "present"), ("cardiomegaly", "present")],
    )


MESH_REPORT = {
    "findings": "Heart size within normal limits. The lungs are clear. The XXXX are intact.",
    "impression": "No acute cardiopulmonary disease.",
}


def mesh_silent() -> dict[str, Any]:
    return _trace(
        MESH_REPORT,
        [
            item("lungs", "normal", "present", "The lungs are clear."),
            item("heart_mediastinum", "cardiomegaly", "absent", "Heart size within normal limits."),
        ],
        [("cardiomegaly", "absent")],
    )


# Real sentences (IU-Xray study 25; MIMIC-CXR study 51984698): each side has its own grade, or the grade is what
# is left of a resolving effusion.
SIDES_REPORT = {
    "findings": "There is moderate left pleural effusion and small right pleural effusion. No pneumothorax.",
    "impression": "Small right and moderate left pleural effusions.",
}
RESOLVING_REPORT = {
    "findings": "",
    "impression": "The right pleural effusion has nearly resolved, with only trace blunting of the right "
    "costophrenic angle left.",
}


def two_sides() -> dict[str, Any]:
    return _trace(
        SIDES_REPORT,
        [
            item("pleura", "pleural_effusion", "present", "Moderate left pleural effusion.", "left", "moderate"),
            item("pleura", "pleural_effusion", "present", "Small right pleural effusion.", "right", "small"),
            item("pleura", "pneumothorax", "absent", "No pneumothorax."),
        ],
        [("pleural_effusion", "present")],
    )


def resolving() -> dict[str, Any]:
    return _trace(
        RESOLVING_REPORT,
        [item("pleura", "pleural_effusion", "present", "Trace right pleural effusion, nearly resolved.", "right",
              "trace")],
        [("pleural_effusion", "present")],
    )


def _sided(side: str):
    return lambda t: next(i for i in t["perception"] if i["laterality"] == side)


def _item(t: dict, finding: str) -> dict:
    return next(i for i in t["perception"] if i["finding"] == finding)


def _region(t: dict, region: str) -> dict:
    return next(i for i in t["perception"] if i["region"] == region)


def _replace(region: str, new: dict):
    def fn(t):
        idx = next(k for k, i in enumerate(t["perception"]) if i["region"] == region)
        t["perception"][idx] = new

    return fn


def _add(new: dict):
    return lambda t: t["perception"].append(new)


EFFUSION_LABELS = labels(pleural_effusion=1, cardiomegaly=0, pneumothorax=0)
NODULE_REPORT = {
    "findings": "There is a calcified granuloma left midlung. There is round density within the anterior segment "
    "of the right upper lobe. Heart size is normal.",
    "impression": "Round density within the anterior segment of the right upper lobe. This may represent XXXX "
    "pulmonary nodule.",
}


def nodule_beside_granuloma() -> dict[str, Any]:
    # the nodule's side is the density's (the sentence before), not the granuloma's, a kin that names a nodule too
    return _trace(
        NODULE_REPORT,
        [
            item("lungs", "granuloma", "present", "Calcified granuloma in the left midlung.", "left"),
            item("lungs", "lung_opacity", "present", "Round density in the right upper lobe.", "right"),
            item("lungs", "pulmonary_nodule", "uncertain", "Possible right pulmonary nodule.", "right"),
            item("heart_mediastinum", "cardiomegaly", "absent", "Heart size is normal."),
        ],
        [("lung_opacity", "present"), ("pulmonary_nodule", "uncertain")],
    )


STRIPE_REPORT = {
    "findings": "Widening of the right paratracheal stripe. No cardiomegaly. Postoperative suture material projects "
    "over the right upper lung. No pleural effusion.",
    "impression": "Widened right paratracheal stripe; CT may be obtained.",
}


def stripe() -> dict[str, Any]:
    # a widened paratracheal stripe is the enlarged-cardiomediastinum label's other entry: it says nothing of the
    # heart, so "no cardiomegaly" stands beside it; suture material is read as surgical material by both readers
    return _trace(
        STRIPE_REPORT,
        [
            item("heart_mediastinum", "mediastinal_widening", "present", "Widened right paratracheal stripe.",
                 "right"),
            item("heart_mediastinum", "cardiomegaly", "absent", "No cardiomegaly."),
            item("lines_devices", "surgical_clips", "present", "Suture material over the right upper lung.",
                 "right"),
            item("pleura", "pleural_effusion", "absent", "No pleural effusion."),
        ],
        [("mediastinal_widening", "present"), ("cardiomegaly", "absent")],
    )


def stripe_heart_only() -> dict[str, Any]:
    # the heart alone: "no cardiomegaly" is the report's own word, and the stripe beside it does not contradict it
    return _trace(
        STRIPE_REPORT,
        [item("heart_mediastinum", "cardiomegaly", "absent", "No cardiomegaly.")],
        [("cardiomegaly", "absent")],
    )


GOOD: list[tuple[str, dict[str, Any], dict[str, int | None]]] = [
    ("fg_nodule_side", nodule_beside_granuloma(), labels(lung_opacity=1, lung_lesion=-1, cardiomegaly=0)),
    ("fg_effusion", effusion(), EFFUSION_LABELS),
    ("fg_hedged", hedged(), labels(lung_opacity=1, pneumonia=-1, atelectasis=-1, pleural_effusion=0)),
    ("fg_postop", postop(), labels(support_devices=1, no_finding=None)),
    ("fg_rib", rib(), labels(fracture=1, cardiomegaly=0)),
    ("fg_graded", graded(), labels(pleural_effusion=1, atelectasis=1, cardiomegaly=1, pneumothorax=0)),
    ("fg_silent", mesh_silent(), labels(no_finding=1)),
    ("fg_two_sides", two_sides(), labels(pleural_effusion=1, pneumothorax=0)),
    ("fg_resolving", resolving(), labels(pleural_effusion=1)),
    ("fg_stripe", stripe(), labels(enlarged_cardiomediastinum=1, cardiomegaly=0, support_devices=1)),
    ("fg_stripe_heart", stripe_heart_only(), labels(cardiomegaly=0)),
]

# (study, code, trace, labels): one corruption each; all are errors but unsupported_negative (a warning)
BAD: list[tuple[str, str, dict[str, Any], dict[str, int | None]]] = [
    (  # an invented finding: a nodule the report never mentions
        "fb_invented",
        "finding_not_in_report",
        spoil(
            effusion(), _add(item("lungs", "pulmonary_nodule", "present", "A nodule in the right upper lobe.", "right"))
        ),
        EFFUSION_LABELS,
    ),
    (  # a density the report attributes to a healing rib fracture, read as a lung nodule
        "fb_attributed",
        "finding_not_in_report",
        spoil(
            rib(), _add(item("lungs", "pulmonary_nodule", "present", "Nodular density in the left lower zone.", "left"))
        ),
        labels(fracture=1, cardiomegaly=0),
    ),
    (  # external monitor leads read as a pacemaker
        "fb_leads_pacemaker",
        "finding_not_in_report",
        spoil(rib(), _add(item("lines_devices", "pacemaker", "present", "Pacemaker leads."))),
        labels(fracture=1, cardiomegaly=0),
    ),
    (  # "stable cardiomediastinal silhouette" read as possible enlargement
        "fb_stable_silhouette",
        "finding_not_in_report",
        spoil(
            postop(),
            _add(
                item(
                    "heart_mediastinum",
                    "enlarged_cardiomediastinum",
                    "uncertain",
                    "Possibly enlarged cardiomediastinal silhouette.",
                )
            ),
        ),
        labels(support_devices=1),
    ),
    (  # the side swapped against the report
        "fb_side",
        "side_contradicted",
        spoil(
            effusion(),
            lambda t: _item(t, "pleural_effusion").update(laterality="right", evidence="Small right pleural effusion."),
        ),
        EFFUSION_LABELS,
    ),
    (  # a hedge made present ("atelectasis versus pneumonia")
        "fb_hedge",
        "hedge_upgraded",
        spoil(hedged(), lambda t: _item(t, "pneumonia").update(status="present", evidence="Left basilar pneumonia.")),
        labels(lung_opacity=1, pneumonia=-1, atelectasis=-1, pleural_effusion=0),
    ),
    (  # the grade changed ("large" → small)
        "fb_grade",
        "grade_contradicted",
        spoil(
            graded(),
            lambda t: _item(t, "pleural_effusion").update(severity="small", evidence="Small right pleural effusion."),
        ),
        labels(pleural_effusion=1, atelectasis=1, cardiomegaly=1, pneumothorax=0),
    ),
    (  # the grades of the two sides swapped (small left, moderate right)
        "fb_grades_swapped",
        "grade_contradicted",
        spoil(two_sides(), lambda t: (_sided("left")(t).update(severity="small"),
                                      _sided("right")(t).update(severity="moderate"))),
        labels(pleural_effusion=1, pneumothorax=0),
    ),
    (  # a nearly resolved effusion with trace fluid left written as a moderate one
        "fb_resolving_grade",
        "grade_contradicted",
        spoil(resolving(), lambda t: _item(t, "pleural_effusion").update(severity="moderate")),
        labels(pleural_effusion=1),
    ),
    (  # the resolving effusion moved to the other side
        "fb_resolving_side",
        "side_contradicted",
        spoil(resolving(), lambda t: _item(t, "pleural_effusion").update(laterality="left")),
        labels(pleural_effusion=1),
    ),
    (  # "no support devices" beside the sternotomy wires
        "fb_no_devices",
        "normal_region_contradicted",
        spoil(
            postop(),
            _replace("lines_devices", item("lines_devices", "normal", "present", "No support devices are seen.")),
        ),
        labels(support_devices=1),
    ),
    (  # bones "unremarkable" beside degenerative change of the spine
        "fb_bones",
        "normal_region_contradicted",
        spoil(
            postop(),
            _replace(
                "bones_soft_tissue", item("bones_soft_tissue", "normal", "present", "The bones are unremarkable.")
            ),
        ),
        labels(support_devices=1),
    ),
    (  # hemidiaphragms "normal" beside the reported elevation
        "fb_diaphragm",
        "normal_region_contradicted",
        spoil(
            postop(),
            _replace(
                "upper_abdomen",
                item("upper_abdomen", "normal", "present", "The hemidiaphragms are normal in position."),
            ),
        ),
        labels(support_devices=1),
    ),
    (  # an absent item against the report's own statement
        "fb_negative",
        "negative_contradicts_report",
        spoil(graded(), _replace("pleura", item("pleura", "pleural_effusion", "absent", "No pleural effusion."))),
        labels(atelectasis=1, cardiomegaly=1, pneumothorax=0),
    ),
    (  # an absent item against a positive (MeSH) label, the report silent
        "fb_label",
        "absent_but_labelled_positive",
        spoil(mesh_silent(), _add(item("pleura", "pleural_effusion", "absent", "No pleural effusion."))),
        labels(pleural_effusion=1),
    ),
    (  # a pertinent negative the report never made
        "fb_unsupported",
        "unsupported_negative",
        spoil(
            mesh_silent(), _add(item("upper_abdomen", "pneumoperitoneum", "absent", "No free air under the diaphragm."))
        ),
        labels(no_finding=1),
    ),
]

"""The offline teacher's normal/abnormal conclusion follows CheXpert's No Finding, as the labels and labeler do."""

from __future__ import annotations

import pytest

from datakit.annotate.offline import TraceWriter
from datakit.annotate.teacher import ImageRef, StudyInput
from datakit.config import TeacherConfig
from datakit.knowledge.kb import load_kb
from datakit.reading.findings import FindingReader
from datakit.tables import LABEL_COLUMNS


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _study(findings: str, impression: str, **labels: int) -> StudyInput:
    return StudyInput(
        study_id="s1", dataset="iu-xray", indication="", comparison="", findings=findings, impression=impression,
        labels={c: labels.get(c) for c in LABEL_COLUMNS},
        images=(ImageRef("i1", "PA", None),), knowledge=("scoliosis", "no_finding"),
    )


def _write(kb, study: StudyInput, **cfg):
    writer = TraceWriter(kb, FindingReader(kb), TeacherConfig(**cfg))
    return writer.write(study).trace


def test_a_finding_outside_the_chexpert_observations_leaves_no_finding_standing(kb):
    trace = _write(kb, _study("Heart size normal. Lungs clear.", "No pneumonia. Scoliosis.", no_finding=1),
                   error_rate=0.0)
    assert ("scoliosis", "present") in {(p["finding"], p["status"]) for p in trace["perception"]}
    normal = [s for s in trace["reasoning"] if s["conclusion"] == "no_finding"]
    assert len(normal) == 1 and normal[0]["status"] == "present"
    # never "a normal chest radiograph" beside a perceived scoliosis: the wording names what stands beside it
    assert "scoliosis" in (normal[0]["observation"] + normal[0]["inference"]).lower()


def test_missing_such_a_finding_does_not_flip_the_normal_conclusion(kb):
    trace = _write(kb, _study("Heart size normal. Lungs clear.", "No pneumonia. Scoliosis."),
                   error_rate=1.0, error_kinds=["missed"])
    corrections = trace["reflection"]["corrections"]
    assert [c["finding"] for c in corrections] == ["scoliosis"]


def test_missing_a_chexpert_finding_does_flip_it(kb):
    trace = _write(kb, _study("Small left pleural effusion.", "Left effusion.", pleural_effusion=1),
                   error_rate=1.0, error_kinds=["missed"])
    corrections = {c["finding"]: c for c in trace["reflection"]["corrections"]}
    assert set(corrections) == {"pleural_effusion", "no_finding"}
    assert corrections["no_finding"]["after"]["status"] == "absent"


@pytest.mark.parametrize("seed", range(6))
def test_a_label_of_0_that_the_text_disputes_is_left_alone(kb, seed):
    study = _study("Layering right effusion with adjacent opacity. No pneumothorax.", "",
                   pleural_effusion=1, lung_opacity=0, pneumothorax=0)
    trace = _write(kb, study, error_rate=1.0, error_kinds=["hallucinated"], seed=seed)
    named = {p["finding"] for p in trace["perception"]} | {c["finding"] for c in trace["reflection"]["corrections"]}
    # neither "absent" (the text names it) nor "present" (the label denies it), and never a "corrected" false one
    assert "lung_opacity" not in named
    assert "pneumothorax" in named  # an undisputed label of 0 is still stated (or used for the injected error)

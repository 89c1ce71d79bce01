"""The offline teacher states only what the study supports (issue 15): report-style studies written for these
tests, each with the trace items it must and must not produce."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from datakit.annotate.offline import TraceWriter
from datakit.annotate.teacher import ImageRef, StudyInput
from datakit.config import load_config
from datakit.knowledge.kb import load_kb
from datakit.reading.findings import FindingReader
from datakit.semantics import entries_table, study_semantics
from datakit.tables import LABEL_COLUMNS
from datakit.trace import dumps, render_think

KB = load_kb()
READER = FindingReader(KB)
RETRIEVED = ["atelectasis", "pneumonia", "pleural_thickening", "consolidation", "edema", "lung_scarring"]


def writer(**over) -> TraceWriter:
    return TraceWriter(KB, READER, load_config(overrides=over).teacher)


def study(findings: str, impression: str = "", labels: dict | None = None, sid: str = "s1",
          lateral: bool = False) -> StudyInput:
    lab = dict.fromkeys(LABEL_COLUMNS)
    lab.update(labels or {})
    images = [ImageRef(f"{sid}-pa", "PA", "x.png", "d")] + ([ImageRef(f"{sid}-l", "LATERAL", "y.png", "e")]
                                                            if lateral else [])
    return StudyInput(sid, "iu_xray", "", "", findings, impression, lab, images, list(RETRIEVED))


def items(trace: dict) -> list[tuple[str, str, str, str]]:
    return [(i["region"], i["finding"], i["status"], i["laterality"]) for i in trace["perception"]]


def clean(text: str, labels: dict | None = None, **over) -> dict:
    out = writer(**{"teacher.error_rate": 0.0, **over}).write(study(text, labels=labels))
    assert out.trace is not None, out.error
    return out.trace


CASES = [
    # (report, labels, items that must be there (finding, status[, side]), findings that must not be abnormal)
    # a degenerative change the sentence places in the spine is the spine's (the shoulders of this sentence are
    # not read yet: missing, not wrong)
    ("Degenerative changes of both glenohumeral joints and the thoracic spine.", {},
     [("degenerative_spine", "present", None)], ["degenerative_joint_disease"]),
    ("Opacity at the right base represents a healing rib fracture. Lungs otherwise clear.", {"fracture": 1},
     [("rib_fracture", "present", "right")], ["lung_opacity", "pulmonary_nodule"]),
    ("Monitor leads overlie the chest. The lungs are clear.", {}, [("ecg_leads", "present", None)], ["pacemaker"]),
    ("Consolidation on the prior CT. No focal consolidation on this film.", {}, [("consolidation", "absent", None)],
     ["consolidation"]),
    ("Stable cardiomediastinal silhouette. No pneumothorax.", {}, [], ["enlarged_cardiomediastinum"]),
    ("Right lower lobe atelectasis versus pneumonia.", {"atelectasis": 1, "pneumonia": 1},
     [("atelectasis", "uncertain", "right"), ("pneumonia", "uncertain", "right")], []),
    ("Probable left lower lobe pneumonia.", {"pneumonia": 1}, [("pneumonia", "uncertain", "left")], []),
    ("Elevation of the right hemidiaphragm. Tortuous aorta. Mild degenerative changes of the thoracic spine.",
     {}, [("elevated_hemidiaphragm", "present", "right"), ("tortuous_aorta", "present", None),
          ("degenerative_spine", "present", None)], []),
    ("Mild anterior wedging of a mid thoracic vertebral body.", {},
     [("vertebral_wedge_deformity", "present", None)], ["fracture", "vertebral_compression_fracture"]),
    ("Lingular atelectasis. Right middle lobe opacity.", {"atelectasis": 1, "lung_opacity": 1},
     [("atelectasis", "present", "left"), ("lung_opacity", "present", "right")], []),
    # a density the report explains by a mediastinal structure is that structure, not lung opacity
    ("Clear lungs. There is opacity at the base of the mediastinum which is XXXX a hiatal hernia.", {},
     [("hiatal_hernia", "uncertain", None)], ["lung_opacity"]),
    ("Several calcified granulomas in bilateral hilar regions. The lungs are clear.", {},
     [("calcified_lymph_nodes", "present", "bilateral")], ["granuloma"]),
    ("Morgagni hernia, stable. Atrial septal occluder artifact.", {},
     [("diaphragmatic_hernia", "present", None), ("septal_occluder", "present", None)], []),
    # findings outside the 14 labels that reviewers found missing: upper abdomen, soft tissues, joints, spine
    ("The lungs are clear. Thoracic spondylosis. Prior cholecystectomy.", {},
     [("cholecystectomy", "present", None), ("degenerative_spine", "present", None)], []),
    ("Calcifications in the right hemiabdomen may represent calcified gallstones.", {},
     [("cholelithiasis", "uncertain", None)], ["lung_opacity"]),
    ("The skeletal structures show arthritic changes. There has been a left mastectomy. Bilateral nipple shadows.",
     {}, [("degenerative_joint_disease", "present", None), ("mastectomy", "present", "left"),
          ("nipple_shadows", "present", "bilateral")], ["pulmonary_nodule", "lung_lesion"]),
    ("There are prominent epicardial fat pads. Normal cardiac contour with atherosclerotic changes throughout the "
     "aorta.", {}, [("epicardial_fat_pad", "present", None), ("aortic_calcification", "present", None)],
     ["cardiomegaly"]),
    ("There is XXXX deformity of T6. Mild XXXX deformity of T12, stable.", {},
     [("vertebral_wedge_deformity", "present", None)], ["fracture"]),
    ("Aortic ectasia is seen in the ascending aorta.", {}, [("aortic_enlargement", "present", None)],
     ["tortuous_aorta"]),
]


@pytest.mark.parametrize("text, labels, must, must_not", CASES, ids=[c[0][:50] for c in CASES])
def test_items(text, labels, must, must_not):
    got = items(clean(text, labels))
    for finding, status, side in must:
        assert any(f == finding and s == status and (side is None or lat == side) for _, f, s, lat in got), (
            text, finding, got)
    for finding in must_not:
        assert not any(f == finding and s != "absent" for _, f, s, _ in got), (text, finding, got)


def test_a_negative_keeps_its_limit():
    trace = clean("No large pleural effusion. No focal airspace disease.")
    ev = {i["finding"]: i["evidence"] for i in trace["perception"] if i["status"] == "absent"}
    assert "large pleural effusion" in ev["pleural_effusion"].lower()
    assert "focal" in ev["lung_opacity"].lower()


def test_a_label_never_creates_or_upgrades_an_item():
    out = writer().write(study("The lungs are clear. No pleural effusion.", labels={"pneumothorax": 1}))
    assert out.trace is None and out.error_code == "label_not_in_report" and "pneumothorax" in out.error
    # a hedge labelled positive stays a hedge
    trace = clean("Possible small left pleural effusion.", {"pleural_effusion": 1})
    assert ("pleura", "pleural_effusion", "uncertain", "left") in items(trace)
    # a finding whose label is 0 is left out, not contradicted
    trace = clean("Small left pleural effusion.", {"pleural_effusion": 0})
    assert not any(f == "pleural_effusion" for _, f, _, _ in items(trace))


def test_normal_items_only_where_a_statement_covers_the_region():
    trace = clean("The lungs are clear. No pneumothorax.")
    by_region = {i["region"]: i for i in trace["perception"]}
    assert by_region["lungs"]["finding"] == "normal" and "clear" in by_region["lungs"]["evidence"].lower()
    asserting = re.compile(r"\b(normal|clear|no|not|midline|sharp|unremarkable|intact)\b", re.IGNORECASE)
    for region in ("airway", "hila", "upper_abdomen", "bones_soft_tissue", "lines_devices", "heart_mediastinum"):
        item = by_region[region]
        assert item["finding"] == "normal" and not asserting.search(item["evidence"]), item
    trace = clean("No acute cardiopulmonary abnormality.")
    heart = next(i for i in trace["perception"] if i["region"] == "heart_mediastinum")
    assert "acute" in heart["evidence"].lower()


def test_no_normal_phrase_beside_what_the_region_has():
    trace = clean("Median sternotomy wires. No tubes or lines. Degenerative changes of the spine. "
                  "Elevation of the left hemidiaphragm. No acute bony abnormality.")
    got = items(trace)
    assert not any(f == "support_devices" and s == "absent" for _, f, s, _ in got)
    for region in ("bones_soft_tissue", "upper_abdomen", "lines_devices"):
        assert not any(r == region and f == "normal" for r, f, _, _ in got), (region, got)


def test_no_placeholder_or_report_clause_in_the_think_text():
    text = ("Calcified XXXX granuloma in the right upper lobe. XXXX XXXX are intact. Small left effusoin. "
            "Patchy opacity in the left lower lobe is again seen.")
    trace = clean(text)
    think = render_think(trace)
    assert "XXXX" not in think and "effusoin" not in think and "again seen" not in think


def test_reasoning_goes_from_signs_to_findings_to_impression():
    trace = clean("Blunting of the left costophrenic angle with a small left pleural effusion. "
                  "Left basilar atelectasis. No pneumothorax.", {"pleural_effusion": 1, "atelectasis": 1})
    steps = trace["reasoning"]
    assert all(s["status"] != "absent" for s in steps)  # no "without its signs there is no X"
    effusion = next(s for s in steps if s["conclusion"] == "pleural_effusion")
    assert "blunting" in effusion["inference"].lower() and "[K:pleural_effusion]" in effusion["inference"]
    impression = steps[-1]
    assert impression["observation"].startswith("Findings:") and set(impression["knowledge"]) >= {
        "pleural_effusion", "atelectasis"}
    for s in steps[:-1]:
        for cited in s["knowledge"][1:]:
            assert cited in KB.get(s["conclusion"]).differential_ids or cited in RETRIEVED


def test_an_injected_side_or_grade_error_is_visible_in_the_draft():
    text = "Small left pleural effusion. No pneumothorax."
    for kind, field in (("laterality", "laterality"), ("severity", "severity")):
        out = writer(**{"teacher.error_rate": 1.0, "teacher.error_kinds": [kind]}).write(
            study(text, labels={"pleural_effusion": 1}))
        (fix,) = [c for c in out.trace["reflection"]["corrections"] if c["kind"] == kind]
        draft = next(i for i in out.trace["perception"] if i["finding"] == "pleural_effusion")
        wrong, right = fix["before"][field], fix["after"][field]
        assert wrong in draft["evidence"] and right not in draft["evidence"], (kind, draft["evidence"])
        assert "pleural effusion" in fix["note"].lower() or "costophrenic" in fix["note"].lower()
        assert right in out.trace["reflection"]["summary"]  # the reasoning redone on the corrected finding


def test_a_false_finding_is_one_the_report_rules_out_and_the_recheck_fits_the_study():
    text = "No pneumothorax. No pleural effusion. The lungs are clear."
    for seed in range(6):
        out = writer(**{"teacher.error_rate": 1.0, "teacher.error_kinds": ["hallucinated"], "teacher.seed": seed}
                     ).write(study(text, sid=f"h{seed}"))
        (fix,) = [c for c in out.trace["reflection"]["corrections"] if c["kind"] == "hallucinated"]
        region = KB.get(fix["finding"]).region
        assert fix["finding"] in ("pneumothorax", "pleural_effusion") or region == "lungs", fix
        checked = " ".join(out.trace["reflection"]["checked"])
        assert "tip" not in checked and "each tube" not in checked
        sem = study_semantics("h", dumps(out.trace), entries_table(KB))
        assert not any(f["status"] != "absent" and f["finding"] == fix["finding"] for f in sem["final"])


def test_a_false_finding_is_taken_back_in_the_reports_own_terms():
    # the pleura is covered only by "no acute cardiopulmonary abnormality": the note may not say "no effusion"
    text = "No acute cardiopulmonary abnormality."
    for seed in range(8):
        out = writer(**{"teacher.error_rate": 1.0, "teacher.error_kinds": ["hallucinated"], "teacher.seed": seed}
                     ).write(study(text, sid=f"c{seed}"))
        for fix in out.trace["reflection"]["corrections"]:
            if fix["kind"] == "hallucinated":
                assert "acute" in fix["note"].lower(), fix["note"]


def test_a_resolving_finding_keeps_the_grade_of_what_is_left():
    # MIMIC-CXR study 51984698 (the demo's impression)
    trace = clean("The right pleural effusion has nearly resolved, with only trace blunting of the right "
                  "costophrenic angle left.", labels={"pleural_effusion": 1})
    (eff,) = [i for i in trace["perception"] if i["finding"] == "pleural_effusion"]
    assert (eff["status"], eff["laterality"], eff["severity"]) == ("present", "right", "trace")
    assert "nearly resolved" in eff["evidence"].lower()


def test_each_side_keeps_its_own_grade():
    # IU-Xray study 25
    trace = clean("There is moderate left pleural effusion and small right pleural effusion. "
                  "Small right and moderate left pleural effusions.", labels={"pleural_effusion": 1})
    got = {(i["laterality"], i["severity"]) for i in trace["perception"] if i["finding"] == "pleural_effusion"}
    assert got == {("left", "moderate"), ("right", "small")}


def test_a_placeholder_that_hides_the_finding_invents_none_and_claims_no_normal_lung():
    # IU-Xray study 2169's impression, after a normal lung statement
    trace = clean("The lungs are clear. Large right upper lobe XXXX. No pleural effusion.")
    lungs = [i for i in trace["perception"] if i["region"] == "lungs"]
    # nothing invented, and no normal claim: the lungs get no item (the sentence is one no entry reads)
    assert lungs == [], lungs
    # where the noun survives, it is read
    trace = clean("There is bilateral lower lobe XXXX airspace opacities compatible with discoid atelectasis.")
    assert ("lungs", "lung_opacity", "present", "bilateral") in items(trace)


def test_two_sided_items_are_not_repeated_as_an_ungraded_bilateral_one():
    trace = clean("There is moderate left pleural effusion and small right pleural effusion. Impression: bilateral "
                  "pleural effusions, left greater than right.", {"pleural_effusion": 1})
    effusions = [(i["laterality"], i["severity"]) for i in trace["perception"] if i["finding"] == "pleural_effusion"]
    assert sorted(effusions) == [("left", "moderate"), ("right", "small")]


def test_a_region_with_a_sentence_no_entry_reads_is_not_called_unremarkable():
    # "sclerosis of the humeral heads from prior AVN" is a bone statement datakit has no entry for
    text = "The lungs are clear. No pleural effusion. Sclerosis of the humeral XXXX bilateral, XXXX from prior AVN."
    regions = {i["region"]: i["finding"] for i in clean(text)["perception"]}
    assert "bones_soft_tissue" not in regions and regions["lungs"] == "normal", regions
    # without such a sentence the silent region keeps its neutral "examined, nothing to add" item
    regions = {i["region"]: i["finding"] for i in clean("The lungs are clear.")["perception"]}
    assert regions["bones_soft_tissue"] == "normal"


def test_a_differential_the_report_rules_out_is_not_offered():
    # atelectasis's curated differential holds pleural effusion; this report rules it out
    st = study("Right middle lobe atelectasis. There is no pneumothorax or pleural effusion.",
               labels={"atelectasis": 1})
    st = replace(st, knowledge=("atelectasis", "pleural_effusion"))
    trace = writer(**{"teacher.error_rate": 0.0}).write(st).trace
    assert "pleural_effusion" in KB.get("atelectasis").differential_ids
    cited = [k for step in trace["reasoning"] for k in step["knowledge"]]
    assert "atelectasis" in cited and "pleural_effusion" not in cited, trace["reasoning"]


def test_the_impression_rests_on_what_the_reports_impression_names():
    text = ("Heart size is normal. The lungs are clear. Aortic vascular calcifications. Fracture-dislocation of the "
            "right shoulder.")
    trace = writer(**{"teacher.error_rate": 0.0}).write(
        study(text, impression="Fracture-dislocation of the proximal right shoulder.", labels={"fracture": 1})).trace
    last = trace["reasoning"][-1]
    assert last["conclusion"] == "fracture", last
    assert last["inference"].index("fracture") < last["inference"].index("aortic calcification"), last


def test_only_incidental_findings_rest_on_no_acute_abnormality():
    trace = writer(**{"teacher.error_rate": 0.0}).write(
        study("Old healed left 5th and 6th rib fractures. Calcified granuloma in the right upper lobe.",
              impression="No evidence of acute cardiopulmonary process.", labels={"fracture": 1})).trace
    last = trace["reasoning"][-1]["inference"].lower()
    assert "no acute cardiopulmonary abnormality" in last and "rests on" not in last, last


def test_a_fracture_takes_the_bone_its_sentence_names():
    got = items(clean("Unchanged fracture with callus at the left 9th lateral rib. Lungs are clear.",
                      {"fracture": 1}))
    assert ("bones_soft_tissue", "rib_fracture", "present", "left") in got, got
    got = items(clean("Healing fracture of the left 6th rib.", {"fracture": 1}))
    assert ("bones_soft_tissue", "rib_fracture", "present", "left") in got, got


def test_a_study_with_a_device_or_an_unread_statement_is_not_normal_in_every_region():
    for text in ("Right IJ central venous catheter with tip over the right atrium. The lungs are clear.",
                 "The lungs are clear. Sclerosis of the humeral XXXX bilateral, XXXX from prior AVN."):
        last = clean(text)["reasoning"][-1]
        assert last["conclusion"] == "no_finding"
        said = (last["observation"] + " " + last["inference"]).lower()
        assert "normal chest radiograph" not in said and "any region" not in said and "needs reporting" not in said, (
            text, said)
    ev = [i["evidence"] for i in clean("Right IJ central venous catheter with tip over the right atrium.")[
        "perception"] if i["finding"] == "central_venous_catheter"]
    assert ev and "tip in the right atrium" in ev[0], ev


def test_a_region_named_beside_a_finding_read_elsewhere_is_not_called_unremarkable():
    # the opacity is read in the lungs; the hemidiaphragm the sentence names keeps no "nothing to add" item
    regions = {i["region"]: i["finding"] for i in clean(
        "Left basilar opacity with obscuration of the left hemidiaphragm.")["perception"]}
    assert "upper_abdomen" not in regions, regions


def test_a_range_takes_its_upper_grade_and_a_measured_size_is_kept():
    trace = clean("Small to moderate sized bilateral pleural effusions. There is a 1.4 cm nodule in the right upper "
                  "lobe.", {"pleural_effusion": 1, "lung_lesion": 1})
    by = {i["finding"]: i for i in trace["perception"]}
    assert by["pleural_effusion"]["severity"] == "moderate"
    assert "1.4 cm" in by["pulmonary_nodule"]["evidence"], by["pulmonary_nodule"]


def test_one_finding_with_a_side_is_not_repeated_as_a_weaker_sideless_one():
    got = items(clean("Bandlike opacities in the right base consistent with areas of atelectasis. Possible "
                      "atelectasis.", {"atelectasis": 1}))
    assert [(f, s, lat) for _, f, s, lat in got if f == "atelectasis"] == [("atelectasis", "present", "right")], got


def test_the_no_finding_correction_names_the_chronic_findings_that_stay():
    w = writer(**{"teacher.error_rate": 0.0})
    final, _ = w.perceive(study("Hyperexpanded lungs, suggestive of emphysema. Small right pleural effusion.",
                                labels={"pleural_effusion": 1}))
    draft = [p for p in final]
    truth = [p for p in final if p.entry_id != "pleural_effusion"]
    fix = w._normality_fix(truth, draft)
    assert fix and fix[0]["after"]["status"] == "present" and "emphysema" in fix[0]["note"], fix


def test_a_differential_is_the_reports_own_and_a_stated_diagnosis_has_none():
    st = study("Right upper lobe focal opacity suggests scar and/or granuloma. Left lower lobe pneumonia.",
               labels={"lung_opacity": 1, "pneumonia": 1})
    st = replace(st, knowledge=("lung_opacity", "pneumonia", "atelectasis", "edema", "lung_scarring", "aspiration"))
    steps = {}
    for step in writer(**{"teacher.error_rate": 0.0}).write(st).trace["reasoning"]:
        steps.setdefault(step["conclusion"], step)  # the finding's own step, not the impression's
    assert steps["lung_opacity"]["knowledge"][1:] == ["lung_scarring"], steps["lung_opacity"]
    assert steps["pneumonia"]["knowledge"] == ["pneumonia"], steps["pneumonia"]  # no edema "to keep in mind"


def test_the_impression_decides_a_hedge_and_a_self_contradiction():
    w = writer(**{"teacher.error_rate": 0.0})
    hedged = w.write(study("On the lateral view there is a 2.1 x 2 cm nodular density.",
                           impression="2.1 cm nodular density which could represent overlapping shadows or actual "
                                      "pulmonary nodule.")).trace
    nodule = [i for i in hedged["perception"] if i["finding"] == "pulmonary_nodule"]
    assert [i["status"] for i in nodule] == ["uncertain"], nodule
    contradicted = w.write(study("The lungs focal airspace consolidation. Heart size normal.",
                                 impression="No focal airspace consolidation.")).trace
    assert not any(i["finding"] == "consolidation" and i["status"] != "absent"
                   for i in contradicted["perception"]), contradicted["perception"]
    # a narrowed negative in the impression does not undo a smaller finding
    kept = w.write(study("Small left pleural effusion.", impression="No large pleural effusion.",
                         labels={"pleural_effusion": 1})).trace
    assert ("pleura", "pleural_effusion", "present", "left") in items(kept)


def test_seventh_read_patterns():
    # a range keeps the report's words; many granulomas stay many; dextrocurvature is right-sided
    trace = clean("Stable moderate to marked cardiomegaly. Numerous calcified granulomas in the right perihilar "
                  "region. Mild dextrocurvature of the spine. Degenerative changes of the spine and the "
                  "acromioclavicular joints.", {"cardiomegaly": 1})
    ev = {i["finding"]: i for i in trace["perception"]}
    assert "moderate to marked cardiomegaly" in ev["cardiomegaly"]["evidence"].lower()
    assert ev["cardiomegaly"]["severity"] == "severe"  # the structured grade is the range's upper one
    assert "granulomas" in ev["granuloma"]["evidence"]
    assert ev["scoliosis"]["laterality"] == "right"
    assert "acromioclavicular" not in ev["degenerative_spine"]["evidence"].lower()
    # COPD is its own statement, not emphysema; a tortuous calcified aorta is both
    got = {f for _, f, s, _ in items(clean("Hyperinflation consistent with COPD. Tortuous and calcified aorta."))
           if s == "present"}
    assert {"copd", "hyperinflation", "tortuous_aorta", "aortic_calcification"} <= got and "emphysema" not in got
    # a sign-level hedge gives way to the report's own flat negative
    got = items(clean("Mild blunting of the right costophrenic angle. No pleural effusion. The lungs are clear."))
    assert [(f, s) for _, f, s, _ in got if f == "pleural_effusion"] == [("pleural_effusion", "absent")], got


def test_eighth_read_patterns():
    # "the heart is large" is an enlarged heart, not a "large" grade; bilateral nodules are one multiple-nodules item;
    # the after-effects of an infection are no pneumonia
    trace = clean("The heart is large. There are small bilateral pulmonary nodules measuring 5 mm.")
    heart = next(i for i in trace["perception"] if i["finding"] == "cardiomegaly")
    assert heart["severity"] is None
    got = items(writer(**{"teacher.error_rate": 0.0}).write(study(
        "There are small bilateral pulmonary nodules measuring 5 mm.",
        impression="Bilateral pulmonary nodules, may represent sequela of infection, but could represent neoplastic "
                   "process.")).trace)
    found = {f for _, f, s, _ in got if s != "absent"}
    assert "multiple_pulmonary_nodules" in found and "pulmonary_nodule" not in found and "pneumonia" not in found, got
    # an impression hedge elsewhere (bibasilar infiltrates) does not hedge a right perihilar opacity
    got = items(writer(**{"teacher.error_rate": 0.0}).write(study(
        "Right perihilar opacities.", impression="Mild bibasilar atelectasis and/or infiltrates.",
        labels={"lung_opacity": 1, "atelectasis": -1})).trace)
    assert ("lungs", "lung_opacity", "present", "right") in got, got


def test_ninth_round_patterns():
    w = writer(**{"teacher.error_rate": 0.0})
    trace = w.write(study("Limited assessment of heart size due to obscured margins. Minimal apical capping slightly "
                          "greater at the left.",
                          impression="Probable interstitial edema, less XXXX fibrosis. The heart has the same "
                                     "configuration as seen previously with a pericardial effusion on an abdominal "
                                     "CT.")).trace
    by = {i["finding"]: i for i in trace["perception"]}
    assert "cardiomegaly" not in by and "pericardial_effusion" not in by, by  # unassessable; another study
    assert by["pleural_thickening"]["laterality"] == "bilateral"  # greater at the left: both sides
    assert by["edema"]["evidence"].lower().startswith(("probable", "likely")) or "probably" in by["edema"]["evidence"]
    assert not by["pulmonary_fibrosis"]["evidence"].lower().startswith(("probable", "likely"))


def test_ninth_read_patterns():
    # a sign the report explains is no possible effusion; advice is no fracture; a cardiac aneurysm is not aortic
    got = items(writer(**{"teacher.error_rate": 0.0}).write(study(
        "Blunting of the costophrenic XXXX secondary to scarring/emphysematous changes. No large pleural effusion. "
        "Cardiac aneurysm is a consideration.",
        impression="If there is continued concern for occult fracture, consider dedicated rib series.")).trace)
    stated = {f for _, f, s, _ in got if s != "absent"}
    assert not stated & {"pleural_effusion", "fracture", "rib_fracture", "aortic_enlargement"}, got


def test_tenth_round_patterns():
    got = items(clean("An air-fluid level is seen in the upper right abdomen immediately below the right "
                      "hemidiaphragm. There are several ill-defined focal opacities in the left and right mid lung "
                      "zones. Mediastinum is shifted to the left.", {"lung_opacity": 1}))
    stated = {(f, lat) for _, f, s, lat in got if s != "absent"}
    assert ("cavity", "right") not in stated and not any(f == "cavity" for f, _ in stated), got  # below the diaphragm
    assert ("lung_opacity", "bilateral") in stated and ("mediastinal_shift", "left") in stated, got
    # a new finding on the other side is not a shared side
    two = items(clean("Small left pleural effusion and right lower lobe atelectasis.",
                      {"pleural_effusion": 1, "atelectasis": 1}))
    assert ("pleura", "pleural_effusion", "present", "left") in two, two


def test_zones_and_places_keep_their_words_in_the_think_text():
    def lungs(text: str) -> str:
        trace = clean(text)
        return " ".join(i["evidence"] for i in trace["perception"] if i["region"] in ("lungs", "bones_soft_tissue"))

    assert "bibasilar" in lungs("Bibasilar interstitial edema.")
    assert "right mid and upper lung zone" in lungs("Scarring in the right mid and upper lung zone.")
    assert "both lower lung zones" in lungs("Opacities in the lower lung zones bilaterally.")
    assert "right upper lung" in lungs("Patchy opacity in the right upper lung.")
    assert "thoracic spine" in lungs("Degenerative changes of the thoracic spine.")


def test_tenth_read_patterns():
    # a report that reads a finding itself gets no stock alternative against its reading
    st = study("Two nodules are noted in the right lung measuring 13 mm and 16 mm.",
               impression="Right lung nodules concerning for metastatic disease.", labels={"lung_lesion": 1})
    st = replace(st, knowledge=("multiple_pulmonary_nodules", "pulmonary_nodule", "granuloma", "lung_mass"))
    trace = writer(**{"teacher.error_rate": 0.0}).write(st).trace
    cited = {k for step in trace["reasoning"] for k in step["knowledge"]}
    assert "granuloma" not in cited, trace["reasoning"]
    assert ("lungs", "multiple_pulmonary_nodules", "present", "right") in items(trace), items(trace)
    st = study("Patchy opacities at the left base compatible with atelectasis.", labels={"atelectasis": 1})
    st = replace(st, knowledge=("lung_opacity", "atelectasis", "edema", "pneumonia"))
    steps = writer(**{"teacher.error_rate": 0.0}).write(st).trace["reasoning"]
    opacity = next(step for step in steps if step["conclusion"] == "lung_opacity")  # its own step comes first
    assert opacity["knowledge"] == ["lung_opacity"], opacity
    # "A/B" stays one hedged pair, never two definite findings
    got = items(clean("Minimal XXXX left basilar scarring/atelectasis.", {"atelectasis": -1}))
    assert {(f, st_) for _, f, st_, _ in got if f in ("atelectasis", "lung_scarring")} == {
        ("atelectasis", "uncertain"), ("lung_scarring", "uncertain")}, got
    # a hydropneumothorax backs a pleural-effusion label (the MeSH mapping gives it both) without a second item
    got = items(clean("There is a large hydropneumothorax within the left chest.",
                      {"pneumothorax": 1, "pleural_effusion": 1}))
    assert ("pleura", "hydropneumothorax", "present", "left") in got
    assert not any(f == "pleural_effusion" and st_ != "absent" for _, f, st_, _ in got), got


def test_tenth_read_patterns_after_review():
    w = writer(**{"teacher.error_rate": 0.0})
    # "has resolved" in the findings, "resolving" in the impression: the trace says neither
    tr = w.write(study("Pulmonary venous engorgement has resolved. Heart size is now normal.",
                       impression="Resolving pulmonary venous hypertension.")).trace
    assert not any(f == "pulmonary_vascular_congestion" for _, f, _, _ in items(tr)), items(tr)
    # calcified mediastinal nodes keep their place
    ev = [i["evidence"] for i in clean("Calcified mediastinal XXXX. The lungs are clear.")["perception"]
          if i["finding"] == "calcified_lymph_nodes"]
    assert ev and "mediastinal" in ev[0].lower(), ev
    # an airspace opacity elsewhere stays beside an interstitial pattern
    got = items(clean("Interstitial opacities within the right lung base, with patchy airspace opacity within the "
                      "right lung apex.", {"lung_opacity": 1}))
    assert ("lungs", "lung_opacity", "present", "right") in got and (
        "lungs", "interstitial_abnormality", "present", "right") in got, got


def test_a_vascular_calcification_is_the_aortas_only_where_the_report_says_so():
    trace = clean("Vascular calcification is noted. The lungs are clear.")
    assert not any(i["finding"] == "aortic_calcification" for i in trace["perception"]), trace["perception"]
    # a vascular calcification of its own (an entry since the twenty-third read), never a "nothing to add"
    mediastinum = [i for i in trace["perception"] if i["region"] == "heart_mediastinum"]
    assert [(i["finding"], i["status"]) for i in mediastinum] == [("vascular_calcification", "present")], mediastinum
    got = items(clean("There are vascular calcifications over the aortic XXXX. The lungs are clear."))
    assert ("heart_mediastinum", "aortic_calcification", "present", "none") in got, got


def test_a_false_finding_rationale_reads_for_a_sign_of_one_thing_or_several():
    import random

    from datakit.annotate import offline_words as W

    one = W.hallucinated_note("Pneumothorax", "a thin white visceral pleural line", "No pneumothorax.", False,
                              random.Random(0))
    several = W.hallucinated_note("Atelectasis", "linear or band-like opacities", "No atelectasis.", True,
                                  random.Random(0))
    assert "no a " not in one and "shows no thin white visceral pleural line" in one, one
    assert "there is no linear" not in several and "shows no linear or band-like opacities" in several, several


def test_an_old_deformity_keeps_its_age():
    for text, word in (("Deformity of the lateral left 6th rib, XXXX old injury.", "old"),
                       ("Deformity of the right clavicle related to remote XXXX is again seen.", "remote")):
        ev = [i["evidence"] for i in clean(text)["perception"] if i["finding"].endswith("fracture")]
        assert ev and word in ev[0].lower(), (text, ev)


def test_flattened_diaphragms_leave_the_diaphragm_without_a_nothing_to_add_item():
    trace = clean("The lungs are hyperexpanded, with flattened diaphragms. No effusion.")
    assert ("lungs", "hyperinflation", "present", "none") in items(trace)
    assert not any(i["region"] == "upper_abdomen" for i in trace["perception"]), trace["perception"]


def test_a_fracture_without_an_age_is_no_incidental_or_chronic_change():
    last = clean("Fracture is present in the posterior portion of the right 3rd rib. Cutaneous air is present.",
                 {"fracture": 1})["reasoning"][-1]["inference"].lower()
    assert "incidental" not in last and "chronic" not in last, last
    last = clean("Old healed left 5th and 6th rib fractures. The lungs are clear.",
                 {"fracture": 1})["reasoning"][-1]["inference"].lower()
    assert "rests on" not in last, last


def _impression(trace: dict) -> str:
    return trace["reasoning"][-1]["observation"] + " → " + trace["reasoning"][-1]["inference"]


def test_a_malpositioned_line_keeps_its_tip_and_leads_the_impression():
    trace = writer(**{"teacher.error_rate": 0.0}).write(study(
        "Heart size is normal. Right PICC line is in XXXX. The tip has moved into the left innominate vein. "
        "Small left pleural effusion.", impression="Malpositioned right PICC line tip. Small left effusion.",
        labels={"support_devices": 1, "pleural_effusion": 1})).trace
    picc = [i["evidence"] for i in trace["perception"] if i["finding"] == "picc"]
    assert picc and "malpositioned" in picc[0].lower() and "tip in the left innominate vein" in picc[0], picc
    last = _impression(trace).lower()
    assert "incidental" not in last.split("malpositioned")[0] and "rests on malpositioned" in last \
        or "main findings are malpositioned" in last, last
    # a retracted line stated in the findings alone is not incidental either
    trace = writer(**{"teacher.error_rate": 0.0}).write(study(
        "Right lower lobe consolidation. A right upper extremity PICC is seen with the tip in the right "
        "brachiocephalic vein, representing an interval retraction of approximately 6 cm.",
        impression="Right lower lobe pneumonia.", labels={"support_devices": 1, "consolidation": 1,
                                                          "pneumonia": 1})).trace
    assert "incidental" not in _impression(trace), _impression(trace)


def test_a_hedged_finding_stays_hedged_beside_no_acute_abnormality():
    trace = clean("Question of a small hiatal hernia, XXXX appreciated on lateral view. Clear lungs.")
    last = _impression(trace).lower()
    assert "beyond possible hiatal hernia" in last, last


def test_no_acute_abnormality_is_said_only_beside_what_is_incidental_or_chronic():
    # a possible lymphadenopathy or left atrial enlargement wants an explanation: it is not "not acute"
    for text in ("Bilateral hilar lymphadenopathy is suspected. Clear lungs.",
                 "Question left atrial enlargement, XXXX appreciated on lateral view. Clear lungs."):
        steps = " ".join(s["inference"] for s in clean(text)["reasoning"]).lower()
        assert "no acute" not in steps and "not acute" not in steps, steps
    # emphysema and a granuloma are chronic: beside them the study has nothing acute
    last = _impression(clean("Hyperinflated lungs with emphysema. Calcified right upper lobe granuloma.")).lower()
    assert "no acute cardiopulmonary abnormality" in last, last
    # ... unless the report's impression says so itself
    last = _impression(writer(**{"teacher.error_rate": 0.0}).write(study(
        "Bilateral hilar lymphadenopathy is suspected. Clear lungs.",
        impression="No acute cardiopulmonary abnormality.")).trace).lower()
    assert "no acute cardiopulmonary abnormality" in last, last


def test_otherwise_narrows_a_negative_only_beside_a_finding_of_its_region():
    ev = {i["finding"]: i["evidence"] for i in clean(
        "Streaky right basilar airspace opacities. Otherwise, no focal consolidation.")["perception"]}
    assert "no other focal consolidation" in ev["consolidation"].lower(), ev
    ev = {i["finding"]: i["evidence"] for i in clean(
        "The cardiac silhouette is borderline enlarged. Otherwise, there is no focal opacity.")["perception"]}
    assert "other" not in ev["lung_opacity"].lower() and "focal" in ev["lung_opacity"].lower(), ev


def test_a_cleared_finding_gives_no_negative_beside_the_one_that_persists():
    got = items(clean("Consolidation and atelectasis in the left lower lobe have cleared in the interval. A "
                      "persistent patchy infiltrate is present in the right middle lobe."))
    assert not any(f in ("consolidation", "atelectasis") and s == "absent" for _, f, s, _ in got), got
    assert ("lungs", "lung_opacity", "present", "right") in got, got


def test_borderline_cardiomegaly_is_offered_no_differential():
    trace = clean("The cardiac silhouette is borderline enlarged. No pneumothorax.")
    step = next(s for s in trace["reasoning"] if s["conclusion"] == "cardiomegaly")
    assert "pericardial" not in step["inference"] and step["knowledge"] == ["cardiomegaly"], step


def test_a_curve_that_may_be_positional_is_uncertain():
    got = items(clean("Mild dextro curvature of the lower thoracic spine, this may be positional. Lungs clear."))
    assert ("bones_soft_tissue", "scoliosis", "uncertain", "none") in got, got


def test_a_shadow_the_report_explains_as_scar_is_as_incidental_as_the_scar():
    trace = writer(**{"teacher.error_rate": 0.0}).write(study(
        "There are changes of chronic lung disease noticed by hyperinflated lungs and streaky opacities compatible "
        "with scar. No pneumothorax.", impression="Chronic changes with no acute cardiopulmonary disease.",
        labels={"lung_opacity": 1})).trace
    last = _impression(trace).lower()
    assert "rests on" not in last and "main finding" not in last, last


def test_a_calcified_adenopathy_is_one_calcified_node_and_a_healing_rib_fracture_keeps_its_ribs():
    got = items(clean("A large calcified right mediastinal adenopathy. The lungs are clear."))
    assert ("hila", "calcified_lymph_nodes", "present", "right") in got, got
    assert not any(f == "lymphadenopathy" for _, f, _, _ in got), got
    trace = writer(**{"teacher.error_rate": 0.0}).write(study(
        "Unchanged fracture with callus at the left 9th lateral rib. Lungs are clear.",
        impression="No acute cardiopulmonary abnormality.", labels={"fracture": 1})).trace
    ev = [i["evidence"] for i in trace["perception"] if i["finding"] == "rib_fracture"]
    assert ev and "healing left 9th rib fracture" in ev[0].lower(), ev
    assert "rests on" not in _impression(trace).lower(), _impression(trace)


def test_blunting_the_report_reads_as_atelectasis_or_scarring_offers_no_effusion():
    got = items(clean("Mild blunting left costophrenic recess, possibly mild atelectasis or scarring. No large "
                      "volume pleural effusion."))
    assert not any(f == "pleural_effusion" and s != "absent" for _, f, s, _ in got), got


def test_nodes_in_the_paratracheal_region_leave_the_mediastinum_without_a_nothing_to_add_item():
    got = clean("Heart size is normal. Granulomatous calcifications in the paratracheal region.")["perception"]
    said = [i["evidence"].lower() for i in got if i["region"] == "heart_mediastinum"]
    assert not any("paratracheal" in e and "nothing" in e for e in said), said
    assert any(i["finding"] == "cardiomegaly" and i["status"] == "absent" for i in got), got


def test_an_impression_calling_nothing_acute_keeps_the_chronic_shadows_incidental():
    trace = writer(**{"teacher.error_rate": 0.0}).write(study(
        "No pneumothorax or pleural effusion. Unchanged streaky opacities in the bilateral costophrenic sulci XXXX "
        "represent chronic scarring or atelectasis.", impression="No acute cardiopulmonary abnormality.",
        labels={"lung_opacity": 1, "atelectasis": -1})).trace
    last = _impression(trace).lower()
    assert "rests on" not in last and "main finding" not in last and "no acute" in last, last


def test_a_drafts_false_finding_is_not_incidental_because_the_report_calls_nothing_acute():
    text = "Degenerative changes of the spine. No pneumothorax. No pleural effusion. The lungs are clear."
    for seed in range(6):
        out = writer(**{"teacher.error_rate": 1.0, "teacher.error_kinds": ["hallucinated"], "teacher.seed": seed}
                     ).write(study(text, impression="No acute cardiopulmonary abnormality.", sid=f"n{seed}"))
        (fix,) = [c for c in out.trace["reflection"]["corrections"] if c["kind"] == "hallucinated"]
        name = KB.get(fix["finding"]).name.lower()
        last = _impression(out.trace).split("→")[1].lower()
        if name in last:  # the draft believes it: it leads, it is not "incidental or chronic"
            assert "incidental" not in last.split(name)[0] and ("rests on" in last or "main finding" in last), last


def test_an_icds_leads_are_no_pacemaker_and_a_relative_clause_describes_its_finding():
    got = items(clean("Left chest AICD with leads in the right atrium and ventricle. The lungs are clear."))
    assert ("lines_devices", "implantable_defibrillator", "present", "left") in got, got
    assert not any(f == "pacemaker" for _, f, _, _ in got), got
    ev = [i["evidence"] for i in clean("There is a moderate right pleural effusion, which is partially loculated.")[
        "perception"] if i["finding"] == "pleural_effusion"]
    assert ev and "partially loculated" in ev[0], ev
    ev = [i["evidence"] for i in clean("PICC line catheter tip XXXX in the right atrium.")["perception"]
          if i["finding"] == "picc"]
    assert ev and "tip in the right atrium" in ev[0], ev


def test_a_bilateral_finding_keeps_the_side_it_favours_and_only_its_own():
    ev = {i["finding"]: (i["laterality"], i["evidence"]) for i in clean(
        "There is right greater than left bibasilar atelectasis. Left lower lobe airspace disease and bilateral "
        "pleural effusions, left greater than right.")["perception"] if i["status"] == "present"}
    assert ev["atelectasis"][0] == "bilateral" and "right greater than left" in ev["atelectasis"][1], ev
    assert ev["pleural_effusion"][0] == "bilateral" and "left greater than right" in ev["pleural_effusion"][1], ev
    assert ev["lung_opacity"][0] == "left" and "greater" not in ev["lung_opacity"][1], ev
    # a side that adds nothing to the bilateral item of the same finding is that item again
    got = items(clean("Right and left pleural effusions. Bilateral pleural effusions, right larger than left."))
    assert [x for x in got if x[1] == "pleural_effusion"] == [("pleura", "pleural_effusion", "present",
                                                               "bilateral")], got


def test_the_impression_step_agrees_its_verb_with_a_plural_finding():
    trace = writer(**{"teacher.error_rate": 0.0}).write(study(
        "Small right pleural effusion. Degenerative changes of the spine.",
        impression="Small right pleural effusion.", labels={"pleural_effusion": 1})).trace
    last = _impression(trace)
    assert "spine is incidental" not in last and ("spine are incidental" in last or "as incidental" in last), last
    from datakit.annotate.offline_words import _be
    assert [_be([n]) for n in ("degenerative changes of the spine", "scoliosis", "tortuous (unfolded) aorta",
                               "calcified lymph nodes")] == ["are", "is", "is", "are"]


def test_a_placed_opacity_of_its_own_words_stays_beside_an_interstitial_pattern():
    got = items(clean("Chronic interstitial markings. Left base opacity. No pneumothorax.",
                      labels={"lung_opacity": 1}))
    assert ("lungs", "lung_opacity", "present", "left") in got, got
    assert ("lungs", "interstitial_abnormality", "present", "none") in got, got
    # the same words are one finding: "interstitial opacities" are no lung opacity besides
    got = items(clean("Bilateral interstitial opacities.", labels={"lung_opacity": 1}))
    assert not any(f == "lung_opacity" for _, f, _, _ in got), got


def test_congestion_does_not_swallow_edema_and_one_mentions_grade_reaches_the_other():
    got = items(writer(**{"teacher.error_rate": 0.0}).write(study(
        "Pulmonary venous engorgement. Bibasilar interstitial infiltrates.",
        impression="Pulmonary venous engorgement and bibasilar pulmonary interstitial edema.",
        labels={"edema": 1, "lung_opacity": 1})).trace)
    assert ("lungs", "edema", "present", "bilateral") in got and any(
        f == "pulmonary_vascular_congestion" for _, f, _, _ in got), got
    trace = writer(**{"teacher.error_rate": 0.0}).write(study(
        "The upper lobe pulmonary vascularity appears prominent consistent with pulmonary venous hypertension.",
        impression="Mild vascular prominence.", labels={"edema": 1})).trace
    pvc = [i for i in trace["perception"] if i["finding"] == "pulmonary_vascular_congestion"]
    assert pvc and pvc[0]["severity"] == "mild", pvc


def test_a_device_step_says_what_the_device_is_and_a_resolved_finding_is_no_alternative():
    trace = clean("Median sternotomy wires. Surgical clips overlie the mediastinum. Clear lungs.",
                  labels={"support_devices": 1})
    steps = {s["conclusion"]: s["inference"] for s in trace["reasoning"]}
    assert "close the sternum" in steps["sternotomy_wires"] and "metallic clips" in steps["surgical_clips"], steps
    retrieved = ("pleural_effusion", "atelectasis")
    base = study("The left hemidiaphragm remains elevated. Previously seen left pleural effusion has resolved.")
    trace = writer(**{"teacher.error_rate": 0.0}).write(replace(base, knowledge=retrieved)).trace
    step = [s for s in trace["reasoning"] if s["conclusion"] == "elevated_hemidiaphragm"][0]
    assert "pleural_effusion" not in step["knowledge"], step
    # a report that names the cause of the raised dome gets no stock differential for it
    trace = writer(**{"teacher.error_rate": 0.0}).write(replace(study(
        "Mild elevation of the right hemidiaphragm.", impression="Eventration of right hemidiaphragm."),
        knowledge=retrieved)).trace
    step = [s for s in trace["reasoning"] if s["conclusion"] == "elevated_hemidiaphragm"][0]
    assert step["knowledge"] == ["elevated_hemidiaphragm"], step


def test_plural_effusions_without_a_side_are_bilateral_and_keep_the_reports_words():
    ev = {i["finding"]: (i["laterality"], i["evidence"]) for i in clean(
        "There are minimal posterior pleural effusions. Anterior wedging of multiple vertebral bodies including "
        "T6, T8, T11 and T12. Mitral valve replacement seen.", labels={"pleural_effusion": 1,
                                                                       "support_devices": 1})["perception"]}
    assert ev["pleural_effusion"][0] == "bilateral" and "minimal bilateral pleural effusion" in ev[
        "pleural_effusion"][1], ev
    assert "wedge deformities at T6, T8, T11 and T12" in ev["vertebral_wedge_deformity"][1], ev
    assert "prosthetic mitral valve" in ev["prosthetic_valve"][1].lower(), ev
    # a side the report gives elsewhere wins
    got = items(clean("Small right pleural effusion. Pleural effusions are unchanged.",
                      labels={"pleural_effusion": 1}))
    assert ("pleura", "pleural_effusion", "present", "right") in got and not any(
        lat == "bilateral" for _, _, _, lat in got), got


def test_a_region_a_findings_words_name_is_not_called_unremarkable():
    got = items(clean("Stable prominence of the central pulmonary vasculature. Upper abdominal midline surgical "
                      "sutures are likewise stable.", labels={"edema": 1}))
    regions = {r for r, f, _, _ in got if f == "normal"}
    assert "hila" not in regions and "upper_abdomen" not in regions, got


def test_the_reports_causes_for_one_side_are_no_differential_of_the_other():
    trace = writer(**{"teacher.error_rate": 0.0}).write(replace(study(
        "There has been interval development of bibasilar opacities. The appearance of the right base opacity "
        "suggests atelectasis. The left base opacities could represent early pneumonia or areas of atelectasis.",
        labels={"lung_opacity": 1, "atelectasis": -1, "pneumonia": -1}),
        knowledge=("atelectasis", "pneumonia"))).trace
    right = [s for s in trace["reasoning"] if s["conclusion"] == "atelectasis"
             and "right" in s["observation"].lower()]
    assert right and "pneumonia" not in right[0]["knowledge"], right
    # a shadow the findings state stays present when the impression weighs its causes
    got = items(writer(**{"teacher.error_rate": 0.0}).write(study(
        "Decreased left basilar airspace disease.", impression="Improved left basilar atelectasis or infiltrate.",
        labels={"lung_opacity": 1, "atelectasis": -1})).trace)
    assert ("lungs", "lung_opacity", "present", "left") in got, got


def test_another_films_sentences_say_nothing_of_the_chest():
    got = items(clean("Both lungs are clear and expanded. Heart and mediastinum normal. Right foot. Hindfoot, "
                      "midfoot, forefoot XXXX are intact with no fractures or bone destruction."))
    assert not any(f in ("fracture", "rib_fracture") for _, f, _, _ in got), got


def test_the_features_of_copd_show_it_rather_than_stand_beside_it():
    trace = writer(**{"teacher.error_rate": 0.0}).write(study(
        "Lungs are hyperexpanded. Bullae are present in the upper lobes. Small right pleural effusion.",
        impression="Findings of COPD. Small right effusion.", labels={"pleural_effusion": 1})).trace
    last = _impression(trace)
    assert "shown by hyperinflation and bulla" in last and "incidental" not in last, last


def test_a_region_with_a_finding_is_no_ground_for_an_injected_hallucination():
    # "Otherwise, the lungs are clear" beside septal lines covers the lungs but rules no other lung finding out
    text = "A few septal lines of the left lateral sulcus. Otherwise, the lungs are clear. No pneumothorax."
    for seed in range(12):
        out = writer(**{"teacher.error_rate": 1.0, "teacher.seed": seed}).write(study(text, sid=f"h{seed}"))
        for c in (out.trace or {}).get("reflection", {}).get("corrections", []):
            if c["kind"] == "hallucinated":
                assert KB.get(c["finding"]).region != "lungs", c



def test_a_heading_of_postsurgical_changes_is_no_finding_of_its_own():
    got = items(clean("Postsurgical changes include left chest pacemaker, sternotomy wires and surgical clips.",
                      labels={"support_devices": 1}))
    assert not any(f == "postsurgical_change" for _, f, _, _ in got), got
    assert ("lines_devices", "pacemaker", "present", "left") in got, got


def test_causes_weighed_for_another_finding_are_no_lung_findings():
    got = items(writer(**{"teacher.error_rate": 0.0}).write(study(
        "", impression="Enlarging right hilar adenopathy. The lungs appear grossly clear. Findings could represent "
                       "resolving histoplasmosis infection, sarcoidosis, or lymphoma or primary lung cancer.")).trace)
    assert not any(r == "lungs" and f != "normal" for r, f, _, _ in got), got
    assert any(f == "lymphadenopathy" for _, f, _, _ in got), got


def test_a_chest_tube_beside_the_pneumothorax_it_drains_is_no_incidental_device():
    t = clean("Moderate left pneumothorax. Left pleural catheter overlies the left upper lung.",
              labels={"pneumothorax": 1, "support_devices": 1})
    summary = t["reasoning"][-1]["inference"]
    assert "in place" in summary and "incidental" not in summary, summary


def test_two_vertebral_levels_one_blunted_angle_and_a_differential_joined_by_and_or():
    t = clean("There is XXXX deformity of T6. Mild XXXX deformity of T12, stable.")
    wedge = [i for i in t["perception"] if i["finding"] == "vertebral_wedge_deformity"]
    assert len(wedge) == 1 and "T6 and T12" in wedge[0]["evidence"] and wedge[0]["severity"] is None, wedge
    # the blunted left angle and the impression's "with pleural effusion" are one left effusion, present
    writer_ = writer(**{"teacher.error_rate": 0.0})
    t = writer_.write(study("Blunting of the left costophrenic XXXX. Increased interstitial opacities.",
                            "Diffuse interstitial lung disease with pleural effusion.",
                            labels={"pleural_effusion": 1, "lung_opacity": 1})).trace
    eff = [(i["status"], i["laterality"]) for i in t["perception"] if i["finding"] == "pleural_effusion"]
    assert eff == [("present", "left")], eff
    # the report's own other choice is the differential, not a stock one
    t = clean("Minimal left costophrenic XXXX airspace disease and/or pleural effusion. Lungs are otherwise clear.",
              labels={"lung_opacity": 1, "pleural_effusion": 1})
    step = next(s for s in t["reasoning"] if s["conclusion"] == "lung_opacity")
    assert "pleural_effusion" in step["knowledge"] and "edema" not in step["knowledge"], step


def test_a_differential_comes_from_the_corrected_perception_not_the_drafts_error():
    # with an error rate of 1 every study gets a draft error; whichever it is, no finding's differential may name a
    # finding only the draft holds
    text = ("There is ill-defined airspace opacity in the posterior left lower lobe. There is focal opacity in the "
            "right upper lobe which suggests scar and/or granulomatous calcification.")
    imp = ("1. Patchy left lower lobe airspace disease, concerning for pneumonia. 2. Right upper lobe opacity, "
           "favoring scarring and/or granulomas.")
    for sid in ("a", "b", "c", "d", "e", "f"):
        out = writer(**{"teacher.error_rate": 1.0}).write(study(text, imp, labels={"lung_opacity": 1}, sid=sid))
        t = out.trace
        left_opacity = next(s for s in t["reasoning"] if s["conclusion"] == "lung_opacity"
                            and "left" in s["observation"])
        assert "lung_scarring" not in left_opacity["knowledge"], (sid, left_opacity)


def test_a_normal_mediastinum_beside_an_enlarged_heart_and_vascular_calcification():
    t = clean("The heart is enlarged. The mediastinum is within normal limits. Vascular calcification is noted. "
              "The lungs are clear.", labels={"cardiomegaly": 1})
    got = {(i["finding"], i["status"]) for i in t["perception"]}
    assert ("mediastinal_widening", "absent") in got and ("enlarged_cardiomediastinum", "absent") not in got, got
    assert ("vascular_calcification", "present") in got, got
    # placed in the aorta, it is the aorta's
    t = clean("There are vascular calcifications over the aortic XXXX. The lungs are clear.")
    got = {(i["finding"], i["status"]) for i in t["perception"]}
    assert ("aortic_calcification", "present") in got and ("vascular_calcification", "present") not in got, got


def test_a_mass_in_the_aortopulmonary_window_and_an_aneurysm_of_the_pulmonary_artery():
    t = writer(**{"teacher.error_rate": 0.0}).write(study(
        "Normal heart size. Lungs are hyperinflated.",
        "Circumscribed structure in the AP XXXX could represent lymphadenopathy, mass, pulmonary arterial "
        "abnormality XXXX as aneurysm.")).trace
    got = {(i["finding"], i["status"]) for i in t["perception"]}
    assert ("mediastinal_widening", "uncertain") in got and ("pulmonary_artery_enlargement", "uncertain") in got, got
    assert not {("lung_mass", "uncertain"), ("aortic_enlargement", "uncertain")} & got, got


def test_the_reasoning_keeps_a_range_and_a_predominant_side():
    t = clean("Small to moderate bilateral pleural effusions, left greater than right.", {"pleural_effusion": 1})
    step = next(s for s in t["reasoning"] if s["conclusion"] == "pleural_effusion")
    assert "small to moderate in size" in step["inference"] and "left greater than right" in step["inference"], step


def test_lines_and_tubes_placed_for_care_are_in_place_not_incidental():
    t = clean("Endotracheal tube tip 4 cm above the carina. Left IJ central venous catheter tip in the SVC. "
              "Small left pleural effusion. Mild degenerative changes of the spine.",
              labels={"support_devices": 1, "pleural_effusion": 1})
    summary = t["reasoning"][-1]["inference"]
    assert "central venous catheter in place" in summary and "endotracheal tube" in summary, summary
    assert "catheter as incidental" not in summary and summary.count(" with ") <= 1, summary


def test_calcified_nodes_at_the_hilum_and_in_the_mediastinum_keep_both_places():
    t = clean("There are calcified right hilar and mediastinal lymph XXXX. The lungs are clear.")
    nodes = [i for i in t["perception"] if i["finding"] == "calcified_lymph_nodes"]
    assert nodes and "hilar and mediastinal" in nodes[0]["evidence"] and nodes[0]["laterality"] == "right", nodes


def test_no_normal_conclusion_beside_a_finding_the_report_wants_followed_up():
    # IU-Xray study 1925: hilar enlargement has no CheXpert label, but the report asks for follow-up imaging
    text = "The heart is normal in size. There is bihilar prominence. The lungs are clear."
    imp = ("Bihilar prominence may be secondary mild lymphoid enlargement. Followup chest x-XXXX versus further "
           "imaging XXXX may be indicated.")
    for seed in range(6):
        out = writer(**{"teacher.error_rate": 1.0, "teacher.error_kinds": ["hallucinated"], "teacher.seed": seed}
                     ).write(study(text, imp, sid=f"f{seed}"))
        for fix in out.trace["reflection"]["corrections"]:
            assert not (fix["finding"] == "no_finding" and fix["after"]["status"] == "present"), fix
        got = {(i["finding"], i["status"]) for i in out.trace["perception"]}
        assert ("lymphadenopathy", "uncertain") in got


def test_a_missed_finding_beside_no_acute_abnormality_keeps_that_conclusion():
    # IU-Xray study 2433: subsegmental atelectasis takes "No Finding" away, not "no acute abnormality"
    text = ("Low lung volumes with bibasilar subsegmental atelectasis. No focal consolidations, pleural effusions, "
            "or pneumothoraces. Cardiomediastinal silhouette is within normal limits.")
    notes = []
    for seed in range(8):
        out = writer(**{"teacher.error_rate": 1.0, "teacher.error_kinds": ["missed"], "teacher.seed": seed}
                     ).write(study(text, "No acute cardiopulmonary abnormality.", labels={"atelectasis": 1},
                                   sid=f"m{seed}"))
        notes += [c["note"] for c in out.trace["reflection"]["corrections"] if c["finding"] == "no_finding"]
    assert notes, "the missed atelectasis should flip the draft's normal conclusion at least once"
    assert all("not normal" not in n and "nothing acute" in n for n in notes), notes

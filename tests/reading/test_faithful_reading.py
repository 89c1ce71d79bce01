"""The finding reader on the patterns a radiologist's review of offline traces found misread (issue 15).

Each case is a report sentence written for these tests, the (entry, status[, side]) readings it must give and
those it must not. Statuses: P present, U uncertain, A absent. The labeler shares the engine; its cases follow.
"""

from __future__ import annotations

import pytest

from datakit.knowledge.kb import load_kb
from datakit.reading.findings import FindingReader
from datakit.reading.labeler import Labeler

S = {"P": "present", "U": "uncertain", "A": "absent"}

CASES = [
    # 1. attribution: a shadow explained by bone, the nipple, a device or a vessel is no lung finding
    ("Opacity over the right lower chest represents a healing rib fracture.",
     [("rib_fracture", "P", "right")], ["lung_opacity", "pulmonary_nodule"]),
    ("Nodular density at the left base reflects the nipple shadow.", [], ["pulmonary_nodule", "lung_opacity"]),
    # the explanation may come ten words after the shadow, past its place and view
    ("Small nodular density over the left lower chest on the frontal view is consistent with a nipple shadow.",
     [], ["pulmonary_nodule", "lung_opacity"]),
    ("Left basilar opacity is related to callus from an old rib fracture.",
     [("rib_fracture", "P", "left")], ["lung_opacity"]),
    ("Density projecting over the left upper lung is due to overlapping bone rather than a nodule.",
     [("pulmonary_nodule", "A", None)], ["lung_opacity"]),
    ("Rounded opacity in the right midlung corresponds to an end-on vessel.", [], ["pulmonary_nodule", "lung_opacity"]),
    ("Patchy opacity in the right lower lobe consistent with pneumonia.",
     [("lung_opacity", "P", "right"), ("pneumonia", "P", None)], []),
    # external leads are not a pacemaker; a pacemaker's leads are
    ("Monitor leads overlie the chest.", [("ecg_leads", "P", None)], ["pacemaker"]),
    ("External monitoring wires project over the chest.", [("ecg_leads", "P", None)], ["pacemaker"]),
    ("Left chest wall pacemaker with leads in the right atrium and ventricle.", [("pacemaker", "P", "left")], []),
    # 2. prior studies and other modalities
    ("Prior CT demonstrated a small right lower lobe nodule.", [], ["pulmonary_nodule"]),
    ("The consolidation described on the outside chest CT is not seen.", [], ["consolidation"]),
    ("The previous film showed a left pleural effusion.", [], ["pleural_effusion"]),
    ("Small left pleural effusion, increased from the prior radiograph.", [("pleural_effusion", "P", "left")], []),
    # 3. stable / unchanged structure words say nothing
    ("Stable cardiomediastinal silhouette.", [], ["enlarged_cardiomediastinum"]),
    ("The mediastinal contours are unchanged.", [], ["enlarged_cardiomediastinum"]),
    ("Heart size is stable.", [], ["cardiomegaly"]),
    ("Stable mild enlargement of the cardiac silhouette.", [("cardiomegaly", "P", None)], []),
    # qualifiers stay with their own structure
    ("Heart size borderline enlarged, mediastinal contours similar to before.", [("cardiomegaly", "U", None)],
     ["enlarged_cardiomediastinum"]),
    ("Enlarged cardiac silhouette, normal mediastinal contours.",
     [("cardiomegaly", "P", None), ("enlarged_cardiomediastinum", "A", None)], []),
    # negation in lists and "without ... change of"
    ("No pneumothorax, pleural effusion or focal consolidation.",
     [("pneumothorax", "A", None), ("pleural_effusion", "A", None), ("consolidation", "A", None)], []),
    ("Without significant change of the small left effusion.", [("pleural_effusion", "P", "left")], []),
    ("No acute bony abnormality. Degenerative changes of the thoracic spine.",
     [("degenerative_spine", "P", None)], []),
    # hedges are never present
    ("Left lower lobe atelectasis versus pneumonia.",
     [("atelectasis", "U", "left"), ("pneumonia", "U", "left")], []),
    ("Right basilar atelectasis or scarring.", [("atelectasis", "U", "right"), ("lung_scarring", "U", "right")], []),
    ("Streaky opacities may be atelectasis or possibly early pneumonia.",
     [("atelectasis", "U", None), ("pneumonia", "U", None)], []),
    ("Probable right middle lobe pneumonia.", [("pneumonia", "U", "right")], []),
    ("The opacity could also represent atelectasis.", [("atelectasis", "U", None)], []),
    ("Small bilateral effusions are suggested on the lateral view.", [("pleural_effusion", "U", "bilateral")], []),
    # lexicon gaps
    ("Old broken ribs on the right.", [("rib_fracture", "P", "right")], []),
    ("Elevation of the right hemidiaphragm.", [("elevated_hemidiaphragm", "P", "right")], []),
    ("The left hemidiaphragm is elevated.", [("elevated_hemidiaphragm", "P", "left")], []),
    ("Tortuous and calcified thoracic aorta.", [("tortuous_aorta", "P", None), ("aortic_calcification", "P", None)],
     []),
    ("Mild anterior wedging of a mid thoracic vertebral body.", [("vertebral_wedge_deformity", "P", None)],
     ["vertebral_compression_fracture", "fracture"]),
    ("Median sternotomy wires are intact.", [("sternotomy_wires", "P", None)], []),
    ("Surgical clips in the right upper quadrant.", [("surgical_clips", "P", None)], []),
    ("Calcified XXXX granuloma in the right upper lobe.", [("granuloma", "P", "right")], []),
    ("Right humeral head bone anchors.", [("orthopedic_hardware", "P", None)], []),
    # sides of one-sided lobes and of a sentence with one side
    ("Lingular atelectasis.", [("atelectasis", "P", "left")], []),
    ("Middle lobe opacity.", [("lung_opacity", "P", "right")], []),
    ("Calcified granuloma, right base.", [("granuloma", "P", "right")], []),
    ("Bibasilar subsegmental atelectasis.", [("atelectasis", "P", "bilateral")], []),
    # second reads of accepted traces (this issue): a placeholder hiding "likely", a risk, a comparison of sides,
    # a mediastinal structure explaining a density, findings outside the 14 labels
    ("Right lower lobe opacity most XXXX representing acute infectious process.",
     [("lung_opacity", "P", "right"), ("pneumonia", "U", "right")], []),
    ("Patchy opacity most XXXX representing pneumonia.", [("pneumonia", "U", None)], []),
    ("CT may be helpful if the patient is at high XXXX for lung cancer.", [], ["lung_mass"]),
    ("CT may help if the patient is at high risk for lung cancer.", [], ["lung_mass"]),
    ("No obvious pneumothorax or hemothorax.", [("pneumothorax", "A", None)], ["empyema"]),
    # (the placeholder may have hidden "likely": the hernia is uncertain)
    ("Opacity at the base of the mediastinum which is XXXX a hiatal hernia.", [("hiatal_hernia", "U", None)],
     ["lung_opacity"]),
    ("Patchy airspace disease, XXXX a combination of atelectasis and consolidation.",
     [("atelectasis", "U", None), ("consolidation", "U", None)], []),
    ("Right middle and lower lobe patchy opacities.", [("lung_opacity", "P", "right")], []),
    ("Biapical pleuroparenchymal irregularities most compatible with scarring.",
     [("lung_scarring", "P", "bilateral")], []),
    ("Coronary artery stent. Pectus carinatum. A bullet in the soft tissues of the right chest wall.",
     [("coronary_stent", "P", None), ("pectus_carinatum", "P", None), ("foreign_body", "P", "right")],
     ["pectus_deformity"]),
    # a placeholder where a link word stood: what it hid may have been a hedge
    ("Minimal airspace opacity in the right middle lobe, XXXX atelectasis.",
     [("lung_opacity", "P", "right"), ("atelectasis", "U", None)], []),
    ("The appearance XXXX scarring or atelectasis.", [("atelectasis", "U", None)], []),
    ("Concerning findings for fibrosis in the bases.", [("pulmonary_fibrosis", "U", None)], []),
    ("Mild rightward deviation of the trachea.", [("tracheal_deviation", "P", "right")], []),
    ("Opacities may represent XXXX on end or alternatively, calcified granulomas.", [("granuloma", "U", None)], []),
    ("Primary differential considerations include increased size of prominent epicardial fat, pericardial mass, "
     "pleural mass or cardiac aneurysm.", [("pleural_other", "U", None)], ["aortic_enlargement"]),
    # twelfth read: the noun first, words between, placeholders hiding the noun
    ("Lung volumes are low.", [("low_lung_volumes", "P", None)], []),
    ("The lung volumes are decreased, with crowding.", [("low_lung_volumes", "P", None)], []),
    ("Lung volumes are not low.", [], ["low_lung_volumes"]),
    ("Degenerative changes seen within the midthoracic spine.", [("degenerative_spine", "P", None)],
     ["degenerative_joint_disease"]),
    ("Degenerative changes of the visualized thoracic spine.", [("degenerative_spine", "P", None)],
     ["degenerative_joint_disease"]),
    ("There are severe degenerative changes of the XXXX.", [("degenerative_joint_disease", "P", None)], []),
    ("Bilateral shoulder degenerative changes.", [("shoulder_degeneration", "P", "bilateral")],
     ["degenerative_joint_disease"]),
    ("Some tortuosity thoracic aorta.", [("tortuous_aorta", "P", None)], []),
    ("Calcified right hilar XXXX are present.", [("calcified_lymph_nodes", "P", "right")], ["lymphadenopathy"]),
    ("Calcification is seen within the aortic XXXX.", [("aortic_calcification", "P", None)], []),
    ("Cutaneous air is present.", [("subcutaneous_emphysema", "P", None)], []),
    ("Mild right apex curvature of the lower thoracic spine.", [("scoliosis", "P", "right")], []),
    # a rib's or clavicle's deformity is a possible old fracture, never a stated one
    ("Deformity of the lateral left 6th rib, XXXX old injury.", [("rib_fracture", "U", "left")], []),
    ("Contour irregularity of the left clavicle appears chronic and suggests old injury.",
     [("clavicle_fracture", "U", "left")], []),
    # findings the knowledge base lacked
    ("Patient appears morbidly obese.", [("obesity", "P", None)], []),
    ("Question left atrial enlargement on the lateral view.", [("left_atrial_enlargement", "U", None)],
     ["cardiomegaly"]),
    ("Stable postsurgical changes of the left hemithorax.", [("postsurgical_change", "P", "left")], []),
    ("Minimal grade 1 anterolisthesis of T10 on T11.", [("spondylolisthesis", "P", None)], []),
    # tenth read: "A/B" offers alternatives, as "A or B" does; "CABG/sternotomy" names one thing twice
    ("Minimal XXXX left basilar scarring/atelectasis.",
     [("lung_scarring", "U", "left"), ("atelectasis", "U", "left")], []),
    ("XXXX scar/subsegmental atelectasis in the lingula.",
     [("lung_scarring", "U", "left"), ("atelectasis", "U", "left")], []),
    ("Status post CABG/sternotomy.", [("sternotomy_wires", "P", None)], []),
    # a broken sternotomy wire is the device's fracture, not a bone's
    ("There is a fracture of superior sternotomy XXXX unchanged.", [("sternotomy_wires", "P", None)], ["fracture"]),
    ("Fractured sternal wires.", [("sternotomy_wires", "P", None)], ["fracture"]),
    # a counted plural is several nodules, not one
    ("Two nodules are noted in the right XXXX XXXX measuring 13 mm and 16 mm.",
     [("multiple_pulmonary_nodules", "P", "right")], ["pulmonary_nodule"]),
    # the bone named after the fracture; the place of a degenerative change named after a verb
    ("Degenerative disease is seen in the thoracic spine.", [("degenerative_spine", "P", None)],
     ["degenerative_joint_disease"]),
    ("Degenerative changes are present in the right shoulder.", [("shoulder_degeneration", "P", "right")],
     ["degenerative_joint_disease"]),
    # a hedged reading of a placed shadow takes its side (and place: test_location_and_descriptors)
    ("There are biapical opacities, possibly scarring.",
     [("lung_opacity", "P", "bilateral"), ("lung_scarring", "U", "bilateral")], []),
    # two findings of one aorta; a size word is no grade of a degenerative change
    ("The aorta is tortuous and ectatic.", [("tortuous_aorta", "P", None), ("aortic_enlargement", "P", None)], []),
    ("Tortuous and ectatic thoracic aorta.", [("tortuous_aorta", "P", None), ("aortic_enlargement", "P", None)],
     []),
    # eleventh read: "both" of two views is no side; a right-sided rib deformity is a possible old fracture; a
    # right aortic arch (IU-Xray hides the noun); the predominant side of emphysema
    ("Irregular 1.2 cm opacity in the left upper lung is identified both on PA and lateral views.",
     [("lung_opacity", "P", "left")], []),
    ("Old right-sided rib deformities are noted.", [("rib_fracture", "U", "right")], ["fracture"]),
    ("Stable appearance of the right aortic XXXX.", [("right_aortic_arch", "P", None)], []),
    ("Right-sided aortic XXXX.", [("right_aortic_arch", "P", None)], []),
    ("There is a tortuous and atherosclerotic calcified thoracic aorta.",
     [("tortuous_aorta", "P", None), ("aortic_calcification", "P", None)], []),
    ("She has a partial resection of the posterior fourth rib.", [("postsurgical_change", "P", None)], []),
    ("Prominent right epicardial fat XXXX.", [("epicardial_fat_pad", "P", "right")], []),
    ("There are emphysematous changes, particularly within the right upper lobe.", [("emphysema", "P", "right")],
     []),
    # a diagnosis (neoplasm, metastases) is no mass, lesion or count of nodules of its own
    ("Multiple nodules in both lungs consistent with neoplasm.", [("multiple_pulmonary_nodules", "P", "bilateral")],
     ["lung_mass", "lung_lesion"]),
    ("2 right lung pulmonary nodules concerning for metastatic disease.",
     [("multiple_pulmonary_nodules", "P", "right")], ["lung_lesion", "pulmonary_nodule"]),
    # air and fluid in the pleural space is a hydropneumothorax, not a separate effusion
    ("There is a large hydropneumothorax within the left chest.", [("hydropneumothorax", "P", "left")],
     ["pleural_effusion"]),
    # a placeholder right before an attribution hides its hedge ("most XXXX representing" is "most likely")
    ("Platelike opacities XXXX representing subsegmental atelectasis.",
     [("lung_opacity", "P", None), ("atelectasis", "U", None)], []),
    ("Retrocardiac opacity XXXX due at XXXX in part to atelectasis with right hemidiaphragm eventration.",
     [("atelectasis", "U", None), ("diaphragmatic_eventration", "P", "right")], []),
    # a dropped "of": "clear airspace disease" is clear of it
    ("Lungs are expanded and clear airspace disease.", [("lung_opacity", "A", None)], ["lung_opacity"]),
    # the article dropped, the noun hidden: still the finding
    ("Mild tortuosity aorta is redemonstrated.", [("tortuous_aorta", "P", None)], []),
    ("Lumbar vertebral body stabilization XXXX.", [("orthopedic_hardware", "P", None)], []),
    # a rib's contour deformity is a possible old fracture, whatever words come before it
    ("Chronic appearing right 5th rib contour deformity.", [("rib_fracture", "U", "right")], ["fracture"]),
    ("Tortuous dilated aorta. The aorta is calcified and tortuous.",
     [("tortuous_aorta", "P", None), ("aortic_enlargement", "P", None), ("aortic_calcification", "P", None)], []),
    ("Cervical fusion XXXX.", [("orthopedic_hardware", "P", None)], []),
    # "within normal limits" is the heart size's qualifier, as "normal" is
    ("The heart size and pulmonary vascularity appear within normal limits.", [("cardiomegaly", "A", None)], []),
    ("Cardiomediastinal silhouette is within normal limits.", [("enlarged_cardiomediastinum", "A", None)], []),
    # the sternum's two deformities keep their own names
    ("Pectus excavatum deformity.", [("pectus_excavatum", "P", None)], ["pectus_deformity", "pectus_carinatum"]),
    # eventration is its own entry: the cause of the raised dome, named
    ("Eventration of the anterior right hemidiaphragm.", [("diaphragmatic_eventration", "P", "right")],
     ["elevated_hemidiaphragm"]),
    # IU-Xray hides "Port-A-Cath" as "XXXX-a-XXXX"
    ("Right XXXX-a-XXXX remains in XXXX.", [("port_catheter", "P", "right")], ["support_devices"]),
    # a side before a later finding is that finding's; a side after coordinated findings is theirs
    ("Mediastinal calcification and dense right upper lung nodule suggest a previous granulomatous process.",
     [("calcified_lymph_nodes", "P", "none"), ("pulmonary_nodule", "P", "right")], []),
    ("Consolidation and atelectasis are present in the right lung base.",
     [("consolidation", "P", "right"), ("atelectasis", "P", "right")], []),
    # congestion is no edema, and "volume overload" is no edema either
    ("Vascular congestion without overt pulmonary edema. Findings of mild volume overload.",
     [("pulmonary_vascular_congestion", "P", None)], ["edema"]),
    # where hardware or an operation on a bone is
    ("Reconstructed right clavicle.", [("postsurgical_change", "P", "right")], ["clavicle_fracture"]),
    # a negated phrase that only suggests a finding says nothing of it: no "no atelectasis" here
    ("Complete opacification of the right middle lobe with no significant associated volume loss.",
     [("lung_opacity", "P", "right")], []),
    # IU's "PIC catheter" is a PICC; "ectasia" beside the aorta's tortuosity is the aorta's
    ("Left upper extremity PIC catheter tip within the left subclavian vein.", [("picc", "P", "left")], []),
    ("Aortic tortuosity and mild ectasia.", [("tortuous_aorta", "P", None), ("aortic_enlargement", "P", None)], []),
    # "streakiness" is a streaky opacity
    ("There is mild streakiness in the right base.", [("lung_opacity", "P", "right")], []),
    # a sentence that only interprets the one before takes its single side
    ("A few bandlike opacities are present at the lateral left base. The appearance XXXX scarring or atelectasis.",
     [("lung_scarring", "U", "left"), ("atelectasis", "U", "left")], []),
    # "is likely a nipple shadow", ", likely nipple shadow": explained; "likely atelectasis, though superimposed
    # pneumonia" explains nothing away
    ("Nodular density projecting over the right lung base on the frontal view is likely a nipple shadow.", [],
     ["pulmonary_nodule", "lung_opacity"]),
    ("Right basilar nodular density, likely nipple shadow.", [], ["pulmonary_nodule", "lung_opacity"]),
    ("Adjacent opacity, likely atelectasis, though superimposed pneumonia is not excluded.",
     [("lung_opacity", "P", None), ("atelectasis", "U", None), ("pneumonia", "U", None)], []),
    ("Calcified granuloma in the left upper lobe and calcified right hilar lymph XXXX.",
     [("granuloma", "P", "left"), ("calcified_lymph_nodes", "P", "right")], []),
    # places that share the noun after them share its side: the clause starts before their "and"
    ("Bilateral hilar and right paratracheal lymphadenopathy.", [("lymphadenopathy", "P", "bilateral")], []),
    ("Left lower and right upper lobe opacities.", [("lung_opacity", "P", "bilateral")], []),
    # the twenty-first to twenty-fifth reads: entries and phrases the reader lacked
    ("Stable right upper lung lucency. Mild rightward deviation of the trachea, XXXX secondary to a goiter. "
     "Acromioclavicular separation. Increased interstitial lung changes with superimposed pulmonary edema.",
     [("lung_lucency", "P", "right"), ("goiter", "U", "none"), ("acromioclavicular_separation", "P", "none"),
      ("interstitial_abnormality", "P", "none")], []),
    ("Mild degenerate change of the thoracic spine. Right humeral intramedullary rod. Stable calcified superior "
     "mediastinal lymph XXXX. There are 2 right upper lobe lung nodules.",
     [("degenerative_spine", "P", "none"), ("orthopedic_hardware", "P", "right"),
      ("calcified_lymph_nodes", "P", "none"), ("multiple_pulmonary_nodules", "P", "right")], []),
    ("Deformed right ribs. Groundglass opacities at the lung bases.",
     [("rib_fracture", "U", "right"), ("ground_glass_opacity", "P", "none")], []),
    ("Innumerable XXXX bilateral nodules are identified.", [("multiple_pulmonary_nodules", "P", None)],
     ["pulmonary_nodule"]),
]


@pytest.fixture(scope="module")
def reader():
    return FindingReader(load_kb())


@pytest.mark.parametrize("text, must, must_not", CASES, ids=[c[0][:60] for c in CASES])
def test_reading(reader, text, must, must_not):
    got = reader.read(text)
    seen = {(p.entry_id, p.status, p.laterality) for p in got}
    for entry, status, side in must:
        assert any(e == entry and s == S[status] and (side is None or lat == side) for e, s, lat in seen), (
            text, entry, status, side, seen)
    for entry in must_not:
        assert not any(e == entry and s != "absent" for e, s, _ in seen), (text, entry, seen)


def test_negatives_keep_their_limit(reader):
    # a placeholder right before a negated finding hid its limit: no negative is read ("no XXXX of" still is)
    assert reader.read("No XXXX nodules are seen.") == []
    assert [(p.entry_id, p.status) for p in reader.read("There are no XXXX of a pleural effusion.")] == [
        ("pleural_effusion", "absent")]
    (p,) = reader.read("No large pleural effusion.")
    assert (p.entry_id, p.status, p.limit) == ("pleural_effusion", "absent", "large")
    (p,) = reader.read("No focal airspace disease.")
    assert p.status == "absent" and p.limit == "focal"
    (p,) = reader.read("No pneumothorax.")
    assert p.limit == ""


def test_location_and_descriptors(reader):
    (p,) = reader.read("Patchy opacity in the left lower lobe.")
    assert (p.laterality, p.location, p.descriptors) == ("left", "lower lobe", ("patchy",))
    (p,) = reader.read("Healed right rib fractures.")
    assert p.descriptors == ("healed",)
    # zones and lobes keep their words: "bibasilar" is no plain "bilateral", nor a mid and upper zone "right"
    (p,) = reader.read("Bibasilar interstitial edema.")
    assert (p.laterality, p.location) == ("bilateral", "bibasilar")
    (p,) = reader.read("Scarring in the right mid and upper lung zone.")
    assert (p.laterality, p.location) == ("right", "mid and upper lung zone")
    (p,) = reader.read("Small amount of fluid in the right minor fissure.")
    assert (p.entry_id, p.laterality, p.location) == ("pleural_effusion", "right", "minor fissure")
    got = {q.entry_id: q for q in reader.read("Streaky left basal opacities, which could reflect atelectasis.")}
    assert got["atelectasis"].laterality == "left" and got["atelectasis"].location == "basal", got
    (p,) = reader.read("Mildly improved bibasilar opacities.")  # the grade of the change, not of the opacity
    assert p.severity is None, p
    (p,) = reader.read("Stable borderline cardiomegaly, stable mediastinal and hilar contours.")
    assert p.entry_id == "cardiomegaly" and not p.location, p
    (p,) = reader.read("Small T-spine osteophytes.")
    assert p.entry_id == "degenerative_spine" and p.severity is None, p
    (p,) = reader.read("Mild right apex curvature of the lower thoracic spine.")
    assert p.location == ""  # the curve's apex, not the lung's
    # places of two sides that share a noun are no one place of the finding; places of one side keep it
    (p,) = reader.read("Left lower and right upper lobe opacities.")
    assert (p.laterality, p.location) == ("bilateral", ""), p
    (p,) = reader.read("Right hilar and mediastinal lymphadenopathy.")
    assert (p.laterality, p.location) == ("right", "hilar and mediastinal"), p


LABELER_CASES = [
    ("Stable cardiomediastinal silhouette.", {}),
    ("Nodular density at the left base reflects the nipple shadow.", {}),
    ("Monitor leads overlie the chest.", {}),
    ("Prior CT showed right lower lobe consolidation.", {}),
    ("Right basilar atelectasis or scarring.", {"atelectasis": -1}),
    ("Mild anterior wedging of a mid thoracic vertebral body.", {}),
    ("Status post XXXX sternotomy.", {}),
    ("Blunted costophrenic XXXX on the right.", {"pleural_effusion": -1}),
]


@pytest.mark.parametrize("text, want", LABELER_CASES, ids=[c[0][:60] for c in LABELER_CASES])
def test_labeler_shares_the_fixes(text, want):
    got = {k: v for k, v in Labeler().label(text).items() if v is not None and k != "no_finding"}
    assert got == want, (text, got)


MORE = [
    # an explanation in the next sentence
    ("Vague nodular opacity near the right first rib. This may be artifact from calcification of the rib.", [],
     ["pulmonary_nodule", "lung_opacity"]),
    ("Stable right paratracheal opacity. This represents vascular shadows.", [], ["lung_opacity"]),
    # a history is no finding of this film; what comes before it still is
    ("Stable chest in a patient with a history of lymphoma.", [], ["lymphadenopathy"]),
    ("Wide mediastinum, consistent with history of aortic dissection.", [("mediastinal_widening", "P", None)], []),
    # contours that cannot be judged say nothing about the width
    ("Left-sided cardiomediastinal contours are obscured by collapse of the left lung.",
     [("atelectasis", "P", "left")], ["enlarged_cardiomediastinum"]),
    # a device's side is the word before it, not where its tip lies
    ("Left PICC with its tip in the right hemithorax.", [("picc", "P", "left")], []),
    ("There is a left IJ approach central catheter.", [("central_venous_catheter", "P", "left")], []),
    ("A right upper extremity PICC is seen.", [("picc", "P", "right")], []),
    ("Surgical clips in the region of the left breast.", [("surgical_clips", "P", "left")], []),
    ("Two pacemaker electrodes in stable position.", [("pacemaker", "P", None)], ["ecg_leads"]),
    # operations are not clips
    ("Postoperative changes of sternotomy and CABG.", [("sternotomy_wires", "P", None)], ["surgical_clips"]),
    ("Lungs are hyperexpanded.", [("hyperinflation", "P", None)], []),
    ("Degenerative changes in the spine.", [("degenerative_spine", "P", None)], []),
    # "left" at the end of a clause is what remains, not a side
    ("The right effusion has nearly resolved, with only trace blunting of the right costophrenic angle left.",
     [("pleural_effusion", "P", "right")], []),
]


@pytest.mark.parametrize("text, must, must_not", MORE, ids=[c[0][:60] for c in MORE])
def test_reading_across_sentences_and_devices(reader, text, must, must_not):
    test_reading(reader, text, must, must_not)


def test_a_hedge_before_a_finding_hedges_that_finding(reader):
    got = {(p.entry_id, p.status) for p in reader.read("Right lower lobe opacity. This is likely pneumonia.")}
    assert got == {("lung_opacity", "present"), ("pneumonia", "uncertain")}
    got = {(p.entry_id, p.status) for p in reader.read("Opacity at the right base is likely atelectasis.")}
    assert got == {("lung_opacity", "present"), ("atelectasis", "uncertain")}


def test_advice_about_another_modality_is_no_finding(reader):
    assert reader.read("CT scan is more sensitive in detecting small nodules.") == []
    assert reader.read("Vague nodular opacity near the first rib. This may be calcification.") == []


def test_a_limit_belongs_to_its_own_mention(reader):
    got = {p.entry_id: p.limit for p in reader.read("No large pleural effusion or pneumothorax.")}
    assert got == {"pleural_effusion": "large", "pneumothorax": ""}


# Grades and courses the report gives, from real IU-Xray and MIMIC-CXR sentences (issue 15): each side keeps its own
# grade, and a resolving finding keeps the grade of what is left and says it is resolving.
GRADED = [
    ("The right pleural effusion has nearly resolved, with only trace blunting of the right costophrenic angle left.",
     {("pleural_effusion", "present", "right", "trace", "nearly resolved")}),
    ("There is improvement in bilateral pulmonary edema with mild residual.",
     {("edema", "present", "bilateral", "mild", "improving")}),
    ("Small left pleural effusion has nearly resolved.",
     {("pleural_effusion", "present", "left", "small", "nearly resolved")}),
    ("Near-complete resolution of right-sided pleural effusion with XXXX residual.",
     {("pleural_effusion", "present", "right", None, "nearly resolved")}),
    ("Small right and moderate left pleural effusions.",
     {("pleural_effusion", "present", "right", "small", ""), ("pleural_effusion", "present", "left", "moderate", "")}),
    ("There is moderate left pleural effusion and small right pleural effusion.",
     {("pleural_effusion", "present", "left", "moderate", ""), ("pleural_effusion", "present", "right", "small", "")}),
    ("Small pleural effusion. Mild bibasilar atelectasis.",
     {("pleural_effusion", "present", "none", "small", ""), ("atelectasis", "present", "bilateral", "mild", "")}),
]


@pytest.mark.parametrize("text, want", GRADED, ids=[c[0][:60] for c in GRADED])
def test_grades_sides_and_course_are_kept(reader, text, want):
    got = {(p.entry_id, p.status, p.laterality, p.severity, p.course) for p in reader.read(text)
           if p.status == "present"}
    assert got == want, (text, got)


def test_low_volumes_are_no_improvement_and_a_line_keeps_its_tip(reader):
    vol = next(p for p in reader.read("Mildly diminished lung volumes.") if p.entry_id == "low_lung_volumes")
    assert vol.course == "" and vol.severity == "mild"
    better = next(p for p in reader.read("The left effusion has decreased in size.")
                  if p.entry_id == "pleural_effusion")
    assert better.course == "improving"
    got = {p.entry_id: p.tip for p in reader.read(
        "Right IJ central venous catheter with tip over the right atrium. Endotracheal tube tip 4.5 cm above the "
        "carina and enteric tube terminating in the stomach.") if p.tip}
    assert got == {"central_venous_catheter": "in the right atrium", "endotracheal_tube": "4.5 cm above the carina",
                   "enteric_tube": "in the stomach"}, got


def test_a_pair_of_lobes_and_a_lone_findings_place_are_kept(reader):
    lobes = next(p for p in reader.read("Right middle and lower lobe patchy opacities.")
                 if p.entry_id == "lung_opacity")
    assert lobes.location == "middle and lower lobe"
    scar = next(p for p in reader.read("Biapical pleuroparenchymal irregularities most compatible with scarring.")
                if p.entry_id == "lung_scarring")
    assert scar.location == "biapical"


def test_a_grade_a_limit_and_a_hedge_belong_to_their_own_mention(reader):
    got = {p.entry_id: p for p in reader.read("Bibasilar opacity may represent infection or mild edema.")}
    assert got["pneumonia"].severity is None and got["edema"].severity == "mild"
    got = {p.entry_id: p for p in reader.read("Mild coarse interstitial opacities related to background of "
                                              "emphysema.")}
    assert got["interstitial_abnormality"].severity == "mild" and got["emphysema"].severity is None
    assert next(iter(reader.read("No displaced rib fracture."))).limit == "displaced"
    assert next(iter(reader.read("No displaced, acute fractures."))).limit == "displaced acute"
    hedges = {p.entry_id: p.hedge for p in reader.read("Likely left lower lobe pneumonia. Right base opacity may be "
                                                       "atelectasis.")}
    assert hedges["pneumonia"] == "probable" and hedges["atelectasis"] == "possible", hedges
    shift = next(p for p in reader.read("Right-to-left mediastinal shift.") if p.entry_id == "mediastinal_shift")
    assert shift.laterality == "left"


def test_which_explains_its_own_sentence_not_the_one_before(reader):
    text = ("On the lateral view there is a 2.1 x 2 cm nodular density. 2.1 cm nodular density which could "
            "represent overlapping shadows or actual pulmonary nodule.")
    assert any(p.entry_id == "lung_opacity" and p.status == "present" for p in reader.read(text))


def test_a_hidden_hedge_reaches_only_the_finding_it_attributes(reader):
    got = {(p.entry_id, p.status) for p in reader.read(
        "Retrocardiac opacity XXXX due at XXXX in part to atelectasis with right hemidiaphragm eventration.")}
    assert ("atelectasis", "present") not in got and ("lung_opacity", "present") in got, got
    assert ("diaphragmatic_eventration", "present") in got, got


def test_a_line_keeps_the_tip_its_next_sentence_gives_and_a_rib_fracture_its_ribs(reader):
    picc = [p for p in reader.read("Right PICC line is in XXXX. The tip has moved into the left innominate vein.")
            if p.entry_id == "picc"]
    assert any(p.tip == "in the left innominate vein" for p in picc), picc
    cvc = [p for p in reader.read("There is a right IJ central venous catheter with tip overlying the inferior SVC.")
           if p.entry_id == "central_venous_catheter"]
    assert any(p.tip == "in the inferior SVC" for p in cvc), cvc
    # a second device of the next sentence keeps its own tip
    two = {p.entry_id: p.tip for p in reader.read("Right PICC line. The tip of the nasogastric tube is in the stomach.")
           if p.status == "present"}
    assert two.get("picc") == "", two
    for text, ribs in (("Old healed left 5th and 6th rib fractures.", "5th and 6th"),
                       ("Unchanged fracture with callus at the left 9th lateral rib.", "9th"),
                       ("Healing fractures of the right 7th, 8th and 9th ribs.", "7th, 8th and 9th")):
        got = [p for p in reader.read(text) if p.entry_id in ("fracture", "rib_fracture")]
        assert got and got[0].location == ribs, (text, got)
    callus = next(p for p in reader.read("Unchanged fracture with callus at the left 9th lateral rib.")
                  if p.entry_id in ("fracture", "rib_fracture"))
    assert "healing" in callus.descriptors, callus


def test_a_bilateral_finding_placed_differently_on_each_side_keeps_no_one_place(reader):
    nodules = next(p for p in reader.read("There are small bilateral pulmonary nodules measuring 5 mm in the right "
                                          "midlung and left upper lung.") if p.entry_id == "multiple_pulmonary_nodules")
    assert nodules.laterality == "bilateral" and nodules.location == "", nodules
    both = next(p for p in reader.read("Bilateral lower lobe opacities with small effusions at the bases.")
                if p.entry_id == "lung_opacity")
    assert both.location == "lower lobe", both
    collapse = next(p for p in reader.read("Essentially complete collapse of the left lung.")
                    if p.status == "present")
    assert "complete" in collapse.descriptors and collapse.laterality == "left", collapse


def test_a_tip_approximating_a_place_and_a_negative_narrowed_to_noncalcified(reader):
    cvc = [p for p in reader.read("Left internal jugular central venous catheter with tip approximating the high SVC.")
           if p.entry_id == "central_venous_catheter"]
    assert any(p.tip == "in the high SVC" for p in cvc), cvc
    nodule = next(p for p in reader.read("No noncalcified nodule.") if p.entry_id == "pulmonary_nodule")
    assert nodule.status == "absent" and "noncalcified" in nodule.limit.split(), nodule


def test_a_negative_keeps_its_limit_between_an_anchor_and_its_qualifier(reader):
    heart = [p for p in reader.read("The heart is not significantly enlarged.") if p.entry_id == "cardiomegaly"]
    assert heart and heart[0].status == "absent" and "significant" in heart[0].limit, heart


def test_device_sites_and_tips(reader):
    got = {p.entry_id: p for p in reader.read("Left humeral head bone anchors. Reconstructed right clavicle. "
                                              "Tracheostomy tube tip above the carina.")}
    assert got["orthopedic_hardware"].location == "humeral" and got["orthopedic_hardware"].laterality == "left"
    assert got["postsurgical_change"].location == "clavicle"
    assert got["tracheostomy_tube"].tip == "above the carina"
    port = [p for p in reader.read("Left XXXX-a-XXXX is in XXXX with the tip projecting over the caval atrial "
                                   "junction.") if p.entry_id == "port_catheter"]
    assert port and port[0].tip == "in the caval atrial junction", port


def test_no_negative_from_a_negated_sign_and_the_precision_of_spine_valves_and_grades(reader):
    assert not any(p.entry_id == "atelectasis" for p in reader.read("No significant volume loss."))
    got = {p.entry_id: p for p in reader.read(
        "Anterior wedging of multiple vertebral bodies including T6, T8, T11 and T12. Mitral valve replacement. "
        "Sternotomy wires secondary to a CABG procedure. There are minimal posterior pleural effusions.")}
    assert got["vertebral_wedge_deformity"].location == "T6, T8, T11 and T12"
    assert got["prosthetic_valve"].location == "mitral valve"
    assert "post-CABG" in got["sternotomy_wires"].descriptors
    assert got["pleural_effusion"].grade_words == "minimal" and got["pleural_effusion"].severity == "mild"


def test_a_limit_on_the_evidence_covers_the_whole_list_and_a_tip_its_place(reader):
    got = {p.entry_id: p for p in reader.read("Stable cardiomegaly without gross evidence for failure or pneumonia.")}
    assert got["pneumonia"].status == "absent" and "gross" in got["pneumonia"].limit, got
    got = {p.entry_id: p for p in reader.read("No large effusion or pneumothorax.")}
    assert got["pneumothorax"].limit == "" and "large" in got["pleural_effusion"].limit, got
    cvc = [p for p in reader.read("Right internal jugular central venous catheter seen with tip overlying the "
                                  "cavoatrial junction.") if p.entry_id == "central_venous_catheter" and p.tip]
    assert cvc and cvc[0].tip == "in the cavoatrial junction", cvc
    wires = [p for p in reader.read("Inferior sternotomy XXXX is disrupted.") if p.entry_id == "sternotomy_wires"]
    assert wires and "disrupted" in wires[0].descriptors, wires



def test_tips_of_hidden_and_two_lead_devices_and_the_limits_of_a_list(reader):
    hidden = [p for p in reader.read("Right chest XXXX tip in the low SVC.") if p.entry_id == "support_devices"]
    assert hidden and hidden[0].tip == "in the low SVC", hidden
    icd = [p for p in reader.read("Left chest ICD with lead tips over the right atrium and right ventricle.")
           if p.entry_id == "implantable_defibrillator"]
    assert icd and icd[0].tip == "in the right atrium and the right ventricle", icd
    picc = [p for p in reader.read("Left PICC line tip near junction of brachiocephalic vein and SVC.")
            if p.entry_id == "picc"]
    assert picc and "brachiocephalic vein and SVC" in picc[0].tip, picc
    assert all(p.location == "" for p in reader.read("There are lower lung volumes.")
               if p.entry_id == "low_lung_volumes")
    got = {p.entry_id: p.limit for p in reader.read("No suspicious pulmonary mass or nodule.")}
    assert got["pulmonary_nodule"] == "suspicious" and got["lung_mass"] == "suspicious", got


def test_a_weighed_nodule_a_headings_side_and_ranges_of_grade(reader):
    # the density is there; the nodule the sentence weighs against overlapping shadows is only possible
    got = [(p.entry_id, p.status) for p in reader.read(
        "2.1 cm nodular density in the anterior costophrenic XXXX on the lateral view, which could represent "
        "overlapping shadows or actual pulmonary nodule.")]
    assert ("lung_opacity", "present") in got and ("pulmonary_nodule", "uncertain") in got, got
    assert ("pulmonary_nodule", "present") not in got, got
    # unweighed, the phrase is both (as the labels read it)
    got = {(p.entry_id, p.status) for p in reader.read("Approximately 1 cm right middle lobe nodular opacity.")}
    assert {("pulmonary_nodule", "present"), ("lung_opacity", "present")} <= got, got
    frac = [p for p in reader.read("1. Chest. No active disease. 2. Right shoulder. Healing scapular fracture.")
            if p.entry_id == "fracture"]
    assert frac and frac[0].laterality == "right", frac
    hyper = [p for p in reader.read("Moderate severe hyperexpansion of the lungs.") if p.entry_id == "hyperinflation"]
    assert hyper and hyper[0].severity == "severe" and hyper[0].grade_words == "moderate to severe", hyper
    spine = [p for p in reader.read("Advanced degenerative change of the thoracic spine.")
             if p.entry_id == "degenerative_spine"]
    assert spine and spine[0].severity == "severe" and spine[0].grade_words == "advanced", spine
    # "slightly large" stays a mild grade; two grades of one scale make a range only smaller first
    heart = [p for p in reader.read("Slightly large heart.") if p.entry_id == "cardiomegaly"]
    assert heart and heart[0].severity == "mild", heart


def test_the_other_choice_takes_the_side_and_coordinated_aorta_words_name_both(reader):
    got = {p.entry_id: p for p in reader.read("Bilateral effusions and/or atelectasis, right worse than left.")}
    assert got["atelectasis"].laterality == "bilateral" and got["atelectasis"].status == "uncertain", got
    # "prominent" says less than enlarged
    assert [(p.entry_id, p.status) for p in reader.read("Heart appears prominent.")] == [("cardiomegaly", "uncertain")]
    got = {p.entry_id: p for p in reader.read("The thoracic aorta is mildly tortuous and calcified.")}
    assert got["tortuous_aorta"].severity == "mild" and got["aortic_calcification"].severity is None, got


def test_tips_in_the_region_of_a_vein_and_at_the_level_of_its_confluence(reader):
    got = {p.entry_id: p.tip for p in reader.read("Right IJ central venous catheter tip in region of mid SVC.")}
    assert got["central_venous_catheter"] == "in the mid SVC", got
    got = {p.entry_id: p.tip for p in reader.read(
        "Left central venous catheter tip reaches the level of the brachiocephalic venous confluence.")}
    assert "brachiocephalic venous confluence" in got["central_venous_catheter"], got


def test_low_normal_volumes_fissural_fluid_abdominal_clips_and_a_predominant_side(reader):
    assert not any(p.entry_id == "low_lung_volumes" for p in reader.read("Lung volumes are low normal."))
    fluid = [p for p in reader.read("Fluid in the fissures consistent with interstitial edema.")
             if p.entry_id == "pleural_effusion"]
    assert fluid and fluid[0].location == "fissures", fluid
    clips = [p for p in reader.read("Surgical clips are present in the abdomen.") if p.entry_id == "surgical_clips"]
    assert clips and clips[0].location == "abdomen", clips
    got = [p for p in reader.read("Diffuse increased bilateral pulmonary interstitial markings, greatest in the "
                                  "peripheral aspect of the left lung.") if p.entry_id == "interstitial_abnormality"]
    assert got and got[0].laterality == "bilateral" and got[0].predominance == "left greater than right", got
    assert ("postsurgical_change", "present") in {(p.entry_id, p.status) for p in reader.read("Prior chest surgery.")}


def test_the_lingula_before_a_zone_word_an_uncalcified_nodule_and_no_abdomen_from_another_study(reader):
    atel = [p for p in reader.read("Basilar focal atelectasis is present in the lingula.")
            if p.entry_id == "atelectasis"]
    assert atel and atel[0].location == "lingula" and atel[0].laterality == "left", atel
    nod = [p for p in reader.read("7mm uncalcified nodule of uncertain origin.") if p.entry_id == "pulmonary_nodule"]
    assert nod and "uncalcified" in nod[0].descriptors, nod
    plaque = [p for p in reader.read("Calcified pleural plaque in the right subpulmonic area has not changed since "
                                     "the abdomen CT.") if p.entry_id == "pleural_plaque"]
    assert plaque and plaque[0].location != "abdomen", plaque

"""The second reading's own word lists: triggers, scopes, sides, grades, structure and region words.

Written apart from the labeler's lexicon (``knowledge/labeler/lexicon.yaml``) and the finding reader's words
(:mod:`datakit.reading.words`) on purpose: validation reads reports a second time with different rules, so a
misreading of the teacher's reader is not repeated here. The trigger classes follow NegEx (Chapman et al.,
"A simple algorithm for identifying negated findings and diseases in discharge summaries", J Biomed Inform
34(5), 2001): pre- and post-negation triggers, pseudo-triggers that look like negation but are not, and
termination terms that end a trigger's scope; the uncertainty triggers are the same idea for hedges (ConText,
Harkema et al., J Biomed Inform 42(5), 2009). The lists themselves are datakit's own, written from chest
radiograph report wording.
"""

from __future__ import annotations

# Word lists packed by hand, many to a line:
# fmt: off
# --- triggers: phrases as lower-case words (tokens), matched longest first ----------------------------------
PSEUDO = [  # look like a trigger, are not one: the finding they touch is not negated or hedged
    "no change", "no significant change", "no interval change", "no appreciable change", "not changed",
    "no increase", "no decrease", "no further", "not only", "without change", "without significant change",
    "without interval change", "not significantly changed", "no substantial change", "nearly resolved",
    "almost resolved", "partially resolved", "not completely resolved", "incompletely resolved",
    "no significant interval change", "unchanged", "not well seen", "not well visualized",
    "not well evaluated", "cannot be evaluated", "not clearly", "no longer enlarged", "age indeterminate",
]
PRE_NEGATION = [
    "no", "not", "without", "negative for", "free of", "absence of", "absent", "no evidence of",
    "no signs of", "no sign of", "no definite", "no definitive", "no convincing", "no visible",
    "no suspicious", "rather than", "instead of", "resolution of", "resolved", "clear of", "removal of",
    "nor", "neither", "never", "no longer", "no radiographic evidence of", "interval resolution of",
    "no findings of", "no findings to suggest", "clearing of", "interval clearing of",
]
POST_NEGATION = [
    "not seen", "not identified", "not visualized", "not evident", "not present", "not appreciated",
    "not demonstrated", "not detected", "not noted", "not apparent", "is absent", "are absent", "has resolved",
    "have resolved", "resolved", "has been removed", "have been removed", "removed", "no longer seen",
    "no longer visualized", "no longer present", "no longer evident", "no longer identified", "ruled out",
    "unlikely", "excluded", "cleared", "has cleared", "have cleared",
]
PRE_HEDGE = [
    "may", "might", "could", "possible", "possibly", "probable", "probably", "likely", "questionable",
    "question of", "suspicious for", "suspected", "suggestive of", "suggests", "suggesting", "concerning for",
    "worrisome for", "differential", "differential diagnosis", "equivocal", "borderline",
    "presumed", "presumably", "versus", "vs", "cannot exclude", "can not exclude", "cannot rule out",
    "can not rule out", "not exclude", "could represent", "may represent", "might represent",
    "could also represent", "may reflect", "could reflect", "favor", "favored", "favoring", "questioned",
    "suspicion of", "suspicion for", "considered", "perhaps", "raise concern", "raises concern",
    "not excluded",
]
POST_HEDGE = [
    "cannot be excluded", "can not be excluded", "not excluded", "cannot be ruled out", "can not be ruled out",
    "not ruled out", "is suspected", "are suspected", "is possible", "are possible", "is questioned",
    "is not excluded", "are not excluded", "not entirely excluded", "is likely", "are likely",
    "is favored", "may be present", "could be present", "is considered",
]
# end a pre-trigger's scope (and a post-trigger's, looking back)
TERMINATION = [
    "but", "however", "although", "though", "which", "except", "aside from", "apart from", "other than",
    "otherwise", "nevertheless", "yet", "whereas", "while", "there is", "there are", "there has been",
    "there have been", "as well as", "consistent with", "compatible with", "secondary to", "due to",
    "related to", "represents", "representing", "reflects", "reflecting", "with the exception of",
    "cause of", "source of",
]
# words joining two findings as alternatives ("atelectasis or pneumonia", "scar versus infiltrate")
ALTERNATIVE = {"or", "versus", "vs", "/"}

# a finite verb ends a pre-trigger's scope unless an existential participle follows it ("no effusion is seen")
VERBS = {"is", "are", "was", "were", "has", "have", "appears", "appear", "remains", "remain", "measures",
         "demonstrates", "shows", "persists", "persist", "seems", "extends"}
EXISTENTIAL = {"seen", "identified", "present", "noted", "demonstrated", "evident", "appreciated",
               "visualized", "detected", "shown", "visible", "apparent", "observed", "found", "definite",
               "not", "no", "none", "absent", "excluded", "suspected", "possible", "likely", "questioned"}
NEW_SUBJECT = {"the", "there", "this", "these", "it", "a", "an", "heart", "lungs", "lung", "mediastinum",
               "trachea", "hila", "osseous", "bony", "bones", "cardiac", "cardiomediastinal", "stable", "unchanged",
               "patient", "visualized", "degenerative", "interval", "again", "however", "increased", "decreased",
               "new", "persistent", "worsening", "improved", "increasing", "decreasing"}
# words that split a sentence into segments; a term is matched inside one segment
SEGMENT_BREAK = {",", "/", "and", "or", "but", "with", "without", "versus", "vs", "while", "whereas", "which", "nor"}
CLAUSE_BREAK = {";", ":"}
# a comma after one of these joins two adjectives of one noun ("a tortuous, calcified aorta"): no segment break
LIST_ADJECTIVES = {"tortuous", "calcified", "atherosclerotic", "ectatic", "dilated", "enlarged", "elevated", "small",
                   "large", "mild", "moderate", "patchy", "streaky", "linear", "nodular", "hazy", "dense", "chronic",
                   "old", "healed", "healing", "tiny", "minimal", "subtle", "scattered", "faint", "irregular"}
# places of two sides that share the noun after them ("right lower and left upper lobes", "bilateral hilar and
# right paratracheal adenopathy"): an "and" between them is no segment break
SHARED_PLACES = {"upper", "lower", "middle", "mid", "hilar", "perihilar", "paratracheal", "mediastinal", "basilar",
                 "apical", "subcarinal", "axillary", "supraclavicular"}

# nouns that two coordinated findings may both describe ("the aorta is tortuous and ectatic")
SHARED_NOUNS = {"aorta", "aortic", "thoracic", "descending"}

# --- context: where a mention does not describe the current radiograph's own lung, or not at all ------------
ATTRIBUTION = [
    "represent", "represents", "representing", "reflect", "reflects", "reflecting", "due to", "related to",
    "secondary to", "attributed to", "attributable to", "consistent with", "compatible with",
    "corresponding to", "caused by", "from", "likely", "overlying", "overlies", "projecting over",
    "projects over", "superimposed", "superimposition", "overlap", "overlapping", "summation", "rather than",
    "at the site of", "associated with",
]
# what a density can be attributed to instead of the lung
NON_LUNG = {
    "rib", "ribs", "fracture", "fractures", "callus", "clavicle", "clavicular", "bone", "bony", "osseous",
    "vertebra", "vertebral", "spine", "spinal", "scapula", "scapular", "sternum", "sternal", "costal",
    "cartilage", "costochondral", "nipple", "nipples", "breast", "breasts", "skin", "artifact", "artefact",
    "overlap", "overlapping", "overlying", "summation", "superimposition", "vessel", "vessels", "vascular",
    "shoulder", "humeral", "humerus", "osteophyte", "osteophytes", "hardware", "button", "buttons", "jewelry",
    "clothing", "hair", "braid", "monitor", "lead", "leads", "wire", "wires", "device", "pacemaker", "tube",
    "catheter", "sternotomy", "healed", "healing", "deformity", "scapulae", "glenoid", "fat", "pad",
    "muscle", "pectoral", "soft", "tissue", "tissues", "attenuation", "technique", "positioning", "rotation",
    "projection", "crowding", "inspiration", "volumes",
}
# in a density's own segment, words that place it outside the lung
NOT_LUNG_HERE = {"thyroid", "goiter", "soft", "tissue", "rib", "bone", "bony", "osseous", "nipple", "breast",
                 "vascular", "vessel", "artifact", "artefact", "paratracheal", "mediastinal", "shadow", "summation",
                 "cartilage", "costochondral", "skin", "clavicle", "scapula", "vertebral"}
LUNG_LIKE = {"lung_opacity", "pulmonary_nodule", "lung_lesion", "lung_mass", "multiple_pulmonary_nodules",
             "consolidation", "pneumonia", "interstitial_abnormality", "edema", "pulmonary_vascular_congestion"}
OTHER_MODALITY = {"ct", "cta", "mri", "mr", "pet", "ultrasound", "sonogram", "sonography", "fluoroscopy",
                  "scintigraphy", "echocardiogram", "echo", "angiogram", "cat"}
HISTORY = ["history of", "hx of", "h o", "past history of", "prior history of", "known history of",
           "previously treated", "remote history of", "evaluate for", "evaluation for", "rule out", "r o",
           "to exclude", "assess for"]
CURRENT = {"unchanged", "again", "persistent", "persists", "stable", "still", "remains", "remain",
           "redemonstrated", "currently", "now", "new", "increased", "decreased", "improved", "worsened",
           "today", "current", "since", "compared", "comparison", "redemonstration", "before", "previously",
           "similar", "prior"}

# --- sides and grades --------------------------------------------------------------------------------------
SIDE_WORDS = {"left": "left", "right": "right", "bilateral": "bilateral", "bilaterally": "bilateral",
              "both": "bilateral", "bibasilar": "bilateral", "bibasal": "bilateral", "bibasalar": "bilateral",
              "biapical": "bilateral", "lingula": "left", "lingular": "left", "lll": "left", "lul": "left",
              "rll": "right", "rul": "right", "rml": "right", "bihilar": "bilateral", "lingulae": "left"}
VIEWS = {"pa", "ap", "frontal", "lateral", "view", "views", "projection", "projections", "film", "films", "image",
         "images", "exam", "exams", "examination", "studies"}
SIDE_LEAD = {"the", "on", "to", "at", "in", "of", "both", "and", "or", "more", "greater", "than", "worse"}
SIDE_PHRASES = {("middle", "lobe"): "right", ("right", "middle"): "right"}
# "left atrium", "right hemidiaphragm": the side of a part of the anatomy, not of the finding
ANATOMY = {"atrium", "atrial", "ventricle", "ventricular", "border", "hemidiaphragm", "hemidiaphragms",
           "mainstem", "bronchus", "jugular", "ij", "subclavian", "brachiocephalic", "innominate", "axillary",
           "arm", "chest", "shoulder", "neck", "breast", "clavicle", "humerus", "hemithorax"}
GRADE_WORDS = {"trace": {0}, "tiny": {0, 1}, "minimal": {0, 1}, "minimally": {0, 1}, "small": {1},
               "mild": {1}, "mildly": {1}, "slight": {1}, "slightly": {1}, "moderate": {2}, "moderately": {2},
               "large": {3}, "severe": {3}, "severely": {3}, "marked": {3}, "markedly": {3}, "massive": {3},
               "extensive": {3}, "huge": {3}}
# the trace schema's severities on the same scale
SEVERITY_LEVEL = {"trace": 0, "small": 1, "mild": 1, "moderate": 2, "large": 3, "severe": 3}

# --- terms -------------------------------------------------------------------------------------------------
# word forms read as one ("elevation of the hemidiaphragm" is "elevated hemidiaphragm")
FORMS = {
    "elevation": "elevated", "raised": "elevated", "enlargement": "enlarged", "enlarging": "enlarged",
    "enlarge": "enlarged", "widening": "widened", "widen": "widened", "tortuosity": "tortuous",
    "prominence": "prominent", "calcification": "calcified", "calcific": "calcified", "thickening": "thickened",
    "blunting": "blunted", "fractured": "fracture", "broken": "fracture", "fx": "fracture",
    "opacification": "opacity", "opacified": "opacity", "densitie": "density", "opacitie": "opacity",
    "degeneration": "degenerative", "collapsed": "collapse", "consolidative": "consolidation",
    "consolidated": "consolidation", "edematous": "edema", "oedema": "edema", "pneumothorace": "pneumothorax",
    "atelectatic": "atelectasis", "atelectase": "atelectasis", "granulomata": "granuloma",
    "hyperinflated": "hyperinflation", "hyperexpanded": "hyperexpansion", "nodularity": "nodular",
    "effusoin": "effusion", "efusion": "effusion", "deformitie": "deformity", "ekg": "ecg",
    "infiltrates": "infiltrate", "postoperative": "postsurgical", "post": "post", "cardiomegally": "cardiomegaly",
}
STOP = {"the", "a", "an", "of", "in", "on", "at", "to", "is", "are", "was", "were", "be", "been", "xxxx",
        "and", "or", "there", "this", "that", "its", "their", "within", "for", "by", "as", "seen"}
# Words between a term's words that only place or link it ("deformity of the right posterolateral 7th rib",
# "calcification is seen within the aortic knob"): not counted against the match window, at most FILLER_MAX more
FILLER = STOP | {"noted", "identified", "present", "again", "appears", "appear", "posterior", "anterior", "lateral",
                 "posterolateral", "anterolateral", "posteromedial", "medial", "upper", "lower", "mid", "midthoracic",
                 "greater", "than", "more", "region", "aspect", "first", "second", "third", "fourth", "fifth",
                 "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth", "distal", "proximal"}
FILLER_MAX = 4
# ... unless the words between hold one of these: a new predicate about something else
FILLER_STOP = {"not", "no", "that", "which", "who", "but", "without", "nor"}
# Terms naming a structure, not an abnormality ("cardiomediastinal silhouette", "heart size"): a mention
# of them counts only with a word of ABNORMAL beside it, and reads as absent with a word of NORMAL.
STRUCTURE = {"heart", "cardiac", "size", "silhouette", "contour", "cardiomediastinal", "mediastinal",
             "mediastinum", "cardiothoracic", "ratio", "ctr", "hilum", "hila", "hilar", "aorta", "aortic",
             "knob", "arch", "diaphragm", "hemidiaphragm", "lung", "volume", "vascularity", "vasculature",
             "vascular", "marking", "interstitial", "width", "pulmonary"}
ABNORMAL = {"enlarged", "widened", "wide", "prominent", "increased", "large", "big", "globular", "cardiomegaly",
            "abnormal", "elevated", "tortuous", "dilated", "engorged", "congested", "borderline", "lobulated",
            "bulky", "full", "fullness", "moderate", "mild", "mildly", "markedly", "severe", "moderately",
            "accentuated", "coarsened", "coarse", "exaggerated", "enlarg", "thickened", "irregular", "reticular",
            "nodular", "thick", "increase"}
# beside a structure: it could not be judged ("heart size is difficult to assess", "limited assessment")
UNASSESSED = {"difficult", "limited", "obscured", "indeterminate", "suboptimal", "assess", "assessment",
              "evaluate", "evaluation", "magnified"}
NORMAL = {"normal", "unremarkable", "clear", "intact", "midline", "patent", "negative", "satisfactory", "preserved",
          "limits", "wnl", "maintained", "expanded", "aerated", "inflated", "appropriate", "sharp", "acceptable"}
# Terms of the knowledge base this reader does not use: too general to name a finding on their own.
SKIP_TERMS = {"ctr", "dish", "lump", "port", "line", "lines", "plate-like", "leads", "lead", "ddd", "spn", "electrodes"}
# Terms the knowledge base does not list that reports use; entry → phrases.
EXTRA_TERMS = {
    # an aneurysm the report places in the pulmonary artery
    "pulmonary_artery_enlargement": ["pulmonary arterial aneurysm", "pulmonary artery aneurysm"],
    # a clavicle's (or a rib's, below) deformity is a possible old fracture (the teacher writes it uncertain)
    "clavicle_fracture": ["clavicle deformity", "clavicle irregularity", "clavicle injury"],
    "subcutaneous_emphysema": ["cutaneous air"],
    "postsurgical_change": ["resection lobe", "post op changes", "resection rib", "rib resection"],
    "interstitial_abnormality": ["interstitial opacities", "interstitial markings"],
    # a granuloma at the hilum or beside the trachea is a calcified node there
    "calcified_lymph_nodes": ["calcified granulomas hilar", "calcified granuloma hilar", "calcified granulomas hilum",
                              "granulomas hilar regions", "paratracheal granuloma", "pretracheal granuloma",
                              "granulomatous calcifications paratracheal", "granulomatous calcifications hilar",
                              "subcarinal granuloma", "calcified hilar", "calcified nodes", "calcified mediastinal",
                              "calcified mediastinal adenopathy", "calcified adenopathy", "calcified lymph nodes"],
    "orthopedic_hardware": ["spine fusion", "bone anchor", "anchor", "orthopedic screws", "fixation hardware",
                            "surgical screws"],
    "pleural_effusion": ["blunted costophrenic", "blunting costophrenic", "costophrenic blunting",
                         "fluid horizontal fissure", "fluid minor fissure", "fluid major fissure"],
    "pleural_thickening": ["thickening fissure", "fissural thickening", "thickened fissure"],
    "lung_scarring": ["pleural parenchymal scarring", "pleural parenchymal scar", "pleuroparenchymal scarring",
                      "apical pleural parenchymal scarring"],  # as pleural thickening's terms: both are read
    "mediastinal_widening": ["ap window mass", "aortopulmonary window mass",
                             "prominent paratracheal", "paratracheal prominence", "paratracheal fullness",
                             "prominent superior mediastinum", "superior mediastinal prominence"],
    "bulla": ["bullous", "bullae", "bullous emphysema", "bullous changes"],
    "lymphadenopathy": ["hilar adenopathy", "mediastinal adenopathy", "adenopathy", "enlarged lymph nodes",
                        "calcified mediastinal adenopathy"],  # a calcified adenopathy is both
    "ecg_leads": ["monitor leads", "monitoring wires", "monitor wires", "cardiac monitor leads", "ecg lead",
                  "telemetry wires", "external monitoring devices", "external devices", "overlying wires"],
    "rib_fracture": ["rib deformity", "rib irregularity", "deformed ribs", "deformed rib", "broken rib",
                     "rib fracture deformity",
                     "fractures of the ribs", "healed rib", "rib deformities"],
    "right_aortic_arch": ["right aortic"],
    # IU-Xray hides "Port-A-Cath" as "XXXX-a-XXXX", and hides nothing else so (one token: reader._TOKEN)
    "port_catheter": ["xxxx-a-xxxx"],  # "the right aortic XXXX": the placeholder hides the arch
    # a tortuous and ectatic (dilated) aorta is both entries
    "aortic_enlargement": ["tortuous ectatic aorta", "tortuous ectatic thoracic aorta"],
    "tortuous_aorta": ["tortuous ectatic thoracic aorta", "aorta tortuous", "tortuous aortic", "aortic unfolding",
                       "unfolded thoracic aorta"],
    "elevated_hemidiaphragm": ["hemidiaphragm elevated", "elevated diaphragmatic", "diaphragm elevated"],
    "degenerative_spine": ["degenerative thoracolumbar", "degenerative midthoracic", "degenerative changes spine",
                           "degenerative thoracic spine", "spurring",
                           "degenerative changes seen spine", "degenerative changes present spine",
                           "degenerative changes present thoracic spine", "degenerative changes noted spine",
                           "degenerative changes of the thoracic spine", "degenerative endplate",
                           "degenerative disc", "degenerative spondylosis"],
    # (a vascular calcification the report places in the aorta is the aorta's)
    "aortic_calcification": ["aortic atherosclerotic vascular calcification", "vascular calcification aorta",
                             "aortic vascular calcification", "vascular calcification aortic",
                             "calcification aortic", "aortic calcified", "calcified aorta", "atherosclerotic aorta",
                             "aortic atherosclerosis", "atherosclerotic calcification", "calcified aortic knob",
                             "atherosclerotic vascular disease"],
    "sternotomy_wires": ["sternotomy", "median sternotomy", "cabg", "sternal wires", "sternal sutures",
                         "sternotomy sutures", "coronary bypass"],
    "vertebral_compression_fracture": ["wedge deformity", "wedging", "vertebral body height loss",
                                       "loss of vertebral body height", "compression deformity"],
    "scoliosis": ["scoliotic", "curvature of the spine", "dextroscoliosis", "levoscoliosis",
                  "dextrocurvature", "levocurvature"],
    "multiple_pulmonary_nodules": ["two nodules", "three nodules", "four nodules", "several nodules", "2 nodules",
                                   "3 nodules", "4 nodules", "two pulmonary nodules", "2 pulmonary nodules",
                                   "three pulmonary nodules", "3 pulmonary nodules", "two lung nodules",
                                   "three lung nodules", "several pulmonary nodules"],
    "pulmonary_nodule": ["nodular density", "nodular opacity", "fibronodular", "nodular infiltrate"],
    "support_devices": ["support devices", "tubes lines", "lines tubes", "medical devices", "tip", "closure device",
                        "stimulator", "catheter tip"],
    "central_venous_catheter": ["central venous catheter", "central line", "venous catheter"],
    "surgical_clips": ["surgical clips", "clips", "metallic clips", "staples", "suture material", "sutures"],
    "cardiomegaly": ["heart enlarged", "cardiac enlarged"],
    "lung_opacity": ["airspace disease", "air space disease", "infiltrate", "airspace opacity"],
    "granuloma": ["granulomatous", "calcified granulomas", "granulomatous infection"],
}
# Statements that a whole region is normal: (region, subject words); a NORMAL word beside a subject word of
# the region, with no abnormality in that segment, says it.
REGION_SUBJECTS = {
    "lungs": {"lung", "parenchyma"},
    "heart_mediastinum": {"heart", "cardiac", "cardiomediastinal", "mediastinal", "mediastinum", "silhouette"},
    "hila": {"hilum", "hila", "hilar"},
    "airway": {"trachea", "airway", "tracheal"},
    "bones_soft_tissue": {"bone", "bony", "osseous", "skeletal", "skeleton", "spine", "rib", "thorax"},
    "upper_abdomen": {"hemidiaphragm", "diaphragm", "abdomen", "subdiaphragmatic"},
    "pleura": {"pleura", "pleural", "costophrenic"},
    "lines_devices": set(),
}
# global normal statements ("no acute cardiopulmonary process") vouch for these regions' acute findings
GLOBAL_REGIONS = ("lungs", "pleura")
ACUTE = {"consolidation", "pneumonia", "edema", "pleural_effusion", "pneumothorax", "lung_opacity",
         "aspiration", "atelectasis", "pulmonary_vascular_congestion"}
# fmt: on

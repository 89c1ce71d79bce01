"""The offline teacher's wording: how a reader of the image says what is seen, reasoned, and re-checked.

Every sentence is built from the structured reading of the report (finding, status, side, grade, location,
descriptors, the limit of a negative) and the knowledge entry (its signs, its differential), never by copying a
report clause: no placeholder or typo reaches the think text, and the side and grade a sentence shows are the
fields' own (so an injected error is visible). Several phrasings per slot, chosen by the study's seeded
generator. All sentences are written for datakit.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from datakit.reading.words import DEGREE_SCALE, SIZE_SCALE


def other_grade(severity: str, rng: random.Random) -> str | None:
    """A neighbouring grade on the same scale (for an injected severity error)."""
    for scale in (SIZE_SCALE, DEGREE_SCALE):
        if severity in scale:
            i = scale.index(severity)
            options = [scale[j] for j in (i - 1, i + 1) if 0 <= j < len(scale)]
            return rng.choice(options) if options else None
    return None


def side_adj(laterality: str) -> str:
    """'left ', 'right ', 'bilateral ' or ''."""
    return "" if laterality == "none" else laterality + " "


def cap(text: str) -> str:
    """Upper-case the first letter."""
    return text[:1].upper() + text[1:]


def lower_name(name: str) -> str:
    """A finding name as it reads inside a sentence (keeps acronyms such as PICC)."""
    return name if name[:2].isupper() else name[:1].lower() + name[1:]


def join(names: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


_PLURAL = {"base": "bases", "apex": "apices", "lower lobe": "lower lobes", "upper lobe": "upper lobes",
           "lung base": "lung bases", "lung apex": "lung apices", "costophrenic angle": "costophrenic angles"}
# location words that are adjectives: they go before the name ("left basilar atelectasis")
_ADJECTIVES = {"apical", "biapical", "bibasilar", "bibasal", "basilar", "basal", "retrocardiac", "perihilar",
               "infrahilar", "suprahilar", "hilar", "subpleural", "peripheral", "paratracheal", "upper thoracic",
               "lingular", "mid thoracic", "midthoracic", "lower thoracic", "thoracolumbar", "paraspinal",
               "retrocrural", "pretracheal", "mediastinal",
               "subcarinal", "scapular", "humeral", "glenoid", "sternal", "acromioclavicular", "axillary",
               "epigastric", "hilar and mediastinal", "mediastinal and hilar"}


def phrase(name: str, laterality: str, severity: str | None, location: str = "",
           descriptors: Sequence[str] = (), course: str = "", tip: str = "", predominance: str = "") -> str:
    """'small left pleural effusion', 'patchy lung opacity in the left lower lobe' from the fields alone.

    A course the report gives follows the phrase ("trace right pleural effusion, nearly resolved"), so a resolving
    finding is never written as a plain present one; so does a line's tip ("right PICC, tip in the low SVC"), and the
    side a bilateral finding favours ("bibasilar atelectasis, right greater than left").
    """
    body = _phrase(name, laterality, severity, location, descriptors)
    if predominance:
        body = f"{body}, {predominance}"
    if course:
        body = f"{body}, {course}"
    if not tip:
        return body
    return f"{body}, tips {tip}" if " and the " in tip else f"{body}, tip {tip}"  # two leads, two tips


_ADVERB_LIMITS = {"significantly": "significant", "grossly": "gross"}
_MANY = ("numerous", "several", "multiple")


def _plural(noun: str) -> str:
    """'granuloma' → 'granulomas', 'calcified lymph nodes' stays."""
    return noun if noun.endswith("s") else noun[:-1] + "ies" if noun.endswith("y") else noun + "s"


def _phrase(name: str, laterality: str, severity: str | None, location: str,
            descriptors: Sequence[str]) -> str:
    grade = f"{severity} " if severity else ""
    n = lower_name(name)
    if any(d in _MANY for d in descriptors):
        n = _plural(n)  # "numerous calcified granulomas", "several focal lung opacities"
    # a descriptor the name already says ("calcified" for "aortic calcification") is not repeated
    desc = "".join(f"{d} " for d in descriptors if d[:5] not in n and d != location)
    side = "" if location in ("biapical", "bibasilar", "bibasal") else side_adj(laterality)  # no "bilateral biapical"
    if location and (set(location.split()) & set(n.split())) - {"lung", "lungs"}:
        # "degenerative changes of the thoracic spine", not "… of the spine in the thoracic spine"
        last = location.split()[-1]
        if location not in n and n.split()[-1] == last:
            n = n[: -len(last)] + location
        location = ""
    if _RIB_NUMBER.fullmatch(location):
        # "left 9th rib fracture", "old healed left 5th and 6th rib fractures"
        return f"{grade}{desc}{side}{location} {_plural(n) if _ORDINALS.search(location) else n}"
    if _LEVELS.fullmatch(location):
        # "vertebral wedge deformities at T6, T8, T11 and T12"
        return f"{grade}{desc}{_plural(n) if _LEVELS_MANY.search(location) else n} at {location}"
    if location in _ADJECTIVES:
        return f"{grade}{desc}{side}{location} {n}" if location not in n else f"{grade}{desc}{side}{n}"
    if location:
        if laterality == "bilateral":
            plural = _PLURAL.get(location, location if location in _PLURAL.values()
                                 or location.endswith(("zones", "fields", "lungs", "fissures")) else None)
            where = f"both {plural}" if plural else f"the {location} on both sides"
        else:
            where = f"the {side}{location}"
        prep = "at" if location.split()[-1] in ("base", "apex", "bases", "apices") else "in"
        return f"{grade}{desc}{n} {prep} {where}"
    return f"{grade}{desc}{side}{n}"


_LEVELS = re.compile(r"[TL]\d{1,2}\b.*")
_LEVELS_MANY = re.compile(r"[TL]\d{1,2}\b.+[TL]?\d")
_RIB_NUMBER = re.compile(r"\d{1,2}(?:st|nd|rd|th)\b.*")
_ORDINALS = re.compile(r"\d(?:st|nd|rd|th)\b.+\d(?:st|nd|rd|th)\b")


def evidence_present(body: str, rng: random.Random) -> str:
    """What a reader sees when the finding is there."""
    return rng.choice([f"{cap(body)}.", f"Seen: {body}.", f"Visible: {body}.", f"{cap(body)} on this film.",
                       f"On this film, {body}."])


def evidence_uncertain(body: str, rng: random.Random, hedge: str = "") -> str:
    """What a reader sees when the finding may or may not be there, hedged as strongly as the report hedges it.

    ``hedge``: "probable" where the report leans towards it ("likely", "suggestive of"), "possible" where it
    only allows it ("may be", "or"); the wording never turns one into the other.
    """
    if hedge == "probable":
        return rng.choice([f"Probable {body}, not certain.", f"Likely {body}.", f"{cap(body)}, probably."])
    return rng.choice([f"Possible {body}, not definite.", f"Equivocal {body}.",
                       f"{cap(body)}: neither confirmed nor excluded.", f"Possible {body}."])


def evidence_absent(name: str, limit: str, rng: random.Random) -> str:
    """A pertinent negative, narrowed exactly as the report narrows it ("no large effusion")."""
    limit = " ".join(_ADVERB_LIMITS.get(w, w) for w in limit.split())  # "not significantly enlarged"
    n = f"{limit} {lower_name(name)}" if limit else lower_name(name)
    return rng.choice([f"No {n}.", f"No {n} is seen.", f"No {n} identified.", f"There is no {n}.",
                       f"{cap(n)} is not seen.", f"No evidence of {n}."])


def sign_text(sign: str) -> str:
    """A knowledge entry's sign as a short noun phrase (parenthetical detail dropped)."""
    return re.sub(r"\s*\([^)]*\)", "", sign).split(";")[0].strip().rstrip(".")


# Key words of radiographic signs, most specific first: a knowledge entry's sign counts as seen when its first key
# word is also in the report sentence that states the finding.
SIGN_KEYS = ("air bronchogram", "silhouett", "meniscus", "blunt", "kerley", "septal line", "cephali", "peribronchial",
             "cuffing", "volume loss", "air-fluid", "air fluid", "pleural line", "deep sulcus", "cavit", "spiculat",
             "obscur", "effac", "flatten", "hyperlucen", "hyperexpan", "hyperinfla", "osteophyt", "wedg",
             "height loss", "callus", "crowding", "elevat", "shift", "tortuos", "widen", "calcif", "reticul",
             "lucen", "layering", "loculat", "displace", "fissur", "hazy", "patchy", "linear", "band", "nodular",
             "enlarg", "prominen", "interstitial", "consolidat", "opacit")


_STOP = {"with", "which", "there", "their", "other", "about", "along", "without", "often", "usually", "where",
         "these", "those", "between", "through", "across"}


def sign_seen(sign: str, sentence: str) -> bool:
    """Whether the report sentence names most of a sign's own words (5-letter stems at a word's start; 3 in 4).

    So a sign stated as seen claims no detail the report does not give ("posterior sulcus on the lateral view"
    for "bilateral costophrenic blunting").
    """
    words = [w for w in re.findall(r"[a-z]{5,}", sign.lower()) if w not in _STOP]
    if not words:
        return False
    starts = set(re.findall(r"\b[a-z]{5}", sentence))
    hits = sum(1 for w in words if w[:5] in starts)
    return hits / len(words) >= 0.75 and any(k in sign.lower() and k in sentence for k in SIGN_KEYS)


def gist(definition: str) -> str:
    """The first sentence of a definition, lower-case first, no final period."""
    first = definition.split(". ")[0].strip().rstrip(".")
    return first[:1].lower() + first[1:]


def reasoning_present(name: str, entry_id: str, signs: Sequence[str], detail: str, definition: str | None,
                      alternative: tuple[str, str] | None, rng: random.Random) -> str:
    """From the signs seen to the finding; ``detail`` is its location, size and chronicity in words."""
    n = lower_name(name)
    if signs:
        seen = join(signs)
        head = rng.choice([f"{seen} {'is' if len(signs) == 1 else 'are'} the sign of {n} [K:{entry_id}]",
                           f"{seen} point{'s' if len(signs) == 1 else ''} to {n} [K:{entry_id}]",
                           f"with {seen}, this reads as {n} [K:{entry_id}]"])
    elif definition:
        head = rng.choice([f"this is {n} [K:{entry_id}] — {gist(definition)}",
                           f"the appearance is that of {n} [K:{entry_id}]: {gist(definition)}"])
    else:
        head = rng.choice([f"this is {n} [K:{entry_id}]", f"the appearance is that of {n} [K:{entry_id}]"])
    tail = f"; {detail}" if detail else ""
    alt = ""
    if alternative:
        dname, did = alternative
        alt = rng.choice([f" {cap(lower_name(dname))} [K:{did}] is the alternative to keep in mind.",
                          f" The differential includes {lower_name(dname)} [K:{did}]."])
    return f"{head}{tail}.{alt}"


def reasoning_uncertain(name: str, entry_id: str, signs: Sequence[str], detail: str,
                        alternative: tuple[str, str] | None, rng: random.Random) -> str:
    """A finding that may be there: what is seen, and why it stays open."""
    n = lower_name(name)
    seen = f"{join(signs)} may reflect" if signs else "the appearance may reflect"
    tail = f" ({detail})" if detail else ""
    if alternative:
        dname, did = alternative
        return rng.choice([
            f"{seen} {n} [K:{entry_id}]{tail}, and {lower_name(dname)} [K:{did}] stays in the differential.",
            f"{seen} {n} [K:{entry_id}]{tail} or {lower_name(dname)} [K:{did}]; the film does not decide.",
        ])
    return rng.choice([
        f"{seen} {n} [K:{entry_id}]{tail}, but it is not definite.",
        f"{seen} {n} [K:{entry_id}]{tail}; it cannot be confirmed on this film.",
    ])


def reasoning_normal(rng: random.Random, besides: Sequence[str] = (), devices: bool = False,
                     partial: bool = False) -> tuple[str, str]:
    """Observation and inference for a study without any of the 13 CheXpert abnormalities.

    ``besides``: the findings outside them (chronic changes, devices) that stand beside it; ``devices``: one of
    them is a device (it is "not acute" in no sense); ``partial``: the report also states something no entry reads,
    so the study is not called normal in every region.
    """
    if besides:
        names = join(besides)
        obs = rng.choice([f"Apart from {names}, no abnormality is described", f"Only {names}"])
        choices = [f"beyond {names}, no acute cardiopulmonary abnormality is seen [K:no_finding]."]
        if not devices:
            choices.append(f"{names} {_be(besides)} not acute; there is no acute "
                           "cardiopulmonary abnormality [K:no_finding].")
        return obs, rng.choice(choices)
    if partial:
        obs = rng.choice(["No acute finding among those described", "Nothing acute is described"])
        return obs, "there is no acute cardiopulmonary abnormality [K:no_finding]."
    obs = rng.choice(["No abnormality is seen in any region", "Nothing abnormal in the regions examined",
                      "No finding in the lungs, pleura, heart or mediastinum"])
    inf = rng.choice(["there is no acute cardiopulmonary abnormality [K:no_finding].",
                      "this is a normal chest radiograph [K:no_finding].",
                      "no finding needs reporting [K:no_finding]."])
    return obs, inf


def _be(names: Sequence[str]) -> str:
    """'is' for one finding named in the singular, else 'are' ("degenerative changes of the spine are incidental")."""
    if len(names) != 1:
        return "are"
    head = re.sub(r"\([^)]*\)", " ", names[0].split(",")[0].split(" of ")[0]).split()
    last = head[-1] if head else ""
    return "are" if last.endswith("s") and not last.endswith(("ss", "is", "us")) else "is"


def impression(main: Sequence[str], minor: Sequence[str], rng: random.Random, signs: Sequence[str] = (),
               treating: Sequence[str] = ()) -> str:
    """The impression reasoned from the findings: what matters, what shows it (``signs``), then what is incidental.

    ``signs``: findings that are the main finding's own features ("chronic obstructive pulmonary disease, shown by
    hyperinflation and bulla"), neither incidental to it nor findings of their own. ``treating``: devices placed for
    a main finding ("moderate left pneumothorax, with a left chest tube in place"), not incidental to it either.
    """
    if not main:
        # only chronic or incidental findings (and devices in place): the impression rests on none of them
        placed = f"{join(treating)} {_be(treating)} in place" if treating else ""
        if not minor:
            return f"there is no acute cardiopulmonary abnormality; {placed}."
        what = join(minor)
        tail = f"; {placed}" if placed else ""
        return rng.choice([f"{what} {_be(minor)} incidental or chronic; there is no acute "
                           f"cardiopulmonary abnormality{tail}.",
                           f"there is no acute cardiopulmonary abnormality; {what} "
                           f"{_be(minor)} incidental or chronic{tail}."])
    out = rng.choice([f"the impression rests on {join(main)}", f"taken together, the main finding is {join(main)}"
                      if len(main) == 1 else f"taken together, the main findings are {join(main)}"])
    if signs:
        out += f", shown by {join(signs)}"
    if treating:
        out += f", with {join(treating)} in place"
    if minor:
        forms = [f"; {join(minor)} {_be(minor)} incidental", f", with {join(minor)} as incidental or chronic change"]
        out += forms[0] if treating else rng.choice(forms)  # (one "with" is enough)
    return out + "."


# Findings that describe a shadow rather than name its cause: a differential belongs to them even when present.
DESCRIPTIVE = frozenset({"lung_opacity", "consolidation", "interstitial_abnormality", "ground_glass_opacity",
                         "pulmonary_nodule", "multiple_pulmonary_nodules", "lung_lesion", "lung_mass",
                         "hilar_enlargement", "mediastinal_widening", "enlarged_cardiomediastinum",
                         "pleural_thickening", "elevated_hemidiaphragm", "bone_lesion"})

# Findings that are features of another: beside it they show it ("COPD ... hyperinflated lungs, bullae").
FEATURE_OF = {"hyperinflation": frozenset({"copd", "emphysema"}), "bulla": frozenset({"copd", "emphysema"}),
              "emphysema": frozenset({"copd"})}

# Devices an operation leaves behind: beside the acute findings they are incidental, not "in place" for care.
LEFT_BY_SURGERY = frozenset({"sternotomy_wires", "orthopedic_hardware", "prosthetic_valve", "septal_occluder"})

# Devices placed to treat a finding: beside it they are its treatment, not an incidental device.
TREATS = {"chest_tube": frozenset({"pneumothorax", "tension_pneumothorax", "hydropneumothorax", "pleural_effusion",
                                   "empyema"})}

# Patterns spread through the lungs rather than placed: one of them does not swallow a placed opacity of its own words.
PATTERNS = frozenset({"interstitial_abnormality"})

# Entries counted under another finding's label that are not a kind of it: vascular congestion is labelled Edema
# (as CheXpert does), but congestion beside interstitial edema is two findings, not one said twice.
NOT_A_KIND = frozenset({"pulmonary_vascular_congestion"})

# A fracture whose clause names its bone is that bone's fracture.
FRACTURE_OF = re.compile(r"\b(ribs?|clavicles?|clavicular)\b")
FRACTURE_OF_BONE = {"rib": "rib_fracture", "ribs": "rib_fracture", "clavicle": "clavicle_fracture",
                    "clavicles": "clavicle_fracture", "clavicular": "clavicle_fracture"}

# What a finding described as calcified is.
CALCIFIED_IS = {"pulmonary_nodule": "granuloma", "multiple_pulmonary_nodules": "granuloma"}
# A granuloma at the hila or in the mediastinum is a calcified node there, not a lung finding.
# ("perihilar" is lung beside the hilum: a perihilar granuloma stays a lung granuloma)
NODAL_PLACES = frozenset({"hilar", "hilum", "paratracheal", "pretracheal", "subcarinal", "aortopulmonary window"})

# Findings an impression names as incidental or chronic beside the acute ones (beside devices and bones).
INCIDENTAL = frozenset({"tortuous_aorta", "aortic_calcification", "vascular_calcification", "granuloma",
                        "calcified_lymph_nodes",
                        "lung_scarring", "hiatal_hernia", "elevated_hemidiaphragm", "diaphragmatic_eventration",
                        "hyperinflation", "low_lung_volumes", "pleural_plaque", "surgical_clips", "ecg_leads",
                        "epicardial_fat_pad", "esophagectomy", "cholecystectomy", "cholelithiasis",
                        "diaphragmatic_hernia", "colonic_interposition", "right_aortic_arch",
                        # chronic lung and aortic disease: "emphysema, no acute abnormality"
                        "emphysema", "copd", "bulla", "bronchiectasis", "pulmonary_fibrosis", "aortic_enlargement"})
INCIDENTAL_REGIONS = frozenset({"bones_soft_tissue", "lines_devices"})
# ... except what may be acute there (when stated without an age: offline._maybe_acute)
MAYBE_ACUTE = frozenset({"fracture", "rib_fracture", "clavicle_fracture", "vertebral_compression_fracture",
                         "subcutaneous_emphysema"})

# What a second look re-inspects, per region (the tubes entry only where the study has a tube or line).
REGION_CHECKS: dict[str, tuple[str, ...]] = {
    "airway": ("the tracheal position and calibre", "the airway down to the carina"),
    "lungs": ("both lungs zone by zone, including behind the heart", "the lung bases for subtle opacity",
              "the lung apices", "the lung volumes and symmetry of lucency"),
    "pleura": ("the costophrenic angles for fluid", "the apices and lateral chest wall for a pleural line",
               "the fissures and pleural surfaces"),
    "heart_mediastinum": ("the cardiac size on the frontal view", "the width and contour of the mediastinum",
                          "the aortic contour"),
    "hila": ("the size and density of both hila", "the hilar contours"),
    "bones_soft_tissue": ("the ribs, clavicles and spine", "the soft tissues of the chest wall",
                          "each rib front and back"),
    "upper_abdomen": ("the area under the diaphragm", "the height and contour of both domes"),
    "lines_devices": ("the whole film for devices",),
}
TUBE_CHECKS = ("the course and tip position of each tube and line", "where each line ends")

SUMMARY_CLEAN = (
    "The second look confirms the first; nothing needs correcting.",
    "On re-inspection every claim holds, with the same sides and sizes.",
    "Re-checked and unchanged: the first reading stands.",
    "No correction: each finding and each pertinent negative holds on the second look.",
)


def summary_fixed(finding: str, state: str, impression_text: str, rng: random.Random) -> str:
    """The reasoning redone on the corrected perception."""
    return rng.choice([
        f"With {finding} corrected to {state}, {impression_text}",
        f"After the correction ({finding}: {state}), {impression_text}",
    ])


def missed_note(region: str, body: str, sign: str | None, rng: random.Random) -> str:
    """What a second pass found that the first missed."""
    why = f" ({sign})" if sign else ""
    return rng.choice([f"A second pass over the {region} shows {body}{why}.",
                       f"On closer inspection of the {region}: {body}{why}, missed on the first look.",
                       f"Re-inspecting the {region} reveals {body}{why}."])


def hallucinated_note(name: str, sign: str | None, absent: str, lateral: bool, rng: random.Random) -> str:
    """Why a finding of the first look does not hold."""
    n = lower_name(name)
    # "the film shows no …" fits a sign of one thing or of several ("a thin white pleural line", "linear opacities")
    bare = re.sub(r"^(?:a|an|the)\s+", "", sign) if sign else ""
    base = (f"On the second look the film shows no {bare} to support {n}" if sign
            else f"On the second look nothing supports {n}")
    also = " on either view" if lateral else ""
    return rng.choice([f"{base}{also}: {absent}", f"{base}{also}. {absent}"])


def laterality_note(name: str, sign: str | None, right: str, wrong: str, rng: random.Random) -> str:
    """Why the side is corrected."""
    what = sign or lower_name(name)
    return rng.choice([f"The {what} is on the {right} side, not the {wrong}.",
                       f"Checking the side marker: the {what} is {right}-sided, not {wrong}-sided."])


def severity_note(name: str, sign: str | None, right: str, wrong: str, rng: random.Random) -> str:
    """Why the grade is corrected."""
    n = lower_name(name)
    by = f" judged by the {sign}" if sign else ""
    return rng.choice([f"The {n} is {right}, not {wrong}{by}.",
                       f"On a careful second look the {n} is {right} rather than {wrong}{by}."])


def normal_besides_note(chronic: Sequence[str]) -> str:
    """The no_finding correction's note when chronic or incidental findings outside the 14 labels remain."""
    what = join(chronic)
    return (f"Without it only {what} remain{'s' if _be(chronic) == 'is' else ''}, none of them an acute "
            "cardiopulmonary abnormality.")


# a finding of the 14 observations beside an impression of "no acute cardiopulmonary abnormality"
NO_FINDING_BUT_NOTHING_ACUTE = ("With this finding the study no longer counts as having no finding, though nothing "
                                "acute is seen.")

NO_FINDING_NOTES = {
    "absent": ("With this finding the study is not normal.", "The study can no longer be called normal."),
    # "normal" in the CheXpert sense: chronic findings outside the 14 observations (a granuloma) may remain
    "present": ("Without it no acute cardiopulmonary abnormality remains.",
                "Without it there is no acute cardiopulmonary abnormality after all."),
}

# A report sentence that gives its own reading of what it describes: a stock alternative is then not offered
INTERPRETS = re.compile(r"\b(?:consistent with|compatible with|concerning for|suspicious for|worrisome for|"
                        r"suggestive of|due to|related to|secondary to|attributed to|chronic|versus|vs|"
                        r"differential|etiology)\b")
# Diagnoses a report may give anywhere (often in the impression) that a stock alternative for a finding of that
# region would argue against ("nodules ... consistent with neoplasm": not "granuloma is the alternative")
REPORT_DIAGNOSES = {
    "lungs": re.compile(r"\b(?:neoplas\w*|malignan\w*|metasta\w*|tubercul\w*|tb|infect\w*|inflammat\w*|"
                        r"fibros\w*|fibrotic|sarcoid\w*|lymphoma|carcinoma|cancer)\b"),
}

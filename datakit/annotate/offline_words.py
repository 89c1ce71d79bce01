"""The offline teacher's wording: how a reader of the image says what is seen, reasoned, and re-checked.

Several phrasings for every slot, chosen per study by a seeded generator, so traces do not collapse onto one
template (the validation stage flags near-identical traces). All sentences are written for datakit.
"""

from __future__ import annotations

import random
import re

# Graded scales the offline teacher understands; a word outside them is a descriptor, not a severity.
SIZE_SCALE = ("trace", "small", "moderate", "large")
DEGREE_SCALE = ("mild", "moderate", "severe")
_SEVERITY_ALIASES = {"tiny": "trace", "minimal": "mild", "marked": "severe", "massive": "large",
                     "small-to-moderate": "moderate", "moderate-to-large": "large", "mild-to-moderate": "moderate"}
SEVERITY_WORDS = re.compile(
    r"\b(" + "|".join(sorted({*SIZE_SCALE, *DEGREE_SCALE, *_SEVERITY_ALIASES}, key=len, reverse=True)) + r")\b"
)
_SIDE = re.compile(r"\b(left|right|bilateral|bilaterally|both|bibasilar|bibasal|bibasalar)\b")


def severity_of(sentence: str) -> str | None:
    """The first grade word of the sentence, mapped onto the scales."""
    m = SEVERITY_WORDS.search(sentence.lower())
    if not m:
        return None
    word = m.group(1)
    return _SEVERITY_ALIASES.get(word, word)


def laterality_of(sentence: str) -> str:
    """left, right, bilateral or none, from the sentence's side words."""
    sides = {m.group(1) for m in _SIDE.finditer(sentence.lower())}
    if not sides:
        return "none"
    if sides & {"bilateral", "bilaterally", "both", "bibasilar", "bibasal", "bibasalar"} or {"left", "right"} <= sides:
        return "bilateral"
    return sides.pop()


def other_grade(severity: str, rng: random.Random) -> str | None:
    """A neighbouring grade on the same scale (for an injected severity error)."""
    for scale in (SIZE_SCALE, DEGREE_SCALE):
        if severity in scale:
            i = scale.index(severity)
            options = [scale[j] for j in (i - 1, i + 1) if 0 <= j < len(scale)]
            return rng.choice(options) if options else None
    return None


def short_sign(sign: str) -> str:
    """A sign without its parenthetical and after-semicolon detail, lowercased at the start."""
    text = re.split(r"\s\(|;|:", sign, maxsplit=1)[0].strip().rstrip(".")
    return text[:1].lower() + text[1:]


def side_phrase(laterality: str, rng: random.Random) -> str:
    """' on the left', ' on both sides', … or '' for none."""
    if laterality == "left":
        return rng.choice([" on the left", " in the left hemithorax", " on the left side"])
    if laterality == "right":
        return rng.choice([" on the right", " in the right hemithorax", " on the right side"])
    if laterality == "bilateral":
        return rng.choice([" on both sides", " bilaterally", " in both hemithoraces"])
    return ""


def side_adj(laterality: str) -> str:
    """'left ', 'right ', 'bilateral ' or ''."""
    return "" if laterality == "none" else laterality + " "


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def cap(text: str) -> str:
    """Upper-case the first letter."""
    return text[:1].upper() + text[1:]


def lower_name(name: str) -> str:
    """A finding name as it reads inside a sentence (keeps acronyms such as PICC)."""
    return name if name[:2].isupper() else name[:1].lower() + name[1:]


def evidence_present(name: str, sign: str, laterality: str, severity: str | None, rng: random.Random) -> str:
    """What a reader sees when the finding is there."""
    n = lower_name(name)
    sev = f"{severity} " if severity else ""
    s = short_sign(sign)
    qual = f"{sev}{side_adj(laterality)}{n}"
    choices = [
        f"{cap(qual)}: {s}{side_phrase(laterality, rng)}.",
        f"{cap(s)}{side_phrase(laterality, rng)}, in keeping with {qual}.",
        f"{cap(s)}{side_phrase(laterality, rng)}: {qual}.",
        f"{cap(s)}{side_phrase(laterality, rng)}, indicating {qual}.",
        f"{cap(qual)}, seen as {s}.",
    ]
    return rng.choice(choices)


def evidence_uncertain(name: str, sign: str, laterality: str, severity: str | None, rng: random.Random) -> str:
    """What a reader sees when the finding may or may not be there."""
    n = lower_name(name)
    s = short_sign(sign)
    side = side_phrase(laterality, rng)
    choices = [
        f"Possible {side_adj(laterality)}{n}: subtle {s}{side}, not definite.",
        f"Equivocal {s}{side}; {n} can be neither confirmed nor excluded.",
        f"Faint {s}{side} raises the question of {n}.",
        f"There may be {s}{side}; {n} is possible but uncertain on this film.",
    ]
    return rng.choice(choices)


def evidence_absent(name: str, rng: random.Random) -> str:
    """A pertinent negative."""
    n = lower_name(name)
    return rng.choice([f"No {n}.", f"No {n} is seen.", f"There is no {n}.", f"No evidence of {n}.",
                       f"{cap(n)} is not present."])


def reasoning_present(name: str, entry_id: str, definition: str, differential: list[str],
                      rng: random.Random) -> str:
    """Inference for a finding that is there."""
    n = lower_name(name)
    gist = definition.split(". ")[0].rstrip(".")
    gist = gist[:1].lower() + gist[1:]
    diff = f" {cap(differential[0].split(' (')[0])} was considered." if differential and rng.random() < 0.6 else ""
    choices = [
        f"this is how {n} shows on a radiograph [K:{entry_id}].{diff}",
        f"the pattern fits {n} — {gist} [K:{entry_id}].{diff}",
        f"these features indicate {n} [K:{entry_id}].{diff}",
        f"taken together this is {n} [K:{entry_id}], {gist}.",
    ]
    return rng.choice(choices)


def reasoning_uncertain(name: str, entry_id: str, differential: list[str], rng: random.Random) -> str:
    """Inference for a finding that may be there."""
    n = lower_name(name)
    diff = differential[0].split(" (")[0] if differential else "a normal variant"
    choices = [
        f"the appearance is not definite: {n} is possible [K:{entry_id}], and {diff} stays in the differential.",
        f"{n} cannot be excluded [K:{entry_id}]; {diff} could look the same.",
        f"this may represent {n} [K:{entry_id}], but the sign is too faint to commit.",
    ]
    return rng.choice(choices)


def reasoning_absent(name: str, entry_id: str, rng: random.Random) -> str:
    """Inference for a pertinent negative."""
    n = lower_name(name)
    return rng.choice([
        f"without its signs there is no {n} [K:{entry_id}].",
        f"{n} is excluded on this film [K:{entry_id}].",
        f"nothing here suggests {n} [K:{entry_id}].",
    ])


def reasoning_normal(rng: random.Random) -> tuple[str, str]:
    """Observation and inference for a study without abnormality."""
    obs = rng.choice([
        "Every region of the tree looks normal",
        "Clear lungs, sharp costophrenic angles and a normal cardiomediastinal silhouette",
        "No abnormality in the lungs, pleura, heart, mediastinum or bones",
    ])
    inf = rng.choice([
        "there is no acute cardiopulmonary abnormality [K:no_finding].",
        "this is a normal chest radiograph [K:no_finding].",
        "no finding needs reporting [K:no_finding].",
    ])
    return obs, inf


# What a second look re-inspects, per region.
REGION_CHECKS: dict[str, tuple[str, ...]] = {
    "airway": ("the tracheal position and calibre", "the airway down to the carina"),
    "lungs": ("both lungs zone by zone, including behind the heart", "the lung bases for subtle opacity",
              "the lung apices", "the lung volumes and symmetry of lucency"),
    "pleura": ("the costophrenic angles for fluid", "the apices and lateral chest wall for a pleural line",
               "the fissures and pleural surfaces"),
    "heart_mediastinum": ("the cardiac size on the frontal view", "the width and contour of the mediastinum",
                          "the aortic contour"),
    "hila": ("the size and density of both hila", "the hilar contours"),
    "bones_soft_tissue": ("the ribs, clavicles and spine for fractures", "the soft tissues of the chest wall",
                          "each rib front and back"),
    "upper_abdomen": ("the area under the diaphragm for free air", "the height and contour of both domes"),
    "lines_devices": ("the course and tip position of each tube and line", "the whole film for devices"),
}

SUMMARY_CLEAN = (
    "The second look confirms the first; nothing needs correcting.",
    "On re-inspection every claim holds, with the same sides and sizes.",
    "Re-checked and unchanged: the first reading stands.",
    "No correction: each finding and each pertinent negative holds on the second look.",
)
SUMMARY_FIXED = (
    "The second look corrected the first reading; what follows describes the corrected perception.",
    "After the correction, perception and conclusion agree.",
    "One claim of the first look did not hold and is corrected above.",
)
MISSED_NOTES = (
    "A second pass over the {region} shows {evidence}",
    "On closer inspection of the {region}: {evidence}",
    "Re-inspecting the {region} reveals what the first look missed: {evidence}",
)
HALLUCINATED_NOTES = (
    "On the second look it is not there: {absent} The apparent finding was an overlap of normal structures.",
    "Re-inspection does not confirm it: {absent_l} What looked abnormal is projection, not disease.",
    "The lateral view does not show it, and the {region} look normal on both views: {absent_l}",
)
LATERALITY_NOTES = (
    "The finding is on the {right} side, not the {wrong}.",
    "Checking the side markers and both views: it is {right}, not {wrong}.",
)
SEVERITY_NOTES = (
    "Measured against the hemithorax it is {right}, not {wrong}.",
    "On a careful second look the extent is {right} rather than {wrong}.",
)
NO_FINDING_NOTES = {
    "absent": ("With this finding the study is not normal.", "The study can no longer be called normal."),
    "present": ("Without it nothing abnormal remains: the study is normal.", "The study is normal after all."),
}

"""The offline teacher's wording: how a reader of the image says what is seen, reasoned, and re-checked.

Several phrasings for every slot, chosen per study by a seeded generator, so traces do not collapse onto one
template (the validation stage flags near-identical traces). All sentences are written for datakit.
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


def cap(text: str) -> str:
    """Upper-case the first letter."""
    return text[:1].upper() + text[1:]


def lower_name(name: str) -> str:
    """A finding name as it reads inside a sentence (keeps acronyms such as PICC)."""
    return name if name[:2].isupper() else name[:1].lower() + name[1:]


# A report clause that compares with an earlier study describes a change the image alone cannot show; it is
# not used as perception evidence (the structured side and grade are, instead).
_COMPARISON = re.compile(
    r"\b(?:prior|previous(?:ly)?|earlier|interval|again|unchanged|stable|new|newly|persist(?:ent|s)?|"
    r"increas\w*|decreas\w*|improv\w*|worsen\w*|resolv\w*|since|compared|comparison|before|now|"
    r"no longer|change|changed|progress\w*|slightly|evolving|remains?|redemonstrat\w*|recent|recently)\b",
    re.IGNORECASE,
)
# Longer clauses are whole report sentences: repeating them verbatim in the think text teaches echoing (the
# validation stage flags it), so the structured side-and-grade phrasing stands in for them.
_MAX_CLAUSE_WORDS = 7


def usable_clause(clause: str) -> bool:
    """Whether a report clause can stand as what a reader of this image sees."""
    words = clause.split()
    return (2 <= len(words) <= _MAX_CLAUSE_WORDS and not _COMPARISON.search(clause) and "___" not in clause
            and words[0].lower() not in _DANGLING)


_DANGLING = {"its", "it", "which", "that", "this", "these", "those", "they", "their", "and", "or", "though",
             "although", "but", "however", "whereas", "while", "also"}


def structured(name: str, laterality: str, severity: str | None) -> str:
    """'small left pleural effusion' from the structured fields alone."""
    return f"{severity + ' ' if severity else ''}{side_adj(laterality)}{lower_name(name)}"


def describe(name: str, clause: str | None, laterality: str, severity: str | None) -> str:
    """A noun phrase or clause, lower-case first, naming the finding as seen: the report's wording where usable."""
    if clause and usable_clause(clause):
        body = clause.rstrip(".")
        first = body.split()[0]
        return body if len(first) > 1 and first.isupper() else body[:1].lower() + body[1:]  # keep "ETT", "PICC"
    return structured(name, laterality, severity)


def evidence_present(name: str, clause: str | None, laterality: str, severity: str | None,
                     rng: random.Random) -> str:
    """What a reader sees when the finding is there.

    The report's own wording of it where it describes the image, else the finding with its side and grade.
    """
    if clause and usable_clause(clause):
        body = describe(name, clause, laterality, severity)
        if body.startswith(("there ", "There ")):
            return f"{cap(body)}."
        return rng.choice([f"{cap(body)}.", f"Seen on this film: {body}.", f"On this film, {body}."])
    qual = structured(name, laterality, severity)
    return rng.choice([f"{cap(qual)}.", f"There is {qual}.", f"{cap(qual)} is present.", f"Visible: {qual}."])


def evidence_uncertain(name: str, clause: str | None, laterality: str, severity: str | None,
                       rng: random.Random) -> str:
    """What a reader sees when the finding may or may not be there."""
    if clause and usable_clause(clause):
        body = clause.rstrip(".")
        return rng.choice([f"{cap(body)}.", f"Equivocal: {body[:1].lower() + body[1:]}."])
    qual = structured(name, laterality, severity)
    return rng.choice([f"Possible {qual}, not definite.", f"Equivocal {qual}.",
                       f"{cap(qual)} can be neither confirmed nor excluded.",
                       f"Questionable {qual} on this film."])


def evidence_absent(name: str, rng: random.Random) -> str:
    """A pertinent negative (no verb, so plural names read right: "No support devices.")."""
    n = lower_name(name)
    return rng.choice([f"No {n}.", f"No evidence of {n}.", f"No {n} identified.", f"No sign of {n}."])


def gist(definition: str) -> str:
    """The first sentence of a definition, lower-case first, no final period: knowledge stated in general."""
    first = definition.split(". ")[0].strip().rstrip(".")
    return first[:1].lower() + first[1:]


def reasoning_present(name: str, entry_id: str, definition: str | None, differential: tuple[str, str] | None,
                      rng: random.Random) -> str:
    """Inference for a finding that is there. ``differential`` is (name, entry id) of a retrieved alternative."""
    n = lower_name(name)
    what = f" — {gist(definition)}" if definition else ""
    diff = ""
    if differential:
        dname, did = differential
        diff = rng.choice([f" {cap(lower_name(dname))} was considered [K:{did}].",
                           f" The alternative, {lower_name(dname)} [K:{did}], fits less well."])
    return rng.choice([
        f"these features indicate {n} [K:{entry_id}]{what}.{diff}",
        f"this is {n} [K:{entry_id}]{what}.{diff}",
        f"the appearance fits {n} [K:{entry_id}]{what}.{diff}",
    ])


def reasoning_uncertain(name: str, entry_id: str, differential: tuple[str, str] | None, rng: random.Random) -> str:
    """Inference for a finding that may be there."""
    n = lower_name(name)
    if differential:
        dname, did = differential
        return rng.choice([
            f"the appearance is not definite: {n} is possible [K:{entry_id}], and {lower_name(dname)} [K:{did}] "
            "stays in the differential.",
            f"{n} cannot be excluded [K:{entry_id}]; {lower_name(dname)} [K:{did}] could look the same.",
        ])
    return rng.choice([
        f"{n} cannot be excluded [K:{entry_id}], but the sign is too faint to commit.",
        f"this may represent {n} [K:{entry_id}]; it is not definite on this film.",
    ])


def reasoning_absent(name: str, entry_id: str, rng: random.Random) -> str:
    """Inference for a pertinent negative."""
    n = lower_name(name)
    return rng.choice([
        f"without its signs there is no {n} [K:{entry_id}].",
        f"{n} is excluded on this film [K:{entry_id}].",
        f"nothing here suggests {n} [K:{entry_id}].",
    ])


def reasoning_normal(rng: random.Random, besides: Sequence[str] = ()) -> tuple[str, str]:
    """Observation and inference for a study without abnormality.

    ``besides``: findings outside the CheXpert observations that the study does have (the conclusion is then
    "nothing acute", never "normal").
    """
    if besides:
        names = ", ".join(besides[:-1]) + " and " + besides[-1] if len(besides) > 1 else besides[0]
        be = "are" if len(besides) > 1 else "is"
        obs = rng.choice([
            f"Apart from {names}, the lungs, pleura, heart and mediastinum look normal",
            f"Clear lungs and a normal cardiomediastinal silhouette; {names} aside",
        ])
        inf = rng.choice([
            f"{names} {be} not acute, and there is no acute cardiopulmonary abnormality [K:no_finding].",
            f"beyond {names}, no acute cardiopulmonary abnormality is seen [K:no_finding].",
        ])
        return obs, inf
    obs = rng.choice([
        "Every region looks normal",
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
    "A second pass over the {region} shows it: {evidence}.",
    "On closer inspection of the {region}: {evidence}.",
    "Re-inspecting the {region} reveals what the first look missed: {evidence}.",
)
HALLUCINATED_NOTES = (
    "On the second look it is not there: {absent} The apparent finding was an overlap of normal structures.",
    "Re-inspection does not confirm it: {absent_l} What looked abnormal is projection, not disease.",
)
HALLUCINATED_NOTES_LATERAL = (
    "The lateral view does not show it, and the {region} look normal on both views: {absent_l}",
)
LATERALITY_NOTES = (
    "The finding is on the {right} side, not the {wrong}.",
    "Checking the side marker: it is {right}, not {wrong}.",
)
SEVERITY_NOTES = (
    "Measured against the hemithorax it is {right}, not {wrong}.",
    "On a careful second look the extent is {right} rather than {wrong}.",
)
NO_FINDING_NOTES = {
    "absent": ("With this finding the study is not normal.", "The study can no longer be called normal."),
    "present": ("Without it nothing abnormal remains: the study is normal.", "The study is normal after all."),
}

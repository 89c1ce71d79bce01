"""Read a report for knowledge-base findings: which entry, present / absent / uncertain, which side, what grade.

This is the labeler's engine (:mod:`datakit.reading.rules`: the same cues, scopes, anchors and
unmentions from ``knowledge/labeler/lexicon.yaml``) with every knowledge entry's terms as mentions of that entry,
instead of the 13 CheXpert label columns: "small left apical pneumothorax, no effusion" gives pneumothorax
present (left, small) and pleural_effusion absent. The offline teacher places these on the perception tree.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from datakit.reading import rules
from datakit.reading.lexicon import build_tables, default_lexicon_path, read_lexicon
from datakit.reading.words import SEVERITY_WORDS, grade_range, laterality_of, severity_of


@dataclass(frozen=True)
class Perceived:
    """One finding as perceived: which entry, where, its status, side and grade, and the sentence it came from."""

    entry_id: str
    region: str
    status: str
    laterality: str = "none"
    severity: str | None = None
    sentence: str = ""
    # what the report says besides status, side and grade (empty when it says nothing of it):
    limit: str = ""  # the words that narrow a negative ("no *large* effusion", "no *focal* airspace disease")
    location: str = ""  # where, without the side ("lower lobe", "base", "apex")
    descriptors: tuple[str, ...] = ()  # how it looks or how old it is ("patchy", "calcified", "healed")
    course: str = ""  # how it changes, when the report says so ("nearly resolved", "residual", "improving")
    tip: str = ""  # where a line or tube ends, when the report says so ("in the right atrium", "4 cm above the carina")
    hedge: str = ""  # how strongly an uncertain finding is hedged: "probable" ("likely X") or "possible" ("may be X")
    grade_words: str = ""  # a range as the report words it ("mild to moderate"); ``severity`` holds its upper grade
    predominance: str = ""  # which side a bilateral finding favours, as the report says it ("right greater than left")


_STATUS = {1: "present", -1: "uncertain", 0: "absent"}
_CLAUSE_END = re.compile(r"\.(?:\s|$)|[;:!?]|,\s|\b(?:and|but|with|while|whereas|there is|there are)\b")
# Sides that name a part of the anatomy, not the side of the finding ("left-sided pacemaker, leads in the right
# atrium" is a left pacemaker).
_ANATOMY = (r"atrium|atrial|ventricle|ventricular|heart border|cardiac border|hemidiaphragm|main ?stem|mainstem|"
            r"main bronchus|bronchus|internal jugular|ij|subclavian|brachiocephalic|innominate")
ANATOMIC_SIDE = re.compile(rf"\b(?:left|right)[\s-]+(?:{_ANATOMY})\b")
_ANATOMY_WORD = re.compile(rf"\b(?:{_ANATOMY})\b")
_DEVICE_PLACE = re.compile(r"\b(?:left|right)[\s-]+(?:atrium|atrial|ventricle|ventricular|heart|cardiac|"
                           r"hemidiaphragm|hemithorax|main ?stem|mainstem|main bronchus|bronchus|brachiocephalic|"
                           r"innominate)\b")
_TIP = re.compile(r"\btips?\b|\bterminat|\bends?\b|\bcourses?\b|\bextends?\b")
# "left" at the end of a clause is what remains ("only trace blunting of the angle left"), unless it is a place
# ("on the left", "right greater than left")
_REMAINING = re.compile(r"(?<!the )(?<!and )(?<!or )(?<!than )(?<!to )\bleft(?=\s*(?:[.;:,]|$))")
# Words that narrow a negative: "no large effusion" is not "no effusion".
LIMITS = re.compile(r"\b(left|right|bilateral|large|significant|significantly|focal|acute|definite|definitive|"
                    r"otherwise|noncalcified|non-calcified|uncalcified|"
                    r"displaced|gross|"
                    r"grossly|obvious|overt|"
                    r"frank|sizable|sizeable|appreciable|substantial|visible|confluent|lobar|dense|moderate|new|"
                    r"active|suspicious|discrete|dominant|evident|measurable|typical|convincing)\b")
LOCATIONS = re.compile(r"\b((?:upper|lower|middle) and (?:upper|middle|lower) lobes?|(?:upper|lower|middle) lobes?|"
                       # lung zones keep their words ("right mid and upper lung zone", "lower lung zones")
                       r"(?:upper|mid|middle|lower)(?: and (?:upper|mid|middle|lower))? lung (?:zones?|fields?)|"
                       r"(?:upper|mid|lower) and (?:upper|mid|lower) lungs?|(?:upper|lower) lungs?|"
                       r"(?:minor|major|horizontal|oblique) fissures?|(?<=the )fissures?|"
                       r"lingula|lingular|apex|apices|apical|biapical|bibasilar|bibasal|bases|base|basilar|basal|"
                       # nodes at both places ("calcified right hilar and mediastinal lymph nodes"), not contours
                       r"(?:hilar and mediastinal|mediastinal and hilar)(?= (?:lymph|nodes?\b|adenopathy))|"
                       r"retrocardiac|perihilar|infrahilar|suprahilar|hilar|hilum|mid ?lung|midlung|upper zone|"
                       r"lower zone|mid zone|costophrenic (?:angle|sulcus)|subpleural|"
                       r"peripheral|paratracheal|(?:upper|mid|lower) thoracic|midthoracic|thoracic spine|"
                       r"lumbar spine|"
                       r"thoracolumbar|upper quadrant|axilla|chest wall|lung apex|lung base|paraspinal|retrocrural|"
                       r"pretracheal|subcarinal|aortopulmonary window|epigastric|epigastrium|axillary|"
                       r"(?<=in the )abdomen)\b")
# A bone's own site, for a fracture or a bone lesion only ("healing scapular fracture"); elsewhere such a word
# belongs to another noun of the clause ("degenerative changes of the spine and the acromioclavicular joints").
BONE_SITES = re.compile(r"\b(scapular|scapula|humeral|humerus|glenoid|sternal|sternum|acromioclavicular|shoulder)\b")
_SITED = frozenset({"fracture", "bone_lesion"})
# ... and where hardware or an operation on a bone is ("left humeral head bone anchors", "reconstructed right
# clavicle"): no clavicle fracture's site, which is that entry's own name
_SITED_WORK = frozenset({"orthopedic_hardware", "postsurgical_change"})
_WORK_SITES = re.compile(rf"{BONE_SITES.pattern}|\b(clavicle|clavicular)\b")
# which ribs a rib finding is at: "left 9th lateral rib", "5th and 6th ribs", "4th-6th"
_ORDINAL = r"\d{1,2}(?:st|nd|rd|th)"
RIB_NUMBERS = re.compile(rf"\b({_ORDINAL}(?:(?:\s*,\s*|\s*-\s*|\s+(?:and|through|to)\s+){_ORDINAL})*)"
                         rf"(?:\s+(?:anterior|posterior|lateral|posterolateral|anterolateral))?\s+ribs?\b")
_RIBBED = frozenset({"fracture", "rib_fracture"})
_HIDDEN_HEDGE = re.compile(rf"{rules.PLACEHOLDER_CHAR}+\s+(?:(?:due|related|secondary)\s+"
                           rf"(?:at\s+{rules.PLACEHOLDER_CHAR}+\s+)?(?:in\s+part\s+)?to|represent\w*|reflect\w*)\s")
_EACH_SIDE = re.compile(r"\b(?:right\b.*\bleft|left\b.*\bright)\b")  # a sentence naming both sides
_COMPLETE = re.compile(r"\b(?:complete|completely|total)\s+(?:collapse|collapsed|atelectasis|opacification)")
_LEAN = re.compile(r"\b(right|left)\s+(?:greater|more|larger|worse)\s+than\s+(?:the\s+)?(left|right)\b")
_CALLUS = re.compile(r"\bcallus\b")  # a fracture with callus is healing
_LUNG_PLACES = frozenset({"apex", "apices", "apical", "biapical", "lung apex", "base", "bases", "basilar", "basal",
                          "bibasilar", "bibasal", "lung base", "hilar", "hilum", "perihilar"})
DESCRIPTORS = re.compile(r"\b(numerous|several|multiple|patchy|streaky|linear|hazy|reticular|reticulonodular|calcified|"
                         r"uncalcified|noncalcified|non-calcified|"
                         r"subsegmental|"
                         r"plate ?like|discoid|focal|confluent|faint|chronic|old|healed|healing|remote|multilevel|"
                         r"loculated|layering|nodular|interstitial|diffuse|scattered|multifocal|malpositioned)\b")
# Hedges that lean towards the finding ("likely", "probable", "suggestive of"); the rest only allow it.
_STRONG_HEDGE = re.compile(r"\b(?:likely|probable|probably|favou?red|favou?ring|suggest\w*|suspicious|concerning|"
                           r"worrisome|compatible|consistent|most)\b")
_ALTERNATIVE_JOIN = re.compile(r"\s*(?:/|,?\s*(?:or|versus|vs\.?|and/or)\s)\s*(?:possibly\s+|probably\s+)?")
_BOTH_NAMED = re.compile(r"\s*and\s+(?:the\s+)?(?P<other>left|right)\s+(?:(?:upper|middle|mid|lower)\s+)?"
                         r"(?:lung zones?|lungs?|lobes?|bases?|apices|apex|hemithorax|sides?)\s*(?:[.,;]|$)")
_LESS_LIKELY = re.compile(rf"\bless\s+(?:likely|probabl[ey]|{rules.PLACEHOLDER_CHAR}+)\s+(?:\w+\s+)?$")
_JOINER = re.compile(r",|\b(?:and|or|with|versus|vs|related|due|secondary|from|than|there is|there are)\b")
# a negation with a placeholder right before the finding: the placeholder hid what narrowed it ("no XXXX nodules
# are seen" beside a calcified granuloma is not "no nodule")
_HIDDEN_LIMIT = re.compile(rf"\b(?:no|without)\s+{rules.PLACEHOLDER_CHAR}+\s+$")
# fractures and deformities whose age the report may give after naming them ("related to remote XXXX", "old injury")
_HEALED_ONES = frozenset({"rib_fracture", "clavicle_fracture", "fracture"})
AGE_WORDS = frozenset({"old", "healed", "healing", "remote", "chronic"})
_AGE = re.compile(rf"\b({'|'.join(sorted(AGE_WORDS))})\b")
# findings a sentence's other side does not reach ("opacity in the left upper lobe with partial resection of the
# posterior fourth rib": the report gives the operation no side)
_OWN_SIDE_ONLY = frozenset({"postsurgical_change"})
# descriptive lung shadows a report may go on to interpret ("opacities, possibly scarring")
_SHADOWS = frozenset({"lung_opacity", "interstitial_abnormality", "ground_glass_opacity"})
_LESIONS = frozenset({"pulmonary_nodule", "lung_lesion", "lung_mass", "multiple_pulmonary_nodules"})
# lymph nodes keep "mediastinal" as their place (other findings read it as a structure word)
_NODES = frozenset({"calcified_lymph_nodes", "lymphadenopathy"})
_NODAL = _NODES | {"granuloma"}  # their place may make them nodes (offline.NODAL_PLACES): it is kept
_MEDIASTINAL = re.compile(r"\bmediastinal\b")
_MEDIASTINAL_ONES = _NODES | {"surgical_clips"}
# the vertebral levels of a spine finding ("wedging of multiple vertebral bodies including T6, T8, T11 and T12",
# "compression deformity of T12", "the L1 vertebral body")
_LEVEL = r"[tl]\d{1,2}"
VERTEBRAL_LEVELS = re.compile(rf"\b({_LEVEL}(?:(?:\s*,\s*(?:and\s+)?|\s*-\s*|\s+(?:and|through|to)\s+){_LEVEL})*)\b")
_LEVELLED = frozenset({"vertebral_wedge_deformity", "vertebral_compression_fracture"})
# the operation sternotomy wires are from, when the report names it
_BROKEN_WIRE = re.compile(r"\b(disrupted|fractured|broken|displaced)\b")
_CABG = re.compile(r"\b(?:cabg|coronary (?:artery )?bypass)")
# which valve a prosthetic valve replaces ("mitral valve replacement")
_VALVE = re.compile(r"\b(mitral|aortic|tricuspid|pulmonic)\s+valve\b")
# what a relative clause adds to a finding: "a moderate right pleural effusion, which is partially loculated"
_WHICH_IS = re.compile(r"\s*,?\s*which (?:is|are|appears?|appear) ((?:partially |partly )?loculated|layering)\b")
# entries of several things, whose sizes the report may give one by one
_MANY = frozenset({"multiple_pulmonary_nodules", "granuloma", "calcified_lymph_nodes", "lymphadenopathy"})
_SIZE = re.compile(r"\b\d+(?:\.\d+)?\s*(?:x\s*\d+(?:\.\d+)?\s*)?(?:cm|mm)\b")
_LOBE_PAIR = re.compile(r"\b(?:upper|middle|lower) and (?:upper|middle|lower) lobes?\b")
# How a finding changes: "has nearly resolved" is not a plain present effusion, and its grade is what is left.
_COURSE = (
    (re.compile(r"\b(?:nearly|almost|largely|mostly|near[\s-]complete(?:ly)?|nearly complete(?:ly)?|partial(?:ly)?)"
                r"\s+(?:resolved|resolution|resolving|cleared|clearing)\b"), "nearly resolved"),
    (re.compile(r"\bresolving\b"), "resolving"),
    (re.compile(r"\bresidual\b"), "residual"),
    # "decreased / diminished lung volumes" are low volumes, not an improvement: a decrease counts only in size
    (re.compile(r"\b(?:improv(?:ed|ing|ement)|smaller|interval decrease|"
                r"(?:decreas(?:ed|ing)|diminish(?:ed|ing)) in (?:size|extent|amount|conspicuity))\b"), "improving"),
)
# What is left of a resolving finding, graded, after the mention: "…has nearly resolved, with only trace blunting",
# "improvement in bilateral edema with mild residual".
_LEFT_OF_IT = re.compile(rf"^[^.;]*?\bwith\s+(?:only\s+)?(?:an?\s+)?(?:{rules.PLACEHOLDER_CHAR}+\s+)?"
                         rf"{SEVERITY_WORDS.pattern}")
# One plural finding, a grade for each side: "small right and moderate left pleural effusions".
_SIDE_GRADES = re.compile(rf"{SEVERITY_WORDS.pattern}\s+(right|left)(?:[\s-]+sided)?\s*(?:,\s*|\s+)(?:and\s+)?"
                          rf"{SEVERITY_WORDS.pattern.replace('(', '(?P<g2>', 1)}\s+(right|left)(?:[\s-]+sided)?\s+")
_WORDS_BEFORE = 4  # how far before a mention its own adjectives are looked for
# Where a line or tube ends: "tip projects over the right atrium", "tip 4.5 cm above the carina", "terminates in the
# low SVC". The place is kept in the report's own anatomical words.
_TIP_PLACE = (r"(?:the\s+)?(?:(?:low|lower|mid|middle|upper|high|proximal|distal|inferior|superior)\s+)?(?:svc|"
              r"superior vena cava|(?:right|left) hemithorax|"
              r"cavoatrial junction|cavo-atrial junction|caval[\s-]?atrial junction|"
              r"junction of (?:the\s+)?(?:(?:right|left) )?brachiocephalic vein and (?:the\s+)?"
              r"(?:svc|superior vena cava)|"
              r"(?:right|left) atrium|(?:right|left) ventricle|"
              r"(?:(?:right|left) )?brachiocephalic vein|(?:(?:right|left) )?innominate vein|"
              r"brachiocephalic (?:venous )?confluence|"
              r"(?:(?:right|left) )?subclavian vein|"
              r"(?:right|left) internal jugular vein|azygos vein|stomach|gastric fundus|duodenum|esophagus|"
              r"distal esophagus|mid esophagus|thoracic inlet|(?:right|left) main ?stem bronchus|carina|"
              r"(?:(?:right|left|main) )?pulmonary artery)")
_TIP_PLACE_ONLY = re.compile(_TIP_PLACE)
_VOLUMES = frozenset({"low_lung_volumes"})  # the lungs' size as a whole: no place
_ANAPHORA = re.compile(r"\s*(?:the appearance|this|these|they|it|which|the findings?|findings)\b")
_GREATEST = re.compile(r"\b(?:greatest|most (?:marked|prominent|pronounced|severe)|worst|more marked)\s+"
                       r"(?:in|on|at|within|over|along)\s+(?:the\s+)?(?:[a-z]+\s+){0,5}?(left|right)\b")
_ZONES = frozenset({"base", "bases", "basilar", "basal", "bibasilar", "bibasal"})
_LINGULA = re.compile(r"\b(lingula|lingular)\b")
# places that share the noun after them: "bilateral hilar and | right paratracheal lymphadenopathy", "left lower and
# | right upper lobe opacities" (the clause would start after the "and")
_SHARED_PLACES = re.compile(r"(?:\b(?:left|right|bilateral|bilaterally|bihilar|bibasilar)\s+)?(?:(?:hilar|perihilar|"
                            r"paratracheal|mediastinal|subcarinal|axillary|supraclavicular|upper|middle|lower|lobe|"
                            r"basilar|apical|lung)\s+){1,3}and\s*$")
_TORTUOUS_GRADE = re.compile(r"\b(?:mildly|slightly|moderately|markedly|mild|slight)\s+tortuous\b")
_SIDED_HEADING = re.compile(r"\s*(?:\d+\s*[.)]\s*)?(left|right)\s+(?:shoulder|clavicle|scapula|humerus|upper arm|ribs?|"
                            r"chest|hemithorax|breast|axilla)\s*[.:]?\s*")
_LIMITED_EVIDENCE = re.compile(r"\b(\w+)\s+(?:radiographic\s+)?(?:evidence|signs?|findings?)\s+(?:of|for|to suggest)\b")
_TIP_AT = re.compile(rf"\b(?:tips?|terminat\w*|ends?|ending)\b[^.;]{{0,30}}?"
                     rf"(?:(?P<cm>(?:\d+(?:\.\d+)?\s*cm\s+)?(?:above|below)\s+the\s+carina)|"
                     rf"(?:in|at|over|within|into|near|overlying|projects over|projecting over|at the level of|"
                     rf"approximating|approximates|"
                     rf"in the region of|in region of|reaches the level of|reaching the level of|"
                     rf"at the junction of)\s+(?P<place>{_TIP_PLACE})"
                     # two leads, two places: "lead tips over the right atrium and right ventricle"
                     rf"(?:\s+and\s+(?P<place2>{_TIP_PLACE}))?)\b")
# the next sentence speaks of the device's tip ("... is in XXXX. The tip has moved into the innominate vein")
_NEXT_TIP = re.compile(r"\.\s+(?:the|its)\s+tip\b")
_COMPARED = re.compile(r"\b(?:more|most|less|slightly more)\s+(?:marked|markedly|severe|prominent)\b"
                       # a grade of the change, not of the finding: "mildly improved opacities"
                       r"|\b(?:mild|mildly|slight|slightly|minimal|minimally|moderately|markedly|marked)\s+"
                       r"(?:interval\s+)?(?:improved|improving|improvement|worse|worsened|worsening|progressed|changed)\b")


class FindingReader:
    """Entry-level mentions with status, side and grade; built once per process."""

    def __init__(self, kb: Any, lexicon_path: str | Path | None = None) -> None:
        path = Path(lexicon_path) if lexicon_path is not None else default_lexicon_path()
        self.kb = kb
        self.tables = build_tables(kb, read_lexicon(path), path, keyed_by="entries")
        # a finding whose own terms name the part ("elevated left hemidiaphragm") takes its side from that part
        self._own_anatomy: dict[str, re.Pattern[str]] = {}
        for entry in kb.entries.values():
            parts = {m.group(0) for t in (entry.name, *entry.synonyms) for m in _ANATOMY_WORD.finditer(t.lower())}
            if parts:
                own = "|".join(sorted(map(re.escape, parts)))
                self._own_anatomy[entry.id] = re.compile(rf"\b(?:left|right)[\s-]+(?!(?:{own})\b)(?:{_ANATOMY})\b")

    def read(self, text: str) -> list[Perceived]:
        """Every finding mentioned in ``text``, in text order (an entry may appear more than once)."""
        if not text:
            return []
        norm = rules.normalize(text)
        out: list[Perceived] = []
        prev_end = 0
        mentions = rules.find(self.tables, norm)
        prev_grade: str | None = None
        prev_side = "none"
        prev_end_before = 0
        all_next = {f.start: g.start for f, g in zip(mentions, mentions[1:], strict=False)}
        per_sentence: dict[int, int] = {}
        sentence_of: dict[int, int] = {}  # index into out → the sentence it was read in
        phrase_of: dict[int, int] = {}  # index into out → where its phrase starts
        for g in mentions:
            per_sentence[g.sentence] = per_sentence.get(g.sentence, 0) + 1
        # where the next mention starts ("tip" is a device mention of its own, not the next device; nor is the noun
        # right after a device's name, "PICC line catheter tip XXXX in the right atrium")
        # ... nor a device's own leads ("ICD with lead tips over the right atrium"), nor a place a tip may end at,
        # which the lexicon also reads as a line ("tip overlying the cavoatrial junction")
        others = [g for g in mentions if not norm.startswith(("tip", "lead"), g.start)
                  and not _TIP_PLACE_ONLY.fullmatch(norm, g.start, g.end)]
        starts = [g.start for g in others]  # in text order
        next_start = {f.start: starts[k] if (k := bisect_right(starts, f.end + 1)) < len(starts) else len(norm)
                      for f in others}
        last_negative: tuple[int, str | None, str] | None = None  # the negated mention before: end, label, limit
        for f in mentions:
            own_start, prev_end = prev_end, f.end  # a mention's own words start after the mention before it
            found = {e: st for e, st in rules.statuses(f, self.tables.anchors).items() if e in self.kb}
            if any(self.kb.get(e).origin != "imported" for e in found):
                # an imported finding model that shares a term with a written entry adds nothing but a duplicate
                found = {e: st for e, st in found.items() if self.kb.get(e).origin != "imported"}
            # "rib fractures" names rib_fracture and the generic fracture: keep the specific entry only
            specific_labels = {self.kb.get(e).chexpert for e in found if self.kb.get(e).chexpert != e}
            for entry_id, status in found.items():
                if entry_id in specific_labels:
                    continue
                entry = self.kb.get(entry_id)
                if entry.region is None:
                    continue
                if status == 0 and _HIDDEN_LIMIT.search(norm, max(0, f.start - 24), f.start):
                    continue  # "no XXXX nodules": the placeholder hid a limit ("suspicious", "other"); say nothing
                if status == 0 and not f.phrase.anchor and f.phrase.labels.get(entry_id) == -1:
                    continue  # a phrase that only suggests the finding, negated: "no significant volume loss" is
                    # no "no atelectasis"
                left, right = _clause(norm, f.start, f.end)
                shared = _SHARED_PLACES.search(norm, max(0, left - 48), left) if status != 0 else None
                mixed = False  # places of two sides share the noun: no one location is the finding's
                if shared and not any(_sentence(norm, f.start, f.end)[0] <= g.start < left for g in mentions):
                    # (not after a finding of the sentence: "granuloma in the left upper lobe and calcified right
                    # hilar nodes" keep their own places)
                    own_side = laterality_of(norm[left:right])
                    mixed = own_side not in ("none", laterality_of(norm[shared.start() : left]))
                    left = shared.start()
                context = _REMAINING.sub(" ", self._own_anatomy.get(entry_id, ANATOMIC_SIDE).sub(" ", norm[left:right]))
                side = laterality_of(context) if entry.laterality and status != 0 else "none"
                if entry.region == "lines_devices" and status != 0:
                    # a device's side is said before it ("left IJ approach central catheter"), or after it but
                    # before its tip ("clips in the right upper quadrant"); the tip's place is no side ("left PICC
                    # tip in the right hemithorax")
                    strip = _DEVICE_PLACE  # the vein a line enters by is its side ("left IJ catheter")
                    side = laterality_of(strip.sub(" ", norm[left : f.end]))
                    if side == "none":
                        after = norm[f.end : right]
                        tip = _TIP.search(after)
                        side = laterality_of(strip.sub(" ", after[: tip.start()] if tip else after))
                if side == "none" and entry.laterality and status != 0 and entry.region != "lines_devices" \
                        and entry_id not in _OWN_SIDE_ONLY:
                    # "calcified granuloma, right base", "left lower lobe opacity, concerning for pneumonia": a
                    # sentence with one side only gives it to a mention whose own clause has none
                    a, b = _sentence(norm, f.start, f.end)
                    span = norm[a:b]
                    for g in mentions:
                        # ... but not a side in a later finding's own clause ("mediastinal calcification and
                        # dense right upper lung nodule": the right is the nodule's); an earlier finding's side
                        # does carry ("left lower lobe opacity, concerning for pneumonia")
                        if g.sentence == f.sentence and f.end <= g.start < b:
                            # (its words before it only: "consolidation and atelectasis are present in the right
                            # lung base" share the place after them)
                            gl, gr = _clause(norm, g.start, g.end)
                            gl, gr = max(gl, a) - a, g.start - a
                            if gl < gr and not (gl <= f.start - a < gr):
                                span = span[:gl] + " " * (gr - gl) + span[gr:]
                    anatomy = self._own_anatomy.get(entry_id, ANATOMIC_SIDE)
                    whole = laterality_of(anatomy.sub(" ", norm[a:b]))
                    if whole in ("left", "right"):  # (taking the later findings' sides away never adds one)
                        whole = laterality_of(anatomy.sub(" ", span))
                    # "biapical irregularities most compatible with scarring": the sentence's only finding takes
                    # a bilateral side too
                    alone = per_sentence.get(f.sentence, 0) == 1
                    side = whole if whole in ("left", "right") or (alone and whole == "bilateral") else "none"
                # a grade is the mention's own: in its words since the mention before it, or after it up to the next
                # mention or a joining word ("may represent infection or mild edema": "mild" is the edema's; "mild
                # interstitial opacities related to emphysema": not the emphysema's); "more marked on the right"
                # compares the sides and is no grade
                after = norm[f.end : min(right, all_next.get(f.start, right))]
                cut = _JOINER.search(after)
                graded = _COMPARED.sub(" ", norm[max(left, own_start) : f.end] + " " + (after[: cut.start()] if cut
                                                                                      else after))
                if entry_id != "tortuous_aorta":
                    # "the aorta is mildly tortuous and calcified": the grade is the tortuosity's
                    graded = _TORTUOUS_GRADE.sub(" ", graded)
                if side == "none" and entry.laterality and status != 0 and entry.region == "lungs":
                    # "A few bandlike opacities ... at the lateral left base. The appearance XXXX scarring or
                    # atelectasis": a sentence that only interprets the one before takes its single side
                    sa, _ = _sentence(norm, f.start, f.end)
                    if _ANAPHORA.match(norm, sa) and sa > 2:
                        pa, pb = _sentence(norm, sa - 2, sa - 2)
                        before_side = laterality_of(ANATOMIC_SIDE.sub(" ", norm[pa:pb]))
                        side = before_side if before_side in ("left", "right") else side
                if side == "none" and entry.laterality and status != 0:
                    # "2. Right shoulder. Healing scapular fracture.": a heading names the side of what follows it
                    sa, _ = _sentence(norm, f.start, f.end)
                    if sa > 2:
                        pa, pb = _sentence(norm, sa - 2, sa - 2)
                        heading = _SIDED_HEADING.fullmatch(norm, pa, pb)
                        side = heading.group(1) if heading else side
                both = _BOTH_NAMED.match(norm, right) if side in ("left", "right") else None
                if both and both.group("other") != side:
                    side = "bilateral"  # "opacities in the left | and right mid lung zones"
                grade = severity_of(graded) if status != 0 and SEVERITY_WORDS.search(graded) else None
                if grade in ("large", "small") and _raw_grade(graded) == grade and grade not in entry.severity_terms \
                        and {"mild", "moderate", "severe"} & set(entry.severity_terms) \
                        and (grade == "large" or entry.region == "bones_soft_tissue"):
                    # "the heart is large" says enlarged: cardiomegaly is graded mild to severe; "small T-spine
                    # osteophytes" are small spurs, not a small degenerative change
                    grade = None
                if grade is None and status != 0 and prev_grade and _ALTERNATIVE_JOIN.fullmatch(
                        norm[prev_end_before : f.start]):
                    grade = prev_grade  # "minimal scarring or atelectasis": the grade is the pair's
                if side == "none" and entry.laterality and status != 0 and prev_side != "none" \
                        and _ALTERNATIVE_JOIN.fullmatch(norm[prev_end_before : f.start]):
                    side = prev_side  # "bilateral effusions and/or atelectasis": so is the side
                prev_grade, prev_side, prev_end_before = grade, side, f.end
                a, b = _sentence(norm, f.start, f.end)
                course = _course(context) if status != 0 else ""
                if course and grade is None:
                    # the grade of what remains is the finding's grade now ("nearly resolved, with only trace …")
                    rest = _LEFT_OF_IT.search(norm[f.end : b])
                    grade = severity_of(rest.group(1)) if rest else None
                per_side = _SIDE_GRADES.search(norm[a : f.start]) if status != 0 and entry.laterality else None
                if per_side and not norm[a + per_side.end() : f.start].strip(" -"):
                    # each side keeps its own grade: one finding per side
                    g1, s1, g2, s2 = per_side.groups()
                    if s1 != s2:
                        clause = " ".join(text[a + per_side.start() : right].split()).strip(" ,;:")
                        for g, sd in ((g1, s1), (g2, s2)):
                            out.append(Perceived(entry_id, entry.region, _STATUS[status], sd, severity_of(g), clause,
                                                 "", _location(context), (), course))
                        continue
                clause = " ".join(text[left:right].split()).strip(" ,;:")
                tip = ""
                # (a "tip" is no device of its own, unless the device's name is hidden: "right chest XXXX tip in the
                # low SVC" is a line of some kind with its tip there)
                if entry.region == "lines_devices" and status != 0 and (
                        not norm.startswith("tip", f.start) or entry_id == "support_devices" and not any(
                            g.sentence == f.sentence and g.start < f.start and "support_devices" in g.phrase.labels
                            for g in mentions)):
                    # up to the next mention, so two devices of one sentence keep their own tips
                    m = _TIP_AT.search(norm, f.start, min(b, next_start.get(f.start, b)))
                    follow = _NEXT_TIP.match(norm, b)
                    if m is None and follow:
                        # "Right PICC line is in XXXX. The tip has moved into the left innominate vein." (not "the
                        # tip of the nasogastric tube", a device of its own)
                        m = _TIP_AT.search(norm, b, min(_sentence(norm, follow.end(), follow.end())[1],
                                                        next_start.get(f.start, len(norm))))
                    if m:
                        place = " ".join((m.group("place") or "").split()).removeprefix("the ")
                        tip = m.group("cm") or f"in the {place}".replace("svc", "SVC")
                        if m.group("place2"):
                            tip += " and the " + " ".join(m.group("place2").split()).removeprefix("the ")
                before = " ".join(norm[max(left, own_start) : f.start].split()[-_WORDS_BEFORE:])
                own = f"{before} {norm[f.start : f.end]}"
                # a negative's limits: its own words back to the sentence's start or the mention before it (a
                # comma does not end them: "no displaced, acute fractures"), and those of the mention's own
                # phrase ("no displaced rib fracture")
                neg_before = " ".join(norm[max(a, own_start) : f.start].split()[-_WORDS_BEFORE:])
                # ... and, for an anchor, the words between it and its qualifier ("the heart is not
                # *significantly* enlarged")
                between = norm[f.end : f.qual[1]] if f.qual is not None and f.qual[0] >= f.end else ""
                # ... and a limit on the evidence scopes over the whole list: "without gross evidence for failure
                # or pneumonia" (not "no large effusion or pneumothorax", whose "large" is the effusion's)
                head = _LIMITED_EVIDENCE.search(norm, f.neg[1], f.start) if status == 0 and f.neg else None
                if head:
                    between = f"{between} {head.group(1)}"
                limit = " ".join(dict.fromkeys(LIMITS.findall(f"{neg_before} {norm[f.start : f.end]} {between}"))) \
                    if status == 0 else ""
                if status == 0 and not limit and last_negative and last_negative[1] == entry.chexpert \
                        and entry.chexpert and _ALTERNATIVE_JOIN.fullmatch(norm[last_negative[0] : f.start]):
                    # "no suspicious pulmonary mass or nodule": one limit for two names of one kind of finding
                    # (not "no large effusion or pneumothorax", two kinds)
                    limit = last_negative[2]
                if status == 0:
                    last_negative = (f.end, entry.chexpert, limit)
                location = _location(context) if status != 0 and not mixed else ""
                valve = _VALVE.search(context) if status != 0 and entry_id == "prosthetic_valve" else None
                if valve:
                    location = f"{valve.group(1)} valve"
                if status != 0 and not location and entry_id in _MEDIASTINAL_ONES and _MEDIASTINAL.search(context):
                    # "calcified mediastinal XXXX": the nodes' place, not the hila's; "mediastinal clips"
                    location = "mediastinal"
                ribs = None
                if status != 0 and entry_id in _RIBBED:
                    # its own words, back to the mention before it and on to the next one ("old healed left 5th and
                    # 6th rib fractures", "fracture with callus at the left 9th lateral rib")
                    sa, sb = _sentence(norm, f.start, f.end)
                    ribs = RIB_NUMBERS.search(norm, max(sa, own_start), min(sb, all_next.get(f.start, sb)))
                if ribs:
                    location = ribs.group(1)  # "left 9th rib fracture": the report's own precision
                if status != 0 and entry_id in _LEVELLED:
                    sa, sb = _sentence(norm, f.start, f.end)
                    levels = VERTEBRAL_LEVELS.search(norm, sa, sb)
                    location = re.sub(_LEVEL, lambda v: v.group(0).upper(), levels.group(1)) if levels else location
                if status != 0 and not location and entry_id in _SITED:
                    site = BONE_SITES.search(context)
                    location = site.group(1) if site else ""
                elif status != 0 and not location and entry_id in _SITED_WORK:
                    site = _WORK_SITES.search(context)
                    location = (site.group(1) or site.group(2)) if site else ""
                if status != 0:
                    sa, sb = _sentence(norm, f.start, f.end)
                    pair = _LOBE_PAIR.search(norm, sa, f.start)  # "right middle and lower lobe opacities"
                    if pair and (not location or location in pair.group(0)):
                        location = " ".join(pair.group(0).split())
                    elif not location and not mixed and per_sentence.get(f.sentence, 0) == 1:
                        location = _location(norm[sa:sb])  # the sentence's only finding takes its place words
                    if location and side == "bilateral" and entry_id not in _NODAL and _EACH_SIDE.search(norm, sa, sb) \
                            and len(set(LOCATIONS.findall(norm, sa, sb))) > 1:
                        # "bilateral nodules ... in the right midlung and left upper lung": neither place is both
                        # sides' ("bibasilar", "both bases" stay)
                        location = "" if not pair else location
                if entry.region in ("bones_soft_tissue", "heart_mediastinum") and location in _LUNG_PLACES:
                    # "right apex curvature of the spine" is the curve's apex, not the lung's; "borderline
                    # cardiomegaly, stable mediastinal and hilar contours": the heart is not hilar
                    location = ""
                described = tuple(dict.fromkeys(d for d in DESCRIPTORS.findall(own) if d not in limit.split()))
                which = _WHICH_IS.match(norm, f.end) if status != 0 else None
                if which and which.group(1) not in described:
                    described = (*described, which.group(1))
                if status != 0 and entry.chexpert == "atelectasis" and _COMPLETE.search(own):
                    described = ("complete", *described)  # "essentially complete collapse of the left lung"
                if status != 0 and entry_id in _HEALED_ONES and not set(described) & AGE_WORDS:
                    # "old healed left 5th and 6th rib fractures", "deformity of the lateral left 6th rib, XXXX old
                    # injury": the age said in its own words, before it or after it, is its own
                    age = _AGE.search(norm, max(a, own_start), f.start) or _AGE.search(
                        norm, f.end, min(b, all_next.get(f.start, b)))
                    described = (*described, age.group(1)) if age else (*described, "healing") if _CALLUS.search(
                        norm, max(a, own_start), min(b, all_next.get(f.start, b))) else described
                broken = _BROKEN_WIRE.search(norm, a, b) if status != 0 and entry_id == "sternotomy_wires" else None
                if broken:
                    described = (*described, broken.group(1))  # "inferior sternotomy XXXX is disrupted"
                if status != 0 and entry_id == "sternotomy_wires" and _CABG.search(norm, a, b):
                    described = (*described, "post-CABG")  # "sternotomy wires ... secondary to a CABG procedure"
                if status != 0 and entry.region != "lines_devices":
                    # a measured size is the report's own precision ("1.4 cm nodule", "3.5 cm apical pneumothorax")
                    size = _SIZE.search(context)
                    if size and entry.id in _MANY and len(_SIZE.findall(norm, sa, sb)) > 1:
                        size = None  # "two nodules measuring 13 mm and 16 mm": no one size is theirs
                    if size:
                        described = (" ".join(size.group(0).split()), *described)
                hedge = ""
                if status == 1 and _HIDDEN_HEDGE.search(norm, max(a, own_start), f.start):
                    # "retrocardiac opacity XXXX due at XXXX in part to atelectasis", "platelike opacities XXXX
                    # representing subsegmental atelectasis": the placeholder hides the hedge ("likely")
                    status, hedge = -1, "probable"
                elif status == -1:
                    cue = norm[f.cue[0] : f.cue[1]] if f.cue else ""
                    hedge = "probable" if _STRONG_HEDGE.search(cue) else "possible"
                    if _LESS_LIKELY.search(norm, max(0, f.start - 30), f.start):
                        hedge = "possible"  # "probable interstitial edema, less XXXX fibrosis"
                # its own words: just before it in its clause ("right greater than left bibasilar atelectasis"), or
                # after it up to the next finding ("bilateral pleural effusions, right larger than left")
                lean = (_LEAN.search(norm, max(left, own_start), f.start)
                        or _LEAN.search(norm, f.end, min(b, all_next.get(f.start, b)))) \
                    if status != 0 and entry.laterality else None
                most = _GREATEST.search(norm, f.end, min(b, all_next.get(f.start, b))) \
                    if status != 0 and side == "bilateral" and not lean else None
                if lean and lean.group(1) != lean.group(2) and side in ("left", "right", "bilateral"):
                    # "bibasilar atelectasis, right greater than left": both sides, one more than the other
                    side, lean_words = "bilateral", f"{lean.group(1)} greater than {lean.group(2)}"
                elif most:
                    # "bilateral interstitial markings, greatest in the peripheral aspect of the left lung"
                    other = "right" if most.group(1) == "left" else "left"
                    lean_words = f"{most.group(1)} greater than {other}"
                else:
                    lean_words = ""
                if entry_id in _VOLUMES:
                    location = ""  # "there are lower lung volumes": a comparison, not the lower lungs
                out.append(Perceived(entry_id, entry.region, _STATUS[status], side, grade, clause, limit,
                                     location, described if status != 0 else (), course, tip, hedge,
                                     _grade_words(graded) if grade else "", lean_words))
                sentence_of[len(out) - 1] = f.sentence
                phrase_of[len(out) - 1] = f.start
        out, sentence_of = _one_shadow_per_phrase(out, sentence_of, phrase_of)
        return _readings_take_their_place(out, sentence_of)


def _one_shadow_per_phrase(out: list[Perceived], sentence_of: dict[int, int],
                           phrase_of: dict[int, int]) -> tuple[list[Perceived], dict[int, int]]:
    """A phrase that names a lesion by its look is no lesion where its own sentence weighs one.

    The lexicon reads "nodular density" for both a lung opacity and a nodule, as CheXpert's labeler does (and the
    IU-Xray MeSH terms label such a study with both). But "2.1 cm nodular density ... which could represent
    overlapping shadows or actual pulmonary nodule" puts the nodule in question: the density is there, the nodule
    only possible.
    """
    by_phrase: dict[int, list[int]] = {}
    for k, start in phrase_of.items():
        by_phrase.setdefault(start, []).append(k)
    hedged = {(sentence_of.get(j), q.entry_id) for j, q in enumerate(out) if q.status == "uncertain"}
    drop = {k for ks in by_phrase.values()
            if any(out[j].entry_id == "lung_opacity" and out[j].status == "present" for j in ks)
            for k in ks if out[k].entry_id in _LESIONS and out[k].status == "present"
            and (sentence_of.get(k), out[k].entry_id) in hedged}
    if not drop:
        return out, sentence_of
    kept = [k for k in range(len(out)) if k not in drop]
    return [out[k] for k in kept], {i: sentence_of[k] for i, k in enumerate(kept) if k in sentence_of}


def _readings_take_their_place(out: list[Perceived], sentence_of: dict[int, int]) -> list[Perceived]:
    """A hedged reading of a placed shadow takes the shadow's side and place.

    "Biapical opacities, possibly scarring": the scarring is biapical; "left upper lobe opacities ... subsegmental
    atelectasis or scarring" in one sentence: both are in the left upper lobe. Only an uncertain lung reading with no
    place of its own and no other side, after the one placed shadow of its sentence.
    """
    shadows: dict[int, list[int]] = {}
    for k, p in enumerate(out):
        if p.entry_id in _SHADOWS and p.status == "present" and k in sentence_of:
            shadows.setdefault(sentence_of[k], []).append(k)
    if not shadows:
        return out
    for k, p in enumerate(out):
        placed = shadows.get(sentence_of.get(k, -1), [])
        # (a granuloma at the hilum would read as a calcified node there: it keeps its own words)
        if (p.status != "uncertain" or p.region != "lungs" or p.entry_id in _SHADOWS or p.location
                or p.entry_id == "granuloma" or len(placed) != 1 or placed[0] > k):
            continue
        q = out[placed[0]]
        if p.laterality in ("none", q.laterality) and (q.laterality != "none" or q.location):
            out[k] = replace(p, laterality=q.laterality, location=q.location)
    return out


def _grade_words(text: str) -> str:
    """A grade as the report words it, where the scale word would say less or more.

    A range ("mild to moderate"), or "minimal" (mapped onto "mild", which it is not quite).
    """
    return grade_range(text) or ("minimal" if _raw_grade(text) in ("minimal", "minimally") else "")


def _raw_grade(text: str) -> str:
    """The grade word as the report writes it ("marked"), before it is mapped onto a scale."""
    m = SEVERITY_WORDS.search(text)
    return m.group(1) if m else ""


def _sentence(norm: str, start: int, end: int) -> tuple[int, int]:
    """Bounds of the sentence around a mention."""
    left = norm.rfind(". ", 0, start) + 1
    right = norm.find(". ", end)
    return max(left, 0), right if right >= 0 else len(norm)


def _course(context: str) -> str:
    """How the clause says the finding changes ("nearly resolved", "residual"), or "" when it does not."""
    for pattern, word in _COURSE:
        if pattern.search(context):
            return word
    return ""


def _location(context: str) -> str:
    """The first location words of a clause, lobes kept whole ("lower lobe"), without the side.

    The lingula is named before a zone word ("basilar focal atelectasis is present in the lingula" is lingular, not
    a left base).
    """
    m = LOCATIONS.search(context)
    if m and m.group(1) in _ZONES:
        ling = _LINGULA.search(context)
        m = ling or m
    return " ".join(m.group(1).split()) if m else ""


def _clause(norm: str, start: int, end: int) -> tuple[int, int]:
    """Bounds of the clause around a mention: from the previous clause break to the next one."""
    left = max(norm.rfind(". ", 0, start) + 1, 0)
    for m in _CLAUSE_END.finditer(norm, left, start):
        left = m.end()
    right_m = _CLAUSE_END.search(norm, end)
    return left, right_m.start() if right_m else len(norm)

"""The offline teacher: deterministic traces with no network, from the report, the labels and the knowledge.

For each study:

1. **Perception** — the report's sentences are read for knowledge-base findings with their status (present,
   absent, uncertain), side and grade, then reconciled with the study's labels (a positive or uncertain label
   always has a matching finding; a negative label never has a present one). Every region of the perception
   tree gets its items, regions with nothing abnormal a pertinent negative.
2. **Reflection** — with probability ``teacher.error_rate`` a controlled error of one of ``teacher.error_kinds``
   (missed finding, false finding, wrong side, wrong grade) is injected into a *draft* of that perception; the
   trace shows the draft, reasons from it, and the reflection finds and corrects the error. Without an error the
   reflection says what it re-checked.
3. **Reasoning** — one step per finding of the draft, citing the finding's knowledge entry.
4. **Report** — the study's own findings and impression.

Everything random comes from a generator seeded with (``teacher.seed``, study id): the same study gives the same
trace on every machine, and one study's trace does not depend on which others are in the run.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from datakit import semantics as sem
from datakit.annotate import offline_words as W
from datakit.annotate.coverage import Coverage, load_coverage
from datakit.annotate.teacher import StudyInput, TraceOutcome, teacher
from datakit.config import DatakitConfig, TeacherConfig
from datakit.reading import rules
from datakit.reading.findings import AGE_WORDS, VERTEBRAL_LEVELS, Perceived
from datakit.trace import REGION_ORDER

ABNORMAL = ("present", "uncertain")
# Below this many studies the traces are written in this process (a pool costs more than it saves).
PARALLEL_MIN_STUDIES = 2000
_LABEL_STATUS = {1: "present", -1: "uncertain", 0: "absent"}
# Findings a false-positive injection prefers: common, and each with an obvious "not there" on re-inspection.
HALLUCINATION_CANDIDATES = (
    "pleural_effusion", "pneumothorax", "consolidation", "atelectasis", "cardiomegaly", "lung_opacity",
    "rib_fracture", "pulmonary_nodule", "edema", "pneumoperitoneum",
)


def study_rng(seed: int, study_id: str) -> random.Random:
    """The study's own random generator."""
    digest = hashlib.blake2b(f"{seed}:{study_id}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


class TraceWriter:
    """Writes one trace per study; built once per process."""

    def __init__(self, kb: Any, reader: Any, cfg: TeacherConfig, coverage: Coverage | None = None) -> None:
        self.kb = kb
        self.reader = reader
        self.cfg = cfg
        self.coverage = coverage or load_coverage()
        self.region_of = {e.id: e.region for e in kb.entries.values()}
        self._impression_read: tuple[tuple[str, str] | None, list[Perceived]] = (None, [])
        self._read = _StudyRead()  # what :meth:`perceive` found in the study it read last

    # 1. perception ----------------------------------------------------------------------------------------------
    def perceive(self, study: StudyInput) -> tuple[list[Perceived], frozenset[str]]:
        """The final (true) findings of the study, as the report's text states them.

        The text decides every item and its certainty; labels only take findings away: a finding whose label is 0
        while the text calls it abnormal is left out, and those labels come back as *disputed* (the trace is
        silent on them). A label the text does not state at all raises :class:`LabelNotInReport`.
        """
        text = self._text(study)
        found: dict[tuple[str, str], Perceived] = {}
        heard: dict[tuple[str, str], set[str]] = {}  # the clauses each (entry, side) was read from
        negated: dict[str, Perceived] = {}  # entry → an explicit negative without a limit ("No pleural effusion.")
        resolved: set[str] = set()  # entries the report says have resolved ... and those it calls resolving
        resolving: set[str] = set()
        low = text.lower()
        for p in self.reader.read(text):
            sentence = _sentence_of(low, p.sentence)
            if p.status == "uncertain" and _UNASSESSED.search(sentence):
                continue  # "limited assessment of heart size": the report cannot say, so neither does the trace
            if p.entry_id == "postsurgical_change" and _INCLUDES.search(sentence):
                continue  # "Postsurgical changes include left chest pacemaker/ICD, sternotomy wires": a heading
            if _ELSEWHERE.search(sentence):
                continue  # "Right foot. Hindfoot, midfoot, forefoot are intact with no fractures": not the chest's
            if p.region == "lungs" and _BELOW_DIAPHRAGM.search(sentence):
                continue  # "an air-fluid level in the upper right abdomen below the hemidiaphragm" is no lung cavity
            if p.entry_id == "pleural_effusion" and p.status == "uncertain" and _BLUNTING_EXPLAINED.search(sentence):
                continue  # "blunting … secondary to scarring": the report explains the sign; no effusion is offered
            if p.status == "absent" and not p.limit and _NEGATION_WORD.search(p.sentence.lower()):
                negated.setdefault(p.entry_id, p)  # (a normal qualifier, "heart size upper limits of normal", is none)
            if p.status == "absent" and (_RESOLVED.search(p.sentence.lower()) or _RESOLVED.search(sentence)
                                         and not _NEGATION_WORD.search(sentence)):
                # "consolidation in the left lower lobe has cleared" compares with a prior, and says nothing of the
                # persistent infiltrate elsewhere: no pertinent negative comes of it
                resolved.add(p.entry_id)
                continue
            if p.status == "present" and _RESOLVING.search(sentence):
                resolving.add(p.entry_id)
            if p.entry_id == "no_finding" or self.region_of.get(p.entry_id) is None:
                continue
            if p.status == "present" and _POSITIONAL.search(sentence, sentence.find(p.sentence.lower()) + 1):
                # "mild dextro curvature of the lower thoracic spine, this may be positional": perhaps no true curve
                p = replace(p, status="uncertain", hedge="possible")
            if "calcified" in p.descriptors and p.entry_id in W.CALCIFIED_IS:
                # a calcified nodule is a healed granuloma, not a lung lesion
                p = replace(p, entry_id=W.CALCIFIED_IS[p.entry_id], region=self.region_of[W.CALCIFIED_IS[p.entry_id]])
            if p.entry_id == "granuloma" and p.location in W.NODAL_PLACES and "calcified_lymph_nodes" in self.kb:
                # "calcified granulomas in bilateral hilar regions" are calcified hilar nodes
                p = replace(p, entry_id="calcified_lymph_nodes", region=self.region_of["calcified_lymph_nodes"],
                            location="" if p.location in ("hilar", "hilum") else p.location)
            placed = _PLACED_ELSEWHERE.get(p.entry_id)
            if placed and placed[1].search(sentence) and not (placed[2] and placed[2].search(sentence)) \
                    and placed[0] in self.kb:
                # the place its sentence names makes it another structure's finding (_PLACED_ELSEWHERE)
                p = replace(p, entry_id=placed[0], region=self.region_of[placed[0]],
                            laterality=p.laterality if self.kb.get(placed[0]).laterality else "none")
            if p.entry_id == "degenerative_joint_disease" and _SPINE_PLACE.search(p.location) \
                    and "degenerative_spine" in self.kb:
                # "degenerative changes of both glenohumeral joints and the thoracic spine": the change placed in
                # the spine is the spine's
                p = replace(p, entry_id="degenerative_spine", region=self.region_of["degenerative_spine"],
                            location="")
            bone = W.FRACTURE_OF.search(sentence) if p.entry_id == "fracture" else None
            if bone and W.FRACTURE_OF_BONE[bone.group(1)] in self.kb:
                # "fracture with callus at the left 9th rib": the bone its clause names is the fracture's
                eid = W.FRACTURE_OF_BONE[bone.group(1)]
                p = replace(p, entry_id=eid, region=self.region_of[eid])
            key = (p.entry_id, p.laterality)
            heard.setdefault(key, set()).add(p.sentence)
            prev = found.get(key)
            # present beats uncertain beats absent, as the CheXpert aggregation does; the richer mention wins a tie
            if prev is not None and p.status == prev.status and VERTEBRAL_LEVELS.fullmatch(p.location.lower()) \
                    and VERTEBRAL_LEVELS.fullmatch(prev.location.lower()) and p.location not in prev.location:
                # "deformity of T6 ... Mild deformity of T12": one item at both levels, graded only where they
                # agree (the grade of one level is not the other's)
                same = p.severity == prev.severity
                found[key] = replace(prev, location=f"{prev.location} and {p.location}",
                                     severity=prev.severity if same else None,
                                     grade_words=prev.grade_words if same else "")
            elif prev is not None and p.status == prev.status and p.region == "lines_devices":
                # a line's two mentions say one thing each: "right PICC ... the tip has moved into the left
                # innominate vein" and "malpositioned right PICC line tip"
                p, prev = (p, prev) if _detail(p) > _detail(prev) else (prev, p)
                found[key] = replace(p, tip=p.tip or prev.tip,
                                     descriptors=tuple(dict.fromkeys((*p.descriptors, *prev.descriptors))))
            elif prev is None or _rank(p.status) > _rank(prev.status) or (
                    p.status == prev.status and _detail(p) > _detail(prev)):
                if prev is not None and p.status == prev.status and p.severity is None and prev.severity:
                    # "upper lobe vascularity ... consistent with pulmonary venous hypertension" and "mild vascular
                    # prominence": one finding; the place of one mention, the grade of the other
                    p = replace(p, severity=prev.severity, grade_words=prev.grade_words)
                found[key] = p
            elif p.status == prev.status and prev.severity is None and p.severity:
                found[key] = replace(prev, severity=p.severity, grade_words=p.grade_words)
        # "small pleural effusions", "posterior recess pleural effusions": a plural effusion without a side is one on
        # each side, where no mention of the report gives it a single one
        for k, p in list(found.items()):
            if k[0] in _PAIRED_PLURAL and k[1] == "none" and p.status in ABNORMAL \
                    and _PAIRED_PLURAL[k[0]].search(p.sentence.lower()) \
                    and not any((k[0], side) in found for side in ("left", "right", "bilateral")):
                del found[k]
                found[(k[0], "bilateral")] = replace(p, laterality="bilateral")
        # "Enlarging right hilar adenopathy. The lungs appear grossly clear. … Findings could represent resolving
        # histoplasmosis infection … or primary lung cancer": causes weighed for another finding are no lung findings
        # of their own where the report calls the lungs clear and they hold nothing else
        weighed = [k for k, p in found.items() if p.region == "lungs" and p.status == "uncertain"
                   and _WEIGHS_CAUSES.search(_sentence_of(low, p.sentence))]
        if weighed and _LUNGS_CLEAR.search(low) and not any(p.region == "lungs" and p.status in ABNORMAL
                                                            and k not in weighed for k, p in found.items()):
            for k in weighed:
                del found[k]
        # a hedge beside the report's own flat negative ("mild blunting of the right costophrenic angle … No
        # pleural effusion") is not a possible finding: the negative stands
        for k, p in list(found.items()):
            if p.status == "uncertain" and p.entry_id in negated:
                del found[k]
                found.setdefault((p.entry_id, "none"), negated[p.entry_id])
        # "venous engorgement has resolved" in the findings, "resolving venous hypertension" in the impression: the
        # report does not settle whether any is left on this film, so the trace says neither
        for k, p in list(found.items()):
            if p.entry_id in resolved and p.entry_id in resolving:
                del found[k]
        # The impression is the report's conclusion: a finding the findings state but the impression only hedges
        # ("2.1 cm nodular density … could represent overlapping shadows or actual pulmonary nodule") is uncertain;
        # one the impression explicitly negates ("The lungs focal airspace consolidation" … "No focal airspace
        # consolidation") is left out: the report contradicts itself there.
        concluded: dict[str, list[Perceived]] = {}
        imp = (study.impression or "").lower()
        if study.findings and study.impression:
            for q in self._read_impression(study):
                concluded.setdefault(q.entry_id, []).append(q)
        for k, p in list(found.items()):
            # the impression's own mention of this finding: same side (or none), same place (or none)
            said = [q for q in concluded.get(p.entry_id, ()) if q.laterality == p.laterality
                    and (not q.location or not p.location or q.location == p.location)]
            if p.status != "present" or not said or any(q.status == "present" for q in said):
                continue
            # a narrowed negative ("no large effusion") negates only what has its limit ("focal" consolidation
            # under "no focal airspace consolidation"), not a small effusion
            has = {*p.descriptors, p.severity or "", p.laterality}
            if all(q.status == "absent" and set(q.limit.split()) <= has for q in said):
                del found[k]
            elif any(q.status == "uncertain" for q in said) and not (p.entry_id in W.DESCRIPTIVE and all(
                    any(o.entry_id != q.entry_id and o.entry_id not in W.DESCRIPTIVE and o.status == "uncertain"
                        and (o.sentence == q.sentence or _joined_as_alternatives(imp, o.sentence, q.sentence))
                        for os in concluded.values() for o in os)
                    for q in said if q.status == "uncertain")):
                # (a shadow the findings state is no less there because the impression weighs its causes:
                # "decreased left basilar airspace disease" and "improved left basilar atelectasis or infiltrate";
                # but a nodule it weighs against another shadow, "overlapping shadows or actual pulmonary nodule",
                # is in question itself)
                found[k] = replace(p, status="uncertain", hedge=p.hedge or "possible")
        # "Blunting of the left costophrenic angle" (a possible left effusion) and "... with pleural effusion" in
        # the impression: one left effusion, which the report calls present
        for (e, side), p in list(found.items()):
            flat = found.get((e, "none"))
            if side in ("left", "right") and p.status == "uncertain" and flat is not None \
                    and flat.status == "present" and _ONLY_BLUNTING.search(p.sentence.lower()) \
                    and not any(q.entry_id == e and q.laterality not in ("none", side) for q in found.values()):
                found[(e, side)] = replace(p, status="present", hedge="")
                del found[(e, "none")]
        # a mention without a side ("the leads") adds nothing to a sided one of the same entry ("left pacemaker"),
        # and a label's generic entry ("tubes") nothing to a specific one of the same label ("nasogastric tube")
        sided = {(p.entry_id, p.status) for p in found.values() if p.laterality != "none"}
        # nor does a weaker one: "bandlike right basilar opacities consistent with atelectasis" is one right
        # atelectasis, not that and a side-less "possible atelectasis"
        sided |= {(q.entry_id, s) for q in found.values() if q.laterality != "none" and q.status in ABNORMAL
                  for s in ABNORMAL if _rank(s) <= _rank(q.status)}
        # ... at the same place: "interstitial opacities" are no lung opacity besides, but an airspace opacity at
        # the apex stays beside interstitial opacities at the base, and so does a placed opacity read from words of
        # its own ("chronic interstitial markings. Left base opacity.")
        specific: dict[tuple[str, str], list[Perceived]] = {}
        for p in found.values():
            if self.kb.get(p.entry_id).chexpert not in (None, p.entry_id) and p.entry_id not in W.NOT_A_KIND:
                specific.setdefault((self.kb.get(p.entry_id).chexpert, p.status), []).append(p)

        def generic(p: Perceived) -> bool:
            return any((q.laterality == p.laterality or "none" in (q.laterality, p.laterality))
                       and (not q.location or not p.location or q.location == p.location)
                       and not (q.entry_id in W.PATTERNS and p.location and not q.location
                                and not heard[(p.entry_id, p.laterality)] <= heard[(q.entry_id, q.laterality)])
                       for q in specific.get((p.entry_id, p.status), ()))
        # "moderate left and small right effusions … bilateral effusions, left greater than right": the two sided
        # items say it all, so a bilateral one that adds no grade of its own is the same finding again
        both_sides = {(e, s) for e, s, side in ((p.entry_id, p.status, p.laterality) for p in found.values())
                      if side == "left" and (e, "right") in found and found[(e, "right")].status == s}
        # "right and left effusions ... bilateral pleural effusions, right larger than left": a side that says no
        # more than the bilateral item is that item again
        bilateral = {(p.entry_id, p.status) for p in found.values() if p.laterality == "bilateral"}
        # "small bilateral pulmonary nodules" is one multiple-nodules item, not that and a single nodule
        many = {(p.laterality, p.status) for p in found.values() if p.entry_id == "multiple_pulmonary_nodules"}
        findings = [p for p in found.values()
                    if not (p.entry_id == "pulmonary_nodule" and (p.laterality, p.status) in many)
                    and (p.laterality != "none" or (p.entry_id, p.status) not in sided)
                    and not generic(p)
                    and not (p.laterality == "bilateral" and p.severity is None
                             and (p.entry_id, p.status) in both_sides)
                    and not (p.laterality in ("left", "right") and (p.entry_id, p.status) in bilateral
                             and (p.entry_id, p.status) not in both_sides and _detail(p) == 0)]
        # "a large calcified right mediastinal adenopathy" is one calcified node, not that and an enlarged one
        if any(p.entry_id == "implantable_defibrillator" and p.status in ABNORMAL for p in findings):
            # "left chest AICD with leads in the right atrium and ventricle": the leads are the ICD's, no pacemaker
            findings = [p for p in findings if not (p.entry_id == "pacemaker" and not _PACING.search(
                p.sentence.lower()))]
        calcified = {(p.sentence, p.laterality) for p in findings if p.entry_id == "calcified_lymph_nodes"}
        findings = [p for p in findings if not (p.entry_id == "lymphadenopathy"
                                                and (p.sentence, p.laterality) in calcified)]
        # "streaky right basilar opacities … Otherwise, no focal consolidation": no *other* focal consolidation,
        # where the region has a finding; where it has none, "otherwise" narrows nothing
        busy = {p.region for p in findings if p.status in ABNORMAL}
        findings = [_otherwise(p, p.region in busy) if p.status == "absent" else p for p in findings]
        final, disputed = self._reconcile(findings, study.labels)
        if "mediastinal_widening" in self.kb and any(p.entry_id == "cardiomegaly" and p.status in ABNORMAL
                                                      for p in final):
            # "The heart is enlarged. The mediastinum is normal": beside an enlarged heart, the normal mediastinum
            # is no widened mediastinum ("no enlarged cardiomediastinum" would deny the heart as well)
            final = [replace(p, entry_id="mediastinal_widening")
                     if p.entry_id == "enlarged_cardiomediastinum" and p.status == "absent" else p for p in final]
        self._read = _StudyRead(
            explained=_explained(findings, low),
            misplaced=frozenset((p.entry_id, p.laterality) for p in findings if _misplaced(p, low)),
            nothing_acute=bool(_NOTHING_ACUTE.search((study.impression or "").lower())),
            stated=frozenset((p.entry_id, p.laterality) for p in final if p.status in ABNORMAL),
            resolved=frozenset(resolved))
        return final, disputed

    @staticmethod
    def _text(study: StudyInput) -> str:
        return " ".join(t for t in (study.findings, study.impression) if t)

    def _reconcile(self, findings: list[Perceived],
                   labels: dict[str, int | None]) -> tuple[list[Perceived], frozenset[str]]:
        out = []
        disputed: set[str] = set()
        for p in findings:
            label = self.kb.get(p.entry_id).chexpert
            if label and labels.get(label) == 0 and p.status in ABNORMAL:
                # The text names it, the label says absent (labels often come from the impression alone): the
                # trace states neither, rather than contradict its own report or its label.
                disputed.add(label)
                continue
            out.append(p)
        abnormal_labels = {self.kb.get(p.entry_id).chexpert for p in out if p.status in ABNORMAL}
        abnormal_labels |= {lab for p in out if p.status in ABNORMAL for lab in sem.ALSO_LABELS.get(p.entry_id, ())}
        missing = sorted(label for label, value in labels.items()
                         if value in (1, -1) and label != "no_finding"
                         and label not in abnormal_labels)
        if missing:
            raise LabelNotInReport(missing)
        # one item per (entry, side); a negative gives way to an abnormal item of its entry or of its label
        # ("no support devices" beside sternotomy wires)
        abnormal = {p.entry_id for p in out if p.status in ABNORMAL}
        out = [p for p in out if p.status in ABNORMAL
               or (p.entry_id not in abnormal and self.kb.get(p.entry_id).chexpert not in abnormal_labels)]
        uniq: dict[tuple[str, str, str], Perceived] = {}
        for p in out:
            uniq.setdefault((p.entry_id, p.laterality, p.status), p)
        return list(uniq.values()), frozenset(disputed)

    def items(self, findings: list[Perceived], rng: random.Random, covered: dict[str, tuple[str, ...]],
              unread: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """Perception items in tree order.

        A region with nothing of its own gets a normal item only where a report statement covers it (worded as
        that statement allows); a region the report is silent on is said to be examined, asserting nothing.
        ``unread``: regions where the report states something no entry reads (:meth:`unread_regions`): with
        nothing of their own they get no item at all, neither "normal" nor "nothing to add".
        """
        by_region: dict[str, list[Perceived]] = {r: [] for r in REGION_ORDER}
        for p in findings:
            by_region.setdefault(p.region, []).append(p)
        items = []
        for region in REGION_ORDER:
            group = sorted(by_region.get(region, []), key=lambda p: (-_rank(p.status), p.entry_id))
            if not group and region in self.kb.regions:
                words = covered.get(region)
                if region in unread:
                    continue  # something is there that no entry names: say nothing rather than "normal"
                phrase = rng.choice(words) if words else self.coverage.silent(region, rng)
                items.append(_item(region, "normal", "present", "none", None, phrase))
            for p in group:
                items.append(self._item_of(p, rng))
        return items

    def unread_regions(self, text: str) -> frozenset[str]:
        """Regions where a report sentence states something that no knowledge entry reads.

        "Sclerosis of the humeral heads from prior AVN": a bone sentence, not normal, and the reader finds no
        bone finding in it. Such a region must not be called normal.
        """
        out: set[str] = set()
        for sentence, regions in self.coverage.unread_candidates(text):
            # "calcified granulomas in the hilar regions" read as a lung finding, "obscuration of the left
            # hemidiaphragm" as a lung opacity: the region the words name keeps no "nothing to add" either (a
            # landmark region, "tube tip above the carina", then only goes without an item)
            out |= regions - {p.region for p in self.reader.read(sentence)}
        return frozenset(out)

    def _touched(self, findings: list[Perceived], text: str) -> frozenset[str]:
        """Regions a finding's own words name besides its own.

        "Upper abdominal midline surgical sutures" (a device) and "prominence of the central pulmonary vasculature"
        (a lung finding) leave the upper abdomen and the hila without a "nothing to add" item.
        """
        words = self.coverage.unread_words or {}
        low = text.lower()
        out: set[str] = set()
        for p in findings:
            if p.status in ABNORMAL:
                # the whole sentence: "fibrotic changes with apical hilar retraction" names the hila
                norm = rules.normalize(_sentence_of(low, p.sentence))
                out |= {r for r, rx in words.items() if r != p.region and rx.search(norm)}
        return frozenset(out)

    def _body(self, p: Perceived) -> str:
        return W.phrase(self.kb.get(p.entry_id).name, p.laterality, p.grade_words or p.severity, p.location,
                        p.descriptors, p.course, p.tip, p.predominance)

    def _item_of(self, p: Perceived, rng: random.Random) -> dict[str, Any]:
        e = self.kb.get(p.entry_id)
        if p.status == "present":
            ev = W.evidence_present(self._body(p), rng)
        elif p.status == "uncertain":
            ev = W.evidence_uncertain(self._body(p), rng, p.hedge)
        else:
            ev = W.evidence_absent(e.name, p.limit, rng)
        return _item(p.region, p.entry_id, p.status, p.laterality, p.severity, ev)

    # 2. reflection: inject an error into a draft ----------------------------------------------------------------
    def inject(self, findings: list[Perceived], labels: dict[str, int | None], rng: random.Random,
               has_lateral: bool = False, disputed: frozenset[str] = frozenset(),
               covered: dict[str, tuple[str, ...]] | None = None, sentences: str = "",
               ) -> tuple[list[Perceived], str | None, list[dict[str, Any]]]:
        """A draft of the findings with at most one controlled error, the kind, and the corrections that undo it.

        ``disputed``: labels of 0 that the report's words contradict (see :meth:`perceive`); ``covered``: the
        regions the report's normal statements cover; ``sentences``: the report text (for the signs it names).
        """
        if not self.cfg.error_kinds or rng.random() >= self.cfg.error_rate:
            return findings, None, []
        kinds = list(self.cfg.error_kinds)
        rng.shuffle(kinds)
        # never "correct" to absent what the labels or the report's own words call abnormal
        keep_off = {label for label, value in labels.items() if value in (1, -1)} | disputed
        facts = _DraftFacts(has_lateral, frozenset(keep_off), frozenset((covered or {}).keys()), sentences,
                            dict(covered or {}))
        for kind in kinds:
            made = getattr(self, f"_inject_{kind}")(findings, facts, rng)
            if made is not None:
                draft, corrections = made
                return draft, kind, corrections + self._normality_fix(findings, draft)
        return findings, None, []

    def _inject_missed(self, findings, facts, rng):
        counts: dict[str, int] = {}
        for q in findings:
            counts[q.entry_id] = counts.get(q.entry_id, 0) + 1
        candidates = [p for p in findings if p.status == "present" and counts[p.entry_id] == 1]
        if not candidates:
            return None
        p = rng.choice(candidates)
        draft = [q for q in findings if q.entry_id != p.entry_id]
        e = self.kb.get(p.entry_id)
        signs = self.signs_seen(e, facts.text, p)
        note = W.missed_note(self.kb.regions[p.region].name.lower(), self._body(p), signs[0] if signs else None, rng)
        return draft, [_correction("missed", p.entry_id, ("absent", "none", None), p, note=note)]

    def _inject_hallucinated(self, findings, facts, rng):
        # only a finding the report rules out, itself or through a statement covering its region: the
        # correction's "not there" is then the report's, not the teacher's
        taken = {p.entry_id for p in findings if p.status in ABNORMAL}
        negated = {p.entry_id: p for p in findings if p.status == "absent"}
        busy = {p.region for p in findings if p.status in ABNORMAL}
        options = []
        for entry_id in HALLUCINATION_CANDIDATES:
            if entry_id not in self.kb or entry_id in taken:
                continue
            e = self.kb.get(entry_id)
            if e.chexpert in facts.keep_off:
                continue
            # (a covering statement beside a finding of its region, "otherwise, the lungs are clear" beside septal
            # lines, rules nothing else out there: the region is not clear)
            if (entry_id in negated and not negated[entry_id].limit) or (
                    e.region in facts.covered and e.region not in busy):
                options.append(entry_id)
        if not options:
            return None
        entry_id = rng.choice(options)
        e = self.kb.get(entry_id)
        side = rng.choice(["left", "right"]) if e.laterality else "none"
        false = Perceived(entry_id, e.region, "present", side, None)
        draft = [p for p in findings if p.entry_id != entry_id] + [false]
        # the "not there" says no more than the report: its own negative, or the statement covering the region
        said = negated.get(entry_id)
        absent = (W.evidence_absent(e.name, said.limit, rng) if said is not None
                  else rng.choice(facts.covered_words[e.region]))
        sign = W.sign_text(e.signs[0]) if e.signs else None
        note = W.hallucinated_note(e.name, sign, absent, facts.has_lateral, rng)
        return draft, [_correction("hallucinated", entry_id, ("present", side, None), ("absent", "none", None),
                                   note=note)]

    def _inject_laterality(self, findings, facts, rng):
        single = _single_items(findings)
        candidates = [p for p in single if p.status in ABNORMAL and p.laterality in ("left", "right")]
        if not candidates:
            return None
        p = rng.choice(candidates)
        wrong = "right" if p.laterality == "left" else "left"
        draft = [replace(q, laterality=wrong) if q is p else q for q in findings]
        signs = self.signs_seen(self.kb.get(p.entry_id), facts.text, p)
        note = W.laterality_note(self.kb.get(p.entry_id).name, signs[0] if signs else None, p.laterality, wrong, rng)
        return draft, [_correction("laterality", p.entry_id, (p.status, wrong, p.severity), p, note=note)]

    def _inject_severity(self, findings, facts, rng):
        candidates = [p for p in _single_items(findings)
                      if p.status in ABNORMAL and p.severity and W.other_grade(p.severity, rng)]
        if not candidates:
            return None
        p = rng.choice(candidates)
        wrong = W.other_grade(p.severity, rng)
        draft = [replace(q, severity=wrong) if q is p else q for q in findings]
        signs = self.signs_seen(self.kb.get(p.entry_id), facts.text, p)
        note = W.severity_note(self.kb.get(p.entry_id).name, signs[0] if signs else None, p.severity, wrong, rng)
        return draft, [_correction("severity", p.entry_id, (p.status, p.laterality, wrong), p, note=note)]

    def _normality_fix(self, final: list[Perceived], draft: list[Perceived]) -> list[dict[str, Any]]:
        """When the error flips whether the study looks normal, the reflection corrects that conclusion too.

        "Normal" as the reasoning concludes it (:meth:`_nothing_acute_beside`): bihilar prominence the report
        wants followed up is no normal study, though hilar enlargement has no CheXpert label. Where the report's
        own impression calls nothing acute, the note keeps that conclusion: bibasilar subsegmental atelectasis
        takes "No Finding" away, not "no acute abnormality".
        """
        was, now = self._nothing_acute_beside(draft), self._nothing_acute_beside(final)
        if was == now:
            return []
        before, after = ("present", "absent") if was else ("absent", "present")
        note = W.NO_FINDING_NOTES[after][0]
        if after == "absent" and self._read.nothing_acute:
            note = W.NO_FINDING_BUT_NOTHING_ACUTE
        chronic = [self._named(p, p.severity) for p in final
                   if p.status in ABNORMAL and self.kb.get(p.entry_id).chexpert is None]
        if after == "present" and chronic:
            # "no acute abnormality" beside emphysema would read as a normal study: say what stays
            note = W.normal_besides_note(chronic)
        return [{"kind": "other", "finding": "no_finding", "before": _state(before, "none", None),
                 "after": _state(after, "none", None), "note": note}]

    # 3. reasoning ---------------------------------------------------------------------------------------------
    def signs_seen(self, entry: Any, text: str, p: Perceived | None = None) -> list[str]:
        """The entry's signs whose first key word the report sentence stating the finding names (at most two)."""
        low = text.lower()
        if p is not None and p.sentence:
            said = [s for s in re.split(r"(?<=[.!?])\s+", low) if p.sentence.lower() in s]
            low = " ".join(said) or low
        out = []
        for sign in entry.signs:
            short = W.sign_text(sign)
            if W.sign_seen(short, low) and short not in out:
                out.append(short)
            if len(out) == 2:
                break
        return out

    def reasoning(self, draft_items: list[dict[str, Any]], draft: list[Perceived], rng: random.Random,
                  retrieved: Sequence[str], text: str = "", leads: dict[str, int] | None = None,
                  unread: frozenset[str] = frozenset(), final: list[Perceived] | None = None) -> list[dict[str, Any]]:
        """Sign → finding for each present or uncertain finding, then findings → impression.

        ``leads``: the abnormal findings the report's impression names, in its order (:meth:`impression_leads`);
        ``unread``: regions holding a statement no entry reads (a normal study is then not "normal in every region");
        ``final``: the perception after the reflection's correction. A finding's differential is drawn from it, so a
        draft's error (scarring put on the wrong side) is not offered as another finding's alternative, which the
        correction would leave standing.
        """
        steps = []
        low = text.lower()
        by_key = {(p.entry_id, p.laterality): p for p in draft}
        abnormal = [p for p in draft if p.status in ABNORMAL]
        for item in draft_items:
            if item["finding"] == "normal" or item["status"] not in ABNORMAL:
                continue  # a pertinent negative is stated in perception; restating it reasons nothing
            e = self.kb.get(item["finding"])
            p = by_key.get((e.id, item["laterality"]))
            signs = self.signs_seen(e, text, p) if p is not None else []
            detail = self._detail_words(p, e.name) if p is not None else ""
            alt = self._alternative(e, retrieved, final if final is not None else draft, p, low)
            if item["status"] == "present":
                # a device's definition says what it is for ("wires that close the sternum after median
                # sternotomy"): without it the step would only name the device again
                inference = W.reasoning_present(e.name, e.id, signs, detail, e.definition, alt, rng)
            else:
                inference = W.reasoning_uncertain(e.name, e.id, signs, detail, alt, rng)
            observation = item["evidence"].rstrip(".")
            cited = [e.id] + ([alt[1]] if alt else [])
            steps.append({"observation": observation, "inference": W.cap(inference), "knowledge": cited,
                          "conclusion": e.id, "status": item["status"]})
        if self._nothing_acute_beside(draft):
            # No Finding in the CheXpert sense: chronic or incidental findings outside the 14 observations
            # (scoliosis, degenerative spine, granuloma) may stand beside it, and the wording then says so
            # devices too: "no abnormality in any region" beside a central line is not what the study shows
            # a hedged one stays hedged: "question left atrial enlargement" is a possible one
            others = sorted({self._named(p, None) for p in abnormal
                             if self.kb.get(p.entry_id).chexpert in (None, "support_devices")})
            obs, inf = W.reasoning_normal(rng, besides=others, devices=any(
                self.kb.get(p.entry_id).region == "lines_devices" for p in abnormal), partial=bool(unread))
            ids = ["no_finding"] if "no_finding" in self.kb else []
            steps.append({"observation": obs, "inference": W.cap(inf), "knowledge": ids,
                          "conclusion": "no_finding", "status": "present"})
        elif len(abnormal) > 1:
            steps.append(self._impression_step(abnormal, rng, leads or {}))
        return steps

    def _read_impression(self, study: StudyInput) -> list[Perceived]:
        """The reader's mentions in the study's impression, read once per study (perception and reasoning use it)."""
        key = (study.study_id, study.impression)
        if self._impression_read[0] != key:
            self._impression_read = (key, self.reader.read(study.impression or ""))
        return self._impression_read[1]

    def impression_leads(self, study: StudyInput) -> dict[str, int]:
        """The abnormal findings the report's own impression names, each with its first place in it."""
        out: dict[str, int] = {}
        for k, p in enumerate(self._read_impression(study)):
            if p.status in ABNORMAL:
                out.setdefault(p.entry_id, k)
        return out

    def _main_and_minor(self, abnormal: list[Perceived],
                        leads: dict[str, int]) -> tuple[list[Perceived], list[Perceived]]:
        """What the impression rests on and what is incidental.

        What the report's impression names leads, in its order ("1. Fracture-dislocation of the right shoulder"
        before the aortic calcification of the findings), then the other findings that are not of an incidental
        kind; chronic or incidental ones follow. With nothing but incidental findings, nothing leads. A shadow the
        report explains as a chronic finding (:func:`_explained`) is as incidental as it; a line the report says is
        out of place (:func:`_misplaced`) is not incidental at all.
        """
        named = sorted((p for p in abnormal if p.entry_id in leads), key=lambda p: leads[p.entry_id])
        if not named and self._read.nothing_acute:
            # "Unchanged streaky opacities ... chronic scarring or atelectasis" with the impression "No acute
            # cardiopulmonary abnormality": the report's own conclusion stands; only what may be acute elsewhere
            # (a fracture without an age), a line out of place, or what a draft sees that the report does not (the
            # draft believes its false finding) leads
            main = [p for p in abnormal if _maybe_acute(p) or (p.entry_id, p.laterality) in self._read.misplaced
                    or (p.entry_id, p.laterality) not in self._read.stated]
            return main, [p for p in abnormal if p not in main]
        # a finding the impression does not name is incidental only when it is of an incidental kind: the opacity
        # beside the pneumonia the impression names is no "incidental or chronic change"
        main = named + [p for p in abnormal if p not in named
                        and (p.entry_id not in W.INCIDENTAL and p.region not in W.INCIDENTAL_REGIONS
                             or _maybe_acute(p) or (p.entry_id, p.laterality) in self._read.misplaced)
                        and (p.entry_id, p.laterality) not in self._read.explained]
        return main, [p for p in abnormal if p not in main]

    def _incidental(self, p: Perceived) -> bool:
        """Of a kind that is incidental or chronic beside nothing acute.

        A granuloma, emphysema, a device in its place, an old fracture; not a possible lymphadenopathy or a
        pericardial effusion, which have no CheXpert label either but want an explanation.
        """
        of_kind = p.entry_id in W.INCIDENTAL or p.region in W.INCIDENTAL_REGIONS \
            or self.kb.get(p.entry_id).chexpert == "support_devices"
        return of_kind and not _maybe_acute(p) and (p.entry_id, p.laterality) not in self._read.misplaced

    def _named(self, p: Perceived, grade: str | None, malpositioned: bool = False) -> str:
        """A finding's name in a sentence, its hedge kept ("possible left atelectasis")."""
        return ("possible " if p.status == "uncertain" else "") + ("malpositioned " if malpositioned else "") \
            + W.phrase(self.kb.get(p.entry_id).name, p.laterality, grade)

    def _said(self, p: Perceived, cite: bool = False) -> str:
        said = self._named(p, p.grade_words or p.severity, malpositioned="malpositioned" in p.descriptors)
        return f"{said} [K:{p.entry_id}]" if cite else said

    def _impression_step(self, abnormal: list[Perceived], rng: random.Random,
                         leads: dict[str, int]) -> dict[str, Any]:
        """Findings → impression: what the impression rests on first, incidental and chronic ones named as such."""
        main, minor = self._main_and_minor(abnormal, leads)
        top = (main or minor)[0]
        ids = list(dict.fromkeys(p.entry_id for p in abnormal))
        obs = "Findings: " + W.join([self._said(p) for p in abnormal])
        inf = self._impression_words(abnormal, leads, rng, cite=True)
        return {"observation": obs, "inference": W.cap(inf),
                "knowledge": ids, "conclusion": top.entry_id, "status": top.status}

    def _impression_words(self, abnormal: list[Perceived], leads: dict[str, int], rng: random.Random,
                          cite: bool = False) -> str:
        """What the impression rests on, what shows it and what is incidental, in words."""
        main, minor = self._main_and_minor(abnormal, leads)
        shown = {q.entry_id for q in main}
        signs = [p for p in minor if W.FEATURE_OF.get(p.entry_id, frozenset()) & shown]
        # a device placed for care (a tube, a line, a pacemaker) is in place, neither incidental nor chronic;
        # the wires and hardware an operation left stay with the incidental findings
        treating = [p for p in minor if W.TREATS.get(p.entry_id, frozenset()) & shown
                    or (self.kb.get(p.entry_id).chexpert == "support_devices" and p.entry_id not in W.LEFT_BY_SURGERY)]
        return W.impression([self._said(p, cite=cite) for p in main],
                            [self._said(p) for p in minor if p not in signs and p not in treating], rng,
                            [self._said(p) for p in signs], [self._said(p) for p in treating])

    def _nothing_acute_beside(self, findings: list[Perceived]) -> bool:
        """No Finding in the CheXpert sense, and nothing beside it that wants an explanation.

        (Or the report's own impression calls nothing acute.)
        """
        return _is_normal(findings, self.kb) and (self._read.nothing_acute or all(
            self._incidental(p) for p in findings if p.status in ABNORMAL))

    @staticmethod
    def _detail_words(p: Perceived, name: str) -> str:
        """Location, size and chronicity of a finding in words ("small in size, on the left side")."""
        bits = []
        if p.location and set(p.location.split()) & set(name.lower().split()):
            p = replace(p, location="")
        if p.severity:
            # the report's own range where it gives one ("small to moderate in size", not "moderate")
            grade = p.grade_words if p.grade_words and " to " in p.grade_words else p.severity
            bits.append(f"{grade} in grade" if p.severity in ("mild", "severe") else f"{grade} in size")
        where = W.phrase("x", p.laterality, None, p.location)
        if where != "x":
            where = where[2:] if where.startswith("x ") else f"on the {p.laterality} side" \
                if p.laterality in ("left", "right") else "on both sides" if p.laterality == "bilateral" \
                else f"{where[:-2]} in location"
            bits.append(where + (f", {p.predominance}" if p.predominance and p.laterality == "bilateral" else ""))
        chronic = [d for d in p.descriptors if d in ("chronic", "old", "healed", "healing", "remote")]
        if chronic:
            bits.append(f"{chronic[0]} by its appearance")
        return ", ".join(bits)

    def _alternative(self, entry: Any, retrieved: Sequence[str], draft: list[Perceived],
                     p: Perceived | None, low: str = "") -> tuple[str, str] | None:
        """The differential of a finding.

        A finding the report reads in the same clause as hedged alternatives takes the first of them; else, for an
        uncertain finding or a descriptive one (an opacity, a nodule) that the report leaves uninterpreted, the
        first of the entry's curated ``differential_ids`` that was retrieved for the study and that the draft
        neither calls present nor rules out. A diagnosis the report states outright gets none, and so does a
        finding the report interprets itself ("opacities compatible with atelectasis", "nodules concerning for
        metastatic disease", a diagnosis stated for the same lung): a stock alternative would argue against it.
        """
        if p is not None and p.sentence:
            # the report's own reading first: "focal opacity suggests scar and/or granulomas"
            for q in draft:
                if q is not p and q.status == "uncertain" and q.entry_id != p.entry_id and (
                        q.sentence == p.sentence or _joined_as_alternatives(low, p.sentence, q.sentence)
                        or _joined_as_alternatives(low, q.sentence, p.sentence)):
                    # (or the clause joined to it as the other choice: "airspace disease and/or pleural effusion")
                    return self.kb.get(q.entry_id).name, q.entry_id
        if p is not None and p.status == "present" and entry.id not in W.DESCRIPTIVE:
            return None  # a diagnosis the report makes outright ("right upper lobe pneumonia") needs no alternative
        if p is not None and p.status == "uncertain" and _BORDERLINE.search(p.sentence.lower()):
            return None  # "borderline enlarged": whether it is there at all is the question, not what it is
        if p is not None:
            reading = self._report_reading(entry, draft, p, low)
            if reading is not None:
                return reading or None
        # neither what the study shows (it is a finding, not an alternative) nor what its report rules out, nor
        # what it says has resolved ("previously seen left pleural effusion has resolved")
        settled = {q.entry_id for q in draft if q.status in ("present", "absent")} | self._read.resolved
        if p is not None and p.laterality in ("left", "right"):
            # nor what the report weighs for the other side only ("right base appears to represent atelectasis.
            # Left base could be atelectasis or pneumonia": pneumonia is no differential of the right base)
            settled |= {q.entry_id for q in draft if q.status in ABNORMAL and q.laterality not in ("none",
                                                                                                p.laterality)}
        wanted = set(retrieved)
        for other_id in entry.differential_ids:
            if other_id in self.kb and other_id in wanted and other_id not in settled:
                return self.kb.get(other_id).name, other_id
        return None

    def _report_reading(self, entry: Any, draft: list[Perceived], p: Perceived,
                        low: str) -> tuple[str, str] | tuple[()] | None:
        """The report's own reading of a finding, when it gives one (``low``: the report, lower-cased).

        A diagnosis it hedges for the same place is the alternative to name; ``()`` when it states one or words an
        interpretation no entry holds ("nodules concerning for metastatic disease": no stock alternative then);
        ``None`` when it gives none.
        """
        stated = False
        for q in draft:
            if q is p or q.entry_id == entry.id or q.status not in ABNORMAL or q.entry_id in W.DESCRIPTIVE:
                continue
            same_region = self.kb.get(q.entry_id).region == entry.region
            if q.status == "uncertain" and (q.sentence == p.sentence or (
                    same_region and q.laterality == p.laterality != "none")):
                # "may reflect atelectasis, though pneumonia cannot be excluded"; "left lower lobe airspace
                # disease" with "left lower lobe ... suspicious for pneumonia" in the impression
                return self.kb.get(q.entry_id).name, q.entry_id
            if q.status == "present" and (q.sentence == p.sentence or (
                    same_region and ("none" in (q.laterality, p.laterality) or q.laterality == p.laterality))):
                stated = True  # "opacities compatible with atelectasis"; "left upper lobe pneumonia"
        if stated and entry.id in W.DESCRIPTIVE:
            return ()
        said = p.sentence.lower()
        if said and W.INTERPRETS.search(said):
            return ()  # "... consistent with", "concerning for", "chronic inflammatory change"
        diagnoses = W.REPORT_DIAGNOSES.get(entry.region)
        if diagnoses is not None and diagnoses.search(low):
            return ()
        return None

    def checked(self, final: list[Perceived], corrections: list[dict[str, Any]], rng: random.Random) -> list[str]:
        """What the second look re-inspected: each abnormal finding's region and two more regions."""
        regions = [p.region for p in final if p.status in ABNORMAL]
        regions += [self.region_of.get(c["finding"]) for c in corrections]
        regions = [r for r in dict.fromkeys(regions) if r in W.REGION_CHECKS]
        others = [r for r in REGION_ORDER if r not in regions]
        regions += rng.sample(others, k=min(2, len(others)))
        tubes = any(p.status in ABNORMAL and _TUBE.search(p.entry_id) for p in final)
        out = []
        for r in regions:
            options = W.REGION_CHECKS[r] + (W.TUBE_CHECKS if r == "lines_devices" and tubes else ())
            out.append(rng.choice(options))
        return out

    # the whole trace ------------------------------------------------------------------------------------------
    def write(self, study: StudyInput) -> TraceOutcome:
        """The trace of one study (or a quarantine reason when its labels and its text disagree)."""
        rng = study_rng(self.cfg.seed, study.study_id)
        try:
            final, disputed = self.perceive(study)
        except LabelNotInReport as err:
            return TraceOutcome(study.study_id, None, error_code="label_not_in_report", error=str(err))
        text = self._text(study)
        covered = self.coverage.covered(text)
        if _HIDDEN_LUNG_FINDING.search(rules.normalize(text)):
            covered.pop("lungs", None)  # a graded lung finding whose noun is a placeholder: the lungs are not normal
        has_lateral = any(im.view in ("LATERAL", "LL") for im in study.images)
        draft, kind, corrections = self.inject(final, study.labels, rng, has_lateral, disputed, covered, text)
        unread = self.unread_regions(text) | self._touched(final, text)
        draft_items = self.items(draft, rng, covered, unread)
        leads = self.impression_leads(study)
        reasoning = self.reasoning(draft_items, draft, rng, study.knowledge, text, leads, unread, final)
        summary = self._summary(final, corrections, rng, leads)
        trace = {
            "perception": draft_items,
            "reasoning": reasoning,
            "reflection": {"checked": self.checked(final, corrections, rng), "corrections": corrections,
                           "summary": summary},
            "report": {"findings": study.findings, "impression": study.impression},
        }
        return TraceOutcome(study.study_id, trace, model=None, injected_error=kind)

    def _summary(self, final: list[Perceived], corrections: list[dict[str, Any]], rng: random.Random,
                 leads: dict[str, int] | None = None) -> str:
        """A clean second look says so; a corrected one redoes the impression on the corrected findings."""
        if not corrections:
            return rng.choice(W.SUMMARY_CLEAN)
        c = corrections[0]
        e = self.kb.get(c["finding"])
        after = c["after"]
        state = after["status"] + "".join(f", {v}" for v in (after["laterality"], after["severity"])
                                          if v and v != "none")
        abnormal = [p for p in final if p.status in ABNORMAL]
        if self._nothing_acute_beside(final) and not any(p.entry_id in (leads or {}) for p in abnormal):
            text = "nothing acute remains: there is no acute cardiopulmonary abnormality."
        else:
            # the same impression the reasoning gives, redone on the corrected findings
            text = self._impression_words(abnormal, leads or {}, rng)
        return W.cap(W.summary_fixed(W.lower_name(e.name), state, text, rng))


class LabelNotInReport(Exception):
    """The study's labels call findings present or uncertain that its report's text does not state."""

    def __init__(self, labels: list[str]) -> None:
        super().__init__(f"labels {', '.join(labels)} are positive or uncertain, but the report's text states no "
                         "such finding; the trace would have to invent it or contradict the labels (check the "
                         "labels, or the MeSH → CheXpert mapping for IU-Xray)")
        self.labels = labels


def _maybe_acute(p: Perceived) -> bool:
    """A bone or soft-tissue finding that may be acute: a fracture stated without an age, subcutaneous air.

    "Fracture of the posterior right 3rd rib. Cutaneous air is present" is no "incidental or chronic change".
    """
    return p.entry_id in W.MAYBE_ACUTE and p.status == "present" and not set(p.descriptors) & AGE_WORDS


_POSITIONAL = re.compile(r"\b(?:this|which|it)\s+(?:(?:may|might|could)\s+be|is\s+(?:possibly|likely|probably))\s+"
                         r"(?:due to\s+)?(?:positional|positioning)\b")
_NOTHING_ACUTE = re.compile(r"\bno (?:evidence of )?(?:acute|active) (?:cardiopulmonary |intrathoracic |"
                            r"cardiothoracic |pulmonary |lung |chest )?(?:abnormalit\w*|disease|process\w*|findings?|"
                            r"pathology)\b")
_PAIRED_PLURAL = {"pleural_effusion": re.compile(r"\beffusions\b"),
                  "pneumothorax": re.compile(r"\bpneumothora(?:ces|xes)\b")}
_PACING = re.compile(r"\bpac(?:e|er|ers|ing|emaker|emakers)\b")
_BORDERLINE = re.compile(r"\bborderline\b")
_RESOLVED = re.compile(r"\b(?:resolved|cleared|resolution)\b")
_RESOLVING = re.compile(r"\b(?:resolving|improving|clearing)\b")
_TUBE = re.compile(r"tube|catheter|picc|line|balloon")


# IU-Xray's de-identification sometimes hides the finding's noun itself ("Large right upper lobe XXXX."): nothing
# is read there, but a statement elsewhere ("lungs are clear") no longer makes the lungs normal.
_HIDDEN_LUNG_FINDING = re.compile(
    rf"\b(?:trace|tiny|small|mild|moderate|large|severe|minimal|marked|massive|new|increased)\s+"
    rf"(?:(?:left|right|bilateral)\s+)?(?:(?:upper|middle|lower)\s+lobe|lingula|lingular|(?:upper|lower|mid)\s+lung)"
    rf"\s+{rules.PLACEHOLDER_CHAR}+\s*(?:[.;]|$)")


# Body parts a chest radiograph does not show: a report that covers another film too ("2. Right foot. Negative.")
# says nothing of the chest in those sentences.
_ELSEWHERE = re.compile(r"\b(?:foot|feet|hindfoot|midfoot|forefoot|toes?|ankles?|knees?|hips?|pelvis|pelvic|femur|"
                        r"femoral neck|tibia|tibial|fibula|wrists?|fingers?|elbows?|forearms?|skull)\b")
_WEIGHS_CAUSES = re.compile(r"\b(?:findings? (?:could|may|might|can) (?:represent|reflect|be)|"
                            r"differential(?: diagnosis)? (?:includes?|considerations?))\b")
_LUNGS_CLEAR = re.compile(r"\blungs (?:appear |are |remain )?(?:grossly |otherwise )?clear\b")
_INCLUDES = re.compile(r"\b(?:include|includes|including|consist of|consisting of)\b")
_UNASSESSED = re.compile(r"\b(?:limited (?:assessment|evaluation)|difficult to (?:assess|evaluate)|"
                         r"(?:cannot|can not|could not) be (?:assessed|evaluated)|"
                         r"not (?:well )?(?:assessed|evaluated))\b")
_BELOW_DIAPHRAGM = re.compile(r"\b(?:below|beneath|under) the (?:right |left )?(?:hemi)?diaphragm|"
                              r"\bin the (?:upper |left |right )*abdomen\b|\bsubdiaphragmatic\b|\bsubphrenic\b")
_BLUNTING_EXPLAINED = re.compile(r"\bblunt\w*\b[^.]*?\b(?:secondary to|due to|related to|from|reflects?|"
                                 r"represents?|consistent with|compatible with|possibly|probably|likely)\s+"
                                 r"(?:\w+\s+){0,2}?"
                                 r"(?:scar\w*|pleural thickening|thickening|emphysema\w*|sclerosis|fibrosis|"
                                 r"hyperinflation|hyperexpansion|pleural parenchymal|atelectasis)")
_NEGATION_WORD = re.compile(r"\b(?:no|not|without|negative for|free of)\b")


def _otherwise(p: Perceived, beside_a_finding: bool) -> Perceived:
    """A negative's "otherwise" as a limit: "other" beside a finding of its region, else nothing."""
    words = p.limit.split()
    if "otherwise" not in words:
        return p
    kept = [("other" if beside_a_finding else "") if w == "otherwise" else w for w in words]
    return replace(p, limit=" ".join(w for w in kept if w))


def _misplaced(p: Perceived, low: str) -> bool:
    """Whether the report says a line or tube is out of place.

    "Malpositioned", "repositioning recommended", "an interval retraction of 6 cm", in its sentence of the lowercased
    report ``low``: something to act on, not an incidental device.
    """
    return p.region == "lines_devices" and p.status != "absent" and (
        "malpositioned" in p.descriptors or bool(_MISPLACED.search(_sentence_of(low, p.sentence))))


_MISPLACED = re.compile(r"\b(?:malposition\w*|reposition\w*|retract\w*|kink\w*|coil(?:ed|ing)|(?:should|could) be "
                        r"(?:advanced|withdrawn|pulled back))")


def _explained(findings: list[Perceived], low: str) -> frozenset[tuple[str, str]]:
    """The shadows (an opacity, a nodule) whose sentence explains them as a present chronic or incidental finding.

    "Streaky opacities compatible with scar": (entry, side) of each.
    """
    sentences = {_sentence_of(low, q.sentence) for q in findings
                 if q.entry_id in W.INCIDENTAL and q.status == "present"}
    return frozenset((p.entry_id, p.laterality) for p in findings
                     if p.entry_id in W.DESCRIPTIVE and p.status in ABNORMAL
                     and (sentence := _sentence_of(low, p.sentence)) in sentences and W.INTERPRETS.search(sentence))


# (IU-Xray hides "window" in "AP window": "round density in the AP XXXX")
_IN_MEDIASTINUM = re.compile(r"\b(?:ap window|ap xxxx|aortopulmonary window|aorticopulmonary window|mediastinal|"
                             r"mediastinum)\b")
_PULMONARY_ARTERY = re.compile(r"\bpulmonary arter(?:y|ial|ies)\b")
_AORTA = re.compile(r"\baort(?:a|ic)\b")
_SPINE_PLACE = re.compile(r"\b(?:spine|spinal|vertebrae?|vertebral)\b", re.IGNORECASE)
# A finding whose sentence places it in another structure is that structure's: entry → (the entry it becomes, the
# place, a place that keeps it). "Circumscribed structure in the AP window could represent lymphadenopathy, mass
# ...": a mediastinal mass; "pulmonary arterial abnormality such as aneurysm": the pulmonary artery's, not the
# aorta's; "vascular calcifications over the aortic XXXX": the aorta's.
_PLACED_ELSEWHERE: dict[str, tuple[str, re.Pattern[str], re.Pattern[str] | None]] = {
    "lung_mass": ("mediastinal_widening", _IN_MEDIASTINUM, None),
    "lung_lesion": ("mediastinal_widening", _IN_MEDIASTINUM, None),
    "aortic_enlargement": ("pulmonary_artery_enlargement", _PULMONARY_ARTERY, _AORTA),
    "vascular_calcification": ("aortic_calcification", _AORTA, None),
}
# a possible effusion read from a blunted angle only, the fluid itself unnamed
_ONLY_BLUNTING = re.compile(r"^(?!.*\beffusion).*\bblunt")
_ALTERNATIVE_WORD = re.compile(r"\b(?:or|versus|vs)\b|/")


def _joined_as_alternatives(low: str, first: str, then: str) -> bool:
    """Whether clause ``then`` follows clause ``first`` in the report ``low`` as its alternative ("X and/or Y")."""
    a, b = first.lower(), then.lower()
    at = low.find(a) if a and b else -1
    nxt = low.find(b, at + len(a)) if at >= 0 else -1
    if nxt < 0 or nxt - (at + len(a)) > 12:
        return False
    return _ALTERNATIVE_WORD.search(low[at + len(a) : nxt] + b[:4]) is not None


def _sentence_of(low: str, clause: str) -> str:
    """The sentence of the lowercased report ``low`` that holds a mention's clause."""
    part = clause.lower()
    at = low.find(part)
    if at < 0:
        return part
    stop = low.rfind(". ", 0, at)
    end = low.find(". ", at + len(part))
    return low[stop + 2 if stop >= 0 else 0 : end if end >= 0 else len(low)]


def _detail(p: Perceived) -> int:
    return bool(p.severity) + bool(p.location) + len(p.descriptors) + bool(p.limit) + bool(p.course) + bool(p.tip) \
        + bool(p.predominance)


@dataclass(frozen=True)
class _StudyRead:
    """What the writer's perception found in a study besides its findings, for the steps after it."""

    explained: frozenset[tuple[str, str]] = frozenset()  # shadows the report explains as chronic findings
    misplaced: frozenset[tuple[str, str]] = frozenset()  # lines the report says are out of place
    nothing_acute: bool = False  # the impression says no acute cardiopulmonary abnormality
    stated: frozenset[tuple[str, str]] = frozenset()  # the abnormal findings the report states
    resolved: frozenset[str] = frozenset()  # findings the report says have resolved


@dataclass(frozen=True)
class _DraftFacts:
    """What an error injector may need of the study besides its findings."""

    has_lateral: bool  # the study has a lateral view (notes may mention it)
    keep_off: frozenset[str]  # labels whose finding must not be injected as a false one
    covered: frozenset[str] = frozenset()  # regions a normal statement of the report covers
    text: str = ""  # the report's findings and impression (for the signs it names)
    covered_words: dict = field(default_factory=dict)  # region → the wordings its covering statement allows


def _single_items(findings: list[Perceived]) -> list[Perceived]:
    """Items whose entry has no other item (so a correction names exactly one draft item)."""
    counts: dict[str, int] = {}
    for p in findings:
        counts[p.entry_id] = counts.get(p.entry_id, 0) + 1
    return [p for p in findings if counts[p.entry_id] == 1]


def _rank(status: str) -> int:
    return {"absent": 0, "uncertain": 1, "present": 2}[status]


def _is_normal(findings: list[Perceived], kb: Any) -> bool:
    """No Finding as CheXpert means it, and as the labels and the labeler do.

    No abnormal finding of the 13 observations other than support devices; a finding outside them (scoliosis)
    leaves the study "normal".
    """
    for p in findings:
        if p.status in ABNORMAL and kb.get(p.entry_id).chexpert not in (None, "support_devices"):
            return False
    return True


def _state(status: str, laterality: str, severity: str | None) -> dict[str, Any]:
    return {"status": status, "laterality": laterality, "severity": severity}


def _correction(kind: str, entry_id: str, before: tuple, after: Perceived | tuple, *, note: str) -> dict[str, Any]:
    if isinstance(after, Perceived):
        after = (after.status, after.laterality, after.severity)
    return {"kind": kind, "finding": entry_id, "before": _state(*before), "after": _state(*after), "note": note}


def _item(region: str, finding: str, status: str, laterality: str, severity: str | None, evidence: str) -> dict:
    return {"region": region, "finding": finding, "status": status, "laterality": laterality,
            "severity": severity, "evidence": evidence}


# --- the teacher, in parallel --------------------------------------------------------------------------------------
def _make_writer(config: DatakitConfig) -> TraceWriter:
    from datakit.knowledge.kb import load_configured
    from datakit.reading.findings import FindingReader

    kb = load_configured(config)
    return TraceWriter(kb, FindingReader(kb), config.teacher)


def _write_chunk(writer: TraceWriter, studies: list[StudyInput]) -> list[TraceOutcome]:
    return [writer.write(s).compact() for s in studies]


@teacher("offline")
class OfflineTeacher:
    """Deterministic traces without network; runs on all cores."""

    name = "offline"

    def __init__(self, *, config: DatakitConfig, kb: Any, run: Any = None, progress: bool = True) -> None:
        self.config = config
        self.kb = kb
        self.progress = progress

    def annotate(self, studies: Sequence[StudyInput]) -> list[TraceOutcome]:
        """One trace per study, in order."""
        from datakit.parallel import cores

        workers = self.config.teacher.workers or cores()
        if workers <= 1 or len(studies) < PARALLEL_MIN_STUDIES:
            from datakit.reading.findings import FindingReader

            writer = TraceWriter(self.kb, FindingReader(self.kb), self.config.teacher)
            return [writer.write(s) for s in studies]
        from datakit.parallel import chunked, map_chunks
        from datakit.progress import StageProgress

        size = max(1, min(2000, len(studies) // (workers * 8)))
        out: list[TraceOutcome] = []
        # map_chunks keeps two chunks per worker in flight: memory stays flat however many studies there are
        with StageProgress("offline teacher", total=len(studies), enabled=self.progress) as bar:
            for part in map_chunks(_write_chunk, chunked(list(studies), size), workers=workers,
                                   setup=_make_writer, setup_args=(self.config,)):
                out.extend(part)
                bar.advance(len(part))
        return out

"""The offline teacher: deterministic traces with no network, from the report, the labels and the knowledge.

For each study (DESIGN.md, "Teacher"):

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
from dataclasses import dataclass, replace
from typing import Any

from datakit.annotate import offline_words as W
from datakit.annotate.teacher import StudyInput, TraceOutcome, teacher
from datakit.config import DatakitConfig, TeacherConfig
from datakit.reading.findings import Perceived
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

    def __init__(self, kb: Any, reader: Any, cfg: TeacherConfig) -> None:
        self.kb = kb
        self.reader = reader
        self.cfg = cfg
        self.region_of = {e.id: e.region for e in kb.entries.values()}
        self._differential_names: dict[tuple[str, str], bool] = {}
        # a label's own entry (id == column name) stands for it when the text names nothing more specific
        self.label_entry = {}
        for entry in kb.entries.values():
            if entry.chexpert and (entry.chexpert not in self.label_entry or entry.id == entry.chexpert):
                self.label_entry[entry.chexpert] = entry.id

    # 1. perception ----------------------------------------------------------------------------------------------
    def perceive(self, study: StudyInput) -> tuple[list[Perceived], frozenset[str]]:
        """The final (true) findings of the study, read from the report and reconciled with the labels.

        Also the *disputed* labels: labels of 0 whose finding the report's words name; the trace is silent on them.
        """
        text = " ".join(t for t in (study.findings, study.impression) if t)
        found: dict[tuple[str, str], Perceived] = {}
        for p in self.reader.read(text):
            if p.entry_id == "no_finding" or self.region_of.get(p.entry_id) is None:
                continue
            key = (p.entry_id, p.laterality)
            prev = found.get(key)
            # present beats uncertain beats absent, as the CheXpert aggregation does
            if prev is None or _rank(p.status) > _rank(prev.status):
                found[key] = p
        # a mention without a side ("the leads") adds nothing to a sided one of the same entry ("left pacemaker"),
        # and a label's generic entry ("tubes") nothing to a specific one of the same label ("nasogastric tube")
        sided = {(p.entry_id, p.status) for p in found.values() if p.laterality != "none"}
        specific = {(self.kb.get(p.entry_id).chexpert, p.status) for p in found.values()
                    if self.kb.get(p.entry_id).chexpert not in (None, p.entry_id)}
        findings = [p for p in found.values()
                    if (p.laterality != "none" or (p.entry_id, p.status) not in sided)
                    and (p.entry_id, p.status) not in specific]
        return self._reconcile(findings, study.labels)

    def _reconcile(self, findings: list[Perceived],
                   labels: dict[str, int | None]) -> tuple[list[Perceived], frozenset[str]]:
        out = []
        disputed: set[str] = set()
        for p in findings:
            label = self.kb.get(p.entry_id).chexpert
            value = labels.get(label) if label else None
            if value == 0 and p.status in ABNORMAL:
                # The text names it, the label says absent (labels often come from the impression alone): the
                # trace states neither, rather than contradict its own report or its label.
                disputed.add(label)
                continue
            if value == -1 and p.status == "present":
                p = replace(p, status="uncertain", sentence="")  # the clause says more than the label allows
            elif value == 1 and p.status == "uncertain":
                p = replace(p, status="present", sentence="")
            out.append(p)
        for label, value in labels.items():
            if value is None or label == "no_finding" or label in disputed:
                continue
            want = _LABEL_STATUS[value]
            entries_of_label = [p for p in out if self.kb.get(p.entry_id).chexpert == label]
            if any(p.status == want for p in entries_of_label):
                continue
            entry_id = self.label_entry.get(label)
            if entry_id is None or self.region_of.get(entry_id) is None:
                continue
            out.append(Perceived(entry_id, self.region_of[entry_id], want))
        # one item per (entry, side): an absent item is dropped when the same entry is also abnormal
        abnormal = {p.entry_id for p in out if p.status in ABNORMAL}
        out = [p for p in out if p.status in ABNORMAL or p.entry_id not in abnormal]
        uniq: dict[tuple[str, str, str], Perceived] = {}
        for p in out:
            uniq.setdefault((p.entry_id, p.laterality, p.status), p)
        return list(uniq.values()), frozenset(disputed)

    def items(self, findings: list[Perceived], rng: random.Random) -> list[dict[str, Any]]:
        """Perception items in tree order; a region with nothing abnormal gets a pertinent negative."""
        by_region: dict[str, list[Perceived]] = {r: [] for r in REGION_ORDER}
        for p in findings:
            by_region.setdefault(p.region, []).append(p)
        items = []
        for region in REGION_ORDER:
            group = sorted(by_region.get(region, []), key=lambda p: (-_rank(p.status), p.entry_id))
            if not group and region in self.kb.regions:
                phrase = rng.choice(self.kb.regions[region].normal_phrases)
                items.append(_item(region, "normal", "present", "none", None, phrase))
            for p in group:
                items.append(self._item_of(p, rng))
        return items

    def _item_of(self, p: Perceived, rng: random.Random) -> dict[str, Any]:
        e = self.kb.get(p.entry_id)
        if p.status == "present":
            ev = W.evidence_present(e.name, p.sentence, p.laterality, p.severity, rng)
        elif p.status == "uncertain":
            ev = W.evidence_uncertain(e.name, p.sentence, p.laterality, p.severity, rng)
        else:
            ev = W.evidence_absent(e.name, rng)
        return _item(p.region, p.entry_id, p.status, p.laterality, p.severity, ev)

    # 2. reflection: inject an error into a draft ----------------------------------------------------------------
    def inject(self, findings: list[Perceived], labels: dict[str, int | None], rng: random.Random,
               has_lateral: bool = False, disputed: frozenset[str] = frozenset(),
               ) -> tuple[list[Perceived], str | None, list[dict[str, Any]]]:
        """A draft of the findings with at most one controlled error, the kind, and the corrections that undo it.

        ``disputed``: labels of 0 that the report's words contradict (see :meth:`perceive`).
        """
        if not self.cfg.error_kinds or rng.random() >= self.cfg.error_rate:
            return findings, None, []
        kinds = list(self.cfg.error_kinds)
        rng.shuffle(kinds)
        # never "correct" to absent what the labels or the report's own words call abnormal
        keep_off = {label for label, value in labels.items() if value in (1, -1)} | disputed
        facts = _DraftFacts(has_lateral, frozenset(keep_off))
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
        return draft, [_correction("missed", p.entry_id, ("absent", "none", None), p,
                                   note=self._missed_note(p, rng))]

    def _inject_hallucinated(self, findings, facts, rng):
        taken = {p.entry_id for p in findings if p.status in ABNORMAL}
        options = []
        for entry_id in HALLUCINATION_CANDIDATES:
            if entry_id not in self.kb or entry_id in taken:
                continue
            if self.kb.get(entry_id).chexpert in facts.keep_off:
                continue
            options.append(entry_id)
        if not options:
            return None
        entry_id = rng.choice(options)
        e = self.kb.get(entry_id)
        side = rng.choice(["left", "right"]) if e.laterality else "none"
        false = Perceived(entry_id, e.region, "present", side, None)
        draft = [p for p in findings if p.entry_id != entry_id] + [false]
        region = self.kb.regions[e.region]
        absent = W.evidence_absent(e.name, rng)
        notes = W.HALLUCINATED_NOTES + (W.HALLUCINATED_NOTES_LATERAL if facts.has_lateral else ())
        note = rng.choice(notes).format(
            region=region.name.lower(), absent=absent, absent_l=absent[:1].lower() + absent[1:]
        )
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
        note = rng.choice(W.LATERALITY_NOTES).format(right=p.laterality, wrong=wrong)
        return draft, [_correction("laterality", p.entry_id, (p.status, wrong, p.severity), p, note=note)]

    def _inject_severity(self, findings, facts, rng):
        candidates = [p for p in _single_items(findings)
                      if p.status in ABNORMAL and p.severity and W.other_grade(p.severity, rng)]
        if not candidates:
            return None
        p = rng.choice(candidates)
        wrong = W.other_grade(p.severity, rng)
        draft = [replace(q, severity=wrong) if q is p else q for q in findings]
        note = rng.choice(W.SEVERITY_NOTES).format(right=p.severity, wrong=wrong)
        return draft, [_correction("severity", p.entry_id, (p.status, p.laterality, wrong), p, note=note)]

    def _missed_note(self, p: Perceived, rng: random.Random) -> str:
        e = self.kb.get(p.entry_id)
        evidence = W.describe(e.name, p.sentence, p.laterality, p.severity)
        region = self.kb.regions[p.region].name.lower()
        return rng.choice(W.MISSED_NOTES).format(region=region, evidence=evidence)

    def _normality_fix(self, final: list[Perceived], draft: list[Perceived]) -> list[dict[str, Any]]:
        """When the error flips whether the study looks normal, the reflection corrects that conclusion too."""
        was, now = _is_normal(draft, self.kb), _is_normal(final, self.kb)
        if was == now:
            return []
        before, after = ("present", "absent") if was else ("absent", "present")
        note = W.NO_FINDING_NOTES[after][0]
        return [{"kind": "other", "finding": "no_finding", "before": _state(before, "none", None),
                 "after": _state(after, "none", None), "note": note}]

    # 3. reasoning ---------------------------------------------------------------------------------------------
    def reasoning(self, draft_items: list[dict[str, Any]], draft: list[Perceived], rng: random.Random,
                  retrieved: Sequence[str]) -> list[dict[str, Any]]:
        """One step per finding of the draft; a normal draft concludes no finding."""
        steps = []
        for item in draft_items:
            if item["finding"] == "normal":
                continue
            e = self.kb.get(item["finding"])
            diff = self._retrieved_alternative(e, retrieved, draft)
            if item["status"] == "present":
                definition = None if e.region == "lines_devices" else e.definition  # a device needs no definition
                inference = W.reasoning_present(e.name, e.id, definition, diff, rng)
            elif item["status"] == "uncertain":
                inference = W.reasoning_uncertain(e.name, e.id, diff, rng)
            else:
                inference = W.reasoning_absent(e.name, e.id, rng)
            observation = item["evidence"].rstrip(".")
            cited = [e.id] + ([diff[1]] if diff and item["status"] != "absent" else [])
            steps.append({"observation": observation, "inference": W.cap(inference), "knowledge": cited,
                          "conclusion": e.id, "status": item["status"]})
        if _is_normal(draft, self.kb):
            # No Finding in the CheXpert sense: chronic or incidental findings outside the 14 observations
            # (scoliosis, degenerative spine, granuloma) may stand beside it, and the wording then says so
            others = sorted({self.kb.get(p.entry_id).name.lower() for p in draft
                             if p.status in ABNORMAL and self.kb.get(p.entry_id).chexpert is None})
            obs, inf = W.reasoning_normal(rng, besides=others)
            ids = ["no_finding"] if "no_finding" in self.kb else []
            steps.append({"observation": obs, "inference": W.cap(inf), "knowledge": ids,
                          "conclusion": "no_finding", "status": "present"})
        return steps

    def _retrieved_alternative(self, entry: Any, retrieved: Sequence[str],
                               draft: list[Perceived]) -> tuple[str, str] | None:
        """A retrieved entry that the finding's differential names and the draft does not call abnormal."""
        if not entry.differential:
            return None
        abnormal = {p.entry_id for p in draft if p.status in ABNORMAL}
        for entry_id in retrieved:
            if entry_id == entry.id or entry_id in abnormal or entry_id not in self.kb:
                continue
            if self._in_differential(entry, entry_id):
                other = self.kb.get(entry_id)
                return other.name, other.id
        return None

    def _in_differential(self, entry: Any, other_id: str) -> bool:
        """Whether ``entry``'s differential names ``other_id`` (a placed finding); memoised per pair."""
        key = (entry.id, other_id)
        known = self._differential_names.get(key)
        if known is None:
            other = self.kb.get(other_id)
            differential = " ".join(entry.differential).lower()
            names = [t for t in other.terms[:4] if " " in t or t == other.name.lower()]
            known = bool(other.region) and any(re.search(rf"\b{re.escape(t)}\b", differential) for t in names)
            self._differential_names[key] = known
        return known

    def checked(self, final: list[Perceived], corrections: list[dict[str, Any]], rng: random.Random) -> list[str]:
        """What the second look re-inspected: each abnormal finding's region and two more regions."""
        regions = [p.region for p in final if p.status in ABNORMAL]
        regions += [self.region_of.get(c["finding"]) for c in corrections]
        regions = [r for r in dict.fromkeys(regions) if r in W.REGION_CHECKS]
        others = [r for r in REGION_ORDER if r not in regions]
        regions += rng.sample(others, k=min(2, len(others)))
        return [rng.choice(W.REGION_CHECKS[r]) for r in regions]

    # the whole trace ------------------------------------------------------------------------------------------
    def write(self, study: StudyInput) -> TraceOutcome:
        """The trace of one study."""
        rng = study_rng(self.cfg.seed, study.study_id)
        final, disputed = self.perceive(study)
        has_lateral = any(im.view in ("LATERAL", "LL") for im in study.images)
        draft, kind, corrections = self.inject(final, study.labels, rng, has_lateral, disputed)
        draft_items = self.items(draft, rng)
        reasoning = self.reasoning(draft_items, draft, rng, study.knowledge)
        summary = rng.choice(W.SUMMARY_FIXED if corrections else W.SUMMARY_CLEAN)
        trace = {
            "perception": draft_items,
            "reasoning": reasoning,
            "reflection": {"checked": self.checked(final, corrections, rng), "corrections": corrections,
                           "summary": summary},
            "report": {"findings": study.findings, "impression": study.impression},
        }
        return TraceOutcome(study.study_id, trace, model=None, injected_error=kind)


@dataclass(frozen=True)
class _DraftFacts:
    """What an error injector may need of the study besides its findings."""

    has_lateral: bool  # the study has a lateral view (notes may mention it)
    keep_off: frozenset[str]  # labels whose finding must not be injected as a false one


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
        from datakit.annotate.progress import StageProgress
        from datakit.parallel import chunked, map_chunks

        size = max(1, min(2000, len(studies) // (workers * 8)))
        out: list[TraceOutcome] = []
        # map_chunks keeps two chunks per worker in flight: memory stays flat however many studies there are
        with StageProgress("offline teacher", total=len(studies), enabled=self.progress) as bar:
            for part in map_chunks(_write_chunk, chunked(list(studies), size), workers=workers,
                                   setup=_make_writer, setup_args=(self.config,)):
                out.extend(part)
                bar.advance(len(part))
        return out

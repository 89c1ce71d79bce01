"""Check: faithfulness — the final perception says only what the study's report and labels support (issue 15).

The report is read by the *second reader* (:mod:`datakit.reading.second`), which shares no code, cue list or
scope rule with the reader the offline teacher writes traces with (:mod:`datakit.reading.findings` over the
labeler's cue engine): what the teacher misread, this check reads its own way, so it can reject a trace
whichever teacher wrote it. The structured labels (CheXpert/NegBio, or MeSH for IU-Xray) are the second
witness. An item's finding is *named* by a mention of the same entry, of its label's own entry (``fracture`` for
``rib_fracture`` and back) or of a narrower entry (a consolidation names a lung opacity).

Errors:

- ``finding_not_in_report``: a present or uncertain item whose finding the report names nowhere as present or
  hedged (only negated, only attributed to bone or overlap, only on another modality or in a history, or not
  at all).
- ``hedge_upgraded``: a present item the report only hedges ("may represent", "X versus Y", "possible").
- ``side_contradicted``: the report gives the finding sides, none of which is the item's.
- ``grade_contradicted``: the report grades the finding, never with the item's grade step.
- ``negative_contradicts_report``: an absent item of a finding the report states (present or hedged), and no
  present or uncertain item of it.
- ``normal_region_contradicted``: a region called normal (a ``normal`` item, or a normal item's evidence:
  "no support devices", "bones unremarkable", "hemidiaphragms normal") where the report states a finding of
  that region that the trace has nowhere, and the report does not call that region normal itself.
- ``absent_but_labelled_positive``: an absent item of a label column the study's labels have positive (1), with
  no present or uncertain item of that label.

Warning: ``unsupported_negative``: a pertinent negative (an absent item, or a negation or region statement in a
normal item's evidence) that the report never makes — neither about that finding, nor about its region, nor in
a global normal statement for an acute finding — or makes only with a limit ("no large effusion").
Items a correction changed are judged in their final state; the negatives a correction wrote are not warned of.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import polars as pl

from datakit import tables
from datakit.reading.second import Mention, Reading
from datakit.reading.second.words import ACUTE, GLOBAL_REGIONS, SEVERITY_LEVEL
from datakit.validate.checks.second_read import read_all
from datakit.validate.context import Context
from datakit.validate.registry import PROBLEM_SCHEMA, check, no_problems

CODES = {
    "finding_not_in_report": "error",
    "hedge_upgraded": "error",
    "side_contradicted": "error",
    "grade_contradicted": "error",
    "negative_contradicts_report": "error",
    "normal_region_contradicted": "error",
    "absent_but_labelled_positive": "error",
    "unsupported_negative": "warning",
}
# A narrower finding names its broader one (the evidence check uses the same pairs).
NARROWER = {
    "lung_opacity": ("consolidation", "pneumonia", "edema", "atelectasis", "lung_lesion", "aspiration"),
    "enlarged_cardiomediastinum": ("cardiomegaly", "mediastinal_widening"),
    "cardiomegaly": ("enlarged_cardiomediastinum",),
    "pleural_effusion": ("hydropneumothorax", "empyema"),
    # a calcified granuloma is a (benign) nodule: "calcified pulmonary nodules" names a pulmonary nodule
    "pulmonary_nodule": ("multiple_pulmonary_nodules", "granuloma"),
}
# Findings of a region that a report routinely states beside calling that region normal: they do not
# contradict a normal region ("lungs clear; calcified granuloma").
SOFT = {
    "ecg_leads",
    "low_lung_volumes",
    "granuloma",
    "calcified_lymph_nodes",
    "lung_scarring",
    "no_finding",
    "surgical_clips",
}
ABNORMAL = ("present", "uncertain")
MEMO_REPORTS = 50_000  # distinct reports whose judgements are kept at once (memory stays bounded)


class Relations:
    """Which entries name which: kin through the label's own entry, narrower entries, regions, label columns."""

    def __init__(self, kb: Any) -> None:
        entries = kb.entries
        self.region = {e.id: e.region for e in entries.values()}
        self.chexpert = {e.id: e.chexpert for e in entries.values()}
        own = {e.id for e in entries.values() if e.chexpert == e.id}
        kin: dict[str, set[str]] = defaultdict(set)
        for e in entries.values():
            kin[e.id].add(e.id)
            if e.chexpert in own and e.chexpert != e.id:
                kin[e.id].add(e.chexpert)
                kin[e.chexpert].add(e.id)
        self.kin = dict(kin)
        names: dict[str, set[str]] = {}
        for eid in entries:
            found = set(self.kin.get(eid, {eid}))
            for child in NARROWER.get(eid, ()):
                found |= self.kin.get(child, {child})
            names[eid] = found
        self.names = names  # entries whose mention names this finding
        broader: dict[str, set[str]] = defaultdict(set)
        for parent, children in names.items():
            for child in children:
                broader[child].add(parent)
        self.broader = dict(broader)  # entries whose negation covers this finding
        specific: dict[str, set[str]] = defaultdict(set)
        for e in entries.values():
            specific[e.id].add(e.id)
            if e.chexpert in own:
                specific[e.chexpert].add(e.id)
        contra: dict[str, set[str]] = {}
        for eid in entries:
            found = set(specific[eid])
            for child in NARROWER.get(eid, ()):
                # "enlarged cardiomediastinal silhouette" may be the heart, but a widened paratracheal stripe (the
                # enlarged cardiomediastinum label's other entry) says nothing of it: of a broader finding, only
                # its own mention contradicts "no cardiomegaly"
                broader_one = eid in NARROWER.get(child, ())
                found |= {child} if broader_one else specific.get(child, {child})
            contra[eid] = found
        self.contra = contra  # entries whose presence contradicts "no <this finding>" (no general ones)

    def named_by(self, finding: str) -> set[str]:
        """Entries whose mention names ``finding``."""
        return self.names.get(finding, {finding})

    def contradicted_by(self, finding: str) -> set[str]:
        """Entries whose presence contradicts an absent ``finding``.

        A chest tube does not contradict "no PICC"; any device contradicts "no support devices".
        """
        return self.contra.get(finding, {finding})

    def negated_by(self, finding: str) -> set[str]:
        """Entries whose negation also negates ``finding`` ("no opacity" covers "no consolidation")."""
        return self.broader.get(finding, {finding}) | self.kin.get(finding, {finding})


def _allows(sides: tuple[str, ...], side: str) -> bool:
    s = set(sides)
    if side == "bilateral":
        return "bilateral" in s or {"left", "right"} <= s
    return side in s or "bilateral" in s


def _quote(m: Mention) -> str:
    text = " ".join(m.sentence.split())
    return f'"{text[:120]}{"…" if len(text) > 120 else ""}"'


def _name(finding: str) -> str:
    return finding.replace("_", " ")


def _levels_of(m: Mention, side: str) -> tuple[int, ...]:
    """The grade steps a mention gives the item's side: its per-side grades where it has them, else all of its."""
    own = tuple(lv for s, lv in m.side_levels if s == side)
    return own or m.levels


class _Judge:
    """The problems of statements against one report's reading (one judge per distinct report)."""

    def __init__(self, rel: Relations, report: Reading, readings: dict[str, Reading]):
        self.rel = rel
        self.report = report
        self.readings = readings
        self.by_entry: dict[str, list[Mention]] = defaultdict(list)
        self.region_stated: dict[str | None, list[Mention]] = defaultdict(list)  # current abnormal, not soft
        self.region_negated: set[str | None] = set()  # regions with a negated mention
        for m in report.mentions:
            self.by_entry[m.entry].append(m)
            region = rel.region.get(m.entry)
            if m.context == "current" and m.status in ABNORMAL and m.entry not in SOFT:
                self.region_stated[region].append(m)
            if m.status == "absent":
                self.region_negated.add(region)
        self._negatives: dict[str, tuple[bool, Mention | None]] = {}
        self.present = frozenset(self.by_entry)
        self._contradicting: dict[str, list[Mention]] = {}

    def contradicting(self, finding: str) -> list[Mention]:
        """Current present or hedged mentions that contradict "no <finding>" (cached per finding)."""
        got = self._contradicting.get(finding)
        if got is None:
            got = self._contradicting[finding] = self.stated(self.rel.contradicted_by(finding))
        return got

    def mentions(self, entries: set[str]) -> list[Mention]:
        """The report's mentions of the entries (the report's own entries are few: intersect with them)."""
        by = self.by_entry
        return [m for e in sorted(self.present & entries) for m in by[e]]  # sorted: the same message every run

    def stated(self, entries: set[str]) -> list[Mention]:
        """Current present or hedged mentions of the entries."""
        return [m for m in self.mentions(entries) if m.context == "current" and m.status in ABNORMAL]

    def abnormal_item(self, item: dict) -> list[tuple[str, str]]:
        """Problems of a present or uncertain item."""
        f = item["finding"]
        support = self.stated(self.rel.named_by(f))
        if not support and item["status"] == "uncertain":
            # "a possible nodule … may be a nipple shadow": a hedged explanation leaves a hedged finding; "heart
            # size is difficult to assess" leaves an uncertain cardiomegaly
            support = [
                m
                for m in self.mentions(self.rel.named_by(f))
                if m.context in ("attributed", "unassessed") and m.status == "uncertain"
            ]
        if not support:
            said = self.mentions(self.rel.named_by(f))
            if not said:
                why = "the report does not name it"
            elif any(m.status == "absent" and m.context == "current" for m in said):
                why = "the report says there is none: " + _quote(next(m for m in said if m.status == "absent"))
            else:
                m = said[0]
                what = (
                    "attributes it to something else"
                    if m.context == "attributed"
                    else "names it only on another study or in a history"
                )
                why = f"the report {what}: {_quote(m)}"
            return [("finding_not_in_report", f"{item['status']} {_name(f)}: {why}")]
        out: list[tuple[str, str]] = []
        # an opacity or a device is seen even where its cause or type is hedged ("opacity, atelectasis versus
        # pneumonia"; "presumed closure device")
        hedgeable = f != "lung_opacity" and self.rel.region.get(f) != "lines_devices"
        if hedgeable and item["status"] == "present" and all(m.status == "uncertain" for m in support):
            out.append(("hedge_upgraded", f"present {_name(f)}, but the report only hedges it: {_quote(support[0])}"))
        side = item["laterality"]
        if side in ("left", "right", "bilateral"):
            # the finding's own mentions where the report names it ("could be XXXX lung nodule"), not a kin's
            # ("calcified granuloma left midlung" beside a right upper lobe nodule)
            own = [m for m in support if m.entry == f]
            sided = [m for m in (own or support) if m.sides]
            if sided and not any(_allows(m.sides, side) for m in sided):
                given = "/".join(sorted({s for m in sided for s in m.sides}))
                out.append(("side_contradicted", f"{side} {_name(f)}, the report gives {given}: {_quote(sided[0])}"))
        level = SEVERITY_LEVEL.get(item["severity"] or "")
        if level is not None:
            # a grade belongs to the side it is said of: "moderate left and small right effusions" grades the
            # left moderate, so a "small left" item contradicts it
            graded = [m for m in support if m.levels and (side not in ("left", "right") or not m.sides
                                                          or _allows(m.sides, side))]
            if graded and level not in {lv for m in graded for lv in _levels_of(m, side)}:
                msg = f"{item['severity']} {_name(f)}, the report grades it otherwise: {_quote(graded[0])}"
                out.append(("grade_contradicted", msg))
        return out

    def negative_supported(self, finding: str) -> tuple[bool, Mention | None]:
        """Whether the report makes this negative; the limited negation it makes instead, if that is all."""
        got = self._negatives.get(finding)
        if got is None:
            got = self._negatives[finding] = self._negative_supported(finding)
        return got

    def _negative_supported(self, finding: str) -> tuple[bool, Mention | None]:
        negs = [m for m in self.mentions(self.rel.negated_by(finding)) if m.status == "absent"]
        if any(not m.qualified for m in negs):
            return True, None
        region = self.rel.region.get(finding)
        if region in self.report.normal_regions:
            return True, None
        if self.report.global_normal and finding in ACUTE and region in GLOBAL_REGIONS:
            return True, None
        return False, negs[0] if negs else None

    def absent_item(self, item: dict, abnormal: frozenset[str], labels: dict[str, Any]) -> list[tuple[str, str]]:
        """Problems of an absent item (``abnormal``: the trace's present or uncertain findings)."""
        f = item["finding"]
        if self.rel.named_by(f) & abnormal:
            return []  # the trace states it elsewhere (another side, another item)
        stated = self.contradicting(f)
        side = item["laterality"]
        if side in ("left", "right", "bilateral"):
            stated = [m for m in stated if not m.sides or _allows(m.sides, side)]
        if stated:
            return [
                ("negative_contradicts_report", f"absent {_name(f)}, but the report states it: {_quote(stated[0])}")
            ]
        col = self.rel.chexpert.get(f)
        if col and col != "no_finding" and labels.get(col) == 1:
            if not any(self.rel.chexpert.get(a) == col for a in abnormal):
                label = tables.LABELS.get(col, col)
                return [
                    ("absent_but_labelled_positive", f"absent {_name(f)}, but the study is labelled {label} positive")
                ]
        if item["source"] == "draft":
            ok, limited = self.negative_supported(f)
            if not ok:
                return [("unsupported_negative", self._unsupported(f, limited))]
        return []

    @staticmethod
    def _unsupported(finding: str, limited: Mention | None) -> str:
        if limited is not None:
            return f"no {_name(finding)}: the report only says {_quote(limited)}"
        return f"no {_name(finding)}: the report never says so"

    def normal_item(self, region: str, evidence: str, abnormal: frozenset[str]) -> list[tuple[str, str]]:
        """Problems of a ``normal`` item: the regions it calls normal, the negatives its evidence makes."""
        out: list[tuple[str, str]] = []
        said = self.readings.get(evidence)
        regions = {region} | (set(said.normal_regions) if said else set())
        blamed = False
        for r in sorted(regions):
            if r in self.report.normal_regions:
                continue
            for m in self.region_stated.get(r, ()):
                if not (self.rel.kin.get(m.entry, {m.entry}) & abnormal):
                    msg = f'{_name(r)} called normal ("{evidence[:80]}"), but the report states {_name(m.entry)}: '
                    out.append(("normal_region_contradicted", msg + _quote(m)))
                    blamed = True
                    break
        if said is None:
            return out
        for m in said.mentions:
            if m.status != "absent":
                continue
            stated = [s for s in self.contradicting(m.entry) if not (self.rel.kin.get(s.entry, {s.entry}) & abnormal)]
            if blamed and any(self.rel.region.get(s.entry) in regions for s in stated):
                continue  # already said for this item
            if stated:
                msg = f'"{evidence[:80]}", but the report states {_name(stated[0].entry)}: {_quote(stated[0])}'
                out.append(("normal_region_contradicted", msg))
            elif not self.negative_supported(m.entry)[0]:
                out.append(("unsupported_negative", f'"{evidence[:80]}": the report never says no {_name(m.entry)}'))
        for r in sorted(set(said.normal_regions) - self.report.normal_regions):
            if r in GLOBAL_REGIONS and self.report.global_normal or r in self.region_negated:
                continue
            out.append(("unsupported_negative", f'"{evidence[:80]}": the report never calls the {_name(r)} normal'))
        return out


def _report_texts(ctx: Context) -> pl.DataFrame:
    rep = pl.col("report")
    return ctx.decoded.select(
        "study_id",
        pl.concat_str(
            [rep.struct.field("findings").fill_null(""), rep.struct.field("impression").fill_null("")], separator="\n"
        ).alias("text"),
    )


@check("faithfulness", codes=CODES)
def faithfulness(ctx: Context) -> pl.DataFrame:
    """The final perception says only what the report (read a second, independent way) and the labels say."""
    rel = Relations(ctx.kb)
    reports = _report_texts(ctx)
    normals = ctx.draft.filter(pl.col("finding") == "normal").select("study_id", "region", "evidence")
    texts = reports["text"].to_list() + normals["evidence"].drop_nulls().unique().to_list()
    readings = read_all(ctx, texts)
    final = defaultdict(list)
    for row in ctx.final.select("study_id", "finding", "status", "laterality", "severity", "source").iter_rows(
        named=True
    ):
        final[row["study_id"]].append(row)
    normal_items = defaultdict(list)
    for sid, region, evidence in normals.iter_rows():
        normal_items[sid].append((region, evidence or ""))
    label_cols = [c for c in tables.LABEL_COLUMNS]
    labels = {
        r[0]: dict(zip(label_cols, r[1:], strict=True)) for r in ctx.labels.select("study_id", *label_cols).iter_rows()
    }
    rows: list[tuple[str, str, str]] = []
    judges: dict[str, _Judge] = {}  # one per distinct report
    # reports, stock evidence and items repeat across a run: each distinct statement is judged once per report
    memo: dict[tuple, list[tuple[str, str]]] = {}
    for sid, text in reports.iter_rows():
        judge = judges.get(text)
        if judge is None:
            if len(judges) >= MEMO_REPORTS:
                judges.clear()
                memo.clear()
            judge = judges[text] = _Judge(rel, readings[text], readings)
        lab = labels.get(sid, {})
        items = final.get(sid, [])
        abnormal = frozenset(i["finding"] for i in items if i["status"] in ABNORMAL)
        out: list[tuple[str, str]] = []
        for item in items:
            state = (item["finding"], item["status"], item["laterality"], item["severity"], item["source"])
            if item["status"] in ABNORMAL:
                key: tuple = (text, state)
                if key not in memo:
                    memo[key] = judge.abnormal_item(item)
            elif item["status"] == "absent":
                col = rel.chexpert.get(item["finding"])
                key = (text, state, abnormal, lab.get(col) if col else None)
                if key not in memo:
                    memo[key] = judge.absent_item(item, abnormal, lab)
            else:
                continue
            out.extend(memo[key])
        for region, evidence in normal_items.get(sid, []):
            key = (text, region, evidence, abnormal)
            if key not in memo:
                memo[key] = judge.normal_item(region, evidence, abnormal)
            out.extend(memo[key])
        rows.extend((sid, code, msg) for code, msg in dict.fromkeys(out))
    if not rows:
        return no_problems()
    return pl.DataFrame(rows, schema=PROBLEM_SCHEMA, orient="row")

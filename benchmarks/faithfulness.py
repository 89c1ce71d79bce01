"""Clinical faithfulness of the offline teacher's accepted traces on real IU-Xray reports.

    python benchmarks/faithfulness.py                 # build a run from the dev reports, then measure it
    python benchmarks/faithfulness.py --run DIR       # measure an existing run (ingested, annotated, validated)

The judge here is deliberately *not* the finding reader the teacher writes with: a finding is "stated" when one
of its knowledge entry's terms occurs in a report sentence with no negation word in the few words before it
(a plain NegEx-style window), and the study's MeSH-derived labels are a second, coder-made reference. Printed:

- share of present / uncertain final items whose finding a report sentence states (and, for items with a
  CheXpert label, whose label MeSH also calls positive or uncertain);
- present items whose only mentions are hedged ("probable X", "X versus Y"): a hedge upgraded;
- unsupported pertinent negatives per trace: absent items the report neither negates nor covers with a global
  normal statement, and "normal" region items that assert normality for a region the report never mentions;
- share of final items whose report clause (the mention's stretch up to a comma, "and" or "with") gives a side /
  a grade that keep it;
- distinct evidence strings per item; share of think lines recurring word for word in ≥ 100 traces;
- how many traces the validator rejects, by first error code.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import polars as pl

from datakit import semantics
from datakit.knowledge.kb import load_kb
from datakit.trace import render_think

DEV = Path("/work/shared/data/iu-xray-reports-dev")
REPO = Path(__file__).resolve().parents[1]
CANDIDATES = [DEV, REPO / "tests" / "data" / "iu-xray-reports-dev"]

_NEG = re.compile(r"\b(?:no|not|without|negative for|free of|clear of|absence of|resolved|removed|nor|neither|"
                  r"rather than|ruled out|exclude[sd]?)\b")
_HEDGE = re.compile(r"\b(?:possible|possibly|probable|probably|likely|may|might|could|questionable|suspected|"
                    r"suspicious|concern(?:ing)?|versus|vs|or|cannot|can not|suggest\w*|question|borderline|"
                    r"equivocal|differential|consider\w*|perhaps)\b")
_SIDE = re.compile(r"\b(left|right|bilateral|bilaterally|both|bibasilar|bibasal|lingula|lingular|middle lobe)\b")
_GRADE = {"trace": "trace", "tiny": "trace", "small": "small", "moderate": "moderate", "large": "large",
          "mild": "mild", "mildly": "mild", "minimal": "mild", "severe": "severe", "marked": "severe",
          "markedly": "severe", "massive": "large", "moderately": "moderate", "severely": "severe",
          "advanced": "severe", "extremely": "severe"}
_GRADE_RE = re.compile(r"\b(" + "|".join(_GRADE) + r")\b")
_GRADE_WORD = "(" + "|".join(_GRADE) + ")"
# "small to moderate", "moderate-severe", "moderate severe"
_GRADE_RANGE = re.compile(rf"\b{_GRADE_WORD}(?:\s*-\s*|\s+)(?:to(?:\s*-\s*|\s+))?{_GRADE_WORD}\b")


def _grades_of(sentence: str) -> set[str]:
    """The grade a mention's sentence gives: its first grade word, or both ends of a range that starts there."""
    m = _GRADE_RE.search(sentence)
    if not m:
        return set()
    r = _GRADE_RANGE.match(sentence, m.start())
    return {_GRADE[r.group(1)], _GRADE[r.group(2)]} if r else {_GRADE[m.group(1)]}
# Which report statements speak for a whole region (the judge's own list, independent of the teacher's).
# A structure called normal rules out its enlargement ("heart size is within normal limits": no cardiomegaly)
_NORMAL_OF = {
    "cardiomegaly": r"\b(?:heart|cardiac)\b[^.]{0,60}?\b(?:normal|within normal limits|unremarkable|"
                    r"not (?:significantly )?enlarged)|\bnormal (?:heart|cardiac)",
    "enlarged_cardiomediastinum": r"\b(?:cardiomediastinal|mediastinal|mediastinum)\b[^.]{0,60}?\b(?:normal|"
                                  r"within normal limits|unremarkable|not widened)|\bnormal (?:cardio)?mediastin",
}
_NORMAL_OF["mediastinal_widening"] = _NORMAL_OF["enlarged_cardiomediastinum"]
_GLOBAL = {
    "lungs": r"lungs? (?:are|is|appear|remain)? ?(?:clear|normal)|clear lungs|no acute (?:cardio)?pulmonary|"
             r"normal chest|no active disease|no acute (?:disease|abnormality|findings?|process)",
    "pleura": r"no acute cardiopulmonary|normal chest|no active disease|no acute (?:disease|abnormality|"
              r"findings?|process)",
    "heart_mediastinum": r"no acute cardiopulmonary|normal chest|no active disease|no acute (?:disease|"
                         r"abnormality|findings?|process)",
    "bones_soft_tissue": r"no acute (?:bony|osseous|skeletal)|(?:bones|osseous structures|skeletal structures)"
                         r" (?:are|appear)? ?(?:intact|normal|unremarkable)",
}
# Words by which a report speaks of a region at all.
_REGION_WORDS = {
    "airway": r"trache|airway|bronch|carina",
    "lungs": r"lung|pulmonary|airspace|air space|consolidat|opacit|parenchym|edema|pneumonia|atelecta|nodul|"
             r"interstitial|infiltrat|granulom|emphysem|hyperinfla|hyperexpan",
    "pleura": r"pleura|effusion|pneumothora|costophrenic",
    "heart_mediastinum": r"heart|cardi|mediastin|aort|silhouette",
    "hila": r"hila|hilum",
    "bones_soft_tissue": r"bon[ey]|osseous|rib|spine|spinal|skelet|vertebr|thoracic|clavic|degenerat|"
                         r"fractur|soft tissue|scolio|sternotomy|osteophyt",
    "upper_abdomen": r"diaphragm|abdom|free air|bowel|gastric|stomach|subdiaphragm",
    "lines_devices": r"tube|line|catheter|pacemaker|pacer|device|wire|lead|port|clip|stent|hardware",
}
DEBUG = bool(os.environ.get("FAITHFULNESS_DEBUG"))  # print the items behind the side, grade and hedge figures
_ASSERTS = re.compile(r"\b(?:normal|clear|no|not|midline|sharp|unremarkable|intact|patent|within)\b", re.I)


def build_run(src: Path, where: Path) -> Path:
    """A run made from the Kaggle-layout reports with a tiny PNG for every listed image."""
    from PIL import Image

    data = where / "iu-src"
    (data / "images" / "images_normalized").mkdir(parents=True)
    for name in ("indiana_reports.csv", "indiana_projections.csv"):
        shutil.copyfile(src / name, data / name)
    buf = io.BytesIO()
    Image.new("L", (64, 64), 100).save(buf, format="PNG")
    with open(data / "indiana_projections.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            (data / "images" / "images_normalized" / row["filename"]).write_bytes(buf.getvalue())
    run = where / "run"
    for cmd in (["ingest", str(data), "--run", str(run)], ["retrieve", "--run", str(run)],
                ["annotate", "--run", str(run), "--no-progress"], ["validate", "--run", str(run)]):
        done = subprocess.run([sys.executable, "-m", "datakit", *cmd], capture_output=True, text=True)
        if done.returncode not in (0, 4):
            sys.exit(f"datakit {' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return run


def sentences(text: str) -> list[str]:
    """Report text as lowercase sentences, placeholders blanked."""
    text = re.sub(r"x{3,}", " ", (text or "").lower())
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


_STOP = {"with", "from", "that", "this", "there", "the", "and", "of", "in", "on", "at", "to"}


class Judge:
    """An entry's terms looked up sentence by sentence with a negation window.

    A term matches as a phrase, or, for a term of several words, when every one of its words (5-letter stems)
    is in the sentence ("degenerative changes are present in the spine" for "degenerative changes of the
    spine"); the negation window is the six words before the first of them.
    """

    def __init__(self, kb) -> None:
        self.kb = kb
        self.terms: dict[str, re.Pattern] = {}
        self.bags: dict[str, list[list[str]]] = {}
        for e in kb.entries.values():
            words = sorted({t.lower() for t in (e.name, *e.synonyms) if len(t) > 2}, key=len, reverse=True)
            if words:
                self.terms[e.id] = re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b")
            bags = []
            for t in words:
                content = [w[:5] for w in re.findall(r"[a-z]+", t) if w not in _STOP and len(w) > 2]
                if len(content) >= 2:
                    bags.append(content)
            self.bags[e.id] = bags

    def mentions(self, entry_id: str, sents: list[str]) -> list[tuple[str, bool, bool]]:
        """(sentence, negated, hedged) for each mention of the entry."""
        pat = self.terms.get(entry_id)
        out = []
        for s in sents if pat else ():
            starts = [m.start() for m in pat.finditer(s)]
            ends = [m.end() for m in pat.finditer(s)]
            if not starts:
                for bag in self.bags.get(entry_id, ()):
                    spots = [re.search(rf"\b{re.escape(w)}", s) for w in bag]
                    if all(spots):
                        starts, ends = [min(m.start() for m in spots)], [max(m.end() for m in spots)]
                        break
            for a, b in zip(starts, ends, strict=True):
                before = " ".join(s[:a].split()[-6:])
                window = before + " " + " ".join(s[b:].split()[:4])
                # the mention's own stretch: its clause (commas, "and", "with" end it), for its side and grade
                left = max(s.rfind(",", 0, a), s.rfind(" and ", 0, a), s.rfind(" with ", 0, a), -1) + 1
                right = min([i for i in (s.find(",", b), s.find(" and ", b), s.find(" with ", b)) if i >= 0]
                            or [len(s)])
                out.append((s[left:right], bool(_NEG.search(before)), bool(_HEDGE.search(window))))
        return out


def side_of(sentence: str) -> str | None:
    words = {m.group(1) for m in _SIDE.finditer(sentence)}
    if not words:
        return None
    if words & {"bilateral", "bilaterally", "both", "bibasilar", "bibasal"} or {"left", "right"} <= words:
        return "bilateral"
    if words & {"lingula", "lingular"}:
        return "left"
    if words == {"middle lobe"}:
        return "right"
    return next(iter(words - {"middle lobe", "lingula", "lingular"}), None)


def measure(run: Path) -> dict:
    kb = load_kb()
    judge = Judge(kb)
    traces = pl.read_parquet(run / "traces.parquet")
    studies = pl.read_parquet(run / "studies.parquet")
    validation = pl.read_parquet(run / "validation.parquet")
    errors = validation.filter(~pl.col("passed") & (pl.col("severity") == "error"))
    rejected = set(errors.get_column("study_id").to_list())
    first = errors.group_by("study_id", maintain_order=True).first()
    codes = Counter(first.get_column("code").to_list())
    accepted = traces.filter(~pl.col("study_id").is_in(sorted(rejected)))
    decoded = semantics.decode(accepted)
    draft = semantics.draft_items(decoded)
    concl = semantics.draft_conclusions(semantics.reasoning_steps(decoded))
    corr = semantics.corrections(decoded, draft, concl)
    final = semantics.final_perception(draft, corr, semantics.entries_table(kb))
    normal_items = draft.filter(pl.col("finding") == "normal")
    rep = {r["study_id"]: r for r in studies.select(
        "study_id", "findings", "impression", *[c for c in studies.columns if c in ("lung_opacity",)]).to_dicts()}
    labels = {r["study_id"]: r for r in studies.to_dicts()}
    sents = {sid: sentences(f"{r['findings'] or ''} {r['impression'] or ''}") for sid, r in rep.items()}
    stated = abnormal = mesh_total = mesh_ok = upgraded = present = 0
    side_given = side_kept = grade_given = grade_kept = 0
    unsupported_neg = Counter()
    for item in final.to_dicts():
        sid, eid = item["study_id"], item["finding"]
        ss = sents[sid]
        ms = judge.mentions(eid, ss)
        if item["status"] == "absent":
            whole = " ".join(ss)
            glob = _GLOBAL.get(item["region"])
            normal = _NORMAL_OF.get(eid)  # "heart size within normal limits" rules out cardiomegaly
            if not any(neg for _, neg, _ in ms) and not (glob and re.search(glob, whole)) \
                    and not (normal and re.search(normal, whole)):
                unsupported_neg[sid] += 1
            continue
        abnormal += 1
        pos = [m for m in ms if not m[1]]
        stated += bool(pos)
        if item["status"] == "present":
            present += 1
            upgraded += bool(pos) and all(h for _, _, h in pos)
            if DEBUG and pos and all(h for _, _, h in pos):
                print("HEDGED", sid, eid, [s for s, _, _ in pos])
        label = kb.get(eid).chexpert if eid in kb else None
        if label and label not in ("support_devices",):
            mesh_total += 1
            mesh_ok += labels[sid].get(label) in (1, -1)
        sides = {side_of(s) for s, neg, _ in pos} - {None}
        if len(sides) == 1 and kb.get(eid).laterality:
            side_given += 1
            side_kept += item["laterality"] == next(iter(sides))
        # a range ("small to moderate") gives two acceptable grades: an item keeps it with either end
        given = {frozenset(_grades_of(s)) for s, neg, _ in pos} - {frozenset()}
        grades = {g for g in given if g}
        if len(grades) == 1:
            grade_given += 1
            grade_kept += item["severity"] in next(iter(grades))
            if DEBUG and item["severity"] not in next(iter(grades)):
                print("GRADE", eid, item["severity"], grades, [s for s, _, _ in pos])
        if DEBUG and len(sides) == 1 and kb.get(eid).laterality and item["laterality"] != next(iter(sides)):
            print("SIDE", eid, item["laterality"], sides, [s for s, _, _ in pos])
    for item in normal_items.to_dicts():
        sid = item["study_id"]
        whole = " ".join(sents[sid])
        glob = _GLOBAL.get(item["region"])
        spoken = re.search(_REGION_WORDS.get(item["region"], r"(?!x)x"), whole) or (glob and re.search(glob, whole))
        if not spoken and _ASSERTS.search(item["evidence"]):
            unsupported_neg[sid] += 1
    n = accepted.height
    evidences = draft.get_column("evidence").to_list()
    line_traces: dict[str, set] = defaultdict(set)
    all_lines = []
    for sid, tj in zip(accepted["study_id"], accepted["trace_json"], strict=True):
        lines = [ln for ln in render_think(json.loads(tj)).splitlines()
                 if ln.strip() and not ln.endswith(":")]
        all_lines.append(lines)
        for ln in lines:
            line_traces[ln].add(sid)
    total_lines = sum(len(x) for x in all_lines)
    common = sum(1 for lines in all_lines for ln in lines if len(line_traces[ln]) >= 100)
    silent = sum(1 for it in normal_items.to_dicts()
                 if not re.search(_REGION_WORDS.get(it["region"], r"(?!x)x"), " ".join(sents[it["study_id"]]))
                 and _ASSERTS.search(it["evidence"]))
    return {
        "traces": traces.height, "accepted": n, "rejected": len(rejected), "reject_codes": dict(codes.most_common()),
        "abnormal_items": abnormal,
        "stated_share": stated / abnormal if abnormal else float("nan"),
        "mesh_share": mesh_ok / mesh_total if mesh_total else float("nan"), "mesh_items": mesh_total,
        "hedge_upgraded": upgraded, "present_items": present,
        "unsupported_negatives_per_trace": sum(unsupported_neg.values()) / n if n else float("nan"),
        "side_kept": side_kept / side_given if side_given else float("nan"), "side_given": side_given,
        "grade_kept": grade_kept / grade_given if grade_given else float("nan"), "grade_given": grade_given,
        "items": draft.height, "distinct_evidence_per_item": len(set(evidences)) / max(1, len(evidences)),
        "normal_items_for_silent_regions": silent / max(1, draft.height),
        "think_lines_in_100_traces": common / max(1, total_lines),
    }


def render(m: dict) -> str:
    rows = [
        ("traces / accepted / rejected", f"{m['traces']} / {m['accepted']} / {m['rejected']}"),
        ("rejections by first code", ", ".join(f"{k} {v}" for k, v in m["reject_codes"].items()) or "none"),
        ("present/uncertain items whose finding the text states",
         f"{m['stated_share']:.3f} of {m['abnormal_items']}"),
        ("… with a CheXpert label MeSH also calls positive/uncertain", f"{m['mesh_share']:.3f} of {m['mesh_items']}"),
        ("present items whose every mention is hedged", f"{m['hedge_upgraded']} of {m['present_items']}"),
        ("unsupported pertinent negatives per trace", f"{m['unsupported_negatives_per_trace']:.3f}"),
        ("items keeping the side the report gives", f"{m['side_kept']:.3f} of {m['side_given']}"),
        ("items keeping the grade the report gives", f"{m['grade_kept']:.3f} of {m['grade_given']}"),
        ("distinct evidence strings per item", f"{m['distinct_evidence_per_item']:.3f} ({m['items']} items)"),
        ("normal items asserting normality of a region the report never names",
         f"{m['normal_items_for_silent_regions']:.3f}"),
        ("think lines recurring in ≥ 100 traces", f"{m['think_lines_in_100_traces']:.3f}"),
    ]
    width = max(len(a) for a, _ in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="an existing validated run")
    parser.add_argument("--src", type=Path, default=None, help="Kaggle-layout IU-Xray folder")
    parser.add_argument("--out", type=Path, default=None, help="build the run here (kept) instead of a temp folder")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            src = args.src or next((p for p in CANDIDATES if (p / "indiana_reports.csv").is_file()), None)
            if src is None:
                sys.exit("no IU-Xray reports found; pass --src or --run")
            run = build_run(src, args.out or Path(tmp))
        m = measure(run)
    print(json.dumps(m, indent=1) if args.json else render(m))


if __name__ == "__main__":
    main()

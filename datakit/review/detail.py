"""One study's detail for a reviewer: built from the stored rows and the trace semantics, shown with rich.

Every piece of data or file text goes into ``rich.text.Text`` as plain text, never parsed as markup: a reason
that holds ``[a-z]`` shows as written.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from datakit.semantics import entries_table, study_semantics

STATUS_STYLE = {"passed": "green", "rejected": "bold red", "flagged": "yellow", "unvalidated": "dim"}
DECISION_STYLE = {"accept": "bold green", "reject": "bold red", "flag": "bold yellow"}
ITEM_STYLE = {"present": "bold", "uncertain": "yellow", "absent": "dim"}


@dataclass
class StudyDetail:
    """Everything shown about one study: stored rows, decoded trace, its semantics and the reviewer's decision."""

    study_id: str
    status: str
    record: dict[str, Any]  # ReviewData.study(): trace, study, images, validation, knowledge rows
    trace: dict[str, Any] | None
    semantics: dict[str, list[dict[str, Any]]] | None
    decision: dict[str, Any] | None
    entries: dict[str, Any] = field(default_factory=dict)  # cited or retrieved entry id → Entry
    error: str | None = None  # why the trace could not be read

    def raw(self) -> dict[str, Any]:
        """The raw record as JSON-able data (``datakit show --json``)."""
        trace_row = dict(self.record.get("trace") or {})
        trace_row.pop("trace_json", None)
        return {
            "study_id": self.study_id,
            "status": self.status,
            "decision": self.decision,
            "trace": self.trace,
            "trace_row": trace_row,
            "study": self.record.get("study"),
            "images": self.record.get("images"),
            "validation": self.record.get("validation"),
            "knowledge": self.record.get("knowledge"),
            "semantics": self.semantics,
        }

    def cited(self) -> list[str]:
        """Entry ids the reasoning cites, in first-cited order."""
        seen: dict[str, None] = {}
        for step in (self.trace or {}).get("reasoning", []):
            for k in step.get("knowledge", []):
                seen.setdefault(k, None)
        return list(seen)


def build_detail(data: Any, study_id: str, kb: Any, decisions: dict[str, dict[str, Any]] | None = None) -> StudyDetail:
    """Read one study from ``data`` (a ReviewData) and apply the trace semantics to its trace."""
    record = data.study(study_id)
    trace_json = (record.get("trace") or {}).get("trace_json")
    trace = sem = None
    error = None
    try:
        trace = json.loads(trace_json) if trace_json else None
        if trace is not None:
            sem = study_semantics(study_id, trace_json, _entries(kb))
    except Exception as err:  # a malformed trace is shown as such, never a crash of the viewer
        error = f"{err.__class__.__name__}: {str(err).splitlines()[0][:300]}"
    ids = set(h["entry_id"] for h in record.get("knowledge") or [])
    for step in (trace or {}).get("reasoning", []) if isinstance(trace, dict) else []:
        ids.update(step.get("knowledge", []) or [])
    entries = {i: kb.entries[i] for i in ids if i in kb.entries}
    return StudyDetail(study_id, record["status"], record, trace if isinstance(trace, dict) else None, sem,
                       (decisions or {}).get(study_id), entries, error)


# the knowledge base as a table, made once per knowledge base (the app shows many studies with one)
_ENTRY_TABLES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _entries(kb: Any) -> Any:
    if kb not in _ENTRY_TABLES:
        _ENTRY_TABLES[kb] = entries_table(kb)
    return _ENTRY_TABLES[kb]


# sections ------------------------------------------------------------------------------------------------
def _state(status: Any, laterality: Any, severity: Any) -> str:
    parts = [str(status)]
    if laterality and laterality != "none":
        parts.append(str(laterality))
    if severity:
        parts.append(str(severity))
    return ", ".join(parts)


def header(d: StudyDetail) -> Text:
    """Study id, split, teacher, validation status and decision."""
    study = d.record.get("study") or {}
    row = d.record.get("trace") or {}
    t = Text()
    t.append(f"Study {d.study_id}", style="bold")
    for key, value in (("dataset", study.get("dataset")), ("split", study.get("split")),
                       ("subject", study.get("subject_id")), ("teacher", row.get("teacher")),
                       ("model", row.get("model")), ("injected", row.get("injected_error"))):
        if value:
            t.append(f"  {key} ").append(str(value), style="cyan")
    t.append("\nvalidation ").append(d.status, style=STATUS_STYLE.get(d.status, ""))
    t.append("   review ")
    if d.decision:
        t.append(d.decision["decision"], style=DECISION_STYLE.get(d.decision["decision"], ""))
        t.append(f" by {d.decision.get('reviewer')} at {d.decision.get('time')}", style="dim")
        if d.decision.get("note"):
            t.append("\nnote: ", style="bold").append(str(d.decision["note"]))
    else:
        t.append("not decided", style="dim")
    if d.error:
        t.append("\ntrace cannot be read: ", style="bold red").append(d.error)
    return t


def images_text(d: StudyDetail) -> Text:
    """The study's images: view, size and the converted file (for a print; the app draws them)."""
    t = Text()
    for img in d.record.get("images") or []:
        size = f"{img['width']}×{img['height']}" if img.get("width") else "not converted"
        t.append(f"{img.get('view') or '?':8}", style="bold").append(f" {size:10} ")
        t.append(str(img.get("converted_path") or img.get("source_path") or ""), style="dim").append("\n")
    if not t:
        t.append("no images", style="dim")
    t.rstrip()
    return t


def report_and_labels(d: StudyDetail) -> Text:
    """The final report of the trace, the study's source report sections where they differ, and its labels."""
    from datakit.vocabulary import LABELS

    t = Text()
    report = (d.trace or {}).get("report") or {}
    study = d.record.get("study") or {}
    for key in ("findings", "impression"):
        t.append(f"{key.upper()}: ", style="bold").append(str(report.get(key) or "—")).append("\n")
    if study.get("indication"):
        t.append("INDICATION: ", style="bold dim").append(str(study["indication"]), style="dim").append("\n")
    groups = {"positive": [], "uncertain": [], "negative": []}
    for col, name in LABELS.items():
        v = study.get(col)
        if v == 1:
            groups["positive"].append(name)
        elif v == -1:
            groups["uncertain"].append(name)
        elif v == 0:
            groups["negative"].append(name)
    src = study.get("label_source")
    t.append("labels" + (f" ({src})" if src else "") + ": ", style="bold")
    if not any(groups.values()):
        t.append("none", style="dim")
    for kind, style in (("positive", "bold magenta"), ("uncertain", "yellow"), ("negative", "dim")):
        if groups[kind]:
            t.append(f"{kind} ", style=style).append(", ".join(groups[kind])).append("  ")
    t.rstrip()
    return t


def checks(d: StudyDetail) -> Text:
    """Failed checks first (errors red, warnings yellow) with their messages, then the ones passed."""
    rows = d.record.get("validation") or []
    t = Text()
    if not rows:
        return t.append("not validated (run `datakit validate`)", style="dim")
    failed = [r for r in rows if not r["passed"]]
    for r in sorted(failed, key=lambda r: r["severity"] != "error"):
        style = "bold red" if r["severity"] == "error" else "bold yellow"
        t.append(f"✗ {r['check']}.{r['code']} ({r['severity']})", style=style).append("\n")
        t.append(f"  {r['message']}").append("\n")
    passed = [r["check"] for r in rows if r["passed"]]
    if passed:
        t.append("✓ passed: ", style="green").append(", ".join(passed))
    t.rstrip()
    return t


def perception(d: StudyDetail) -> Text:
    """The draft perception by region; items the reflection changed show their final state after an arrow."""
    t = Text()
    items = (d.trace or {}).get("perception") or []
    sem = d.semantics or {}
    final_by_item = {f["item"]: f for f in sem.get("final", []) if f.get("item") is not None}
    added = [f for f in sem.get("final", []) if f.get("source") == "added"]
    regions: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for i, item in enumerate(items):
        regions.setdefault(str(item.get("region")), []).append((i, item))
    for f in added:
        regions.setdefault(str(f.get("region") or "unplaced"), [])
    for region, members in regions.items():
        t.append(region.replace("_", " "), style="bold underline").append("\n")
        for i, item in members:
            finding = str(item.get("finding"))
            if finding == "normal":
                t.append("  normal: ", style="green").append(str(item.get("evidence", ""))).append("\n")
                continue
            state = _state(item.get("status"), item.get("laterality"), item.get("severity"))
            t.append(f"  {finding} ", style=ITEM_STYLE.get(str(item.get("status")), "")).append(f"({state})")
            fin = final_by_item.get(i)
            if fin and fin.get("source") == "corrected":
                t.append(" → ", style="bold").append(_state(fin["status"], fin["laterality"], fin["severity"]),
                                                      style="bold cyan")
            elif fin is None and sem:
                t.append(" → removed", style="bold cyan")
            t.append(": ").append(str(item.get("evidence", "")), style="italic").append("\n")
        for f in added:
            if str(f.get("region") or "unplaced") == region:
                t.append(f"  + {f['finding']} ", style="bold cyan").append(
                    f"({_state(f['status'], f['laterality'], f['severity'])}, added by the reflection)\n")
    t.rstrip()
    return t


def reasoning(d: StudyDetail) -> Text:
    """Each reasoning step: observation, inference, conclusion and the knowledge it cites."""
    t = Text()
    for n, step in enumerate((d.trace or {}).get("reasoning") or [], 1):
        t.append(f"{n}. ", style="bold").append(str(step.get("observation", ""))).append("\n")
        t.append("   → ").append(str(step.get("inference", ""))).append("\n")
        t.append("   concludes ").append(str(step.get("conclusion")), style="bold")
        t.append(f" ({step.get('status')})")
        cites = step.get("knowledge") or []
        if cites:
            t.append("  cites ").append(", ".join(cites), style="cyan")
            unknown = [c for c in cites if c not in d.entries]
            if unknown:
                t.append("  not in the knowledge base: " + ", ".join(unknown), style="bold red")
        t.append("\n")
    t.rstrip()
    return t


def reflection(d: StudyDetail) -> Text:
    """What was re-checked, each correction as before → after with its note, the summary, final conclusions."""
    refl = (d.trace or {}).get("reflection") or {}
    t = Text()
    if refl.get("checked"):
        t.append("checked: ", style="bold").append("; ".join(map(str, refl["checked"]))).append("\n")
    corrections = (d.semantics or {}).get("corrections") or []
    if not corrections:
        t.append("no corrections\n", style="dim")
    for c in corrections:
        t.append(f"• {c['kind']} ", style="bold").append(str(c["finding"]), style="bold").append(": ")
        t.append(_state(c["before_status"], c["before_laterality"], c["before_severity"]), style="red")
        t.append(" → ").append(_state(c["after_status"], c["after_laterality"], c["after_severity"]), style="green")
        if not c.get("matched"):
            t.append(f"  (before is not in the draft: it has {c.get('draft_state')})", style="bold red")
        t.append("\n  ").append(str(c.get("note", "")), style="italic").append("\n")
    if refl.get("summary"):
        t.append("summary: ", style="bold").append(str(refl["summary"])).append("\n")
    concl = [c for c in (d.semantics or {}).get("conclusions", []) if c["status"] != "absent"]
    if d.semantics is not None:
        t.append("final conclusions: ", style="bold")
        t.append(", ".join(f"{c['finding']} ({c['status']}{', corrected' if c['source'] == 'corrected' else ''})"
                           for c in concl) or "nothing abnormal")
    t.rstrip()
    return t


def knowledge(d: StudyDetail) -> Text:
    """The entries retrieved for the study, with why."""
    t = Text()
    for h in d.record.get("knowledge") or []:
        name = d.entries[h["entry_id"]].name if h["entry_id"] in d.entries else "?"
        t.append(f"{h['rank']:>2}. {h['entry_id']}", style="cyan").append(f" {name} ", style="dim")
        t.append(f"({h['reason']}, {h['score']:.2f})\n", style="dim")
    if not t:
        t.append("nothing retrieved", style="dim")
    t.rstrip()
    return t


def entry_view(entry: Any) -> Text:
    """One knowledge entry as a reviewer checks a citation: definition, signs, differential, pitfalls."""
    t = Text()
    t.append(f"{entry.name} ", style="bold").append(f"({entry.id})", style="dim").append("\n")
    t.append(f"region {entry.region or '—'}  label {entry.chexpert or '—'}  {entry.origin}\n", style="dim")
    t.append("\n").append(entry.definition.strip()).append("\n")
    for title, items in (("Signs", entry.signs), ("Differential", entry.differential), ("Pitfalls", entry.pitfalls)):
        if items:
            t.append(f"\n{title}\n", style="bold")
            for item in items:
                t.append(f"  • {item}\n")
    t.rstrip()
    return t


SECTIONS = (("Images", images_text), ("Report and labels", report_and_labels), ("Checks", checks),
            ("Perception (draft) by region", perception), ("Reasoning", reasoning),
            ("Reflection", reflection), ("Knowledge retrieved", knowledge))


def section_panel(title: str, body: RenderableType, style: str = "blue") -> Panel:
    """A titled box around one section."""
    return Panel(body, title=Text(title, style="bold"), title_align="left", border_style=style)


def render_detail(d: StudyDetail) -> Group:
    """The whole detail as one rich renderable (``datakit show``)."""
    parts: list[RenderableType] = [header(d)]
    for title, make in SECTIONS:
        style = "red" if title == "Checks" and d.status == "rejected" else (
            "yellow" if title == "Checks" and d.status == "flagged" else "blue")
        parts.append(section_panel(title, make(d), style))
    return Group(*parts)

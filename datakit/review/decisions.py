"""A reviewer's decisions on traces: appended to ``RUN/review/decisions.jsonl``, the last one per study wins.

Each line is ``{"study_id", "decision", "note", "time", "reviewer"}``; ``decision`` is accept, reject or flag,
``time`` UTC ISO-8601, ``reviewer`` ``$USER``. A line is written, flushed and fsynced the moment it is made, so a
terminal that dies loses nothing. No Textual here: export reads decisions without the review extra.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datakit.errors import DatakitError
from datakit.rundir import RunDir, utc_now

DECISIONS = ("accept", "reject", "flag")
DECISIONS_FILE = "review/decisions.jsonl"


class DecisionError(DatakitError):
    """A decision that cannot be recorded (unknown kind, empty study id)."""


def decisions_path(run: RunDir | str | Path) -> Path:
    """Where a run's decisions are kept."""
    root = run.root if isinstance(run, RunDir) else Path(run)
    return root / DECISIONS_FILE


def reviewer() -> str:
    """Who is reviewing: ``$USER``, else the login name the system knows."""
    name = os.environ.get("USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass
class DecisionFile:
    """The decisions read back: the records in order, and the lines that could not be read (with why)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)

    def latest(self) -> dict[str, dict[str, Any]]:
        """study_id → its last decision."""
        out: dict[str, dict[str, Any]] = {}
        for rec in self.records:
            out[rec["study_id"]] = rec
        return out


def _check(rec: Any) -> str | None:
    """Why a read-back line is not a decision, or None."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if not isinstance(rec.get("study_id"), str) or not rec["study_id"]:
        return "no study_id"
    if rec.get("decision") not in DECISIONS:
        return f"decision {rec.get('decision')!r} is not one of {', '.join(DECISIONS)}"
    return None


def read_decisions(run: RunDir | str | Path) -> DecisionFile:
    """Every decision of the run in the order made; unreadable lines (a torn last line) kept aside with why."""
    path = decisions_path(run)
    out = DecisionFile()
    if not path.is_file():
        return out
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                out.bad_lines.append((number, f"not JSON ({err.msg})"))
                continue
            why = _check(rec)
            if why:
                out.bad_lines.append((number, why))
            else:
                out.records.append(rec)
    return out


def latest_decisions(run: RunDir | str | Path) -> dict[str, dict[str, Any]]:
    """study_id → the last decision made on it (what export honours)."""
    return read_decisions(run).latest()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


class DecisionLog:
    """Appends decisions to a run's decisions file, each one on disk before :meth:`record` returns."""

    def __init__(self, run: RunDir | str | Path, who: str | None = None) -> None:
        self.path = decisions_path(run)
        self.reviewer = who or reviewer()
        self.latest = latest_decisions(run)

    def record(self, study_id: str, decision: str, note: str | None = None) -> dict[str, Any]:
        """Append one decision, flushed and fsynced; it becomes the study's latest."""
        if decision not in DECISIONS:
            raise DecisionError(
                f"decision {decision!r} is not one of {', '.join(DECISIONS)}", hint="use accept, reject or flag"
            )
        if not study_id:
            raise DecisionError("a decision needs a study id", hint="pick a study first")
        rec = {
            "study_id": study_id,
            "decision": decision,
            "note": note.strip() if note and note.strip() else None,
            "time": utc_now(),
            "reviewer": self.reviewer,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(rec, ensure_ascii=False) + "\n"
        with open(self.path, "ab") as fh:
            # a line torn by a crash must not swallow this one: start on a fresh line
            if fh.tell() and not _ends_with_newline(self.path):
                line = "\n" + line
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        self.latest[study_id] = rec
        return rec

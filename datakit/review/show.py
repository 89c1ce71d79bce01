"""``datakit show``: one study's detail printed once with rich, or its raw record as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from datakit.review.data import ReviewData
from datakit.review.decisions import latest_decisions
from datakit.review.detail import StudyDetail, build_detail, render_detail
from datakit.rundir import RunDir


def load(run: RunDir | str | Path, study_id: str, config: Any = None) -> StudyDetail:
    """One study's detail, its knowledge base from ``config`` (a config or a file; default the run's own)."""
    from datakit.config import resolve_config
    from datakit.knowledge import load_configured

    rd = run if isinstance(run, RunDir) else RunDir.open(run)
    cfg = resolve_config(rd.config_path, config)
    return build_detail(ReviewData(rd), study_id, load_configured(cfg), latest_decisions(rd))


def to_json(detail: StudyDetail) -> str:
    """The raw record, indented JSON."""
    return json.dumps(detail.raw(), indent=2, ensure_ascii=False, default=str)


def to_text(detail: StudyDetail, width: int = 100) -> str:
    """The detail as plain text of a given width (no colour): what a log or ``less`` gets."""
    console = Console(width=width, color_system=None, force_terminal=False, record=True, file=open("/dev/null", "w"))
    console.print(render_detail(detail))
    return console.export_text()


def print_detail(detail: StudyDetail, console: Console) -> None:
    """Print the detail through ``console`` (colour where it is a terminal)."""
    console.print(render_detail(detail))

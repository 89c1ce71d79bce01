"""``datakit show``: the detail printed once as text (a golden file), the raw record as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from datakit.cli.app import app
from datakit.decisions import DecisionLog
from datakit.review import show
from tests.review.conftest import FLAGGED, REJECTED

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "show_rejected.txt"


def _show(monkeypatch, *args: str) -> str:
    """``datakit show`` as a user runs it, through a plain 100-column console."""
    import datakit.cli.review

    monkeypatch.setattr(datakit.cli.review, "console", Console(width=100, color_system=None, force_terminal=False))
    result = CliRunner().invoke(app, ["show", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_show_prints_the_detail_as_the_golden_file(review_run, monkeypatch):
    out = _show(monkeypatch, "--run", str(review_run), REJECTED)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(out, encoding="utf-8")
    assert out == GOLDEN.read_text(encoding="utf-8")


def test_data_text_that_looks_like_markup_prints_as_written(review_run, monkeypatch):
    out = _show(monkeypatch, "--run", str(review_run), REJECTED)
    assert "As the ground truth says, [a-z] [bold]marks[/bold] stay text." in out  # the reflection's summary
    # the message (its head is the offline teacher's summary, redone on the corrected findings since issue 15)
    assert '"…pulmonary abnormality. As the ground truth says, [a-z] [bold]marks[/bold…"' in out
    assert "leakage.leaked_source (error)" in out and "validation rejected" in out
    # the reflection's correction, before → after, and the retrieved knowledge
    # a false finding the report rules out (issue 15: "no pneumothorax"; "no focal consolidation" rules out only a
    # focal one, so consolidation is not offered as the false finding)
    assert "hallucinated pneumothorax: present, right → absent" in out


def test_show_gives_the_latest_decision(review_run, monkeypatch):
    log = DecisionLog(review_run, "ana")
    log.record(FLAGGED, "accept")
    log.record(FLAGGED, "flag", "prior [sic] comparison")
    out = _show(monkeypatch, "--run", str(review_run), FLAGGED)
    assert "review flag by ana" in out and "note: prior [sic] comparison" in out
    assert "leakage.prior_reference (warning)" in out


def test_json_is_the_raw_record(review_run, monkeypatch):
    out = _show(monkeypatch, "--run", str(review_run), REJECTED, "--json")
    rec = json.loads(out)
    assert rec["study_id"] == REJECTED and rec["status"] == "rejected" and rec["decision"] is None
    assert rec["trace"]["reflection"]["summary"].endswith("[a-z] [bold]marks[/bold] stay text.")
    assert "trace_json" not in rec["trace_row"] and rec["trace_row"]["teacher"] == "offline"
    assert [r["code"] for r in rec["validation"] if not r["passed"]] == ["leaked_source"]
    assert rec["semantics"]["corrections"][0]["matched"] is True
    assert rec == json.loads(show.to_json(show.load(review_run, REJECTED)))


def test_an_unknown_study_is_an_error_with_a_hint(review_run):
    result = CliRunner().invoke(app, ["show", "--run", str(review_run), "s_nope"])
    assert result.exit_code == 1
    assert "has no trace for study 's_nope'" in result.output and "Hint:" in result.output


def test_a_trace_that_is_not_json_is_shown_as_such(review_run, monkeypatch):
    import polars as pl

    from datakit.rundir import RunDir

    rd = RunDir(review_run)
    traces = rd.read_table("traces").with_columns(
        pl.when(pl.col("study_id") == FLAGGED).then(pl.lit('{"perception": [')).otherwise(pl.col("trace_json"))
        .alias("trace_json"))
    rd.write_table("traces", traces)
    out = _show(monkeypatch, "--run", str(review_run), FLAGGED)
    assert "trace cannot be read: JSONDecodeError" in out and "Report and labels" in out

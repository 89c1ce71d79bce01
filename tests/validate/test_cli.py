"""``datakit validate``: exit codes, --json, the gate and messages for bad input."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from datakit.cli.app import app
from tests.validate.bad_traces import CASES, GOOD
from tests.validate.builders import Corpus

BAD = {sid: kw for sid, _, _, kw in CASES}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def run_dir(tmp_path):
    corpus = Corpus()
    for sid, kw in GOOD[:3]:
        corpus.add(sid, **kw)
    corpus.add("l_source", **BAD["l_source"])
    run = corpus.write(tmp_path / "run")
    # keep the CLI tests about the CLI: the template-like test traces would all be near-duplicates
    (run.root / "datakit.toml").write_text('[validate]\nskip = ["diversity"]\n')
    return run


def test_json_summary_for_scripts(runner, run_dir):
    result = runner.invoke(app, ["validate", "--run", str(run_dir.root), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["traces"], summary["passed"], summary["rejected"]) == (4, 3, 1)
    leakage = next(c for c in summary["checks"] if c["check"] == "leakage")
    assert leakage["codes"] == {"leaked_source": 1}
    assert leakage["examples"][0]["study_id"] == "l_source"
    assert pl.read_parquet(run_dir.table_path("validation")).height == 4 * len(summary["checks"])


def test_rich_summary_names_checks_and_examples(runner, run_dir):
    result = runner.invoke(app, ["validate", "--run", str(run_dir.root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Validated 4 traces" in result.output
    for name in ("schema", "clinical", "knowledge", "reflection", "leakage", "privacy", "form"):
        assert name in result.output
    assert "leaked_source" in result.output and "l_source" in result.output


def test_gate_exits_4_after_printing(runner, run_dir):
    result = runner.invoke(app, ["validate", "--run", str(run_dir.root), "--min-pass-rate", "0.9", "--json"])
    assert result.exit_code == 4
    summary = json.loads(result.stdout)
    assert summary["gate"] == "failed" and summary["min_pass_rate"] == 0.9
    assert "Error: 75.0% of traces passed validation, below the gate of 90.0%" in result.stderr
    ok = runner.invoke(app, ["validate", "--run", str(run_dir.root), "--min-pass-rate", "0.75"])
    assert ok.exit_code == 0


def test_run_without_traces(runner, run_dir):
    run_dir.table_path("traces").unlink()
    result = runner.invoke(app, ["validate", "--run", str(run_dir.root)])
    assert result.exit_code == 1
    assert "has no traces.parquet: there is nothing to validate" in result.stderr
    assert f"Hint: write traces first: `datakit annotate --run {run_dir.root}`" in result.stderr


def test_old_schema_version(runner, run_dir):
    old = pl.read_parquet(run_dir.table_path("traces")).with_columns(pl.lit("trace.v0").alias("schema_id"))
    run_dir.write_table("traces", old)
    result = runner.invoke(app, ["validate", "--run", str(run_dir.root)])
    assert result.exit_code == 1
    assert "traces were written with schema 'trace.v0'; this datakit reads 'trace.v1'" in result.stderr


def test_missing_run_dir_and_bad_gate(runner, tmp_path):
    result = runner.invoke(app, ["validate", "--run", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.stderr
    result = runner.invoke(app, ["validate", "--run", str(tmp_path), "--min-pass-rate", "1.5"])
    assert result.exit_code == 2


def test_help_lists_the_options(runner):
    result = runner.invoke(app, ["validate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--run", "--min-pass-rate", "--json", "--workers", "--config"):
        assert option in result.output

"""A validated demo run for review: the shared demo run, annotated, with one rejected and one flagged trace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from datakit.rundir import RunDir

# the study whose trace is made to fail: the offline teacher corrects a hallucinated finding in it
REJECTED = "50015438"
# ... and the one made to warn
FLAGGED = "50725264"


def _tamper(run: Path) -> None:
    """Give one trace a leaked-source phrase (with text that looks like markup) and one a prior reference."""
    path = run / "traces.parquet"
    traces = pl.read_parquet(path)

    def edit(study_id: str, change) -> str:
        row = traces.filter(pl.col("study_id") == study_id)["trace_json"][0]
        trace = json.loads(row)
        change(trace)
        return json.dumps(trace, ensure_ascii=False, separators=(",", ":"))

    def leak(t):
        t["reflection"]["summary"] += " As the ground truth says, [a-z] [bold]marks[/bold] stay text."

    def prior(t):
        t["perception"][0]["evidence"] = "Compared with the prior study, the trachea is midline."

    new = {REJECTED: edit(REJECTED, leak), FLAGGED: edit(FLAGGED, prior)}
    traces = traces.with_columns(
        pl.col("study_id").replace_strict(new, default=pl.col("trace_json"), return_dtype=pl.Utf8).alias("trace_json")
    )
    RunDir(run).write_table("traces", traces)


@pytest.fixture(scope="session")
def _review_run_base(_demo_run_base, tmp_path_factory) -> Path:
    import datakit.annotate
    import datakit.validate
    from datakit.config import resolve_config

    dest = tmp_path_factory.mktemp("review") / "run"
    shutil.copytree(_demo_run_base, dest)
    rd = RunDir.open(dest)
    cfg = resolve_config(rd.config_path)
    datakit.annotate.run(rd, cfg, progress=False)
    # these tests want exactly one rejected and one flagged trace: the priors check (it flags the demo reports' own
    # comparisons with earlier studies) and faithfulness's unsupported-negative warning (it reads "no large
    # effusion" and "no acute cardiopulmonary process" more strictly than the teacher's coverage does) are off
    cfg = resolve_config(rd.config_path, overrides={"validate.skip": ["priors"],
                                                    "validate.severity": {"unsupported_negative": "off"}})
    _tamper(dest)
    datakit.validate.run(rd, cfg)
    return dest


@pytest.fixture
def review_run(_review_run_base, tmp_path) -> Path:
    """A fresh copy of the validated demo run (no decisions yet) for one test."""
    dest = tmp_path / "review-run"
    shutil.copytree(_review_run_base, dest)
    return dest

"""A stage never goes on from tables that were rewritten under it: validate after a new ingest or retrieve."""

from __future__ import annotations

import pytest

import datakit.annotate
import datakit.ingest
import datakit.retrieve
import datakit.validate
from datakit.config import load_config
from datakit.errors import RunDirError
from datakit.rundir import RunDir
from tests.annotate.run_fixture import REPO


def _reingest(run, limit: int) -> None:
    cfg = load_config(overrides={"ingest.limit": limit, "ingest.images.max_size": 64})
    datakit.ingest.run(REPO / "examples/demo/mimic-cxr", run, cfg, replace=True)


def test_validate_refuses_traces_written_from_studies_ingested_again(demo_run):
    datakit.annotate.run(demo_run, load_config())
    assert datakit.validate.run(demo_run).summary["traces"] == 26
    _reingest(demo_run, 5)
    with pytest.raises(RunDirError) as err:
        datakit.validate.run(demo_run)
    assert "studies.parquet changed after `datakit retrieve`" in str(err.value)
    assert "datakit retrieve" in err.value.hint
    datakit.retrieve.run(demo_run, load_config())
    with pytest.raises(RunDirError) as err:
        datakit.validate.run(demo_run)
    assert "changed after `datakit annotate`" in str(err.value)
    datakit.annotate.run(demo_run, load_config())
    assert datakit.validate.run(demo_run).summary["traces"] == 5


def test_validate_refuses_hits_retrieved_again_after_annotate(demo_run):
    cfg = load_config()
    datakit.annotate.run(demo_run, cfg)
    datakit.retrieve.run(demo_run, load_config(overrides={"knowledge.top_k": 3}))
    with pytest.raises(RunDirError) as err:
        datakit.validate.run(demo_run)
    assert "knowledge.parquet changed after `datakit annotate`" in str(err.value)
    datakit.annotate.run(demo_run, cfg)
    assert datakit.validate.run(demo_run).summary["traces"] == 26


def test_validate_records_the_tables_it_read(demo_run):
    datakit.annotate.run(demo_run, load_config())
    datakit.validate.run(demo_run)
    stage = RunDir.open(demo_run).manifest()["stages"]["validate"]
    assert set(stage["inputs"]) == {"traces", "studies", "images", "knowledge"}
    assert all(stage["inputs"].values())

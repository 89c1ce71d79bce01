"""A build skips what is up to date (by content, so copies of a run too) and reruns what a change affects."""

from __future__ import annotations

import shutil
import tarfile

import pytest

import datakit.pipeline
from tests.pipeline.conftest import snapshot, write_config


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path / "datakit.toml", run=tmp_path / "run")


def statuses(result) -> dict[str, str]:
    return {s.name: s.status for s in result.stages}


def test_a_rerun_skips_every_stage_and_changes_nothing(config):
    first = datakit.pipeline.build(config, progress=False)
    assert set(statuses(first).values()) == {"ran"}
    before = snapshot(first.plan.run.root)
    again = datakit.pipeline.build(config, progress=False)
    assert statuses(again) == dict.fromkeys(datakit.pipeline.STAGES, "skipped")
    assert snapshot(again.plan.run.root) == before


def test_one_setting_reruns_only_the_stages_it_affects(config, tmp_path):
    datakit.pipeline.build(config, progress=False)
    text = config.read_text() + '\n[export]\ntag_style = "thought"\n'
    config.write_text(text)
    changed = datakit.pipeline.build(config, progress=False)
    assert statuses(changed) == {"ingest": "skipped", "retrieve": "skipped", "annotate": "skipped",
                                 "validate": "skipped", "export": "ran"}
    config.write_text(text + "\n[teacher]\nerror_rate = 0.5\n")
    changed = datakit.pipeline.build(config, progress=False)
    assert statuses(changed) == {"ingest": "skipped", "retrieve": "skipped", "annotate": "ran",
                                 "validate": "ran", "export": "ran"}


def test_from_and_only_run_part_of_it_again(config):
    datakit.pipeline.build(config, progress=False)
    part = datakit.pipeline.build(config, progress=False, from_stage="validate")
    assert statuses(part) == {"validate": "ran", "export": "ran"}
    one = datakit.pipeline.build(config, progress=False, only="retrieve")
    assert statuses(one) == {"retrieve": "ran"}


@pytest.mark.parametrize("how", ["cp -r", "tar"])
def test_a_copied_run_builds_on_as_if_it_had_not_been(config, tmp_path, how):
    datakit.pipeline.build(config, progress=False)
    copy = tmp_path / "copy"
    if how == "cp -r":
        shutil.copytree(tmp_path / "run", copy)
    else:
        with tarfile.open(tmp_path / "run.tar", "w") as tar:
            tar.add(tmp_path / "run", arcname="copy")
        shutil.rmtree(tmp_path / "run")  # the original is gone: only the unpacked copy is left
        with tarfile.open(tmp_path / "run.tar") as tar:
            tar.extractall(tmp_path, filter="data")
    again = datakit.pipeline.build(config, progress=False, run=copy)
    assert statuses(again) == {"ingest": "skipped", "retrieve": "skipped", "annotate": "skipped",
                               "validate": "skipped", "export": "skipped"}

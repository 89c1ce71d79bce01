"""An interrupted build (kill -9 during annotate or export, Ctrl-C) resumes to the outputs of an uninterrupted one,
and never asks the teacher again what it answered."""

from __future__ import annotations

import shutil
import signal
import time

import pytest

from datakit.annotate.cache import Cache
from tests.pipeline.conftest import datakit_child, llm_teacher, snapshot, wait_for, write_config


def build_args(config, *more):
    return ["build", str(config), "--no-progress", *more]


@pytest.fixture
def llm_build(tmp_path, server):
    """(config, run, the uninterrupted build's files and request count); the run folder is empty again."""
    run = tmp_path / "run"
    config = write_config(tmp_path / "datakit.toml", run=run, extra=llm_teacher(server.base_url))
    child = datakit_child(*build_args(config))
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    reference = snapshot(run)
    n = len(server.chat_requests())
    assert n == 26 and "export/trl/train.jsonl" in reference
    assert "requests: 26 made, 0 from the cache, 0 failed" in out
    shutil.rmtree(run)
    server.log.clear()
    return config, run, reference, n


def stored_answers(run) -> int:
    with Cache(run / "cache.sqlite") as cache:
        return cache.count()


def test_kill_9_during_annotate_then_resume_is_identical_and_asks_nothing_twice(llm_build, server):
    config, run, reference, n = llm_build
    child = datakit_child(*build_args(config))
    wait_for(lambda: len(server.chat_requests(answered=True)) >= 8)
    child.kill()  # SIGKILL: no handler runs, nothing is flushed
    child.wait(timeout=30)
    assert not (run / "traces.parquet").exists()
    stored = stored_answers(run)
    assert stored >= 1
    sent_before = len(server.chat_requests())

    resumed = datakit_child(*build_args(config))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert len(server.chat_requests()) - sent_before == n - stored  # only what the cache does not hold
    assert f"requests: {n - stored} made, {stored} from the cache, 0 failed" in out
    assert snapshot(run) == reference


def test_kill_9_during_export_then_resume_is_identical(llm_build, server):
    config, run, reference, n = llm_build
    child = datakit_child(*build_args(config))
    wait_for(lambda: (run / ".export.partial").is_dir(), timeout=300)
    time.sleep(0.3)
    child.kill()
    child.wait(timeout=30)
    assert not (run / "export" / "trl").exists() or (run / "export") != reference  # the export never finished
    resumed = datakit_child(*build_args(config))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert len(server.chat_requests()) == n  # the killed build had asked everything; the resumed one nothing
    assert "ingest: unchanged" in err and "annotate: unchanged" in err
    assert snapshot(run) == reference


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_the_resume_finishes(llm_build, server):
    config, run, reference, n = llm_build
    child = datakit_child(*build_args(config))
    wait_for(lambda: len(server.chat_requests(answered=True)) >= 5)
    child.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _, err = child.communicate(timeout=30)
    took = time.monotonic() - t0
    assert took < 5.0, took
    assert child.returncode == 130
    assert "Interrupted." in err and "finished stages are not redone" in err and "Traceback" not in err
    assert f"datakit build {config} --no-progress" in err
    status = datakit_child("status", str(run))
    out, _ = status.communicate(timeout=60)
    assert "not run yet" in out
    resumed = datakit_child(*build_args(config))
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert snapshot(run) == reference

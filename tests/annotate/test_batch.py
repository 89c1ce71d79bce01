"""The Batch API transport: submit, save before polling, resume after a kill, merge, resubmit, cancel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from datakit.annotate.batch import BATCHES_FILE, cancel_batches, load_batches
from datakit.annotate.cache import Cache
from datakit.annotate.engine import run_requests
from datakit.config import DatakitConfig, PriceConfig, dump_config
from datakit.errors import ConfigError
from datakit.rundir import RunDir
from tests.annotate.transport_helpers import config_for, make_requests, parse_answer
from tests.fakes.openai_server import FakeOpenAI, Reply

REPO = Path(__file__).resolve().parents[2]
HELPER = "tests.annotate.transport_helpers"


def _alive(child, deadline):
    return child.poll() is None and time.monotonic() < deadline


@pytest.fixture
def run(tmp_path):
    return RunDir.create(tmp_path / "run")


def _batch(requests, run, config, parse=parse_answer):
    with Cache(run.cache_path) as cache:
        return run_requests(requests, cache=cache, config=config, parse=parse, transport="batch", run=run,
                            progress=False)  # fmt: skip


def _input_keys(server, batch):
    content = server.files[batch["input_file_id"]]["content"].decode()
    return [json.loads(line)["custom_id"] for line in content.splitlines()]


def test_batch_lifecycle_and_a_second_run_sends_nothing(run):
    prices = {"teacher-m": PriceConfig(input_per_mtok=2.0, output_per_mtok=10.0)}
    with FakeOpenAI() as server:
        requests = make_requests(5)
        results = _batch(requests, run, config_for(server.base_url, prices=prices))
        assert all(r.ok for r in results) and all(not r.cached and r.attempts == 1 for r in results)
        (upload,) = server.requests_to("POST", "/files")
        assert b'name="purpose"' in upload.body and b"batch" in upload.body
        (created,) = server.requests_to("POST", "/batches")
        assert created.body["endpoint"] == "/v1/chat/completions"
        assert created.body["completion_window"] == "24h"
        (batch,) = server.batches.values()
        lines = [json.loads(x) for x in server.files[batch["input_file_id"]]["content"].decode().splitlines()]
        assert [x["custom_id"] for x in lines] == [r.key for r in requests]
        assert [x["body"] for x in lines] == [r.body for r in requests]
        assert lines[0]["url"] == "/v1/chat/completions"
        assert server.chat_requests() == []
        saved = load_batches(run)
        assert (saved[0]["id"], saved[0]["merged"]) == (batch["id"], True)
        assert saved[0]["keys"] == [r.key for r in requests]
        with Cache(run.cache_path) as cache:
            row = cache.row(requests[0].key)
        assert row["response_json"] and row["error"] is None and row["study_id"] == "s0"
        online = (row["input_tokens"] * 2 + row["output_tokens"] * 10) / 1e6
        assert results[0].cost_usd == pytest.approx(online * 0.5)  # the Batch API's discount
        before = len(server.log)
        again = _batch(requests, run, config_for(server.base_url))
        assert all(r.ok and r.cached for r in again) and len(server.log) == before


def test_reasks_after_a_batch_go_online(run):
    with FakeOpenAI() as server:
        server.script(Reply(content="not json"))
        results = _batch(make_requests(3), run, config_for(server.base_url))
        assert all(r.ok for r in results)
        assert len(server.batches) == 1 and len(server.chat_requests()) == 1
        assert sum(len(r.keys) for r in results) == 4


def test_batches_are_split_by_size(run):
    with FakeOpenAI() as server:
        results = _batch(make_requests(5), run, config_for(server.base_url, batch_max_requests=2))
        assert all(r.ok for r in results)
        assert [len(_input_keys(server, b)) for b in server.batches.values()] == [2, 2, 1]


def test_resume_after_the_process_is_killed_polls_instead_of_resubmitting(run):
    with FakeOpenAI(batch_mode="hold") as server:
        cmd = [sys.executable, "-m", HELPER, "batch", str(run.root), server.base_url, "4"]
        child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            # wait until it polls: by then the batch is created and its id saved
            while not server.requests_to("GET", "/batches/") and _alive(child, deadline):
                time.sleep(0.01)
            assert child.poll() is None, "the batch run ended before it could be killed"
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=10)
        (batch_id,) = server.batches
        assert [b["id"] for b in load_batches(run)] == [batch_id]
        server.finish_batch(batch_id)
        results = _batch(make_requests(4), run, config_for(server.base_url))
        assert all(r.ok for r in results)
        assert len(server.requests_to("POST", "/batches")) == 1
        assert len(server.requests_to("POST", "/files")) == 1
        assert load_batches(run)[0]["merged"]


def test_an_expired_batch_resubmits_only_the_unfinished_requests(run):
    with FakeOpenAI(batch_mode="hold") as server:
        requests = make_requests(5)

        def expire_then_complete():
            for n in (1, 2):
                while len(server.batches) < n:
                    time.sleep(0.01)
                batch_id = list(server.batches)[n - 1]
                if n == 1:
                    server.finish_batch(batch_id, "expired", answered=2)
                else:
                    server.finish_batch(batch_id)

        helper = threading.Thread(target=expire_then_complete, daemon=True)
        helper.start()
        results = _batch(requests, run, config_for(server.base_url))
        helper.join(timeout=5)
        assert all(r.ok for r in results)
        first, second = server.batches.values()
        assert _input_keys(server, first) == [r.key for r in requests]
        assert _input_keys(server, second) == [r.key for r in requests[2:]]
        assert [b["merged"] for b in load_batches(run)] == [True, True]


def test_a_batch_cancelled_while_waiting_fails_its_rest_and_the_next_run_resubmits(run):
    with FakeOpenAI(batch_mode="hold") as server:

        def cancel_soon():
            while not server.batches:
                time.sleep(0.01)
            time.sleep(0.1)
            server.finish_batch(next(iter(server.batches)), "cancelled", answered=1)

        threading.Thread(target=cancel_soon, daemon=True).start()
        results = _batch(make_requests(3), run, config_for(server.base_url))
        assert [r.error_code for r in results] == [None, "batch_cancelled", "batch_cancelled"]
        server.batch_mode = "complete"
        again = _batch(make_requests(3), run, config_for(server.base_url))
        assert all(r.ok for r in again) and [r.cached for r in again] == [True, False, False]
        assert _input_keys(server, list(server.batches.values())[1]) == [r.key for r in make_requests(3)[1:]]


def test_cancel_batches_then_the_next_run_resubmits(run):
    with FakeOpenAI(batch_mode="hold") as server:
        cmd = [sys.executable, "-m", HELPER, "batch", str(run.root), server.base_url, "3"]
        child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not run.path(BATCHES_FILE).is_file() and _alive(child, deadline):
                time.sleep(0.01)
            assert child.poll() is None, "the batch run ended before it could be killed"
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=10)
        config = DatakitConfig(teacher=config_for(server.base_url))
        run.config_path.write_text(dump_config(config))  # cancel_batches reads the run's own config
        cancelled = cancel_batches(run)
        assert [b["status"] for b in cancelled] == ["cancelled"]
        assert load_batches(run)[0]["status"] == "cancelled"
        assert cancel_batches(run, config=config_for(server.base_url)) == []  # nothing left running
        server.batch_mode = "complete"
        results = _batch(make_requests(3), run, config_for(server.base_url))
        assert all(r.ok for r in results) and len(server.batches) == 2


def test_a_400_inside_a_batch_fails_that_request(run):
    with FakeOpenAI() as server:
        server.script(Reply(status=400, error={"error": {"message": "bad image"}}))
        results = _batch(make_requests(2), run, config_for(server.base_url))
        assert [r.error_code for r in results] == ["bad_request", None] and "bad image" in results[0].error
        with Cache(run.cache_path) as cache:
            assert cache.get(results[0].key) is None


def test_batch_needs_a_run_directory(tmp_path):
    with Cache(tmp_path / "c.sqlite") as cache, pytest.raises(ConfigError, match="run directory"):
        run_requests(make_requests(1), cache=cache, config=config_for("http://127.0.0.1:9/v1"),
                     parse=parse_answer, transport="batch", progress=False)  # fmt: skip

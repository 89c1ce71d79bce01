"""Annotate stops cleanly on Ctrl-C and resumes without asking again; a --limit never silently replaces traces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import datakit.annotate
from datakit.annotate import offline
from datakit.annotate.cache import Cache
from datakit.config import load_config
from datakit.errors import RunDirError
from tests.annotate.test_llm_teacher import PARTS
from tests.fakes.openai_server import FakeOpenAI, Reply


def slow_answer(body, index):
    schema = body["response_format"]["json_schema"]["schema"]
    return Reply(content=json.dumps({k: PARTS[k] for k in schema["required"]}), delay_s=0.25)


def datakit_cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    """``datakit ARGS`` as a child process that Ctrl-C (SIGINT) reaches as it would from a terminal."""
    def default_sigint() -> None:  # a background test runner may hand SIGINT down as ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen([sys.executable, "-m", "datakit", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


def wait_for(predicate, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_ctrl_c_stops_within_seconds_says_how_to_resume_and_resends_nothing_answered(demo_run):
    with FakeOpenAI(slow_answer) as server:
        args = ["annotate", "--run", str(demo_run), "--teacher", "llm", "--model", "teacher-m",
                "--base-url", server.base_url, "--concurrency", "2", "--no-progress"]
        child = datakit_cli(*args, env={"OPENAI_API_KEY": "test-key"})
        wait_for(lambda: len(server.chat_requests(answered=True)) >= 4)
        child.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        _, err = child.communicate(timeout=30)
        took = time.monotonic() - t0
        assert took < 5.0, took  # 0.4 s on an idle machine; the margin is for a loaded one
        assert child.returncode == 130, err
        assert "Interrupted." in err and "run the same command again" in err and "cache.sqlite" in err
        assert "Traceback" not in err and "annotate --run" in err
        assert not (demo_run / "traces.parquet").exists()
        with Cache(demo_run / "cache.sqlite") as cache:
            stored = cache.count()
        assert stored >= 1  # answers still on the wire when it stopped are asked again, nothing else
        sent_before = len(server.chat_requests())

        again = datakit_cli(*args, env={"OPENAI_API_KEY": "test-key"})
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        n = 26
        # the resumed run asks only what the cache does not hold: nothing answered is sent twice
        assert len(server.chat_requests()) - sent_before == n - stored
        assert "26 in = 26 traces" in out


def test_offline_teacher_shows_progress_on_large_runs(demo_run, monkeypatch, capsys):
    monkeypatch.setattr(offline, "PARALLEL_MIN_STUDIES", 1)
    datakit.annotate.run(demo_run, load_config(overrides={"teacher.workers": 2}), progress=True)
    err = capsys.readouterr().err
    assert "offline teacher" in err and "26/26" in err and "ETA" in err


def test_limit_that_would_replace_traces_is_refused_unless_replaced(demo_run):
    datakit.annotate.run(demo_run, load_config(), progress=False)
    with pytest.raises(RunDirError) as err:
        datakit.annotate.run(demo_run, load_config(), limit=3, progress=False)
    assert "replace the 26 traces" in str(err.value) and "--replace" in err.value.hint
    assert datakit.annotate.run(demo_run, load_config(), limit=3, progress=False, replace=True).traces.height == 3

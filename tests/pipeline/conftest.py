"""Configs, the demo source and a child ``datakit build`` for the build tests."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.annotate.run_fixture import REPO
from tests.annotate.test_llm_teacher import PARTS
from tests.fakes.openai_server import FakeOpenAI, Reply

DEMO = REPO / "examples" / "demo" / "mimic-cxr"
OUTPUTS = ("studies.parquet", "images.parquet", "knowledge.parquet", "traces.parquet", "validation.parquet")


def write_config(path: Path, *, run: Path, extra: str = "", source: Path = DEMO) -> Path:
    """A datakit.toml over the demo data with small images (fast) and the given extra TOML."""
    path.write_text(f'source = "{source}"\nrun = "{run}"\n\n[ingest.images]\nmax_size = 64\n\n{extra}')
    return path


def llm_teacher(base_url: str) -> str:
    return (f'[teacher]\nkind = "llm"\nmodel = "teacher-m"\nbase_url = "{base_url}"\nmax_concurrency = 2\n'
            "request_timeout_s = 10.0\nbackoff_initial_s = 0.01\nbackoff_max_s = 0.05\n")


def answer(delay_s: float = 0.0):
    def handler(body, index):
        schema = body["response_format"]["json_schema"]["schema"]
        return Reply(content=json.dumps({k: PARTS[k] for k in schema["required"]}), delay_s=delay_s)

    return handler


@pytest.fixture
def server():
    with FakeOpenAI(answer(0.15)) as s:
        yield s


def body_key(received) -> str:
    """A request's identity as the server saw it (its whole JSON body)."""
    return hashlib.sha256(json.dumps(received.body, sort_keys=True).encode()).hexdigest()


def snapshot(run: Path) -> dict[str, bytes]:
    """The bytes of every table and every export file of a run."""
    files = {name: (run / name).read_bytes() for name in OUTPUTS if (run / name).is_file()}
    export = run / "export"
    if export.is_dir():
        for f in sorted(export.rglob("*")):
            if f.is_file():
                files[str(f.relative_to(run))] = f.read_bytes()
    return files


def datakit_child(*args: str, env: dict | None = None) -> subprocess.Popen:
    """``datakit ARGS`` as a child that Ctrl-C (SIGINT) reaches as from a terminal."""
    def default_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    full_env = {**os.environ, "OPENAI_API_KEY": "test-key", "COLUMNS": "200", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "datakit", *args], env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


def wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)

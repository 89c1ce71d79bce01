"""A run directory made from the bundled demo data (ingest + retrieve), built once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def make_demo_run(dest: Path, source: str = "mimic-cxr") -> Path:
    import datakit.ingest
    import datakit.retrieve
    from datakit.config import load_config

    cfg = load_config(overrides={"ingest.images.max_size": 128})
    datakit.ingest.run(REPO / "examples" / "demo" / source, dest, cfg)
    datakit.retrieve.run(dest, cfg)
    return dest


@pytest.fixture(scope="session")
def _demo_run_base(tmp_path_factory) -> Path:
    return make_demo_run(tmp_path_factory.mktemp("demo") / "run")


@pytest.fixture
def demo_run(_demo_run_base, tmp_path) -> Path:
    """A fresh copy of the demo run (ingested and retrieved) for one test."""
    dest = tmp_path / "run"
    shutil.copytree(_demo_run_base, dest)
    return dest

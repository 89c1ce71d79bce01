"""A validated run made from the demo data (ingest, retrieve, offline annotate, validate), built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.annotate.run_fixture import make_demo_run


def _validated(dest: Path, source: str = "mimic-cxr") -> Path:
    import datakit.annotate
    import datakit.validate
    from datakit.config import load_config

    make_demo_run(dest, source)
    cfg = load_config()
    datakit.annotate.run(dest, cfg, progress=False)
    datakit.validate.run(dest, cfg)
    return dest


@pytest.fixture(scope="session")
def _validated_base(tmp_path_factory) -> Path:
    return _validated(tmp_path_factory.mktemp("export") / "run")


@pytest.fixture
def validated_run(_validated_base, tmp_path) -> Path:
    """A fresh copy of the validated demo run for one test."""
    dest = tmp_path / "run"
    shutil.copytree(_validated_base, dest)
    return dest


def export_config(**export):
    """The config with ``export.*`` overrides; one worker unless asked (the suite runs on two cores)."""
    from datakit.config import load_config

    export.setdefault("workers", 1)
    return load_config(overrides={f"export.{k}": v for k, v in export.items()})


def read_rows(path: Path) -> list[dict]:
    """The rows of a split file (JSON Lines, or a JSON list for LLaVA)."""
    import json

    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

import os
from pathlib import Path

import pytest

from tests.annotate.run_fixture import _demo_run_base, demo_run  # noqa: F401  (shared: a run made from the demo data)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Keep tests away from the user's home, keys and endpoints."""
    monkeypatch.setenv("DATAKIT_HOME", str(tmp_path / "home"))
    for name in list(os.environ):
        if name.startswith("DATAKIT_") and name != "DATAKIT_HOME":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def data_dir() -> Path:
    return DATA

"""The only way to reach the data folders that ship with datakit: prompts/, knowledge/, schemas/.

An installed wheel carries them under ``datakit/_data/<kind>``. An editable install imports datakit from the
checkout, where ``_data`` is absent (or a stale copy), so the checkout's top-level folder is used instead.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

Kind = Literal["prompts", "knowledge", "schemas"]


def data_path(kind: Kind) -> Path:
    """Return the folder of shipped ``kind`` files."""
    packaged = Path(str(files("datakit"))) / "_data" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / kind


def schema_path(name: str) -> Path:
    """Return the path of a shipped JSON Schema, e.g. ``schema_path("trace.v1.json")``."""
    return data_path("schemas") / name

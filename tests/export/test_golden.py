"""Golden files: one small export of each format, as a trainer reads it (``UPDATE_GOLDEN=1`` rewrites them;
review the diff like code)."""

import os
from pathlib import Path

import pytest

import datakit.export
from tests.export.conftest import export_config

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "export"
FILES = {
    "trl": ["val.jsonl"],
    "llamafactory": ["val.jsonl", "dataset_info.json"],
    "swift": ["val.jsonl"],
    "qwen-vl": ["val.jsonl", "data_registry.py"],
    "llava": ["val.json"],
}


@pytest.fixture(scope="module")
def exported(_validated_base, tmp_path_factory):
    import shutil

    run = tmp_path_factory.mktemp("golden") / "run"
    shutil.copytree(_validated_base, run)
    datakit.export.run(run, export_config(image_paths="relative"))
    return run


@pytest.mark.parametrize("name", sorted(FILES))
def test_golden(exported, name):
    for file in FILES[name]:
        text = (exported / "export" / name / file).read_text(encoding="utf-8")
        # absolute paths (ms-swift's images, Qwen-VL's registry) differ per machine: the run folder becomes RUN
        text = text.replace(str(exported.resolve()), "RUN")
        golden = GOLDEN / name / file
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text, encoding="utf-8")
        assert golden.is_file(), f"{golden} is missing: run with UPDATE_GOLDEN=1 once"
        assert text == golden.read_text(encoding="utf-8"), f"{name}/{file} differs from its golden file"

"""The installed package finds its data: prompts/, knowledge/ and schemas/ ship inside the wheel."""

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO

pytest.importorskip("hatchling")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
    )
    return next(out.glob("datakit-*.whl"))


def test_wheel_carries_the_data_folders(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "datakit/_data/schemas/trace.v1.json",
        "datakit/_data/schemas/knowledge_entry.v1.json",
        "datakit/_data/prompts/annotate/system.j2",
        "datakit/_data/prompts/annotate/user.j2",
        "datakit/_data/knowledge/tree.yaml",
        "datakit/_data/knowledge/findings/pleural_effusion.yaml",
        "datakit/_data/knowledge/labeler/lexicon.yaml",
        "datakit/ingest/data/mimic_cxr_custom_rules.json",
        "datakit/ingest/data/mesh_to_chexpert.csv",
        "datakit/annotate/data/prices.toml",
        "datakit/data/starter.toml",
    ):
        assert required in names, required
    assert not any("iu-xray-reports-dev" in n for n in names)  # CC BY-NC-ND test data is never shipped


def test_installed_wheel_works_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import datakit, pathlib\n"
        "from datakit.resources import data_path\n"
        "assert 'site' in datakit.__file__, datakit.__file__\n"
        "assert (data_path('schemas') / 'trace.v1.json').is_file()\n"
        "from datakit.knowledge.kb import load_kb\n"
        "from datakit.annotate.prompts import PromptSet\n"
        "from datakit.reading.labeler import Labeler\n"
        "kb = load_kb(); assert len(kb.entries) >= 60\n"
        "PromptSet().render('annotate/reask.j2', error='x', schema_name='trace.v1')\n"
        "assert Labeler(kb).label('Small left pleural effusion.')['pleural_effusion'] == 1\n"
        "from datakit.annotate.prices import shipped; assert shipped().models['gpt-4o']\n"
        "from datakit.starter import starter_text; assert 'source = ' in starter_text('iu-xray')\n"
        "print('ok', len(kb.entries))\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ok")

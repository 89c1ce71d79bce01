"""Data and file text is printed as text, never as rich markup; paths in summaries keep the part naming the file."""

from __future__ import annotations

import re

from rich.console import Console

import datakit.annotate
import datakit.validate
from datakit import ingest
from datakit.cli.render import ingest_summary, short_paths
from datakit.cli.validate import summary_view
from datakit.config import load_config
from datakit.validate import CHECKS
from tests.ingest.mimic_fixture import Study, make_tree

PATTERN = "'^[a-z0-9_]+$' and [bold]not bold[/bold]"


def rendered(renderable, width: int = 200) -> str:
    console = Console(record=True, width=width, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def test_a_check_message_with_brackets_is_shown_as_written(demo_run, tmp_path):
    plugin = tmp_path / "bracket_checks.py"
    plugin.write_text(
        "import polars as pl\n"
        "from datakit.validate import check, problems\n\n"
        "@check('id_pattern', codes={'bad_[id]': 'warning'})\n"
        "def id_pattern(ctx):\n"
        "    '''Ids follow [a-z] rules.'''\n"
        f"    return problems(ctx.traces.head(1), 'bad_[id]', {PATTERN!r})\n"
    )
    datakit.annotate.run(demo_run, load_config(), progress=False)
    try:
        result = datakit.validate.run(demo_run, load_config(overrides={"validate.plugins": [str(plugin)]}))
    finally:
        CHECKS.remove("id_pattern")  # registered for this test only
    text = rendered(summary_view(result.summary))
    assert PATTERN in text and "bad_[id]" in text and "Ids follow [a-z] rules." in text


def test_quarantine_examples_keep_the_file_name_on_a_narrow_terminal(tmp_path):
    root = tmp_path / ("a-rather-long-folder-name-" * 3) / "mimic"
    make_tree(root, [Study("10000001", "50000001"), Study("10000002", "50000002")])
    broken = sorted(root.glob("files/p*/p*/s*/*.jpg"))[0]
    broken.write_bytes(b"")
    cfg = load_config(overrides={"ingest.images.max_size": 32, "ingest.images.workers": 1})
    result = ingest.run(root, tmp_path / "run", cfg)
    for width in (80, 200):
        squashed = re.sub(r"[\s│┃]", "", rendered(ingest_summary(result), width))
        assert f"…/p10000001/s50000001/{broken.name}" in squashed
        assert "a-rather-long-folder-name" not in squashed.split("Quarantinedrows")[1]


def test_short_paths_keeps_the_last_parts():
    msg = "cannot read /data/mimic/files/p10/p10000032/s50414267/abc.dcm as an image: it is empty"
    assert short_paths(msg) == "cannot read …/p10000032/s50414267/abc.dcm as an image: it is empty"
    assert short_paths("see files/p10/x.txt") == "see files/p10/x.txt"  # relative paths stay

"""The command line: exit codes, exact messages, and docs that keep up with the commands."""

import re

import pytest
from typer.testing import CliRunner

from datakit.cli.app import app
from tests.conftest import REPO


@pytest.fixture
def runner():
    return CliRunner()


def commands():
    import typer.main

    group = typer.main.get_command(app)
    out = []
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            out += [(f"{name} {sub}", c) for sub, c in cmd.commands.items()]
        else:
            out.append((name, cmd))
    return out


@pytest.mark.parametrize("name,cmd", commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_and_is_in_the_readme(name, cmd):
    assert (cmd.help or "").strip(), f"`datakit {name}` has no help text"
    readme = (REPO / "README.md").read_text()
    assert re.search(rf"datakit {re.escape(name)}\b", readme), f"README.md never shows `datakit {name}`"


def test_ingest_of_an_unrelated_folder_says_what_it_looked_for(runner, tmp_path):
    (tmp_path / "stuff").mkdir()
    result = runner.invoke(app, ["ingest", str(tmp_path / "stuff"), "--run", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "does not look like any dataset datakit reads" in result.output
    assert "Hint: point at the dataset's top folder, or name the format with --format" in result.output


def test_unknown_format_lists_the_known_ones(runner, tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path), "--run", str(tmp_path / "run"), "--format", "dicomdir"])
    assert result.exit_code == 2
    assert "unknown source format 'dicomdir'" in result.output
    assert "mimic-cxr-jpg" in result.output and "iu-xray-xml" in result.output


def test_a_stage_without_its_input_says_which_command_to_run(runner, tmp_path):
    (tmp_path / "run").mkdir()
    result = runner.invoke(app, ["annotate", "--run", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "has no studies.parquet" in result.output and "datakit ingest" in result.output


def test_missing_run_directory(runner, tmp_path):
    result = runner.invoke(app, ["annotate", "--run", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_bad_config_value_names_the_key(runner, tmp_path):
    cfg = tmp_path / "datakit.toml"
    cfg.write_text("[ingest.images]\nmax_size = 'big'\n")
    result = runner.invoke(app, ["ingest", str(tmp_path), "--run", str(tmp_path / "r"), "--config", str(cfg)])
    assert result.exit_code == 2
    assert "ingest.images.max_size" in result.output


def test_demo_ingest_prints_the_summary(runner, tmp_path):
    result = runner.invoke(app, ["ingest", str(REPO / "examples/demo/iu-xray"), "--run", str(tmp_path / "run"),
                                 "--image-size", "64"])
    assert result.exit_code == 0, result.output
    assert "Ingested iu-xray-xml" in result.output
    assert "studies: 10 in = 9 kept + 1 quarantined" in result.output
    assert "no_images" in result.output and "Studies and images per split" in result.output


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("datakit ")

"""A bad configuration value is reported with its key, what is allowed, and where it came from."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from datakit.cli.app import app
from datakit.config import load_config
from datakit.config_origin import file_lines
from datakit.errors import ConfigError


def error_of(**kw) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(**kw)
    return str(err.value)


def test_a_file_value_names_the_file_and_line(tmp_path):
    cfg = tmp_path / "datakit.toml"
    cfg.write_text("# my run\n[teacher]\nkind = 'llm'\nmodle = 'x'\n\n[ingest.images]\nmax_size = 'big'\n")
    msg = error_of(path=cfg)
    assert "ingest.images.max_size: Input should be a valid integer" in msg and f"(from {cfg}:7)" in msg
    assert "teacher.modle: unknown key (did you mean model?)" in msg and f"(from {cfg}:4)" in msg
    assert "[teacher] allows: kind, seed" in msg


def test_a_flag_value_names_the_flag():
    msg = error_of(overrides={"teacher.kind": "foo"}, flag_names={"teacher.kind": "--teacher"})
    assert msg.endswith("teacher.kind: Input should be 'offline' or 'llm'; got 'foo' (from flag --teacher)")


def test_an_environment_value_names_the_variable(tmp_path, monkeypatch):
    cfg = tmp_path / "datakit.toml"
    cfg.write_text("[teacher]\nkind = 'llm'\n")
    monkeypatch.setenv("DATAKIT_TEACHER__KIND", "foo")
    msg = error_of(path=cfg)
    assert "got 'foo' (from environment variable DATAKIT_TEACHER__KIND)" in msg  # the later layer wins


def test_the_cli_reports_the_flag(tmp_path):
    (tmp_path / "run").mkdir()
    result = CliRunner().invoke(app, ["annotate", "--run", str(tmp_path / "run"), "--teacher", "foo"])
    assert result.exit_code == 2
    assert "teacher.kind: Input should be 'offline' or 'llm'; got 'foo' (from flag --teacher)" in result.output


def test_file_lines_follow_tables_dotted_keys_and_inline_tables():
    text = "source = 'x'\n[validate]\nseverity = { phi_time = 'loud' }\n[ingest]\nimages.max_size = 3\n"
    lines = file_lines(text)
    assert lines[("source",)] == 1 and lines[("validate", "severity")] == 3
    assert lines[("ingest", "images", "max_size")] == 5

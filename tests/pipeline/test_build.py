"""`datakit build` on the demo with the offline teacher: end to end, skipping, --from/--only/--limit, the gate,
copied runs, bad configs, the reports-only tree, status and init."""

from __future__ import annotations

import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

import datakit.pipeline
from datakit.cli.app import app
from datakit.config import load_config
from datakit.errors import ConfigError, SourceLayoutError, ValidationGateError
from datakit.pipeline.status import run_status
from datakit.starter import DATASETS, write_starter
from tests.pipeline.conftest import DEMO, snapshot, write_config


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path / "datakit.toml", run=tmp_path / "run")


def statuses(result) -> dict[str, str]:
    return {s.name: s.status for s in result.stages}


def test_the_demo_builds_end_to_end_into_runs_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `make demo` runs `datakit build` from the checkout; runs/demo is relative
    res = CliRunner().invoke(app, ["build", "--no-progress"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    run = tmp_path / "runs" / "demo"
    for fmt in ("trl", "llamafactory", "swift", "qwen-vl", "llava"):
        assert (run / "export" / fmt).is_dir()
    out = res.output
    assert "27 in = 26 kept + 1 set aside (missing_report 1)" in out
    assert "26 accepted, 0 rejected" in out and "export trl" in out and "train 19" in out
    assert "datakit review --run runs/demo" in out and "datakit finetune runs/demo/export/trl" in out
    for stage in datakit.pipeline.STAGES:
        assert f"{stage}: done in" in out or f"{stage}: unchanged" in out


def test_from_a_stage_whose_inputs_were_never_made_says_what_to_do(config):
    with pytest.raises(Exception) as err:
        datakit.pipeline.build(config, progress=False, from_stage="annotate")
    assert "ingest" in str(err.value) and "build without --from" in err.value.hint


def test_limit_builds_a_quick_look_in_its_own_run(config, tmp_path):
    datakit.pipeline.build(config, progress=False)
    full = snapshot(tmp_path / "run")
    quick = datakit.pipeline.build(config, progress=False, limit=3)
    assert quick.plan.run.root == tmp_path / "run-limit3"
    assert pl.read_parquet(tmp_path / "run-limit3" / "traces.parquet").height == 3
    assert snapshot(tmp_path / "run") == full


@pytest.fixture
def strict_check():
    """The plugin's check is registered for one test only."""
    yield
    from datakit.validate import CHECKS

    if "strict" in CHECKS:
        CHECKS.remove("strict")


def test_a_gate_below_min_pass_rate_stops_before_export_with_exit_4(tmp_path, strict_check):
    plugin = tmp_path / "strict.py"
    plugin.write_text(
        "from datakit.validate import check, problems\n\n"
        "@check('strict', codes={'too_strict': 'error'})\n"
        "def strict(ctx):\n"
        "    '''Rejects half the traces.'''\n"
        "    return problems(ctx.traces.head(13), 'too_strict', 'rejected for the test')\n"
    )
    config = write_config(tmp_path / "datakit.toml", run=tmp_path / "run",
                          extra=f'[validate]\nmin_pass_rate = 0.9\nplugins = ["{plugin}"]\n')
    with pytest.raises(ValidationGateError) as err:
        datakit.pipeline.build(config, progress=False)
    assert "50.0% of traces passed validation, below validate.min_pass_rate = 90.0%" in str(err.value)
    assert "too_strict (13)" in str(err.value) and "datakit validate --run" in err.value.hint
    assert not (tmp_path / "run" / "export").exists()
    res = CliRunner().invoke(app, ["build", str(config), "--no-progress"])
    assert res.exit_code == 4 and "stopped before export" in res.output


def test_bad_configs_name_the_key_the_file_and_what_is_allowed(tmp_path):
    bad = write_config(tmp_path / "datakit.toml", run=tmp_path / "run",
                       extra='[teacher]\nkind = "gpt"\nmodle = "x"\n')
    res = CliRunner().invoke(app, ["build", str(bad)])
    assert res.exit_code == 2
    assert "teacher.kind: Input should be 'offline' or 'llm'; got 'gpt'" in res.output
    assert f"{bad}:8" in res.output and "teacher.modle: unknown key (did you mean model?)" in res.output
    (tmp_path / "nosource.toml").write_text('run = "r"\n')
    with pytest.raises(ConfigError, match="names no source"):
        datakit.pipeline.plan(tmp_path / "nosource.toml")
    ok = write_config(tmp_path / "ok.toml", run=tmp_path / "run")
    with pytest.raises(ConfigError, match="'annotat' is not a stage"):
        datakit.pipeline.plan(ok, from_stage="annotat")
    res = CliRunner().invoke(app, ["build", str(tmp_path / "ok.toml"), "--teacher", "foo"])
    assert res.exit_code == 2 and "(from flag --teacher)" in res.output


def test_a_reports_only_tree_is_one_clear_error_and_leaves_no_run(tmp_path):
    source = tmp_path / "reports-only"
    shutil.copytree(DEMO, source)
    for image in source.glob("files/p*/p*/s*/*.dcm"):
        image.unlink()
    config = write_config(tmp_path / "datakit.toml", run=tmp_path / "run", source=source,
                          extra='[ingest]\nformat = "mimic-cxr"\n')
    with pytest.raises(SourceLayoutError) as err:
        datakit.pipeline.build(config, progress=False)
    assert "with reports but not one image file" in str(err.value) and "*.dcm" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_status_shows_a_half_finished_run(config, tmp_path):
    datakit.pipeline.build(config, progress=False, only="ingest")
    status = run_status(tmp_path / "run")
    assert list(status.finished) == ["ingest"] and status.missing == ["retrieve", "annotate", "validate", "export"]
    assert "datakit build" in status.next_commands[0]
    res = CliRunner().invoke(app, ["status", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "not run yet" in res.output and "27 in = 26 kept" in res.output


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_init_writes_a_valid_commented_starter(tmp_path, dataset):
    res = CliRunner().invoke(app, ["init", str(tmp_path / "datakit.toml"), "--dataset", dataset])
    assert res.exit_code == 0, res.output
    path = tmp_path / "datakit.toml"
    cfg = load_config(path)
    assert cfg.validate.min_pass_rate == 0.9 and cfg.teacher.kind == "offline" and cfg.export.formats
    assert cfg.source and cfg.run and "# " in path.read_text()
    res = CliRunner().invoke(app, ["init", str(path), "--dataset", dataset])
    assert res.exit_code == 1 and "exists already" in res.output
    write_starter(path, dataset, force=True)


def test_build_shows_each_long_stage_with_counts_and_an_eta(config):
    """Image conversion, validation and export draw a bar of their own (counts, elapsed, ETA), as annotate does."""
    res = CliRunner().invoke(app, ["build", str(config)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    out = res.output
    assert "converting images" in out and "49/49 images" in out  # the demo images that are on disk
    assert "validate 26 traces" in out and "passes" in out
    assert "exporting 5 formats" in out and "26/26 traces" in out
    assert out.count("ETA") >= 3

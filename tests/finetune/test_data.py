"""Reading trl exports: split files found, layouts checked, images resolved, think blocks split off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datakit.finetune import data
from datakit.finetune.errors import ExportLayoutError
from tests.finetune.export_fixture import make_trl_export


def test_the_export_is_found_from_the_run_the_export_folder_or_the_file(trl_export):
    run = trl_export.parent.parent
    for given in (run, run / "export", trl_export, trl_export / "test.jsonl"):
        assert data.find_split(given, "test") == trl_export / "test.jsonl"


def test_relative_image_paths_resolve_against_the_split_file(annotated_run, tmp_path):
    dest = make_trl_export(annotated_run, tmp_path / "rel" / "trl", image_paths="relative")
    raw = json.loads((dest / "train.jsonl").read_text().splitlines()[0])
    assert not raw["images"][0].startswith("/")
    row = data.read_rows(dest / "train.jsonl")[0]
    assert row["images"] == [str((dest / r).resolve()) for r in raw["images"]]
    assert all(Path(p).is_file() for p in row["images"])


@pytest.mark.parametrize("style", ["think", "thought", "reasoning_content", "none"])
def test_tag_styles_are_detected_and_split(annotated_run, tmp_path, style):
    dest = make_trl_export(annotated_run, tmp_path / style, tags=style)
    rows = data.read_rows(dest / "train.jsonl")
    assert data.detect_tags(rows) == style
    think, report = data.split_think(data.assistant_text(rows[0]), style)
    assert report.startswith("FINDINGS:") or report.startswith("IMPRESSION:")
    assert think.startswith("Perception:") if style != "none" else think == ""
    if style == "reasoning_content":  # folded into <think> for training, so the model learns to write it
        assert data.training_rows(rows)[0]["messages"][-1]["content"][0]["text"].startswith("<think>\nPerception:")


def test_split_think_edge_cases():
    assert data.split_think("<think>\nA\n</think>\n\nFINDINGS: x", "think") == ("A", "FINDINGS: x")
    assert data.split_think("<think>\nunfinished", "think") == ("unfinished", "")  # cut by max_new_tokens
    assert data.split_think("FINDINGS: x", "think") == ("", "FINDINGS: x")  # no think block at all
    assert data.split_think("A\n</think>\nFINDINGS: x", "think") == ("A", "FINDINGS: x")  # template opened it
    assert data.split_think("<think>A</think>B", "none") == ("", "<think>A</think>B")


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_missing_export(tmp_path):
    with pytest.raises(ExportLayoutError, match="does not exist") as err:
        data.find_split(tmp_path / "nothing", "train")
    assert "datakit export" in err.value.hint
    (tmp_path / "run").mkdir()
    with pytest.raises(ExportLayoutError, match="no trl export found"):
        data.find_split(tmp_path / "run", "train")


def test_another_format_is_named(tmp_path):
    lf = _write(tmp_path / "run" / "export" / "llamafactory" / "train.jsonl",
                [{"messages": [{"role": "user", "content": "<image>Write the report."},
                               {"role": "assistant", "content": "FINDINGS: x"}], "images": ["a.png"]}])
    with pytest.raises(ExportLayoutError, match="is a llamafactory export") as err:
        data.find_split(lf.parent, "train")
    assert str(lf.parent.parent / "trl") in err.value.hint
    with pytest.raises(ExportLayoutError, match="it has the llamafactory export"):
        data.find_split(tmp_path / "run", "train")
    renamed = _write(tmp_path / "elsewhere" / "train.jsonl", [json.loads(lf.read_text())])
    with pytest.raises(ExportLayoutError, match="LLaMA-Factory / ms-swift layout"):
        data.read_rows(renamed)


def test_rows_that_break_the_layout_are_listed(trl_export, tmp_path):
    good = json.loads((trl_export / "train.jsonl").read_text().splitlines()[0])
    fewer = {**good, "images": good["images"][:0]}
    inline = json.loads(json.dumps(good))
    inline["messages"][1]["content"][0]["image"] = good["images"][0]
    gone = {**good, "images": ["/no/such/image.png"] * len(good["images"])}
    bad = _write(tmp_path / "trl" / "train.jsonl", [good, fewer, inline, gone, {"conversations": []}])
    with pytest.raises(ExportLayoutError) as err:
        data.read_rows(bad)
    msg = str(err.value)
    assert "line 1" not in msg
    assert "line 2: 0 image(s) but" in msg
    assert "line 3: an image part carries an `image` key" in msg
    assert "line 4: image not found: /no/such/image.png" in msg
    assert "line 5: rows have `conversations`" in msg


def test_settings_precedence_flag_environment_file(tmp_path, monkeypatch):
    from datakit.errors import ConfigError
    from datakit.finetune import load_finetune_config, load_predict_config

    toml = tmp_path / "ft.toml"
    toml.write_text("[finetune]\nlora_r = 4\nbatch_size = 3\n[predict]\nmax_new_tokens = 7\n")
    monkeypatch.setenv("DATAKIT_FINETUNE__LORA_R", "32")
    cfg = load_finetune_config(toml, overrides={"batch_size": 5, "grad_accum": None})
    assert (cfg.lora_r, cfg.batch_size, cfg.grad_accum) == (32, 5, 8)
    assert load_predict_config(toml).max_new_tokens == 7
    with pytest.raises(ConfigError, match="finetune.lora_rank: Extra inputs are not permitted"):
        load_finetune_config(overrides={"lora_rank": 8})

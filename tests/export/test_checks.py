"""Each export check, on a corrupted row of each format: what the trainers forgive, datakit must not."""

import copy
import json
from pathlib import Path

import polars as pl
import pytest

import datakit.export
from datakit.errors import ExportCheckError
from datakit.export.base import EXPORTERS, Layout
from datakit.export.checks import image_problem, row_problem
from tests.export.conftest import export_config, read_rows

SUFFIX = {"llava": ".json"}


@pytest.fixture(scope="module")
def rows(_validated_base, tmp_path_factory):
    """One good row of every format, and its exporter."""
    import shutil

    run = tmp_path_factory.mktemp("checks") / "run"
    shutil.copytree(_validated_base, run)
    datakit.export.run(run, export_config())
    out = {}
    for name in EXPORTERS.names():
        exp = EXPORTERS.get(name)(Layout(run / "export" / name, "absolute", "think"))
        out[name] = exp, read_rows(run / "export" / name / f"train{SUFFIX.get(name, '.jsonl')}")[0]
    return out


def _code(rows, name, spoil):
    exp, row = rows[name]
    row = copy.deepcopy(row)
    spoil(row)
    problem = row_problem(exp, row)
    return problem and problem[0]


def test_good_rows_pass(rows):
    for name, (exp, row) in rows.items():
        assert row_problem(exp, row) is None, name


def _assistant_text(row):
    if "messages" in row:
        last = row["messages"][-1]
        return last["content"][0]["text"] if isinstance(last["content"], list) else last["content"]
    return row["conversations"][-1]["value"]


def _set_assistant(row, text):
    if "messages" in row:
        last = row["messages"][-1]
        if isinstance(last["content"], list):
            last["content"][0]["text"] = text
        else:
            last["content"] = text
    else:
        row["conversations"][-1]["value"] = text


@pytest.mark.parametrize("name", ["trl", "llamafactory", "swift", "qwen-vl", "llava"])
def test_each_check_catches_its_corruption(rows, name):
    images_key = "image" if name in ("qwen-vl", "llava") else "images"

    def extra_image(row):
        row[images_key] = ([row[images_key]] if isinstance(row[images_key], str) else row[images_key]) + ["/x.png"]

    expected_extra = "not_one_image" if name == "llava" else "image_count_mismatch"
    assert _code(rows, name, extra_image) == expected_extra

    def literal_image(row):
        _set_assistant(row, _assistant_text(row).replace("FINDINGS:", "<image> FINDINGS:", 1)
                       .replace("IMPRESSION:", "<image> IMPRESSION:", 1))

    expected_literal = "literal_image_token" if name == "trl" else "placeholder_outside_user"
    assert _code(rows, name, literal_image) == expected_literal

    def unbalanced(row):
        _set_assistant(row, _assistant_text(row).replace("</think>", "", 1))

    assert _code(rows, name, unbalanced) == "unbalanced_think"

    def two_opens(row):
        _set_assistant(row, "<think>\n" + _assistant_text(row))

    assert _code(rows, name, two_opens) == "unbalanced_think"

    def no_report(row):
        text = _assistant_text(row)
        _set_assistant(row, text[: text.index("</think>") + len("</think>")])

    assert _code(rows, name, no_report) == "empty_answer"

    def empty_assistant(row):
        _set_assistant(row, "   ")

    assert _code(rows, name, empty_assistant) == "empty_turn"

    turns_key = "messages" if "messages" in rows[name][1] else "conversations"

    def no_assistant(row):
        row[turns_key] = row[turns_key][:-1]

    assert _code(rows, name, no_assistant) == "no_final_assistant"

    def two_users(row):
        user = next(t for t in row[turns_key] if t.get("role", t.get("from")) in ("user", "human"))
        text_only = copy.deepcopy(user)
        if isinstance(text_only.get("content"), list):
            text_only["content"] = [p for p in text_only["content"] if p["type"] == "text"]
        elif "content" in text_only:
            text_only["content"] = text_only["content"].replace("<image>", "")
        else:
            text_only["value"] = text_only["value"].replace("<image>\n", "")
        row[turns_key].insert(row[turns_key].index(user) + 1, text_only)

    assert _code(rows, name, two_users) == "consecutive_user_turns"

    def assistant_first(row):
        body = [t for t in row[turns_key] if t.get("role") != "system"]
        row[turns_key] = [body[1], body[0]]

    assert _code(rows, name, assistant_first) == "role_order"


def test_trl_image_parts_must_be_bare(rows):
    def keyed(row):
        row["messages"][1]["content"][0]["image"] = row["images"][0]

    assert _code(rows, "trl", keyed) == "image_key_in_part"

    def one_part_fewer(row):
        row["messages"][1]["content"] = row["messages"][1]["content"][1:]

    assert _code(rows, "trl", one_part_fewer) == "image_count_mismatch"


def test_style_none_and_reasoning_content_have_no_tags(rows):
    exp, row = rows["trl"]
    for style in ("none", "reasoning_content"):
        other = type(exp)(Layout(exp.layout.root, "absolute", style))
        assert row_problem(other, row)[0] == "unbalanced_think"  # the think-style row has tags


def test_image_problems(tmp_path, rows):
    exp, row = rows["trl"]
    good = Path(row["images"][0])
    assert image_problem(good) is None
    assert image_problem(tmp_path / "gone.png")[0] == "missing_image"
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:200])
    assert image_problem(tmp_path / "cut.png")[0] == "unreadable_image"
    (tmp_path / "text.png").write_text("not an image")
    assert image_problem(tmp_path / "text.png")[0] == "unreadable_image"
    from PIL import Image

    Image.new("L", (8, 8)).save(tmp_path / "ok.jpg")
    Image.new("L", (8, 8)).save(tmp_path / "ok.bmp")
    assert image_problem(tmp_path / "ok.jpg") is None and image_problem(tmp_path / "ok.bmp") is None
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:-10])
    assert image_problem(tmp_path / "cut.jpg")[0] == "unreadable_image"


def test_missing_image_sets_the_study_aside(validated_run):
    images = pl.read_parquet(validated_run / "images.parquet")
    victim = images.row(0, named=True)
    (validated_run / victim["converted_path"]).unlink()
    result = datakit.export.run(validated_run, export_config(formats=["trl"]))
    assert result.stats.excluded["missing_image"] == 1
    q = [json.loads(line) for line in (validated_run / "quarantine.jsonl").read_text().splitlines()]
    mine = [r for r in q if r["stage"] == "export"]
    assert [(r["key"], r["code"]) for r in mine] == [(victim["study_id"], "missing_image")]
    assert victim["converted_path"].split("/")[-1] in mine[0]["message"]


def test_a_bad_template_is_caught_and_named(validated_run, tmp_path):
    prompts = tmp_path / "prompts" / "export"
    prompts.mkdir(parents=True)
    (prompts / "system.j2").write_text("You read chest films.")
    (prompts / "user.j2").write_text("<image> Report, please.")  # one placeholder too many
    cfg = export_config(formats=["trl", "llamafactory"], prompts_dir=str(tmp_path / "prompts"))
    result = datakit.export.run(validated_run, cfg)
    assert result.stats.left_out[("trl", "literal_image_token")] == result.counts["study_out"]
    assert result.stats.left_out[("llamafactory", "image_count_mismatch")] == result.counts["study_out"]
    assert read_rows(validated_run / "export" / "trl" / "train.jsonl") == []
    q = [json.loads(line) for line in (validated_run / "quarantine.jsonl").read_text().splitlines()]
    rows = [r for r in q if r["stage"] == "export" and r["kind"] == "row"]
    assert any(r["message"].startswith("trl/train.jsonl row 1 left out") for r in rows)
    strict = export_config(formats=["trl"], prompts_dir=str(tmp_path / "prompts"), strict=True)
    with pytest.raises(ExportCheckError) as err:
        datakit.export.run(validated_run, strict, force=True)
    assert "trl/" in str(err.value) and "row 1" in str(err.value) and "study " in str(err.value)
    assert (validated_run / "export" / "trl" / "train.jsonl").is_file()  # the last good export is kept


def test_literal_image_in_trace_text_is_escaped(validated_run):
    traces = pl.read_parquet(validated_run / "traces.parquet")
    sid, trace_json = traces.row(0)[:2]
    trace = json.loads(trace_json)
    trace["report"]["findings"] = "See <image> for details. " + trace["report"]["findings"]
    traces.with_columns(trace_json=pl.when(pl.col("study_id") == sid).then(pl.lit(json.dumps(trace)))
                        .otherwise(pl.col("trace_json"))).write_parquet(validated_run / "traces.parquet")
    manifest = json.loads((validated_run / "manifest.json").read_text())
    manifest["stages"].pop("validate")
    (validated_run / "manifest.json").write_text(json.dumps(manifest))
    result = datakit.export.run(validated_run, export_config(formats=["trl", "swift"]))
    assert not result.stats.left_out
    texts = [r["messages"][-1]["content"] for s in ("train", "val", "test")
             for r in read_rows(validated_run / "export" / "swift" / f"{s}.jsonl")]
    assert any("See [image] for details." in t for t in texts)

import json
from pathlib import Path

import polars as pl
import pytest

import datakit.export
from datakit.errors import UnknownFormat
from tests.export.conftest import export_config, read_rows

FORMATS = ["trl", "llamafactory", "swift", "qwen-vl", "llava"]


def test_every_format_every_split(validated_run):
    result = datakit.export.run(validated_run, export_config())
    root = validated_run / "export"
    studies = pl.read_parquet(validated_run / "studies.parquet")
    split_of = dict(studies.select("study_id", "split").iter_rows())
    for name in FORMATS:
        suffix = ".json" if name == "llava" else ".jsonl"
        seen = []
        for split in ("train", "val", "test"):
            rows = read_rows(root / name / f"{split}{suffix}")
            assert len(rows) == result.stats.rows[(name, split)]
            ids = [r.get("study_id") or r.get("id") for r in rows if name not in ("llamafactory", "swift")]
            assert all(split_of[i] == split for i in ids)  # splits come from the studies table
            seen += rows
        assert len(seen) == result.counts["study_out"] == studies.height
    assert (root / "llamafactory" / "dataset_info.json").is_file()
    assert (root / "qwen-vl" / "data_registry.py").is_file()
    for png in ("splits", "labels", "think_length", "corrections"):
        assert (root / "plots" / f"{png}.png").read_bytes().startswith(b"\x89PNG")
    manifest = json.loads((validated_run / "manifest.json").read_text())
    assert manifest["stages"]["export"]["counts"]["study_out"] == studies.height


def test_images_frontal_first_capped_and_llava_one(validated_run):
    datakit.export.run(validated_run, export_config(max_images=2))
    images = pl.read_parquet(validated_run / "images.parquet")
    view = {str((validated_run / p).resolve()): v for p, v in images.select("converted_path", "view").iter_rows()}
    frontal = {"PA", "AP", "FRONTAL"}
    multi = 0
    for row in read_rows(validated_run / "export" / "trl" / "train.jsonl"):
        views = [view[p] for p in row["images"]]
        assert 1 <= len(views) <= 2
        assert views == sorted(views, key=lambda v: v not in frontal)
        multi += len(views) == 2
        user = row["messages"][1]["content"]
        assert [p["type"] for p in user] == ["image"] * len(views) + ["text"]
    assert multi  # the demo has studies with two views
    for row in read_rows(validated_run / "export" / "llava" / "train.json"):
        assert isinstance(row["image"], str) and view[row["image"]] in frontal
        assert row["conversations"][0]["value"].startswith("<image>\n")


def test_relative_paths_resolve_against_the_split_folder(validated_run):
    datakit.export.run(validated_run, export_config(image_paths="relative"))
    root = validated_run / "export"
    for name, key in (("trl", "images"), ("llamafactory", "images"), ("qwen-vl", "image")):
        for row in read_rows(root / name / "val.jsonl"):
            for p in row[key]:
                assert not Path(p).is_absolute() and (root / name / p).is_file()
    for row in read_rows(root / "swift" / "val.jsonl"):  # ms-swift: absolute whatever the option says
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in row["images"])


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_images_copied_or_linked_into_each_format(validated_run, mode):
    datakit.export.run(validated_run, export_config(image_mode=mode, image_paths="relative", formats=["trl", "llava"]))
    for row in read_rows(validated_run / "export" / "trl" / "train.jsonl"):
        for p in row["images"]:
            assert p.startswith("images/")
            target = validated_run / "export" / "trl" / p
            assert target.is_file()
            if mode == "hardlink":
                assert target.stat().st_nlink >= 2
    assert not (validated_run / "export" / "swift").exists()  # only the formats asked for


def test_tag_styles(validated_run):
    for style, opener in (("think", "<think>\n"), ("thought", "<|begin_of_thought|>\n")):
        datakit.export.run(validated_run, export_config(tag_style=style, formats=["trl", "swift"]))
        row = read_rows(validated_run / "export" / "trl" / "train.jsonl")[0]
        text = row["messages"][-1]["content"][0]["text"]
        assert text.startswith(opener) and "\n\nFINDINGS:" in text or "\n\nIMPRESSION:" in text
    datakit.export.run(validated_run, export_config(tag_style="reasoning_content", formats=["trl", "swift"]))
    assistant = read_rows(validated_run / "export" / "trl" / "train.jsonl")[0]["messages"][-1]
    assert assistant["reasoning_content"].startswith("Perception:")
    assert "<think>" not in assistant["content"][0]["text"]
    swift = read_rows(validated_run / "export" / "swift" / "train.jsonl")[0]
    assert swift["messages"][-1]["content"].startswith("<think>\n")  # inline where there is no such field
    datakit.export.run(validated_run, export_config(tag_style="none", formats=["trl"]))
    text = read_rows(validated_run / "export" / "trl" / "train.jsonl")[0]["messages"][-1]["content"][0]["text"]
    assert "<think>" not in text and "Perception:" not in text and text.startswith(("FINDINGS:", "IMPRESSION:"))
    card = (validated_run / "export" / "README.md").read_text()
    assert "direct-SFT baseline" in card


def test_rejected_and_review_decisions(validated_run):
    val = pl.read_parquet(validated_run / "validation.parquet")
    ids = sorted(val["study_id"].unique())
    rejected, flagged, in_review = ids[0], ids[1], ids[2]
    val = val.with_columns(
        passed=pl.when((pl.col("study_id") == rejected) & (pl.col("check") == "form")).then(False)
        .when((pl.col("study_id") == flagged) & (pl.col("check") == "leakage")).then(False)
        .otherwise(pl.col("passed")),
        severity=pl.when((pl.col("study_id") == rejected) & (pl.col("check") == "form")).then(pl.lit("error"))
        .when((pl.col("study_id") == flagged) & (pl.col("check") == "leakage")).then(pl.lit("warning"))
        .otherwise(pl.col("severity")),
    )
    val.write_parquet(validated_run / "validation.parquet")
    review = validated_run / "review" / "decisions.jsonl"
    review.parent.mkdir()
    lines = [{"study_id": in_review, "decision": "accept", "note": "", "time": "t0", "reviewer": "a"},
             {"study_id": in_review, "decision": "reject", "note": "wrong side", "time": "t1", "reviewer": "b"}]
    review.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cfg = export_config(formats=["trl"])
    result = datakit.export.run(validated_run, cfg, force=True)
    exported = {r["study_id"] for s in ("train", "val", "test")
                for r in read_rows(validated_run / "export" / "trl" / f"{s}.jsonl")}
    assert rejected not in exported and in_review not in exported and flagged in exported
    assert result.stats.excluded == {"rejected_by_validation": 1, "rejected_in_review": 1}
    assert result.stats.flagged == 1
    card = (validated_run / "export" / "README.md").read_text()
    assert "rejected_in_review | 1" in card and "reject 1" in card
    result = datakit.export.run(validated_run, export_config(formats=["trl"], include_flagged=False))
    assert result.stats.excluded["flagged_excluded"] == 1
    # a reviewer's accept keeps a flagged trace even then
    with open(review, "a") as fh:
        fh.write(json.dumps({"study_id": flagged, "decision": "accept", "note": "", "time": "t2",
                             "reviewer": "c"}) + "\n")
    result = datakit.export.run(validated_run, export_config(formats=["trl"], include_flagged=False))
    assert "flagged_excluded" not in result.stats.excluded


def test_unchanged_export_is_skipped_and_changes_are_not(validated_run, tmp_path):
    cfg = export_config(formats=["trl"])
    assert not datakit.export.run(validated_run, cfg).skipped
    assert datakit.export.run(validated_run, cfg).skipped
    prompts = tmp_path / "prompts" / "export"
    prompts.mkdir(parents=True)
    (prompts / "system.j2").write_text("You read chest films.")
    (prompts / "user.j2").write_text("Report on {{ n_images }} image(s).")
    cfg2 = export_config(formats=["trl"], prompts_dir=str(tmp_path / "prompts"))
    assert not datakit.export.run(validated_run, cfg2).skipped
    row = read_rows(validated_run / "export" / "trl" / "train.jsonl")[0]
    assert row["messages"][0]["content"][0]["text"] == "You read chest films."
    assert datakit.export.run(validated_run, cfg2).skipped
    review = validated_run / "review" / "decisions.jsonl"
    review.parent.mkdir()
    review.write_text(json.dumps({"study_id": row["study_id"], "decision": "reject"}) + "\n")
    assert not datakit.export.run(validated_run, cfg2).skipped


def test_workers_do_not_change_the_files(validated_run):
    datakit.export.run(validated_run, export_config(workers=1, formats=["trl", "llava"]))
    one = {p.name: p.read_bytes() for p in (validated_run / "export" / "trl").iterdir()}
    datakit.export.run(validated_run, export_config(workers=2, batch_size=5, formats=["trl", "llava"]), force=True)
    two = {p.name: p.read_bytes() for p in (validated_run / "export" / "trl").iterdir()}
    assert one == two


def test_unknown_format_lists_the_known_ones(validated_run):
    with pytest.raises(UnknownFormat) as err:
        datakit.export.run(validated_run, export_config(formats=["axolotl"]))
    assert "llamafactory" in err.value.hint and "qwen-vl" in err.value.hint


def test_prior_sentences_removed_when_asked(validated_run):
    traces = pl.read_parquet(validated_run / "traces.parquet")
    sid, trace_json = traces.row(0)[:2]
    trace = json.loads(trace_json)
    trace["report"]["impression"] = "Small left effusion. Unchanged from the prior study."
    traces = traces.with_columns(trace_json=pl.when(pl.col("study_id") == sid).then(pl.lit(json.dumps(trace)))
                                 .otherwise(pl.col("trace_json")))
    traces.write_parquet(validated_run / "traces.parquet")
    # validation judged the old traces; keep it as it is (its verdict is per study)
    manifest = json.loads((validated_run / "manifest.json").read_text())
    manifest["stages"].pop("validate")
    (validated_run / "manifest.json").write_text(json.dumps(manifest))

    def impression(**kw):
        datakit.export.run(validated_run, export_config(formats=["swift"], **kw), force=True)
        rows = [r for s in ("train", "val", "test") for r in read_rows(validated_run / "export" / "swift" /
                                                                        f"{s}.jsonl")]
        texts = [r["messages"][-1]["content"] for r in rows]
        return next(t for t in texts if "Small left effusion." in t)

    assert "Unchanged from the prior study." in impression()
    removed = impression(prior_sentences="remove")
    assert "prior" not in removed.split("IMPRESSION:")[1] and "Small left effusion." in removed


def test_card_counts_think_length_in_a_named_tokenizer(validated_run, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()  # words and punctuation: more tokens than words
    tok.save(str(tmp_path / "tok.json"))
    words = datakit.export.run(validated_run, export_config(formats=["trl"]))
    tokens = datakit.export.run(validated_run, export_config(formats=["trl"], tokenizer=str(tmp_path / "tok.json")))
    assert words.unit == "words" and tokens.unit == "tokens (tok.json)"
    assert tokens.stats.think_quantiles()[0.5] > words.stats.think_quantiles()[0.5]
    card = (validated_run / "export" / "README.md").read_text()
    assert "## Think block length (tokens (tok.json))" in card
    for needed in ("| offline |", "knowledge base fingerprint: `b2:", "export templates", "datakit ",
                   "## Reflection corrections", "## Labels of the exported studies", "PhysioNet"):
        assert needed in card

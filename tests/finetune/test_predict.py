"""``datakit predict``: the reloaded adapter (or the merged model) gives the trained model's greedy output."""

from __future__ import annotations

import json

import pytest

from datakit.finetune import data, loading
from datakit.finetune.inference import prompt_messages
from tests.finetune.conftest import need_finetune_extra

need_finetune_extra()

MAX_NEW = 64


def _greedy_by_hand(model, processor, row):
    """The in-memory trained model's greedy continuation of one row's prompt, unbatched."""
    import torch
    from PIL import Image

    text = processor.apply_chat_template(prompt_messages(row), add_generation_prompt=True, tokenize=False)
    images = [Image.open(p).convert("RGB") for p in row["images"]]
    inputs = processor(text=[text], images=[images], return_tensors="pt")
    with torch.inference_mode():
        ids = model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False)
    return processor.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]


@pytest.fixture(scope="module")
def expected(trained, trl_export, tiny_model):
    loaded = loading.load_processor(tiny_model, max_pixels=56 * 56)
    model = trained.model.eval()
    rows = data.read_rows(trl_export / "test.jsonl")
    return {r["study_id"]: data.split_think(_greedy_by_hand(model, loaded.processor, r), "think") for r in rows}


def _read(path):
    return {r["study_id"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_predict_with_the_adapter_reproduces_the_trained_model(trained, trl_export, tiny_model, expected, cli,
                                                               tmp_path):
    out = tmp_path / "preds.jsonl"
    res = cli(["predict", trl_export, "--model", tiny_model, "--adapter", trained.adapter, "--split", "test",
               "--out", out, "--batch-size", "2", "--max-new-tokens", MAX_NEW, "--cpu"])
    assert res.exit_code == 0, res.output
    assert "Predicted 4 studies (test, tags think)" in res.output
    preds = _read(out)
    assert set(preds) == set(expected)
    for sid, (think, report) in expected.items():
        assert (preds[sid]["think"], preds[sid]["report"]) == (think, report), sid
        assert set(preds[sid]) == {"study_id", "think", "report", "generation"}
    gen = next(iter(preds.values()))["generation"]
    assert gen["do_sample"] is False and gen["max_new_tokens"] == MAX_NEW and gen["batch_size"] == 2
    assert gen["max_pixels"] == 56 * 56  # what the adapter was trained with, read from finetune.json
    assert gen["adapter"] == str(trained.adapter) and gen["tags"] == "think"
    # (that it learnt at all is the loss test's to show: a 0.2 M-parameter model after 30 steps writes garbled text)


def test_predict_with_the_merged_model_gives_the_same(trained, trl_export, expected, cli, tmp_path):
    out = tmp_path / "merged.jsonl"
    res = cli(["predict", trl_export, "--model", trained.merged, "--out", out, "--max-new-tokens", MAX_NEW,
               "--max-pixels", 56 * 56, "--cpu", "--limit", 2])
    assert res.exit_code == 0, res.output
    preds = _read(out)
    assert len(preds) == 2
    for sid, row in preds.items():
        assert (row["think"], row["report"]) == expected[sid]
        assert row["generation"]["adapter"] is None


def test_predict_of_a_folder_without_an_adapter(trl_export, tiny_model, tmp_path, cli):
    res = cli(["predict", trl_export, "--model", tiny_model, "--adapter", tmp_path, "--out", tmp_path / "p.jsonl"])
    assert res.exit_code == 1
    assert "holds no adapter" in res.output

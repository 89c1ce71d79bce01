"""`datakit finetune` on a tiny Qwen2.5-VL: it learns, supervises the assistant turn only, saves what predict needs."""

from __future__ import annotations

import json

import pytest

from datakit.finetune import FinetuneConfig, data
from tests.finetune.conftest import TINY_TRAINING, need_finetune_extra

need_finetune_extra()


def _losses(out):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_thirty_steps_at_least_halve_the_loss(trained):
    losses = _losses(trained.out)
    assert [s for s, _ in losses] == list(range(1, 31))
    first, last = losses[0][1], losses[-1][1]
    assert last <= first / 2, losses
    assert trained.steps == 30 and trained.first_loss == first and trained.last_loss == last


def test_writes_adapter_processor_template_config(trained, tiny_model):
    adapter = trained.adapter
    for name in ("adapter_config.json", "adapter_model.safetensors", "chat_template.jinja", "tokenizer.json",
                 "preprocessor_config.json", "processor_config.json"):
        assert (adapter / name).is_file(), name
    # the processor files are the base model's own, not the image-only class the trainer used
    assert (adapter / "processor_config.json").read_text() == (tiny_model / "processor_config.json").read_text()
    assert (adapter / "chat_template.jinja").read_text() == (tiny_model / "chat_template.jinja").read_text()
    resolved = json.loads((trained.out / "finetune.json").read_text())
    assert resolved["finetune"]["max_steps"] == 30 and resolved["finetune"]["max_pixels"] == 56 * 56
    assert resolved["model_type"] == "qwen2_5_vl" and resolved["exclude_modules"] == r".*visual.*"
    assert resolved["tags"] == "think" and resolved["device"] == "cpu" and resolved["dtype"] == "float32"
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["r"] == 8 and cfg["exclude_modules"] == r".*visual.*"
    assert (trained.merged / "model.safetensors").is_file() and (trained.merged / "tokenizer.json").is_file()


def test_the_image_only_fallback_is_said(trained):
    assert any("image-only processor" in n and "torchvision" in n for n in trained.notes_said)


def test_lora_stays_off_the_vision_tower(trl_export, tiny_model, tmp_path):
    from datakit.finetune.train import prepare

    prep = prepare(trl_export, tiny_model, tmp_path / "out", FinetuneConfig(**TINY_TRAINING))
    trainable = [n for n, p in prep.trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not any("visual" in n for n in trainable)
    assert any("language_model" in n and "q_proj" in n for n in trainable)
    assert any("down_proj" in n for n in trainable)


def test_only_the_assistant_turn_is_supervised(trl_export, tiny_model, tmp_path):
    from datakit.finetune.train import prepare

    prep = prepare(trl_export, tiny_model, tmp_path / "out", FinetuneConfig(**TINY_TRAINING))
    trainer = prep.trainer
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    supervised = ids[labels != -100]
    tok = trainer.processing_class.tokenizer
    row = data.read_rows(trl_export / "train.jsonl", limit=1)[0]
    expected = data.assistant_text(row) + "<|im_end|>\n"
    assert tok.decode(supervised) == expected
    # token by token: the supervised tokens are exactly the tokens of the assistant text and the end of turn
    assert supervised.tolist() == tok(expected, add_special_tokens=False)["input_ids"]
    # ... and they are one contiguous run at the end: nothing of the system, user or image tokens
    positions = (labels != -100).nonzero().flatten().tolist()
    assert positions == list(range(positions[0], positions[0] + len(positions)))
    prompt = tok.decode(ids[: positions[0]])
    assert prompt.endswith("<|im_start|>assistant\n") and "<|image_pad|>" in prompt
    assert expected.startswith("<think>\nPerception:") and "</think>\n\nFINDINGS:" in expected


def test_resume_from_the_last_checkpoint(trl_export, tiny_model, tmp_path, cli):
    out = tmp_path / "out"
    args = ["finetune", str(trl_export), "--model", str(tiny_model), "--out", str(out), "--cpu",
            "--batch-size", "2", "--grad-accum", "1", "--max-pixels", "3136", "--lr", "0.02", "--lora-r", "8"]
    config = tmp_path / "ft.toml"
    config.write_text("[finetune]\nsave_steps = 2\ngradient_checkpointing = false\nlr_scheduler = 'constant'\n")
    first = cli([*args, "--max-steps", "2", "--config", str(config)])
    assert first.exit_code == 0, first.output
    assert "Trained 2 steps" in first.output and "image-only processor" in first.output
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    second = cli([*args, "--max-steps", "4", "--config", str(config)])
    assert second.exit_code == 0, second.output
    assert "resuming from checkpoint-2" in second.output and "Trained 4 steps" in second.output
    assert [s for s, _ in _losses(out)] == [1, 2, 3, 4]  # steps 1-2 kept, 3-4 appended: none twice
    state = json.loads((out / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    again = cli([*args, "--max-steps", "2", "--config", str(config), "--no-resume"])
    assert again.exit_code == 0, again.output
    assert "resuming" not in again.output and [s for s, _ in _losses(out)] == [1, 2]


def test_out_of_memory_names_the_settings_that_lower_memory(trl_export, tiny_model, tmp_path):
    import torch
    from transformers import TrainerCallback

    from datakit.finetune import finetune
    from datakit.finetune.errors import OutOfMemory

    class RunsOutOfMemory(TrainerCallback):  # what a CUDA allocation failure raises mid-step
        def on_step_end(self, args, state, control, **kwargs):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    cfg = FinetuneConfig(**{**TINY_TRAINING, "max_steps": 1})
    with pytest.raises(OutOfMemory) as err:
        finetune(trl_export, tiny_model, tmp_path / "out", cfg, callbacks=[RunsOutOfMemory()])
    hint = err.value.hint
    for knob in ("--batch-size 1", "--grad-accum", "--max-pixels", "gradient_checkpointing", "--lora-r"):
        assert knob in hint
    assert "(now 2)" in hint and f"(now {56 * 56})" in hint


def test_idefics3_smolvlm_trains_with_its_stock_processor(trl_export, tmp_path):
    from datakit.finetune import finetune
    from datakit.finetune.train import prepare
    from tests.finetune.tiny_model import build_tiny_idefics3

    rows = data.read_rows(trl_export / "train.jsonl")
    model = build_tiny_idefics3(tmp_path / "idefics3", [data.assistant_text(r) for r in rows])
    cfg = FinetuneConfig(**{**TINY_TRAINING, "max_steps": 4})
    prep = prepare(trl_export, model, tmp_path / "out", cfg)
    assert type(prep.trainer.processing_class).__name__ == "Idefics3Processor"  # no fallback needed
    assert any("do not apply to Idefics3ImageProcessorPil" in n for n in prep.notes)
    trainable = [n for n, p in prep.trainer.model.named_parameters() if p.requires_grad]
    assert trainable and not any("vision" in n for n in trainable)
    batch = prep.trainer.data_collator([prep.trainer.train_dataset[0]])
    supervised = batch["input_ids"][0][batch["labels"][0] != -100]
    text = prep.trainer.processing_class.tokenizer.decode(supervised)
    assert text.strip() == data.assistant_text(rows[0]) + "<end_of_utterance>"
    result = finetune(trl_export, model, tmp_path / "out", cfg)
    assert result.steps == 4 and result.last_loss < result.first_loss
    assert json.loads((tmp_path / "out" / "finetune.json").read_text())["exclude_modules"] == r".*vision.*"

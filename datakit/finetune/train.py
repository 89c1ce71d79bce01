"""``datakit finetune``: LoRA fine-tuning of a vision-language model on a ``trl`` export with TRL's SFTTrainer.

The loss covers the assistant turn only (the think block and the report, and the end-of-turn token): TRL's
``assistant_only_loss`` masks everything outside the chat template's ``{% generation %}`` markers, and swaps in its
marked training variant when the model's template is a known one (Qwen2.5-VL, Idefics3, SmolVLM, ...).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datakit.finetune import data, deps, loading
from datakit.finetune.config import FinetuneConfig
from datakit.finetune.errors import out_of_memory

CONFIG_NAME = "finetune.json"
METRICS_NAME = "metrics.jsonl"


@dataclass
class FinetuneResult:
    """What a fine-tune wrote and how it went."""

    out: Path
    adapter: Path
    merged: Path | None
    steps: int
    resumed_from: str | None
    first_loss: float | None
    last_loss: float | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    model: Any = None  # the trained (PEFT-wrapped) model, for callers of the library


def _metrics_callback(path: Path, start_step: int):
    from transformers import TrainerCallback

    class MetricsLog(TrainerCallback):
        """Appends every log (loss, learning rate, grad norm, tokens) to metrics.jsonl, one line per step."""

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
            if not logs or "loss" not in logs and "train_loss" not in logs:
                return
            row = {"step": state.global_step, "epoch": state.epoch, **logs, "time": time.time()}
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    # a resumed run re-logs nothing before its checkpoint: keep those lines, drop any logged after it
    if path.exists():
        kept = [ln for ln in path.read_text(encoding="utf-8").splitlines()
                if ln.strip() and "train_loss" not in json.loads(ln) and json.loads(ln)["step"] <= start_step]
        path.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")
    return MetricsLog()


def _sft_config(cfg: FinetuneConfig, out: Path, cuda: bool, template: str | None):
    import trl

    return trl.SFTConfig(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio of the total steps (transformers 5)
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        use_cpu=not cuda,
        bf16=cuda and cfg.bf16,
        gradient_checkpointing=cfg.gradient_checkpointing,
        assistant_only_loss=True,
        max_length=None,  # truncation could cut image tokens out of a sample
        chat_template_path=template,
        dataloader_num_workers=0,
        report_to="none",
    )


def _last_checkpoint(out: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / "checkpoints"
    found = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    return Path(found) if found else None


def _first_last_loss(path: Path) -> tuple[float | None, float | None]:
    losses = [json.loads(ln)["loss"] for ln in path.read_text(encoding="utf-8").splitlines()
              if ln.strip() and "loss" in json.loads(ln)] if path.exists() else []
    return (losses[0], losses[-1]) if losses else (None, None)


@dataclass
class Prepared:
    """A trainer ready to train, and what ``run`` needs to finish the job."""

    trainer: Any
    base: Path
    checkpoint: Path | None
    notes: list[str]


def prepare(
    export: str | Path,
    model: str | Path,
    out: str | Path,
    cfg: FinetuneConfig,
    *,
    callbacks: list[Any] | None = None,
) -> Prepared:
    """Load the data, model and processor, resolve and write the config, and build the SFTTrainer."""
    deps.require()
    import peft
    import torch
    import trl

    out = Path(out)
    cuda = torch.cuda.is_available() and not cfg.cpu
    split = data.find_split(Path(export), "train")
    base = loading.resolve_model(model)
    loaded = loading.load_processor(base, max_pixels=cfg.max_pixels, min_pixels=cfg.min_pixels)
    out.mkdir(parents=True, exist_ok=True)
    dataset = data.load_dataset(split, out / ".cache")
    tags = data.detect_tags(data.read_rows(split, limit=1))
    dtype = torch.bfloat16 if cuda and cfg.bf16 else torch.float32
    net = loading.load_model(base, dtype=dtype, attn_implementation=cfg.attn_implementation)
    lora = peft.LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        exclude_modules=cfg.exclude_modules or loading.lora_exclude(loaded.model_type),
        task_type="CAUSAL_LM",
    )
    checkpoint = _last_checkpoint(out) if cfg.resume else None
    start_step = int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint else 0
    if not cfg.resume:
        (out / METRICS_NAME).unlink(missing_ok=True)
    metrics = _metrics_callback(out / METRICS_NAME, start_step)
    resolved = {
        "base_model": str(base), "model_type": loaded.model_type, "export": str(split.parent),
        "train_file": str(split), "train_rows": len(dataset), "tags": tags, "device": "cuda" if cuda else "cpu",
        "dtype": str(dtype).removeprefix("torch."), "exclude_modules": lora.exclude_modules,
        "processor": type(loaded.processor).__name__, "notes": loaded.notes,
        "versions": {name: _version(name) for name in deps.MINIMUM},
        "finetune": cfg.model_dump(mode="json"),
    }
    (out / CONFIG_NAME).write_text(json.dumps(resolved, indent=2) + "\n", encoding="utf-8")
    trainer = trl.SFTTrainer(
        model=net, args=_sft_config(cfg, out, cuda, cfg.chat_template_path), train_dataset=dataset,
        processing_class=loaded.processor, peft_config=lora, callbacks=[metrics, *(callbacks or [])],
    )
    return Prepared(trainer=trainer, base=base, checkpoint=checkpoint, notes=loaded.notes)


def run(
    export: str | Path,
    model: str | Path,
    out: str | Path,
    cfg: FinetuneConfig | None = None,
    *,
    notify: Callable[[str], None] | None = None,
    callbacks: list[Any] | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` with LoRA on the train split of the trl export ``export``; write everything to ``out``.

    ``OUT/adapter`` (the LoRA adapter with the base model's processor and chat template), ``OUT/finetune.json``
    (the resolved settings), ``OUT/metrics.jsonl`` (one line per logged step), ``OUT/checkpoints`` (resumed from
    on the next run) and, with ``merge``, ``OUT/merged``.
    """
    import torch

    cfg = cfg or FinetuneConfig()
    say = notify or (lambda _msg: None)
    out = Path(out)
    started = time.perf_counter()
    prep = prepare(export, model, out, cfg, callbacks=callbacks)
    for note in prep.notes:
        say(note)
    if prep.checkpoint:
        say(f"resuming from {prep.checkpoint.name}")
    trainer = prep.trainer
    try:
        trainer.train(resume_from_checkpoint=str(prep.checkpoint) if prep.checkpoint else None)
    except torch.OutOfMemoryError as err:
        raise out_of_memory(cfg.model_dump(), "training") from err
    adapter = out / "adapter"
    trainer.model.save_pretrained(adapter)
    loading.copy_processor_files(prep.base, adapter)
    merged, final = None, trainer.model
    if cfg.merge:
        merged = out / "merged"
        final = trainer.model.merge_and_unload()
        final.save_pretrained(merged)
        loading.copy_processor_files(prep.base, merged)
    first, last = _first_last_loss(out / METRICS_NAME)
    return FinetuneResult(
        out=out, adapter=adapter, merged=merged, steps=trainer.state.global_step,
        resumed_from=prep.checkpoint.name if prep.checkpoint else None, first_loss=first, last_loss=last,
        seconds=time.perf_counter() - started, notes=prep.notes, model=final,
    )


def _version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None

"""The fine-tuning errors; each says what to change."""

from __future__ import annotations

from datakit.errors import DatakitError

# The settings that lower GPU memory, most effective first (the OOM hint lists them with their current values).
MEMORY_KNOBS = (
    ("--batch-size 1", "batch_size", "the batch per step"),
    ("--grad-accum N (more)", "grad_accum", "keeps the effective batch while the per-step batch shrinks"),
    ("--max-pixels 200704 (lower)", "max_pixels", "fewer visual tokens per image"),
    ("gradient_checkpointing = true", "gradient_checkpointing", "recomputes activations instead of storing them"),
    ("--lora-r 8 (smaller)", "lora_r", "fewer trainable parameters and optimiser state"),
)


class FinetuneError(DatakitError):
    """Fine-tuning or prediction cannot go on."""


class FinetuneDepsMissing(FinetuneError):
    """The ``[finetune]`` extra (torch, transformers, peft, trl, accelerate, datasets) is not installed."""

    exit_code = 2


class ExportLayoutError(FinetuneError):
    """The folder given is not a ``trl`` export (missing, another format, or rows that break the layout)."""

    exit_code = 2


class ModelLoadError(FinetuneError):
    """The model or its processor cannot be loaded."""


class NotAVisionLanguageModel(ModelLoadError):
    """The model is a text-only (or otherwise non image-text-to-text) model."""


class OutOfMemory(FinetuneError):
    """The GPU ran out of memory."""

    exit_code = 3


def out_of_memory(settings: dict, what: str = "training") -> OutOfMemory:
    """The CUDA out-of-memory error, listing the settings that lower memory and their current values."""
    lines = [f"{flag}: {why} (now {settings.get(key)})" for flag, key, why in MEMORY_KNOBS]
    return OutOfMemory(
        f"CUDA ran out of memory during {what}",
        hint="lower memory with, in this order: " + "; ".join(lines) + ". Checkpoints are kept: re-running the "
        "same command resumes from the last one",
    )

"""Fixtures of the fine-tune tests: a tiny Qwen2.5-VL and a small trl export, each built once per session.

The tests that train or load models need the ``[finetune]`` extra; without it they are skipped with the reason
(``make test`` installs it, so CI runs them). Reading exports needs nothing of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.annotate.run_fixture import make_demo_run
from tests.finetune.export_fixture import make_trl_export
from tests.finetune.tiny_model import build_tiny_qwen25vl

EXTRA = ("torch", "transformers", "peft", "trl", "accelerate", "datasets")


def need_finetune_extra() -> None:
    """Skip the calling test module unless the ``[finetune]`` extra is installed, saying so."""
    for name in EXTRA:
        pytest.importorskip(name, reason=f"{name} is missing: the [finetune] extra is not installed "
                            "(pip install 'torch==2.13.0', then pip install 'datakit[finetune]')")


@pytest.fixture(scope="session")
def annotated_run(tmp_path_factory) -> Path:
    import datakit.annotate
    from datakit.config import load_config

    run = make_demo_run(tmp_path_factory.mktemp("ft-demo") / "run")
    datakit.annotate.run(run, load_config(), progress=False)
    return run


@pytest.fixture(scope="session")
def trl_export(annotated_run, tmp_path_factory) -> Path:
    """``RUN/export/trl`` with the demo's train (4 studies kept, for speed), val and test splits."""
    dest = make_trl_export(annotated_run, annotated_run / "export" / "trl")
    train = (dest / "train.jsonl").read_text(encoding="utf-8").splitlines()
    (dest / "train.jsonl").write_text("".join(line + "\n" for line in train[:4]), encoding="utf-8")
    return dest


@pytest.fixture(scope="session")
def tiny_model(trl_export, tmp_path_factory) -> Path:
    """A tiny random Qwen2.5-VL whose tokenizer was trained on the export's texts."""
    texts = []
    for split in ("train", "val", "test"):
        for line in (trl_export / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts += [p["text"] for m in row["messages"] for p in m["content"] if p.get("text")]
    return build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny") / "qwen25vl", texts)


# Settings that make 30 LoRA steps on the tiny model learn enough to halve the loss, in seconds on a CPU.
TINY_TRAINING = {
    "cpu": True, "max_steps": 30, "batch_size": 2, "grad_accum": 1, "learning_rate": 2e-2, "lr_scheduler": "constant",
    "warmup_ratio": 0.0, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "max_pixels": 56 * 56,
    "gradient_checkpointing": False, "save_steps": 10, "seed": 0,
}


@pytest.fixture(scope="session")
def trained(trl_export, tiny_model, tmp_path_factory):
    """30 steps of ``datakit.finetune.finetune`` on the tiny model, merged too; the result keeps the model."""
    from datakit.finetune import FinetuneConfig, finetune

    notes: list[str] = []
    out = tmp_path_factory.mktemp("ft") / "out"
    result = finetune(trl_export, tiny_model, out, FinetuneConfig(**TINY_TRAINING, merge=True), notify=notes.append)
    result.notes_said = notes
    return result


@pytest.fixture
def cli():
    """Run ``datakit ARGS`` in-process; the result's output holds stdout and stderr."""
    from typer.testing import CliRunner

    from datakit.cli.app import app

    runner = CliRunner()
    return lambda args: runner.invoke(app, [str(a) for a in args])

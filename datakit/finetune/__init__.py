"""Fine-tune a vision-language model on a ``trl`` export (LoRA, TRL SFTTrainer) and predict reports with it.

torch, transformers, peft, trl and datasets (the ``[finetune]`` extra) are imported inside the functions only, so
``import datakit`` stays light and works without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datakit.finetune.config import FinetuneConfig, PredictConfig, load_finetune_config, load_predict_config

__all__ = ["FinetuneConfig", "PredictConfig", "finetune", "load_finetune_config", "load_predict_config", "predict"]


def finetune(export: str | Path, model: str | Path, out: str | Path, cfg: FinetuneConfig | None = None,
             **kwargs: Any):
    """LoRA fine-tune ``model`` on the train split of a trl export; see :func:`datakit.finetune.train.run`."""
    from datakit.finetune.train import run

    return run(export, model, out, cfg, **kwargs)


def predict(export: str | Path, model: str | Path, out: str | Path, cfg: PredictConfig | None = None, **kwargs: Any):
    """Predictions JSONL for one split of a trl export; see :func:`datakit.finetune.inference.run`."""
    from datakit.finetune.inference import run

    return run(export, model, out, cfg, **kwargs)

"""Qwen2.5-VL's own fine-tuning code (``qwen-vl-finetune``): LLaVA-style ``conversations`` plus ``image``.

``qwenvl/data/data_processor.py`` maps ``from == "human"`` to the user and every other turn to the assistant, so
there is no system turn (the chat template adds its default one). Each ``<image>`` in a user turn takes the next
image of ``image`` (a string or a list), joined to the dataset's ``data_path``; one placeholder too many or one
image unused is a ``ValueError`` there. Datasets are registered by name in ``qwenvl/data/__init__.py``: the
snippet to paste is written beside the splits.
"""

from __future__ import annotations

from typing import Any

from datakit.export.base import EXPORTERS, Exporter, Turn

DATASET = "datakit_cxr"


@EXPORTERS.register("qwen-vl")
class QwenVLExporter(Exporter):
    """One JSON line per study: image (list of paths) and conversations (from/value)."""

    name = "qwen-vl"
    has_system = False
    framework = "Qwen2.5-VL qwen-vl-finetune"

    def row(self, record: Any, images: list[str]) -> dict[str, Any]:  # noqa: D102
        _, user = record.texts()
        content, _ = record.assistant()
        return {
            "id": record.study_id,
            "image": images,
            "conversations": [
                {"from": "human", "value": self.placeholders(len(images), "\n") + user},
                {"from": "gpt", "value": content},
            ],
        }

    def turns(self, row: dict[str, Any]) -> tuple[list[Turn], list[str]]:  # noqa: D102
        images = row.get("image") or []
        images = [images] if isinstance(images, str) else list(images)
        turns = []
        for t in row.get("conversations") or []:
            role = {"human": "user", "gpt": "assistant"}.get(t.get("from"), t.get("from") or "")
            value = t.get("value") or ""
            turns.append(Turn(role, value, value.count("<image>")))
        return turns, images

    def side_files(self, splits: dict[str, int]) -> dict[str, str]:  # noqa: D102
        root = self.layout.root.resolve()
        lines = [
            "# Paste into qwen-vl-finetune/qwenvl/data/__init__.py beside the other datasets (written by datakit",
            "# export), then train with --dataset_use " + ",".join(f"{DATASET}_{s}" for s in splits if s == "train"),
            "",
        ]
        for split in splits:
            var = f"{DATASET}_{split}".upper()
            lines.append(f"{var} = {{")
            lines.append(f'    "annotation_path": "{root / self.split_file(split)}",')
            lines.append(f'    "data_path": "{root}",')
            lines.append("}")
        lines.append("")
        for split in splits:
            lines.append(f'data_dict["{DATASET}_{split}"] = {f"{DATASET}_{split}".upper()}')
        return {"data_registry.py": "\n".join(lines) + "\n"}

    def load_instructions(self, splits: dict[str, int]) -> str:  # noqa: D102
        return (
            "Paste `qwen-vl/data_registry.py` into `qwen-vl-finetune/qwenvl/data/__init__.py`, then:\n\n"
            "```sh\n"
            "torchrun --nproc_per_node 1 qwenvl/train/train_qwen.py \\\n"
            "  --model_name_or_path Qwen/Qwen2.5-VL-7B-Instruct \\\n"
            f"  --dataset_use {DATASET}_train --output_dir out ...\n"
            "```\n"
            "Relative image paths resolve against `data_path` (this folder). The model's default system prompt is "
            "used; train_qwen.py picks the model class from a name containing \"qwen2.5\"."
        )

"""LLaMA-Factory: sharegpt formatting with role/content tags, registered in ``dataset_info.json``.

``messages`` holds ``{"role", "content"}`` turns (system first, optional), ``images`` the paths, one ``<image>`` token
per image in the user turn (``data/README.md``, "OpenAI Format" and "Multimodal Dataset"). Relative paths resolve
against ``media_dir``, which defaults to ``dataset_dir``: this folder (``src/llamafactory/hparams/data_args.py``).
"""

from __future__ import annotations

import json
from typing import Any

from datakit.export.base import EXPORTERS, Exporter, Turn

TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
        "system_tag": "system"}
DATASET = "datakit_cxr"


@EXPORTERS.register("llamafactory")
class LlamaFactoryExporter(Exporter):
    """One JSON line per study: messages (role/content strings) and images."""

    name = "llamafactory"
    framework = "LLaMA-Factory"

    def row(self, record: Any, images: list[str]) -> dict[str, Any]:  # noqa: D102
        system, user = record.texts()
        content, _ = record.assistant()
        messages = [{"role": "system", "content": system}] if system is not None else []
        messages.append({"role": "user", "content": self.placeholders(len(images)) + user})
        messages.append({"role": "assistant", "content": content})
        return {"messages": messages, "images": images}

    def turns(self, row: dict[str, Any]) -> tuple[list[Turn], list[str]]:  # noqa: D102
        turns = [Turn(m.get("role", ""), m.get("content") or "", (m.get("content") or "").count("<image>"))
                 for m in row.get("messages") or []]
        return turns, list(row.get("images") or [])

    def side_files(self, splits: dict[str, int]) -> dict[str, str]:  # noqa: D102
        info = {
            f"{DATASET}_{split}": {
                "file_name": self.split_file(split),
                "formatting": "sharegpt",
                "columns": {"messages": "messages", "images": "images"},
                "tags": TAGS,
            }
            for split in splits
        }
        return {"dataset_info.json": json.dumps(info, indent=2) + "\n"}

    def load_instructions(self, splits: dict[str, int]) -> str:  # noqa: D102
        return (
            "In the training YAML (`llamafactory-cli train cxr.yaml`):\n\n"
            "```yaml\n"
            "dataset_dir: RUN/export/llamafactory   # holds dataset_info.json; relative image paths resolve here\n"
            f"dataset: {DATASET}_train\n"
            f"eval_dataset: {DATASET}_val\n"
            "template: qwen2_vl                      # your model's template\n"
            "```\n"
            "A `<think>` block in the answer suits a reasoning template; with tag style `none` use a `*_nothink` one."
        )

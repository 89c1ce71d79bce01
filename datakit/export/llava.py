"""LLaVA (``haotian-liu/LLaVA``): one JSON list per split, one image per sample, human/gpt turns.

``docs/Finetune_Custom_Data.md``: ``id``, ``image`` (relative to ``--image_folder``), ``conversations`` with
``from: human | gpt``. ``llava/train/train.py`` opens ``os.path.join(image_folder, image)`` (an absolute path
stays absolute), moves ``<image>`` to the start of its turn followed by a newline, and has no system role (its
conversation template brings one). One image per sample: the first frontal view.
"""

from __future__ import annotations

from typing import Any

from datakit.export.base import EXPORTERS
from datakit.export.qwenvl import QwenVLExporter


@EXPORTERS.register("llava")
class LlavaExporter(QwenVLExporter):
    """One item of a JSON list per study: id, image (one path), conversations (from/value)."""

    name = "llava"
    suffix = ".json"
    max_images = 1
    framework = "LLaVA"

    def row(self, record: Any, images: list[str]) -> dict[str, Any]:  # noqa: D102
        _, user = record.texts(1)
        content, _ = record.assistant()
        return {
            "id": record.study_id,
            "image": images[0] if len(images) == 1 else images,
            "conversations": [
                {"from": "human", "value": self.placeholders(len(images), "\n") + user},
                {"from": "gpt", "value": content},
            ],
        }

    def side_files(self, splits: dict[str, int]) -> dict[str, str]:  # noqa: D102
        return {}

    def load_instructions(self, splits: dict[str, int]) -> str:  # noqa: D102
        return (
            "```sh\n"
            "deepspeed llava/train/train_mem.py --model_name_or_path liuhaotian/llava-v1.5-7b --version v1 \\\n"
            "  --data_path RUN/export/llava/train.json --image_folder RUN/export/llava ...\n"
            "```\n"
            "One image per sample (the first frontal view); LLaVA's conversation template supplies the system prompt."
        )

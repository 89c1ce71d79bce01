"""ms-swift: the standard ``messages`` format with ``<image>`` tokens and an ``images`` list of absolute paths.

``messages`` (``system`` optional) and ``images``, whose paths are preferably absolute
(``docs/source_en/Customization/Custom-dataset.md``, "Multimodal"); datakit always writes them absolute, since
a relative path would resolve against wherever ``swift`` runs.
"""

from __future__ import annotations

from datakit.export.base import EXPORTERS
from datakit.export.llamafactory import LlamaFactoryExporter


@EXPORTERS.register("swift")
class SwiftExporter(LlamaFactoryExporter):
    """One JSON line per study: messages (role/content strings) and absolute image paths."""

    name = "swift"
    absolute_paths = True
    framework = "ms-swift"

    def side_files(self, splits: dict[str, int]) -> dict[str, str]:  # noqa: D102
        return {}

    def load_instructions(self, splits: dict[str, int]) -> str:  # noqa: D102
        return (
            "```sh\n"
            "swift sft --model Qwen/Qwen2.5-VL-7B-Instruct --train_type lora \\\n"
            "  --dataset RUN/export/swift/train.jsonl --val_dataset RUN/export/swift/val.jsonl\n"
            "```\n"
            "With a think block, `--loss_scale default+ignore_empty_think` is an option."
        )

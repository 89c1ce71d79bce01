"""TRL ``SFTTrainer``: ``images`` (a list of paths) and ``messages`` whose contents are typed parts.

The user turn holds one bare ``{"type": "image"}`` part per image, in order, then the instruction (TRL's
"Vision datasets", ``docs/source/dataset_formats.md``). No part carries an ``"image": path`` key: Arrow unifies
struct fields, every text part would get ``image: None``, and the Qwen2-VL template's ``'image' in content`` test
would then render text parts as images. Tag style ``reasoning_content`` puts the think text in a separate field
of the assistant message, as TRL's Qwen3 training templates read it (``docs/source/chat_templates.md``).
"""

from __future__ import annotations

from typing import Any

from datakit.export.base import EXPORTERS, Exporter, Turn


@EXPORTERS.register("trl")
class TRLExporter(Exporter):
    """One JSON line per study: study_id, images, messages with typed content parts."""

    name = "trl"
    placeholder = None
    reasoning_field = True
    framework = "TRL (SFTTrainer)"

    def row(self, record: Any, images: list[str]) -> dict[str, Any]:  # noqa: D102
        system, user = record.texts()
        content, reasoning = record.assistant(separate=True)
        messages: list[dict[str, Any]] = []
        if system is not None:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        messages.append({"role": "user", "content": [*({"type": "image"} for _ in images),
                                                      {"type": "text", "text": user}]})
        assistant: dict[str, Any] = {"role": "assistant", "content": [{"type": "text", "text": content}]}
        if reasoning is not None:
            assistant["reasoning_content"] = reasoning
        messages.append(assistant)
        return {"study_id": record.study_id, "images": images, "messages": messages}

    def turns(self, row: dict[str, Any]) -> tuple[list[Turn], list[str]]:  # noqa: D102
        out = []
        for m in row.get("messages") or []:
            parts = m.get("content")
            if isinstance(parts, str):  # plain-string content also loads in TRL
                out.append(Turn(m.get("role", ""), parts, 0, m.get("reasoning_content")))
                continue
            texts, slots, bad = [], 0, False
            for p in parts or []:
                if p.get("type") == "image":
                    slots += 1
                    bad = bad or len(p) != 1  # nothing beside "type": see the module docstring
                elif p.get("type") == "text":
                    texts.append(p.get("text") or "")
            out.append(Turn(m.get("role", ""), "".join(texts), slots, m.get("reasoning_content"), bad))
        return out, list(row.get("images") or [])

    def load_instructions(self, splits: dict[str, int]) -> str:  # noqa: D102
        return (
            "```python\n"
            "import datasets, trl\n"
            "ds = datasets.load_dataset(\"json\", data_files={\"train\": \"trl/train.jsonl\", "
            "\"validation\": \"trl/val.jsonl\"})\n"
            "# relative image paths are relative to trl/: resolve them before casting\n"
            "ds = ds.cast_column(\"images\", datasets.List(datasets.Image()))\n"
            "cfg = trl.SFTConfig(output_dir=\"out\", max_length=None, assistant_only_loss=True)\n"
            "trainer = trl.SFTTrainer(model=model, args=cfg, train_dataset=ds[\"train\"], "
            "eval_dataset=ds[\"validation\"], processing_class=processor)\n"
            "```\n"
            "`max_length=None`: truncation must not cut image tokens. `datakit finetune` reads this folder as it is."
        )

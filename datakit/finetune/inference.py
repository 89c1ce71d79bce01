"""``datakit predict``: generate reports for a split of a ``trl`` export with a base model + adapter (or merged)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datakit.finetune import data, deps, loading
from datakit.finetune.config import PredictConfig
from datakit.finetune.errors import ModelLoadError, out_of_memory
from datakit.finetune.train import CONFIG_NAME


@dataclass
class PredictResult:
    """What predict wrote."""

    out: Path
    rows: int
    tags: str
    seconds: float
    notes: list[str] = field(default_factory=list)


def _trained_with(adapter: Path | None, model: Path) -> dict[str, Any]:
    """The resolved fine-tune settings beside an adapter or a merged model, when there are any."""
    for folder in [f for f in (adapter, model) if f is not None]:
        for cand in (folder / CONFIG_NAME, folder.parent / CONFIG_NAME):
            if cand.is_file():
                return json.loads(cand.read_text(encoding="utf-8")).get("finetune", {})
    return {}


def prompt_messages(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The row's messages before the (last) assistant turn: what the model is asked."""
    msgs = row["messages"]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    return msgs[:last]


def _images(paths: list[str]) -> list[Any]:
    from PIL import Image

    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(im.convert("RGB"))
    return out


def generate(net: Any, processor: Any, rows: list[dict[str, Any]], settings: dict[str, Any], device: str) -> list[str]:
    """Generated assistant texts for a batch of rows (left-padded, special tokens dropped)."""
    import torch

    texts = [processor.apply_chat_template(prompt_messages(r), add_generation_prompt=True, tokenize=False)
             for r in rows]
    images = [_images(r["images"]) for r in rows]
    has_images = any(images)
    processor.tokenizer.padding_side = "left"  # generation continues from the right end of every row
    inputs = processor(text=texts, images=images if has_images else None, padding=True, return_tensors="pt")
    inputs = inputs.to(device)
    if "pixel_values" in inputs and net.dtype != torch.float32:
        inputs["pixel_values"] = inputs["pixel_values"].to(net.dtype)
    with torch.inference_mode():
        ids = net.generate(**inputs, **settings)
    new = ids[:, inputs["input_ids"].shape[1]:]
    return processor.batch_decode(new, skip_special_tokens=True)


def run(
    export: str | Path,
    model: str | Path,
    out: str | Path,
    cfg: PredictConfig | None = None,
    *,
    adapter: str | Path | None = None,
    notify: Callable[[str], None] | None = None,
) -> PredictResult:
    """Predict every study of one split; write JSONL rows ``study_id, think, report, generation`` to ``out``."""
    deps.require()
    import torch

    cfg = cfg or PredictConfig()
    say = notify or (lambda _msg: None)
    started = time.perf_counter()
    split = data.find_split(Path(export), cfg.split)
    rows = data.read_rows(split, limit=cfg.limit)
    tags = data.detect_tags(rows) if cfg.tags == "auto" else cfg.tags
    base = loading.resolve_model(model)
    adapter_dir = Path(adapter) if adapter else None
    if adapter_dir is not None and not (adapter_dir / "adapter_config.json").is_file():
        raise ModelLoadError(f"{adapter_dir} holds no adapter (adapter_config.json)",
                             hint="pass OUT/adapter of `datakit finetune`, or a merged model with --model only")
    trained = _trained_with(adapter_dir, base)
    max_pixels = cfg.max_pixels or trained.get("max_pixels")
    min_pixels = cfg.min_pixels or trained.get("min_pixels")
    # the processor beside the adapter is the base model's own, copied there by finetune
    proc_dir = adapter_dir if adapter_dir and (adapter_dir / "tokenizer_config.json").is_file() else base
    loaded = loading.load_processor(proc_dir, max_pixels=max_pixels, min_pixels=min_pixels,
                                    kind=loading.model_type(base))
    for note in loaded.notes:
        say(note)
    cuda = torch.cuda.is_available() and not cfg.cpu
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda and cfg.bf16 else torch.float32
    net = loading.load_model(base, dtype=dtype, attn_implementation="sdpa", device=device)
    if adapter_dir is not None:
        from peft import PeftModel

        net = PeftModel.from_pretrained(net, adapter_dir).merge_and_unload()  # merged: the same maths, faster
    net.eval()
    tok = loaded.processor.tokenizer
    settings: dict[str, Any] = {
        "max_new_tokens": cfg.max_new_tokens, "do_sample": cfg.do_sample, "num_beams": cfg.num_beams,
        "repetition_penalty": cfg.repetition_penalty, "pad_token_id": tok.pad_token_id or tok.eos_token_id,
    }
    if cfg.do_sample:
        settings |= {"temperature": cfg.temperature, "top_p": cfg.top_p}
        torch.manual_seed(cfg.seed)
    record = {**{k: v for k, v in settings.items() if k != "pad_token_id"}, "batch_size": cfg.batch_size,
              "model": str(base), "adapter": str(adapter_dir) if adapter_dir else None, "tags": tags,
              "max_pixels": max_pixels, "split": cfg.split, "device": device}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with tmp.open("w", encoding="utf-8") as fh:
        for i in range(0, len(rows), cfg.batch_size):
            batch = rows[i:i + cfg.batch_size]
            try:
                texts = generate(net, loaded.processor, batch, settings, device)
            except torch.OutOfMemoryError as err:
                raise out_of_memory({"batch_size": cfg.batch_size, "max_pixels": max_pixels}, "generation") from err
            for row, text in zip(batch, texts, strict=True):
                think, report = data.split_think(text, tags)
                fh.write(json.dumps({"study_id": row.get("study_id"), "think": think, "report": report,
                                     "generation": record}, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return PredictResult(out=out, rows=len(rows), tags=tags, seconds=time.perf_counter() - started,
                         notes=loaded.notes)


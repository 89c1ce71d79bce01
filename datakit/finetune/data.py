"""Reading a ``trl`` export: find the split file, check its rows, turn them into a training dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datakit.finetune.errors import ExportLayoutError

FORMATS = ("trl", "llamafactory", "swift", "qwen-vl", "llava")
TAGS = {"think": ("<think>", "</think>"), "thought": ("<|begin_of_thought|>", "<|end_of_thought|>")}
EXPORT_HINT = "make one with `datakit export --run RUN --format trl` and pass RUN/export/trl"


def _other_format(folder: Path) -> str | None:
    if folder.name in FORMATS and folder.name != "trl":
        return folder.name
    return None


def find_split(export: Path, split: str) -> Path:
    """The split file of a ``trl`` export given as the split file, the ``trl`` folder, ``RUN/export`` or ``RUN``."""
    export = Path(export)
    if export.is_file():
        return export
    if not export.exists():
        raise ExportLayoutError(f"{export} does not exist", hint=EXPORT_HINT)
    other = _other_format(export)
    if other:
        raise ExportLayoutError(
            f"{export} is a {other} export; datakit finetune and predict read the trl export",
            hint=f"pass {export.parent / 'trl'} (make it with `datakit export --run RUN --format trl`)",
        )
    for folder in (export, export / "trl", export / "export" / "trl"):
        if (folder / f"{split}.jsonl").is_file():
            return folder / f"{split}.jsonl"
    for folder in (export, export / "trl", export / "export" / "trl"):
        if folder.is_dir() and any(folder.glob("*.jsonl")):
            have = ", ".join(sorted(p.stem for p in folder.glob("*.jsonl")))
            raise ExportLayoutError(
                f"{folder} has no {split}.jsonl (it has: {have})", hint="pick one of those with --split"
            )
    others = [f for f in FORMATS[1:] if (export / f).is_dir() or (export / "export" / f).is_dir()]
    seen = f" (it has the {', '.join(others)} export)" if others else ""
    raise ExportLayoutError(f"no trl export found in {export}{seen}", hint=EXPORT_HINT)


def _row_problem(row: Any) -> str | None:
    """Why one row is not in the trl layout, or None."""
    if not isinstance(row, dict):
        return "a row is not a JSON object"
    if "conversations" in row:
        return "rows have `conversations` (the Qwen-VL / LLaVA layout), not `messages`"
    msgs = row.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "no `messages` list"
    images = row.get("images", [])
    if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
        return "`images` is not a list of paths"
    parts = 0
    for m in msgs:
        if not isinstance(m, dict) or "role" not in m:
            return "a message without a role"
        content = m.get("content")
        if isinstance(content, str):
            if "<image>" in content:
                return "string contents with <image> placeholders (the LLaMA-Factory / ms-swift layout)"
            continue
        if not isinstance(content, list):
            return f"the {m['role']} message has no content list"
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("image", "text"):
                return f"a {m['role']} content part is not {{'type': 'image' | 'text', ...}}"
            if part["type"] == "image":
                if "image" in part:
                    return "an image part carries an `image` key (the trl layout keeps paths in `images`)"
                parts += 1
    if not any(m["role"] == "assistant" for m in msgs):
        return "no assistant message"
    if parts != len(images):
        return f"{len(images)} image(s) but {parts} {{'type': 'image'}} part(s)"
    return None


def read_rows(path: Path, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The rows of a split file, checked, with image paths made absolute (relative ones: to the file's folder)."""
    rows: list[dict[str, Any]] = []
    bad: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                bad.append(f"line {n}: not JSON ({err.msg})")
                continue
            problem = _row_problem(row)
            if problem is None:
                row["images"] = [str((path.parent / p).resolve()) for p in row.get("images", [])]
                missing = [p for p in row["images"] if not Path(p).is_file()]
                problem = f"image not found: {missing[0]}" if missing else None
            if problem:
                bad.append(f"line {n}: {problem}")
            else:
                rows.append(row)
            if limit and len(rows) >= limit:
                break
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ExportLayoutError(
            f"{path} is not a valid trl export: " + "; ".join(bad[:5]) + more,
            hint="re-make it with `datakit export --format trl`; the trl layout has `messages` with typed content "
            "parts and an `images` list of paths",
        )
    if not rows:
        raise ExportLayoutError(f"{path} has no rows", hint=EXPORT_HINT)
    return rows


def assistant_text(row: dict[str, Any]) -> str:
    """The reference assistant turn of a row as one text (a separate reasoning_content folded in as <think>)."""
    msg = next(m for m in reversed(row["messages"]) if m["role"] == "assistant")
    content = msg["content"]
    text = content if isinstance(content, str) else "".join(p.get("text") or "" for p in content)
    if msg.get("reasoning_content"):
        return f"{TAGS['think'][0]}\n{msg['reasoning_content']}\n{TAGS['think'][1]}\n\n{text}"
    return text


def detect_tags(rows: list[dict[str, Any]]) -> str:
    """The export's tag style, read off its assistant turns: think, thought, reasoning_content or none."""
    first = next(m for m in reversed(rows[0]["messages"]) if m["role"] == "assistant")
    if first.get("reasoning_content"):
        return "reasoning_content"
    text = assistant_text(rows[0]).lstrip()
    for style, (open_tag, _) in TAGS.items():
        if text.startswith(open_tag):
            return style
    return "none"


def split_think(text: str, style: str) -> tuple[str, str]:
    """(think, report) of a generated text; the think block is cut by the tag style's tags."""
    # reasoning_content exports are trained with the think block folded into <think> tags (assistant_text)
    open_tag, close_tag = TAGS.get("think" if style == "reasoning_content" else style, ("", ""))
    if not open_tag:
        return "", text.strip()
    head, sep, tail = text.partition(close_tag)
    if not sep:  # no closing tag: an unfinished think block (cut by max_new_tokens) or no think block at all
        return (text.split(open_tag, 1)[1].strip(), "") if open_tag in text else ("", text.strip())
    think = head.split(open_tag, 1)[1] if open_tag in head else head
    return think.strip(), tail.strip()


def training_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as SFTTrainer wants them: ``messages`` (typed parts) and ``images``; reasoning_content folded in."""
    out = []
    for row in rows:
        msgs = []
        for m in row["messages"]:
            content = m["content"]
            if m["role"] == "assistant":
                content = [{"type": "text", "text": assistant_text(row)}]
            elif isinstance(content, str):
                content = [{"type": "text", "text": content}]
            else:  # keep only the two keys, so Arrow's unified structs stay {type, text}
                content = [{"type": p["type"], "text": p.get("text")} for p in content]
            msgs.append({"role": m["role"], "content": content})
        out.append({"messages": msgs, "images": row["images"]})
    return out


def load_dataset(path: Path, cache_dir: Path, *, limit: int | None = None):
    """The split as a ``datasets.Dataset`` with decoded images (``List(Image())``)."""
    import datasets

    rows = training_rows(read_rows(path, limit=limit))
    cache_dir.mkdir(parents=True, exist_ok=True)
    staged = cache_dir / f"{path.stem}.jsonl"  # absolute image paths, reasoning folded: what load_dataset reads
    staged.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    ds = datasets.load_dataset("json", data_files=str(staged), split="train", cache_dir=str(cache_dir))
    return ds.cast_column("images", datasets.List(datasets.Image()))

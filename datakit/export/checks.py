"""The export checks: what the trainers forgive and datakit must not (issue #16).

ms-swift silently repairs an image-count mismatch and merges two consecutive user turns; LLaMA-Factory, ms-swift
and TRL all train on an unbalanced think block or an empty assistant turn; TRL keeps a literal ``<image>`` as
text. Each check reads a rendered row back through its exporter's :meth:`~datakit.export.base.Exporter.turns`
and returns ``(code, message)`` for the first problem, or None. Images are checked once per study, before any
format renders it (:func:`image_problem`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from datakit.export.base import IMAGE_TOKEN, Exporter, Turn
from datakit.export.record import ALL_TAGS, TAGS

Problem = tuple[str, str]

CODES = {
    "missing_image": "an image file does not exist",
    "unreadable_image": "an image file does not open as an image",
    "no_images": "the study has no image to show",
    "image_count_mismatch": "image placeholders and images differ in number",
    "literal_image_token": "a literal <image> in text where images are typed parts (TRL)",
    "image_key_in_part": "an image part carries more than its type (TRL)",
    "placeholder_outside_user": "an image placeholder in a system or assistant turn",
    "not_one_image": "a LLaVA row without exactly one image",
    "role_order": "roles do not alternate user → assistant (after an optional system)",
    "consecutive_user_turns": "two user turns in a row",
    "no_final_assistant": "the conversation does not end with the assistant",
    "empty_turn": "a turn with no text and no image",
    "unbalanced_think": "the think block is not one open tag, the text, one close tag, at the start",
    "empty_answer": "no report after the think block",
}


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _jpeg_size(fh: Any, head: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's first SOFn segment, reading segment headers only."""
    data, pos = head, 2
    while True:
        while len(data) < pos + 9:
            more = fh.read(65536)
            if not more:
                return None
            data += more
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[pos + 7:pos + 9], "big"), int.from_bytes(data[pos + 5:pos + 7], "big")
        pos += 2 + length


def _quick(path: str | Path) -> tuple[bool, str] | None:
    """PNG and JPEG checked from their headers and last bytes (a truncated file fails); None: another format."""
    with open(path, "rb", buffering=0) as fh:
        head = fh.read(16384)  # one read: a small file whole, a large one its header
        size = os.fstat(fh.fileno()).st_size

        def tail(n: int) -> bytes:
            if size <= len(head):
                return head[-n:]
            fh.seek(-n, 2)
            return fh.read(n)

        if head.startswith(PNG_SIGNATURE):
            w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
            if head[12:16] != b"IHDR" or not (w and h):
                return False, "its PNG header has no image size"
            return (True, "") if tail(12)[4:8] == b"IEND" else (False, "the PNG is truncated (no IEND)")
        if head.startswith(b"\xff\xd8\xff"):
            dims = _jpeg_size(fh, head)
            if not dims or not all(dims):
                return False, "its JPEG header has no image size"
            return (True, "") if tail(2) == b"\xff\xd9" else (False, "the JPEG is truncated (no EOI marker)")
    return None


def image_problem(path: str | Path) -> Problem | None:
    """Whether one image file exists and opens.

    PNG (what ingest converts to) and JPEG are read from their headers and checked complete: that is 377,110
    images in seconds where opening each with Pillow took minutes on two cores. Other formats go to Pillow.
    """
    try:
        quick = _quick(path)
    except FileNotFoundError:
        return "missing_image", f"image {path} does not exist"
    except OSError as err:
        return "unreadable_image", f"image {path} cannot be read: {err.__class__.__name__}: {err}"
    if quick is not None:
        return None if quick[0] else ("unreadable_image", f"image {path} does not open: {quick[1]}")
    try:
        with Image.open(path) as im:
            if im.width < 1 or im.height < 1:
                return "unreadable_image", f"image {path} has no pixels ({im.width}×{im.height})"
    except (UnidentifiedImageError, OSError, ValueError) as err:
        return "unreadable_image", f"image {path} does not open: {err.__class__.__name__}: {err}"
    return None


def _roles(turns: list[Turn]) -> Problem | None:
    body = turns[1:] if turns and turns[0].role == "system" else turns
    if not body:
        return "no_final_assistant", "the row has no user or assistant turn"
    for i, t in enumerate(body):
        if i and t.role == "user" and body[i - 1].role == "user":
            return "consecutive_user_turns", f"turns {i} and {i + 1} after the system are both from the user"
        want = "user" if i % 2 == 0 else "assistant"
        if t.role != want:
            return "role_order", f"turn {i + 1} after the system is {t.role!r}, expected {want!r}"
    if body[-1].role != "assistant":
        return "no_final_assistant", f"the last turn is {body[-1].role!r}"
    return None


@lru_cache(maxsize=64)  # the formats of one record share the same assistant string
def _think(text: str, reasoning: str | None, style: str, separate: bool) -> Problem | None:
    counts = {tag: text.count(tag) + (reasoning or "").count(tag) for tag in ALL_TAGS}
    if style == "none" or (separate and style == "reasoning_content"):
        stray = [tag for tag, n in counts.items() if n]
        if stray:
            return "unbalanced_think", f"tag style {style!r} but the assistant text holds {', '.join(stray)}"
        if separate and style == "reasoning_content" and not (reasoning or "").strip():
            return "unbalanced_think", "tag style 'reasoning_content' but the reasoning field is empty"
        return None
    open_tag, close_tag = TAGS[style]
    others = [tag for tag in ALL_TAGS if tag not in (open_tag, close_tag) and counts[tag]]
    if counts[open_tag] != 1 or counts[close_tag] != 1 or others:
        found = ", ".join(f"{tag} ×{n}" for tag, n in counts.items() if n) or "no tags"
        return "unbalanced_think", f"expected one {open_tag} and one {close_tag}, found {found}"
    start, end = text.find(open_tag), text.find(close_tag)
    if text.lstrip() and not text.lstrip().startswith(open_tag):
        return "unbalanced_think", f"the assistant text does not start with {open_tag}"
    if end < start:
        return "unbalanced_think", f"{close_tag} comes before {open_tag}"
    if not text[start + len(open_tag):end].strip():
        return "unbalanced_think", "the think block is empty"
    if not text[end + len(close_tag):].strip():
        return "empty_answer", "nothing follows the think block"
    return None


def row_problem(exporter: Exporter, row: dict[str, Any]) -> Problem | None:
    """The first thing wrong with one rendered row, or None."""
    turns, images = exporter.turns(row)
    if exporter.max_images == 1 and (len(images) != 1 or isinstance(row.get("image"), list)):
        return "not_one_image", f"{exporter.name} rows hold exactly one image as a string; this one has {images!r}"
    typed = exporter.placeholder is None
    slots = 0
    for i, t in enumerate(turns):
        if not t.slots and not t.text.strip():
            return "empty_turn", f"turn {i + 1} ({t.role}) is empty"
        if t.bad_part:
            return "image_key_in_part", f"turn {i + 1} has an image part with keys beside 'type'"
        if typed:
            if IMAGE_TOKEN in t.text or (t.reasoning and IMAGE_TOKEN in t.reasoning):
                return "literal_image_token", f"turn {i + 1} ({t.role}) holds a literal {IMAGE_TOKEN}, kept as text"
        elif t.role != "user" and (t.slots or (t.reasoning and IMAGE_TOKEN in t.reasoning)):
            return "placeholder_outside_user", f"turn {i + 1} ({t.role}) holds {t.slots} {IMAGE_TOKEN}"
        slots += t.slots
    if slots != len(images):
        kind = "{\"type\": \"image\"} parts" if typed else f"{IMAGE_TOKEN} tokens"
        return "image_count_mismatch", f"{len(images)} image(s) but {slots} {kind}"
    problem = _roles(turns)
    if problem:
        return problem
    last = turns[-1]
    return _think(last.text, last.reasoning, exporter.layout.tag_style, exporter.reasoning_field)

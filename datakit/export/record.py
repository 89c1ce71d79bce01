"""One canonical record per accepted study: images in view order, the prompts, the think block and the report.

Every format renders the same record (:mod:`datakit.export.base`), so the formats cannot drift apart. The
assistant turn is the think block (perception by region, reasoning with its knowledge citations, reflection with
its corrections as before → after; :func:`datakit.trace.render_think`) and then the report
(:func:`datakit.trace.render_report`). A literal ``<image>`` in trace text would be one image placeholder too
many for LLaMA-Factory, ms-swift, Qwen-VL and LLaVA, and plain text that TRL keeps: it is written ``[image]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from datakit.export.base import IMAGE_TOKEN
from datakit.tables import FRONTAL_VIEWS
from datakit.templates import PromptSet
from datakit.trace import render_report, render_think

TAGS = {
    "think": ("<think>", "</think>"),
    "thought": ("<|begin_of_thought|>", "<|end_of_thought|>"),
    # a separate reasoning field where the format has one (TRL); inline <think> tags elsewhere
    "reasoning_content": ("<think>", "</think>"),
    "none": None,
}
ALL_TAGS = ("<think>", "</think>", "<|begin_of_thought|>", "<|end_of_thought|>")
VIEW_RANK = {"PA": 0, "AP": 1, "FRONTAL": 2, "LATERAL": 3, "LL": 4, "other": 5}
ESCAPED_IMAGE = "[image]"


class ImageRef(NamedTuple):
    """One image of a study: its id, view, and the file on disk (an absolute path)."""

    image_id: str
    view: str
    path: str

    @property
    def frontal(self) -> bool:
        """Whether the view is frontal (PA, AP or an unspecified frontal)."""
        return self.view in FRONTAL_VIEWS


class Prompts:
    """The system and user templates of one export, rendered once per (style, views)."""

    def __init__(self, folder: str | None, system: str, user: str, style: str, with_system: bool) -> None:
        self.set = PromptSet(folder, setting="export.prompts_dir")
        self.names = (system, user)
        self.style = style
        self.with_system = with_system
        self._system = self.set.template(system)
        self._user = self.set.template(user)
        self.sha = self.set.sha(system, user)

    @lru_cache(maxsize=1024)  # noqa: B019 - one Prompts per export; the key space (views tuples) is tiny
    def texts(self, views: tuple[str, ...]) -> tuple[str | None, str]:
        """(system, user) for a row showing ``views`` in this order."""
        ctx = {"style": self.style, "n_images": len(views), "views": list(views)}
        system = self.set.render_with(self._system, self.names[0], **ctx).strip() if self.with_system else None
        user = self.set.render_with(self._user, self.names[1], **ctx).strip()
        return system or None, user


@dataclass
class Record:
    """What every format renders for one study."""

    study_id: str
    split: str
    dataset: str
    images: list[ImageRef]  # view order (frontal first), capped at export.max_images
    think: str | None  # None for tag_style "none"
    report: str
    style: str
    prompts: Prompts = field(repr=False)
    corrections: list[str] = field(default_factory=list)  # correction kinds, for the card
    _inline: str | None = field(default=None, repr=False)

    def texts(self, n: int | None = None) -> tuple[str | None, str]:
        """(system, user) for a row with the first ``n`` images (all by default)."""
        views = tuple(im.view for im in self.images[: len(self.images) if n is None else n])
        return self.prompts.texts(views)

    def assistant(self, *, separate: bool = False) -> tuple[str, str | None]:
        """(content, reasoning): the assistant text; with ``separate`` the think text apart, as TRL's field."""
        if self.think is None:
            return self.report, None
        if separate and self.style == "reasoning_content":
            return self.report, self.think
        if self._inline is None:  # one string shared by every format's row
            open_tag, close_tag = TAGS[self.style] or ("", "")
            self._inline = f"{open_tag}\n{self.think}\n{close_tag}\n\n{self.report}"
        return self._inline, None


def order_images(images: list[dict[str, Any]], run_root: Path) -> list[ImageRef]:
    """A study's images frontal first (PA, AP, frontal, lateral, other), then in the source's order."""
    refs = []
    root = str(run_root)
    for im in images:
        path = im.get("converted_path") or im.get("source_path")
        if not path:
            continue
        full = path if os.path.isabs(path) else os.path.join(root, path)
        refs.append(ImageRef(im["image_id"], im.get("view") or "other", full))
    return sorted(refs, key=lambda r: VIEW_RANK.get(r.view, 9))


def _escape(text: str) -> str:
    return text.replace(IMAGE_TOKEN, ESCAPED_IMAGE) if IMAGE_TOKEN in text else text


def build_record(row: dict[str, Any], prompts: Prompts, *, run_root: Path, max_images: int,
                 strip_priors: Any = None) -> Record:
    """The record of one joined row (trace, study, images); ``strip_priors`` edits the report text if given."""
    trace = orjson.loads(row["trace_json"])
    if strip_priors is not None:
        rep = trace["report"]
        trace["report"] = {"findings": strip_priors(rep["findings"]), "impression": strip_priors(rep["impression"])}
    style = prompts.style
    think = None if style == "none" else _escape(render_think(trace))
    images = order_images(row["images"] or [], run_root)[:max_images]
    return Record(
        study_id=row["study_id"],
        split=row["split"],
        dataset=row["dataset"],
        images=images,
        think=think,
        report=_escape(render_report(trace)),
        style=style,
        prompts=prompts,
        corrections=[c["kind"] for c in trace["reflection"]["corrections"]],
    )

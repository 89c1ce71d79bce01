"""What every exporter is: a small class registered by name, rendering one canonical record into one format.

An exporter turns a :class:`~datakit.export.record.Record` and the image paths as its loader wants them into one
row (a dict written as one JSON line, or one item of a JSON list), and reads a row back into plain
:class:`Turn` s so that the export checks (:mod:`datakit.export.checks`) judge every format with the same code.
A new format is one module: subclass :class:`Exporter`, register it with ``@EXPORTERS.register("name")``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from datakit.registry import Registry

IMAGE_TOKEN = "<image>"

EXPORTERS: Registry[type[Exporter]] = Registry(
    "export format",
    builtin=(
        "datakit.export.trl",
        "datakit.export.llamafactory",
        "datakit.export.swift",
        "datakit.export.qwenvl",
        "datakit.export.llava",
    ),
)


class Turn(NamedTuple):
    """One message as the checks see it: its role, its text, and how many image slots it holds."""

    role: str
    text: str
    slots: int = 0
    reasoning: str | None = None  # a separate reasoning field (TRL's reasoning_content)
    bad_part: bool = False  # an image part with keys beside "type" (TRL)


@dataclass(frozen=True)
class Layout:
    """Where one export goes and how its images are named: what an exporter needs beyond the record."""

    root: Path  # RUN/export/<format>
    image_paths: str  # "absolute" | "relative"
    tag_style: str


class Exporter(ABC):
    """One training-file format. Subclasses set the class attributes and implement :meth:`row` and :meth:`turns`."""

    name = ""
    suffix = ".jsonl"  # LLaVA: ".json", one JSON list per split
    placeholder: str | None = IMAGE_TOKEN  # None: images are typed content parts (TRL)
    max_images: int | None = None  # LLaVA: 1
    has_system = True  # the format carries a system message
    absolute_paths = False  # paths are always absolute whatever export.image_paths says (ms-swift)
    reasoning_field = False  # tag_style "reasoning_content" gives a separate field rather than inline tags
    framework = ""  # the consumer, for the card

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    @abstractmethod
    def row(self, record: Any, images: list[str]) -> dict[str, Any]:
        """The row of one record, with ``images`` as the loader resolves them."""

    @abstractmethod
    def turns(self, row: dict[str, Any]) -> tuple[list[Turn], list[str]]:
        """The row's messages as :class:`Turn` s and its image list, for the checks."""

    def side_files(self, splits: dict[str, int]) -> dict[str, str]:
        """Files written beside the splits (name → text): registries, loader snippets. ``splits``: rows per split."""
        return {}

    def load_instructions(self, splits: dict[str, int]) -> str:
        """Markdown for the card: the exact command or config that loads this export in its framework."""
        return ""

    def split_file(self, split: str) -> str:
        """File name of one split."""
        return f"{split}{self.suffix}"

    @staticmethod
    def placeholders(n: int, sep: str = "") -> str:
        """``n`` image tokens, each followed by ``sep``."""
        return (IMAGE_TOKEN + sep) * n

"""What every teacher gets and gives back, and the registry of teachers.

A teacher turns :class:`StudyInput` rows into :class:`TraceOutcome` rows: a trace (a dict valid against the trace
schema) plus provenance, or a failure with a reason code that sends the study to quarantine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from datakit.registry import Registry


@dataclass(frozen=True)
class ImageRef:
    """One image of a study as the teacher sees it."""

    image_id: str
    view: str
    path: str | None  # absolute path of the converted PNG (None when images were not converted)
    digest: str | None = None  # identity of the PNG's content (its convert_key), known without reading it


@dataclass(frozen=True)
class StudyInput:
    """Everything a teacher may use for one study."""

    study_id: str
    dataset: str
    indication: str
    comparison: str
    findings: str  # cleaned (single-spaced) text of the study's own FINDINGS, "" when absent
    impression: str  # cleaned IMPRESSION, "" when absent
    labels: dict[str, int | None]  # the 14 label columns
    images: tuple[ImageRef, ...]
    knowledge: tuple[str, ...]  # retrieved knowledge entry ids, best first


@dataclass
class TraceOutcome:
    """A teacher's answer for one study."""

    study_id: str
    trace: dict[str, Any] | None  # None when the study failed (or when only ``trace_json`` is kept)
    model: str | None = None
    templates: str | None = None
    template_sha: str | None = None
    injected_error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cache_keys: list[str] = field(default_factory=list)
    error_code: str | None = None
    error: str | None = None
    # The trace as canonical JSON, with the knowledge ids it cites: what the traces table stores. A teacher that
    # writes many traces in worker processes sends these back instead of the dict (far less to pickle and hold).
    trace_json: str | None = None
    cited: list[str] | None = None

    @property
    def ok(self) -> bool:
        """Whether the study got a trace."""
        return self.trace is not None or self.trace_json is not None

    def compact(self) -> TraceOutcome:
        """Keep the trace as JSON text only (and the ids it cites); drop the dict."""
        if self.trace is not None:
            from datakit.trace import dumps

            self.trace_json = dumps(self.trace)
            self.cited = cited_ids(self.trace)
            self.trace = None
        return self


def cited_ids(trace: dict[str, Any]) -> list[str]:
    """Knowledge ids cited by a trace's reasoning, in order of first citation."""
    return list(dict.fromkeys(k for step in trace["reasoning"] for k in step["knowledge"]))


class Teacher(Protocol):
    """Writes traces."""

    name: str

    def annotate(self, studies: Sequence[StudyInput]) -> list[TraceOutcome]:
        """One outcome per study, in the same order."""
        ...


TEACHERS: Registry[Callable[..., Teacher]] = Registry(
    "teacher", builtin=("datakit.annotate.offline", "datakit.annotate.llm")
)


def teacher(name: str) -> Callable[[Callable[..., Teacher]], Callable[..., Teacher]]:
    """Register a teacher factory under ``name``."""
    return TEACHERS.register(name)


def get_teacher(name: str) -> Callable[..., Teacher]:
    """The factory of a registered teacher."""
    return TEACHERS.get(name)

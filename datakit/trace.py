"""The trace: its JSON Schema (``schemas/trace.v1.json``), validation, and rendering into one assistant turn.

A trace is a dict with ``perception``, ``reasoning``, ``reflection`` and ``report``. The
same schema is the LLM teacher's structured-output format and the validator of every stored trace. Stored traces
are canonical JSON strings in ``traces.parquet`` (column ``trace_json``); the schema id and version are recorded
on every row.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from datakit.errors import SchemaVersionError
from datakit.resources import schema_path

SCHEMA_NAME = "trace.v1.json"
SCHEMA_ID = "trace.v1"
SCHEMA_VERSION = 1
STATUSES = ("present", "absent", "uncertain")
CORRECTION_KINDS = ("missed", "hallucinated", "laterality", "severity", "other")
REGION_ORDER = (
    "airway", "lungs", "pleura", "heart_mediastinum", "hila", "bones_soft_tissue", "upper_abdomen", "lines_devices",
)
REGION_NAMES = {
    "airway": "Airway", "lungs": "Lungs", "pleura": "Pleura", "heart_mediastinum": "Heart and mediastinum",
    "hila": "Hila", "bones_soft_tissue": "Bones and soft tissues", "upper_abdomen": "Diaphragm and upper abdomen",
    "lines_devices": "Lines and devices",
}
# What each stage of the multi-stage prompts returns: a subset of the trace's top-level properties.
STAGE_PARTS = {"perception": ("perception",), "reasoning": ("reasoning",), "reflection": ("reflection", "report")}


@lru_cache(maxsize=4)
def trace_schema(name: str = SCHEMA_NAME) -> dict[str, Any]:
    """The trace JSON Schema as a dict."""
    return json.loads(schema_path(name).read_text(encoding="utf-8"))


def part_schema(parts: tuple[str, ...]) -> dict[str, Any]:
    """A schema for an object holding only some of the trace's top-level parts (one prompt stage's output)."""
    full = trace_schema()
    return {
        "$schema": full["$schema"],
        "type": "object",
        "additionalProperties": False,
        "required": list(parts),
        "properties": {p: full["properties"][p] for p in parts},
        "definitions": full["definitions"],
    }


@lru_cache(maxsize=8)
def _validator(parts: tuple[str, ...] | None):
    import jsonschema

    schema = trace_schema() if parts is None else part_schema(parts)
    return jsonschema.Draft7Validator(schema)


@lru_cache(maxsize=8)
def _fast_validator(parts: tuple[str, ...] | None):
    schema = trace_schema() if parts is None else part_schema(parts)
    try:
        import jsonschema_rs  # compiled in Rust: a few microseconds per trace

        return jsonschema_rs.Draft7Validator(schema).is_valid
    except (ImportError, AttributeError):  # pragma: no cover - no wheel for this platform
        import jsonschema

        return jsonschema.Draft7Validator(schema).is_valid


def is_valid(obj: Any, parts: tuple[str, ...] | None = None) -> bool:
    """Whether a trace (or one stage's part of it) follows the schema: the fast, compiled check."""
    return _fast_validator(parts)(obj)


def schema_errors(obj: Any, parts: tuple[str, ...] | None = None, *, limit: int = 5) -> list[str]:
    """Readable schema violations of a trace (or of one stage's part of it); empty when valid.

    The compiled validator answers the common case (valid) in microseconds; only an invalid trace goes through
    ``jsonschema`` for messages that name every path at fault.
    """
    if is_valid(obj, parts):
        return []
    errors = sorted(_validator(parts).iter_errors(obj), key=lambda e: list(e.absolute_path))
    out = []
    for err in errors[:limit]:
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        out.append(f"{where}: {err.message}")
    return out


def check_schema_id(schema_id: str) -> None:
    """Refuse traces written under a schema this datakit cannot read."""
    if schema_id != SCHEMA_ID:
        raise SchemaVersionError(
            f"traces were written with schema {schema_id!r}; this datakit reads {SCHEMA_ID!r}",
            hint="re-run `datakit annotate` for this run (cached teacher calls are reused), or use the datakit "
            "version that wrote them",
        )


def dumps(trace: dict[str, Any]) -> str:
    """The canonical JSON text of a trace (key order as written, no extra whitespace, UTF-8)."""
    return json.dumps(trace, ensure_ascii=False, separators=(",", ":"))


# --- rendering ------------------------------------------------------------------------------------------------------
def _state(s: dict[str, Any]) -> str:
    bits = [s["status"]]
    if s.get("laterality") not in (None, "none"):
        bits.append(s["laterality"])
    if s.get("severity"):
        bits.append(s["severity"])
    return ", ".join(bits)


def render_think(trace: dict[str, Any], *, names: dict[str, str] | None = None) -> str:
    """Perception, reasoning and reflection as the text inside the think block."""
    names = {**REGION_NAMES, **(names or {})}
    lines = ["Perception:"]
    for item in trace["perception"]:
        region = names.get(item["region"], item["region"].replace("_", " "))
        lines.append(f"- {region}: {item['evidence']}")
    lines.append("")
    lines.append("Reasoning:")
    for step in trace["reasoning"]:
        lines.append(f"- {step['observation']} → {step['inference']}")
    lines.append("")
    lines.append("Reflection:")
    refl = trace["reflection"]
    lines.append(f"- Re-checked: {'; '.join(refl['checked'])}.")
    for c in refl["corrections"]:
        finding = names.get(c["finding"], c["finding"].replace("_", " "))
        change = f"{_state(c['before'])} → {_state(c['after'])}"
        lines.append(f"- Correction ({c['kind']}): {finding} — {change}. {c['note']}")
    lines.append(f"- {refl['summary']}")
    return "\n".join(lines)


def render_report(trace: dict[str, Any]) -> str:
    """The final report as FINDINGS / IMPRESSION text."""
    rep = trace["report"]
    parts = []
    if rep["findings"].strip():
        parts.append(f"FINDINGS: {rep['findings'].strip()}")
    if rep["impression"].strip():
        parts.append(f"IMPRESSION: {rep['impression'].strip()}")
    return "\n\n".join(parts)


def render_assistant(trace: dict[str, Any], *, tags: tuple[str, str] = ("<think>", "</think>"),
                     names: dict[str, str] | None = None) -> str:
    """One assistant turn: the think block, then the report (where LLaMA-Factory's data/README.md puts it)."""
    return f"{tags[0]}\n{render_think(trace, names=names)}\n{tags[1]}\n\n{render_report(trace)}"

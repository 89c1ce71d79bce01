"""The bulk pass over ``trace_json``: JSON, the trace JSON Schema, and the rendered assistant turn.

Every trace is parsed once with orjson and checked with a compiled draft-07 validator: jsonschema-rs
(about 5 µs a trace; the pure-Python jsonschema takes 0.5 ms and fastjsonschema 0.09 ms), falling back to
jsonschema where the compiled wheel is missing. Only the failures go through
:func:`datakit.trace.schema_errors` for readable messages. A valid trace is rendered with
:func:`datakit.trace.render_assistant`, the exact text a trainer sees, and the think text and report are cut
out of it for the text checks. Large runs are split over processes; the workers use only the standard library,
orjson, the validator and datakit.trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from datakit.parallel import given, map_chunks, pool_size

# Below this many traces, the pass runs in the calling process (workers cost more than they save).
PARALLEL_FROM = 4000
CHUNK = 8000


def _is_valid() -> Any:
    """A fast ``is_valid(obj)`` for the trace schema (shared with the teachers' parsers)."""
    from datakit.trace import is_valid

    return is_valid


def _tag_problem(text: str, tags: tuple[str, str]) -> str | None:
    """Why the rendered turn's think tags are not exactly one opening tag followed by one closing tag."""
    open_tag, close_tag = tags
    n_open, n_close = text.count(open_tag), text.count(close_tag)
    if n_open == 1 and n_close == 1 and text.index(open_tag) < text.index(close_tag):
        return None
    if n_open == 1 and n_close == 1:
        return f"{close_tag} comes before {open_tag}"
    return f"{open_tag} occurs {n_open} times and {close_tag} {n_close} times (each should occur once)"


def parse_one(
    text: str | None, tags: tuple[str, str]
) -> tuple[str, str | None, str | None, str | None, str | None]:
    """(code, message, think, report, tag problem) of one ``trace_json``.

    The code is ok, invalid_json or schema_violation.
    """
    from datakit.trace import render_assistant, render_report, render_think, schema_errors

    if text is None or not text.strip():
        return "invalid_json", "trace_json is empty", None, None, None
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        return "invalid_json", f"trace_json is not valid JSON ({err})", None, None, None
    if not _is_valid()(obj):
        found = schema_errors(obj, limit=5) or ["does not match the trace schema"]
        return "schema_violation", "; ".join(found), None, None, None
    assistant = render_assistant(obj, tags=tags)
    problem = _tag_problem(assistant, tags)
    if problem is None:
        start = assistant.index(tags[0]) + len(tags[0])
        end = assistant.index(tags[1])
        think, report = assistant[start:end].strip("\n"), assistant[end + len(tags[1]) :].strip()
    else:
        think, report = render_think(obj), render_report(obj)
    return "ok", None, think, report, problem


def _parse_chunk(args: tuple[list[str | None], tuple[str, str]]) -> list[tuple]:
    texts, tags = args
    return [parse_one(t, tags) for t in texts]


def parse_chunks(texts: Any, tags: tuple[str, str], workers: int | None = None) -> Iterator[list[tuple]]:
    """:func:`parse_one` of every text, a chunk of results at a time, in order.

    ``texts`` is a list or a polars Series; its strings are made into Python objects one chunk at a time, and
    the caller turns each chunk's results into a table before the next, so memory stays flat.
    """
    n = len(texts)
    workers = pool_size(workers, n, min_items=PARALLEL_FROM, per_worker=CHUNK)
    bounds = [(i, min(n, i + CHUNK)) for i in range(0, n, CHUNK)]
    if workers <= 1:
        for start, stop in bounds:
            yield _parse_chunk((_as_list(texts, start, stop), tags))
        return
    chunks = (_as_list(texts, start, stop) for start, stop in bounds)
    yield from map_chunks(_parse_in_worker, chunks, workers=min(workers, len(bounds)), setup=given,
                          setup_args=(tags,))


def _parse_in_worker(tags: tuple[str, str], texts: list[str | None]) -> list[tuple]:
    return [parse_one(t, tags) for t in texts]


def _as_list(texts: Any, start: int, stop: int) -> list[str | None]:
    if isinstance(texts, list):
        return texts[start:stop]
    return texts.slice(start, stop - start).to_list()

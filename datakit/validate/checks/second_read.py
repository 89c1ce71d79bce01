"""Texts read by the second reader (:mod:`datakit.reading.second`), each distinct text once per run.

Large runs are read in worker processes; each worker builds its own reader from the knowledge base it is
sent, and the readings come back as plain tuples.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from datakit.parallel import cores, worker_context
from datakit.reading.second import Reading, SecondReader

if TYPE_CHECKING:
    from datakit.validate.context import Context

# Below this many distinct texts, one process reads them (a pool costs more than it saves).
PARALLEL_MIN_TEXTS = 20_000
CHUNK = 4_000
_READER: SecondReader | None = None


def _init(kb: Any) -> None:
    global _READER
    _READER = SecondReader(kb)


def _work(texts: list[str]) -> list[Reading]:
    assert _READER is not None
    return [_READER.read(t) for t in texts]


def read_all(ctx: Context, texts: list[str]) -> dict[str, Reading]:
    """Text → :class:`Reading` for every text (memoised on the context)."""
    memo = ctx.second_readings
    todo = list(dict.fromkeys(t for t in texts if t not in memo))
    workers = min(ctx.config.workers or cores(), max(1, len(todo) // CHUNK))
    if len(todo) >= PARALLEL_MIN_TEXTS and workers > 1:
        chunks = [todo[i : i + CHUNK] for i in range(0, len(todo), CHUNK)]
        with ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=_init, initargs=(ctx.kb,)) as pool:
            for chunk, got in zip(chunks, pool.map(_work, chunks), strict=True):
                memo.update(zip(chunk, got, strict=True))
    else:
        reader = ctx.second_reader
        memo.update((t, reader.read(t)) for t in todo)
    return memo

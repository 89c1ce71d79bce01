"""Process pools: the one way datakit's stages spread work over cores.

:func:`map_chunks` runs ``fn(state, chunk)`` for every chunk and yields the results in order. ``state`` is what
every call needs and is costly to send (a labeler, a reader, a trace writer): it is built once per worker by
``setup(*setup_args)`` and kept in this module's one slot, instead of a global per calling module. At most
``in_flight`` chunks per worker are submitted at a time, so memory stays flat however many chunks there are.
With one worker (or one chunk) everything runs in this process, with the same ``state``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

C = TypeVar("C")
R = TypeVar("R")

_STATE: Any = None  # in a worker process: what setup() built


def worker_context():
    """The multiprocessing context for datakit's workers.

    ``fork`` where the platform has it: the workers run datakit's own parsers and writers (pure Python, never
    polars), and a forked worker starts at once without re-importing the caller's ``__main__``, so a user's
    script without an ``if __name__ == "__main__"`` guard works. ``spawn`` elsewhere.
    """
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def pool_size(configured: int | None, items: int, *, min_items: int, per_worker: int = 1) -> int:
    """How many workers a job of ``items`` gets.

    One below ``min_items`` (a pool costs more than it saves), else the configured number (default: every
    core), at most one per ``per_worker`` items.
    """
    if items < min_items:
        return 1
    return max(1, min(configured or cores(), items // max(1, per_worker)))


def chunked(items: list[C] | Any, size: int) -> list[Any]:
    """``items`` cut into consecutive slices of ``size`` (the last may be shorter)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def _setup(setup: Callable[..., Any] | None, args: tuple) -> None:
    global _STATE
    _STATE = setup(*args) if setup is not None else None


def _call(fn: Callable[[Any, Any], Any], chunk: Any) -> Any:
    return fn(_STATE, chunk)


def map_chunks(
    fn: Callable[[Any, C], R],
    chunks: Iterable[C],
    *,
    workers: int,
    setup: Callable[..., Any] | None = None,
    setup_args: tuple = (),
    in_flight: int = 2,
) -> Iterator[R]:
    """``fn(state, chunk)`` for every chunk, in order; ``fn`` and ``setup`` must be module-level functions."""
    if workers <= 1:
        state = setup(*setup_args) if setup is not None else None
        for chunk in chunks:
            yield fn(state, chunk)
        return
    it = iter(chunks)
    with ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=_setup,
                             initargs=(setup, setup_args)) as pool:
        pending: deque = deque()
        for chunk in it:
            pending.append(pool.submit(_call, fn, chunk))
            if len(pending) >= in_flight * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def given(state: Any) -> Any:
    """A ``setup`` that hands the worker an object built by the caller (pickled once per worker)."""
    return state

"""Running the teacher's coroutines from synchronous code: on uvloop when installed, also inside a notebook."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

try:  # less event-loop overhead per request
    import uvloop
except ImportError:  # pragma: no cover  (not on Windows)
    uvloop = None


def _loop_run(coro: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run, on uvloop when it is installed."""
    return uvloop.run(coro) if uvloop is not None else asyncio.run(coro)


def run_sync(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine to its end from synchronous code, also from inside a running loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _loop_run(make())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = _loop_run(make())
        except BaseException as err:  # handed over to the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, name="datakit-teacher")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")

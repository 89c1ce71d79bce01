"""Process pools: how datakit's stages start their workers."""

from __future__ import annotations

import multiprocessing as mp
import os


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

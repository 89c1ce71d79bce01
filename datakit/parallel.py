"""Process pools: how datakit's stages start their workers."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor


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


def _quiet_worker(initializer, initargs) -> None:
    # Ctrl-C reaches every process of the terminal's group: the parent stops the workers, so they ignore it
    # rather than each printing a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def process_pool(workers: int, initializer=None, initargs: tuple = ()) -> Iterator[ProcessPoolExecutor]:
    """A process pool that stops at once when the caller fails or is interrupted (Ctrl-C).

    On the way out with an exception, queued work is cancelled and the workers are terminated, instead of
    waiting for the chunks they are on: an interrupted run stops within a second, whatever the chunk size.
    """
    pool = ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=_quiet_worker,
                               initargs=(initializer, initargs))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        # the executor has no public way to stop a running task; its worker processes are the only handle
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        raise
    pool.shutdown(wait=True)

"""The one process-pool helper: results in order, the state built once per worker, serial = pooled."""

from __future__ import annotations

import os

from datakit.parallel import chunked, map_chunks, pool_size


def _make_state(offset: int) -> dict:
    return {"offset": offset, "pid": os.getpid()}


def _work(state: dict, chunk: list[int]) -> list[tuple[int, int]]:
    return [(x + state["offset"], state["pid"]) for x in chunk]


def test_pooled_results_equal_serial_ones_in_order():
    chunks = chunked(list(range(103)), 10)
    serial = list(map_chunks(_work, chunks, workers=1, setup=_make_state, setup_args=(1000,)))
    pooled = list(map_chunks(_work, chunks, workers=2, setup=_make_state, setup_args=(1000,), in_flight=1))
    assert [v for part in pooled for v, _ in part] == [v for part in serial for v, _ in part] == list(
        range(1000, 1103)
    )
    assert {pid for _, pid in serial[0]} == {os.getpid()}
    worker_pids = {pid for part in pooled for _, pid in part}
    assert os.getpid() not in worker_pids and 1 <= len(worker_pids) <= 2  # state built in each worker


def test_pool_size_stays_serial_for_small_jobs():
    assert pool_size(None, 10, min_items=100) == 1
    assert pool_size(4, 1000, min_items=100) == 4
    assert pool_size(8, 1000, min_items=100, per_worker=500) == 2

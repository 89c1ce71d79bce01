"""The online transport: chains sent with ``max_concurrency`` workers, every answer committed before it is parsed."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from datakit.annotate.cache import Cache, CacheWriter, CallRecord, answer_row, failure_row
from datakit.annotate.chain import Chain
from datakit.annotate.client import Failure, TeacherClient
from datakit.annotate.progress import ProgressView, Tally
from datakit.annotate.request import TeacherRequest
from datakit.config import TeacherConfig

log = logging.getLogger("datakit.annotate")

try:  # the wire body holds whole base64 images: orjson encodes it several times faster than json
    import orjson

    def _dumps(body: dict[str, Any]) -> bytes:
        return orjson.dumps(body)
except ImportError:  # pragma: no cover

    def _dumps(body: dict[str, Any]) -> bytes:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def run_online(
    chains: Sequence[Chain], *, cache: Cache, config: TeacherConfig, tally: Tally, progress: bool = True,
    more: Callable[[], Chain | None] | None = None,
) -> None:
    """Send the chains' pending requests with ``max_concurrency`` workers until every chain has a result.

    ``more()``, when given, yields further chains to send (built on demand, in the event loop, between answers)
    until it returns None.
    """
    client = TeacherClient(config)
    writer = CacheWriter(cache.path)  # commits off the event loop; each put still waits for its commit
    queue = deque(chains)
    source_open = more is not None

    def next_chain() -> Chain | None:
        nonlocal source_open
        if queue:
            return queue.popleft()
        if source_open:
            chain = more()  # type: ignore[misc]
            if chain is None:
                source_open = False
            return chain
        return None

    inflight: dict[str, asyncio.Future[Any]] = {}

    async def ask(request: TeacherRequest) -> tuple[CallRecord | Failure, int]:
        """Answer one request; a key already in flight (a duplicate request) is awaited, not sent twice."""
        if request.key in inflight:
            return await asyncio.shield(inflight[request.key]), 0
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        inflight[request.key] = future
        try:
            body = _dumps(request.wire_body())
            outcome = await client.chat(body, tokens=_tokens_for_limit(request, config))
            if isinstance(outcome, Failure):
                await writer.put(failure_row(request, teacher=client.endpoint, error=outcome.message,
                                             attempt=outcome.attempts), answer=False)  # fmt: skip
                answer: CallRecord | Failure = outcome
                attempts = outcome.attempts
            else:
                row = answer_row(
                    request, outcome.data, outcome.response_json, teacher=client.endpoint,
                    prices=config.prices, duration_ms=outcome.duration_ms, attempt=outcome.attempt,
                )  # fmt: skip
                await writer.put(row)  # committed before it is parsed
                answer = CallRecord(request.key, row["text"], row["finish_reason"], row["input_tokens"],
                                    row["output_tokens"], row["cost_usd"], row["resolved_model"])  # fmt: skip
                attempts = outcome.attempt
                tally.http_requests += 1
                tally.input_tokens += answer.input_tokens
                tally.output_tokens += answer.output_tokens
                tally.cost_usd += answer.cost_usd
            future.set_result(answer)
            return answer, attempts
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # retrieved here, so an unawaited duplicate does not warn
            raise
        finally:
            del inflight[request.key]

    async def worker() -> None:
        while (chain := next_chain()) is not None:
            while chain.current is not None:
                answer, attempts = await ask(chain.current)
                chain.attempts += attempts
                chain.sent = True
                if isinstance(answer, Failure):
                    chain.fail(answer.code, answer.message)
                    break
                chain.feed(answer, cache)
                if chain.current is not None and (cached := cache.get(chain.current.key)) is not None:
                    chain.replay(cache, cached)
            tally.done += 1
            tally.failed += int(not chain.result.ok)  # type: ignore[union-attr]

    view = ProgressView(tally, label="teacher", limiter=client.limiter, enabled=progress)
    n_workers = config.max_concurrency if source_open else min(config.max_concurrency, len(chains))
    log.info("asking %s, %d requests at a time", client.endpoint, n_workers)
    tasks = [asyncio.create_task(worker()) for _ in range(n_workers)]
    drawer = asyncio.create_task(view.run())
    try:
        with view:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        log.info("%s answered %d requests; %s", client.endpoint, tally.http_requests, tally.summary())
    finally:
        for task in (*tasks, drawer):
            task.cancel()
        await asyncio.gather(*tasks, drawer, return_exceptions=True)
        await client.close()
        writer.close()


def _tokens_for_limit(request: TeacherRequest, config: TeacherConfig) -> int:
    """Tokens a request counts against a TPM limit before it is answered: input + the output cap."""
    output = request.max_output_tokens() or config.expected_output_tokens
    return request.input_tokens_estimate(config.image_input_tokens) + output

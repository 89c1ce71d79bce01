"""From N rendered teacher requests to N results: cache first, then the endpoint (online or Batch API).

Each request is a *chain*: the request, and when its reply cannot be parsed, up to ``max_reasks`` re-asks (the
messages so far + the reply + what was wrong with it; a second re-ask carries the first one's exchange too, so
the model sees every failed try, and no two links of a chain are the same request). Every link is a request of
its own with its own key, so a chain is replayed from the cache link by link and only the missing links are
sent. Raw replies are stored before they are parsed: a changed parser re-parses without asking again, and asks
again only where the new parser still rejects a reply.

When every link is cached nothing is sent and ``openai`` is not even imported.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from datakit.annotate.cache import Cache, CacheWriter, CallRecord, answer_row, failure_row
from datakit.annotate.progress import ProgressView, Tally
from datakit.annotate.request import TeacherRequest, TeacherResult, cost_usd
from datakit.config import TeacherConfig
from datakit.errors import ConfigError

Parse = Callable[[str], Any]

try:  # the wire body holds whole base64 images: orjson encodes it several times faster than json
    import orjson

    def _dumps(body: dict[str, Any]) -> bytes:
        return orjson.dumps(body)
except ImportError:  # pragma: no cover

    def _dumps(body: dict[str, Any]) -> bytes:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Chain:
    """One study's request and its re-asks, fed answer by answer until it has a result."""

    def __init__(self, request: TeacherRequest, *, parse: Parse, config: TeacherConfig) -> None:
        self.first = request
        self.current: TeacherRequest | None = request
        self.parse = parse
        self.config = config
        self.reasks = 0
        self.keys = [request.key]
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd = 0.0
        self.attempts = 0
        self.sent = False
        self.result: TeacherResult | None = None

    def replay(
        self, cache: Cache, record: CallRecord | None = None, *, looked_up: bool = False
    ) -> TeacherRequest | None:
        """Feed cached answers as far as they go; return the first request that must be sent, if any.

        ``record`` is the answer to the current request when the caller has it already; ``looked_up`` says
        that a ``None`` record means "not cached" (the caller asked the cache in bulk): no second lookup.
        """
        while self.current is not None:
            if record is None and not looked_up:
                record = cache.get(self.current.key)
            if record is None:
                return self.current
            self.feed(record, cache)
            record, looked_up = None, False
        return None

    def feed(self, record: CallRecord, cache: Cache) -> None:
        """Take the answer to the current request: finish, or move on to a re-ask."""
        self.input_tokens += record.input_tokens
        self.output_tokens += record.output_tokens
        self.cost_usd += record.cost_usd
        finish = record.finish_reason
        if finish in self.config.bad_finish_reasons:
            hint = " (raise max_tokens / max_completion_tokens to redo it)" if finish == "length" else ""
            error = f"the reply stopped with finish_reason={finish}{hint}"
            self._finish(record, ok=False, code=finish, error=error)
            return
        text = record.text
        if text is None:
            refusal = cache.refusal(record.key)
            if refusal:
                self._finish(record, ok=False, code="refusal", error=f"the model refused: {refusal}")
                return
            text = ""
        try:
            parsed = self.parse(text)
        except ValueError as err:
            message = str(err) or type(err).__name__
            if self.reasks >= self.config.max_reasks:
                tries = f" (after {self.reasks} re-asks)" if self.reasks else ""
                self._finish(record, ok=False, code="parse_error", error=f"{message}{tries}")
                return
            self.reasks += 1
            self.current = self.current.reask(text, message)  # type: ignore[union-attr]
            self.keys.append(self.current.key)
            return
        self._finish(record, ok=True, parsed=parsed)

    def fail(self, code: str, message: str) -> None:
        """End the chain without an answer (an HTTP failure)."""
        self.current = None
        self.result = self._result(ok=False, error_code=code, error=message)

    def _finish(self, record: CallRecord, *, ok: bool, parsed: Any = None, code: str | None = None,
                error: str | None = None) -> None:  # fmt: skip
        self.current = None
        self.result = self._result(
            ok=ok,
            text=record.text,
            parsed=parsed,
            finish_reason=record.finish_reason,
            error_code=code,
            error=error,
        )

    def _result(self, **fields: Any) -> TeacherResult:
        return TeacherResult(
            study_id=self.first.study_id,
            key=self.first.key,
            usage={"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            cost_usd=self.cost_usd,
            cached=not self.sent,
            attempts=self.attempts,
            keys=list(self.keys),
            **fields,
        )


def run_requests(
    requests: Sequence[TeacherRequest] | Iterator[TeacherRequest],
    *,
    cache: Cache,
    config: TeacherConfig,
    parse: Parse,
    transport: Literal["online", "batch"] = "online",
    run: Any | None = None,
    progress: bool = True,
    total: int | None = None,
) -> list[TeacherResult]:
    """Answer every request (cache first), in the order given.

    ``requests`` may be a lazy iterator (``total`` then says how many, for the progress bar): the online
    transport starts sending as soon as the first uncached request is built and builds the rest while waiting
    for answers, so rendering prompts and hashing keys overlap the network.

    ``parse(text)`` returns the parsed value or raises ``ValueError``; an unparseable reply is re-asked up to
    ``config.max_reasks`` times. Failed rows come back with ``ok=False`` and an ``error_code``; only what
    stops the whole run raises (:class:`~datakit.errors.TeacherAuthError`,
    :class:`~datakit.errors.TeacherUnavailable`, :class:`~datakit.errors.TeacherError`). With
    ``transport="batch"`` the missing requests go through the Batch API (``run`` is required: the batch ids
    are saved in it), and re-asks needed after the batch go online.
    """
    if transport not in ("online", "batch"):
        raise ConfigError(f"unknown teacher transport {transport!r}", hint="choose online or batch")
    if not isinstance(requests, Sequence):
        return _run_streaming(iter(requests), cache=cache, config=config, parse=parse, transport=transport,
                              run=run, progress=progress, total=total)
    chains = [Chain(r, parse=parse, config=config) for r in requests]
    answers = cache.get_many(r.key for r in requests)
    pending = [c for c in chains if c.replay(cache, answers.get(c.first.key), looked_up=True)]
    if pending:
        tally = Tally(total=len(chains), done=len(chains) - len(pending), cached=len(chains) - len(pending))
        tally.failed = sum(1 for c in chains if c.result is not None and not c.result.ok)
        if transport == "batch":
            if run is None:
                raise ConfigError("the batch transport needs a run directory (its batch ids are saved there)")
            from datakit.annotate.batch import run_batches

            _run_coroutine(lambda: run_batches(pending, cache=cache, config=config, run=run, tally=tally,
                                                progress=progress))  # fmt: skip
            pending = [c for c in pending if c.result is None and c.replay(cache) is not None]
            finished = [c.result for c in chains if c.result is not None]
            tally.done, tally.failed = len(finished), sum(1 for r in finished if not r.ok)
        if pending:
            _run_coroutine(lambda: run_online(pending, cache=cache, config=config, tally=tally,
                                               progress=progress))  # fmt: skip
    return [c.result for c in chains]  # type: ignore[misc]


def _run_streaming(
    source: Iterator[TeacherRequest], *, cache: Cache, config: TeacherConfig, parse: Parse, transport: str,
    run: Any | None, progress: bool, total: int | None,
) -> list[TeacherResult]:
    """:func:`run_requests` over a lazy iterator.

    Replays from the cache until a request must be sent, then sends while the rest is still being built (online),
    or builds everything first (batch).
    """
    chains: list[Chain] = []
    first: Chain | None = None
    for request in source:
        chain = Chain(request, parse=parse, config=config)
        chains.append(chain)
        if chain.replay(cache) is not None:
            first = chain
            break
    if first is None:  # everything cached: no client, no import of openai, nothing sent
        return [c.result for c in chains]  # type: ignore[misc]
    if transport == "batch":
        rest = list(source)
        earlier = [c.result for c in chains[:-1]]
        return earlier + run_requests([first.first, *rest], cache=cache, config=config, parse=parse,
                                      transport="batch", run=run, progress=progress)
    done = len(chains) - 1
    tally = Tally(total=total or done + 1, done=done, cached=done)
    tally.failed = sum(1 for c in chains[:-1] if not c.result.ok)  # type: ignore[union-attr]

    def more() -> Chain | None:
        """The next chain that needs sending; cached ones are replayed and counted on the way."""
        for request in source:
            chain = Chain(request, parse=parse, config=config)
            chains.append(chain)
            if chain.replay(cache) is not None:
                return chain
            tally.done += 1
            tally.cached += 1
            tally.failed += int(not chain.result.ok)  # type: ignore[union-attr]
        return None

    _run_coroutine(lambda: run_online([first], cache=cache, config=config, tally=tally, progress=progress,
                                      more=more))  # fmt: skip
    return [c.result for c in chains]  # type: ignore[misc]


async def run_online(
    chains: Sequence[Chain], *, cache: Cache, config: TeacherConfig, tally: Tally, progress: bool = True,
    more: Callable[[], Chain | None] | None = None,
) -> None:
    """Send the chains' pending requests with ``max_concurrency`` workers until every chain has a result.

    ``more()``, when given, yields further chains to send (built on demand, in the event loop, between answers)
    until it returns None.
    """
    from datakit.annotate.client import Failure, TeacherClient

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
    tasks = [asyncio.create_task(worker()) for _ in range(n_workers)]
    drawer = asyncio.create_task(view.run())
    try:
        with view:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
    finally:
        for task in (*tasks, drawer):
            task.cancel()
        await asyncio.gather(*tasks, drawer, return_exceptions=True)
        await client.close()
        writer.close()


def summarize(results: Sequence[TeacherResult]) -> dict[str, Any]:
    """Totals of a run for the manifest and the command's summary: counts, failures per code, tokens, cost."""
    failures: dict[str, int] = {}
    for r in results:
        if not r.ok:
            failures[r.error_code or "unknown"] = failures.get(r.error_code or "unknown", 0) + 1
    return {
        "requests": len(results),
        "ok": sum(1 for r in results if r.ok),
        "cached": sum(1 for r in results if r.cached),
        "failed": dict(sorted(failures.items())),
        "input_tokens": sum(r.usage.get("input_tokens", 0) for r in results),
        "output_tokens": sum(r.usage.get("output_tokens", 0) for r in results),
        "cost_usd": round(sum(r.cost_usd for r in results), 6),
        "cost_usd_this_run": round(sum(r.cost_usd for r in results if not r.cached), 6),
    }


def _tokens_for_limit(request: TeacherRequest, config: TeacherConfig) -> int:
    """Tokens a request counts against a TPM limit before it is answered: input + the output cap."""
    output = request.max_output_tokens() or config.expected_output_tokens
    return request.input_tokens_estimate(config.image_input_tokens) + output


def _loop_run(coro: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run, on uvloop when it is installed (less event-loop overhead per request)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _run_coroutine(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
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


# dry run ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """What a run would send and cost (``datakit annotate --dry-run``); re-asks are not foreseen."""

    requests: int
    cached: int
    to_send: int
    images: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None when no model of the requests to send has a price
    cached_cost_usd: float  # what the cached answers cost when they were bought
    unpriced_models: tuple[str, ...]
    output_basis: str  # where the output estimate comes from
    prices_as_of: str | None = None  # the date of datakit's price table, when a price came from it


def estimate(
    requests: Sequence[TeacherRequest],
    cache: Cache,
    config: TeacherConfig,
    *,
    transport: Literal["online", "batch"] = "online",
) -> Estimate:
    """Project tokens and cost of the requests not cached yet; sends nothing.

    Input tokens: about 4 characters per token over the request's JSON with images removed, plus
    ``image_input_tokens`` per image (765 by default: what OpenAI bills a 1024×1024 image in high detail; a
    local server's vision encoder may count differently). Output tokens: the mean of the cached answers among
    these requests when there are any, else ``expected_output_tokens``; capped by the request's max tokens.
    """
    answers = cache.get_many(r.key for r in requests)
    todo = [r for r in requests if r.key not in answers]
    if answers:
        mean_out = sum(a.output_tokens for a in answers.values()) / len(answers)
        basis = f"mean of {len(answers)} cached answers"
    else:
        mean_out = float(config.expected_output_tokens)
        basis = "teacher.expected_output_tokens"
    factor = config.batch_price_factor if transport == "batch" else 1.0
    input_tokens = output_tokens = images = 0
    cost = 0.0
    unpriced: set[str] = set()
    for r in todo:
        inp = r.input_tokens_estimate(config.image_input_tokens)
        cap = r.max_output_tokens()
        out = int(round(min(mean_out, cap) if cap else mean_out))
        input_tokens += inp
        output_tokens += out
        images += r.n_images
        price = cost_usd(config.prices, r.model, inp, out, factor=factor)
        if price is None:
            unpriced.add(r.model)
        else:
            cost += price
    from datakit.annotate.prices import lookup, shipped

    from_table = any((lookup(config.prices, m) or (None, ""))[1] == "table" for m in {r.model for r in todo})
    return Estimate(
        requests=len(requests),
        cached=len(requests) - len(todo),
        to_send=len(todo),
        images=images,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=None if todo and len(unpriced) == len({r.model for r in todo}) else cost,
        cached_cost_usd=sum(a.cost_usd for a in answers.values()),
        unpriced_models=tuple(sorted(unpriced)),
        output_basis=basis,
        prices_as_of=shipped().as_of if from_table else None,
    )

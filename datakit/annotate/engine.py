"""From N rendered teacher requests to N results: cache first, then the endpoint (online or Batch API).

Each request is a :class:`~datakit.annotate.chain.Chain`: the request and its re-asks. Raw replies are stored
before they are parsed: a changed parser re-parses without asking again, and asks again only where the new parser
still rejects a reply. When every link is cached nothing is sent and ``openai`` is not even imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from datakit.annotate.aio import run_sync
from datakit.annotate.batch import run_batches
from datakit.annotate.cache import Cache
from datakit.annotate.chain import Chain, Parse
from datakit.annotate.online import run_online
from datakit.annotate.progress import Tally
from datakit.annotate.prompts import PromptSet
from datakit.annotate.request import TeacherRequest, TeacherResult
from datakit.config import TeacherConfig
from datakit.errors import ConfigError


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
    prompts: PromptSet | None = None,
) -> list[TeacherResult]:
    """Answer every request (cache first), in the order given.

    ``requests`` may be a lazy iterator (``total`` then says how many, for the progress bar): the online
    transport starts sending as soon as the first uncached request is built and builds the rest while waiting
    for answers, so rendering prompts and hashing keys overlap the network.

    ``parse(text)`` returns the parsed value or raises ``ValueError``; an unparseable reply is re-asked up to
    ``config.max_reasks`` times, in the words of ``prompts``' ``annotate/reask.j2`` (default: datakit's own
    templates). Failed rows come back with ``ok=False`` and an ``error_code``; only what
    stops the whole run raises (:class:`~datakit.errors.TeacherAuthError`,
    :class:`~datakit.errors.TeacherUnavailable`, :class:`~datakit.errors.TeacherError`). With
    ``transport="batch"`` the missing requests go through the Batch API (``run`` is required: the batch ids
    are saved in it), and re-asks needed after the batch go online.
    """
    if transport not in ("online", "batch"):
        raise ConfigError(f"unknown teacher transport {transport!r}", hint="choose online or batch")
    prompts = prompts or PromptSet()
    if not isinstance(requests, Sequence):
        return _run_streaming(iter(requests), cache=cache, config=config, parse=parse, transport=transport,
                              run=run, progress=progress, total=total, prompts=prompts)
    chains = [Chain(r, parse=parse, config=config, prompts=prompts) for r in requests]
    answers = cache.get_many(r.key for r in requests)
    pending = [c for c in chains if c.replay(cache, answers.get(c.first.key), looked_up=True)]
    if pending:
        tally = Tally(total=len(chains), done=len(chains) - len(pending), cached=len(chains) - len(pending))
        tally.failed = sum(1 for c in chains if c.result is not None and not c.result.ok)
        if transport == "batch":
            if run is None:
                raise ConfigError("the batch transport needs a run directory (its batch ids are saved there)")
            run_sync(lambda: run_batches(pending, cache=cache, config=config, run=run, tally=tally,
                                         progress=progress))  # fmt: skip
            pending = [c for c in pending if c.result is None and c.replay(cache) is not None]
            finished = [c.result for c in chains if c.result is not None]
            tally.done, tally.failed = len(finished), sum(1 for r in finished if not r.ok)
        if pending:
            run_sync(lambda: run_online(pending, cache=cache, config=config, tally=tally, progress=progress))
    return [c.result for c in chains]  # type: ignore[misc]


def _run_streaming(
    source: Iterator[TeacherRequest], *, cache: Cache, config: TeacherConfig, parse: Parse, transport: str,
    run: Any | None, progress: bool, total: int | None, prompts: PromptSet,
) -> list[TeacherResult]:
    """:func:`run_requests` over a lazy iterator.

    Replays from the cache until a request must be sent, then sends while the rest is still being built (online),
    or builds everything first (batch).
    """
    chains: list[Chain] = []
    first: Chain | None = None
    for request in source:
        chain = Chain(request, parse=parse, config=config, prompts=prompts)
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
                                      transport="batch", run=run, progress=progress, prompts=prompts)
    done = len(chains) - 1
    tally = Tally(total=total or done + 1, done=done, cached=done)
    tally.failed = sum(1 for c in chains[:-1] if not c.result.ok)  # type: ignore[union-attr]

    def more() -> Chain | None:
        """The next chain that needs sending; cached ones are replayed and counted on the way."""
        for request in source:
            chain = Chain(request, parse=parse, config=config, prompts=prompts)
            chains.append(chain)
            if chain.replay(cache) is not None:
                return chain
            tally.done += 1
            tally.cached += 1
            tally.failed += int(not chain.result.ok)  # type: ignore[union-attr]
        return None

    run_sync(lambda: run_online([first], cache=cache, config=config, tally=tally, progress=progress, more=more))
    return [c.result for c in chains]  # type: ignore[misc]

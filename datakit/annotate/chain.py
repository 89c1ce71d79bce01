"""One study's request and its re-asks, fed answer by answer (from the cache or the endpoint) to a result.

A *chain* is the request, and when its reply cannot be parsed, up to ``max_reasks`` re-asks: the messages so far +
the reply + what was wrong with it, in the words of the ``annotate/reask.j2`` template (a second re-ask carries the
first one's exchange too, so the model sees every failed try, and no two links of a chain are the same request).
Every link is a request of its own with its own key, so a chain is replayed from the cache link by link and only
the missing links are sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datakit.annotate.cache import Cache, CallRecord
from datakit.annotate.prompts import PromptSet
from datakit.annotate.request import TeacherRequest, TeacherResult
from datakit.config import TeacherConfig

Parse = Callable[[str], Any]


class Chain:
    """One study's request and its re-asks, fed answer by answer until it has a result."""

    def __init__(self, request: TeacherRequest, *, parse: Parse, config: TeacherConfig, prompts: PromptSet) -> None:
        self.first = request
        self.current: TeacherRequest | None = request
        self.parse = parse
        self.config = config
        self.prompts = prompts
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
            current: TeacherRequest = self.current  # type: ignore[assignment]
            self.current = current.reask(text, self.prompts.reask(message, schema_name=current.schema_id))
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

"""``cache.sqlite``: every teacher request and its raw response, keyed by the request's hash.

The raw response is written *before* it is parsed, and each write commits on its own, so ``kill -9`` loses at
most the requests in flight, a parser change re-parses without asking again, and a second run asks nothing.
A row whose ``response_json`` is null is not an answer (a failed HTTP call, or a request waiting in a Batch
API batch): lookups skip it and a later run asks again. An answer is never overwritten by a failure.

SQLite in WAL mode with ``synchronous=NORMAL``: a commit reaches the operating system at once (safe against a
killed process) without an fsync per response (only a power cut can lose the last commits). One connection
is shared by the threads of one process behind a lock; other processes may use the same file concurrently.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datakit import __version__
from datakit.annotate.migrations import apply_migrations
from datakit.annotate.request import TeacherRequest, cost_usd
from datakit.errors import ConfigError
from datakit.hashing import canonical_json
from datakit.rundir import utc_now

COLUMNS = (
    "key", "study_id", "teacher", "model", "resolved_model", "template_id", "template_sha", "schema_id",
    "options_json", "request_json", "response_json", "text", "finish_reason", "input_tokens", "output_tokens",
    "cost_usd", "duration_ms", "datetime_utc", "attempt", "error", "datakit_version",
)  # fmt: skip
_ALL = ", ".join(COLUMNS)
_ANSWER = "key, text, finish_reason, input_tokens, output_tokens, cost_usd, resolved_model"
_LOOKUP_CHUNK = 500  # keys per `in (…)` query, below SQLite's variable limit


@dataclass(frozen=True)
class CallRecord:
    """One answered call, as the engine needs it to parse and account (not the whole row)."""

    key: str
    text: str | None
    finish_reason: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    resolved_model: str | None = None


def _record(row: tuple[Any, ...]) -> CallRecord:
    key, text, finish, inp, out, cost, resolved = row
    return CallRecord(key, text, finish, inp or 0, out or 0, cost or 0.0, resolved)


class Cache:
    """The teacher's request/response store. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: autocommit, so a single statement commits on its own; explicit transactions
        # (migrations, put_many) use BEGIN IMMEDIATE.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        self._conn.execute("pragma journal_mode=wal")
        self._conn.execute("pragma synchronous=normal")
        self._conn.execute("pragma busy_timeout=60000")
        apply_migrations(self._conn)

    @classmethod
    def for_run(cls, run: Any | None, cache_path: str | Path | None = None) -> Cache:
        """The shared cache at ``cache_path`` (``teacher.cache_path``) if set, else the run's cache.sqlite."""
        if cache_path:
            return cls(Path(cache_path).expanduser())
        if run is None:
            raise ConfigError("no teacher cache: neither teacher.cache_path nor a run directory was given")
        return cls(run.cache_path)

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Cache({str(self.path)!r})"

    # reads --------------------------------------------------------------------------------------------------
    def get(self, key: str) -> CallRecord | None:
        """The answer stored for ``key``, or ``None`` (failed calls and waiting batch requests are not)."""
        with self._lock:
            row = self._conn.execute(
                f"select {_ANSWER} from calls where key = ? and response_json is not null", (key,)
            ).fetchone()
        return None if row is None else _record(row)

    def get_many(self, keys: Iterable[str]) -> dict[str, CallRecord]:
        """Answers for many keys at once (missing keys are absent from the result)."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, CallRecord] = {}
        with self._lock:
            for i in range(0, len(unique), _LOOKUP_CHUNK):
                chunk = unique[i : i + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                for row in self._conn.execute(
                    f"select {_ANSWER} from calls where response_json is not null and key in ({marks})", chunk
                ):
                    found[row[0]] = _record(row)
        return found

    def refusal(self, key: str) -> str | None:
        """The refusal text of an answer without content, if the server sent one."""
        with self._lock:
            row = self._conn.execute("select response_json from calls where key = ?", (key,)).fetchone()
        if row is None or row[0] is None:
            return None
        try:
            message = json.loads(row[0])["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            return None
        refusal = message.get("refusal") if isinstance(message, dict) else None
        return refusal if isinstance(refusal, str) and refusal else None

    def row(self, key: str) -> dict[str, Any] | None:
        """The whole row of ``key`` (answered or not) as a dict."""
        with self._lock:
            row = self._conn.execute(f"select {_ALL} from calls where key = ?", (key,)).fetchone()
        return None if row is None else dict(zip(COLUMNS, row, strict=True))

    def rows(self, *, study_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Every row (of one study), oldest first."""
        where, args = ("where study_id = ?", (study_id,)) if study_id is not None else ("", ())
        with self._lock:
            fetched = self._conn.execute(
                f"select {_ALL} from calls {where} order by datetime_utc", args
            ).fetchall()
        for row in fetched:
            yield dict(zip(COLUMNS, row, strict=True))

    def count(self, *, answered: bool = True) -> int:
        """Number of answered rows (or of all rows)."""
        where = "where response_json is not null" if answered else ""
        with self._lock:
            return self._conn.execute(f"select count(*) from calls {where}").fetchone()[0]

    # writes -------------------------------------------------------------------------------------------------
    def put(self, row: dict[str, Any]) -> None:
        """Store an answer (replacing whatever the key had); committed before this returns."""
        self._write([row], answer=True)

    def put_many(self, rows: Sequence[dict[str, Any]], *, answer: bool = True) -> None:
        """Store many rows in one transaction (Batch API merges)."""
        self._write(rows, answer=answer)

    def put_failure(self, row: dict[str, Any]) -> None:
        """Record a call that got no answer; an existing answer for the key is kept."""
        self._write([row], answer=False)

    def _write(self, rows: Sequence[dict[str, Any]], *, answer: bool) -> None:
        if not rows:
            return
        for row in rows:
            unknown = set(row) - set(COLUMNS)
            if unknown:
                raise ValueError(f"not columns of calls: {sorted(unknown)}")
        cols = ", ".join(COLUMNS)
        marks = ", ".join("?" * len(COLUMNS))
        update = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "key")
        guard = "" if answer else " where calls.response_json is null"
        sql = f"insert into calls ({cols}) values ({marks}) on conflict(key) do update set {update}{guard}"
        values = [tuple(row.get(c) for c in COLUMNS) for row in rows]
        with self._lock:
            if len(values) == 1:
                self._conn.execute(sql, values[0])  # autocommit: durable when this returns
                return
            self._conn.execute("begin immediate")
            try:
                self._conn.executemany(sql, values)
                self._conn.execute("commit")
            except BaseException:
                self._conn.execute("rollback")
                raise

    def columns(self) -> list[str]:
        """Column names of ``calls`` as the database has them (tests compare them with :data:`COLUMNS`)."""
        with self._lock:
            return [r[1] for r in self._conn.execute("pragma table_info(calls)")]


class CacheWriter:
    """Stores the online transport's answers from a thread of its own, many per transaction.

    The event loop never waits on SQLite (a commit, and now and then a WAL checkpoint, takes milliseconds that
    would hold back every other answer of the round). Each :meth:`put` still returns only once its row is
    committed, so an answer is stored before it is parsed and ``kill -9`` loses only what was in flight or
    waiting for its commit: at most one request per worker. The thread writes through its own connection, so
    lookups on the loop's connection are never blocked by a write (WAL readers do not wait for the writer).
    """

    def __init__(self, path: str | Path) -> None:
        import concurrent.futures

        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="datakit-cache")
        self._cache = self._pool.submit(Cache, path)  # opened in its thread, which is its only user
        self._waiting: list[tuple[dict[str, Any], bool, Any]] = []
        self._flushing = False

    async def put(self, row: dict[str, Any], *, answer: bool = True) -> None:
        """Store an answer (or, with ``answer=False``, a failed call); return once it is committed."""
        import asyncio

        done = asyncio.get_running_loop().create_future()
        self._waiting.append((row, answer, done))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await done

    async def _flush(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await loop.run_in_executor(self._pool, self._write, batch)
                except BaseException as err:  # every put of the batch sees the failure
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(err)
                    continue
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._flushing = False

    def _write(self, batch: list[tuple[dict[str, Any], bool, Any]]) -> None:
        cache = self._cache.result()
        answers = [row for row, answer, _ in batch if answer]
        failures = [row for row, answer, _ in batch if not answer]
        cache.put_many(answers)
        cache.put_many(failures, answer=False)

    def close(self) -> None:
        """Close the thread's connection and the thread (the rows put so far are committed)."""
        try:
            self._pool.submit(lambda: self._cache.result().close()).result()
        finally:
            self._pool.shutdown(wait=True)


# rows -------------------------------------------------------------------------------------------------------
def message_text(message: dict[str, Any]) -> str | None:
    """The text of a chat message: a string, or the text parts of a list (some servers send one)."""
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def answer_row(
    request: TeacherRequest,
    data: dict[str, Any],
    response_json: str,
    *,
    teacher: str,
    prices: dict[str, Any],
    price_factor: float = 1.0,
    duration_ms: int | None = None,
    attempt: int | None = None,
) -> dict[str, Any]:
    """The ``calls`` row of an answered :class:`~datakit.annotate.request.TeacherRequest`."""
    choice = (data.get("choices") or [{}])[0]
    usage = data.get("usage") or {}
    inp = int(usage.get("prompt_tokens") or 0)
    out = int(usage.get("completion_tokens") or 0)
    resolved = data.get("model")
    cost = cost_usd(prices, request.model, inp, out, factor=price_factor)
    if cost is None and resolved:
        cost = cost_usd(prices, resolved, inp, out, factor=price_factor)
    return {
        **_request_columns(request, teacher),
        "resolved_model": resolved,
        "response_json": response_json,
        "text": message_text(choice.get("message") or {}),
        "finish_reason": choice.get("finish_reason"),
        "input_tokens": inp,
        "output_tokens": out,
        "cost_usd": cost or 0.0,
        "duration_ms": duration_ms,
        "datetime_utc": utc_now(),
        "attempt": attempt,
        "error": None,
        "datakit_version": __version__,
    }


def failure_row(
    request: TeacherRequest, *, teacher: str, error: str, attempt: int | None = None
) -> dict[str, Any]:
    """The ``calls`` row of a request that got no answer (or waits in a batch): not a cache hit."""
    return {
        **_request_columns(request, teacher),
        "datetime_utc": utc_now(),
        "attempt": attempt,
        "error": error,
        "datakit_version": __version__,
    }


def _request_columns(request: TeacherRequest, teacher: str) -> dict[str, Any]:
    return {
        "key": request.key,
        "study_id": request.study_id,
        "teacher": teacher,
        "model": request.model,
        "template_id": request.template_id,
        "template_sha": request.template_sha,
        "schema_id": request.schema_id,
        "options_json": canonical_json(request.options()),
        "request_json": request.request_json,
    }

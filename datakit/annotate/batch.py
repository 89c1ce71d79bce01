"""The OpenAI Batch API as the teacher's transport: cheaper, slower, and resumable.

1. The requests not yet answered are written as batch JSONL (``custom_id`` = cache key), at most
   ``batch_max_requests`` lines and ``batch_max_mb`` per file, uploaded, and started as batches.
2. Each batch's id and request keys are saved in the run's ``batches.json`` (atomically) *before* polling,
   and each request gets a placeholder row in the cache (its metadata, no answer). A run killed while waiting
   polls the saved batches next time instead of paying for them twice. A kill between creating a batch and
   saving its id (a few milliseconds) is the one window where a batch can be orphaned.
3. Batches are polled with a growing delay; each finished batch's output and error files are merged into the
   same cache as online answers, then the batch is marked merged.
4. Requests of an *expired* batch (or that got a 429/5xx inside one) are resubmitted, and only those, up to
   ``max_retries`` rounds. A batch found cancelled or failed when a run starts (``datakit annotate --cancel``)
   has its unanswered requests resubmitted; one that is cancelled or fails while this run waits on it fails
   them for this run (``batch_cancelled`` / ``batch_failed``), to be resubmitted by the next.

Re-asks after an unparseable reply go online, not into another batch: they are few, and a batch can take a
day (see :func:`datakit.annotate.engine.run_requests`).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datakit import logs
from datakit.annotate.aio import run_sync
from datakit.annotate.cache import Cache, answer_row, failure_row
from datakit.annotate.chain import Chain
from datakit.annotate.client import TeacherClient, endpoint_label
from datakit.annotate.progress import ProgressView, Tally
from datakit.annotate.request import TeacherRequest
from datakit.config import TeacherConfig, resolve_config
from datakit.rundir import RunDir, utc_now, write_atomic

BATCHES_FILE = "batches.json"
TERMINAL = ("completed", "failed", "expired", "cancelled")
_RETRYABLE_STATUS = {408, 409, 429}


def load_batches(run: RunDir) -> list[dict[str, Any]]:
    """The batches saved in the run directory."""
    path = run.path(BATCHES_FILE)
    if not path.is_file():
        return []
    return json.loads(path.read_text(encoding="utf-8")).get("batches", [])


def save_batches(run: RunDir, batches: list[dict[str, Any]]) -> None:
    """Write batches.json atomically."""
    write_atomic(run.path(BATCHES_FILE), json.dumps({"batches": batches}, indent=1) + "\n")


def cancel_batches(run: RunDir, *, config: TeacherConfig | None = None) -> list[dict[str, Any]]:
    """Cancel the run's batches that are still running (``datakit annotate --cancel``); return them.

    ``config`` defaults to the teacher section of the run's ``datakit.toml``. Only batches sent to the
    configured endpoint are touched. What they answered before the cancel is merged by the next run, which
    resubmits the rest.
    """
    logs.setup(run.root)
    if config is None:
        config = resolve_config(run.config_path).teacher
    endpoint = endpoint_label(config.base_url)
    saved = load_batches(run)
    open_ = [b for b in saved if not b.get("merged") and b.get("status") not in TERMINAL]
    open_ = [b for b in open_ if b.get("endpoint") == endpoint]
    if not open_:
        return []

    async def cancel() -> list[dict[str, Any]]:
        client = TeacherClient(config)
        try:
            for entry in open_:
                state = await client.retrieve_batch(entry["id"])  # it may have ended since the last poll
                if state.get("status") not in TERMINAL:
                    state = await client.cancel_batch(entry["id"])
                entry["status"] = state.get("status") or "cancelling"
                save_batches(run, saved)
        finally:
            await client.close()
        return open_

    return run_sync(cancel)


async def run_batches(
    chains: Sequence[Chain], *, cache: Cache, config: TeacherConfig, run: RunDir, tally: Tally, progress: bool
) -> None:
    """Answer the chains' pending requests through batches (resuming saved ones); fail what cannot be."""
    client = TeacherClient(config)
    job = _BatchJob(chains, cache=cache, config=config, run=run, tally=tally, client=client)
    view = ProgressView(tally, label="teacher (batch)", enabled=progress)
    drawer = asyncio.create_task(view.run())
    try:
        with view:
            await job.execute()
    finally:
        drawer.cancel()
        await asyncio.gather(drawer, return_exceptions=True)
        await client.close()


class _BatchJob:
    def __init__(
        self,
        chains: Sequence[Chain],
        *,
        cache: Cache,
        config: TeacherConfig,
        run: RunDir,
        tally: Tally,
        client: TeacherClient,
    ) -> None:
        self.cache, self.config, self.run, self.tally, self.client = cache, config, run, tally, client
        self.chains: dict[str, list[Chain]] = {}
        self.requests: dict[str, TeacherRequest] = {}
        for chain in chains:
            self.chains.setdefault(chain.current.key, []).append(chain)
            self.requests[chain.current.key] = chain.current
        self.saved = load_batches(run)
        self.seen_running: set[str] = set()

    async def execute(self) -> None:
        ours = [b for b in self.saved if not b.get("merged") and b.get("endpoint") == self.client.endpoint]
        open_ = [b for b in ours if not set(b["keys"]).isdisjoint(self.requests)]
        covered = {k for b in open_ for k in b["keys"]}
        todo = [k for k in self.requests if k not in covered]
        for round_ in range(self.config.max_retries + 1):
            if todo:
                open_ += await self._submit([self.requests[k] for k in todo])
            if not open_:
                return
            retry = await self._wait(open_)
            open_ = []
            todo = [k for k in retry if k in self.requests]
            if not todo:
                return
            if round_ == self.config.max_retries:
                for key in todo:
                    self._fail(key, "batch_failed", f"no answer after {round_ + 1} Batch API rounds")

    # submit -------------------------------------------------------------------------------------------------
    async def _submit(self, requests: list[TeacherRequest]) -> list[dict[str, Any]]:
        created = []
        limit_bytes = int(self.config.batch_max_mb * 1_000_000)
        start = 0
        while start < len(requests):
            path = self.run.path(f".batch-input.{os.getpid()}.jsonl")
            size, chunk = 0, []
            with open(path, "wb") as fh:
                for request in requests[start:]:
                    line = json.dumps(
                        {"custom_id": request.key, "method": "POST", "url": "/v1/chat/completions",
                         "body": request.wire_body()}, ensure_ascii=False, separators=(",", ":"),
                    ).encode("utf-8") + b"\n"  # fmt: skip
                    full = len(chunk) >= self.config.batch_max_requests or size + len(line) > limit_bytes
                    if chunk and full:
                        break
                    fh.write(line)
                    size += len(line)
                    chunk.append(request)
            start += len(chunk)
            try:
                file_id = await self.client.upload_batch_file(Path(path))
            finally:
                path.unlink(missing_ok=True)
            # Placeholders first: the metadata of every request is in the cache before the batch exists.
            teacher = self.client.endpoint
            waiting = [failure_row(r, teacher=teacher, error="in a Batch API batch") for r in chunk]
            self.cache.put_many(waiting, answer=False)
            batch = await self.client.create_batch(file_id, {"datakit_run": self.run.root.name[:64]})
            entry = {"id": batch["id"], "input_file_id": file_id, "endpoint": self.client.endpoint,
                     "status": batch.get("status"), "submitted_utc": utc_now(), "merged": False,
                     "keys": [r.key for r in chunk]}  # fmt: skip
            self.saved.append(entry)
            self.seen_running.add(entry["id"])
            save_batches(self.run, self.saved)  # before any polling: a killed run resumes from here
            created.append(entry)
        self.tally.status = f"{len(created)} batch(es) submitted"
        return created

    # poll and merge -----------------------------------------------------------------------------------------
    async def _wait(self, open_: list[dict[str, Any]]) -> list[str]:
        """Poll until every batch has ended and is merged; return the keys to resubmit."""
        retry: list[str] = []
        delay = self.config.batch_poll_s
        first = True
        while open_:
            if not first:
                await asyncio.sleep(delay)
                delay = min(self.config.batch_poll_max_s, delay * 1.5)
            first = False
            still = []
            for entry in open_:
                state = await self.client.retrieve_batch(entry["id"])
                entry["status"] = state.get("status")
                entry["request_counts"] = state.get("request_counts")
                if entry["status"] in TERMINAL:
                    retry += await self._merge(entry, state)
                else:
                    self.seen_running.add(entry["id"])
                    still.append(entry)
            open_ = still
            self.tally.status = _describe(open_)
        return retry

    async def _merge(self, entry: dict[str, Any], state: dict[str, Any]) -> list[str]:
        """Store what an ended batch answered; fail or hand back (to resubmit) the rest."""
        status = entry["status"]
        # A batch that ended while this run watched it was cancelled or failed on purpose or for a reason that
        # would repeat: its requests fail for this run. One found ended (e.g. after --cancel) is resubmitted.
        again_if_stopped = entry["id"] not in self.seen_running
        answered: dict[str, dict[str, Any]] = {}
        failed: dict[str, tuple[str, str, bool]] = {}  # key → (code, message, resubmit?)
        for file_id in (state.get("output_file_id"), state.get("error_file_id")):
            if file_id:
                for line in _lines(await self.client.file_content(file_id)):
                    self._classify(line, answered, failed, again_if_stopped)
        for key in entry["keys"]:
            if key in answered or key in failed:
                continue
            message = f"batch {entry['id']} {status}{_batch_errors(state)}"
            if status in ("expired", "completed"):
                failed[key] = ("batch_expired", message, True)
            else:
                failed[key] = (f"batch_{status}", message, again_if_stopped)
        rows = [self._answer(key, body) for key, body in answered.items()]
        self.cache.put_many([r for r in rows if r is not None])
        retry = []
        for key, (code, message, again) in failed.items():
            if again:
                retry.append(key)
            else:
                self._fail(key, code, message)
        entry["merged"] = True
        save_batches(self.run, self.saved)
        return retry

    @staticmethod
    def _classify(
        line: dict[str, Any], answered: dict[str, Any], failed: dict[str, Any], again_if_stopped: bool
    ) -> None:
        key = line.get("custom_id")
        response = line.get("response") or {}
        status = response.get("status_code")
        if status == 200 and isinstance(response.get("body"), dict):
            answered[key] = response["body"]
            return
        if status is not None:
            body = response.get("body") or {}
            message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
            retryable = status >= 500 or status in _RETRYABLE_STATUS
            code = "server_error" if retryable else "http_error"
            code = "bad_request" if status in (400, 413, 422) else code
            failed[key] = (code, f"batch answered {status}: {message or ''}".strip(), retryable)
            return
        error = line.get("error") or {}
        code = str(error.get("code") or "batch_failed")
        message = f"{code}: {error.get('message') or ''}".strip()
        if code == "batch_expired":
            failed[key] = (code, message, True)
        elif code in ("batch_cancelled", "batch_failed"):
            failed[key] = (code, message, again_if_stopped)
        else:
            failed[key] = ("batch_failed", message, False)

    def _answer(self, key: str, body: dict[str, Any]) -> dict[str, Any] | None:
        request = self.requests.get(key) or self._stored_request(key)
        if request is None:  # not ours and not in the cache: nothing to attach it to
            return None
        row = answer_row(
            request, body, json.dumps(body, ensure_ascii=False), teacher=self.client.endpoint,
            prices=self.config.prices, price_factor=self.config.batch_price_factor, attempt=1,
        )  # fmt: skip
        self.tally.http_requests += 1
        self.tally.input_tokens += row["input_tokens"]
        self.tally.output_tokens += row["output_tokens"]
        self.tally.cost_usd += row["cost_usd"]
        for chain in self.chains.get(key, []):
            chain.sent = True
            chain.attempts += 1
        return row

    def _stored_request(self, key: str) -> TeacherRequest | None:
        """A request of an older run, rebuilt from its placeholder row (its key is the same)."""
        row = self.cache.row(key)
        if row is None or not row.get("request_json"):
            return None
        return TeacherRequest(row["study_id"], json.loads(row["request_json"]), row["template_id"] or "",
                              row["template_sha"] or "", row["schema_id"] or "")  # fmt: skip

    def _fail(self, key: str, code: str, message: str) -> None:
        request = self.requests.get(key)
        if request is not None:
            self.cache.put_failure(failure_row(request, teacher=self.client.endpoint, error=message))
        for chain in self.chains.get(key, []):
            if chain.result is None:
                chain.sent = True
                chain.fail(code, message)
                self.tally.done += 1
                self.tally.failed += 1


def _describe(open_: list[dict[str, Any]]) -> str:
    """What the batches being waited on are doing, for the progress line."""
    if not open_:
        return ""
    done = sum((e.get("request_counts") or {}).get("completed") or 0 for e in open_)
    total = sum((e.get("request_counts") or {}).get("total") or len(e["keys"]) for e in open_)
    states = sorted({str(e.get("status")) for e in open_})
    return f"{len(open_)} batch(es) {'/'.join(states)}: {done}/{total} answered"


def _lines(content: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in content.decode("utf-8").splitlines() if line.strip()]


def _batch_errors(state: dict[str, Any]) -> str:
    errors = (state.get("errors") or {}).get("data") or []
    messages = [str(e.get("message")) for e in errors[:3] if isinstance(e, dict)]
    return (": " + "; ".join(messages)) if messages else ""

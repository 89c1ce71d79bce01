"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests: scripted replies, and a log of what was sent.

    with FakeOpenAI() as server:
        server.script(Reply(status=429, headers={"retry-after": "0.2"}), Reply(content='{"a": 1}'))
        ... TeacherConfig(base_url=server.base_url) ...
        assert len(server.chat_requests()) == 2

Implements ``POST /v1/chat/completions``, ``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}`` and
``/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}`` and ``POST /v1/batches/{id}/cancel``. A reply is
chosen for each chat request by, in order: the queue given to :meth:`FakeOpenAI.script`, the ``handler``
(``handler(body, index) -> Reply``), or the default (``{"answer": "ok"}``).

Batches are answered by the same replies (without delays). ``batch_mode="complete"`` finishes a batch when it
is created; ``"hold"`` leaves it ``in_progress`` until :meth:`FakeOpenAI.finish_batch`.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TERMINAL = {"completed", "failed", "expired", "cancelled"}
_ERROR_CODES = {"expired": "batch_expired", "cancelled": "batch_cancelled"}


@dataclass
class Reply:
    """How to answer one chat request."""

    content: str | None = '{"answer": "ok"}'
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    finish_reason: str = "stop"
    usage: dict[str, int] | None = None  # default: estimated from the sizes
    error: dict[str, Any] | None = None  # body of a non-200 answer
    raw: bytes | None = None  # answer these bytes instead of a chat completion
    model: str | None = None  # resolved model; default: the requested one with a date suffix
    refusal: str | None = None


@dataclass
class Received:
    """One request the server got."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON when it was JSON, else bytes
    t_received: float
    t_answered: float | None = None
    status: int | None = None


Handler = Callable[[dict[str, Any], int], Reply]


class FakeOpenAI:
    """The server; start with ``with`` (or :meth:`start`/:meth:`stop`)."""

    def __init__(self, handler: Handler | None = None, *, batch_mode: str = "complete") -> None:
        self.handler = handler
        self.batch_mode = batch_mode
        self.log: list[Received] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._chat_count = itertools.count()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        """Listen on a free port of 127.0.0.1 in a background thread."""
        server = self

        class _Handler(_RequestHandler):
            fake = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; requests still sleeping are cut short."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._httpd is not None, "not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """What to give the client as ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # scripting and inspection -------------------------------------------------------------------------------
    def script(self, *replies: Reply) -> None:
        """Answer the next chat requests with these replies, in order (then fall back to the handler)."""
        with self._lock:
            self._queue.extend(replies)

    def chat_requests(self, *, answered: bool | None = None) -> list[Received]:
        """The chat requests received (only those answered with a 200 when ``answered``)."""
        with self._lock:
            rows = [r for r in self.log if r.path.endswith("/chat/completions")]
        if answered:
            rows = [r for r in rows if r.status == 200 and r.t_answered is not None]
        return rows

    def requests_to(self, method: str, path_part: str) -> list[Received]:
        """Requests whose method matches and whose path contains ``path_part``."""
        with self._lock:
            return [r for r in self.log if r.method == method and path_part in r.path]

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        index = next(self._chat_count)
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.handler is not None:
            return self.handler(body, index)
        return Reply()

    # batches ------------------------------------------------------------------------------------------------
    def finish_batch(self, batch_id: str, status: str = "completed", *, answered: int | None = None) -> None:
        """End a batch: the first ``answered`` requests (default: all) get replies, the rest an error line."""
        with self._lock:
            batch = self.batches[batch_id]
            source = self.files[batch["input_file_id"]]["content"]
        lines = [json.loads(line) for line in source.decode("utf-8").splitlines() if line.strip()]
        limit = len(lines) if answered is None else answered
        out, errors = [], []
        for i, line in enumerate(lines):
            if i < limit:
                reply = self._next_reply(line["body"])
                status_code = reply.status
                if reply.raw is not None:
                    body = json.loads(reply.raw)
                elif status_code != 200:
                    body = reply.error or {"error": {"message": f"scripted {status_code}", "type": "fake"}}
                else:
                    body = _chat_body(line["body"], reply)
                out.append({"id": f"batch_req_{i}", "custom_id": line["custom_id"],
                            "response": {"status_code": status_code, "request_id": f"req_{i}", "body": body},
                            "error": None})  # fmt: skip
            else:
                code = _ERROR_CODES.get(status, "batch_failed")
                error = {"code": code, "message": f"not processed: batch {status}"}
                errors.append({"id": f"batch_req_{i}", "custom_id": line["custom_id"], "response": None,
                               "error": error})  # fmt: skip
        now = int(time.time())
        with self._lock:
            if out:
                batch["output_file_id"] = self._add_file(_jsonl(out), "batch_output", "output.jsonl")
            if errors:
                batch["error_file_id"] = self._add_file(_jsonl(errors), "batch_output", "errors.jsonl")
            batch["status"] = status
            batch[f"{status}_at"] = now
            batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(errors)}

    def _add_file(self, content: bytes, purpose: str, filename: str) -> str:
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = {
            "id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
            "filename": filename, "purpose": purpose, "content": content,
        }  # fmt: skip
        return file_id

    def _create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            batch_id = f"batch_{next(self._ids)}"
            n = self.files[body["input_file_id"]]["content"].count(b"\n")
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
                "status": "in_progress", "output_file_id": None, "error_file_id": None,
                "created_at": int(time.time()), "in_progress_at": int(time.time()),
                "expires_at": int(time.time()) + 86400, "metadata": body.get("metadata"),
                "request_counts": {"total": n, "completed": 0, "failed": 0},
            }  # fmt: skip
        if self.batch_mode == "complete":
            self.finish_batch(batch_id)
        return self.batches[batch_id]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")


def _chat_body(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    content = reply.content
    usage = reply.usage or {
        "prompt_tokens": len(json.dumps(request)) // 4,
        "completion_tokens": len(content or "") // 4 + 1,
    }
    usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reply.refusal is not None:
        message["refusal"] = reply.refusal
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or f"{request.get('model', 'fake')}-2025-01-01",
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
        "usage": usage,
    }


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai client expects
    fake: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, entry: Received, status: int, payload: Any, headers: dict[str, str] | None = None
                ) -> None:  # fmt: skip
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client gave up (a timeout test): nothing was delivered
            return
        entry.t_answered = time.monotonic()
        entry.status = status

    def _read(self) -> tuple[Received, bytes]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = raw
        if raw and "json" in (self.headers.get("Content-Type") or ""):
            try:
                body = json.loads(raw)
            except ValueError:
                pass
        entry = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                         time.monotonic())  # fmt: skip
        with self.fake._lock:
            self.fake.log.append(entry)
        return entry, raw

    def do_POST(self) -> None:  # noqa: N802
        entry, raw = self._read()
        path = self.path.split("?", 1)[0]
        if path.endswith("/chat/completions"):
            reply = self.fake._next_reply(entry.body if isinstance(entry.body, dict) else {})
            if reply.delay_s and self.fake._stopping.wait(reply.delay_s):
                return
            if reply.raw is not None:
                self._answer(entry, reply.status, reply.raw, reply.headers)
            elif reply.status != 200:
                error = reply.error or {"error": {"message": f"scripted {reply.status}", "type": "fake"}}
                self._answer(entry, reply.status, error, reply.headers)
            else:
                self._answer(entry, 200, _chat_body(entry.body, reply), reply.headers)
        elif path.endswith("/files"):
            content, purpose, filename = _multipart(self.headers.get("Content-Type", ""), raw)
            with self.fake._lock:
                file_id = self.fake._add_file(content, purpose, filename)
                info = {k: v for k, v in self.fake.files[file_id].items() if k != "content"}
            self._answer(entry, 200, info)
        elif path.endswith("/batches"):
            self._answer(entry, 200, self.fake._create_batch(entry.body))
        elif path.endswith("/cancel"):
            batch_id = path.rstrip("/").split("/")[-2]
            batch = self.fake.batches.get(batch_id)
            if batch is None:
                self._answer(entry, 404, {"error": {"message": f"no batch {batch_id}"}})
                return
            if batch["status"] not in TERMINAL:
                self.fake.finish_batch(batch_id, "cancelled", answered=0)
            self._answer(entry, 200, batch)
        else:
            self._answer(entry, 404, {"error": {"message": f"no route {path}"}})

    def do_GET(self) -> None:  # noqa: N802
        entry, _ = self._read()
        parts = self.path.split("?", 1)[0].rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "batches" and parts[-1] in self.fake.batches:
            self._answer(entry, 200, self.fake.batches[parts[-1]])
        elif parts[-1] == "content" and parts[-2] in self.fake.files:
            self._answer(entry, 200, self.fake.files[parts[-2]]["content"])
        elif parts[-2] == "files" and parts[-1] in self.fake.files:
            self._answer(entry, 200, {k: v for k, v in self.fake.files[parts[-1]].items() if k != "content"})
        else:
            self._answer(entry, 404, {"error": {"message": f"no route {self.path}"}})


def _multipart(content_type: str, raw: bytes) -> tuple[bytes, str, str]:
    """The file, purpose and file name of a multipart/form-data upload."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    content, purpose, filename = b"", "", "upload"
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            content = payload
            filename = part.get_filename() or filename
        elif name == "purpose":
            purpose = payload.decode("utf-8")
    return content, purpose, filename

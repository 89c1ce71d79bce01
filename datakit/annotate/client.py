"""The only module that knows the endpoint's errors (STYLE.md H3): chat completions, files and batches.

Chat completions go out through :mod:`datakit.annotate.http` (a lean keep-alive HTTP/1.1 client; ``openai``'s
client costs ~1 ms of event-loop CPU per request and 0.45 s of import before the first one): the body is
serialised once by us, so what is hashed is what is sent (unknown parameters of vLLM or Ollama included), and
what is stored is the exact JSON the server sent. Files and batches go through ``AsyncOpenAI``, imported when
a batch needs it. Retries, backoff and the shared 429 cooldown live here, so every worker sees one rate-limit
state (``openai``'s own retries are off).

What stops the run (raised): a refused key (401/403, :class:`TeacherAuthError`), an endpoint that cannot be
reached after the retries or that has no such route or model (404, :class:`TeacherUnavailable`), an
exhausted quota. What fails one request (returned as :class:`Failure`) : a 400 (``bad_request``), and 429,
5xx or a timeout still there after ``max_retries`` retries. The API key is never put in a message.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from datakit.annotate.http import ConnectError, HttpResponse, RequestTimeout, Transport, transport_for
from datakit.annotate.limits import Limiter, backoff_s
from datakit.config import TeacherConfig
from datakit.errors import TeacherAuthError, TeacherError, TeacherUnavailable

log = logging.getLogger("datakit.annotate")
T = TypeVar("T")
NO_KEY = "no-key"  # sent when the key's variable is unset: local servers (vLLM, Ollama) often need none
OPENAI_BASE_URL = "https://api.openai.com/v1"
_RETRY_STATUS = {408, 409}  # besides 429 and 5xx: request timeout and lock conflicts, worth another try
_BAD_REQUEST_STATUS = {400, 413, 422}


@dataclass(frozen=True)
class Reply:
    """A 200 answer: the raw JSON text, its parsed form, and how it went."""

    response_json: str
    data: dict[str, Any]
    duration_ms: int
    attempt: int  # 1 for the first try


@dataclass(frozen=True)
class Failure:
    """A request that got no usable answer; the run goes on."""

    code: str
    message: str
    attempts: int


def endpoint_label(base_url: str | None) -> str:
    """The endpoint as recorded in the cache's ``teacher`` column: no user, password or query string."""
    if not base_url:
        return "openai"
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _retry_after_s(headers: Any) -> float | None:
    """The delay a server asks for: ``retry-after-ms`` (OpenAI), else ``retry-after`` (seconds or a date)."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        when = email.utils.parsedate_to_datetime(raw) if raw else None
        return None if when is None else max(0.0, when.timestamp() - time.time())


class TeacherClient:
    """Chat completions with datakit's retries, limits and error translation; ``repr`` never shows the key."""

    def __init__(self, config: TeacherConfig, limiter: Limiter | None = None) -> None:
        self.config = config
        self.limiter = limiter or Limiter(
            requests_per_minute=config.max_requests_per_minute, tokens_per_minute=config.max_tokens_per_minute
        )
        self.endpoint = endpoint_label(config.base_url)
        key = os.environ.get(config.api_key_env, "")
        if not key and not config.base_url:
            # OpenAI's own endpoint always wants a key: say so now rather than after a round of retries
            raise TeacherAuthError(
                f"no API key: the environment variable {config.api_key_env} is empty or unset",
                hint=f"export {config.api_key_env}=…, or point --base-url at a local OpenAI-compatible server",
            )
        self._key = key or NO_KEY  # local servers (vLLM, Ollama) often need none
        self._has_key = bool(key)
        self._scrub_key = key if len(key) >= 4 else ""
        # what openai's client would use: OPENAI_BASE_URL, and the organisation and project headers
        self.base_url = config.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
        self._headers = {"Authorization": f"Bearer {self._key}"}
        for header, env in (("OpenAI-Organization", "OPENAI_ORG_ID"), ("OpenAI-Project", "OPENAI_PROJECT_ID")):  # noqa: E501
            if os.environ.get(env):
                self._headers[header] = os.environ[env]
        self._http: Transport | None = None
        self._openai: Any = None

    def __repr__(self) -> str:
        return f"TeacherClient(endpoint={self.endpoint!r}, key_from=${self.config.api_key_env})"

    async def close(self) -> None:
        """Close the connections."""
        if self._http is not None:
            await self._http.close()
        if self._openai is not None:
            await self._openai.close()

    # chat completions ---------------------------------------------------------------------------------------
    async def chat(self, body: bytes, *, tokens: int) -> Reply | Failure:
        """Send one ``/chat/completions`` body, retrying what is worth retrying."""
        cfg = self.config
        if self._http is None:
            if cfg.http_client == "openai":
                self._http = _SdkTransport(self._sdk())
            else:
                self._http = transport_for(
                    self.base_url, self._headers, connect_timeout_s=cfg.connect_timeout_s,
                    timeout_s=cfg.request_timeout_s, max_connections=cfg.max_concurrency + 4,
                )  # fmt: skip
        last = Failure("http_error", "not sent", 0)
        for attempt in range(cfg.max_retries + 1):
            await self.limiter.admit(tokens)
            started = time.perf_counter()
            try:
                response = await self._http.post("/chat/completions", body)
            except (ConnectError, RequestTimeout) as err:
                self.limiter.settle(tokens, 0)
                if isinstance(err, RequestTimeout):
                    last = Failure("timeout", f"no answer within {cfg.request_timeout_s:g}s", attempt + 1)
                else:
                    last = Failure("unreachable", f"cannot connect to {self.endpoint}", attempt + 1)
                if attempt < cfg.max_retries:
                    delay = self._backoff(attempt)
                    log.info("%s; retry %d of %d in %.1fs", last.message, attempt + 1, cfg.max_retries, delay)
                    await asyncio.sleep(delay)
                continue
            if response.status >= 300:
                self.limiter.settle(tokens, 0)
                last, delay = self._classify(response.status, response.headers, _error_body(response.content),
                                             attempt + 1)
                if delay is None:
                    return last
                if attempt < cfg.max_retries:
                    log.info("%s; retry %d of %d in %.1fs", last.message, attempt + 1, cfg.max_retries, delay)
                    await asyncio.sleep(delay)
                continue
            duration_ms = int((time.perf_counter() - started) * 1000)
            raw = response.content.decode("utf-8", errors="replace")
            try:
                data = json.loads(raw)
                data["choices"][0]["message"]  # noqa: B018  (a 200 without a message is a broken answer)
            except (ValueError, KeyError, IndexError, TypeError):
                self.limiter.settle(tokens, 0)
                broken = f"{self.endpoint} sent an answer that is not a chat completion"
                last = Failure("server_error", broken, attempt + 1)
                if attempt < cfg.max_retries:
                    await asyncio.sleep(self._backoff(attempt))
                continue
            usage = data.get("usage") or {}
            self.limiter.settle(tokens, int(usage.get("total_tokens") or tokens))
            return Reply(raw, data, duration_ms, attempt + 1)
        if last.code == "unreachable":
            raise TeacherUnavailable(
                f"no answer from {self.endpoint} after {cfg.max_retries + 1} attempts ({last.message})",
                hint="start the server, or fix teacher.base_url",
            )
        return last

    def _backoff(self, attempt: int) -> float:
        return backoff_s(attempt, initial=self.config.backoff_initial_s, maximum=self.config.backoff_max_s)

    def _classify(self, status: int, headers: Any, body: Any, attempts: int) -> tuple[Failure, float | None]:
        """What an error status means: the failure to report, and the delay before retrying (``None``: never).

        ``body`` is the parsed JSON error body, or its text.
        """
        cfg = self.config
        detail, code = self._server_message(status, body)
        if status in (401, 403):
            raise self._auth_error(status, detail)
        if status == 404:
            raise TeacherUnavailable(
                f"{self.endpoint} answered 404 ({detail})",
                hint="check teacher.base_url (OpenAI-compatible servers often end in /v1) and teacher.model",
            )
        if status == 429:
            if "insufficient_quota" in code or "insufficient_quota" in detail:
                raise TeacherError(
                    f"{self.endpoint} says the account's quota is used up: {detail}",
                    hint="add credit or raise the limit, then run again: answers so far are cached",
                )
            after = _retry_after_s(headers)
            delay = min(after, cfg.max_retry_after_s) if after is not None else self._backoff(attempts - 1)
            self.limiter.cooldown(delay)  # everyone waits, not only this request
            return Failure("rate_limited", f"rate limited by {self.endpoint}: {detail}", attempts), delay
        if status >= 500 or status in _RETRY_STATUS:
            after = _retry_after_s(headers)
            delay = min(after, cfg.max_retry_after_s) if after is not None else self._backoff(attempts - 1)
            return Failure("server_error", f"{self.endpoint} answered {status}: {detail}", attempts), delay
        code = "bad_request" if status in _BAD_REQUEST_STATUS else "http_error"
        return Failure(code, f"{self.endpoint} answered {status}: {detail}", attempts), None

    def _auth_error(self, status: int, detail: str) -> TeacherAuthError:
        env = self.config.api_key_env
        if not self._has_key:
            return TeacherAuthError(
                f"{self.endpoint} wants an API key ({status}: {detail}) and ${env} is not set",
                hint=f"export {env}=<your key>, or set teacher.api_key_env to the variable that holds it",
            )
        return TeacherAuthError(
            f"{self.endpoint} refused the API key in ${env} ({status}: {detail})",
            hint=f"check the key in ${env} and that it may use teacher.model",
        )

    def _server_message(self, status: int, body: Any) -> tuple[str, str]:
        """The server's own words about an error (scrubbed, at most 500 characters) and its error code."""
        message: Any = None
        code: Any = None
        if isinstance(body, dict):
            inner = body.get("error", body)
            message = inner.get("message") if isinstance(inner, dict) else inner
            code = inner.get("code") if isinstance(inner, dict) else None
        elif isinstance(body, str) and body.strip():
            message = body.strip()
        if not message:
            message = f"Error code: {status}" + (f" - {body}" if body else "")
        return self._scrub(str(message))[:500], str(code or "")

    def _scrub(self, text: str) -> str:
        return text.replace(self._scrub_key, "***") if self._scrub_key else text

    # files and batches (datakit/annotate/batch.py) ----------------------------------------------------------
    async def upload_batch_file(self, path: Path) -> str:
        """Upload a batch input JSONL; return its file id."""
        created = await self._files_call(
            lambda: self._sdk().files.create(file=path, purpose="batch"), "upload the batch file"
        )
        return created.id

    async def create_batch(self, input_file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        """Start a batch over an uploaded file."""
        batch = await self._files_call(
            lambda: self._sdk().batches.create(
                input_file_id=input_file_id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata=metadata,
            ),
            "create batch",
        )
        return batch.model_dump(mode="json")

    async def retrieve_batch(self, batch_id: str) -> dict[str, Any]:
        """The batch's current state."""
        batch = await self._files_call(lambda: self._sdk().batches.retrieve(batch_id), f"poll {batch_id}")
        return batch.model_dump(mode="json")

    async def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Ask the server to cancel a batch."""
        batch = await self._files_call(lambda: self._sdk().batches.cancel(batch_id), f"cancel {batch_id}")
        return batch.model_dump(mode="json")

    async def file_content(self, file_id: str) -> bytes:
        """Download a file (batch output or errors)."""
        content = await self._files_call(lambda: self._sdk().files.content(file_id), f"download {file_id}")
        return content.content

    def _sdk(self) -> Any:
        """``AsyncOpenAI`` for files and batches, made on first use (a chat-only run never imports openai)."""
        if self._openai is None:
            import httpx2
            import openai

            cfg = self.config
            timeout = httpx2.Timeout(cfg.request_timeout_s, connect=cfg.connect_timeout_s)
            self._openai = openai.AsyncOpenAI(api_key=self._key, base_url=self.base_url, max_retries=0,
                                              timeout=timeout)  # fmt: skip
        return self._openai

    def _classify_sdk(self, err: Exception, attempts: int) -> tuple[Failure, float | None]:
        """:meth:`_classify` for an ``openai`` exception."""
        import openai

        if isinstance(err, openai.APITimeoutError):
            timeout = Failure("timeout", f"no answer within {self.config.request_timeout_s:g}s", attempts)
            return timeout, self._backoff(attempts - 1)
        if isinstance(err, openai.APIConnectionError):
            unreachable = Failure("unreachable", f"cannot connect to {self.endpoint}", attempts)
            return unreachable, self._backoff(attempts - 1)
        if not isinstance(err, openai.APIStatusError):
            return Failure("http_error", self._scrub(str(err)), attempts), None
        body = err.body if isinstance(err.body, dict) else err.message
        return self._classify(err.status_code, err.response.headers, body, attempts)

    async def _files_call(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """One files/batches call with the same retries; anything that is not retried stops the run."""
        import openai

        for attempt in range(self.config.max_retries + 1):
            try:
                return await call()
            except openai.APIError as err:
                failure, delay = self._classify_sdk(err, attempt + 1)
                if delay is None:
                    raise TeacherError(
                        f"{what} failed: {failure.message}",
                        hint="check that the endpoint offers the Batch API, or use the online transport",
                    ) from err
                if attempt == self.config.max_retries:
                    cls = TeacherUnavailable if failure.code == "unreachable" else TeacherError
                    raise cls(f"{what} failed after {attempt + 1} attempts: {failure.message}") from err
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _error_body(content: bytes) -> Any:
    """An error answer's body: its JSON when it is JSON, else its text."""
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class _SdkTransport:
    """Chat completions through ``AsyncOpenAI`` itself (``teacher.http_client = "openai"``).

    The body is still the one serialised and hashed by datakit, the answer the raw HTTP response; the SDK
    brings its own connection handling (proxies, organisation and project headers) at ~1 ms of event-loop CPU
    per request.
    """

    def __init__(self, sdk: Any) -> None:
        import httpx2
        import openai

        self._sdk = sdk
        self._response = httpx2.Response
        self._errors = openai

    async def post(self, path: str, body: bytes) -> HttpResponse:
        """POST ``body`` (JSON) through the SDK; any HTTP status comes back as an answer."""
        errors = self._errors
        try:
            response = await self._sdk.post(path, content=body, cast_to=self._response)
        except errors.APITimeoutError as err:
            raise RequestTimeout(str(err)) from err
        except errors.APIConnectionError as err:
            raise ConnectError(str(err)) from err
        except errors.APIStatusError as err:
            response = err.response
        return HttpResponse(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                            response.content)

    async def close(self) -> None:
        """The SDK client is closed by its owner."""

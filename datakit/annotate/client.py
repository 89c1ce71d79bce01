"""The only module that knows the endpoint's errors: chat completions, files and batches.

Chat completions go out through :mod:`datakit.annotate.http` (the lean HTTP/1.1 client, or the SDK where a proxy
or URL credentials apply): the body is serialised once by us, so what is hashed is what is sent (unknown
parameters of vLLM or Ollama included), and what is stored is the exact JSON the server sent. Files and batches
go through ``AsyncOpenAI``. Retries, backoff and the shared 429 cooldown live here, so every worker sees one
rate-limit state (``openai``'s own retries are off); each retry is logged with its reason and delay.

What stops the run (raised): a refused key (401/403, or a proxy's 400 saying so: :class:`TeacherAuthError`), a
model the endpoint does not serve (a proxy's 400), an exhausted quota (:class:`TeacherError`), a TLS certificate
that is not trusted (at once), an endpoint that cannot be reached or keeps breaking its answers off after the
retries, or that has no such route or model (404; all :class:`TeacherUnavailable`). What fails one request
(returned as :class:`Failure`): any other 400 (``bad_request``), and 429, 5xx or a timeout still there after
``max_retries`` retries. The API key is never put in a message.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from datakit.annotate.http import (
    BrokenAnswer,
    CertificateError,
    ConnectError,
    Http11Pool,
    RequestTimeout,
    SdkTransport,
    Transport,
    ca_bundle_path,
    needs_sdk,
    sdk_connection_error,
    ssl_context,
)
from datakit.annotate.limits import Limiter, backoff_s
from datakit.config import TeacherConfig
from datakit.errors import TeacherAuthError, TeacherError, TeacherUnavailable

log = logging.getLogger("datakit.annotate")
T = TypeVar("T")
NO_KEY = "no-key"  # sent when the key's variable is unset: local servers (vLLM, Ollama) often need none
OPENAI_BASE_URL = "https://api.openai.com/v1"
_RETRY_STATUS = {408, 409}  # besides 429 and 5xx: request timeout and lock conflicts, worth another try
_BAD_REQUEST_STATUS = {400, 413, 422}
# A 400 that refuses the endpoint as a whole, not one request: LiteLLM's proxy answers so for a key it does not
# know and for a model it does not route ({"error": {"message": "... Invalid model name passed in model=...",
# "type": ..., "code": "400"}}). Every request would get the same answer, so the run stops at the first.
_WRONG_KEY = re.compile(r"auth(?:entication)?[ _]?error|invalid (?:proxy server token|api[ _]key)|incorrect api key|"
                        r"api key not valid|api_key_invalid|token_not_found", re.IGNORECASE)  # fmt: skip
_WRONG_MODEL = re.compile(r"invalid model name|model_not_found|llm provider not provided|"
                          r"\bmodel\b[^.\n]{0,80}\bdoes not exist", re.IGNORECASE)  # fmt: skip


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
    detail: str = ""  # what the transport said, for the message that stops the run


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
    def _chat_transport(self) -> Transport:
        """The lean client where it can serve, else the SDK (a proxy, URL credentials, or asked for)."""
        if self._http is None:
            cfg = self.config
            if cfg.http_client == "openai" or needs_sdk(self.base_url):
                self._http = SdkTransport(self._sdk())
            else:
                self._http = Http11Pool(self.base_url, self._headers, connect_timeout_s=cfg.connect_timeout_s,
                                        timeout_s=cfg.request_timeout_s, ca_bundle=cfg.ca_bundle)  # fmt: skip
        return self._http

    async def chat(self, body: bytes, *, tokens: int) -> Reply | Failure:
        """Send one ``/chat/completions`` body, retrying what is worth retrying."""
        cfg = self.config
        http = self._chat_transport()
        broken = 0
        for attempt in range(1, cfg.max_retries + 2):
            await self.limiter.admit(tokens)
            outcome, delay = await self._attempt(http, body, attempt)
            if isinstance(outcome, Reply):
                usage = outcome.data.get("usage") or {}
                self.limiter.settle(tokens, int(usage.get("total_tokens") or tokens))
                return outcome
            self.limiter.settle(tokens, 0)
            broken += outcome.code == "broken_answer"
            if delay is None or attempt > cfg.max_retries:
                break
            log.info("retry %d of %d in %.1fs: %s", attempt, cfg.max_retries, delay, outcome.message)
            await asyncio.sleep(delay)
        if outcome.code == "unreachable":
            raise TeacherUnavailable(
                f"no answer from {self.endpoint} after {attempt} attempts ({outcome.message})",
                hint="start the server, or fix teacher.base_url",
            )
        if outcome.code == "broken_answer":
            raise TeacherUnavailable(
                f"{self.endpoint} closed the connection in the middle of its answer {broken} times in {attempt} "
                f"attempts (the last time: {outcome.detail})",
                hint="check the server's or proxy's logs (a worker that crashed or ran out of memory, a proxy "
                "timeout or size limit); answers so far are cached",
            )
        return outcome

    async def _attempt(self, http: Transport, body: bytes, attempt: int) -> tuple[Reply | Failure, float | None]:
        """One try: the reply, or the failure and the delay before the next try (``None``: never)."""
        started = time.perf_counter()
        try:
            response = await http.post("/chat/completions", body)
        except (ConnectError, BrokenAnswer, RequestTimeout) as err:
            return self._transport_failure(err, attempt)
        if response.status >= 300:
            return self._classify(response.status, response.headers, _error_body(response.content), attempt)
        raw = response.content.decode("utf-8", errors="replace")
        try:
            data = json.loads(raw)
            data["choices"][0]["message"]  # noqa: B018  (a 200 without a message is a broken answer)
        except (ValueError, KeyError, IndexError, TypeError):
            broken = f"{self.endpoint} sent an answer that is not a chat completion"
            return Failure("server_error", broken, attempt), self._backoff(attempt - 1)
        return Reply(raw, data, int((time.perf_counter() - started) * 1000), attempt), None

    def _transport_failure(self, err: Exception, attempt: int) -> tuple[Failure, float]:
        """The failure for a request that got no answer, and the delay before the next try.

        A certificate that is not trusted stops the run at once: another try meets the same certificate.
        """
        if isinstance(err, CertificateError):
            raise self._certificate_error(str(err)) from None
        delay = self._backoff(attempt - 1)
        if isinstance(err, ConnectError):
            return Failure("unreachable", f"cannot connect to {self.endpoint} ({err})", attempt), delay
        if isinstance(err, BrokenAnswer):
            broke = f"{self.endpoint} closed the connection before its answer was complete ({err})"
            return Failure("broken_answer", broke, attempt, str(err)), delay
        return Failure("timeout", f"no answer within {self.config.request_timeout_s:g}s", attempt), delay

    def _certificate_error(self, detail: str) -> TeacherUnavailable:
        where = f" (the CA bundle in use: {bundle})" if (bundle := ca_bundle_path(self.config.ca_bundle)) else ""
        return TeacherUnavailable(
            f"{self.endpoint} sent a TLS certificate that is not trusted: {detail}{where}",
            hint="for a private CA or a self-signed certificate set teacher.ca_bundle (or SSL_CERT_FILE) to a PEM "
            "file of the CA; for a name mismatch use a base_url with a name the certificate lists",
        )

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
        if status == 400:
            said = f"{detail} {code}"
            if _WRONG_KEY.search(said):
                raise self._auth_error(status, detail)
            if _WRONG_MODEL.search(said):
                raise TeacherError(
                    f"{self.endpoint} does not serve the model {cfg.model!r} ({status}: {detail})",
                    hint="check teacher.model against the endpoint's list (GET …/v1/models); answers so far are "
                    "cached",
                )
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
        """The server's own words about an error (scrubbed, at most 500 characters), its error code and type."""
        message: Any = None
        code: Any = None
        if isinstance(body, dict):
            inner = body.get("error", body)
            message = inner.get("message") if isinstance(inner, dict) else inner
            if isinstance(inner, dict):
                code = " ".join(str(inner[k]) for k in ("code", "type") if inner.get(k) not in (None, "None"))
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
        """``AsyncOpenAI``, made on first use: a run that needs neither it nor a batch never imports openai."""
        if self._openai is None:
            import httpx2
            import openai

            cfg = self.config
            # the same certificates as the lean client; the SDK's own defaults otherwise (proxies from the env)
            verify = ssl_context(cfg.ca_bundle) if self.base_url.startswith("https:") else True
            self._openai = openai.AsyncOpenAI(
                api_key=self._key, base_url=self.base_url, max_retries=0,
                timeout=httpx2.Timeout(cfg.request_timeout_s, connect=cfg.connect_timeout_s),
                http_client=openai.DefaultAsyncHttpxClient(verify=verify),
            )  # fmt: skip
        return self._openai

    def _classify_sdk(self, err: Exception, attempts: int) -> tuple[Failure, float | None]:
        """:meth:`_classify` for an ``openai`` exception."""
        import openai

        if isinstance(err, openai.APITimeoutError):
            return self._transport_failure(RequestTimeout(str(err)), attempts)
        if isinstance(err, openai.APIConnectionError):
            return self._transport_failure(sdk_connection_error(err), attempts)
        if not isinstance(err, openai.APIStatusError):
            return Failure("http_error", self._scrub(str(err)), attempts), None
        body = err.body if isinstance(err.body, dict) else err.message
        return self._classify(err.status_code, err.response.headers, body, attempts)

    async def _files_call(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """One files/batches call with the same retries; anything that is not retried stops the run."""
        import openai

        retries = self.config.max_retries
        for attempt in range(1, retries + 2):
            try:
                return await call()
            except openai.APIError as err:
                failure, delay = self._classify_sdk(err, attempt)
                if delay is None:
                    raise TeacherError(
                        f"{what} failed: {failure.message}",
                        hint="check that the endpoint offers the Batch API, or use the online transport",
                    ) from err
                if attempt > retries:
                    cls = TeacherUnavailable if failure.code in ("unreachable", "broken_answer") else TeacherError
                    raise cls(f"{what} failed after {attempt} attempts: {failure.message}") from err
                log.info("%s: retry %d of %d in %.1fs: %s", what, attempt, retries, delay, failure.message)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _error_body(content: bytes) -> Any:
    """An error answer's body: its JSON when it is JSON, else its text."""
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text

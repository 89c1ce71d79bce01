"""The two ways a chat completion travels: datakit's lean keep-alive HTTP/1.1 client, or the openai SDK.

The online teacher sends thousands of small POSTs at high concurrency, and what it spends per request on the
event loop delays every other answer of the round. ``benchmarks/teacher_transport.py`` (2,000 POSTs,
concurrency 64, a server answering after 0.5 s, 2 cores; the floor is 15.6 s) measured the first pass at 16.4 to
16.6 s and 0.7 s of client CPU through :class:`Http11Pool`, 17.9 to 19.6 s and 5.6 s of CPU through
``AsyncOpenAI`` (:class:`SdkTransport`). So a plain ``http://`` or ``https://`` endpoint reached directly gets the
lean client (content-length, chunked and read-to-close bodies, gzip, TLS); one behind a proxy (``HTTPS_PROXY``
and friends), with credentials in its URL, or ``teacher.http_client = "openai"`` gets the SDK, which knows those.

Both take the same body bytes and the same TLS context (:func:`ssl_context`), and raise only the errors below;
any HTTP status is an answer, for the caller to judge.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from datakit import __version__
from datakit.errors import ConfigError


class ConnectError(Exception):
    """No connection to the endpoint."""


class CertificateError(ConnectError):
    """The endpoint's TLS certificate was not accepted (untrusted, expired, or for another name)."""


class BrokenAnswer(Exception):
    """The connection was made but closed (or garbled) before the whole answer came."""


class RequestTimeout(Exception):
    """No complete answer within the request timeout."""


@dataclass(frozen=True)
class HttpResponse:
    """A complete answer: status, headers (lower-case names) and the decoded body."""

    status: int
    headers: dict[str, str]
    content: bytes


class Transport(Protocol):
    """What :class:`~datakit.annotate.client.TeacherClient` needs: POST a body, get the answer."""

    async def post(self, path: str, body: bytes) -> HttpResponse: ...  # noqa: D102

    async def close(self) -> None: ...  # noqa: D102


def ca_bundle_path(configured: str | None) -> str | None:
    """The CA bundle to trust: ``teacher.ca_bundle``, else ``SSL_CERT_FILE``, else ``REQUESTS_CA_BUNDLE``."""
    return configured or os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE") or None


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The TLS context of both paths: the CAs of ``ca_bundle`` (a PEM file or a folder), else the system's."""
    path = ca_bundle_path(ca_bundle)
    if path is None:
        import httpx2  # httpx's own store (SSL_CERT_DIR included), imported only when TLS is used

        return httpx2.create_ssl_context()
    where = Path(path).expanduser()
    try:
        if where.is_dir():
            return ssl.create_default_context(capath=str(where))
        return ssl.create_default_context(cafile=str(where))
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"cannot read the CA bundle {where} ({err})",
                          hint="teacher.ca_bundle (or SSL_CERT_FILE) must name a PEM file of CA certificates"
                          ) from err  # fmt: skip


def needs_sdk(base_url: str) -> bool:
    """Whether the endpoint needs what only the SDK's httpx knows: a proxy, URL credentials, another scheme."""
    parts = urlsplit(base_url)
    credentials = parts.username is not None or parts.password is not None
    return parts.scheme not in ("http", "https") or credentials or _proxied(parts.scheme, parts.hostname or "")


def _proxied(scheme: str, host: str) -> bool:
    """Whether httpx would reach ``host`` through a proxy (``HTTPS_PROXY``, ``ALL_PROXY``…; ``NO_PROXY``)."""
    if sys.platform not in ("darwin", "win32") and not any(k.lower().endswith("_proxy") for k in os.environ):
        return False  # on Linux the environment is the only source: no need to import urllib.request (7 ms)
    import urllib.request

    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def _verify_message(err: ssl.SSLCertVerificationError) -> str:
    return str(err.verify_message or err.reason or err)


# the lean client --------------------------------------------------------------------------------------------
class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = False  # has answered a request already (a server may have closed it since)

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class Http11Pool:
    """Keep-alive HTTP/1.1 connections to one endpoint; each POST takes an idle one or opens another.

    No limit of its own: the teacher's workers bound how many requests are out at once.
    """

    def __init__(self, base_url: str, headers: dict[str, str], *, connect_timeout_s: float, timeout_s: float,
                 ca_bundle: str | None = None) -> None:  # fmt: skip
        parts = urlsplit(base_url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        self.query = f"?{parts.query}" if parts.query else ""
        default_port = self.port == (443 if self.tls else 80)
        host_header = self.host if default_port else f"{self.host}:{self.port}"
        if ":" in self.host and not default_port:  # an IPv6 literal
            host_header = f"[{self.host}]:{self.port}"
        fixed = {"Host": host_header, "Accept": "application/json", "Accept-Encoding": "gzip",
                 "Content-Type": "application/json", "User-Agent": f"datakit/{__version__}", **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self._idle: list[_Connection] = []
        self._ssl = ssl_context(ca_bundle) if self.tls else None

    async def post(self, path: str, body: bytes) -> HttpResponse:
        """POST ``body`` (JSON) to ``base_url + path``."""
        head = (f"POST {self.prefix}{path}{self.query} HTTP/1.1\r\n{self._head}"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        while True:
            conn = await self._take()
            try:
                response, keep = await asyncio.wait_for(self._exchange(conn, head + body), self.timeout_s)
            except asyncio.TimeoutError:
                conn.close()
                raise RequestTimeout(f"no answer within {self.timeout_s:g}s") from None
            except (OSError, EOFError, asyncio.LimitOverrunError, ValueError) as err:  # IncompleteRead is EOF
                conn.close()
                nothing = isinstance(err, (ConnectionError, EOFError)) and not getattr(err, "partial", b"")
                if conn.used and nothing:
                    continue  # a kept-alive connection the server had closed since: again, on a fresh one
                raise BrokenAnswer(f"{type(err).__name__}: {err}") from err
            if keep:
                conn.used = True
                self._idle.append(conn)
            else:
                conn.close()
            return response

    async def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            self._idle.pop().close()

    async def _take(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            conn.close()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self._ssl,
                                        server_hostname=self.host if self._ssl else None),
                self.connect_timeout_s,
            )  # fmt: skip
        except ssl.SSLCertVerificationError as err:
            raise CertificateError(_verify_message(err)) from err
        except (OSError, asyncio.TimeoutError) as err:
            raise ConnectError(f"cannot connect to {self.host}:{self.port} ({type(err).__name__})") from err
        return _Connection(reader, writer)

    @staticmethod
    async def _exchange(conn: _Connection, request: bytes) -> tuple[HttpResponse, bool]:
        conn.writer.write(request)
        reader = conn.reader
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            version, status_text = head[0].split(" ", 2)[:2]
            status = int(status_text)
            headers: dict[str, str] = {}
            for line in head[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            if not 100 <= status < 200:  # skip interim answers (100 Continue)
                break
        connection = headers.get("connection", "").lower()
        keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        if "chunked" in headers.get("transfer-encoding", "").lower():
            content = await _read_chunked(reader)
        elif "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        elif status in (204, 304):
            content = b""
        else:  # the body runs to the end of the connection
            content, keep = await reader.read(), False
        encoding = headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            content = _decompress(content, encoding)
        return HttpResponse(status, headers, content), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, up to the empty line
                pass
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])


def _decompress(content: bytes, encoding: str) -> bytes:
    if encoding != "deflate":
        return zlib.decompress(content, 16 + zlib.MAX_WBITS)
    try:
        return zlib.decompress(content)
    except zlib.error:  # "deflate" sent raw, without the zlib header (some servers do)
        return zlib.decompress(content, -zlib.MAX_WBITS)


# the SDK ----------------------------------------------------------------------------------------------------
class SdkTransport:
    """Chat completions through ``AsyncOpenAI.post``: the body is still datakit's, the answer the raw response.

    The SDK brings its own connection handling (proxies, URL credentials, organisation and project headers).
    ``openai`` and ``httpx2`` are imported here, when the first request needs them: a run answered from the
    cache never pays their 0.45 s of import.
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
            raise sdk_connection_error(err) from err
        except errors.APIStatusError as err:
            response = err.response
        return HttpResponse(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                            response.content)  # fmt: skip

    async def close(self) -> None:
        """The SDK client is closed by its owner."""


def sdk_connection_error(err: BaseException) -> Exception:
    """What an SDK connection error was: a refused certificate, no connection, or a broken answer."""
    import httpx2

    chain = []
    cause: BaseException | None = err
    while cause is not None and len(chain) < 16:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return CertificateError(_verify_message(cause))
    for cause in chain:
        if isinstance(cause, (httpx2.ConnectError, httpx2.ConnectTimeout)):
            return ConnectError(f"{type(cause).__name__}: {cause}")
    inner = err.__cause__ or err
    return BrokenAnswer(f"{type(inner).__name__}: {inner}")

"""The HTTP under the teacher's chat completions: a lean keep-alive HTTP/1.1 client, or httpx where needed.

The online teacher sends thousands of small POSTs at high concurrency, and what it spends per request on the
event loop delays every other answer of the round. Measured on 2 cores (2,000 POSTs, concurrency 64, a server
answering after 0.5 s; the floor is 32 rounds, 16.0 s): ``AsyncOpenAI.post`` 16.9 s wall and 2.6 s CPU, httpx
alone 16.4 s and 1.5 s CPU, plain asyncio streams 16.1 s and 0.07 s CPU. Importing ``openai`` costs another
0.45 s before the first request can leave. So a plain ``http://`` or ``https://`` endpoint reached directly
gets :class:`Http11Pool` (content-length, chunked and read-to-close bodies, gzip, TLS with httpx's certificate
store); an endpoint behind a proxy (``HTTPS_PROXY`` and friends) or with credentials in its URL gets httpx,
which knows those.

Both raise only :class:`ConnectError` (no connection, or it broke before the whole answer came) and
:class:`RequestTimeout`; any HTTP status is an answer, for the caller to judge.
"""

from __future__ import annotations

import asyncio
import os
import sys
import zlib
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from datakit import __version__


class ConnectError(Exception):
    """No connection to the endpoint, or the connection broke before the answer was complete."""


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


def transport_for(base_url: str, headers: dict[str, str], *, connect_timeout_s: float, timeout_s: float,
                  max_connections: int) -> Transport:
    """The lean client for a directly reachable endpoint, httpx for one behind a proxy or with credentials."""
    parts = urlsplit(base_url)
    proxied = _proxied(parts.scheme, parts.hostname or "")
    credentials = parts.username is not None or parts.password is not None
    if parts.scheme in ("http", "https") and not proxied and not credentials:
        return Http11Pool(base_url, headers, connect_timeout_s=connect_timeout_s, timeout_s=timeout_s)
    return HttpxTransport(base_url, headers, connect_timeout_s=connect_timeout_s, timeout_s=timeout_s,
                          max_connections=max_connections)


def _proxied(scheme: str, host: str) -> bool:
    """Whether httpx would reach ``host`` through a proxy (``HTTPS_PROXY``, ``ALL_PROXY``…; ``NO_PROXY``)."""
    if sys.platform not in ("darwin", "win32") and not any(k.lower().endswith("_proxy") for k in os.environ):
        return False  # on Linux the environment is the only source: no need to import urllib.request (7 ms)
    import urllib.request

    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


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

    def __init__(self, base_url: str, headers: dict[str, str], *, connect_timeout_s: float,
                 timeout_s: float) -> None:
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
        self._ssl: Any = None

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
                broke = f"connection to {self.host}:{self.port} broke ({type(err).__name__})"
                raise ConnectError(broke) from err
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
        ssl = self._ssl_context() if self.tls else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=ssl,
                                        server_hostname=self.host if ssl else None),
                self.connect_timeout_s,
            )
        except (OSError, asyncio.TimeoutError) as err:
            raise ConnectError(f"cannot connect to {self.host}:{self.port} ({type(err).__name__})") from err
        return _Connection(reader, writer)

    def _ssl_context(self) -> Any:
        if self._ssl is None:
            import httpx2  # the same certificate store (and SSL_CERT_FILE / SSL_CERT_DIR) as httpx

            self._ssl = httpx2.create_ssl_context()
        return self._ssl

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


# httpx, for proxies and URL credentials --------------------------------------------------------------------
class HttpxTransport:
    """The same interface over ``httpx`` (environment proxies honoured, as the openai client does)."""

    def __init__(self, base_url: str, headers: dict[str, str], *, connect_timeout_s: float, timeout_s: float,
                 max_connections: int) -> None:
        import httpx2

        self._httpx = httpx2
        self.base_url = base_url.rstrip("/")
        self._client = httpx2.AsyncClient(
            headers={"Accept": "application/json", "Content-Type": "application/json",
                     "User-Agent": f"datakit/{__version__}", **headers},
            timeout=httpx2.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def post(self, path: str, body: bytes) -> HttpResponse:
        """POST ``body`` (JSON) to ``base_url + path``."""
        try:
            response = await self._client.post(self.base_url + path, content=body)
        except self._httpx.TimeoutException as err:
            raise RequestTimeout(str(err) or "no answer in time") from err
        except self._httpx.TransportError as err:
            raise ConnectError(f"{type(err).__name__}: {err}") from err
        return HttpResponse(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                            response.content)

    async def close(self) -> None:
        """Close the connections."""
        await self._client.aclose()

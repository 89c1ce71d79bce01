"""The lean HTTP/1.1 client under the teacher's chat completions, against a raw asyncio server."""

from __future__ import annotations

import asyncio
import gzip
import os

import pytest

from datakit.annotate.http import ConnectError, Http11Pool, RequestTimeout, needs_sdk


def _serve(answers):
    """Run ``test(port, seen)`` against a server that sends ``answers`` (raw bytes, or callables) in turn."""

    async def main(test):
        seen: list[bytes] = []
        queue = list(answers)

        async def handle(reader, writer):
            try:
                while queue:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:"))
                    seen.append(head + await reader.readexactly(length))
                    answer = queue.pop(0)
                    if answer == "hang":
                        await asyncio.sleep(5)
                    elif answer == "close":
                        break
                    else:
                        writer.write(answer)
                        await writer.drain()
                        framed = b"Content-Length" in answer or b"chunked" in answer
                        if b"Connection: close" in answer or not framed:
                            break
            except asyncio.IncompleteReadError:
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await test(port, seen)

    return main


def _pool(port, timeout_s=5.0):
    return Http11Pool(f"http://127.0.0.1:{port}/v1", {"Authorization": "Bearer k"}, connect_timeout_s=2,
                      timeout_s=timeout_s)


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def test_keep_alive_reuses_one_connection_and_sends_the_headers():
    async def test(port, seen):
        pool = _pool(port)
        first = await pool.post("/chat/completions", b'{"a":1}')
        second = await pool.post("/chat/completions", b'{"a":2}')
        await pool.close()
        return first, second

    first, second = asyncio.run(_serve([OK, OK])(lambda port, seen: _check_headers(port, seen, test)))
    assert first.status == 200 and first.content == b"{}" and second.content == b"{}"


async def _check_headers(port, seen, test):
    out = await test(port, seen)
    head = seen[0].split(b"\r\n\r\n")[0].decode()
    assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}" in head and "Authorization: Bearer k" in head
    assert seen[0].endswith(b'{"a":1}') and seen[1].endswith(b'{"a":2}')
    return out


def test_chunked_gzip_and_read_to_close_bodies():
    payload = gzip.compress(b'{"x": "y"}')
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
               + f"{len(payload[:5]):x}\r\n".encode() + payload[:5] + b"\r\n"
               + f"{len(payload[5:]):x};ext=1\r\n".encode() + payload[5:] + b"\r\n0\r\nX-Trailer: 1\r\n\r\n")
    to_close = b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 2\r\n\r\nbusy"

    async def test(port, seen):
        pool = _pool(port)
        a = await pool.post("/chat/completions", b"{}")
        b = await pool.post("/chat/completions", b"{}")
        await pool.close()
        return a, b

    a, b = asyncio.run(_serve([chunked, to_close])(test))
    assert a.status == 200 and a.content == b'{"x": "y"}'
    assert b.status == 503 and b.headers["retry-after"] == "2" and b.content == b"busy"


def test_a_kept_alive_connection_closed_by_the_server_is_retried_once_on_a_fresh_one():
    async def test(port, seen):
        pool = _pool(port)
        await pool.post("/chat/completions", b"{}")
        # the server drops the kept-alive connection without answering: the request goes again, on a new one
        again = await pool.post("/chat/completions", b"{}")
        await pool.close()
        return again, len(seen)

    again, n = asyncio.run(_serve([OK, "close", OK])(test))
    assert again.status == 200 and n == 3


def test_timeout_and_unreachable():
    async def test(port, seen):
        pool = _pool(port, timeout_s=0.2)
        with pytest.raises(RequestTimeout):
            await pool.post("/chat/completions", b"{}")
        await pool.close()

    asyncio.run(_serve(["hang"])(test))

    async def nowhere():
        with pytest.raises(ConnectError):
            await _pool(9).post("/chat/completions", b"{}")

    asyncio.run(nowhere())


def test_a_proxy_or_credentials_in_the_url_go_through_the_sdk(monkeypatch):
    for name in [k for k in os.environ if k.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    assert not needs_sdk("http://127.0.0.1:8000/v1")
    assert needs_sdk("http://u:p@example.org/v1")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert not needs_sdk("https://api.example.org/v1")  # no proxy for https
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert needs_sdk("https://api.example.org/v1")
    assert not needs_sdk("https://internal.example/v1")  # NO_PROXY

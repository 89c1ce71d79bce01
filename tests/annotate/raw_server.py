"""A raw HTTP/1.1 server on 127.0.0.1 that can speak TLS and break answers off: what FakeOpenAI cannot do.

    with RawServer(["drop", "ok"], tls=(cert, key)) as server:
        ... TeacherConfig(base_url=server.base_url) ...

Each chat request gets the next scripted answer ("ok" when the script is used up): ``"ok"`` a complete chat
completion of ``{"answer": "ok"}``, ``"drop"`` the head and half the body of one, then the connection closed.
"""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import subprocess
import threading
from pathlib import Path

_COMPLETION = json.dumps({
    "id": "chatcmpl-raw", "object": "chat.completion", "created": 0, "model": "teacher-m-2025-01-01",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": json.dumps({"answer": "ok"})}}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
}).encode()  # fmt: skip
_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
         + str(len(_COMPLETION)).encode() + b"\r\n\r\n")  # fmt: skip


class RawServer:
    """Scripted answers; ``handshakes`` counts TLS handshakes tried, ``requests`` the requests read."""

    def __init__(self, script: list[str] | None = None, *, tls: tuple[Path, Path] | None = None) -> None:
        self.script = list(script or [])
        self.requests = 0
        self.handshakes = 0
        self._lock = threading.Lock()
        self._ssl = None
        if tls is not None:
            self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl.load_cert_chain(str(tls[0]), str(tls[1]))
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)  # fmt: skip

    @property
    def base_url(self) -> str:
        """What to give the client as ``base_url``."""
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, sock: socket.socket) -> None:
        if self._ssl is not None:
            with self._lock:
                self.handshakes += 1
            try:
                sock = self._ssl.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):  # the client refused the certificate
                return
        stream = sock.makefile("rb")
        try:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = stream.readline()
                    if not line:
                        return
                    head += line
                length = next((int(h.split(b":", 1)[1]) for h in head.split(b"\r\n")
                               if h.lower().startswith(b"content-length:")), 0)  # fmt: skip
                stream.read(length)
                with self._lock:
                    self.requests += 1
                    answer = self.script.pop(0) if self.script else "ok"
                if answer == "drop":
                    sock.sendall(_HEAD + _COMPLETION[: len(_COMPLETION) // 2])
                    return
                sock.sendall(_HEAD + _COMPLETION)
        except OSError:
            return
        finally:
            stream.close()
            sock.close()


def make_certificate(folder: Path, name: str, *, san: str) -> tuple[Path, Path]:
    """A self-signed certificate (it is its own CA) for ``san`` (``IP:127.0.0.1``, ``DNS:…``), and its key."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName={san}", "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key

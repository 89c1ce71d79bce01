"""How close the teacher transport comes to a slow endpoint's ideal throughput, and what a cached pass costs.

    python benchmarks/teacher_transport.py [--requests 2000] [--concurrency 64] [--latency 0.5] [--profile]
                                           [--http-client datakit|openai]

A minimal asyncio OpenAI-compatible server runs in its own process (so it does not share the client's GIL) and
answers every ``/v1/chat/completions`` after ``--latency`` seconds. The requests go through ``run_requests``
twice: first all sent (ideal wall time = requests × latency / concurrency), then all cached from freshly built
requests (the server must receive nothing; the time includes hashing every request for its key). Each request
carries a small PNG as a data URL (~2 KB), so keys hash an image as they do for real; a full-size image adds
about 1 ms per 300 KB to that hashing (base64 decoding and blake2b). ``--http-client openai`` sends through the
openai SDK instead of datakit's lean HTTP/1.1 client: the figure that decides whether the lean client stays.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

_MESSAGE = {"role": "assistant", "content": json.dumps({"answer": "no acute cardiopulmonary process"})}
_COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench-model-2025",
    "choices": [{"index": 0, "finish_reason": "stop", "message": _MESSAGE}],
    "usage": {"prompt_tokens": 900, "completion_tokens": 12, "total_tokens": 912},
}).encode()  # fmt: skip


# server -----------------------------------------------------------------------------------------------------
async def _serve(latency: float, completions: dict[bytes, bytes] | None = None) -> None:
    """Answer after ``latency``; ``completions`` maps a marker found in the request body to the answer
    (the first marker that matches wins; b"" matches everything)."""
    completions = completions or {b"": _COMPLETION}
    count = 0
    first = last = None  # wall-clock times of the first request received and the last answer sent

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count, first, last
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    if line[:15].lower() == "content-length:":
                        length = int(line[15:])
                request = await reader.readexactly(length) if length else b""
                if path.endswith("/chat/completions"):
                    count += 1
                    first = first or time.time()
                    await asyncio.sleep(latency)
                    body = next(c for marker, c in completions.items() if marker in request)
                    last = time.time()
                else:  # GET /stats
                    body = json.dumps({"chat_requests": count, "first": first, "last": last}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def _stats(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        return json.loads(response.read())["chat_requests"]


# client -----------------------------------------------------------------------------------------------------
def _requests(n: int) -> list:
    from datakit.annotate.request import TeacherRequest, response_format_for

    schema = {"title": "answer", "type": "object", "properties": {"answer": {"type": "string"}},
              "required": ["answer"], "additionalProperties": False}  # fmt: skip
    fmt = response_format_for(schema)
    out = []
    for i in range(n):
        image = base64.b64encode(b"\x89PNG\r\n\x1a\n" + i.to_bytes(4, "big") * 512).decode()  # ~2 KB
        system = "You are a radiologist. Perceive, reason, reflect, then report. " * 8
        user = [
            {"type": "text", "text": f"Study {i}: describe the image."},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
        ]
        body = {
            "model": "bench-model",
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0.2,
            "max_tokens": 2048,
            "response_format": fmt,
        }  # fmt: skip
        out.append(TeacherRequest(f"s{i}", body, "annotate/user.j2", "b2:bench", "answer"))
    return out


def _parse(text: str) -> dict:
    data = json.loads(text)
    if "answer" not in data:
        raise ValueError("no answer")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--http-client", choices=("datakit", "openai"), default="datakit",
                        help="teacher.http_client: the lean HTTP/1.1 client or the openai SDK")
    parser.add_argument("--progress", action="store_true", help="draw the progress bar (to stderr)")
    parser.add_argument("--profile", action="store_true", help="profile the first pass (client side)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--content-file", type=Path, help=argparse.SUPPRESS)  # serve: the assistant's content
    args = parser.parse_args()
    if args.serve:
        completions = None
        if args.content_file:  # {"marker": "assistant content", ...}
            completions = {}
            for marker, content in json.loads(args.content_file.read_text()).items():
                message = {"role": "assistant", "content": content}
                completions[marker.encode()] = json.dumps({**json.loads(_COMPLETION), "choices": [
                    {"index": 0, "finish_reason": "stop", "message": message}]}).encode()
        asyncio.run(_serve(args.latency, completions))
        return

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from datakit.annotate.cache import Cache
    from datakit.annotate.engine import run_requests
    from datakit.config import TeacherConfig

    server = subprocess.Popen([sys.executable, __file__, "--serve", "--latency", str(args.latency)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        port = int(server.stdout.readline())
        config = TeacherConfig(kind="llm", base_url=f"http://127.0.0.1:{port}/v1", model="bench-model",
                               max_concurrency=args.concurrency, request_timeout_s=60,
                               http_client=args.http_client)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            built = time.perf_counter()
            requests = _requests(args.requests)
            build_s = time.perf_counter() - built
            rows = []
            with Cache(Path(tmp) / "cache.sqlite") as cache:
                for label in ("first (all sent)", "second (all cached)"):
                    if rows:  # as a new `datakit annotate` would: fresh requests, keys not yet computed
                        requests = _requests(args.requests)
                    before = _stats(port)
                    profiler = cProfile.Profile() if args.profile and not rows else None
                    cpu, wall = time.process_time(), time.perf_counter()
                    if profiler:
                        profiler.enable()
                    results = run_requests(
                        requests, cache=cache, config=config, parse=_parse, progress=args.progress
                    )
                    if profiler:
                        profiler.disable()
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    sent = _stats(port) - before
                    ok = sum(r.ok for r in results)
                    rows.append((label, len(requests), sent, ok, wall, cpu))
                    if profiler:
                        out = io.StringIO()
                        order = os.environ.get("BENCH_SORT", "cumulative")  # or tottime
                        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(25)
                        print(out.getvalue(), file=sys.stderr)
            db_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
    finally:
        server.terminate()
        server.wait(timeout=10)

    ideal = args.requests * args.latency / args.concurrency
    print(f"\nteacher transport: {args.requests} requests, concurrency {args.concurrency}, "
          f"server latency {args.latency}s, {os.cpu_count()} CPUs, http_client={args.http_client}")  # fmt: skip
    print(f"{'pass':<22}{'requests':>9}{'sent':>7}{'ok':>7}{'wall s':>9}{'client CPU s':>14}{'of ideal':>10}")
    for label, n, sent, ok, wall, cpu in rows:
        share = f"{ideal / wall:.1%}" if sent else "-"
        print(f"{label:<22}{n:>9}{sent:>7}{ok:>7}{wall:>9.2f}{cpu:>14.2f}{share:>10}")
    print(f"ideal first pass {ideal:.2f}s (target ≤ {ideal / 0.9:.1f}s); "
          f"building the requests took {build_s:.2f}s; cache {db_mb:.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()

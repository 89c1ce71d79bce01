"""Shared pieces of the teacher-transport tests, and the entry point of the subprocesses they kill.

python -m tests.annotate.transport_helpers online|batch RUN_DIR BASE_URL N [CONCURRENCY]
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

from datakit.annotate.request import TeacherRequest, response_format_for
from datakit.config import TeacherConfig

SCHEMA = {
    "title": "answer.v1",
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
IMAGE = b"\x89PNG\r\n\x1a\n fake image bytes"


def image_url(i: int) -> str:
    return "data:image/png;base64," + base64.b64encode(IMAGE + str(i).encode()).decode()


def make_requests(n: int, *, model: str = "teacher-m", temperature: float = 0.0, max_tokens: int = 200,
                  start: int = 0) -> list[TeacherRequest]:  # fmt: skip
    out = []
    for i in range(start, start + n):
        body: dict[str, Any] = {
            "model": model,
            "messages": [
                {"role": "system", "content": "You describe chest X-rays. Answer in JSON."},
                {"role": "user", "content": [
                    {"type": "text", "text": f"study {i}"},
                    {"type": "image_url", "image_url": {"url": image_url(i), "detail": "high"}},
                ]},
            ],
            "temperature": temperature,
            "max_tokens": max_tokens,
            "response_format": response_format_for(SCHEMA),
        }  # fmt: skip
        out.append(TeacherRequest(f"s{i}", body, "annotate/user.j2", "b2:tpl", "answer.v1"))
    return out


def parse_answer(text: str) -> dict[str, Any]:
    data = json.loads(text)  # json.JSONDecodeError is a ValueError
    if not isinstance(data, dict) or not isinstance(data.get("answer"), str):
        raise ValueError("the object must have a string field 'answer'")
    return data


# what every test config starts from; tests/annotate/test_client_sdk.py switches http_client to "openai"
DEFAULTS: dict[str, Any] = {
    "kind": "llm", "model": "teacher-m", "max_concurrency": 4,
    "backoff_initial_s": 0.02, "backoff_max_s": 0.2, "request_timeout_s": 5.0, "connect_timeout_s": 1.0,
    "batch_poll_s": 0.05, "batch_poll_max_s": 0.1, "http_client": "datakit",
}  # fmt: skip


def config_for(base_url: str, **over: Any) -> TeacherConfig:
    settings: dict[str, Any] = {**DEFAULTS, "base_url": base_url}
    settings.update(over)
    return TeacherConfig(**settings)


def main(argv: list[str]) -> None:
    from datakit.annotate.cache import Cache
    from datakit.annotate.engine import run_requests
    from datakit.rundir import RunDir

    transport, run_dir, base_url, n = argv[0], Path(argv[1]), argv[2], int(argv[3])
    concurrency = int(argv[4]) if len(argv) > 4 else 4
    run = RunDir.create(run_dir)
    config = config_for(base_url, max_concurrency=concurrency)
    with Cache(run.cache_path) as cache:
        results = run_requests(
            make_requests(n),
            cache=cache,
            config=config,
            parse=parse_answer,
            transport=transport,
            run=run,
            progress=False,
        )  # type: ignore[arg-type]
    print(json.dumps({"ok": sum(r.ok for r in results)}))


if __name__ == "__main__":
    main(sys.argv[1:])

"""cache.sqlite: schema and migrations, answers vs failures, keys of requests with images."""

from __future__ import annotations

import base64
import sqlite3
import threading

import pytest

from datakit.annotate.cache import COLUMNS, Cache, answer_row, failure_row
from datakit.annotate.migrations import MIGRATIONS, apply_migrations
from datakit.annotate.request import TeacherRequest, image_digest_url, response_format_for
from datakit.errors import ConfigError
from datakit.hashing import canonical_json, content_hash, file_digest
from tests.annotate.transport_helpers import IMAGE, make_requests

EXPECTED_COLUMNS = [
    "key", "study_id", "teacher", "model", "resolved_model", "template_id", "template_sha", "schema_id",
    "options_json", "request_json", "response_json", "text", "finish_reason", "input_tokens", "output_tokens",
    "cost_usd", "duration_ms", "datetime_utc", "attempt", "error", "datakit_version",
]  # fmt: skip


def _completion(content: str = '{"answer": "ok"}', finish: str = "stop") -> dict:
    return {
        "model": "teacher-m-2025",
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def _answer(request: TeacherRequest, content: str = '{"answer": "ok"}') -> dict:
    data = _completion(content)
    return answer_row(request, data, canonical_json(data), teacher="http://x/v1", prices={})


def test_fresh_cache_has_exactly_the_expected_columns(tmp_path):
    with Cache(tmp_path / "cache.sqlite") as cache:
        assert cache.columns() == EXPECTED_COLUMNS
        assert list(COLUMNS) == EXPECTED_COLUMNS
    conn = sqlite3.connect(tmp_path / "cache.sqlite")
    names = [r[0] for r in conn.execute("select name from _migrations order by rowid")]
    assert names == [fn.__name__ for fn in MIGRATIONS] == ["m001_calls", "m002_calls_study_index"]
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_an_older_cache_migrates_without_losing_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert apply_migrations(conn, upto=1) == ["m001_calls"]
    conn.execute("insert into calls (key, study_id, response_json, text) values ('b2:1', 's1', '{}', 'hi')")
    conn.close()
    with Cache(path) as cache:  # applies the rest
        assert cache.columns() == EXPECTED_COLUMNS
        assert cache.get("b2:1").text == "hi"
        assert cache.count() == 1
    conn = sqlite3.connect(path)
    indexes = {r[0] for r in conn.execute("select name from sqlite_master where type='index'")}
    assert "calls_study_id" in indexes
    # opening again applies nothing twice
    assert apply_migrations(sqlite3.connect(path, isolation_level=None)) == []


def test_answers_failures_and_lookups(tmp_path):
    requests = make_requests(3)
    with Cache(tmp_path / "c.sqlite") as cache:
        cache.put(_answer(requests[0]))
        cache.put_failure(failure_row(requests[1], teacher="t", error="answered 400"))
        assert cache.get(requests[0].key).text == '{"answer": "ok"}'
        assert cache.get(requests[1].key) is None  # a failed call is not an answer
        assert cache.row(requests[1].key)["error"] == "answered 400"
        # a failure never overwrites an answer; an answer replaces a failure
        cache.put_failure(failure_row(requests[0], teacher="t", error="late timeout"))
        assert cache.get(requests[0].key) is not None and cache.row(requests[0].key)["error"] is None
        cache.put(_answer(requests[1]))
        assert cache.get(requests[1].key) is not None
        found = cache.get_many([r.key for r in requests] * 2)
        assert set(found) == {requests[0].key, requests[1].key}
        row = cache.row(requests[0].key)
        assert (row["input_tokens"], row["output_tokens"]) == (100, 20)
        assert row["resolved_model"] == "teacher-m-2025"
        assert row["template_id"] == "annotate/user.j2" and row["schema_id"] == "answer.v1"
        assert "base64" not in row["request_json"] and "digest=b2:" in row["request_json"]
        assert [r["study_id"] for r in cache.rows(study_id="s0")] == ["s0"]


def test_get_many_beyond_one_query_and_concurrent_writers(tmp_path):
    requests = make_requests(1200)
    with Cache(tmp_path / "c.sqlite") as cache:
        rows = [_answer(r) for r in requests]

        def write(part):
            for row in part:
                cache.put(row)

        threads = [threading.Thread(target=write, args=(rows[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert cache.count() == 1200
        assert len(cache.get_many(r.key for r in requests)) == 1200


def test_a_second_connection_sees_each_commit_at_once(tmp_path):
    request = make_requests(1)[0]
    with Cache(tmp_path / "c.sqlite") as writer, Cache(tmp_path / "c.sqlite") as reader:
        writer.put(_answer(request))
        assert reader.get(request.key) is not None


def test_key_hashes_the_body_with_image_digests(tmp_path):
    request = make_requests(1)[0]
    image_file = tmp_path / "img.png"
    image_file.write_bytes(IMAGE + b"0")
    assert f"digest={file_digest(image_file)}" in request.request_json
    assert request.n_images == 1
    assert request.key == content_hash(request.request_json)
    # key order does not matter, content does
    shuffled = TeacherRequest("s0", dict(reversed(list(request.body.items()))), "t", "x", "y")
    assert shuffled.key == request.key
    assert make_requests(1, temperature=0.5)[0].key != request.key
    assert make_requests(1, start=1)[0].key != request.key
    assert "base64" not in repr(request)


def test_image_digest_url_keeps_the_media_type():
    url = "data:image/jpeg;base64," + base64.b64encode(b"abc").decode()
    new, replaced = image_digest_url(url)
    assert replaced and new == f"data:image/jpeg;digest={content_hash(b'abc')}"
    assert image_digest_url("https://example.org/a.png") == ("https://example.org/a.png", False)


def test_response_format_for():
    schema = {"$id": "https://datakit/schemas/trace.v1.json", "type": "object"}
    fmt = response_format_for(schema)
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"] == {"name": "trace_v1", "schema": schema, "strict": True}
    assert response_format_for(schema, "json_object") == {"type": "json_object"}
    with pytest.raises(ValueError):
        response_format_for(schema, "xml")  # type: ignore[arg-type]


def test_cache_path_from_config_or_run(tmp_path):
    from datakit.rundir import RunDir

    run = RunDir.create(tmp_path / "run")
    with Cache.for_run(run) as cache:
        assert cache.path == run.cache_path
    with Cache.for_run(run, tmp_path / "shared.sqlite") as cache:
        assert cache.path == tmp_path / "shared.sqlite"
    with pytest.raises(ConfigError):
        Cache.for_run(None)

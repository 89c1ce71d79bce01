"""The online teacher transport against a real HTTP server on 127.0.0.1 (tests/fakes/openai_server.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datakit.annotate.cache import Cache
from datakit.annotate.dryrun import estimate
from datakit.annotate.engine import run_requests
from datakit.config import PriceConfig
from datakit.errors import TeacherAuthError, TeacherUnavailable
from tests.annotate.transport_helpers import config_for, make_requests, parse_answer
from tests.fakes.openai_server import FakeOpenAI, Reply

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-test-DO-NOT-LEAK-1234567890"
HELPER = "tests.annotate.transport_helpers"


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def cache(tmp_path):
    with Cache(tmp_path / "cache.sqlite") as c:
        yield c


def _run(requests, cache, config, parse=parse_answer):
    return run_requests(requests, cache=cache, config=config, parse=parse, progress=False)


def test_success_sends_exactly_the_body(server, cache, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    requests = make_requests(3)
    results = _run(requests, cache, config_for(server.base_url))
    assert [r.ok for r in results] == [True] * 3
    assert [r.study_id for r in results] == ["s0", "s1", "s2"]
    sent = sorted(server.chat_requests(), key=lambda r: r.body["messages"][1]["content"][0]["text"])
    assert [s.body for s in sent] == [r.body for r in requests]  # images as data URLs, every parameter
    assert all(s.headers["authorization"] == f"Bearer {SECRET}" for s in sent)
    first = results[0]
    assert first.parsed == {"answer": "ok"} and first.finish_reason == "stop" and first.error_code is None
    assert first.cached is False and first.attempts == 1 and first.keys == [requests[0].key]
    assert first.usage["input_tokens"] > 0 and first.usage["output_tokens"] > 0
    row = cache.row(requests[0].key)
    assert json.loads(row["response_json"])["model"] == "teacher-m-2025-01-01" == row["resolved_model"]
    assert SECRET not in (Path(cache.path).read_bytes() + Path(str(cache.path) + "-wal").read_bytes()).decode(
        "latin-1"
    )


def test_second_run_sends_no_request_and_never_imports_openai(server, tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", HELPER, "online", str(run_dir), server.base_url, "5"]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=60)
    assert len(server.chat_requests()) == 5
    probe = (
        "import sys, runpy; sys.argv = ['x'] + sys.argv[1:];"
        "runpy.run_module('tests.annotate.transport_helpers', run_name='__main__');"
        "assert 'openai' not in sys.modules, 'openai was imported'; assert 'httpx2' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd[3:]], cwd=REPO, check=True, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert json.loads(out.stdout)["ok"] == 5
    assert len(server.log) == 5  # nothing at all reached the server the second time, not even a probe


def test_cached_results_match_and_say_cached(server, cache):
    requests = make_requests(4)
    first = _run(requests, cache, config_for(server.base_url))
    second = _run(requests, cache, config_for(server.base_url))
    assert len(server.chat_requests()) == 4
    assert [r.parsed for r in second] == [r.parsed for r in first]
    assert all(r.cached and r.attempts == 0 for r in second)
    assert [r.usage for r in second] == [r.usage for r in first]


def test_429_retry_after_is_honoured_by_every_worker(server, cache):
    server.handler = lambda body, i: Reply(delay_s=0.1)
    server.script(Reply(status=429, headers={"retry-after": "0.5"}))
    results = _run(make_requests(6), cache, config_for(server.base_url, max_concurrency=2))
    assert all(r.ok for r in results)
    log = server.chat_requests()
    refused = next(r for r in log if r.status == 429)
    # the other worker's answer came 0.1 s later; without a shared cooldown it would have sent its next then
    during = [r for r in log if refused.t_answered + 0.05 < r.t_received < refused.t_answered + 0.48]
    assert during == []
    retried = [r for r in results if r.attempts == 2]
    assert len(retried) == 1 and len(log) == 7


def test_429_retry_after_ms(server, cache):
    server.script(Reply(status=429, headers={"retry-after-ms": "150"}))
    started = time.monotonic()
    (result,) = _run(make_requests(1), cache, config_for(server.base_url))
    assert result.ok and result.attempts == 2
    assert time.monotonic() - started >= 0.14


def test_500_then_success(server, cache):
    server.script(Reply(status=500), Reply(status=503))
    (result,) = _run(make_requests(1), cache, config_for(server.base_url))
    assert result.ok and result.attempts == 3 and not result.cached


def test_server_errors_beyond_max_retries_fail_that_request_only(server, cache):
    server.script(*[Reply(status=502)] * 3)
    results = _run(make_requests(2), cache, config_for(server.base_url, max_retries=2, max_concurrency=1))
    assert [r.error_code for r in results] == ["server_error", None]
    assert "502" in results[0].error
    assert cache.get(results[0].key) is None  # a failed call is not a cache hit: the next run asks again
    again = _run(make_requests(2), cache, config_for(server.base_url))
    assert [r.ok for r in again] == [True, True] and len(server.chat_requests()) == 5


def test_hung_request_times_out_and_is_retried(server, cache):
    server.script(Reply(delay_s=3.0))
    started = time.monotonic()
    (result,) = _run(make_requests(1), cache, config_for(server.base_url, request_timeout_s=0.3))
    assert result.ok and result.attempts == 2
    assert time.monotonic() - started < 2.0


def test_timeouts_beyond_max_retries(server, cache):
    server.script(*[Reply(delay_s=3.0)] * 2)
    config = config_for(server.base_url, request_timeout_s=0.2, max_retries=1)
    (result,) = _run(make_requests(1), cache, config)
    assert not result.ok and result.error_code == "timeout"


def test_non_json_is_reasked_with_the_error(server, cache):
    chatty = "Sure! Here is the report: normal chest."
    server.script(Reply(content=chatty), Reply(content='{"answer": "fixed"}'))
    requests = make_requests(1)
    (result,) = _run(requests, cache, config_for(server.base_url))
    assert result.ok and result.parsed == {"answer": "fixed"} and result.attempts == 2
    assert len(result.keys) == 2 and result.keys[0] == requests[0].key
    reask = server.chat_requests()[1].body
    original = requests[0].body["messages"]
    assert reask["messages"][: len(original)] == original
    assert reask["messages"][-2] == {"role": "assistant", "content": chatty}
    assert reask["messages"][-1]["role"] == "user" and "Expecting value" in reask["messages"][-1]["content"]
    assert {k: v for k, v in reask.items() if k != "messages"} == {
        k: v for k, v in requests[0].body.items() if k != "messages"
    }
    # both raw replies are cached; a re-run asks nothing
    assert _run(requests, cache, config_for(server.base_url))[0].parsed == {"answer": "fixed"}
    assert len(server.chat_requests()) == 2


def test_reasks_exhausted_is_a_parse_error_and_stays_cached(server, cache):
    server.handler = lambda body, i: Reply(content='{"answer": 42}')  # JSON, but breaks the schema
    (result,) = _run(make_requests(1), cache, config_for(server.base_url, max_reasks=2))
    assert not result.ok and result.error_code == "parse_error"
    assert "string field 'answer'" in result.error and "2 re-asks" in result.error
    assert len(result.keys) == 3 and result.text == '{"answer": 42}'
    assert len(server.chat_requests()) == 3
    again = _run(make_requests(1), cache, config_for(server.base_url, max_reasks=2))
    assert again[0].error_code == "parse_error" and again[0].cached and len(server.chat_requests()) == 3


def test_finish_reason_length_fails_without_retry_and_max_tokens_redoes_it(server, cache):
    server.script(Reply(content='{"answer": "trunc', finish_reason="length"))
    results = _run(make_requests(2), cache, config_for(server.base_url, max_concurrency=1))
    assert results[0].error_code == "length" and "max_tokens" in results[0].error
    assert results[0].text == '{"answer": "trunc' and results[1].ok
    assert len(server.chat_requests()) == 2  # not retried, not re-asked
    assert _run(make_requests(2), cache, config_for(server.base_url))[0].error_code == "length"  # stored
    assert len(server.chat_requests()) == 2
    bigger = make_requests(1, max_tokens=400)
    assert _run(bigger, cache, config_for(server.base_url))[0].ok
    assert len(server.chat_requests()) == 3


def test_bad_finish_reasons_are_configurable(server, cache):
    server.script(Reply(finish_reason="length"))
    config = config_for(server.base_url, bad_finish_reasons=["content_filter"])
    (result,) = _run(make_requests(1), cache, config)
    assert result.ok and result.finish_reason == "length"


def test_refusal(server, cache):
    server.script(Reply(content=None, refusal="I can't help with that."))
    (result,) = _run(make_requests(1), cache, config_for(server.base_url))
    assert result.error_code == "refusal" and "can't help" in result.error


def test_401_stops_the_run_without_showing_the_key(server, tmp_path, cache, monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", SECRET)
    refused = {"error": {"message": "Incorrect API key provided"}}
    server.handler = lambda body, i: Reply(status=401, error=refused)
    config = config_for(server.base_url, api_key_env="TEACHER_KEY")
    with pytest.raises(TeacherAuthError) as info:
        _run(make_requests(3), cache, config)
    err = info.value
    assert "refused the API key in $TEACHER_KEY" in str(err) and "401" in str(err)
    for text in (str(err), repr(err), err.hint or "", str(err.args), str(err.__cause__)):
        assert SECRET not in text
    assert len(server.chat_requests()) <= 3  # stopped, not retried
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()


@pytest.mark.parametrize("status", [401, 403])
def test_refused_without_a_key_says_which_variable(server, cache, status):
    server.handler = lambda body, i: Reply(status=status)
    with pytest.raises(TeacherAuthError) as info:
        _run(make_requests(1), cache, config_for(server.base_url))
    assert "$OPENAI_API_KEY is not set" in str(info.value) and "export OPENAI_API_KEY" in info.value.hint
    assert server.chat_requests()[0].headers["authorization"] == "Bearer no-key"


def test_400_fails_one_request_and_the_run_goes_on(server, cache):
    server.script(Reply(status=400, error={"error": {"message": "image too large"}}))
    results = _run(make_requests(3), cache, config_for(server.base_url, max_concurrency=1))
    assert [r.error_code for r in results] == ["bad_request", None, None]
    assert "image too large" in results[0].error and len(server.chat_requests()) == 3
    assert [r.cached for r in results] == [False] * 3 and results[0].usage["input_tokens"] == 0


def test_unreachable_endpoint_stops_the_run(cache):
    config = config_for("http://127.0.0.1:9/v1", max_retries=1)
    with pytest.raises(TeacherUnavailable) as info:
        _run(make_requests(2), cache, config)
    assert "127.0.0.1:9" in str(info.value) and "base_url" in info.value.hint


def test_404_stops_the_run(server, cache):
    server.handler = lambda body, i: Reply(status=404, error={"error": {"message": "model not found"}})
    with pytest.raises(TeacherUnavailable, match="model not found"):
        _run(make_requests(1), cache, config_for(server.base_url))


def test_changed_parameter_reasks_only_the_requests_it_changes(server, cache):
    _run(make_requests(4), cache, config_for(server.base_url))
    changed = make_requests(2, temperature=0.7) + make_requests(2, start=2)
    results = _run(changed, cache, config_for(server.base_url))
    assert all(r.ok for r in results) and [r.cached for r in results] == [False, False, True, True]
    assert len(server.chat_requests()) == 6


def test_changed_parser_reparses_without_asking(server, cache):
    requests = make_requests(3)
    _run(requests, cache, config_for(server.base_url))
    shout = lambda text: json.loads(text)["answer"].upper()  # noqa: E731
    upper = _run(requests, cache, config_for(server.base_url), parse=shout)
    assert [r.parsed for r in upper] == ["OK"] * 3 and len(server.chat_requests()) == 3

    def stricter(text):
        raise ValueError("field 'findings' is missing")

    strict = _run(requests[:1], cache, config_for(server.base_url, max_reasks=1), parse=stricter)
    assert strict[0].error_code == "parse_error"
    assert len(server.chat_requests()) == 4  # only the re-ask; the original reply came from the cache
    assert "findings" in server.chat_requests()[-1].body["messages"][-1]["content"]


def test_duplicate_requests_are_sent_once(server, cache):
    (request,) = make_requests(1)
    server.handler = lambda body, i: Reply(delay_s=0.1)
    results = _run([request, request], cache, config_for(server.base_url))
    assert [r.ok for r in results] == [True, True] and len(server.chat_requests()) == 1


def test_requests_per_minute_limit(server, cache):
    started = time.monotonic()
    results = _run(make_requests(13), cache, config_for(server.base_url, max_requests_per_minute=600))
    assert all(r.ok for r in results)
    log = server.chat_requests()
    assert log[-1].t_received - log[0].t_received >= 0.25  # 10 at once, then 10 per second
    assert time.monotonic() - started < 3


def test_estimate_sends_nothing(server, cache):
    prices = {"teacher-m": PriceConfig(input_per_mtok=2.0, output_per_mtok=10.0)}
    config = config_for(server.base_url, prices=prices, image_input_tokens=765, expected_output_tokens=150)
    requests = make_requests(4)
    before = estimate(requests, cache, config)
    assert (before.requests, before.cached, before.to_send, before.images) == (4, 0, 4, 4)
    assert before.output_tokens == 4 * 150 and before.input_tokens > 4 * 765
    assert before.cost_usd == pytest.approx((before.input_tokens * 2 + before.output_tokens * 10) / 1e6)
    assert server.log == []
    _run(requests[:2], cache, config)
    after = estimate(requests, cache, config, transport="batch")
    assert (after.cached, after.to_send) == (2, 2) and after.output_basis.startswith("mean of 2")
    assert after.cached_cost_usd > 0
    results = _run(requests[:2], cache, config)
    assert all(r.cost_usd > 0 for r in results)
    unpriced = estimate(make_requests(1, model="other"), cache, config)
    assert unpriced.cost_usd is None and unpriced.unpriced_models == ("other",)


def test_kill_9_mid_run_then_resume_never_asks_an_answered_key_twice(server, tmp_path):
    n, concurrency = 24, 4
    server.handler = lambda body, i: Reply(delay_s=0.1)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", HELPER, "online", str(run_dir), server.base_url, str(n), str(concurrency)]
    child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while len(server.chat_requests(answered=True)) < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    first_run = {_key(r) for r in server.chat_requests()}
    assert 8 <= len(first_run) < n
    with Cache(run_dir / "cache.sqlite") as cache:
        stored = set(cache.get_many(r.key for r in make_requests(n)))
        assert len(stored) >= 8 - concurrency
        before = len(server.chat_requests())
        results = _run(make_requests(n), cache, config_for(server.base_url, max_concurrency=concurrency))
    assert all(r.ok for r in results)
    second_run = [_key(r) for r in server.chat_requests()[before:]]
    assert len(second_run) == len(set(second_run))
    assert stored.isdisjoint(second_run)  # nothing answered and stored was asked again
    assert len(first_run & set(second_run)) <= concurrency  # only what was in flight at the kill


def _key(received):
    from datakit.annotate.request import TeacherRequest

    return TeacherRequest("", received.body, "", "", "").key


def test_token_bucket_runs_into_debt_and_keeps_the_average_rate():
    from datakit.annotate.limits import TokenBucket

    bucket = TokenBucket(per_minute=6000)  # 100 per second, at most one second's worth saved up
    assert bucket.capacity == 100 and bucket.wait_s(50) == 0
    bucket.take(250)  # a request bigger than the bucket still goes...
    assert bucket.wait_s(10) == pytest.approx(1.6, abs=0.05)  # ...and the next waits for the debt
    bucket.give_back(150)  # the answer used fewer tokens than estimated
    assert bucket.wait_s(10) == pytest.approx(0.1, abs=0.05)


def test_limiter_cooldown_holds_every_admission():
    import asyncio

    from datakit.annotate.limits import Limiter

    async def main():
        limiter = Limiter(tokens_per_minute=600_000)
        limiter.cooldown(0.2)
        limiter.cooldown(0.05)  # never shortens a running cooldown
        started = time.monotonic()
        await asyncio.gather(*(limiter.admit(10) for _ in range(3)))
        return time.monotonic() - started

    assert asyncio.run(main()) >= 0.19

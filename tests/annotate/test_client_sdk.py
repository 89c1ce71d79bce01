"""The transport tests again, chat completions going through the openai SDK (teacher.http_client = "openai")."""

from __future__ import annotations

import os

import pytest

from tests.annotate import transport_helpers
from tests.annotate.test_client import (  # noqa: F401  (collected here a second time, through the SDK)
    cache,
    server,
    test_400_fails_one_request_and_the_run_goes_on,
    test_401_stops_the_run_without_showing_the_key,
    test_404_stops_the_run,
    test_429_retry_after_is_honoured_by_every_worker,
    test_429_retry_after_ms,
    test_500_then_success,
    test_cached_results_match_and_say_cached,
    test_finish_reason_length_fails_without_retry_and_max_tokens_redoes_it,
    test_hung_request_times_out_and_is_retried,
    test_non_json_is_reasked_with_the_error,
    test_server_errors_beyond_max_retries_fail_that_request_only,
    test_success_sends_exactly_the_body,
    test_timeouts_beyond_max_retries,
    test_unreachable_endpoint_stops_the_run,
)


@pytest.fixture(autouse=True)
def _through_the_sdk(monkeypatch):
    monkeypatch.setitem(transport_helpers.DEFAULTS, "http_client", "openai")


def test_the_sdk_is_what_sends(server, cache):  # noqa: F811
    from datakit.annotate.engine import run_requests
    from tests.annotate.transport_helpers import config_for, make_requests, parse_answer

    results = run_requests(make_requests(2), cache=cache, config=config_for(server.base_url), parse=parse_answer,
                           progress=False)
    assert all(r.ok for r in results)
    assert all(r.headers["user-agent"].startswith("AsyncOpenAI/Python") for r in server.chat_requests())


def test_an_endpoint_behind_a_proxy_goes_through_the_sdk_even_when_datakit_is_asked(server, cache, monkeypatch):  # noqa: F811
    from datakit.annotate.engine import run_requests
    from tests.annotate.transport_helpers import config_for, make_requests, parse_answer

    for name in [k for k in os.environ if k.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")  # the fake server plays the proxy
    config = config_for("http://teacher.invalid/v1", http_client="datakit")
    results = run_requests(make_requests(2), cache=cache, config=config, parse=parse_answer, progress=False)
    assert all(r.ok for r in results)
    sent = server.chat_requests()
    assert [r.path for r in sent] == ["http://teacher.invalid/v1/chat/completions"] * 2  # a proxy's request line
    assert all(r.headers["user-agent"].startswith("AsyncOpenAI/Python") for r in sent)


def test_credentials_in_the_url_go_through_the_sdk(server, cache):  # noqa: F811
    from datakit.annotate.engine import run_requests
    from tests.annotate.transport_helpers import config_for, make_requests, parse_answer

    config = config_for(server.base_url.replace("http://", "http://user:secret@"), http_client="datakit")
    results = run_requests(make_requests(1), cache=cache, config=config, parse=parse_answer, progress=False)
    assert results[0].ok
    assert server.chat_requests()[0].headers["user-agent"].startswith("AsyncOpenAI/Python")

"""The transport tests again, chat completions going through the openai SDK (teacher.http_client = "openai")."""

from __future__ import annotations

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

"""What stops a teacher run and what it says, on both chat paths: TLS, answers broken off, a proxy's 400s."""

from __future__ import annotations

import shutil
import time

import pytest

from datakit.annotate.cache import Cache
from datakit.annotate.engine import run_requests
from datakit.errors import ConfigError, TeacherAuthError, TeacherError, TeacherUnavailable
from tests.annotate.raw_server import RawServer, make_certificate
from tests.annotate.transport_helpers import config_for, make_requests, parse_answer
from tests.fakes.openai_server import FakeOpenAI, Reply

PATHS = ["datakit", "openai"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("certs")
    return {"local": make_certificate(folder, "local", san="IP:127.0.0.1"),
            "other": make_certificate(folder, "other", san="DNS:other.example")}  # fmt: skip


@pytest.fixture
def cache(tmp_path):
    with Cache(tmp_path / "cache.sqlite") as c:
        yield c


def _run(requests, cache, config):
    return run_requests(requests, cache=cache, config=config, parse=parse_answer, progress=False)


@pytest.fixture(autouse=True)
def _no_ca_from_the_environment(monkeypatch):
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


# TLS --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_an_untrusted_certificate_stops_at_once_and_names_the_fix(certs, cache, path):
    with RawServer(tls=certs["local"]) as server:
        started = time.monotonic()
        with pytest.raises(TeacherUnavailable) as info:
            _run(make_requests(3), cache, config_for(server.base_url, http_client=path, max_concurrency=1))
        took = time.monotonic() - started
    err = info.value
    assert "TLS certificate that is not trusted" in str(err) and "self-signed" in str(err)
    assert "teacher.ca_bundle" in err.hint and "SSL_CERT_FILE" in err.hint
    assert server.handshakes == 1 and server.requests == 0  # no retry: another try meets the same certificate
    assert took < 3.0


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("how", ["config", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_with_the_ca_bundle_the_same_server_answers(certs, cache, path, how, monkeypatch):
    cert = str(certs["local"][0])
    with RawServer(tls=certs["local"]) as server:
        if how == "config":
            config = config_for(server.base_url, http_client=path, ca_bundle=cert)
        else:
            monkeypatch.setenv(how, cert)
            config = config_for(server.base_url, http_client=path)
        results = _run(make_requests(3), cache, config)
    assert [r.parsed for r in results] == [{"answer": "ok"}] * 3 and server.requests == 3


@pytest.mark.parametrize("path", PATHS)
def test_a_certificate_for_another_name_says_so(certs, cache, path):
    with RawServer(tls=certs["other"]) as server:
        config = config_for(server.base_url, http_client=path, ca_bundle=str(certs["other"][0]))
        with pytest.raises(TeacherUnavailable) as info:
            _run(make_requests(1), cache, config)
    assert "not trusted" in str(info.value) and "127.0.0.1" in str(info.value)
    assert "name the certificate lists" in info.value.hint
    assert server.handshakes == 1


def test_a_ca_bundle_that_is_not_there_is_a_config_error(cache, tmp_path):
    with RawServer() as plain:
        https = plain.base_url.replace("http:", "https:")
    config = config_for(https, ca_bundle=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="missing.pem"):
        _run(make_requests(1), cache, config)


# answers broken off -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_answers_broken_off_every_time_stop_the_run_with_the_right_words(cache, path):
    with RawServer(["drop"] * 10) as server:
        with pytest.raises(TeacherUnavailable) as info:
            _run(make_requests(1), cache, config_for(server.base_url, http_client=path, max_retries=2))
    message = str(info.value)
    assert "closed the connection in the middle of its answer 3 times in 3 attempts" in message
    assert "cannot connect" not in message and "logs" in info.value.hint
    assert server.requests == 3


@pytest.mark.parametrize("path", PATHS)
def test_an_answer_broken_off_once_is_retried(cache, path):
    with RawServer(["drop"]) as server:
        (result,) = _run(make_requests(1), cache, config_for(server.base_url, http_client=path))
    assert result.ok and result.attempts == 2 and server.requests == 2


# a proxy's 400s ---------------------------------------------------------------------------------------------
# LiteLLM's proxy: {"error": {"message": ..., "type": ..., "param": ..., "code": "400"}}
UNKNOWN_MODEL = {"error": {"message": "400: {'error': '/chat/completions: Invalid model name passed in "
                           "model=teacher-m. Call `/v1/models` to view available models for your key.'}",
                           "type": "None", "param": "None", "code": "400"}}  # fmt: skip
WRONG_KEY = {"error": {"message": "Authentication Error, Invalid proxy server token passed. Received API Key = "
                       "sk-...1234, Key Hash (Token) =ab12. Unable to find token in cache or "
                       "`LiteLLM_VerificationTokenTable`", "type": "auth_error", "param": "None", "code": "400"}}
TOO_LONG = {"error": {"message": "litellm.ContextWindowExceededError: litellm.BadRequestError: This model's "
                      "maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
                      "type": None, "param": None, "code": "400"}}  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("body", "error", "words"), [
    (UNKNOWN_MODEL, TeacherError, "does not serve the model 'teacher-m'"),
    (WRONG_KEY, TeacherAuthError, "refused the API key in $OPENAI_API_KEY"),
])  # fmt: skip
def test_a_proxy_400_for_the_whole_endpoint_stops_at_the_first(cache, path, body, error, words, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    with FakeOpenAI() as server:
        server.script(Reply(), Reply(), *[Reply(status=400, error=body)] * 5)
        requests = make_requests(5)
        with pytest.raises(error) as info:
            _run(requests, cache, config_for(server.base_url, http_client=path, max_concurrency=1))
        sent = len(server.chat_requests())
    assert words in str(info.value) and body["error"]["message"][:40] in str(info.value)
    assert info.value.exit_code == 3
    assert sent == 3  # two answered, then the first 400 stopped the run
    assert cache.get(requests[0].key) is not None and cache.get(requests[1].key) is not None


@pytest.mark.parametrize("path", PATHS)
def test_a_400_about_one_request_stays_that_requests_failure(cache, path):
    with FakeOpenAI() as server:
        server.script(Reply(status=400, error=TOO_LONG))
        results = _run(make_requests(3), cache, config_for(server.base_url, http_client=path, max_concurrency=1))
    assert [r.error_code for r in results] == ["bad_request", None, None]
    assert "maximum context length" in results[0].error

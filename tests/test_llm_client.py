"""LiteLLMClient through litellm for real, against the local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path

import pytest

from fusion.client import Completion, CompletionRequest
from fusion.errors import ProviderError
from fusion.llm import LOCAL_PLACEHOLDER_KEY, LiteLLMClient, classify, redact
from openai_server import Reply, ok_text

pytestmark = pytest.mark.server

KEY = "sk-test-SECRETVALUE-0123456789"
PROMPT = [{"role": "user", "content": "Explain how volcanoes form near tectonic plates"}]


def request(server, model: str, **kw) -> CompletionRequest:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("num_retries", 0)
    return CompletionRequest.from_messages(f"openai/{model}", PROMPT, api_base=server.url, **kw)


def complete(client, req: CompletionRequest, *, key: str | None = KEY, on_token=None) -> Completion:
    return asyncio.run(client.complete(req, api_key=key, on_token=on_token))


def failure(client, req: CompletionRequest, *, key: str | None = KEY, on_token=None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        complete(client, req, key=key, on_token=on_token)
    assert KEY not in str(info.value)
    assert "\n" not in str(info.value)
    return info.value


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def test_module_import_does_not_import_litellm() -> None:
    code = ("import sys; import fusion.llm, fusion.generate, fusion.providers, storage.cache; "
            "print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"


def test_non_streaming_completion(openai_server, fast_client) -> None:
    openai_server.set_handler(lambda body: Reply(text="Magma rises. Pressure builds."))
    req = request(openai_server, "ok", temperature=0.7, seed=42, max_tokens=64)
    got = complete(fast_client, req)
    assert got.text == "Magma rises. Pressure builds."
    assert got.model == "openai/ok"
    assert got.cached is False
    assert got.latency_s > 0
    assert got.completion_tokens == 4 and got.prompt_tokens == 7  # the server counts words
    sent = openai_server.requests
    assert len(sent) == 1
    body = sent[0]["body"]
    assert body["model"] == "ok" and body["seed"] == 42 and body["temperature"] == 0.7
    assert body["max_tokens"] == 64 and not body.get("stream")
    assert body["messages"] == PROMPT
    assert sent[0]["headers"]["authorization"] == f"Bearer {KEY}"


def test_streaming_tokens_concatenate_to_text(openai_server, fast_client) -> None:
    tokens: list[str] = []
    got = complete(fast_client, request(openai_server, "ok", seed=3), on_token=tokens.append)
    assert len(tokens) > 5
    assert "".join(tokens) == got.text
    assert got.text == ok_text(PROMPT[0]["content"], "seed=3")
    assert got.completion_tokens is not None and got.completion_tokens > 0
    assert openai_server.requests[0]["body"]["stream"] is True


def test_streaming_accepts_async_callbacks(openai_server, fast_client) -> None:
    tokens: list[str] = []

    async def on_token(delta: str) -> None:
        await asyncio.sleep(0)
        tokens.append(delta)

    got = complete(fast_client, request(openai_server, "ok"), on_token=on_token)
    assert "".join(tokens) == got.text and got.text


def test_429_then_success_after_backoff(openai_server) -> None:
    sleep = RecordingSleep()
    client = LiteLLMClient(backoff_base=0.5, sleep=sleep, rng=random.Random(1))
    openai_server.queue(Reply(status=429, error="slow down"), Reply(text="Second time lucky."))
    got = complete(client, request(openai_server, "ok", num_retries=2))
    assert got.text == "Second time lucky."
    assert openai_server.count() == 2
    assert len(sleep.delays) == 1 and 0.25 <= sleep.delays[0] <= 0.5  # base * 2**0 with jitter


def test_retry_after_is_honoured_up_to_a_cap(openai_server) -> None:
    sleep = RecordingSleep()
    client = LiteLLMClient(sleep=sleep, retry_after_cap=5.0)
    openai_server.queue(Reply(status=429, headers={"Retry-After": "3"}), Reply(status=429, headers={"Retry-After": "120"}),
                        Reply(status=429, headers={"retry-after-ms": "250"}), "ok")
    complete(client, request(openai_server, "ok", num_retries=3))
    assert sleep.delays == [3.0, 5.0, 0.25]


def test_backoff_grows_exponentially_with_jitter(openai_server) -> None:
    sleep = RecordingSleep()
    client = LiteLLMClient(backoff_base=1.0, backoff_max=3.0, sleep=sleep, rng=random.Random(7))
    err = failure(client, request(openai_server, "error500", num_retries=3))
    assert openai_server.count() == 4  # exactly 1 + num_retries: litellm's and openai's retries are off
    assert err.kind == "server" and err.status == 500
    assert str(err) == "openai/error500 returned a server error (HTTP 500) after 4 attempts."
    ceilings = [1.0, 2.0, 3.0]
    assert len(sleep.delays) == 3
    for delay, ceiling in zip(sleep.delays, ceilings):
        assert ceiling / 2 <= delay <= ceiling


def test_rate_limit_exhausted(openai_server, fast_client) -> None:
    err = failure(fast_client, request(openai_server, "rate-limited", num_retries=2))
    assert openai_server.count() == 3
    assert err.kind == "rate_limit" and err.status == 429
    assert str(err) == "Rate limited by openai/rate-limited after 3 attempts."


def test_single_attempt_when_no_retries(openai_server, fast_client) -> None:
    err = failure(fast_client, request(openai_server, "rate-limited", num_retries=0))
    assert openai_server.count() == 1
    assert str(err) == "Rate limited by openai/rate-limited."


@pytest.mark.parametrize(
    "model, kind, status, words",
    [
        ("error400", "bad_request", 400, "refused the request (HTTP 400)"),
        ("auth", "auth", 401, "rejected the API key (HTTP 401)"),
        ("notfound", "not_found", 404, "was not found"),
    ],
)
def test_non_retryable_errors_fail_at_once(openai_server, fast_client, model, kind, status, words) -> None:
    err = failure(fast_client, request(openai_server, model, num_retries=3))
    assert openai_server.count() == 1
    assert (err.kind, err.status) == (kind, status)
    assert words in str(err)


def test_timeout(openai_server, fast_client) -> None:
    err = failure(fast_client, request(openai_server, "hang@5", timeout=0.3, num_retries=1))
    assert err.kind == "timeout"
    assert str(err) == "Timed out after 0.3 s waiting for openai/hang@5 (2 attempts)."
    assert openai_server.count() == 2


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_body(openai_server, fast_client, stream) -> None:
    err = failure(fast_client, request(openai_server, "malformed", num_retries=2),
                  on_token=(lambda d: None) if stream else None)
    assert err.kind == "malformed"
    assert str(err) == "The server returned a malformed response for openai/malformed."
    assert openai_server.count() == 1


def test_json_without_choices_is_malformed(openai_server, fast_client) -> None:
    openai_server.queue(Reply(raw=b'{"id": "x", "object": "chat.completion", "choices": []}'))
    err = failure(fast_client, request(openai_server, "ok"))
    assert err.kind == "malformed"


def test_unknown_model_without_provider(fast_client, openai_server) -> None:
    req = CompletionRequest.from_messages("foo", PROMPT, timeout=5.0, num_retries=2)
    err = failure(fast_client, req)
    assert err.kind == "not_found"
    assert str(err).startswith("Unknown model 'foo': litellm needs a provider prefix such as openai/")
    assert openai_server.count() == 0


def test_connection_refused_is_retried_then_reported(fast_client) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    req = CompletionRequest.from_messages("openai/ok", PROMPT, api_base=f"http://127.0.0.1:{port}/v1",
                                          timeout=5.0, num_retries=1)
    err = failure(fast_client, req)
    assert err.kind == "server"
    assert "Could not reach openai/ok" in str(err) and "after 2 attempts" in str(err)


def test_stream_cut_midway_is_a_failure_not_a_half_answer(openai_server, fast_client) -> None:
    tokens: list[str] = []
    err = failure(fast_client, request(openai_server, "cut", num_retries=2), on_token=tokens.append)
    assert tokens, "some tokens arrived before the cut"
    assert "broke off" in str(err)
    # Tokens were already shown, so the call is not silently retried.
    assert openai_server.count() == 1


def test_stream_stalling_midway_times_out(openai_server, fast_client) -> None:
    tokens: list[str] = []
    err = failure(fast_client, request(openai_server, "stall", timeout=0.5, num_retries=1), on_token=tokens.append)
    assert tokens
    assert err.kind == "timeout"
    assert "broke off" in str(err) and "timed out after 0.5 s" in str(err)


def test_key_never_appears_in_messages(openai_server, fast_client) -> None:
    openai_server.queue(Reply(status=401, error=f"Incorrect API key provided: {KEY}"))
    err = failure(fast_client, request(openai_server, "ok"))
    assert err.kind == "auth"
    assert err.__cause__ is None and err.__suppress_context__  # no provider exception quoting the key
    openai_server.queue(Reply(status=400, error=f"bad thing about {KEY}"))
    err = failure(fast_client, request(openai_server, "ok"))
    assert "bad thing about" in str(err)


def test_local_server_gets_a_placeholder_not_the_env_key(openai_server, fast_client, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key-must-not-leak")
    complete(fast_client, request(openai_server, "ok"), key=None)
    assert openai_server.requests[0]["headers"]["authorization"] == f"Bearer {LOCAL_PLACEHOLDER_KEY}"


def test_callback_errors_propagate_unchanged(openai_server, fast_client) -> None:
    def on_token(delta: str) -> None:
        raise KeyError("consumer bug")

    with pytest.raises(KeyError):
        complete(fast_client, request(openai_server, "ok", num_retries=2), on_token=on_token)
    assert openai_server.count() == 1


def test_repeated_event_loops_reuse_the_client(openai_server, fast_client) -> None:
    # Streamlit calls asyncio.run on every rerun; litellm's cached HTTP clients must survive that.
    texts = {complete(fast_client, request(openai_server, "ok", seed=s)).text for s in range(3)}
    assert len(texts) == 3


def test_redact_and_classify_helpers() -> None:
    assert "sk-abcdef" not in redact("key sk-abcdefghijkl1234 was wrong", None)
    assert redact("value hunter2secret here", "hunter2secret") == "value [key] here"
    assert classify(TimeoutError()).kind == "timeout"
    assert classify(ValueError("odd")).retryable is False


def test_judge_and_fusor_behaviours(openai_server, fast_client) -> None:
    from openai_server import candidates_in, fusor_text, judge_text

    scores = {judge_text(f"Rate this answer: candidate number {i}").splitlines()[-1] for i in range(30)}
    assert all(s.startswith("Score: ") and 1 <= int(s.split()[1]) <= 10 for s in scores)
    assert len(scores) > 3  # varies with the candidate text

    prompt = ('Question: why?\n<candidate id="1">Water boils at 100 C. It is hot.</candidate>\n'
              '<candidate id="2">Ice melts at 0 C. It is cold.</candidate>')
    assert candidates_in(prompt) == ["Water boils at 100 C. It is hot.", "Ice melts at 0 C. It is cold."]
    assert fusor_text(prompt) == "Water boils at 100 C. Ice melts at 0 C. It is hot. It is cold."
    assert candidates_in("Candidate 1: Alpha.\nCandidate 2: Beta.") == ["Alpha.", "Beta."]

    req = CompletionRequest.from_messages("openai/fusor", [{"role": "user", "content": prompt}],
                                          api_base=openai_server.url, timeout=5.0, num_retries=0)
    assert complete(fast_client, req).text == fusor_text(prompt)


def test_server_as_a_subprocess(openai_server_process, fast_client) -> None:
    import json
    import urllib.request

    url = openai_server_process.url
    urllib.request.urlopen(urllib.request.Request(url + "/_reset", b"", method="POST"), timeout=5).read()
    req = CompletionRequest.from_messages("openai/ok", PROMPT, api_base=url, timeout=5.0, num_retries=0, seed=9)
    assert complete(fast_client, req).text == ok_text(PROMPT[0]["content"], "seed=9")
    stats = json.load(urllib.request.urlopen(url + "/_stats", timeout=5))
    assert stats["requests"] == 1 and stats["models"] == ["ok"]


def test_a_structured_request_asks_the_server_for_json(openai_server, fast_client) -> None:
    openai_server.set_handler(lambda body: Reply(text='{"score": 7}'))
    complete(fast_client, request(openai_server, "ok", response_format="json_object"))
    complete(fast_client, request(openai_server, "ok"))
    first, second = (r["body"] for r in openai_server.requests)
    assert first["response_format"] == {"type": "json_object"}
    assert "response_format" not in second


@pytest.mark.parametrize(
    "base, words",
    [
        ("localhost:8000/v1", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("http://ana:pw@127.0.0.1:9/v1", "must not carry a name or password"),
        ("http://127.0.0.1:99999/v1", "needs a host"),
    ],
)
def test_a_malformed_server_url_is_named_not_reported_as_a_server_error(fast_client, base: str, words: str) -> None:
    req = CompletionRequest.from_messages("openai/ok", PROMPT, api_base=base, timeout=5.0, num_retries=2)
    err = failure(fast_client, req)
    assert words in str(err) and err.kind == "bad_request"
    assert "HTTP 500" not in str(err) and "attempts" not in str(err)

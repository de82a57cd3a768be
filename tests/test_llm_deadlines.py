"""LiteLLMClient's time limit (issue 12, item 3) and its reading of a streamed 200 that is no stream (item 6),
through litellm for real against the local scripted server."""

from __future__ import annotations

import asyncio
import time

import pytest

from fusion.client import CompletionRequest
from fusion.errors import ProviderError
from fusion.llm import STREAM_TOTAL_FACTOR
from openai_server import Reply

pytestmark = pytest.mark.server

PROMPT = [{"role": "user", "content": "Explain how volcanoes form near tectonic plates"}]


def request(server, model: str, **kw) -> CompletionRequest:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("num_retries", 0)
    return CompletionRequest.from_messages(f"openai/{model}", PROMPT, api_base=server.url, **kw)


def call(client, req: CompletionRequest, *, stream: bool):
    tokens: list[str] = []
    on_token = tokens.append if stream else None
    return asyncio.run(client.complete(req, api_key="x", on_token=on_token)), tokens


def test_a_steady_stream_longer_than_the_timeout_is_not_cut(openai_server, fast_client) -> None:
    # 12 pieces 0.15 s apart: 1.65 s in all, never 0.5 s without a chunk.
    text = "one two three four five six seven eight nine ten eleven twelve"
    openai_server.queue(Reply(text=text, chunk_delay=0.15))
    started = time.monotonic()
    completion, tokens = call(fast_client, request(openai_server, "ok", timeout=0.5), stream=True)
    assert time.monotonic() - started > 1.5
    assert completion.text == text and "".join(tokens) == text


def test_a_stream_that_trickles_forever_is_still_bounded(openai_server, fast_client) -> None:
    timeout = 0.2
    text = " ".join(f"w{i}" for i in range(40))  # 40 pieces 0.15 s apart: 6 s, past 10 x 0.2 s
    openai_server.queue(Reply(text=text, chunk_delay=0.15))
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        call(fast_client, request(openai_server, "ok", timeout=timeout), stream=True)
    elapsed = time.monotonic() - started
    assert info.value.kind == "timeout" and "broke off" in str(info.value)
    assert STREAM_TOTAL_FACTOR * timeout - 0.1 < elapsed < STREAM_TOTAL_FACTOR * timeout + 2


def test_a_non_streamed_answer_has_the_whole_timeout(openai_server, fast_client) -> None:
    openai_server.queue(Reply(text="late", delay=0.8))
    with pytest.raises(ProviderError) as info:
        call(fast_client, request(openai_server, "ok", timeout=0.4), stream=False)
    assert str(info.value) == "Timed out after 0.4 s waiting for openai/ok."


@pytest.mark.parametrize("stream", [False, True])
def test_a_hang_is_retried_once_whatever_the_retries(openai_server, fast_client, stream) -> None:
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        call(fast_client, request(openai_server, "hang@30", timeout=0.4, num_retries=3), stream=stream)
    assert str(info.value) == "Timed out after 0.4 s waiting for openai/hang@30 (2 attempts)."
    assert openai_server.count() == 2
    assert time.monotonic() - started < 2 * 0.4 + 1.5


def test_other_failures_still_use_every_retry(openai_server, fast_client) -> None:
    with pytest.raises(ProviderError) as info:
        call(fast_client, request(openai_server, "error503", num_retries=3), stream=False)
    assert "(HTTP 503) after 4 attempts" in str(info.value)
    assert openai_server.count() == 4


@pytest.mark.parametrize("stream", [False, True])
def test_a_200_that_is_an_html_page_is_a_malformed_response(openai_server, fast_client, stream) -> None:
    """Item 6: streamed, such a body was reported as an empty answer (litellm makes up a finish chunk)."""
    with pytest.raises(ProviderError) as info:
        call(fast_client, request(openai_server, "html", num_retries=2), stream=stream)
    assert info.value.kind == "malformed"
    assert str(info.value) == "The server returned a malformed response for openai/html."
    assert openai_server.count() == 1  # not retried: the same server would send the same page


def test_a_streamed_reply_in_plain_json_is_malformed_too(openai_server, fast_client) -> None:
    # A server that ignores "stream": true and answers with one JSON completion.
    body = b'{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}]}'
    openai_server.queue(Reply(raw=body, raw_as_is=True))
    with pytest.raises(ProviderError) as info:
        call(fast_client, request(openai_server, "ok"), stream=True)
    assert info.value.kind == "malformed"


def test_a_genuinely_empty_stream_is_an_empty_answer_not_malformed(openai_server, fast_client) -> None:
    # The server did stream (a role chunk, then stop): the answer is empty, which the caller reports.
    openai_server.queue(Reply(text=""))
    completion, tokens = call(fast_client, request(openai_server, "ok"), stream=True)
    assert completion.text == "" and tokens == []


def test_calls_that_start_together_wait_for_the_one_warm_up(openai_server, monkeypatch) -> None:
    # A process's first litellm call imports dozens of modules with the event loop blocked. Here the
    # warm-up blocks it for 0.6 s; three calls start at once with a 0.3 s timeout against a server that
    # answers at once. Calls that timed their attempt while the warm-up held the loop timed out on a
    # silence that was ours, not the server's.
    import litellm

    import fusion.llm as llm

    real = litellm.acompletion

    async def acompletion(**kwargs):
        if kwargs.get("mock_response") is not None:
            await asyncio.sleep(0)  # the others start meanwhile
            time.sleep(0.6)  # the imports: the loop is blocked
        return await real(**kwargs)

    monkeypatch.setattr(litellm, "acompletion", acompletion)
    monkeypatch.setattr(llm, "_warmed", False)
    client = llm.LiteLLMClient(backoff_base=0.01, backoff_max=0.01)
    req = request(openai_server, "ok", timeout=0.3)

    async def three() -> list:
        return await asyncio.gather(*(client.complete(req, api_key="x") for _ in range(3)), return_exceptions=True)

    results = asyncio.run(three())
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert all(r.text for r in results)
    assert openai_server.count("ok") == 3  # one attempt each: nothing timed out and was retried

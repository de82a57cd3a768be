"""Sampling N candidates: order, seeds, events, concurrency, partial failure and the response cache.

Generation goes through litellm for real against the local server; a few checks that need no HTTP use
FakeModelClient.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import pytest

from fakes import FakeModelClient
from fusion.errors import InputError, NotEnoughCandidates
from fusion.generate import GenerationEvent, cached_complete, generate_candidates, plan_samples, require_usable
from fusion.types import Candidate, ModelSpec, Prompt, SamplingSettings

pytestmark = pytest.mark.server

PROMPT = Prompt("Why do cats purr when they are content?")
KEY = "sk-generate-SECRET-987654321"


def spec(server, name: str, samples: int = 1, **kw) -> ModelSpec:
    return ModelSpec(f"openai/{name}", samples=samples, api_base=server.url, api_key=kw.pop("api_key", KEY), **kw)


def settings(**kw) -> SamplingSettings:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("num_retries", 0)
    return SamplingSettings(**kw)


class Recorder:
    def __init__(self) -> None:
        self.events: list[GenerationEvent] = []

    def __call__(self, event: GenerationEvent) -> None:
        self.events.append(event)

    def kinds(self, index: int) -> list[str]:
        return [e.kind for e in self.events if e.index == index]

    def text(self, index: int) -> str:
        return "".join(e.delta for e in self.events if e.index == index and e.kind == "token")

    def tokens(self, index: int) -> list[str]:
        return [e.delta for e in self.events if e.index == index and e.kind == "token"]


def generate(client, pool, sampling=None, **kw) -> list[Candidate]:
    return asyncio.run(generate_candidates(PROMPT, pool, sampling or settings(), client=client, **kw))


def test_candidates_in_pool_order_with_seed_offsets(openai_server, fast_client) -> None:
    rec = Recorder()
    pool = [spec(openai_server, "ok", 2), spec(openai_server, "echo", 1), spec(openai_server, "ok@0.05", 2)]
    out = generate(fast_client, pool, settings(seed=10), on_event=rec)
    assert [c.index for c in out] == [0, 1, 2, 3, 4]
    assert [c.model for c in out] == ["openai/ok", "openai/ok", "openai/echo", "openai/ok@0.05", "openai/ok@0.05"]
    assert [c.sample_index for c in out] == [0, 1, 0, 0, 1]
    assert all(c.ok and not c.cached for c in out)
    assert out[2].text == PROMPT.text
    assert out[0].text != out[1].text and out[3].text != out[4].text  # seed + k: the samples differ
    seeds = defaultdict(list)
    for r in openai_server.requests:
        seeds[r["model"]].append(r["body"]["seed"])
    assert sorted(seeds["ok"]) == [10, 11] and seeds["echo"] == [10] and sorted(seeds["ok@0.05"]) == [10, 11]
    for c in out:
        assert rec.kinds(c.index)[0] == "start" and rec.kinds(c.index)[-1] == "done"
        assert rec.text(c.index) == c.text
        done = [e for e in rec.events if e.index == c.index and e.kind == "done"][0]
        assert done.candidate == c
        assert c.latency_s is not None and c.completion_tokens


def test_same_seed_reproduces_the_samples(openai_server, fast_client) -> None:
    pool = [spec(openai_server, "ok", 3)]
    first = [c.text for c in generate(fast_client, pool, settings(seed=5))]
    again = [c.text for c in generate(fast_client, pool, settings(seed=5))]
    other = [c.text for c in generate(fast_client, pool, settings(seed=50))]
    assert first == again
    assert first != other
    assert len(set(first)) == 3


def test_without_streaming_one_token_event_per_candidate(openai_server, fast_client) -> None:
    rec = Recorder()
    out = generate(fast_client, [spec(openai_server, "ok", 2)], stream=False, on_event=rec)
    for c in out:
        assert rec.tokens(c.index) == [c.text]
    assert all(not r["body"].get("stream") for r in openai_server.requests)


def test_eight_samples_overlap_in_flight(openai_server, fast_client) -> None:
    out = generate(fast_client, [spec(openai_server, "slow@0.5", 8)], concurrency=8)
    assert all(c.ok for c in out)
    assert openai_server.count() == 8
    # Far less than 8x a single call: the server saw (nearly) all eight requests in progress together.
    assert openai_server.max_in_flight >= 6


def test_concurrency_is_bounded(openai_server, fast_client) -> None:
    generate(fast_client, [spec(openai_server, "slow@0.2", 6)], concurrency=2)
    assert openai_server.count() == 6
    assert 1 <= openai_server.max_in_flight <= 2


def test_partial_failure_keeps_the_others(openai_server, fast_client) -> None:
    rec = Recorder()
    pool = [spec(openai_server, "ok", 2), spec(openai_server, "error500"), spec(openai_server, "auth")]
    out = generate(fast_client, pool, on_event=rec)
    assert [c.ok for c in out] == [True, True, False, False]
    assert out[2].error == "openai/error500 returned a server error (HTTP 500)."
    assert "rejected the API key" in (out[3].error or "")
    assert all(KEY not in (c.error or "") for c in out)
    assert out[2].text == "" and out[2].model == "openai/error500"
    assert [e.candidate.error for e in rec.events if e.kind == "done" and e.index == 2] == [out[2].error]
    assert require_usable(out) == out[:2]
    with pytest.raises(NotEnoughCandidates) as info:
        require_usable(out, minimum=3)
    message = str(info.value)
    assert message.startswith("Only 2 of 4 candidates succeeded; at least 3 are needed")
    assert "Candidate 3: openai/error500 returned a server error" in message
    assert "Candidate 4:" in message and "rejected the API key" in message


def test_require_usable_groups_identical_errors() -> None:
    cands = [Candidate(0, "", error="Rate limited by x."), Candidate(1, "", error="Rate limited by x."),
             Candidate(2, "  ")]
    with pytest.raises(NotEnoughCandidates) as info:
        require_usable(cands)
    assert str(info.value) == ("Only 0 of 3 candidates succeeded; at least 2 are needed to compare or fuse. "
                               "Candidates 1, 2: Rate limited by x. Candidate 3: supplied returned an empty answer.")
    assert require_usable([Candidate(0, "a")], minimum=1) == [Candidate(0, "a")]


def test_validation_happens_before_any_call() -> None:
    client = FakeModelClient(default="x")
    with pytest.raises(InputError):
        generate(client, [])
    with pytest.raises(InputError):
        generate(client, [ModelSpec("openai/a", samples=20), ModelSpec("openai/b", samples=13)])
    with pytest.raises(InputError):
        asyncio.run(generate_candidates(Prompt("  "), [ModelSpec("openai/a")], settings(), client=client))
    assert client.history == []


def test_keys_come_from_the_spec_or_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    client = FakeModelClient(default="An answer.")
    pool = [ModelSpec("openai/a", api_key="sk-explicit"), ModelSpec("openai/b"), ModelSpec("anthropic/claude-x"),
            ModelSpec("ollama/llama3")]
    out = generate(client, pool)
    assert sorted(k for k in client.keys_seen if k) == ["sk-env-key", "sk-explicit"]
    assert len(client.history) == 3  # the model without a key was never called
    assert out[2].error == ("No API key for anthropic/claude-x: set ANTHROPIC_API_KEY (in the environment "
                            "or in .streamlit/secrets.toml).")
    assert [c.ok for c in out] == [True, True, False, True]


def test_unexpected_client_errors_become_failed_candidates() -> None:
    client = FakeModelClient([ZeroDivisionError("boom"), "fine"])
    out = generate(client, [ModelSpec("openai/a", samples=2, api_key="sk-x")], concurrency=1)
    assert out[0].error == "openai/a failed unexpectedly: ZeroDivisionError: boom"
    assert out[1].ok


def test_event_callback_errors_propagate_and_cancel(openai_server, fast_client) -> None:
    seen: list[str] = []

    async def on_event(event: GenerationEvent) -> None:
        seen.append(event.kind)
        if event.kind == "token":
            raise RuntimeError("UI went away")

    with pytest.raises(RuntimeError, match="UI went away"):
        generate(fast_client, [spec(openai_server, "ok", 3)], on_event=on_event)
    assert "done" not in seen


def test_empty_answer_is_a_failed_candidate(openai_server, fast_client) -> None:
    from openai_server import Reply

    openai_server.set_handler(lambda body: Reply(text=""))
    out = generate(fast_client, [spec(openai_server, "ok")], stream=False)
    assert out[0].ok is False and out[0].error == "openai/ok returned an empty answer."


# --- with the response cache -------------------------------------------------------------------------------


def test_cache_hit_emits_events_and_skips_the_model(openai_server, fast_client, response_cache) -> None:
    pool = [spec(openai_server, "ok", 3)]
    first = generate(fast_client, pool, settings(seed=1), cache=response_cache)
    assert openai_server.count() == 3 and not any(c.cached for c in first)
    rec = Recorder()
    second = generate(fast_client, pool, settings(seed=1), cache=response_cache, on_event=rec)
    assert openai_server.count() == 3  # nothing new sent
    assert [c.text for c in second] == [c.text for c in first]
    assert all(c.cached for c in second)
    for c in second:
        assert rec.kinds(c.index) == ["start", "token", "done"]
        assert rec.tokens(c.index) == [c.text]


def test_n_identical_requests_are_n_cache_entries(openai_server, fast_client, response_cache) -> None:
    pool = [spec(openai_server, "ok", 4)]  # no seed: the four requests are identical
    first = [c.text for c in generate(fast_client, pool, cache=response_cache)]
    assert len(set(first)) == 4
    assert len(response_cache) == 4
    again = [c.text for c in generate(fast_client, pool, cache=response_cache)]
    assert again == first
    assert openai_server.count() == 4


def test_regenerate_skips_the_read_but_stores(openai_server, fast_client, response_cache) -> None:
    pool = [spec(openai_server, "ok", 2)]
    first = [c.text for c in generate(fast_client, pool, cache=response_cache)]
    fresh = generate(fast_client, pool, cache=response_cache, regenerate=True)
    assert openai_server.count() == 4
    assert not any(c.cached for c in fresh)
    assert [c.text for c in fresh] != first  # the server varies unseeded answers by repetition
    latest = generate(fast_client, pool, cache=response_cache)
    assert [c.text for c in latest] == [c.text for c in fresh] and all(c.cached for c in latest)
    assert openai_server.count() == 4


def test_cache_off_calls_every_time(openai_server, fast_client) -> None:
    pool = [spec(openai_server, "ok", 2)]
    generate(fast_client, pool, cache=None)
    generate(fast_client, pool, cache=None)
    assert openai_server.count() == 4


def test_failed_calls_are_not_cached(openai_server, fast_client, response_cache) -> None:
    pool = [spec(openai_server, "flaky")]
    assert generate(fast_client, pool, cache=response_cache)[0].error  # first request: HTTP 500
    assert len(response_cache) == 0
    second = generate(fast_client, pool, cache=response_cache)[0]
    assert second.ok and not second.cached
    third = generate(fast_client, pool, cache=response_cache)[0]
    assert third.cached and third.text == second.text
    assert openai_server.count() == 2


def test_cache_hit_needs_no_key(openai_server, fast_client, response_cache, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    remote = "https://api.example.invalid/v1"
    client = FakeModelClient(default="Cached wisdom.")
    pool = [ModelSpec("openai/gpt-x", api_base=remote, api_key="sk-once")]
    generate(client, pool, cache=response_cache)
    out = generate(client, [ModelSpec("openai/gpt-x", api_base=remote)], cache=response_cache)
    assert out[0].cached and out[0].text == "Cached wisdom."
    assert len(client.history) == 1


def test_concurrent_identical_misses_call_once(openai_server, fast_client, response_cache) -> None:
    from fusion.client import CompletionRequest

    req = CompletionRequest.from_messages("openai/slow@0.3", PROMPT.messages(), api_base=openai_server.url,
                                          timeout=5.0, num_retries=0)

    async def many() -> list:
        return await asyncio.gather(*(cached_complete(fast_client, req, cache=response_cache, sample_index=0,
                                                      api_key=KEY) for _ in range(5)))

    results = asyncio.run(many())
    assert openai_server.count() == 1
    assert len({r.text for r in results}) == 1
    assert sorted(r.cached for r in results) == [False, True, True, True, True]


def test_plan_samples_without_seed_keeps_requests_identical() -> None:
    plans = plan_samples(PROMPT, [ModelSpec("openai/a", 2), ModelSpec("openai/b")], SamplingSettings(seed=None))
    assert [p.index for p in plans] == [0, 1, 2]
    assert plans[0].request == plans[1].request and plans[0].sample_index != plans[1].sample_index
    assert plans[2].request.model == "openai/b"


def test_sampling_stops_once_two_usable_candidates_are_out_of_reach() -> None:
    from fusion.errors import ProviderError

    timeout = ProviderError("openai/a timed out after 20 s (2 attempts)", kind="timeout")
    # One call at once, 4 samples, every call failing: after the third failure only one could still
    # succeed, so the fourth is never sent.
    client = FakeModelClient(default=timeout)
    events: list[tuple[str, int]] = []
    out = generate(client, [ModelSpec("openai/a", samples=4, api_key="sk-x")], concurrency=1, min_usable=2,
                   on_event=lambda e: events.append((e.kind, e.index)))
    assert len(client.history) == 3
    assert [c.index for c in out] == [0, 1, 2, 3]
    assert all(not c.ok for c in out)
    assert out[3].error.startswith("Not sampled: 3 of 4 candidates had failed")
    assert out[3].latency_s is None  # it never took any time
    assert ("done", 3) in events and ("start", 3) not in events
    # Two calls at once, one of them hanging: once the other three have failed it is cancelled, not waited for.
    class Hanging(FakeModelClient):
        async def complete(self, request, *, api_key=None, on_token=None):
            self.history.append(request)
            if len(self.history) == 2:
                await asyncio.sleep(60)
            raise timeout

    hanging = Hanging()
    t0 = time.monotonic()
    out = generate(hanging, [ModelSpec("openai/a", samples=4, api_key="sk-x")], concurrency=2, min_usable=2)
    assert time.monotonic() - t0 < 10
    assert len(hanging.history) == 4 and not any(c.ok for c in out)
    # It had been sent (the audit saw its request arrive): stopped, not "not sampled".
    assert out[1].error.startswith("Stopped waiting for openai/a: 3 of 4"), out[1].error
    assert out[1].latency_s is not None and 0 <= out[1].latency_s < 10  # how long it was waited for
    # Without min_usable every sample is tried, and one success among failures is kept.
    client = FakeModelClient([timeout, timeout, timeout, "fine"])
    out = generate(client, [ModelSpec("openai/a", samples=4, api_key="sk-x")], concurrency=1)
    assert len(client.history) == 4 and [c.ok for c in out] == [False, False, False, True]
    # Enough can still succeed: nothing is stopped.
    client = FakeModelClient([timeout, "one", timeout, "two"])
    out = generate(client, [ModelSpec("openai/a", samples=4, api_key="sk-x")], concurrency=1, min_usable=2)
    assert [c.ok for c in out] == [False, True, False, True]

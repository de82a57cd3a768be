"""Sampling N candidates from a pool of models, concurrently, through an optional response cache.

Candidates are indexed in pool order: model 0's samples, then model 1's, and so on. A failed sample keeps
its slot as a :class:`Candidate` with ``error`` set; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Sequence

from fusion.client import Completion, CompletionRequest, ModelClient, ResponseCache, TokenCallback, maybe_await
from fusion.errors import FusionError, NotEnoughCandidates, ProviderError
from fusion.llm import redact
from fusion.providers import key_for
from fusion.providers import required_key_env
from fusion.types import Candidate, ModelSpec, Prompt, SamplingSettings
from fusion.validate import check_pool, check_prompt

CACHE_KEY_VERSION = 1


@dataclass
class GenerationEvent:
    kind: str  # "start" | "token" | "done"
    index: int  # candidate index
    delta: str = ""  # for "token"
    candidate: Candidate | None = None  # for "done" (ok or failed)


EventCallback = Callable[[GenerationEvent], Any]


def cache_key(request: CompletionRequest, sample_index: int) -> str:
    """sha256 of what identifies one sampled answer: model, api_base, messages, sampling settings and the
    sample index (N identical requests must give N entries). Timeout, retries and the key are left out."""
    payload = {"v": CACHE_KEY_VERSION, **request.cache_fields(), "sample_index": int(sample_index)}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@contextlib.asynccontextmanager
async def _held(cache: ResponseCache, key: str) -> AsyncIterator[None]:
    """Hold ``cache.lock(key)``, whether the cache gives an async or a plain context manager."""
    lock = cache.lock(key)
    if hasattr(lock, "__aenter__"):
        async with lock:
            yield
    else:
        with lock:
            yield


async def cached_complete(
    client: ModelClient,
    request: CompletionRequest,
    *,
    cache: ResponseCache | None = None,
    sample_index: int = 0,
    regenerate: bool = False,
    api_key: str | None = None,
    on_token: TokenCallback | None = None,
) -> Completion:
    """``client.complete`` through the cache.

    A hit returns the stored answer with ``cached=True`` and passes its whole text to ``on_token`` at once.
    ``regenerate`` skips the read but stores the fresh answer. Concurrent identical misses call the model
    once: the others wait on the cache's lock and then read what the first stored. Failed calls and empty
    answers are not stored.
    """
    if cache is None:
        return await client.complete(request, api_key=api_key, on_token=on_token)
    key = cache_key(request, sample_index)
    if not regenerate:
        hit = _read(cache, key)
        if hit is not None:
            return await _serve(hit, on_token)
    async with _held(cache, key):
        if not regenerate:
            hit = _read(cache, key)
            if hit is not None:
                return await _serve(hit, on_token)
        completion = await client.complete(request, api_key=api_key, on_token=on_token)
        if completion.text.strip():
            cache.set(key, completion)
        return completion


def _read(cache: ResponseCache, key: str) -> Completion | None:
    hit = cache.get(key)
    if hit is None:
        return None
    hit.cached = True
    return hit


async def _serve(hit: Completion, on_token: TokenCallback | None) -> Completion:
    if on_token is not None and hit.text:
        await maybe_await(on_token(hit.text))
    return hit


class _CallbackError(Exception):
    """An ``on_event`` callback raised: that is the caller's error and must reach the caller, not be
    recorded as a failed sample."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class _NoKeyClient:
    """Stands in for the real client when no key exists: a cache hit is still served, a miss fails clearly
    without sending anything."""

    def __init__(self, message: str) -> None:
        self.message = message

    async def complete(self, request: CompletionRequest, *, api_key: str | None = None,
                       on_token: TokenCallback | None = None) -> Completion:
        raise ProviderError(self.message, kind="auth")


@dataclass(frozen=True)
class SamplePlan:
    index: int  # candidate index in the run
    spec: ModelSpec
    sample_index: int  # k-th sample of its model
    request: CompletionRequest


def plan_samples(prompt: Prompt, pool: Sequence[ModelSpec], settings: SamplingSettings) -> list[SamplePlan]:
    """One request per sample, in pool order. With a seed, sample k of a model uses ``seed + k`` so the
    samples differ from each other and each is reproducible."""
    plans: list[SamplePlan] = []
    for spec in pool:
        for k in range(spec.samples):
            request = CompletionRequest.from_messages(
                spec.model,
                prompt.messages(),
                temperature=settings.temperature,
                top_p=settings.top_p,
                max_tokens=settings.max_tokens,
                seed=None if settings.seed is None else settings.seed + k,
                api_base=spec.api_base,
                timeout=settings.timeout,
                num_retries=settings.num_retries,
            )
            plans.append(SamplePlan(len(plans), spec, k, request))
    return plans


async def generate_candidates(
    prompt: Prompt,
    pool: Sequence[ModelSpec],
    settings: SamplingSettings,
    *,
    client: ModelClient,
    cache: ResponseCache | None = None,
    regenerate: bool = False,
    concurrency: int = 8,
    stream: bool = True,
    on_event: EventCallback | None = None,
    min_usable: int = 0,
) -> list[Candidate]:
    """Sample every model of the pool ``spec.samples`` times, at most ``concurrency`` calls at once.

    Events (sync or async callables): "start" when a sample's call begins, "token" per streamed delta (the
    whole text as one token when not streaming or served from the cache), "done" with the finished or
    failed candidate. An exception raised by ``on_event`` cancels the remaining samples and propagates.

    ``min_usable``: once so many samples have failed that fewer than this many could still succeed, the
    rest are cancelled (each gets a "done" event and an error saying so) rather than waited for: with a
    hanging server and a few calls at once, waiting out every wave would only confirm the failure.
    """
    check_prompt(prompt.text)
    pool = check_pool(pool)
    plans = plan_samples(prompt, pool, settings)
    semaphore = asyncio.Semaphore(max(1, int(concurrency)))
    # spec.api_key is a key given for that spec's base by whoever chose it; otherwise the operator's key goes
    # only where fusion.keys allows (the provider's own endpoint, a listed base), else a placeholder.
    keys = {id(spec): key_for(spec.model, spec.api_base, typed_key=spec.api_key) for spec in pool}

    async def emit(event: GenerationEvent) -> None:
        if on_event is None:
            return
        try:
            await maybe_await(on_event(event))
        except Exception as exc:
            raise _CallbackError(exc) from exc

    failures = 0

    def hopeless() -> bool:
        return len(plans) - failures < min_usable

    # When each sent sample's call began: stopping one of those is "stopped waiting", after so long, not
    # "not sampled".
    sent_at: dict[int, float] = {}

    def stopped(plan: SamplePlan) -> Candidate:
        began = sent_at.get(plan.index)
        what = "Not sampled" if began is None else f"Stopped waiting for {plan.spec.model}"
        return _failed(plan, f"{what}: {failures} of {len(plans)} candidates had failed, so the "
                             f"{min_usable} usable ones a run needs were out of reach.",
                       None if began is None else time.perf_counter() - began)

    async def one(plan: SamplePlan) -> Candidate:
        nonlocal failures
        async with semaphore:
            if hopeless():  # decided while this sample waited for its turn: send nothing
                candidate = stopped(plan)
                await emit(GenerationEvent("done", plan.index, candidate=candidate))
                return candidate
            await emit(GenerationEvent("start", plan.index))
            started = sent_at[plan.index] = time.perf_counter()
            api_key = keys[id(plan.spec)]
            use: ModelClient = client
            if api_key is None and (envs := required_key_env(plan.spec.model, plan.spec.api_base)):
                use = _NoKeyClient(
                    f"No API key for {plan.spec.model}: set {envs[0]} (in the environment or in "
                    f".streamlit/secrets.toml)."
                )

            async def on_token(delta: str) -> None:
                await emit(GenerationEvent("token", plan.index, delta=delta))

            try:
                completion = await cached_complete(
                    use,
                    plan.request,
                    cache=cache,
                    sample_index=plan.sample_index,
                    regenerate=regenerate,
                    api_key=api_key,
                    on_token=on_token if stream else None,
                )
            except _CallbackError:
                raise
            except FusionError as exc:
                candidate = _failed(plan, str(exc), time.perf_counter() - started)
            except Exception as exc:  # a bug in a provider library must not sink the other samples
                detail = redact(" ".join(str(exc).split())[:200], api_key)
                candidate = _failed(plan, f"{plan.spec.model} failed unexpectedly: {type(exc).__name__}: {detail}",
                                    time.perf_counter() - started)
            else:
                if not stream and completion.text:
                    await emit(GenerationEvent("token", plan.index, delta=completion.text))
                candidate = Candidate(
                    index=plan.index,
                    text=completion.text,
                    model=plan.spec.model,
                    sample_index=plan.sample_index,
                    latency_s=completion.latency_s,
                    prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens,
                    error=None if completion.text.strip() else f"{plan.spec.model} returned an empty answer.",
                    cached=completion.cached,
                )
            failures += not candidate.ok
            await emit(GenerationEvent("done", plan.index, candidate=candidate))
            return candidate

    tasks = {asyncio.create_task(one(plan)): plan for plan in plans}
    results: list[Candidate] = []
    try:
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            results.extend(task.result() for task in done)
            if pending and hopeless():  # samples in flight: cancel them rather than wait out their timeouts
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                for task in sorted(pending, key=lambda t: tasks[t].index):
                    candidate = stopped(tasks[task])
                    results.append(candidate)
                    await emit(GenerationEvent("done", candidate.index, candidate=candidate))
                break
    except BaseException as exc:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if isinstance(exc, _CallbackError):
            raise exc.original from None
        raise
    return sorted(results, key=lambda c: c.index)


def _failed(plan: SamplePlan, message: str, elapsed: float | None) -> Candidate:
    return Candidate(
        index=plan.index,
        text="",
        model=plan.spec.model,
        sample_index=plan.sample_index,
        latency_s=elapsed,
        error=message,
    )


def require_usable(candidates: Sequence[Candidate], minimum: int = 2) -> list[Candidate]:
    """The usable candidates, or ``NotEnoughCandidates`` saying how many failed and why."""
    usable = [c for c in candidates if c.ok]
    if len(usable) >= minimum:
        return usable
    failures: dict[str, list[Candidate]] = {}
    for c in candidates:
        if not c.ok:
            failures.setdefault(c.error or f"{c.model} returned an empty answer.", []).append(c)
    parts = []
    for message, group in failures.items():
        numbers = ", ".join(str(c.index + 1) for c in group)
        label = f"Candidate {numbers}" if len(group) == 1 else f"Candidates {numbers}"
        parts.append(f"{label}: {message}")
    head = (
        f"Only {len(usable)} of {len(candidates)} candidates succeeded; at least {minimum} "
        f"{'is' if minimum == 1 else 'are'} needed to compare or fuse."
    )
    raise NotEnoughCandidates(head + (" " + " ".join(parts) if parts else ""))

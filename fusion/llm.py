"""The real model client: any model litellm reaches (openai/..., anthropic/..., cohere/..., ollama/..., or
openai/<name> with ``api_base`` for any OpenAI-compatible server).

litellm is imported inside the call, never at module import: importing it costs several seconds and the
offline paths must not pay that. Retries are ours, not litellm's or the openai SDK's (both are switched off),
so one call makes at most ``1 + request.num_retries`` requests and every failure ends as one
:class:`~fusion.errors.ProviderError` with a one-line message for the person at the screen.

``request.timeout`` bounds every role's wait (candidates, judge, fusor) the same way: an attempt fails when
the answer (or, streaming, its first chunk or the next one) takes longer than that. A timeout is retried
once at most: a server that hung through the whole limit twice is not coming back while a person waits,
so a hanging server costs at most two timeouts plus one backoff.

Keys: the key passed in is sent as is; with none, a call to a base URL carries
:data:`~fusion.keys.PLACEHOLDER_KEY`, never whatever litellm would find in the environment (see
:mod:`fusion.keys` for who chooses the key).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from fusion.client import Completion, CompletionRequest, TokenCallback, maybe_await
from fusion.errors import ProviderError
from fusion.keys import PLACEHOLDER_KEY
from fusion.providers import provider_of, required_key_env

# Kept under its old name for callers and tests written before every base URL got the placeholder.
LOCAL_PLACEHOLDER_KEY = PLACEHOLDER_KEY

# A timeout is retried this many times at most, whatever ``num_retries`` says (see the module docstring).
TIMEOUT_RETRIES = 1

# A stream that keeps sending is given this many times its timeout in all: a server trickling a token
# just inside the timeout must not hold the page forever.
STREAM_TOTAL_FACTOR = 10

_configured = False
_warmed = False
# The warm-up in progress, per event loop: every call that arrives meanwhile waits for it (see _warm_up).
_warming: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()


def _litellm() -> Any:
    global _configured
    import litellm  # deferred: ~7 s import

    if not _configured:
        litellm.suppress_debug_info = True
        logging.getLogger("LiteLLM").setLevel(logging.ERROR)
        # Our deadline can cancel acompletion after it made its streaming coroutine and before it awaited
        # it; Python then prints a warning on stderr at garbage collection, in the middle of the CLI's one
        # clear line. The cancellation is ours and reported as a timeout, so the warning says nothing.
        warnings.filterwarnings(
            "ignore", message=r"coroutine 'OpenAIChatCompletion\.\w+' was never awaited", category=RuntimeWarning
        )
        _configured = True
    return litellm


async def _warm_up(litellm: Any) -> None:
    """Make litellm's first call in this process once, offline (``mock_response``), before any deadline runs.

    The first real call imports some 65 more modules (about 0.8 s here, several seconds on a loaded
    machine); inside an attempt that time would count against the person's timeout. Calls that start
    together (a run's N candidates) all wait for the one warm-up: the imports block the event loop, and a
    call already timing its attempt would count them as the server's silence.
    """
    if _warmed:
        return
    loop = asyncio.get_running_loop()
    task = _warming.get(loop)
    if task is None:
        task = _warming[loop] = loop.create_task(_warm_once(litellm))
    await asyncio.shield(task)  # a caller that is cancelled leaves the warm-up to the others


async def _warm_once(litellm: Any) -> None:
    global _warmed
    messages = [{"role": "user", "content": "warm-up"}]
    try:
        await litellm.acompletion(model="openai/warm-up", messages=messages, mock_response="ok", api_key="x")
        stream = await litellm.acompletion(
            model="openai/warm-up", messages=messages, mock_response="ok", api_key="x", stream=True
        )
        async for _ in stream:
            pass
    except Exception:  # noqa: BLE001 - only a speed-up; the real call reports its own failures
        logging.getLogger("fusion.llm").debug("litellm warm-up failed", exc_info=True)
    _warmed = True


@dataclass
class _Failure:
    kind: str  # ProviderError.kind
    status: int | None
    retryable: bool
    detail: str = ""
    retry_after: float | None = None


class _AttemptFailed(Exception):
    """Wraps what litellm raised during one attempt, so exceptions from callbacks are never mistaken
    for provider failures (they propagate untouched)."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class LiteLLMClient:
    """``ModelClient`` on litellm with our own retry loop.

    ``backoff_base`` / ``backoff_max``: exponential backoff between attempts (``base * 2**k`` seconds,
    capped, with jitter in [50 %, 100 %]). ``retry_after_cap``: the longest ``Retry-After`` honoured.
    ``sleep`` is injectable so tests can record the delays instead of waiting them.

    Streaming happens when ``on_token`` is given. ``Completion.latency_s`` is the wall time of the whole
    call, retries and backoff included: what the person waited.
    """

    def __init__(
        self,
        *,
        backoff_base: float = 1.0,
        backoff_max: float = 20.0,
        retry_after_cap: float = 30.0,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_cap = retry_after_cap
        self._sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()

    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_cap))
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return ceiling * (0.5 + 0.5 * self._rng.random())

    async def complete(
        self,
        request: CompletionRequest,
        *,
        api_key: str | None = None,
        on_token: TokenCallback | None = None,
    ) -> Completion:
        if request.api_base:
            from fusion.errors import InputError
            from fusion.validate import check_api_base

            try:
                check_api_base(request.api_base)
            except InputError as exc:  # before litellm, which would report it as a server error, 3 times
                raise ProviderError(str(exc), kind="bad_request") from None
        litellm = _litellm()
        await _warm_up(litellm)
        attempts = 1 + max(0, int(request.num_retries))
        started = time.perf_counter()
        timeouts = 0
        for attempt in range(attempts):
            state = _AttemptState()
            try:
                # Our own deadline, moved on by each streamed chunk (see _Deadline); litellm's timeout is
                # per socket read and misses a server that trickles.
                async with asyncio.timeout(None) as scope:
                    state.deadline = _Deadline(scope, request.timeout)
                    await self._attempt(litellm, request, api_key, on_token, state)
            except TimeoutError:
                timeouts += 1
                failure = _Failure("timeout", None, timeouts <= TIMEOUT_RETRIES)
            except _AttemptFailed as exc:
                failure = classify(exc.original)
            else:
                return Completion(
                    text="".join(state.parts),
                    model=request.model,
                    latency_s=time.perf_counter() - started,
                    prompt_tokens=state.usage[0],
                    completion_tokens=state.usage[1],
                )
            last = attempt == attempts - 1
            # Tokens already shown cannot be taken back, so a stream that broke midway is not retried.
            if not failure.retryable or last or state.emitted:
                raise ProviderError(
                    failure_message(failure, request, attempts=attempt + 1, emitted=state.emitted, key=api_key),
                    kind=_PUBLIC_KIND.get(failure.kind, failure.kind),
                    status=failure.status,
                ) from None  # the provider's own exception may quote the key; keep it out of tracebacks
            await self._sleep(self.backoff_delay(attempt, failure.retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        litellm: Any,
        request: CompletionRequest,
        api_key: str | None,
        on_token: TokenCallback | None,
        state: _AttemptState,
    ) -> None:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": request.message_dicts(),
            "timeout": request.timeout,
            "num_retries": 0,
            "max_retries": 0,
            "drop_params": True,  # e.g. temperature on models that refuse it: drop, don't fail
        }
        for name in ("temperature", "top_p", "max_tokens", "seed", "api_base"):
            value = getattr(request, name)
            if value is not None:
                kwargs[name] = value
        if request.response_format:
            kwargs["response_format"] = {"type": request.response_format}
        if api_key:
            kwargs["api_key"] = api_key
        elif request.api_base:
            # Without an explicit key litellm would take the provider's key from the environment and
            # send it to this base URL, which may be anyone's server.
            kwargs["api_key"] = PLACEHOLDER_KEY
        if on_token is None:
            try:
                response = await litellm.acompletion(**kwargs)
                text, state.usage = _read_response(response)
            except Exception as exc:
                raise _AttemptFailed(exc) from exc
            state.parts.append(text)
            return
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        try:
            stream = await litellm.acompletion(**kwargs)
            iterator = stream.__aiter__()
        except Exception as exc:
            raise _AttemptFailed(exc) from exc
        while True:
            try:
                chunk = await iterator.__anext__()
                delta, usage, spoke = _read_chunk(chunk)
            except StopAsyncIteration:
                if not state.spoke:
                    # litellm turns a 200 whose body is no event stream (an HTML error page, plain JSON)
                    # into a single finish chunk it makes up itself: nothing came from the server.
                    raise _AttemptFailed(_MalformedError("the stream carried no chat completion chunk")) from None
                return
            except Exception as exc:
                raise _AttemptFailed(exc) from exc
            state.deadline.progress()
            state.spoke = state.spoke or spoke or usage != (None, None)
            if usage != (None, None):
                state.usage = usage
            if delta:
                state.parts.append(delta)
                state.emitted += len(delta)
                # Outside the try above: an exception from the caller's callback is not a provider failure.
                await maybe_await(on_token(delta))


class _Deadline:
    """When the attempt in ``scope`` gives up: ``timeout`` seconds from its start, moved on to ``timeout``
    after each streamed chunk, but never past ``STREAM_TOTAL_FACTOR`` timeouts from the start."""

    def __init__(self, scope: asyncio.Timeout, timeout: float | None) -> None:
        self.scope = scope
        self.timeout = timeout or None
        self.loop = asyncio.get_running_loop()
        if self.timeout:
            now = self.loop.time()
            self.last = now + STREAM_TOTAL_FACTOR * self.timeout
            scope.reschedule(now + self.timeout)

    def progress(self) -> None:
        if self.timeout:
            self.scope.reschedule(min(self.loop.time() + self.timeout, self.last))


@dataclass
class _AttemptState:
    parts: list[str] = field(default_factory=list)
    emitted: int = 0  # characters already passed to on_token
    usage: tuple[int | None, int | None] = (None, None)
    spoke: bool = False  # a chunk carried a role, content or usage: the server did send a stream
    deadline: Any = None  # the attempt's _Deadline


# Internal kinds folded into the ones ProviderError documents.
_PUBLIC_KIND = {"unknown_model": "not_found", "stream": "server", "connection": "server",
                "context_window": "bad_request"}


def _read_response(response: Any) -> tuple[str, tuple[int | None, int | None]]:
    choices = getattr(response, "choices", None)
    if not choices:
        raise _MalformedError("no choices in the response")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None) if message is not None else None
    if content is not None and not isinstance(content, str):
        raise _MalformedError("the message content is not text")
    return content or "", _usage(getattr(response, "usage", None))


def _read_chunk(chunk: Any) -> tuple[str, tuple[int | None, int | None], bool]:
    """The chunk's text, its usage, and whether it carried anything from the server (a role or text)."""
    delta_text = ""
    spoke = False
    choices = getattr(chunk, "choices", None) or []
    if choices:
        delta = getattr(choices[0], "delta", None)
        content = getattr(delta, "content", None) if delta is not None else None
        if isinstance(content, str):
            delta_text = content
        spoke = content is not None or getattr(delta, "role", None) is not None
    return delta_text, _usage(getattr(chunk, "usage", None)), spoke


def _usage(usage: Any) -> tuple[int | None, int | None]:
    if usage is None:
        return None, None

    def _int(name: str) -> int | None:
        value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return _int("prompt_tokens"), _int("completion_tokens")


class _MalformedError(Exception):
    """The provider answered, but not with a usable chat completion."""


# --- classifying failures ------------------------------------------------------------------------------


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        out.append(cur)
        nxt = getattr(cur, "original_exception", None)
        cur = nxt if isinstance(nxt, BaseException) and id(nxt) not in seen else (cur.__cause__ or cur.__context__)
    return out


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def classify(exc: BaseException) -> _Failure:
    """What kind of failure ``exc`` (raised by litellm, openai, httpx or aiohttp) is, and whether to retry.

    Classes are matched by name along the exception chain so this module never imports litellm.
    """
    chain = _chain(exc)
    names = set().union(*(_names(e) for e in chain))
    status = next((s for e in chain if isinstance(s := getattr(e, "status_code", None), int)), None)
    detail = _detail(exc)
    low = " ".join(str(e) for e in chain).lower()

    # The order matters: litellm reports a non-JSON body as HTTP 500 and a dropped connection as
    # InternalServerError, so look at the cause before the status.
    if any(isinstance(e, (json.JSONDecodeError, _MalformedError)) for e in chain) or (
        "empty or invalid response from llm endpoint" in low  # litellm's words for a 200 that is not JSON
    ):
        return _Failure("malformed", None, False, detail)
    if "LiteLLMUnknownProvider" in names or "llm provider not provided" in low:
        return _Failure("unknown_model", None, False, detail)
    if names & {"Timeout", "APITimeoutError", "TimeoutError", "TimeoutException", "ReadTimeout",
                "ConnectTimeout", "ServerTimeoutError"} or status == 408:
        return _Failure("timeout", 408 if status == 408 else None, True, detail)
    if "stream ended before" in low:
        return _Failure("stream", None, True, detail)
    if names & {"RateLimitError"} or status == 429:
        return _Failure("rate_limit", 429, True, detail, _retry_after(chain))
    if names & {"ContextWindowExceededError"}:
        return _Failure("context_window", status or 400, False, detail)
    if _MISSING_KEY.search(low):
        return _Failure("auth", None, False, detail)  # no key at all: nothing was sent
    if names & {"AuthenticationError", "PermissionDeniedError"} or status in (401, 403):
        return _Failure("auth", status or 401, False, detail)
    if names & {"NotFoundError"} or status == 404:
        return _Failure("not_found", 404, False, detail)
    if names & {"APIConnectionError", "ConnectError", "ReadError", "RemoteProtocolError",
                "ServerDisconnectedError", "ClientConnectorError", "ClientOSError", "ConnectionError"}:
        return _Failure("connection", None, True, detail)
    if status is not None and status >= 500:
        return _Failure("server", status, True, detail, _retry_after(chain))
    if names & {"BadRequestError", "UnprocessableEntityError", "UnsupportedParamsError"} or (
        status is not None and 400 <= status < 500
    ):
        return _Failure("bad_request", status or 400, False, detail)
    return _Failure("error", status, False, detail)


_MISSING_KEY = re.compile(r"missing (?:[\w-]+ )?(?:api key|credentials)|api_key client option must be set")


def _retry_after(chain: list[BaseException]) -> float | None:
    for e in chain:
        for headers in (getattr(getattr(e, "response", None), "headers", None),
                        getattr(e, "litellm_response_headers", None)):
            if not headers:
                continue
            try:
                ms = headers.get("retry-after-ms")
                if ms is not None:
                    return float(ms) / 1000.0
                value = headers.get("retry-after")
            except Exception:
                continue
            if value is None:
                continue
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value) if value else None
                if when is not None:
                    return max(0.0, when.timestamp() - time.time())
    return None


_PREFIX = re.compile(r"^\s*(?:litellm\.)?[A-Za-z]*(?:Error|Exception)\s*(?::|-)\s*")


def _detail(exc: BaseException) -> str:
    """The provider's own words, without litellm's layered class-name prefixes; one line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for _ in range(5):
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    text = re.sub(r"\s*Original exception:.*$", "", text)
    return text.strip()


def redact(text: str, key: str | None) -> str:
    """``text`` without ``key`` and without anything shaped like an API key."""
    if key and len(key) >= 4:
        text = text.replace(key, "[key]")
    # Whatever the source, never echo anything shaped like a key.
    return re.sub(r"\b(sk|key|pk|rk|gsk|xai|csk)[-_][A-Za-z0-9_\-]{8,}", r"\1-…", text)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _secs(timeout: float | None) -> str:
    return f"{timeout:g} s" if timeout else "the provider's time limit"


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def failure_message(
    failure: _Failure, request: CompletionRequest, *, attempts: int, emitted: int = 0, key: str | None = None
) -> str:
    """One human line; never contains the key."""
    model = request.model
    detail = _short(redact(failure.detail, key))
    kind = failure.kind
    after = f" after {_attempts(attempts)}" if attempts > 1 else ""
    if emitted and kind in ("timeout", "stream", "connection", "server", "malformed", "error"):
        reason = {
            "timeout": f"timed out after {_secs(request.timeout)}",
            "stream": "the connection closed early",
            "connection": "the connection dropped",
        }.get(kind, detail or kind)
        msg = f"The answer from {model} broke off after {emitted:,} characters: {reason}."
    elif kind == "rate_limit":
        msg = f"Rate limited by {model}{after}."
    elif kind == "timeout":
        msg = f"Timed out after {_secs(request.timeout)} waiting for {model}" + (
            f" ({_attempts(attempts)})." if attempts > 1 else "."
        )
    elif kind == "server":
        code = f" (HTTP {failure.status})" if failure.status else ""
        msg = f"{model} returned a server error{code}{after}."
    elif kind == "stream":
        msg = f"The answer from {model} broke off before it was complete{after}."
    elif kind == "connection":
        where = f" at {request.api_base}" if request.api_base else ""
        msg = f"Could not reach {model}{where}{after}: the connection failed."
    elif kind == "malformed":
        msg = f"The server returned a malformed response for {model}."
    elif kind == "unknown_model":
        msg = (f"Unknown model '{model}': litellm needs a provider prefix such as openai/... "
               f"(for example openai/{model}, anthropic/{model} or ollama/{model}).")
    elif kind == "auth":
        envs = required_key_env(model, request.api_base)
        hint = f" Check {envs[0]}." if envs else " Check the API key."
        if failure.status == 403:
            msg = f"{model} refused access (HTTP 403): the key may lack permission for this model.{hint}"
        elif failure.status is None:
            msg = f"No API key for {model}.{hint.replace('Check', 'Set')}"
        else:
            msg = f"{model} rejected the API key (HTTP {failure.status}).{hint}"
    elif kind == "not_found":
        where = f" at {request.api_base}" if request.api_base else f" by {provider_of(model) or 'the provider'}"
        msg = f"Model '{model}' was not found{where} (HTTP 404). Check the model name."
    elif kind == "context_window":
        msg = f"The prompt is too long for {model}'s context window."
    elif kind == "bad_request":
        msg = f"{model} refused the request (HTTP {failure.status or 400})" + (f": {detail}" if detail else ".")
    else:
        msg = f"{model} failed: {detail or 'unknown error'}"
    return redact(" ".join(msg.split()), key)

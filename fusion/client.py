"""The model-client seam: every model call in the engine goes through a :class:`ModelClient`.

The real client (:class:`fusion.llm.LiteLLMClient`) talks to any model litellm reaches; tests use a fake
client or a local OpenAI-compatible server. Keys travel beside the request, never inside it, because a
request is hashed into cache keys and may be logged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable, Protocol

TokenCallback = Callable[[str], Any]  # receives each streamed text delta; may return an awaitable


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs; a tuple so the request is hashable
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    api_base: str | None = None
    timeout: float = 20.0  # fusion.types.DEFAULT_TIMEOUT_S (not imported: the types import nothing of this)
    num_retries: int = 2
    # "json_object": ask for structured output where the provider supports it (litellm drops it elsewhere).
    response_format: str | None = None

    @staticmethod
    def from_messages(model: str, messages: list[dict[str, str]], **kwargs: Any) -> CompletionRequest:
        return CompletionRequest(model=model, messages=tuple((m["role"], m["content"]) for m in messages), **kwargs)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def cache_fields(self) -> dict[str, Any]:
        """What identifies the answer: everything but transport settings (timeout, retries)."""
        d = asdict(self)
        d.pop("timeout")
        d.pop("num_retries")
        if d.get("response_format") is None:
            d.pop("response_format", None)  # so requests made before the field existed keep their cache keys
        d["messages"] = [list(m) for m in self.messages]
        return d


@dataclass
class Completion:
    text: str
    model: str
    latency_s: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached: bool = False


class ModelClient(Protocol):
    async def complete(
        self,
        request: CompletionRequest,
        *,
        api_key: str | None = None,
        on_token: TokenCallback | None = None,
    ) -> Completion:
        """Run one completion. Stream through ``on_token`` when given. Raise ``ProviderError`` on failure."""
        ...


class ResponseCache(Protocol):
    """What the engine needs from a cache (``storage.cache.DiskResponseCache`` implements it)."""

    def get(self, key: str) -> Completion | None: ...

    def set(self, key: str, value: Completion) -> None: ...

    def lock(self, key: str) -> Any:
        """A context manager held while a miss is computed, so concurrent identical misses call once.

        Preferably an async context manager (waiting must not block the event loop; the disk cache's is);
        a plain one is accepted too."""
        ...


async def maybe_await(value: Any) -> Any:
    if isinstance(value, Awaitable):
        return await value
    return value

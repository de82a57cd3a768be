"""A fake model client for unit tests: answers from a queue and records every request it saw.

Generation tests go through litellm against a real local HTTP server instead (see ``openai_server``);
this fake is for code that only needs *a* client, such as the judge selector and the LLM fusor.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable

from fusion.client import Completion, CompletionRequest, TokenCallback, maybe_await

Reply = str | Completion | BaseException | Callable[[CompletionRequest], Any]


class FakeModelClient:
    def __init__(self, replies: Iterable[Reply] = (), *, default: Reply | None = None, delay: float = 0.0) -> None:
        self.queue: list[Reply] = list(replies)
        self.default = default
        self.delay = delay
        self.history: list[CompletionRequest] = []
        self.keys_seen: list[str | None] = []

    async def complete(
        self,
        request: CompletionRequest,
        *,
        api_key: str | None = None,
        on_token: TokenCallback | None = None,
    ) -> Completion:
        self.history.append(request)
        self.keys_seen.append(api_key)
        if self.queue:
            reply = self.queue.pop(0)
        elif self.default is not None:
            reply = self.default
        else:
            raise AssertionError(f"FakeModelClient has no reply left for request to {request.model}")
        if callable(reply) and not isinstance(reply, BaseException):
            reply = reply(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(reply, BaseException):
            raise reply
        completion = reply if isinstance(reply, Completion) else Completion(text=str(reply), model=request.model, latency_s=0.0)
        if on_token is not None:
            for piece in _pieces(completion.text):
                await maybe_await(on_token(piece))
        return completion


def _pieces(text: str) -> list[str]:
    """Split text into stream-like deltas that concatenate back to it exactly."""
    out, cur = [], ""
    for ch in text:
        cur += ch
        if ch.isspace():
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out

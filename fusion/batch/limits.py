"""Rate limits for a batch: :class:`RateLimiter` spaces out starts evenly; :class:`RateLimitedClient` puts
one in front of every model call."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fusion.client import Completion, CompletionRequest, ModelClient, TokenCallback
from fusion.errors import InputError


class RateLimiter:
    """At most ``rate`` starts per second, evenly spaced (no bursts): start k happens no earlier than
    ``first + k / rate``. ``clock`` and ``sleep`` are injectable for tests."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise InputError(f"The rate limit must be a positive number per second; got {rate!r}.")
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    async def acquire(self) -> float:
        """Wait for the next slot; returns the slot's time on ``clock``."""
        now = self._clock()
        # Reserve before awaiting: the read and the write happen in one step of the event loop, so two
        # tasks never get the same slot.
        slot = now if self._next is None else max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)
        return slot


class RateLimitedClient:
    """A :class:`ModelClient` that waits for ``limiter`` before every call. Cache hits never reach the
    client, so they cost nothing; retries inside the wrapped client are not counted separately."""

    def __init__(self, inner: ModelClient, limiter: RateLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    async def complete(
        self,
        request: CompletionRequest,
        *,
        api_key: str | None = None,
        on_token: TokenCallback | None = None,
    ) -> Completion:
        await self.limiter.acquire()
        return await self.inner.complete(request, api_key=api_key, on_token=on_token)

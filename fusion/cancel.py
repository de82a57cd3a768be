"""Stop model calls nobody is waiting for any more.

A run's calls are awaited inside one coroutine; when its user goes away (the browser tab closed, or a new
run replaced this one) the calls should end too, or a hanging server keeps receiving requests minutes
later. :func:`until_stopped` runs the coroutine as a task and asks ``should_stop`` a few times a second;
when it says yes, the task is cancelled, which closes the HTTP connections of the calls in flight (the
server sees the client go) and skips the ones not yet sent.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

from fusion.errors import FusionError

T = TypeVar("T")
POLL_S = 0.25


class Abandoned(FusionError):
    """The run was stopped because nobody waits for it any more."""


async def until_stopped(work: Awaitable[T], should_stop: Callable[[], bool], *, poll: float = POLL_S) -> T:
    """Await ``work`` unless ``should_stop()`` turns true first; then cancel it and raise :class:`Abandoned`."""
    task: asyncio.Future[Any] = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll)
            if done:
                return task.result()
            if should_stop():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                raise Abandoned("The run was stopped: the page that asked for it was closed or started another run.")
    finally:
        if not task.done():
            task.cancel()

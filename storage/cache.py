"""The response cache: model answers on disk (diskcache, i.e. SQLite), keyed by what was asked.

Off = pass ``cache=None`` to the engine. Only successful, non-empty answers are stored (see
``fusion.generate.cached_complete``); the value holds the answer text and its figures, never a key.

Concurrent identical misses call the model once. Within a process an ``asyncio.Lock`` per (event loop,
key) makes the other tasks wait without polling; across threads and processes a lock entry in the cache
itself does the same (diskcache's ``Lock`` protocol: an atomic ``add`` of ``"lock:" + key``, released by
deleting it), polled with ``asyncio.sleep`` so the event loop never blocks. The lock entry expires, so a
process that dies while holding it delays the others at most ``lock_expire`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

from fusion.client import Completion, CompletionRequest
from fusion.generate import cache_key as _cache_key

__all__ = ["DiskResponseCache", "cache_key", "default_cache_dir"]

_VALUE_VERSION = 1
_LOCK_PREFIX = "lock:"


def cache_key(request: CompletionRequest, sample_index: int) -> str:
    """sha256 of model, api_base, messages, sampling settings and sample index; never the API key."""
    return _cache_key(request, sample_index)


def default_cache_dir() -> Path:
    """``$FUSION_CACHE_DIR`` if set, else ``<repo>/.cache/responses``."""
    env = os.environ.get("FUSION_CACHE_DIR")
    if env and env.strip():
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1] / ".cache" / "responses"


class DiskResponseCache:
    """Implements ``fusion.client.ResponseCache`` on a diskcache directory; safe to share between
    threads (Streamlit sessions) and processes."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        size_limit: int = 2**30,
        lock_expire: float = 900.0,
        lock_poll: float = 0.02,
    ) -> None:
        import diskcache

        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(self.directory), size_limit=size_limit)
        self.lock_expire = lock_expire
        self.lock_poll = lock_poll
        self._guard = threading.Lock()
        self._local: dict[tuple[int, str], list[Any]] = {}  # (id(loop), key) -> [asyncio.Lock, holders]

    # --- ResponseCache ----------------------------------------------------------------------------------
    def get(self, key: str) -> Completion | None:
        value = self._cache.get(key)
        if not isinstance(value, dict) or value.get("v") != _VALUE_VERSION:
            return None  # absent, a lock entry, or written by an incompatible version
        try:
            return Completion(
                text=str(value["text"]),
                model=str(value["model"]),
                latency_s=float(value["latency_s"]),
                prompt_tokens=value.get("prompt_tokens"),
                completion_tokens=value.get("completion_tokens"),
                cached=True,
            )
        except (KeyError, TypeError, ValueError):
            return None

    def set(self, key: str, value: Completion) -> None:
        if key.startswith(_LOCK_PREFIX):
            raise ValueError("cache keys must not start with 'lock:'")
        # Plain types only: the cache stays readable if Completion changes, and nothing else slips in.
        self._cache.set(key, {
            "v": _VALUE_VERSION,
            "text": value.text,
            "model": value.model,
            "latency_s": float(value.latency_s),
            "prompt_tokens": value.prompt_tokens,
            "completion_tokens": value.completion_tokens,
            "stored_at": time.time(),
        })

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """Held while a miss is computed: first the in-process lock, then the cross-process one."""
        loop_id = id(asyncio.get_running_loop())
        slot = (loop_id, key)
        with self._guard:
            entry = self._local.get(slot)
            if entry is None:
                entry = self._local[slot] = [asyncio.Lock(), 0]
            entry[1] += 1
        local: asyncio.Lock = entry[0]
        try:
            async with local:
                token = await self._acquire_shared(key)
                try:
                    yield
                finally:
                    self._release_shared(key, token)
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0 and self._local.get(slot) is entry:
                    del self._local[slot]

    # --- cross-process lock -----------------------------------------------------------------------------
    async def _acquire_shared(self, key: str) -> str | None:
        """Take ``lock:<key>``; give up after ``lock_expire`` (then compute anyway: a duplicate call is
        better than waiting forever)."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.lock_expire
        delay = min(0.005, self.lock_poll)
        while True:
            if self._cache.add(_LOCK_PREFIX + key, token, expire=self.lock_expire, retry=True):
                return token
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(delay)
            delay = min(self.lock_poll, delay * 2)

    def _release_shared(self, key: str, token: str | None) -> None:
        if token is None:
            return
        with self._cache.transact(retry=True):
            # Only our own entry: after an expiry another holder may own the lock now.
            if self._cache.get(_LOCK_PREFIX + key) == token:
                self._cache.delete(_LOCK_PREFIX + key, retry=True)

    # --- housekeeping -------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Stored answers (lock entries aside)."""
        return sum(1 for k in self._cache.iterkeys() if not str(k).startswith(_LOCK_PREFIX))

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def delete(self, key: str) -> bool:
        return bool(self._cache.delete(key, retry=True))

    def clear(self) -> int:
        return int(self._cache.clear(retry=True))

    def volume(self) -> int:
        """Bytes on disk."""
        return int(self._cache.volume())

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> DiskResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The response cache: model answers on disk (diskcache, i.e. SQLite), keyed by what was asked.

Off = pass ``cache=None`` to the engine. Only successful, non-empty answers are stored (see
``fusion.generate.cached_complete``); the value holds the answer text and its figures, never a key.

Concurrent identical misses call the model once. Within a process an ``asyncio.Lock`` per (event loop,
key) makes the other tasks wait without polling; across threads and processes a lock entry in the cache
itself does the same (an atomic ``add`` of ``"lock:" + key``, released by deleting it), polled with
``asyncio.sleep`` so the event loop never blocks.

A lock dies with its holder. The entry names the process that holds it (host, pid and the pid's start
time, so a reused pid is not mistaken for the holder); a waiter on the same host that finds the holder gone
(SIGKILL, SIGTERM, a crash) takes the lock over at once. Behind that, the entry is a short lease
(``lock_expire``) that the holder renews while its call runs, so even a holder on another host that
shares the directory frees it within one lease. A wait that lasts is reported through ``on_wait`` (the CLI's
progress line shows it) or, with no hook, on stderr through ``logging``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from fusion.client import Completion, CompletionRequest
from fusion.generate import cache_key as _cache_key

__all__ = ["DiskResponseCache", "LockWait", "cache_key", "default_cache_dir"]

_VALUE_VERSION = 1
_LOCK_PREFIX = "lock:"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockWait:
    """One report about a wait on another holder's lock.

    ``kind``: "waiting" (still waiting, repeated about once a second after ``wait_notice``), "acquired"
    (a reported wait ended), "stale" (the holder was dead and its lock was taken over), "gave_up" (waited
    ``lock_wait_max``; the call goes ahead anyway)."""

    kind: str
    key: str
    holder_pid: int | None
    waited_s: float


LockWaitCallback = Callable[[LockWait], Any]


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
        lock_expire: float = 30.0,
        lock_poll: float = 0.02,
        lock_wait_max: float = 900.0,
        wait_notice: float = 0.5,
        on_wait: LockWaitCallback | None = None,
    ) -> None:
        """``lock_expire``: the lease of a lock entry in seconds, renewed every third of it while held.
        ``lock_wait_max``: how long to wait for a live holder before calling anyway. ``wait_notice``: a wait
        shorter than this is not reported. ``on_wait``: receives :class:`LockWait` reports (may be set
        later, e.g. once a progress bar exists); called on the waiting task's event loop."""
        import diskcache

        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(self.directory), size_limit=size_limit)
        self.lock_expire = lock_expire
        self.lock_poll = lock_poll
        self.lock_wait_max = lock_wait_max
        self.wait_notice = wait_notice
        self.on_wait = on_wait
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
                mine = await self._acquire_shared(key)
                renewer = asyncio.create_task(self._renew(key, mine)) if mine is not None else None
                try:
                    yield
                finally:
                    if renewer is not None:
                        renewer.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await renewer
                    self._release_shared(key, mine)
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0 and self._local.get(slot) is entry:
                    del self._local[slot]

    # --- cross-process lock -----------------------------------------------------------------------------
    async def _acquire_shared(self, key: str) -> dict[str, Any] | None:
        """Take ``lock:<key>``. A lock whose holder has died is taken over at once; a live holder is
        waited for (visibly, see ``on_wait``) up to ``lock_wait_max`` seconds, after which the call goes
        ahead anyway: a duplicate call is better than waiting forever."""
        name = _LOCK_PREFIX + key
        mine = {**_holder_identity(), "token": uuid.uuid4().hex}
        started = time.monotonic()
        delay = min(0.005, self.lock_poll)
        next_notice = started + self.wait_notice
        holder: Any = None
        reported = False  # a "waiting" report went out, so its end is reported too
        while True:
            if self._cache.add(name, mine, expire=self.lock_expire, retry=True):
                if reported:
                    self._notify(LockWait("acquired", key, _pid_of(holder), time.monotonic() - started))
                return mine
            holder = self._cache.get(name, retry=True)
            if holder is not None and not _holder_alive(holder):
                if self._take_over(name, holder):
                    self._notify(LockWait("stale", key, _pid_of(holder), time.monotonic() - started))
                await asyncio.sleep(0)
                continue  # the entry is gone (or someone else replaced it): try to add again at once
            now = time.monotonic()
            if now - started >= self.lock_wait_max:
                self._notify(LockWait("gave_up", key, _pid_of(holder), now - started))
                return None
            if now >= next_notice:
                self._notify(LockWait("waiting", key, _pid_of(holder), now - started))
                reported = True
                next_notice = now + 1.0
            await asyncio.sleep(delay)
            delay = min(self.lock_poll, delay * 2)

    def _take_over(self, name: str, holder: Any) -> bool:
        """Delete a dead holder's entry, unless it changed meanwhile (a live process may have won it)."""
        with self._cache.transact(retry=True):
            if self._cache.get(name) == holder:
                return bool(self._cache.delete(name, retry=True))
        return False

    async def _renew(self, key: str, mine: dict[str, Any]) -> None:
        """Keep the lease alive while the call runs. If the entry is no longer ours (it expired while this
        event loop was blocked and another process took it), stop: that one holds the lock now."""
        name = _LOCK_PREFIX + key
        while True:
            await asyncio.sleep(self.lock_expire / 3)
            with self._cache.transact(retry=True):
                if self._cache.get(name) != mine:
                    return
                self._cache.touch(name, expire=self.lock_expire, retry=True)

    def _release_shared(self, key: str, mine: dict[str, Any] | None) -> None:
        if mine is None:
            return
        with self._cache.transact(retry=True):
            # Only our own entry: after an expiry another holder may own the lock now.
            if self._cache.get(_LOCK_PREFIX + key) == mine:
                self._cache.delete(_LOCK_PREFIX + key, retry=True)

    def _notify(self, event: LockWait) -> None:
        if self.on_wait is not None:
            self.on_wait(event)
            return
        # No progress display wired in: say it on stderr (logging's last-resort handler) rather than wait
        # in silence.
        if event.kind == "stale":
            _log.warning("took over a response-cache lock left by process %s, which is no longer running",
                         event.holder_pid or "?")
        elif event.kind == "waiting" and event.waited_s < self.wait_notice + 1.0:
            _log.warning("waiting for process %s, which is computing the same request (cache lock)",
                         event.holder_pid or "?")
        elif event.kind == "gave_up":
            _log.warning("gave up waiting for process %s after %.0f s; calling the model anyway",
                         event.holder_pid or "?", event.waited_s)

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


# --- who holds a lock -----------------------------------------------------------------------------------
def _host_id() -> str:
    """The hostname, plus the boot id where Linux gives one: after a reboot every old holder is dead."""
    boot = ""
    with contextlib.suppress(OSError):
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return f"{socket.gethostname()}/{boot}"


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a process from Linux's /proc, or None where unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()  # the command name in parentheses may contain spaces
    if len(fields) < 20:
        return None
    return fields[0], fields[19]


_HOST = _host_id()


def _holder_identity() -> dict[str, Any]:
    pid = os.getpid()
    stat = _proc_stat(pid)
    return {"host": _HOST, "pid": pid, "started": stat[1] if stat else None}


def _pid_of(holder: Any) -> int | None:
    pid = holder.get("pid") if isinstance(holder, dict) else None
    return pid if isinstance(pid, int) else None


def _holder_alive(holder: Any) -> bool:
    """False only when the holder is known to be gone; a holder on another host counts as alive (its lease
    expires instead)."""
    if not isinstance(holder, dict):
        # A bare token, written by an earlier version of this module: its holder cannot be checked, and a
        # duplicate call costs less than the 15 minutes such an entry used to hold.
        return False
    pid = _pid_of(holder)
    if holder.get("host") != _HOST or pid is None:
        return True
    if pid == os.getpid():
        return True  # another thread or cache object of this process
    if os.name == "nt":
        return True  # os.kill(pid, 0) would send CTRL_C there; the lease alone frees the lock
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return True
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return holder.get("started") is None or holder.get("started") == started

"""How much heavy offline work one server process does at once.

A visitor may paste 8 candidates of up to 200,000 characters; the offline method then works for seconds
and holds hundreds of megabytes. :class:`WorkQueue` lets at most ``limit`` such runs work at once (by
default one per core); the others wait their turn, first come first served, and learn how many runs are
ahead of them, so that a page can say "waiting for 2 others". Small runs (:func:`is_heavy` false) never
wait: the queue is for the inputs that could starve the others' pages.

Pure threading, no Streamlit: the app wires it into its offline path, the CLI runs one record at a time
and needs none.
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import os
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

# Candidates of more characters than this in all make a run heavy (8 answers of ~800 words are ~40,000).
HEAVY_CHARS = 100_000
# How often a waiting run reports its place in the queue (seconds).
REPORT_EVERY = 0.5


def is_heavy(texts: Sequence[str], *, threshold: int = HEAVY_CHARS) -> bool:
    """Whether fusing these candidates offline is heavy enough to queue (more than ``threshold``
    characters in all)."""
    return sum(len(t) for t in texts) > threshold


def default_limit() -> int:
    """Heavy runs at once: ``FUSION_HEAVY_RUNS`` when set to a positive integer, else one per core."""
    raw = os.environ.get("FUSION_HEAVY_RUNS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return max(1, os.cpu_count() or 1)


class WorkQueue:
    """At most ``limit`` holders of a slot at once; the others wait in arrival order.

    ``with queue.slot(on_wait=...)`` blocks until the caller's turn. While it waits, ``on_wait(ahead)``
    is called with the number of runs ahead of it (working or queued before it) at once and then at
    least every :data:`REPORT_EVERY` seconds, so a page can show it, and a page whose visitor left can
    raise out of the wait (the caller then leaves the queue; nobody waits behind a gone visitor).
    Thread-safe; one instance per process.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a work queue needs a limit of at least 1; got {limit}")
        self.limit = limit
        self._cond = threading.Condition()
        self._working = 0
        self._waiting: list[int] = []  # tickets in arrival order
        self._tickets = itertools.count()

    @property
    def working(self) -> int:
        with self._cond:
            return self._working

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def _ahead(self, ticket: int) -> int:
        return self._working + self._waiting.index(ticket)

    @contextmanager
    def slot(self, *, on_wait: Callable[[int], object] | None = None) -> Iterator[None]:
        ticket = next(self._tickets)
        with self._cond:
            self._waiting.append(ticket)
        entered = False
        try:
            while True:
                with self._cond:
                    if self._waiting[0] == ticket and self._working < self.limit:
                        self._waiting.pop(0)
                        self._working += 1
                        entered = True
                        self._cond.notify_all()  # the next in line may fit under the limit too
                        break
                    ahead = self._ahead(ticket)
                # The callback runs outside the lock: it may draw on a page, or raise to give up.
                if on_wait is not None:
                    on_wait(ahead)
                with self._cond:
                    if not (self._waiting[0] == ticket and self._working < self.limit):
                        self._cond.wait(REPORT_EVERY)
            yield
        finally:
            with self._cond:
                if entered:
                    self._working -= 1
                elif ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._cond.notify_all()
            if entered:
                release_memory()


def release_memory() -> None:
    """Give what a heavy run used back to the system: collect cycles, then ask glibc's allocator to
    return its free pages (without this, a process that fused 8 x 150,000 characters keeps its peak
    size after the run, though Python has freed everything). A no-op where there is no glibc."""
    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


_SHARED: WorkQueue | None = None
_SHARED_LOCK = threading.Lock()


def shared_queue() -> WorkQueue:
    """The process's queue for heavy offline runs (made on first use with :func:`default_limit`)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = WorkQueue(default_limit())
        return _SHARED


def waiting_message(ahead: int) -> str:
    """What a waiting page says: "Waiting for 1 other run ..." / "Waiting for 3 other runs ..."."""
    runs = "run" if ahead == 1 else "runs"
    return f"Waiting for {ahead} other {runs} with large inputs to finish ..."

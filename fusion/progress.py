"""Progress on stderr for the CLI: a per-candidate status board for live runs and a counting bar for
batch work. Plain text, so it stays readable when stderr is a log file rather than a terminal.

Both take the response cache's lock reports (``storage.cache.LockWait``, passed to their ``lock_wait``
method, e.g. ``cache.on_wait = bar.lock_wait``), so a wait on another process's call shows instead of a bar
that stands still."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from fusion.types import Candidate


class CandidateProgress:
    """Prints one line per candidate event: started, finished (with latency and tokens) or failed."""

    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.done = 0
        self.failed = 0
        self.t0 = time.monotonic()
        self._waits: dict[str, float] = {}  # key -> waited seconds last printed

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        if event.kind == "start":
            self._line(f"  candidate {event.index + 1}/{self.total}: generating")
        elif event.kind == "done" and event.candidate is not None:
            self.done += 1
            c: Candidate = event.candidate
            if c.error:
                self.failed += 1
                self._line(f"  candidate {c.index + 1}/{self.total}: FAILED - {c.error}")
            else:
                extra = []
                if c.latency_s is not None:
                    extra.append(f"{c.latency_s:.1f} s")
                if c.completion_tokens:
                    extra.append(f"{c.completion_tokens} tokens")
                if c.cached:
                    extra.append("cached")
                detail = f" ({', '.join(extra)})" if extra else ""
                self._line(f"  candidate {c.index + 1}/{self.total}: done{detail}  [{self.done}/{self.total}]")

    def stage(self, event: Any) -> None:
        if not self.quiet and event.message:
            self._line(f"{event.message} ...")

    def lock_wait(self, event: Any) -> None:
        """One line when a wait starts (then every 10 s), when it ends, and for a dead holder's lock."""
        if self.quiet:
            return
        if event.kind == "waiting":
            first = event.key not in self._waits
            last = self._waits.get(event.key, 0.0)
            if first or event.waited_s - last >= 10.0:
                self._waits[event.key] = event.waited_s
                self._line(f"  waiting for {_holder(event)}, which is computing the same request "
                           f"({event.waited_s:.0f} s)")
        elif event.kind == "acquired":
            if self._waits.pop(event.key, None) is not None:
                self._line(f"  done waiting ({event.waited_s:.0f} s)")
        elif event.kind == "stale":
            self._line(f"  took over a lock left by {_holder(event)}, which is no longer running")
        elif event.kind == "gave_up":
            self._waits.pop(event.key, None)
            self._line(f"  gave up waiting for {_holder(event)} after {event.waited_s:.0f} s; calling anyway")

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class CountBar:
    """A bar with counts and failures. Redraws in place on a terminal, prints sparse lines otherwise."""

    def __init__(self, total: int, label: str = "", stream: TextIO | None = None, quiet: bool = False) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.ok = 0
        self.failed = 0
        self.skipped = 0
        self.elsewhere = 0  # done by other workers of a shared batch job
        self.t0 = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_print = 0.0
        self._finished = False
        self._waits: dict[str, Any] = {}  # key -> the latest "waiting" report for it
        self.stale_locks = 0

    @property
    def count(self) -> int:
        return self.ok + self.failed + self.skipped + self.elsewhere

    def advance(self, *, ok: bool = True, skipped: bool = False, elsewhere: bool = False) -> None:
        if elsewhere:
            self.elsewhere += 1
        elif skipped:
            self.skipped += 1
        elif ok:
            self.ok += 1
        else:
            self.failed += 1
        self.draw()

    def lock_wait(self, event: Any) -> None:
        """Show waits on other processes' calls in the bar (``storage.cache.LockWait`` reports)."""
        started = False
        if event.kind == "waiting":
            started = event.key not in self._waits
            self._waits[event.key] = event
        else:
            self._waits.pop(event.key, None)
            if event.kind == "stale":
                self.stale_locks += 1
        # The start of a wait and a taken-over lock are news: print them even between sparse lines.
        self.draw(force=started or event.kind == "stale")

    @property
    def status(self) -> str:
        """What the bar adds about locks: current waits and dead holders' locks taken over."""
        parts = []
        if self._waits:
            longest = max(self._waits.values(), key=lambda e: e.waited_s)
            pids = sorted({e.holder_pid for e in self._waits.values() if e.holder_pid is not None})
            who = f"pid {', '.join(map(str, pids))}" if pids else "another process"
            count = len(self._waits)
            what = "1 call" if count == 1 else f"{count} calls"
            parts.append(f"waiting on {what} of {who} {longest.waited_s:.0f} s")
        if self.stale_locks:
            parts.append(f"took over {self.stale_locks} stale lock{'' if self.stale_locks == 1 else 's'}")
        return "  ".join(parts)

    def draw(self, final: bool = False, force: bool = False) -> None:
        if self.quiet or self._finished:
            return
        now = time.monotonic()
        # Off a terminal, a line per item would flood logs of big batches: print at most every 2 s.
        if (not self._tty and not final and not force and self.count < self.total
                and now - self._last_print < 2.0):
            return
        self._last_print = now
        width = 30
        filled = int(width * self.count / self.total) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        elapsed = now - self.t0
        parts = [f"{self.label} [{bar}] {self.count}/{self.total}", f"ok {self.ok}", f"failed {self.failed}"]
        if self.skipped:
            parts.append(f"skipped {self.skipped}")
        if self.elsewhere:
            parts.append(f"taken by other workers: {self.elsewhere}")
        parts.append(f"{elapsed:.0f} s")
        if self.status:
            parts.append(self.status)
        text = "  ".join(parts)
        if final or self.count >= self.total:
            self._finished = True
        if self._tty:
            end = "\n" if final or self.count >= self.total else ""
            # Clear to the end of the line: a status that went away must not leave its tail behind.
            print("\r" + text + "\x1b[K", end=end, file=self.stream, flush=True)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        self.draw(final=True)


def _holder(event: Any) -> str:
    return f"process {event.holder_pid}" if event.holder_pid is not None else "another process"

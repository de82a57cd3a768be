"""Progress on stderr for the CLI: a per-candidate status board for live runs and a counting bar for
batch work. Plain text, so it stays readable when stderr is a log file rather than a terminal."""

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

    def draw(self, final: bool = False) -> None:
        if self.quiet or self._finished:
            return
        now = time.monotonic()
        # Off a terminal, a line per item would flood logs of big batches: print at most every 2 s.
        if not self._tty and not final and self.count < self.total and now - self._last_print < 2.0:
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
        text = "  ".join(parts)
        if final or self.count >= self.total:
            self._finished = True
        if self._tty:
            end = "\n" if final or self.count >= self.total else ""
            print("\r" + text, end=end, file=self.stream, flush=True)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        self.draw(final=True)

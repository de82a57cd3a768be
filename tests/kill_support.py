"""Killing a command midway, for the tests that check what a resume finds after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Callable


def sigkill_when(proc: subprocess.Popen, ready: Callable[[], bool], *, within: float) -> None:
    """SIGKILL ``proc`` once ``ready()`` holds (polled every 50 ms for up to ``within`` seconds) and reap it.
    Fails when the process ended first: the kill would then prove nothing. The process is reaped, and its
    stderr pipe closed, whatever happens."""
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.05)
        assert proc.poll() is None, "the batch ended before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

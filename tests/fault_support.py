"""What the three fault matrices of issue 12 share (tests/test_fault_matrix.py: the engine API and CLI
``run``; test_fault_matrix_batch.py: ``batch``; test_fault_matrix_app.py: the app's live mode): the faults,
the roles, the scripted server in its own process, the time bound and the checks on a message."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROLES = ("candidate", "judge", "fusor")
# Seconds per attempt: short, but not so short that a busy machine trips it on a good reply (at 2 s, ten
# CLI processes starting at once on two loaded cores timed out on their first good requests).
TIMEOUT = 5.0
# Two retries, as the CLI's default: with one, a loaded machine sometimes let a first attempt time out before
# the server had read it, so the retry was the request the flaky server fails ("HTTP 500 after 2 attempts").
RETRIES = 2
GOOD = {"candidate": "ok", "judge": "judge", "fusor": "fusor"}


@dataclass(frozen=True)
class Fault:
    name: str
    models: dict[str, str]  # role -> the server behaviour that plays this fault ("" = the good one)
    says: tuple[str, ...]  # the message names the fault with one of these (empty: the call recovers)
    refused: bool = False  # the role's base URL is a port nobody listens on


def _same(model: str) -> dict[str, str]:
    return {role: model for role in ROLES}


FAULTS = {
    "429": Fault("429", _same("rate-limited"), ("Rate limited",)),
    "500": Fault("500", _same("error500"), ("server error (HTTP 500)",)),
    "503": Fault("503", _same("error503"), ("server error (HTTP 503)",)),
    "refused": Fault("refused", {}, ("Could not reach",), refused=True),
    # far longer than any bound below: a client that ignored its timeout could not pass
    "hang": Fault("hang", _same("hang@120"), (f"Timed out after {TIMEOUT:g} s",)),
    "malformed": Fault("malformed", _same("html"), ("malformed response",)),
    # streamed, a stream that ends with no choice and no finish reason reads as broken off
    "empty choices": Fault("empty choices", _same("empty"), ("malformed response", "broke off before it was complete")),
    # the candidates and the app's fusor stream (broke off); the CLI's judge and fusor do not (connection)
    "stream cut": Fault("stream cut", _same("cut"), ("broke off", "Could not reach")),
    "flaky": Fault("flaky", {"candidate": "flaky", "judge": "flaky-judge", "fusor": "flaky-fusor"}, ()),
}
NAMES = list(FAULTS)


def one_line(message: str | None) -> str:
    assert message, "a failure without a message"
    assert "\n" not in message and "Traceback" not in message, message
    return message


def names_fault(message: str | None, fault: Fault) -> None:
    one_line(message)
    assert any(s in message for s in fault.says), f"{fault.name}: {message!r} says none of {fault.says}"


class Server:
    """tests/openai_server.py in its own process (a server thread inside this busy test process stalled
    good streams for seconds), never reset: the flaky behaviours count requests per body."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "openai_server.py"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("READY "), "tests/openai_server.py did not start"
        self.url = line.split(None, 1)[1].strip()

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/_stats", timeout=10) as resp:  # noqa: S310 - our localhost
            return json.load(resp)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def closed_base() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def model_for(fault: Fault | None, role: str) -> str:
    behaviour = fault.models.get(role) if fault is not None else None
    return "openai/" + (behaviour or GOOD[role])


def base_for(fault: Fault | None, role: str, server: Server, closed: str) -> str:
    return closed if fault is not None and fault.refused else server.url


def bound(stages: int = 2) -> float:
    """Longest a run may take: per stage two attempts and a backoff, plus slack for a loaded machine
    (ten CLI runs at once on two shared cores took up to 47 s with a bound of 32 s, all of it
    after their last model call)."""
    return stages * ((1 + RETRIES) * TIMEOUT + 1.0) + 30.0


@dataclass
class Launched:
    """A command of ours as a subprocess against its own scripted server, waited for on a thread."""

    faults: dict[str, str | None]  # role -> fault name (None: that role is good)
    server: Server  # this run's own server: its log is this run's requests
    proc: subprocess.Popen[str]
    out: str = ""
    err: str = ""
    ended: float | None = None  # time.time() when the process exited: the clock of the server's started_at
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread(target=self._wait, daemon=True).start()

    def _wait(self) -> None:
        self.out, self.err = self.proc.communicate()
        self.ended = time.time()
        self.done.set()

    @property
    def code(self) -> int | None:
        return self.proc.returncode

    def wait(self, deadline: float) -> Launched:
        if not self.done.wait(max(0.0, deadline - time.monotonic())):
            self.proc.kill()
            self.done.wait(10)
            pytest.fail(f"{self.proc.args[2:4]} with faults {self.faults} was still running at its deadline")
        return self

    def working_seconds(self) -> float:
        """From this run's first request until the process ended: the run's own time, without the
        seconds its start spent importing litellm on a busy machine."""
        starts = self.server.stats()["started_at"]
        assert starts, f"{self.proc.args[2:4]} with faults {self.faults} sent no request to the server"
        assert self.ended is not None
        return self.ended - min(starts)

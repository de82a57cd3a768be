"""A local OpenAI-compatible chat server for tests, benchmarks and browser runs (stdlib only).

It answers ``POST .../chat/completions`` (any path prefix, so ``api_base`` may be ``http://host:port/v1``),
plain or streamed (``"stream": true``: ``text/event-stream``, ``data: {chunk}`` lines, ``data: [DONE]``,
then the connection closes). ``GET /health`` answers ``ok``; ``GET /v1/models`` lists the behaviours.

Behaviour is chosen by the model name the client sends (litellm strips the ``openai/`` prefix, so a test
asks for ``openai/ok``, ``openai/slow@0.5`` ...). A suffix ``@SECONDS`` sets the latency (delay before
the first byte) of that request; without it the server's default latency applies (``--latency``, or the
env var ``FAKE_OPENAI_LATENCY``, else 0).

=============  ==============================================================================================
``ok``         A deterministic answer built from a bank of sentences about the prompt's topic words. Varies
               with ``seed`` (and, without a seed, with how many times the same body was seen before) so N
               samples differ and the same seed gives the same text.
``slow``       ``ok`` with 0.5 s latency unless a suffix says otherwise.
``echo``       Replies with the last user message, verbatim.
``judge``      A one-line rationale, then ``Score: N`` (1..10), N derived from the last user message, so
               different candidates get different scores.
``fusor``      Copies sentences from the candidates found in the prompt (``<candidate ...>...</candidate>``
               blocks, else ``Candidate N:`` / ``[N]`` headed sections), taking them in turn from each
               candidate, so span attribution has something to find.
``rate-limited`` Always HTTP 429 with ``Retry-After: 1``.
``flaky``      The first request with a given body gets HTTP 500, later identical ones get ``ok``.
``flaky429``   Same with HTTP 429 (``Retry-After: 0``).
``flaky-judge``, ``flaky-fusor``: the first request with a given body gets HTTP 500, later identical ones
               behave like ``judge`` / ``fusor`` (a judge or fusor that recovers on retry).
``error500``   Always HTTP 500.   ``error503``: always 503.   ``error400``: always 400.   ``auth``: always
               401.   ``notfound``: 404.
``malformed``  HTTP 200 with a body that is not JSON (streamed: a ``data:`` line that is not JSON).
``html``       HTTP 200 with an HTML page, streamed or not (no event stream at all): what a misconfigured
               proxy or a login page sends.
``empty``      HTTP 200 with ``"choices": []`` (streamed: one chunk with no choices, then ``[DONE]``).
``hang``       Sleeps 60 s (or the suffix) before answering: past any sensible client timeout.
``stall``      Streamed: sends half the chunks of an ``ok`` answer, then hangs. Plain: like ``hang``.
``cut``        Streamed: sends half the chunks, then closes the connection (no finish_reason, no [DONE]).
               Plain: closes the connection without an answer.
``cued-ROLE``  ROLE is candidate, judge or fusor. Behaves as the prompt asks with a cue anywhere in the
               messages, ``[[cue candidate=hang@120 judge=error500]]``: the behaviour named for ROLE, else
               ROLE's good one (``ok``, ``judge``, ``fusor``). One process (a batch) can then give every
               line its own fault at its own role, since the judge and the fusor see the user's prompt.
=============  ==============================================================================================

Any other model name behaves like ``ok``.

In-process use (the ``openai_server`` pytest fixture in conftest.py wraps this)::

    server = FakeOpenAIServer().start()
    server.url                      # "http://127.0.0.1:PORT/v1"
    server.requests                 # log: dicts with path, headers, body, model, started, ended
    server.authorizations()         # the Authorization header of every request, in order (None if absent)
    server.url_for("myhost")        # the api_base under another host name that reaches this server
    server.max_in_flight            # the largest number of requests seen in progress at once
    server.queue(Reply(status=429, headers={"Retry-After": "0"}), "ok")   # next replies, in order
    server.set_handler(lambda body: Reply(text="hi"))                      # used when the queue is empty
    server.reset(); server.stop()

Subprocess use (browser and app tests)::

    python tests/openai_server.py --port 0 [--host 127.0.0.1] [--latency 0.2]

prints ``READY http://127.0.0.1:PORT/v1`` on stdout once it accepts connections. From another process,
``GET <url>/_stats`` returns ``{"requests", "in_flight", "max_in_flight", "models"}`` and
``POST <url>/_reset`` clears the log (the counterparts of ``.requests``, ``.max_in_flight`` and ``.reset()``);
the stats also list the ``authorization`` header of every request (``null`` when absent) and when each
began (``started_at``, seconds since the epoch).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Union

BEHAVIOURS = (
    "ok", "slow", "echo", "judge", "fusor", "rate-limited", "flaky", "flaky429", "flaky-judge", "flaky-fusor",
    "error500", "error503", "error400",
    "auth", "notfound", "malformed", "html", "empty", "hang", "stall", "cut",
    "cued-candidate", "cued-judge", "cued-fusor",
)
_CUE = re.compile(r"\[\[cue((?:\s+[a-z]+=[\w@.-]+)+)\s*\]\]")
_CUED_GOOD = {"candidate": "ok", "judge": "judge", "fusor": "fusor"}


@dataclass
class Reply:
    """One scripted answer. ``text=None`` means "what the model's behaviour would say"."""

    status: int = 200
    text: str | None = None
    raw: bytes | None = None  # a literal body (for malformed replies); streamed, it goes in one data: line
    raw_as_is: bool = False  # streamed too, send ``raw`` as the whole body, not as a data: line
    content_type: str = "application/json"  # of a ``raw`` body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the first byte
    error: str | None = None  # message of an error body (status >= 400)
    cut_after: int | None = None  # streaming: drop the connection after this many chunks
    stall_after: int | None = None  # streaming: after this many chunks, sleep ``stall`` seconds
    stall: float = 0.0
    chunk_delay: float = 0.0  # streaming: seconds between chunks (a slow, steady model)
    close: bool = False  # drop the connection without answering


Script = Union[Reply, str, Callable[[dict[str, Any]], Union[Reply, str]]]

_STOP = {
    "the", "and", "for", "with", "that", "this", "what", "which", "when", "where", "your", "about", "from",
    "into", "than", "then", "them", "they", "have", "does", "should", "would", "could", "there", "their",
    "explain", "describe", "write", "give", "tell", "please", "some", "more", "most", "very", "how", "why",
    "short", "brief", "answer", "question", "sentences", "sentence", "words", "using", "make", "just",
}

_BANK = (
    "{A} is best understood by looking at how it relates to {B}.",
    "A common mistake is to treat {A} and {B} as the same thing.",
    "In practice, {B} depends heavily on the context in which {A} appears.",
    "Most experts agree that {A} matters more than people expect.",
    "One useful way to think about {C} is as a trade-off between cost and benefit.",
    "The history of {A} shows that {C} changed slowly over many years.",
    "If you only remember one thing, remember that {B} shapes {A}.",
    "There are at least three factors at play: {A}, {B} and {C}.",
    "Small changes in {C} can have large effects on {A}.",
    "A simple example makes {B} much easier to see.",
    "Critics argue that the importance of {C} is often overstated.",
    "Measured carefully, {A} turns out to be fairly predictable.",
    "The key question is not whether {B} exists but how strong it is.",
    "Beginners should start with {A} before moving on to {C}.",
    "Over time, {B} tends to reinforce {A}.",
    "Nobody fully understands {C} yet, but the evidence is growing.",
)

_CANDIDATE_BLOCK = re.compile(r"<candidate\b[^>]*>(.*?)</candidate>", re.S | re.I)
_CANDIDATE_HEAD = re.compile(r"^\s*(?:#+\s*)?(?:\[\d+\]|candidate\s*\d+\s*[:.)\]-]?)\s*", re.I | re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def _last_user(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def cued(body: dict[str, Any], role: str) -> str:
    """The behaviour a ``[[cue ...]]`` in the messages names for ``role``, else the role's good one."""
    for m in body.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        text = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict)) if isinstance(
            content, list) else str(content or "")
        for found in _CUE.finditer(text):
            pairs = dict(pair.split("=", 1) for pair in found.group(1).split())
            if role in pairs:
                return pairs[role]
    return _CUED_GOOD.get(role, "ok")


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text)


def topic_words(text: str, k: int = 3) -> list[str]:
    seen: list[str] = []
    for w in _words(text.lower()):
        if len(w) >= 4 and w not in _STOP and w not in seen:
            seen.append(w)
    for filler in ("the topic", "the context", "the details"):
        if len(seen) >= k:
            break
        seen.append(filler)
    return seen[:k]


def ok_text(prompt: str, variant: str) -> str:
    """3-5 sentences about the prompt's topic words; ``variant`` picks which."""
    rng = random.Random(f"{variant}|{prompt}")
    words = topic_words(prompt)
    a, b, c = words[0], words[1], words[2]
    picks = rng.sample(range(len(_BANK)), rng.randint(3, 5))
    sentences = [_BANK[i].format(A=a, B=b, C=c) for i in picks]
    return " ".join(s[0].upper() + s[1:] for s in sentences)


def judge_text(prompt: str) -> str:
    digest = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
    score = 1 + digest % 10
    return f"The answer is {'clear and mostly correct' if score > 5 else 'vague in places'}.\nScore: {score}"


def candidates_in(prompt: str) -> list[str]:
    blocks = [b.strip() for b in _CANDIDATE_BLOCK.findall(prompt)]
    if blocks:
        return [b for b in blocks if b]
    heads = list(_CANDIDATE_HEAD.finditer(prompt))
    out = []
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(prompt)
        piece = prompt[m.end():end].strip()
        if piece:
            out.append(piece)
    return out


def fusor_text(prompt: str, max_sentences: int = 6) -> str:
    cands = candidates_in(prompt)
    if not cands:
        return ok_text(prompt, "fusor")
    split = [[s.strip() for s in _SENTENCE_END.split(c) if s.strip()] for c in cands]
    picked: list[str] = []
    for r in range(max(len(s) for s in split)):
        for sentences in split:
            if r < len(sentences) and sentences[r] not in picked:
                picked.append(sentences[r])
            if len(picked) >= max_sentences:
                return " ".join(picked)
    return " ".join(picked)


def _pieces(text: str) -> list[str]:
    """Word-sized deltas that concatenate back to ``text``."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def parse_model(model: str) -> tuple[str, float | None]:
    name = model.split("/")[-1]
    if "@" in name:
        name, _, lat = name.partition("@")
        try:
            return name, float(lat)
        except ValueError:
            return name, None
    return name, None


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 128  # a burst of 32 concurrent samples must not be refused
    daemon_threads = True


class FakeOpenAIServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, latency: float | None = None) -> None:
        self.host = host
        self.port = port
        self.default_latency = float(os.environ.get("FAKE_OPENAI_LATENCY", "0")) if latency is None else latency
        self.hang_seconds = 60.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # --- control -------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def reset(self) -> None:
        with self._lock:
            # Requests still running from before the reset (a "hang" the client gave up on) must not
            # count against the new in-flight figures.
            self._generation = getattr(self, "_generation", 0) + 1
            self.requests: list[dict[str, Any]] = []
            self._queue: list[Script] = []
            self._handler: Callable[[dict[str, Any]], Reply | str] | None = None
            self._seen: dict[str, int] = {}
            self.in_flight = 0
            self.max_in_flight = 0

    def queue(self, *replies: Script) -> None:
        with self._lock:
            self._queue.extend(replies)

    def set_handler(self, handler: Callable[[dict[str, Any]], Reply | str] | None) -> None:
        with self._lock:
            self._handler = handler

    def url_for(self, host: str) -> str:
        """The api_base under another name for this machine (the server must listen where it resolves)."""
        return f"http://{host}:{self.port}/v1"

    def authorizations(self) -> list[str | None]:
        with self._lock:
            return [r["headers"].get("authorization") for r in self.requests]

    def count(self, model: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if model is None or r["model"] == model)

    def start(self) -> FakeOpenAIServer:
        server = self

        class Handler(_Handler):
            owner = server

        httpd = _HTTPServer((self.host, self.port), Handler)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._stop.clear()
        self._thread = threading.Thread(target=httpd.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes sleeping "hang" handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- behaviour -----------------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)

    def _next_script(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            script: Script | None = self._queue.pop(0) if self._queue else self._handler
        if script is None:
            return self._behaviour(str(body.get("model", "ok")), body)
        if callable(script) and not isinstance(script, (Reply, str)):
            script = script(body)
        if isinstance(script, str):
            return self._behaviour(script, body)
        return script

    def _body_key(self, body: dict[str, Any]) -> str:
        clean = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()

    def _times_seen(self, body: dict[str, Any]) -> int:
        """How many earlier requests had this body (stream flag aside)."""
        key = self._body_key(body)
        with self._lock:
            n = self._seen.get(key, 0)
            self._seen[key] = n + 1
        return n

    def _behaviour(self, model: str, body: dict[str, Any]) -> Reply:
        name, latency = parse_model(model)
        if name.startswith("cued-"):  # before counting the body: the cued behaviour counts it once
            return self._behaviour(cued(body, name[len("cued-"):]), body)
        delay = self.default_latency if latency is None else latency
        prompt = _last_user(body)
        seen = self._times_seen(body)
        variant = f"seed={body['seed']}" if body.get("seed") is not None else f"n={seen}"
        if name == "slow":
            return Reply(text=ok_text(prompt, variant), delay=0.5 if latency is None else latency)
        if name == "echo":
            return Reply(text=prompt, delay=delay)
        if name == "judge":
            return Reply(text=judge_text(prompt), delay=delay)
        if name == "fusor":
            return Reply(text=fusor_text(prompt), delay=delay)
        if name == "rate-limited":
            return Reply(status=429, headers={"Retry-After": "1"}, error="Rate limit reached", delay=delay)
        if name in ("flaky", "flaky429"):
            if seen == 0:
                if name == "flaky":
                    return Reply(status=500, error="Transient failure", delay=delay)
                return Reply(status=429, headers={"Retry-After": "0"}, error="Rate limit reached", delay=delay)
            return Reply(text=ok_text(prompt, f"seed={body.get('seed')}"), delay=delay)
        if name in ("flaky-judge", "flaky-fusor"):
            if seen == 0:
                return Reply(status=500, error="Transient failure", delay=delay)
            inner = judge_text(prompt) if name == "flaky-judge" else fusor_text(prompt)
            return Reply(text=inner, delay=delay)
        if name == "error500":
            return Reply(status=500, error="Internal server error", delay=delay)
        if name == "error503":
            return Reply(status=503, error="Service temporarily unavailable", delay=delay)
        if name == "error400":
            return Reply(status=400, error="Invalid request: 'messages' is malformed", delay=delay)
        if name == "auth":
            return Reply(status=401, error="Incorrect API key provided", delay=delay)
        if name == "notfound":
            return Reply(status=404, error=f"The model '{model}' does not exist", delay=delay)
        if name == "malformed":
            return Reply(raw=b"<html>this is not JSON", delay=delay)
        if name == "html":
            return Reply(raw=b"<html><body>Please log in</body></html>", raw_as_is=True, content_type="text/html",
                         delay=delay)
        if name == "empty":
            if body.get("stream"):
                return Reply(raw=b'{"id": "x", "object": "chat.completion.chunk", "created": 0, "choices": []}',
                             delay=delay)
            return Reply(raw=b'{"id": "x", "object": "chat.completion", "created": 0, "choices": []}', delay=delay)
        if name == "hang":
            return Reply(text="too late", delay=self.hang_seconds if latency is None else latency)
        text = ok_text(prompt, variant)
        half = max(1, len(_pieces(text)) // 2)
        if name == "stall":
            if body.get("stream"):
                return Reply(text=text, delay=delay, stall_after=half, stall=self.hang_seconds)
            return Reply(text=text, delay=self.hang_seconds if latency is None else latency)
        if name == "cut":
            if body.get("stream"):
                return Reply(text=text, delay=delay, cut_after=half)
            return Reply(close=True, delay=delay)
        return Reply(text=text, delay=delay)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the access log
        pass

    def _send(self, status: int, payload: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/_stats"):
            owner = self.owner
            with owner._lock:
                stats = {"requests": len(owner.requests), "in_flight": owner.in_flight,
                         "max_in_flight": owner.max_in_flight,
                         "models": [r["model"] for r in owner.requests],
                         "authorization": [r["headers"].get("authorization") for r in owner.requests],
                         "started_at": [r["started_at"] for r in owner.requests]}
            self._send(200, json.dumps(stats).encode())
        elif self.path.rstrip("/").endswith("/health"):
            self._send(200, b"ok", "text/plain")
        elif self.path.rstrip("/").endswith("/models"):
            data = [{"id": b, "object": "model", "owned_by": "fake"} for b in BEHAVIOURS]
            self._send(200, json.dumps({"object": "list", "data": data}).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:  # noqa: N802
        owner = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/").endswith("/_reset"):
            owner.reset()
            self._send(200, b'{"reset": true}')
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "unknown path"}}')
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError:
            self._send(400, b'{"error": {"message": "request body is not JSON"}}')
            return
        entry: dict[str, Any] = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "model": body.get("model"),
            "started": time.monotonic(),
            "started_at": time.time(),  # wall clock, comparable across processes
            "ended": None,
        }
        with owner._lock:
            generation = owner._generation
            owner.requests.append(entry)
            owner.in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
        try:
            reply = owner._next_script(body)
            owner._sleep(reply.delay)
            self._answer(reply, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout, cancellation)
        finally:
            with owner._lock:
                if generation == owner._generation:
                    owner.in_flight -= 1
                entry["ended"] = time.monotonic()

    def _answer(self, reply: Reply, body: dict[str, Any]) -> None:
        model = str(body.get("model", "ok"))
        if reply.close:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if reply.raw is not None:
            if body.get("stream") and not reply.raw_as_is:
                self._start_stream()
                self.wfile.write(b"data: " + reply.raw + b"\n\ndata: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(reply.status, reply.raw, reply.content_type, headers=reply.headers)
            return
        if reply.status >= 400:
            err = {"error": {"message": reply.error or f"HTTP {reply.status}", "type": "fake_error",
                             "code": reply.status}}
            self._send(reply.status, json.dumps(err).encode(), headers=reply.headers)
            return
        text = reply.text if reply.text is not None else ok_text(_last_user(body), "scripted")
        prompt_tokens = sum(len(_words(str(m.get("content", "")))) for m in body.get("messages") or []
                            if isinstance(m, dict))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(_words(text)),
                 "total_tokens": prompt_tokens + len(_words(text))}
        ident = "chatcmpl-fake-" + hashlib.sha1(f"{time.time_ns()}".encode()).hexdigest()[:10]
        created = int(time.time())
        if not body.get("stream"):
            payload = {
                "id": ident, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": usage,
            }
            self._send(200, json.dumps(payload).encode(), headers=reply.headers)
            return
        self._start_stream(reply.headers)
        pieces = _pieces(text)

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            c = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return b"data: " + json.dumps(c).encode() + b"\n\n"

        for i, piece in enumerate(pieces):
            if reply.cut_after is not None and i >= reply.cut_after:
                self.wfile.flush()
                self.close_connection = True
                return
            if reply.stall_after is not None and i == reply.stall_after:
                self.wfile.flush()
                self.owner._sleep(reply.stall)
            if reply.chunk_delay and i:
                self.owner._sleep(reply.chunk_delay)
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            self.wfile.write(chunk(delta, None))
            self.wfile.flush()
        self.wfile.write(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            c = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [], "usage": usage}
            self.wfile.write(b"data: " + json.dumps(c).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def _start_stream(self, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible chat server for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=None, help="default seconds before each reply")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(args.host, args.port, latency=args.latency).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(f"READY {server.url}", flush=True)
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

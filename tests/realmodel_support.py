"""Fixtures for the ``realmodel`` tests: SmolLM2-135M served by ``llama_cpp.server`` on a free local port,
behind a small counting proxy so a test can tell which prompts were sent to the model.

The model and the server come from ``tests/realmodel_setup.py`` (``make test-real`` runs its ``install``
first). These tests run only when ``FUSION_REALMODEL=1``; then a missing model or server is an error, not
a skip, so CI cannot pass without having run them.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

import realmodel_setup

ENABLED = os.environ.get("FUSION_REALMODEL") == "1"
SKIP_REASON = "real-model tests run with `make test-real` (FUSION_REALMODEL=1): they need a local llama server"
MODEL = f"openai/{realmodel_setup.MODEL_ALIAS}"
MAX_TOKENS = 128

# Headers that describe one hop, not the message (RFC 9110 section 7.6.1); the proxy sets its own.
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection", "te",
        "trailer", "upgrade"}


@dataclass
class CountingProxy:
    """Forwards every request to ``upstream`` (streaming answers through as they arrive) and logs it."""

    upstream: str  # http://127.0.0.1:PORT
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> CountingProxy:
        proxy = self
        target = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._forward(self.rfile.read(length))

            def _forward(self, body: bytes | None) -> None:
                entry: dict[str, Any] = {"method": self.command, "path": self.path, "body": None}
                if body:
                    try:
                        entry["body"] = json.loads(body)
                    except ValueError:
                        entry["body"] = body.decode("utf-8", "replace")
                with proxy._lock:
                    proxy.requests.append(entry)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=600)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    entry["status"] = resp.status
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in _HOP:
                            self.send_header(k, v)
                    self.send_header("Connection", "close")  # the body ends when the connection does
                    self.end_headers()
                    while chunk := resp.read1(65536):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (OSError, http.client.HTTPException):
                    entry["status"] = "broken"
                finally:
                    conn.close()
                    self.close_connection = True

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.request_queue_size = 128
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if str(r["path"]).endswith("/chat/completions")]

    def prompts(self) -> list[str]:
        """The last user message of every chat request sent so far."""
        out = []
        for r in self.chat_requests():
            body = r["body"] if isinstance(r["body"], dict) else {}
            users = [m.get("content") for m in body.get("messages", []) if m.get("role") == "user"]
            out.append(str(users[-1]) if users else "")
        return out

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class RealModel:
    url: str  # api_base through the counting proxy
    model: str  # litellm model string
    proxy: CountingProxy
    server: realmodel_setup.LlamaServer


@pytest.fixture(scope="session")
def real_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealModel]:
    """The llama server (started once per session) behind a counting proxy."""
    if not ENABLED:
        pytest.skip(SKIP_REASON)
    if not realmodel_setup.server_installed():
        pytest.fail("llama-cpp-python[server] is not installed here: run `make test-real`", pytrace=False)
    log = tmp_path_factory.mktemp("llama") / "server.log"
    try:
        server = realmodel_setup.start_server(log=log)
    except realmodel_setup.SetupError as exc:
        pytest.fail(str(exc), pytrace=False)
    proxy = CountingProxy(f"http://127.0.0.1:{server.port}").start()
    try:
        yield RealModel(url=proxy.url, model=MODEL, proxy=proxy, server=server)
    finally:
        proxy.stop()
        server.stop()


@pytest.fixture
def real(real_model: RealModel) -> Iterator[RealModel]:
    """``real_model`` with an empty request log."""
    real_model.proxy.reset()
    yield real_model
    assert real_model.server.process.poll() is None, "the llama server died:\n" + real_model.server.log_tail()

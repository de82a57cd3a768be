"""Issue 12, item 1, end to end: a header-recording OpenAI-compatible server reached under a host name that
is NOT in the local list (this machine's own name) must never see the environment's key, whether the URL
comes through the engine API, the CLI's --api-base or the app's server URL field. It sees the key typed
with the URL, or the placeholder; the operator's key only when the operator listed that URL.

The host name: the machine's name (``socket.gethostname()``), used when it resolves to an address of this
machine that a server can listen on and ``is_local_base`` does not count it as local (here ``vm`` resolves
to 127.0.0.1). Without such a name the tests skip, saying why.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from fusion.keys import PLACEHOLDER_KEY
from fusion.providers import PROVIDERS, is_local_base
from openai_server import FakeOpenAIServer

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[1]
ENV_KEY = "sk-operator-SECRET-must-not-leak-0123456789"
TYPED_KEY = "sk-typed-by-visitor-9876543210"


def _non_local_name() -> tuple[str, str] | None:
    """(host name, address it resolves to) for a name of this machine that is not counted as local."""
    for name in dict.fromkeys([socket.gethostname(), socket.getfqdn()]):
        if not name or is_local_base(f"http://{name}:1/v1"):
            continue
        try:
            address = socket.gethostbyname(name)
        except OSError:
            continue
        try:
            with socket.socket() as probe:
                probe.bind((address, 0))  # a server can listen where the name points
        except OSError:
            continue
        return name, address
    return None


FOUND = _non_local_name()
needs_name = pytest.mark.skipif(FOUND is None, reason="no host name of this machine outside the local list")


@pytest.fixture(scope="module")
def remote_server() -> Iterator[FakeOpenAIServer]:
    assert FOUND is not None
    server = FakeOpenAIServer(host=FOUND[1]).start()
    yield server
    server.stop()


@pytest.fixture
def server(remote_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    """The server, reset, with the operator's OpenAI key in the environment and no list of key bases."""
    for provider in PROVIDERS:
        for name in provider.env:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("FUSION_KEY_BASES", raising=False)
    monkeypatch.delenv("FUSION_API_BASE", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    remote_server.reset()
    yield remote_server
    remote_server.reset()


def url(server: FakeOpenAIServer) -> str:
    assert FOUND is not None
    return server.url_for(FOUND[0])


def leaked(server: FakeOpenAIServer) -> list[str]:
    """Every header value of every request that holds the operator's key."""
    return [f"{k}: {v}" for r in server.requests for k, v in r["headers"].items() if ENV_KEY in v]


def engine_run(server: FakeOpenAIServer, *, typed_key: str | None = None) -> None:
    from fusion.llm import LiteLLMClient
    from fusion.pipeline import arun_live, make_fusor, make_selector
    from fusion.types import ModelSpec, Prompt, SamplingSettings

    base = url(server)
    client = LiteLLMClient(backoff_base=0.01, backoff_max=0.02)
    selector = make_selector("judge", client=client, model="openai/judge", api_base=base, api_key=typed_key,
                             timeout=10, num_retries=0)
    fusor = make_fusor("llm", client=client, model="openai/fusor", api_base=base, api_key=typed_key,
                       timeout=10, num_retries=0)
    run = asyncio.run(arun_live(
        Prompt("Why do volcanoes erupt?"), [ModelSpec("openai/ok", 2, api_base=base, api_key=typed_key)],
        SamplingSettings(timeout=10, num_retries=0), client=client, selector=selector, fusor=fusor,
    ))  # fmt: skip
    assert all(c.ok for c in run.candidates) and run.bon is not None and run.bon.index is not None
    assert run.fused is not None and not run.fused.error


@needs_name
def test_the_name_really_is_treated_as_non_local() -> None:
    assert FOUND is not None and not is_local_base(f"http://{FOUND[0]}:8000/v1")


@needs_name
def test_engine_api_never_sends_the_environment_key(server: FakeOpenAIServer) -> None:
    engine_run(server)
    assert server.count() == 2 + 2 + 1  # two candidates, the judge on each, the fusor
    assert leaked(server) == []
    assert set(server.authorizations()) == {f"Bearer {PLACEHOLDER_KEY}"}


@needs_name
def test_engine_api_sends_the_key_typed_with_the_url(server: FakeOpenAIServer) -> None:
    engine_run(server, typed_key=TYPED_KEY)
    assert leaked(server) == []
    assert set(server.authorizations()) == {f"Bearer {TYPED_KEY}"}


@needs_name
def test_a_listed_url_gets_the_operator_key(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The control: the same run, with the URL on the operator's list, does carry the key, so the checks
    # above would see a leak if there were one.
    monkeypatch.setenv("FUSION_KEY_BASES", url(server))
    engine_run(server)
    assert set(server.authorizations()) == {f"Bearer {ENV_KEY}"}


@needs_name
def test_cli_api_base_never_sends_the_environment_key(server: FakeOpenAIServer) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_OFFLINE_MODE": "true"}
    proc = subprocess.run(
        [sys.executable, "-m", "fusion", "run", "Why do volcanoes erupt?", "-n", "2", "--model", "openai/ok",
         "--api-base", url(server), "--selector", "judge", "--judge-model", "openai/judge",
         "--fusor-model", "openai/fusor", "--no-cache", "--timeout", "10", "--retries", "0", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert server.count() == 5
    assert leaked(server) == [] and ENV_KEY not in proc.stdout + proc.stderr
    assert set(server.authorizations()) == {f"Bearer {PLACEHOLDER_KEY}"}


# ------------------------------------------------------------------------------------------ the app


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    db = tmp_path / "app.db"
    monkeypatch.setenv("FUSION_DB_PATH", str(db))
    import streamlit as st

    st.cache_resource.clear()
    yield db
    st.cache_resource.clear()


def app_live_run(base: str, *, typed_key: str = "", key_bases: list[str] | None = None) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
    if key_bases is not None:
        at.secrets["fusion"] = {"key_bases": key_bases}
    at.run()
    assert not at.exception, at.exception
    at.sidebar.text_input(key="keep.api_base").input(base).run()
    if typed_key:
        at.sidebar.text_input(key="keep.api_key").input(typed_key).run()
    at.radio(key="keep.m_selector").set_value("judge").run()
    at.text_input(key="keep.m_judge_model").input("openai/judge").run()
    at.radio(key="keep.m_fusor").set_value("llm").run()
    at.text_input(key="keep.m_fusor_model").input("openai/fusor").run()
    at.segmented_control(key="keep.explore_mode").set_value("Generate live").run()
    at.text_area(key="keep.live_prompt").input("Why do volcanoes erupt?").run()
    at.text_input(key="keep.live_models").input("openai/ok").run()
    at.number_input(key="keep.live_n").set_value(2).run()
    at.checkbox(key="keep.live_cache").uncheck().run()  # every request must reach the server
    [go] = [b for b in at.button if b.label == "Generate and fuse"]
    go.click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    # The operator's key is in the environment, so the page must not tell the visitor it lacks one.
    assert ENV_KEY not in " ".join(str(e.proto) for e in at.main) + " ".join(str(e.proto) for e in at.sidebar)


@needs_name
def test_app_live_mode_never_sends_the_environment_key(server: FakeOpenAIServer, app_db: Path) -> None:
    app_live_run(url(server))
    assert server.count() == 5
    assert leaked(server) == []
    assert set(server.authorizations()) == {f"Bearer {PLACEHOLDER_KEY}"}


@needs_name
def test_app_live_mode_sends_the_key_typed_beside_the_url(server: FakeOpenAIServer, app_db: Path) -> None:
    app_live_run(url(server), typed_key=TYPED_KEY)
    assert server.count() == 5
    assert leaked(server) == []
    assert set(server.authorizations()) == {f"Bearer {TYPED_KEY}"}


@needs_name
def test_app_sends_the_operator_key_to_a_url_listed_in_secrets(server: FakeOpenAIServer, app_db: Path) -> None:
    # The app's control: listed in [fusion] key_bases, the same URL does get the key, so the app tests
    # above would see a leak if there were one.
    app_live_run(url(server), key_bases=[url(server)])
    assert set(server.authorizations()) == {f"Bearer {ENV_KEY}"}

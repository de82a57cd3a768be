"""Shared fixtures. Every test runs offline: litellm must not try to reach the network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

# `.venv/bin/pytest` (unlike `python -m pytest`) does not put the repository root on sys.path; the engine
# packages live there.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Iterator  # noqa: E402

import pytest  # noqa: E402

from openai_server import FakeOpenAIServer  # noqa: E402  (tests/ is on sys.path under pytest)
from pg_support import db_url, pg_cluster  # noqa: E402, F401  (storage tests on SQLite and PostgreSQL)

SERVER_SCRIPT = Path(__file__).resolve().parent / "openai_server.py"


def pytest_configure(config: pytest.Config) -> None:
    # Emitted by pydantic while litellm builds its stream types; noise, not a problem of ours.
    config.addinivalue_line("filterwarnings", "ignore:Item .* is using the `ReadOnly` qualifier:UserWarning")


@pytest.fixture(scope="session", autouse=True)
def _isolated_response_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests (and the app processes they start) never touch the developer's response cache."""
    old = os.environ.get("FUSION_CACHE_DIR")
    os.environ["FUSION_CACHE_DIR"] = str(tmp_path_factory.mktemp("response-cache"))
    yield
    if old is None:
        os.environ.pop("FUSION_CACHE_DIR", None)
    else:
        os.environ["FUSION_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def _openai_server_session() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def openai_server(_openai_server_session: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """The local OpenAI-compatible server (started once per session), with a clean log, queue and handler
    for each test. ``.url`` is the api_base ("http://127.0.0.1:PORT/v1"); see tests/openai_server.py."""
    _openai_server_session.reset()
    yield _openai_server_session
    _openai_server_session.reset()


@dataclass
class ServerProcess:
    url: str  # api_base, ".../v1"
    process: subprocess.Popen[str]


def start_server_process(*args: str, timeout: float = 20.0) -> ServerProcess:
    """Start ``tests/openai_server.py`` in its own process (for app and browser tests) and wait for READY."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("READY "):
            return ServerProcess(url=line.split(None, 1)[1].strip(), process=proc)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("tests/openai_server.py did not start")


@pytest.fixture(scope="session")
def openai_server_process() -> Iterator[ServerProcess]:
    """The same server as a subprocess; behaviour is chosen by model name (openai/ok, openai/slow@0.5 ...)."""
    server = start_server_process()
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture
def response_cache(tmp_path: Path) -> Iterator[object]:
    """A fresh DiskResponseCache in a temporary directory."""
    from storage.cache import DiskResponseCache

    cache = DiskResponseCache(tmp_path / "responses")
    yield cache
    cache.close()


@pytest.fixture
def fast_client() -> object:
    """LiteLLMClient with millisecond backoff so retry tests do not sleep."""
    from fusion.llm import LiteLLMClient

    return LiteLLMClient(backoff_base=0.005, backoff_max=0.02, retry_after_cap=0.02)


_MAIN_MODULE = sys.modules.get("__main__")


@pytest.fixture(autouse=True)
def _restore_main_module() -> Iterator[None]:
    """AppTest runs scripts as ``__main__`` and can leave one behind in sys.modules; a later test that
    spawns processes would then make every child re-run that stray script. Put pytest's own back."""
    yield
    if _MAIN_MODULE is not None and sys.modules.get("__main__") is not _MAIN_MODULE:
        sys.modules["__main__"] = _MAIN_MODULE


@pytest.fixture(autouse=True)
def _no_team_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a users file of this checkout: team login is opted into by the tests about it."""
    monkeypatch.setenv("FUSION_USERS_FILE", str(tmp_path / "absent-users.json"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last. Playwright's sync API keeps an event loop running on the main thread for
    as long as its (session-wide) browser is open, and engine code under test calls asyncio.run(), which
    refuses to start inside a running loop."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """For the AppTest pages: a fresh SQLite database the app will also open (its engine is cached per process, so the cache is cleared)."""
    import streamlit as st

    from storage.migrations import init_db

    db = tmp_path / "fusion.db"
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FUSION_DB_PATH", str(db))
    st.cache_resource.clear()
    st.cache_data.clear()
    eng = init_db(f"sqlite:///{db}")
    yield eng
    st.cache_resource.clear()
    st.cache_data.clear()
    eng.dispose()


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """For AppTest: a fresh database, no provider key and no server URL or key bases from the environment
    (the app must start in offline mode); yields the database's path."""
    for name in list(os.environ):
        if name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    for name in ("DATABASE_URL", "FUSION_API_BASE", "FUSION_KEY_BASES"):
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "app.db"
    monkeypatch.setenv("FUSION_DB_PATH", str(db))
    # st.cache_resource would otherwise hand this test the engine of an earlier test's database.
    import streamlit as st

    st.cache_resource.clear()
    yield db
    st.cache_resource.clear()

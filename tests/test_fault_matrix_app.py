"""Issue 12's fault matrix through the app: Explore > Generate live, driven by AppTest, with the same faults,
roles and time bound as the engine, ``run`` and ``batch`` matrices (fault_support.py).

The app has one server URL for every role, so the faults ride on the prompt, as in the batch matrix: the
models are the scripted server's ``cued-*`` behaviours and the prompt's cue names one fault per role. Each
click carries a candidate, a judge and a fusor fault at once (fault i, i + 3 and i + 6: nine clicks cover
the cells), since the judge and the fusor run side by side on the same candidates and one's failure does
not touch the other's. A refused connection is the server URL itself, so its cell is one more click with
the URL on a port nobody listens on: every role is refused, and no candidate is usable.

Each cell asserts the page has no exception, the fault is named in one line on the page and in the run the
page shows, the other roles' results are kept (and shown), and the click returns within the bound.
"""

from __future__ import annotations

import re
import time
from typing import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from fault_support import (  # noqa: F401  (closed_base is a pytest fixture)
    FAULTS, NAMES, RETRIES, ROLES, ROOT, Server, bound, closed_base, names_fault, one_line,
)

pytestmark = pytest.mark.server

# The sidebar's timeout is whole seconds; the other matrices use 5 s too.
TIMEOUT = 5
FIRST_TAB, CARDS_TAB = "Fusion vs Best-of-N", "Candidates: kept and dropped"


def plan() -> list[dict[str, str | None]]:
    n = len(NAMES)
    rows: list[dict[str, str | None]] = []
    for i in range(n):
        row = {role: NAMES[(i + 3 * k) % n] for k, role in enumerate(ROLES)}
        rows.append({role: (None if name == "refused" else name) for role, name in row.items()})
    return rows


def cue(row: dict[str, str | None]) -> str:
    pairs = " ".join(f"{role}={FAULTS[name].models[role]}" for role, name in row.items() if name)
    return f"[[cue {pairs}]]" if pairs else ""


def page_text(at: AppTest) -> str:
    """What the page says: markdown, captions, alerts, and the HTML of the candidate cards."""
    parts = [e.value for kind in ("markdown", "caption", "error", "warning", "info") for e in at.get(kind)]
    parts += [e.proto.body for e in at.get("html")]
    return re.sub(r"\\(.)", r"\1", "\n".join(str(p) for p in parts))


class AppClicks:
    """One AppTest session set up for live generation; ``click`` runs one prompt and times it."""

    def __init__(self, url: str) -> None:
        at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=300)
        at.run()
        assert not at.exception, at.exception
        at.sidebar.number_input(key="keep.m_timeout").set_value(TIMEOUT).run()
        at.radio(key="keep.m_selector").set_value("judge").run()
        at.text_input(key="keep.m_judge_model").input("openai/cued-judge").run()
        at.radio(key="keep.m_fusor").set_value("llm").run()
        at.text_input(key="keep.m_fusor_model").input("openai/cued-fusor").run()
        at.segmented_control(key="keep.explore_mode").set_value("Generate live").run()
        at.text_input(key="keep.live_models").input("openai/ok, openai/ok, openai/cued-candidate").run()
        at.number_input(key="keep.live_n").set_value(3).run()
        at.checkbox(key="keep.live_cache").uncheck().run()
        self.at = at
        self.use(url)

    def use(self, url: str) -> None:
        self.at.sidebar.text_input(key="keep.api_base").input(url).run()

    def click(self, prompt: str) -> tuple[float, str]:
        """Seconds the click took, and what the page says, the candidates' cards included."""
        at = self.at
        at.text_area(key="keep.live_prompt").input(prompt).run()
        started = time.monotonic()
        at.button(key="explore_live_go").click().run()
        seconds = time.monotonic() - started
        text = page_text(at)
        if shown_run(at) is not None:  # the cards are in a tab of their own, drawn only when it is open
            at.session_state["explore_tabs"] = CARDS_TAB
            text += "\n" + page_text(at.run())
            at.session_state["explore_tabs"] = FIRST_TAB
        return seconds, text


def shown_run(at: AppTest):
    shown = at.session_state["explore_shown"] if "explore_shown" in at.session_state else None
    return shown[1] if shown else None


@pytest.fixture(scope="module")
def clicks(closed_base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[float, object, str, list[str]]]]:
    """Every click, run once for the module: row key -> (seconds, the run shown, page text, exceptions).
    The environment is conftest's ``app_env``, for a module (that fixture is per test)."""
    import os

    import streamlit as st

    mp = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.endswith("_API_KEY"):
            mp.delenv(name)
    for name in ("DATABASE_URL", "FUSION_API_BASE", "FUSION_KEY_BASES"):
        mp.delenv(name, raising=False)
    mp.setenv("FUSION_DB_PATH", str(tmp_path_factory.mktemp("fault-app") / "app.db"))
    st.cache_resource.clear()
    server = Server()
    results: dict[str, tuple[float, object, str, list[str]]] = {}
    try:
        app = AppClicks(server.url)
        for row in plan():
            key = row_key(row)
            seconds, text = app.click(f"App row {key} {cue(row)}: why do volcanoes erupt?")
            results[key] = (seconds, shown_run(app.at), text, [str(e) for e in app.at.exception])
        app.use(closed_base)
        seconds, text = app.click("App row refused: why is the sky blue?")
        results["refused"] = (seconds, shown_run(app.at), text, [str(e) for e in app.at.exception])
        yield results
    finally:
        server.stop()
        st.cache_resource.clear()
        mp.undo()


def row_key(row: dict[str, str | None]) -> str:
    return ", ".join(f"{role} {name or 'good'}" for role, name in row.items())


def row_with(fault_name: str, role: str) -> dict[str, str | None]:
    [row] = [r for r in plan() if r[role] == fault_name]
    return row


def app_bound() -> float:
    # the app retries a timeout once (fusion.llm); other faults up to RETRIES times, with short backoffs
    return bound() + 2 * (RETRIES - 1) * 2.0


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("fault_name", NAMES)
def test_app(fault_name: str, role: str, clicks: dict[str, tuple[float, object, str, list[str]]]) -> None:
    fault = FAULTS[fault_name]
    if fault.refused:
        seconds, _, text, exceptions = clicks["refused"]
        assert not exceptions, exceptions
        assert seconds < app_bound(), f"{seconds:.1f} s"
        lines = [x for x in text.splitlines() if "Only 0 of 3 candidates are usable" in x]
        assert lines, text[-800:]
        for line in lines:  # every role shares the URL: the candidates fail first, and say why
            names_fault(line, fault)
        return
    row = row_with(fault_name, role)
    seconds, run, text, exceptions = clicks[row_key(row)]
    assert not exceptions, exceptions
    assert "Traceback" not in text
    assert seconds < app_bound(), f"{seconds:.1f} s"
    assert run is not None, f"no run on the page for {row_key(row)}: {text[-600:]}"
    if role == "candidate":
        good = [c for c in run.candidates[:2] if c.ok]
        assert len(good) == 2  # the other candidates are kept
        failed = run.candidates[2]
        if fault.says:
            names_fault(failed.error, fault)
            assert one_line(failed.error) in text  # on its card
        else:
            assert failed.ok
    elif role == "judge":
        if fault.says:
            assert run.bon.index is None
            names_fault(run.bon.error, fault)
            [line] = [x for x in text.splitlines() if x.startswith("No pick: ")]
            names_fault(line, fault)
        else:
            assert run.bon.index is not None
    else:
        if fault.says:
            assert not run.fused.text
            names_fault(run.fused.error, fault)
            assert any(x.startswith("The fusor failed: ") and any(s in x for s in fault.says)
                       for x in text.splitlines()), text[-800:]  # fmt: skip
        else:
            assert not run.fused.error and run.fused.text.strip()
    # whatever failed at the other roles of this click, the candidates that were good stay on the page
    assert all(c.ok for c in run.candidates[:2])

"""Crawl the app in a real browser as a new user would, clicking everything, and fail on whatever breaks.

The crawler (``browser_support.crawl_app``) visits every page of the navigation and, on each, acts on every
control it finds (buttons, form submits, downloads, tabs, expanders, segmented controls and pills, radio
options, checkboxes and toggles, select-box options, pagination, page links, and an empty name field),
one level deeper too: the controls an action reveals. It fails on an exception on the page (the redacted
"This app has encountered an error" box included), a traceback in the server's log, an uncaught JavaScript
error, a dialog, a request to a host other than this machine, a failed download and an app that never
becomes idle, and reports every finding of the run at once, each with a screenshot in test-artifacts/.

The browser tests (marked ``browser``): the crawler on a small app with planted defects (it must find
exactly those, which proves each check can fail), then the real app on an empty database and on a
populated one (offline runs of the built-in scenarios and more, votes from two annotators, a run whose
fused text is the Best-of-N pick). Before them, quick tests of the crawler's parts (traceback reading,
which URLs stay on the machine, control identity, rules and order).

Extending it: a new type of control is a row of ``browser_support.CONTROL_KINDS``; a control that must
not be clicked is a ``ControlRule`` in ``SKIP`` below, one that destroys what later pages need (deleting a
run) is one in ``LAST``: it is still clicked, once every page has been crawled.

Run: ``.venv/bin/pytest tests/test_browser_crawl.py -q`` (each report is also written to
test-artifacts/crawl-<database>.json, with every action and how long it took).
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from browser_support import (  # noqa: F401  (browser is a pytest fixture)
    ARTIFACTS,
    REPO_ROOT,
    AppServer,
    Control,
    ControlRule,
    CrawlBudget,
    CrawlReport,
    FailureGroup,
    _interleave,
    browser,
    crawl_app,
    is_local_url,
    off_loop,
    server_tracebacks,
    start_app,
)

# Clicked only once every page is done: it deletes the run the other pages (and the rest of the History
# page's crawl) stand on. "Delete this run" only asks, so it is crawled as usual.
LAST = (ControlRule(text=r"^\s*yes,? delete", why="deletes data the rest of the crawl needs"),)
# Never clicked. Empty on purpose: everything a user can click is fair game.
SKIP: tuple[ControlRule, ...] = ()
# Both databases together in about three minutes on this 2-core machine, shared with others. The budget is
# time: on a busy machine fewer controls are tried (the report's notes say which were left). For a deep
# crawl, e.g. before a release: FUSION_CRAWL_SECONDS=600 (per database).
CRAWL_SECONDS = float(os.environ.get("FUSION_CRAWL_SECONDS", "65"))
BUDGET = CrawlBudget(
    seconds_per_page=max(30.0, CRAWL_SECONDS / 2), seconds_total=CRAWL_SECONDS,
    max_actions_per_page=max(80, int(CRAWL_SECONDS)),
)  # fmt: skip

ANNOTATORS = ("crawl-ann-a", "crawl-ann-b")
EXTRA_RUNS = [
    (
        "How should I water a basil plant on a windowsill?",
        [
            "Water basil when the top inch of soil is dry. Give it six hours of sun. Pinch off flower buds.",
            "Basil needs lots of sun, at least six hours. Water when the soil surface is dry. Use a pot with drainage holes.",
            "Keep basil warm, above 10 C. Pinch off flower buds so it keeps making leaves. Water when the soil surface is dry.",
        ],
    ),
    (
        "What does a TCP slow start do?",
        [
            "Slow start grows the congestion window exponentially until a threshold or a loss. It probes capacity.",
            "TCP slow start doubles the congestion window every round trip until ssthresh is reached or a loss occurs.",
            "It starts with a small window and grows it quickly, then switches to congestion avoidance after ssthresh.",
            "Slow start avoids flooding a new connection: the window starts small and doubles each RTT.",
        ],
    ),
    (
        "Give one tip for a first job interview.",
        [
            "Research the company and prepare two questions to ask. Arrive ten minutes early.",
            "Prepare short stories that show your skills. Research the company before you go.",
            "Arrive early, research the company, and practise answering common questions aloud.",
        ],
    ),
]
IDENTICAL = "The same answer from every candidate: water it when the soil is dry."


# ------------------------------------------------------------------------------------------ the databases


def populate(db_path: Path) -> dict[str, Any]:
    """Offline runs (every built-in scenario, twelve more, one whose fused text is the Best-of-N pick) and
    votes from two annotators, saved into a fresh SQLite file; what was made, for the test to check."""
    from fusion.pipeline import run_supplied
    from fusion.scenarios import load_scenarios
    from fusion.types import Prompt
    from storage.migrations import init_db
    from storage.runs import save_run
    from storage.votes import record_vote

    engine = init_db(f"sqlite:///{db_path}")
    runs = []
    try:
        for s in load_scenarios():
            run = run_supplied(
                Prompt(s.prompt, system=s.system), list(s.candidates), labels=list(s.candidate_labels),
                tags=[s.category, s.language, "crawl"], source="batch", run_id=f"crawl-{s.id}",
            )  # fmt: skip
            runs.append(run)
        for i in range(12):  # past one page of the History list (20 runs), so it paginates
            prompt, texts = EXTRA_RUNS[i % len(EXTRA_RUNS)]
            run = run_supplied(
                f"{prompt} (variant {i + 1})", texts, tags=["crawl", f"batch-{i % 2}"], source="batch",
                run_id=f"crawl-extra-{i + 1:02d}",
            )  # fmt: skip
            runs.append(run)
        same = run_supplied("How often should I water basil?", [IDENTICAL] * 3, tags=["crawl"], run_id="crawl-same")
        assert same.fused is not None and same.bon_text == same.fused.text, "the identical run is not identical"
        runs.append(same)
        for k, run in enumerate(runs):
            run.created_at = 1_700_000_000.0 + 3600 * k
            save_run(engine, run)
        votable = [r for r in runs if r.fused is not None and r.bon_text != r.fused.text]
        choices = ["A", "B", "tie", "both_bad", "A", "B", "A", "B"]
        for k, run in enumerate(votable[:8]):
            for j, annotator in enumerate(ANNOTATORS):
                record_vote(
                    engine, run_id=run.id, annotator=annotator, choice=choices[(k + j) % len(choices)],
                    a_is="fused" if (k + j) % 2 else "bon", comment=f"crawl fixture vote {k}",
                )  # fmt: skip
        return {"runs": len(runs), "votes": 2 * min(8, len(votable)), "identical": same.id}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def empty_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = start_app(tmp_path_factory.mktemp("crawl-empty"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def populated_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("crawl-populated")
    made = off_loop(populate, workdir / "fusion.db")  # start_app keeps its database at workdir/fusion.db
    server = start_app(workdir)
    server.made = made  # type: ignore[attr-defined]
    yield server
    server.stop()


# ------------------------------------------------------------------------------------------ helpers


def keep_report(report: CrawlReport) -> None:
    """Write the report (every action, every finding) next to the screenshots and show it in the output."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"crawl-{report.label}.json").write_text(
        json.dumps(report.to_json(), indent=1, default=str), encoding="utf-8"
    )
    print(report.format())


def assert_crawled(report: CrawlReport) -> None:
    """The crawl did what it is for: every page of the navigation was loaded and acted on."""
    nav = [p.name for p in report.pages if p.origin == "navigation"]
    crawled = {row["page"]: row["actions"] for row in report.per_page}
    assert nav, "the crawler found no page in the navigation"
    idle = [name for name in nav if crawled.get(name, 0) == 0]
    assert not idle, f"pages loaded but not acted on: {idle}\n{report.format()}"


def find(report: CrawlReport, category: str, summary: str, page: str, control: str) -> FailureGroup | None:
    for f in report.failures:
        where = [f.first, *f.more]
        if f.category == category and summary in f.summary and any(
            o.page == page and control in o.control for o in where
        ):
            return f
    return None


# ------------------------------------------------------------------------------------------ the crawler's parts


def _log_of(exc_source: str, filename: Path) -> str:
    """A server log holding the traceback Python prints for ``exc_source`` run as ``filename``."""
    import traceback

    try:
        exec(compile(exc_source, str(filename), "exec"), {})  # noqa: S102 - our own test source
    except Exception as exc:  # noqa: BLE001
        lines = traceback.format_exception(exc)
    return "2026-12-01 12:00:00.000 Uncaught app execution\n" + "".join(lines) + "  Stopping...\n"


def test_server_tracebacks_name_the_exception_and_the_project_frame() -> None:
    page = REPO_ROOT / "app" / "some_page.py"
    log = _log_of("def scenario_mode():\n    raise KeyError('scenario_choice')\nscenario_mode()\n", page)
    assert server_tracebacks(log) == ["KeyError: 'scenario_choice' (at app/some_page.py:2 in scenario_mode)"]
    # Chained: one line per traceback. A library's frame (site-packages) is never the one named: the cause
    # ran in the library alone; the last project frame of the second is this module's exec().
    chained = server_tracebacks(
        _log_of(
            "try:\n    {}['k']\nexcept KeyError as e:\n    raise ValueError('bad state') from e\n",
            REPO_ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "lib.py",
        )
    )
    assert chained[0] == "KeyError: 'k'"
    assert chained[1].startswith("ValueError: bad state (at tests/test_browser_crawl.py:"), chained
    assert server_tracebacks("You can now view your Streamlit app in your browser.\n") == []


def test_local_urls_are_loopback_or_no_network() -> None:
    for url in [
        "http://127.0.0.1:8501/", "ws://127.0.0.1:8501/_stcore/stream", "http://localhost/x", "http://[::1]:80/",
        "http://127.8.9.1/", "data:image/png;base64,xx", "blob:http://127.0.0.1/abc", "about:blank",
    ]:  # fmt: skip
        assert is_local_url(url), url
    for url in [
        "https://fonts.gstatic.com/s/i/x.svg", "http://10.0.0.1/", "http://192.168.1.2:8501/", "wss://example.com/",
        "http://8.8.8.8/", "http://localhost.example.com/",
    ]:  # fmt: skip
        assert not is_local_url(url), url


def test_control_identity_rules_and_order() -> None:
    a = Control("button", "main", "", "Open", 0, key="open_a")
    assert a == Control("button", "main", "", "Open", 0, key="open_other")  # the key only helps a reader
    assert a != Control("button", "main", "", "Open", 1)
    assert a.describe() == "button 'Open' [key open_a]"
    delete = Control("button", "main", "", "Yes, delete it")
    assert LAST[0].matches("History", delete) and not LAST[0].matches("History", a)
    assert ControlRule(text="open", page="^explore$").matches("Explore", a)
    assert not ControlRule(text="open", page="^explore$").matches("History", a)
    radio = [Control("radio", "sidebar", "Fusor", t) for t in ("x", "y")]
    opens = [Control("button", "main", "", "Open", i) for i in range(3)]
    # One of each widget before the second of any.
    assert _interleave([*opens, *radio]) == [opens[0], radio[0], opens[1], radio[1], opens[2]]


# ------------------------------------------------------------------------------------------ the crawler itself

PLANTED_APP = '''
import os
from pathlib import Path

import streamlit as st

MARKER = Path(os.environ["CRAWL_MARKER"])
st.set_page_config(page_title="Planted", page_icon=":material/bolt:")


def home():
    st.title("Home")
    st.text_input("Word", key="word")
    if st.button("Crash", help="A button with help sits in a tooltip wrapper"):
        st.session_state["word"] = "changed"  # after the widget: StreamlitAPIException
    st.button("Reveal", on_click=lambda: st.session_state.update(revealed=True))
    if st.session_state.get("revealed"):
        first, second = st.tabs(["First", "Second"])
        first.write("Nothing here.")
        if second.button("Deep crash"):
            raise ValueError("planted deep crash")
    if st.selectbox("Pick", ["fine", "bad"], index=None) == "bad":
        raise KeyError("planted select crash")
    with st.form("vote"):
        name = st.text_input("Your name")
        note = st.text_input("Note (optional)")
        sent = st.form_submit_button("Vote")
    if sent and not name.strip():
        raise RuntimeError("the crawler voted without a name")
    if sent and note:
        raise RuntimeError("the crawler typed into an optional field")
    st.download_button("Get file", data="planted", file_name="planted.txt")
    st.segmented_control("Size", ["S", "L"], help="Its help button is not an option")


def second():
    st.title("Second")
    if st.button("Alert"):
        st.html("<script>alert('planted alert')</script>", unsafe_allow_javascript=True)
    if st.button("Throw"):
        st.html("<script>throw new Error('planted js error')</script>", unsafe_allow_javascript=True)
    if st.radio("Mode", ["calm", "noisy"], help="Its help button is not an option") == "noisy":
        st.image("http://planted.invalid/picture.png")
    if st.button("Yes, delete it"):
        MARKER.unlink(missing_ok=True)
    if st.button("Check") and not MARKER.exists():
        raise RuntimeError("deleted before the end of the crawl")


st.navigation([st.Page(home, title="Home", default=True), st.Page(second, title="Second")]).run()
'''


@pytest.mark.browser
def test_crawler_finds_every_planted_defect(browser: Any, tmp_path: Path) -> None:
    app = tmp_path / "planted_app.py"
    app.write_text(textwrap.dedent(PLANTED_APP), encoding="utf-8")
    marker = tmp_path / "marker"
    marker.write_text("still here", encoding="utf-8")
    server = start_app(tmp_path / "server", entry=str(app), extra_env={"CRAWL_MARKER": str(marker)})
    try:
        report = crawl_app(browser, server, label="planted", last=LAST, budget=CrawlBudget(seconds_total=60.0))
    finally:
        server.stop()
    keep_report(report)

    assert [p.name for p in report.pages] == ["Home", "Second"]
    expected = [
        ("exception", "StreamlitWidgetAlreadyInstantiatedError", "Home", "button 'Crash'"),
        ("exception", "ValueError: planted deep crash", "Home", "button 'Deep crash'"),
        ("exception", "KeyError: 'planted select crash'", "Home", "select 'Pick': 'bad'"),
        ("dialog", "alert: planted alert", "Second", "button 'Alert'"),
        ("js-error", "planted js error", "Second", "button 'Throw'"),
        ("external-request", "http://planted.invalid/picture.png", "Second", "radio 'Mode': 'noisy'"),
        ("external-request", "https://fonts.gstatic.com/", "(first load)", "(page load)"),
    ]
    missing = [e for e in expected if find(report, *e) is None]
    assert not missing, f"not found: {missing}\n{report.format()}"
    # Nothing else: the form got a name (and its optional field stayed empty), the download worked, and
    # "Yes, delete it" waited for the end, so "Check" still found the marker...
    assert len(report.failures) == len(expected), report.format()
    # ... and it was clicked in the end.
    assert not marker.exists(), "the control kept for last was never clicked"
    deep = find(report, "exception", "planted deep crash", "Home", "button 'Deep crash'")
    assert deep is not None and "button 'Reveal'" in " ".join(deep.first.trail), deep
    assert all(f.screenshot is not None and f.screenshot.exists() for f in report.failures)
    acted = {a["control"] for a in report.actions}
    assert {"segment 'Size': 'S'", "segment 'Size': 'L'", "download 'Get file'"} <= acted, sorted(acted)
    assert not [c for c in acted if "Help for" in c], sorted(acted)  # help buttons are not controls


# ------------------------------------------------------------------------------------------ the app


def crawl_and_check(browser: Any, server: AppServer, label: str) -> None:
    """Crawl the app with the project's rules and budget, keep the report, and fail on any problem found."""
    started = time.monotonic()
    report = crawl_app(browser, server, label=label, skip=SKIP, last=LAST, budget=BUDGET)
    keep_report(report)
    print(f"crawl of the {label} database: {time.monotonic() - started:.0f} s")
    assert_crawled(report)
    assert not report.failures, report.format()


@pytest.mark.browser
def test_crawl_with_an_empty_database(browser: Any, empty_app: AppServer) -> None:
    crawl_and_check(browser, empty_app, "empty")


@pytest.mark.browser
def test_crawl_with_a_populated_database(browser: Any, populated_app: AppServer) -> None:
    from storage.votes import all_votes

    made = populated_app.made  # type: ignore[attr-defined]
    assert len(all_votes(populated_app.engine())) == made["votes"]  # the fixture is what it says
    crawl_and_check(browser, populated_app, "populated")

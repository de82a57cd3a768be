"""Real-browser test support: the Streamlit app in a subprocess and Debian's Chromium driven by Playwright.

Use it from a test module by importing the fixtures (pytest finds fixtures by name in the module)::

    import pytest
    from browser_support import app_server, browser, page  # noqa: F401  (pytest fixtures)
    from browser_support import open_app, wait_for_idle, choose_option, open_tab, screenshot

    pytestmark = pytest.mark.browser

    def test_something(app_server, page):
        open_app(page, app_server)                 # loads the default page and waits for the first run
        choose_option(page, "Scenario", "Berlin")  # a selectbox by its label, an option by visible text
        ...
        votes = app_server.votes()                 # storage.votes.all_votes on the app's own database

Fixtures
    ``app_server`` (session): one ``streamlit run app/main.py`` per pytest process, shared by every module
        that imports the fixture (a module-level singleton, so importing it into several modules still
        starts one server). It listens on a free port on 127.0.0.1, with ``FUSION_DB_PATH`` and
        ``FUSION_CACHE_DIR`` in a temporary directory, ``LITELLM_OFFLINE_MODE=true``, no provider key in its
        environment (every ``*_API_KEY`` and each provider's key variable is removed, ``HOME`` is a temporary
        directory and the secrets file list points to an empty file), so the app is in offline mode. Its
        whole process group is killed at the end of the session. The server is shared, and so is its
        database: give each test its own annotator name and check rows by run id and annotator.
    ``browser`` (session): Chromium from ``/usr/bin/chromium`` (never Playwright's own download).
    ``page`` (function): a fresh browser context and page, hence a fresh Streamlit session. On failure a
        screenshot goes to ``test-artifacts/<test name>-failure.png``.

Waiting
    Streamlit marks the root element ``[data-testid=stApp]`` with ``data-test-script-state`` (``running``,
    ``notRunning``, ...). :func:`wait_for_idle` waits for ``notRunning`` with an open connection.
    :func:`rerun_after` wraps an action that starts a rerun: a MutationObserver (an init script of the
    ``page`` fixture; :func:`watch_runs` installs it elsewhere) counts every change into or out of
    ``running``, so a run that finishes quickly is still seen and the wait never returns before the rerun
    the action started has ended. All waits poll the DOM; there is no fixed sleep.

Other helpers
    :func:`open_app` (load a page, wait for its first run), :func:`choose_option` (selectbox),
    :func:`open_tab` / :func:`tab_panel` (``st.tabs``; client-side, returns a panel locator
    that stays valid across reruns while the tab stays selected), :func:`segment`
    (``st.segmented_control``), :func:`widget` and :func:`fill_text` (widgets by exact label, optionally
    inside a form or panel), :func:`screenshot` (``test-artifacts/``, git-ignored), :func:`off_loop` (run
    engine code that calls ``asyncio.run``: the sync Playwright API keeps a loop running on the test
    thread), :func:`launch_chromium`, and :func:`start_app` / :class:`AppServer` for a server of one's own
    (``extra_env``, e.g. ``FUSION_API_BASE`` pointing to ``tests/openai_server.py``; call ``stop()``).
    ``page.page_errors`` lists uncaught JavaScript errors seen by the page.

Watching and waiting (also used by the crawler)
    The ``page`` fixture also installs a watch on the app's websocket (``_WIRE_JS``: runs asked for, started
    and finished), so :func:`rerun_after` also ends on a run too quick for the DOM to show as running.
    :func:`settle_after` does an action that may or may not rerun the script (a tab, a download, a widget
    in a form) and waits for whatever it started; :func:`wait_for_settled` waits for an app that is idle
    and stays so, its elements loaded; :func:`open_url` loads an absolute URL. :class:`PageWatch` collects
    uncaught JavaScript errors, dialogs (dismissed) and requests that would leave the machine
    (:func:`is_local_url`); :func:`local_only_proxy` is the ``proxy`` setting of a context whose requests to
    other hosts fail at once, on this machine. :func:`exception_boxes` reads the exceptions the page shows
    (the redacted "This app has encountered an error" box too), :func:`server_tracebacks` the tracebacks in
    a server log, one line each with the last frame in the project's code.

The crawler
    :func:`crawl_app` (browser, server, label=..., skip=..., last=..., budget=...) visits every page of the
    app's navigation and acts on every control it finds, then on what each action reveals (one level
    deeper; tabs and expanders do not count as a level), in a browser context of its own, and returns a
    :class:`CrawlReport`: every problem found (an exception on the page, a traceback in the server log, an
    uncaught JavaScript error, a dialog, a request off the machine, a failed download, an app that never
    becomes idle), grouped by what went wrong, each with the page, the control, what was done before it
    since the fresh load, and a screenshot; ``report.format()`` lists them, ``report.notes`` says what the
    crawl could not do or left out. Controls are described so that a fresh load (a new session) finds the
    same one again: kind, place (main, sidebar, dialog), widget label, text and ordinal (:class:`Control`).
    What to find and how to act is the table :data:`CONTROL_KINDS` (a new type of control is a row, a new
    way of acting a ``Crawler._act_<name>`` method); a :class:`ControlRule` in ``skip`` keeps a control
    from being clicked, one in ``last`` has it clicked once every page is done (a destructive control).
    Before a form is submitted its empty text fields that do not look optional are filled (names with
    ``CRAWLER_NAME``); an empty name field outside a form is a control of its own. :class:`CrawlBudget`
    bounds it in count and time.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The cold first load (Streamlit start, engine imports) takes ~10 s on this machine; a loaded CI box more.
START_TIMEOUT_S = 90.0
RUN_TIMEOUT_MS = 60_000
APP_ROOT = '[data-testid="stApp"]'


# ------------------------------------------------------------------------------------------ the app server


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it; a tiny race with other processes remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _provider_key_names() -> set[str]:
    from fusion.providers import PROVIDERS

    return {name for p in PROVIDERS for name in p.env}


def app_environment(base: Mapping[str, str], *, db_path: Path, cache_dir: Path, home: Path) -> dict[str, str]:
    """The app's environment: ``base`` without any provider key or server URL, pointed at the temp dirs."""
    drop = _provider_key_names() | {"FUSION_API_BASE", "DATABASE_URL", "OPENAI_API_BASE", "OPENAI_BASE_URL"}
    env = {
        k: v
        for k, v in base.items()
        if k not in drop and not k.endswith("_API_KEY") and not k.startswith("STREAMLIT_")
    }
    env.update(
        {
            "LITELLM_OFFLINE_MODE": "true",
            "FUSION_DB_PATH": str(db_path),
            "FUSION_CACHE_DIR": str(cache_dir),
            # ~/.streamlit may hold a developer's secrets.toml or credentials; the app must not see them.
            "HOME": str(home),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class AppServer:
    """A running ``streamlit run`` and where its state lives."""

    url: str  # "http://127.0.0.1:PORT/"
    port: int
    db_path: Path
    cache_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    workdir: Path
    _engine: Any = field(default=None, repr=False)

    def engine(self) -> Any:
        """A SQLAlchemy engine on the app's SQLite file (the same pragmas as the app's)."""
        if self._engine is None:
            from storage.db import make_engine

            self._engine = make_engine(f"sqlite:///{self.db_path}")
        return self._engine

    def votes(self) -> list[Any]:
        """Every vote the app stored (``storage.votes.all_votes``), oldest first."""
        from storage.votes import all_votes

        return all_votes(self.engine())

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Kill the whole process group (streamlit and anything it started); idempotent."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        else:
            # The leader is gone; children it left behind would still hold the group id.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)


def _health(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url + "_stcore/health", timeout=2) as resp:  # noqa: S310 - our localhost
            return resp.read().decode("utf-8", "replace").strip()
    except (urllib.error.URLError, OSError, ValueError):
        return None


def start_app(
    workdir: Path,
    *,
    entry: str = "app/main.py",
    extra_env: Mapping[str, str] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> AppServer:
    """Start ``streamlit run <entry>`` (from the repository root, so ``.streamlit/config.toml`` applies) in
    its own process group, with its state under ``workdir``; return once ``/_stcore/health`` says ``ok``."""
    workdir.mkdir(parents=True, exist_ok=True)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    empty_secrets = workdir / "secrets.toml"
    empty_secrets.write_text("", encoding="utf-8")
    db_path = workdir / "fusion.db"
    cache_dir = workdir / "cache"
    log_path = workdir / "streamlit.log"
    env = app_environment(os.environ, db_path=db_path, cache_dir=cache_dir, home=home)
    env.update(extra_env or {})
    port = free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / entry),
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--secrets.files", str(empty_secrets),
    ]  # fmt: skip
    log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it for its whole life
    try:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    finally:
        log.close()
    server = AppServer(
        url=f"http://127.0.0.1:{port}/", port=port, db_path=db_path, cache_dir=cache_dir,
        log_path=log_path, process=proc, workdir=workdir,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"streamlit exited with code {proc.returncode}:\n{server.log()[-3000:]}")
        if _health(server.url) == "ok":
            return server
        time.sleep(0.1)  # a tiny poll of the health endpoint
    server.stop()
    raise RuntimeError(f"no answer from /_stcore/health in {timeout:.0f} s:\n{server.log()[-3000:]}")


_SHARED: dict[str, AppServer] = {}


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app, started once per pytest process (see the module docstring)."""
    server = _SHARED.get("app")
    if server is None or not server.alive():
        server = start_app(tmp_path_factory.mktemp("streamlit-app"))
        _SHARED["app"] = server
    yield server
    _SHARED.pop("app", None)
    server.stop()


# ------------------------------------------------------------------------------------------ the browser


def off_loop(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Call ``fn`` in a worker thread and return its result.

    Playwright's sync API keeps an asyncio loop running on the test's thread once a browser is up, so engine
    code that calls ``asyncio.run`` (``fusion.pipeline.run_supplied`` ...) must run elsewhere.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is not None


def launch_chromium(playwright: Any, **kwargs: Any) -> Any:
    """Debian's Chromium through Playwright, headless, with a fresh temporary profile."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, **kwargs)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    # `make test` installs both; a missing browser is a broken set-up, not a reason to pass quietly.
    # FUSION_SKIP_BROWSER=1 is the explicit way out for a machine that cannot have Chromium.
    if os.environ.get("FUSION_SKIP_BROWSER") == "1":
        pytest.skip("FUSION_SKIP_BROWSER=1")
    if not chromium_available():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make test` (it installs Debian's chromium; never `playwright install`)")
    from playwright import sync_api
    shared = _SHARED.get("browser")
    if shared is not None:
        yield shared
        return
    with sync_api.sync_playwright() as pw:
        b = launch_chromium(pw)
        _SHARED["browser"] = b
        try:
            yield b
        finally:
            _SHARED.pop("browser", None)
            b.close()


def watched_context(browser: Any, width: int = 1400, height: int = 1000) -> Any:
    """A new browser context (a new Streamlit session per page) whose pages carry the run watches from their
    first load on, so :func:`rerun_after` and :func:`settle_after` see every run, a quick fragment run too."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(RUN_TIMEOUT_MS)
    context.add_init_script(script=_WATCH_JS)
    context.add_init_script(script=_WIRE_JS)
    return context


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh context and page (a new Streamlit session); a screenshot is kept if the test fails."""
    context = watched_context(browser)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.page_errors = errors  # type: ignore[attr-defined]  # tests may assert on uncaught JS errors
    failed_before = request.session.testsfailed
    yield pg
    # The call phase's report is logged before fixtures are torn down, so a failure has been counted.
    if request.session.testsfailed > failed_before:
        with contextlib.suppress(Exception):
            screenshot(pg, f"{_safe(request.node.name)}-failure")
    context.close()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]


# ------------------------------------------------------------------------------------------ page helpers


def screenshot(page: Any, name: str, *, full_page: bool = True, max_height: int = 8000) -> Path:
    """Save ``test-artifacts/<name>.png`` (the folder is git-ignored) and return its path.

    Streamlit scrolls inside its main container, not the document, so Playwright's ``full_page`` alone
    captures one screen; with ``full_page`` the viewport is made as tall as the content for the shot.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{_safe(name)}.png"
    size = page.viewport_size
    if full_page and size:
        content = page.evaluate(
            """() => Math.max(document.documentElement.scrollHeight,
                ...[...document.querySelectorAll(
                    '[data-testid="stMain"], [data-testid="stAppViewContainer"]')]
                    .map(e => e.scrollHeight))"""
        )
        tall = min(max(int(content), size["height"]), max_height)
        page.set_viewport_size({"width": size["width"], "height": tall})
        try:
            page.screenshot(path=str(path), full_page=True)
        finally:
            page.set_viewport_size(size)
    else:
        page.screenshot(path=str(path))
    return path


def wait_for_idle(page: Any, timeout: float = RUN_TIMEOUT_MS) -> None:
    """Wait until no script run is in flight and the websocket is connected."""
    page.wait_for_function(
        """() => {
            const app = document.querySelector('[data-testid="stApp"]');
            if (!app) return false;
            const state = app.getAttribute('data-test-script-state');
            const conn = app.getAttribute('data-test-connection-state');
            return state === 'notRunning' && (conn === null || conn === 'CONNECTED');
        }""",
        timeout=timeout,
    )


# Counts script-state changes that involve "running" on any stApp element (observing the whole document,
# so a remounted root is still seen). A MutationObserver callback runs after the changes it reports, so the
# value each record set is the next record's oldValue (the last one's is the current value), not what
# getAttribute says by then: reading getAttribute would miss a run that started and ended in one batch.
_WATCH_JS = """
(() => {
    if (window.__fxRunWatch) return;
    const watch = {runs: 0, log: []};
    window.__fxRunWatch = watch;
    const attr = 'data-test-script-state';
    new MutationObserver((records) => {
        records.forEach((r, i) => {
            const next = i + 1 < records.length && records[i + 1].target === r.target
                ? records[i + 1].oldValue : r.target.getAttribute(attr);
            if (next === 'running' || r.oldValue === 'running') watch.runs += 1;
            watch.log.push(`${Math.round(performance.now())}ms ${r.oldValue}->${next}`);
            if (watch.log.length > 50) watch.log.shift();
        });
    // The document node, not documentElement: an init script runs before <html> exists.
    }).observe(document, {attributes: true, attributeOldValue: true, subtree: true, attributeFilter: [attr]});
})();
"""


def watch_runs(page: Any) -> int:
    """Install the run watcher in the page (idempotent) and return how many run state changes it has seen.

    The ``page`` fixture also installs it as an init script, so it sees runs from the first load on.
    """
    page.evaluate(f"() => {{ {_WATCH_JS} }}")
    return int(page.evaluate("() => window.__fxRunWatch.runs"))


def rerun_after(page: Any, action: Callable[[], Any], timeout: float = RUN_TIMEOUT_MS) -> Any:
    """Do ``action`` (a click, a fill and blur ...) and wait until the rerun it starts has finished.

    Waits for the app to be idle first, so every run state change seen after the action belongs to the
    rerun the action started.
    """
    wait_for_idle(page, timeout)
    before = watch_runs(page)
    finished = _wire(page)["finishes"]
    result = action()
    try:
        # A run the DOM never showed as running (both states rendered in one commit) still counts, when the
        # page has the wire watch (_WIRE_JS) to see it finish.
        page.wait_for_function(
            """([n, f]) => window.__fxRunWatch.runs > n
                || (f >= 0 && window.__fxWire !== undefined && window.__fxWire.finishes > f)""",
            arg=[before, finished],
            timeout=timeout,
        )
    except Exception as exc:
        log = page.evaluate("() => window.__fxRunWatch.log.slice(-10)")
        state = page.locator(APP_ROOT).first.get_attribute("data-test-script-state")
        raise AssertionError(f"no rerun started after the action (state {state!r}; last changes {log})") from exc
    wait_for_idle(page, timeout)
    return result


# How long a test holds the mouse button down. Playwright's own click presses for a few milliseconds, and
# for about 200 ms after a run has ended Streamlit may still re-render a widget: a press that short can then
# go down on the old button and up on its replacement, and the browser sends the click to their common
# parent (measured: 2 clicks in 8 lost at 0 ms, none in 16 at 100 ms). A person's press lasts 60-150 ms.
PRESS_MS = 80


def press(locator: Any) -> Callable[[], Any]:
    """A click on ``locator`` held as long as a person holds it (:data:`PRESS_MS`), for :func:`rerun_after`."""
    return functools.partial(locator.click, delay=PRESS_MS)


def open_app(page: Any, server: AppServer, path: str = "", timeout: float = RUN_TIMEOUT_MS) -> None:
    """Load a page of the app (``path`` as in the URL, e.g. ``"annotate?run=..."``) and wait for its run."""
    page.goto(server.url + path.lstrip("/"), wait_until="domcontentloaded", timeout=timeout)
    # The attribute reads "initial" until the first run has started, so "notRunning" means one has ended.
    idle = f'{APP_ROOT}[data-test-script-state="notRunning"]'
    page.wait_for_selector(
        f'{idle} [data-testid="stMain"] [data-testid="stElementContainer"]',
        state="attached",
        timeout=timeout,
    )
    wait_for_idle(page, timeout)


def widget(root: Any, testid: str, label: str) -> Any:
    """Widgets of type ``testid`` (``stSelectbox``, ``stTextArea`` ...) labelled exactly ``label``, inside
    ``root`` (a page, or a locator such as a form or a tab panel)."""
    page = getattr(root, "page", root)  # a Locator knows its page; a Page is its own root
    exact = re.compile(rf"^\s*{re.escape(label)}\s*$")
    return root.locator(f'[data-testid="{testid}"]').filter(
        has=page.locator('[data-testid="stWidgetLabel"]').get_by_text(exact)
    )


def choose_option(page: Any, label: str, option: str | re.Pattern[str]) -> None:
    """Pick ``option`` (a substring of its visible text, or a regex) in the selectbox labelled ``label``."""
    box = widget(page, "stSelectbox", label).first
    box.scroll_into_view_if_needed()
    box.locator("input").first.click()
    listbox = page.get_by_role("listbox")
    listbox.wait_for(state="visible")
    choice = listbox.get_by_role("option").filter(has_text=option).first
    rerun_after(page, press(choice))


def segment(page: Any, option: str, *, label: str | None = None) -> None:
    """Choose the ``st.segmented_control`` / ``st.pills`` option with this exact text and wait for the
    rerun; a no-op when it is already chosen. ``label`` narrows it to the control with that label."""
    root = page.locator('[data-testid="stButtonGroup"]')
    if label is not None:
        root = page.locator('[data-testid="stButtonGroup"]').filter(
            has=page.locator('[data-testid="stWidgetLabel"]').get_by_text(label, exact=True)
        )
    button = root.locator("button").filter(has_text=re.compile(rf"^\s*{re.escape(option)}\s*$")).first
    button.wait_for(state="visible")
    if button.get_attribute("aria-checked") == "true":
        return  # already chosen: a click would change nothing and start no rerun
    rerun_after(page, press(button))


def tab_panel(page: Any, name: str) -> Any:
    """The panel of the ``st.tabs`` tab called ``name``, while that tab is the selected one.

    Resolved afresh on every use (XPath from the selected tab's id to its panel): the ids are generated
    and change when Streamlit re-renders the tabs, so a locator holding one id goes stale after a rerun.
    """
    tab = (
        f'//*[@role="tab"][@aria-selected="true"][normalize-space(.)="{name}"]'
        if '"' not in name
        else f"//*[@role='tab'][@aria-selected='true'][normalize-space(.)='{name}']"
    )
    return page.locator(f'xpath=//*[@role="tabpanel"][@aria-labelledby = {tab}/@id]').first


def open_tab(page: Any, name: str, timeout: float = RUN_TIMEOUT_MS) -> Any:
    """Select the ``st.tabs`` tab called ``name``, wait until its panel shows content, and return
    :func:`tab_panel`.

    Most of the app's tabs draw only the open one (``on_change="rerun"``), so a fresh panel is empty until a
    fragment rerun fills it; that rerun can start and end between two looks at the run state, so the wait is
    for the panel's content, then for the app to be idle. A client-side tab already holds its content.
    """
    wait_for_idle(page, timeout)
    tab = page.get_by_role("tab", name=name, exact=True).first
    if tab.get_attribute("aria-selected") != "true":
        # settle_after: a lazy tab asks for a fragment run, a client-side one asks for none.
        settle_after(page, tab.click, timeout=timeout)
    panel = tab_panel(page, name)
    panel.wait_for(state="visible", timeout=timeout)
    panel.locator('[data-testid="stElementContainer"]').first.wait_for(state="visible", timeout=timeout)
    wait_for_idle(page, timeout)
    return panel


def fill_text(
    page: Any, label: str, text: str, *, scope: Any = None, timeout: float = RUN_TIMEOUT_MS
) -> None:
    """Type ``text`` into the text input or text area labelled ``label`` (inside ``scope`` if given),
    waiting for it to appear. Inside an ``st.form`` this does not rerun; outside one, Streamlit reruns on
    blur (wrap the call in :func:`rerun_after` with a blur then)."""
    root = scope if scope is not None else page
    found = widget(root, "stTextArea", label).or_(widget(root, "stTextInput", label)).first
    found.wait_for(state="visible", timeout=timeout)
    found.locator("textarea, input").first.fill(text, timeout=timeout)


def show_as_typed(page: Any, on: bool = True) -> None:
    """Set the sidebar's "Show answers as typed" toggle (raw model text instead of rendered Markdown), so a
    test can compare what the page shows with the engine's text exactly."""
    toggle = page.locator('[data-testid="stSidebar"] [data-testid="stCheckbox"]').filter(
        has_text="Show answers as typed"
    )
    toggle.first.wait_for(state="visible")
    if toggle.locator("input").first.is_checked() != on:
        rerun_after(page, toggle.locator("label").first.click)


# ------------------------------------------------------------------------------------------ watching a page


def is_local_url(url: str) -> bool:
    """True when fetching ``url`` stays on this machine: a loopback host, or no network at all (``data:``,
    ``blob:``, ``about:``, ``chrome-error:`` ...)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss", "ftp"):
        return True
    host = parts.hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PageEvent:
    """Something a page did that a test must know about."""

    kind: str  # "js-error", "dialog" or "external-request"
    detail: str


class PageWatch:
    """Collects uncaught JavaScript errors, dialogs (dismissed at once, so the page never blocks) and
    requests to hosts other than this machine, for every page of a browser context.

    ``mark()`` / ``since(mark)`` slice the events by what a test did in between.
    """

    def __init__(self) -> None:
        self.events: list[PageEvent] = []

    def attach(self, context: Any) -> PageWatch:
        context.on("request", self._on_request)
        context.on("page", self._on_page)
        for existing in context.pages:
            self._on_page(existing)
        return self

    def _on_page(self, page: Any) -> None:
        page.on("pageerror", self._on_error)
        page.on("dialog", self._on_dialog)

    def _on_error(self, exc: Any) -> None:
        message = getattr(exc, "message", None) or str(exc)
        self.events.append(PageEvent("js-error", " ".join(str(message).split())[:300]))

    def _on_dialog(self, dialog: Any) -> None:
        self.events.append(PageEvent("dialog", f"{dialog.type}: {' '.join(dialog.message.split())[:200]}"))
        with contextlib.suppress(Exception):  # the page may be gone already
            dialog.dismiss()

    def _on_request(self, request: Any) -> None:
        if not is_local_url(request.url):
            self.events.append(PageEvent("external-request", request.url))

    def mark(self) -> int:
        return len(self.events)

    def since(self, mark: int) -> list[PageEvent]:
        return self.events[mark:]


def local_only_proxy() -> dict[str, str]:
    """``proxy`` settings for ``browser.new_context`` that keep a context on this machine: every request to a
    host other than loopback goes to a port nobody listens on and fails there at once (no DNS look-up, no
    packet out), while Chromium still reports it as a request, so a :class:`PageWatch` sees it. Costs
    nothing per request, unlike routing every request through Playwright (which doubled page loads)."""
    return {"server": f"http://127.0.0.1:{free_port()}", "bypass": "127.0.0.1,localhost,[::1]"}


REDACTED_ERROR = "This app has encountered an error"


def exception_boxes(page: Any) -> list[str]:
    """The text of every exception Streamlit shows on the page: ``st.exception`` boxes and the redacted
    "This app has encountered an error" box (``client.showErrorDetails = "none"``)."""
    return list(
        page.evaluate(
            """(phrase) => {
                const squash = (t) => (t || '').replace(/\\s+/g, ' ').trim();
                const out = [...document.querySelectorAll('[data-testid="stException"]')].map(e => squash(e.innerText));
                if (!out.some(t => t.includes(phrase))) {
                    const line = (document.body.innerText || '').split('\\n').find(l => l.includes(phrase));
                    if (line) out.push(squash(line));
                }
                return out;
            }""",
            REDACTED_ERROR,
        )
    )


_TRACEBACK = "Traceback (most recent call last):"
_FRAME = re.compile(r'\s+File "([^"]+)", line (\d+), in (.+)')


def server_tracebacks(log_text: str, *, root: Path = REPO_ROOT) -> list[str]:
    """One line per Python traceback in a server log: the exception, and the last frame in the project's
    own code (not in the virtualenv), e.g. ``KeyError: 'x' (at app/explore.py:225 in scenario_mode)``."""
    lines = log_text.splitlines()
    found: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != _TRACEBACK:
            i += 1
            continue
        where = None
        j = i + 1
        while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
            m = _FRAME.match(lines[j])
            if m and m.group(1).startswith(str(root)) and "site-packages" not in m.group(1):
                where = f"{Path(m.group(1)).relative_to(root)}:{m.group(2)} in {m.group(3).strip()}"
            j += 1
        exc = lines[j].strip() if j < len(lines) else "(the traceback is cut short)"
        found.append(exc + (f" (at {where})" if where else ""))
        i = j
    return found


# Watches the app's websocket. Sent: every message, and the requests for a script run (a BackMsg whose first
# byte is the tag of its field 11, rerun_script: (11 << 3) | 2 = 0x5A); Streamlit sends one at once from the
# click handler, so a click that has sent none a moment later (a tab, an expander, a widget inside a form, a
# download) starts no run. Received: runs started (a ForwardMsg of type new_session, field 4) and finished
# (script_finished, field 6). The DOM's script-state attribute can miss a quick run altogether (React
# renders "running" and "notRunning" in one commit); these counts cannot.
_WIRE_JS = """
(() => {
    if (window.__fxWire) return;
    const wire = window.__fxWire = {sent: 0, asked: 0, starts: 0, finishes: 0};
    const varint = (b, i) => {
        let v = 0, scale = 1;
        while (i < b.length) { const x = b[i++]; v += (x & 0x7f) * scale; scale *= 128; if (!(x & 0x80)) break; }
        return [v, i];
    };
    const onMessage = (event) => {
        if (!(event.data instanceof ArrayBuffer)) return;
        const b = new Uint8Array(event.data);
        let i = 0;
        while (i < b.length) {  // hash (1) and metadata (2) come first, then the one field that types it
            let tag, len;
            [tag, i] = varint(b, i);
            const field = Math.floor(tag / 8), type = tag % 8;
            if (type === 0) { [, i] = varint(b, i); if (field === 6) wire.finishes += 1; }
            else if (type === 2) { [len, i] = varint(b, i); i += len; if (field === 4) wire.starts += 1; }
            else break;
            if (field > 2) break;
        }
    };
    const Native = window.WebSocket;
    function Watched(...args) {
        const ws = new Native(...args);
        ws.addEventListener('message', onMessage);
        return ws;
    }
    Watched.prototype = Native.prototype;
    Object.assign(Watched, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
    window.WebSocket = Watched;
    const send = Native.prototype.send;
    Native.prototype.send = function (data, ...rest) {
        wire.sent += 1;
        const bytes = data instanceof ArrayBuffer ? new Uint8Array(data)
            : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
        if (bytes && bytes.length && bytes[0] === 0x5A) wire.asked += 1;
        return send.call(this, data, ...rest);
    };
})();
"""

_FLUSH_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 0))))"


def _wire(page: Any) -> dict[str, int]:
    """The counts of :data:`_WIRE_JS` (all -1 when the page has no wire watch) and the DOM's state changes."""
    return dict(
        page.evaluate(
            """() => Object.assign({sent: -1, asked: -1, starts: -1, finishes: -1}, window.__fxWire || {},
                {changes: window.__fxRunWatch ? window.__fxRunWatch.runs : -1})"""
        )
    )


def script_runs(page: Any) -> dict[str, int]:
    """How many script runs the page has asked for and seen finish so far (over its websocket)."""
    wire = _wire(page)
    return {"asked": wire["asked"], "finishes": wire["finishes"]}


def _watch_state(page: Any) -> str:
    """The app's script and connection state and its last state changes, for an error message."""
    with contextlib.suppress(Exception):
        return str(
            page.evaluate(
                """() => { const a = document.querySelector('[data-testid="stApp"]');
                    return `script ${a && a.getAttribute('data-test-script-state')}, connection `
                        + `${a && a.getAttribute('data-test-connection-state')}, last changes `
                        + (window.__fxRunWatch ? window.__fxRunWatch.log.slice(-6).join(', ') : '?')
                        + `; wire ${JSON.stringify(window.__fxWire || null)}, quiet ${JSON.stringify(window.__fxQuiet || null)}`; }"""
            )
        )
    return "state unknown"


# True once the app is idle and has stayed so for three animation frames (wait_for_function polls once a
# frame): no script run in flight, connected, no loading placeholder outside inactive tabs and closed
# expanders, and no run asked for, started or finished meanwhile. "No run in flight" is the DOM's state and
# the wire watch's count of runs started and finished, which also sees the moment between two runs that
# chain (the DOM shows notRunning there); should the counts ever disagree with a DOM that has been idle for
# 5 s, the DOM wins. Placeholders that stay 10 s (a chart whose code never loads) are not waited for.
_SETTLED_JS = """
() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const w = window.__fxWire;
    const now = performance.now();
    const domIdle = !!app && app.getAttribute('data-test-script-state') === 'notRunning'
        && (app.getAttribute('data-test-connection-state') ?? 'CONNECTED') === 'CONNECTED';
    const snap = w ? `${w.asked}/${w.starts}/${w.finishes}` : '';
    let q = window.__fxQuiet;
    if (!domIdle) { window.__fxQuiet = null; return false; }
    if (!q || q.snap !== snap) q = window.__fxQuiet = {snap, frames: 0, since: q ? q.since : now, snapSince: now};
    q.frames += 1;
    const balanced = !w || w.starts <= w.finishes || now - q.since > 5000;
    const loading = [...document.querySelectorAll('[data-testid="stSkeleton"]')]
        .some(e => !e.closest('[inert], [data-stale="true"]'));
    return balanced && q.frames >= 3 && (!loading || now - q.snapSince > 10000);
}
"""


def wait_for_settled(page: Any, timeout: float = RUN_TIMEOUT_MS) -> None:
    """Wait until the app is idle and stays so (see :data:`_SETTLED_JS`). Stricter than
    :func:`wait_for_idle`: Streamlit loads the code of most element types on first use, so for a moment
    after a run has ended (``notRunning``) some elements are placeholders and not in the page yet; and two
    runs that chain (``st.rerun``) show ``notRunning`` in between."""
    page.evaluate("() => { window.__fxQuiet = null; }")
    try:
        page.wait_for_function(_SETTLED_JS, timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"the app did not become idle ({_watch_state(page)})") from exc


def settle_after(
    page: Any,
    action: Callable[[], Any],
    *,
    expect_rerun: bool = False,
    timeout: float = RUN_TIMEOUT_MS,
    grace: float = 2_000,
    settled: bool = False,
) -> bool:
    """Do ``action`` (a click that may or may not rerun the script) and wait until everything it started
    has finished, including reruns that chain (``st.rerun``, a query-parameter change) and elements still
    loading; return whether a run happened.

    Unlike :func:`rerun_after` it does not need a rerun. After the action the page's event loop is flushed
    (two animation frames); when the page asked the server for a run by then, it waits until a run has
    finished; when it did not, it waits only if ``expect_rerun`` is set, and then at most ``grace`` ms.
    Needs the wire watch (:data:`_WIRE_JS`) installed before the page loaded, as the ``page`` fixture and
    :func:`crawl_app` do. ``settled=True`` skips the first wait, for a caller that has just waited.
    """
    if not settled:
        wait_for_settled(page, timeout)
    before = _wire(page)
    if before["finishes"] < 0:
        raise RuntimeError("settle_after needs the wire watch: context.add_init_script(script=_WIRE_JS)")
    action()
    page.evaluate(_FLUSH_JS)
    now = _wire(page)
    done = "(n) => window.__fxWire.finishes > n"
    if now["asked"] > before["asked"]:
        try:
            page.wait_for_function(done, arg=before["finishes"], timeout=timeout)
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"a run was asked for but none finished ({_watch_state(page)})") from exc
    elif expect_rerun and now["finishes"] == before["finishes"]:
        with contextlib.suppress(Exception):  # expected, not asked for: no run after all
            page.wait_for_function(done, arg=before["finishes"], timeout=grace)
    wait_for_settled(page, timeout)
    return _wire(page)["finishes"] > before["finishes"]


# ------------------------------------------------------------------------------------------ the crawler
#
# crawl_app() visits every page of the navigation and acts on every control it finds there (one level
# deeper too: the controls an action reveals), and reports every problem: an exception on the page, a
# traceback in the server's log, an uncaught JavaScript error, a dialog, a request that would leave the
# machine, a download that fails, an app that never finishes its run. Extend it with a row in
# CONTROL_KINDS (and, for a new way of acting, a ``_act_<name>`` method on Crawler); keep a control from
# being clicked with a ControlRule in ``skip``, or have it clicked only once everything else is done with
# one in ``last`` (destructive controls: deleting the fixture's data would starve the pages crawled after).

CRAWLER_NAME = "crawler-bot"  # typed into empty name fields (an annotator name for a vote)
FILLER_WORD = "crawl"  # typed into other empty, not optional-looking text fields of a form before submitting
NAME_LIKE = r"\b(name|annotator|user ?name)\b"
OPTIONAL_LIKE = r"\boptional\b"  # a label or placeholder saying so: left empty


@dataclass(frozen=True)
class ControlKind:
    """One row of the crawler's action table: how to find one type of control and what to do with it.

    ``noop`` and ``keep`` are JavaScript expressions: ``noop`` over the element ``el`` (true when acting
    would change nothing, such as the option already chosen), ``keep`` over ``el``, its widget ``label``
    and ``nameLike`` (a RegExp of :data:`NAME_LIKE`), false to leave the element out.
    """

    name: str
    css: str  # the element to act on; matches in document order give the ordinals
    act: str  # how: a Crawler method _act_<act> ("click", "submit", "download", "choose", "fill_name")
    group: str = ""  # data-testid of the widget whose stWidgetLabel names the control (a radio, a select)
    noop: str = "false"
    keep: str = "true"
    rerun: bool = True  # acting starts a script run (a widget inside a form does not, whatever this says)
    free: bool = False  # only shows what the page already has (a tab, an expander): not a level deeper
    options: bool = False  # a drop-down: each option becomes a control of its own (Control.option)


CONTROL_KINDS: tuple[ControlKind, ...] = (
    ControlKind("button", '[data-testid="stButton"] button', "click"),
    ControlKind("form-submit", '[data-testid="stFormSubmitButton"] button', "submit"),
    ControlKind("download", '[data-testid="stDownloadButton"] button', "download", rerun=False),
    ControlKind("page-link", '[data-testid="stPageLink"] a', "click", rerun=False),
    ControlKind(
        "tab", '[data-testid="stTab"]', "click", noop='el.getAttribute("aria-selected") === "true"',
        rerun=False, free=True,
    ),
    ControlKind(
        "expander", '[data-testid="stExpander"] summary', "click", noop='!!el.closest("details")?.open',
        rerun=False, free=True,
    ),
    # st.segmented_control and st.pills; a chosen option of a required control cannot be unchosen.
    ControlKind(
        "segment", '[data-testid="stButtonGroup"] button', "click", group="stButtonGroup",
        noop='el.getAttribute("aria-checked") === "true" && '
        'el.closest("[role=radiogroup]")?.getAttribute("aria-required") === "true"',
    ),
    ControlKind(
        "radio", '[data-testid="stRadioOption"]', "click", group="stRadio",
        noop='el.getAttribute("data-selected") === "true" || !!el.querySelector("input:checked")',
    ),
    ControlKind("checkbox", '[data-testid="stCheckbox"] label', "click"),  # st.toggle too
    ControlKind(
        "select", '[data-testid="stSelectbox"] input[role="combobox"]', "choose", group="stSelectbox", options=True
    ),
    ControlKind(
        "pagination", '[data-testid="stPagination"] button', "click",
        noop='el.getAttribute("aria-current") === "page"',
    ),
    # An empty name field outside a form: a page may show nothing more until one is given (Annotate).
    ControlKind(
        "name-field", '[data-testid="stTextInput"] input', "fill_name", group="stTextInput",
        keep='!el.value && !el.closest("[data-testid=stForm]") && nameLike.test(label)',
    ),
)
KINDS = {k.name: k for k in CONTROL_KINDS}

# Lists the visible, enabled controls of the given kinds in document order, or (with args.target) marks
# the one matching a description with data-fx-target and returns it. Texts leave out icon ligatures
# (":material/...:" icons render as words) and help-tooltip buttons.
_CONTROLS_JS = """
(args) => {
    const nameLike = new RegExp(args.nameLike, 'i');
    const clean = (node) => {
        if (!node) return '';
        const c = node.cloneNode(true);
        c.querySelectorAll('[data-testid*="Icon"], svg, style, script')
            .forEach(x => x.remove());
        return (c.textContent || '').replace(/\\s+/g, ' ').trim();
    };
    const scopeOf = (el) => el.closest('[role="dialog"]') ? 'dialog'
        : el.closest('[data-testid="stSidebarUserContent"]') ? 'sidebar'
        : el.closest('[data-testid="stMain"]') ? 'main' : null;
    const shown = (el) => {
        const r = el.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && el.checkVisibility({checkVisibilityCSS: true})
            && !el.closest('[inert], [data-stale="true"]');
    };
    const disabled = (el) => el.disabled || el.getAttribute('aria-disabled') === 'true'
        || el.hasAttribute('data-disabled') || !!el.closest('[aria-disabled="true"], fieldset:disabled');
    const out = [], elements = [];
    for (const kind of args.kinds) {
        const noop = new Function('el', 'return (' + kind.noop + ');');
        const keep = new Function('el', 'label', 'nameLike', 'return (' + kind.keep + ');');
        document.querySelectorAll(kind.css).forEach((el) => {
            const scope = scopeOf(el);
            // A help "?" beside a widget's label is a button too, but not one of the widget's options.
            if (!scope || el.closest('[data-testid="stWidgetLabel"]') || !shown(el) || disabled(el)) return;
            const box = kind.group ? el.closest(`[data-testid="${kind.group}"]`) : null;
            const label = box ? clean(box.querySelector('[data-testid="stWidgetLabel"]')) : '';
            if (!keep(el, label, nameLike)) return;
            const text = kind.options ? '' : (clean(el) || el.getAttribute('aria-label') || '');
            const holder = el.closest('[class*="st-key-"]');
            const key = holder ? ([...holder.classList].find(c => c.startsWith('st-key-')) || '').slice(7) : '';
            out.push({kind: kind.name, scope, label, text, key, noop: !!noop(el),
                      inForm: !!el.closest('[data-testid="stForm"]'), value: kind.options ? (el.value || '') : ''});
            elements.push(el);
        });
    }
    // Document order across kinds (the sidebar comes before the main area in Streamlit's DOM).
    const order = elements.map((_, i) => i).sort((i, j) =>
        elements[i] === elements[j] ? 0
            : (elements[i].compareDocumentPosition(elements[j]) & Node.DOCUMENT_POSITION_FOLLOWING) ? -1 : 1);
    const sortedOut = order.map(i => out[i]), sortedElements = order.map(i => elements[i]);
    out.length = 0; elements.length = 0;
    out.push(...sortedOut); elements.push(...sortedElements);
    const counts = {};
    out.forEach((o) => {
        const k = [o.kind, o.scope, o.label, o.text].join('\\u0000');
        o.ordinal = counts[k] = (k in counts) ? counts[k] + 1 : 0;
    });
    document.querySelectorAll('[data-fx-target]').forEach(e => e.removeAttribute('data-fx-target'));
    if (!args.target) return out;
    const t = args.target;
    const i = out.findIndex(o => o.kind === t.kind && o.scope === t.scope && o.label === t.label
        && o.text === t.text && o.ordinal === t.ordinal);
    if (i < 0) return null;
    elements[i].setAttribute('data-fx-target', '1');
    return out[i];
}
"""

# Marks the text fields to fill before a submit: in the submit's form, every empty one that does not look
# optional; outside forms, only empty name fields (a page may ask for the name outside its vote form).
_PREFILL_JS = """
(el, args) => {
    const like = new RegExp(args.nameLike, 'i'), optional = new RegExp(args.optionalLike, 'i');
    const form = el.closest('[data-testid="stForm"]');
    const root = form || document.querySelector('[data-testid="stMain"]') || document;
    document.querySelectorAll('[data-fx-fill]').forEach(e => e.removeAttribute('data-fx-fill'));
    const found = [];
    root.querySelectorAll('[data-testid="stTextInput"] input, [data-testid="stTextArea"] textarea').forEach((f) => {
        if (f.value || f.disabled || !f.checkVisibility()) return;
        if (!form && f.closest('[data-testid="stForm"]')) return;
        const box = f.closest('[data-testid="stTextInput"], [data-testid="stTextArea"]');
        const labelEl = box && box.querySelector('[data-testid="stWidgetLabel"]');
        const label = ((labelEl && labelEl.textContent) || f.getAttribute('aria-label') || '').trim();
        const hint = label + ' ' + (f.getAttribute('placeholder') || '');
        const isName = like.test(label);
        if (!isName && (!form || optional.test(hint))) return;
        f.setAttribute('data-fx-fill', String(found.length));
        found.push({label, name: isName});
    });
    return {inForm: !!form, fields: found};
}
"""


@dataclass(frozen=True)
class Control:
    """A control described so that a fresh load of the page finds the same one again: its kind, where it
    is (main, sidebar, dialog), its widget label, its text, and its ordinal among controls that share all
    of these. ``option`` is the chosen option of a drop-down. ``key`` (Streamlit's widget key, when it has
    one) and the rest only help a reader: they take no part in the identity."""

    kind: str
    scope: str
    label: str
    text: str
    ordinal: int = 0
    option: str = ""
    key: str = field(default="", compare=False)
    in_form: bool = field(default=False, compare=False)
    noop: bool = field(default=False, compare=False)
    value: str = field(default="", compare=False)

    def describe(self) -> str:
        name = self.option if KINDS[self.kind].options else self.text
        said = f"{self.kind} " + (f"{self.label!r}: " if self.label and self.label != name else "") + repr(name)
        if self.ordinal:
            said += f" #{self.ordinal + 1}"
        if self.scope != "main":
            said += f" (in the {self.scope})"
        if self.key:
            said += f" [key {self.key}]"
        return said


@dataclass(frozen=True)
class ControlRule:
    """Matches controls: each pattern given must be found (``re.search``, case-insensitive) in that field;
    ``page`` is matched against the page's name in the navigation."""

    text: str | None = None  # the control's text, or the option of a drop-down
    label: str | None = None
    kind: str | None = None
    page: str | None = None
    why: str = ""

    def matches(self, page_name: str, control: Control) -> bool:
        checks = [
            (self.text, control.option or control.text),
            (self.label, control.label),
            (self.kind, control.kind),
            (self.page, page_name),
        ]
        return all(p is None or re.search(p, value, re.I) for p, value in checks)


@dataclass(frozen=True)
class CrawlBudget:
    """Bounds of one crawl, in count and in time (a page's crawl stops at its time, with a note)."""

    max_depth: int = 2  # actions in a row from a fresh load, not counting tabs and expanders
    max_actions_per_page: int = 80
    # Options of one widget (a select box, a radio, a segmented control) and controls alike but for their
    # ordinal (the nine "Open" buttons of a gallery) mostly run the same code: the first few are tried,
    # the others are listed in a note.
    max_options: int = 3
    max_alike: int = 3
    max_revealed_per_action: int = 30
    # What an action reveals is tried at once while the browser shows it, this many of it; the rest waits
    # until the page's other controls have had their turn.
    max_children_now: int = 4
    max_extra_pages: int = 3  # other URLs of the app a click leads to (e.g. ``history?run=...``)
    seconds_per_page: float = 45.0  # at most; and no more than a fair share of what is left of the total
    seconds_total: float = 150.0


@dataclass
class CrawlPage:
    name: str
    url: str
    origin: str  # "navigation", or how a click got there


@dataclass(frozen=True)
class Occurrence:
    page: str
    trail: tuple[str, ...]  # what was done since the fresh load, before the control
    control: str  # the control acted on, or "(page load)"

    def describe(self) -> str:
        after = f" (after {' › '.join(self.trail)})" if self.trail else ""
        return f"{self.page}: {self.control}{after}"


@dataclass
class Problem:
    category: str  # exception, server-traceback, js-error, dialog, external-request, download, hang, server-exit
    summary: str  # what groups occurrences (the exception line, the URL ...)
    detail: str = ""


@dataclass
class FailureGroup:
    category: str
    summary: str
    detail: str
    first: Occurrence
    more: list[Occurrence] = field(default_factory=list)
    seen: int = 1
    screenshot: Path | None = None


@dataclass
class CrawlReport:
    label: str
    pages: list[CrawlPage] = field(default_factory=list)
    failures: list[FailureGroup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)  # every action and load, replays included
    per_page: list[dict[str, Any]] = field(default_factory=list)  # actions and seconds of each page's crawl
    seconds: float = 0.0

    def format(self) -> str:
        """Every failure (page, control, what happened, screenshot), then the crawl's own notes."""
        acted = sum(1 for a in self.actions if not a["replay"])
        out = [
            f"[{self.label}] {len(self.failures)} problem(s); {acted} action(s) on {len(self.pages)} page(s) "
            f"({', '.join(p.name for p in self.pages)}) in {self.seconds:.0f} s"
        ]
        for i, f in enumerate(self.failures, 1):
            out.append(f"{i}. {f.category}: {f.summary}")
            out.append(f"   on {f.first.describe()}")
            if f.detail and f.detail != f.summary:
                out.append(f"   shown: {f.detail[:300]}")
            if f.more:
                others = "; ".join(o.describe() for o in f.more[:8])
                rest = f" and {f.seen - 1 - min(len(f.more), 8)} more" if f.seen - 1 > min(len(f.more), 8) else ""
                out.append(f"   also ({f.seen - 1} more time(s)): {others}{rest}")
            if f.screenshot:
                out.append(f"   screenshot: {f.screenshot.relative_to(REPO_ROOT)}")
        if self.notes:
            out.append("crawler notes (not failures):")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "seconds": round(self.seconds, 1),
            "pages": [vars(p) for p in self.pages],
            "failures": [
                {
                    "category": f.category, "summary": f.summary, "detail": f.detail, "first": vars(f.first),
                    "seen": f.seen, "screenshot": str(f.screenshot) if f.screenshot else None,
                }
                for f in self.failures
            ],  # fmt: skip
            "notes": self.notes,
            "per_page": self.per_page,
            "actions": self.actions,
        }


@dataclass(frozen=True)
class _Item:
    path: tuple[Control, ...]  # the actions that lead from a fresh load to where the control is shown
    control: Control


@dataclass
class _PageState:
    """Where the crawl of one page stands, so that a later turn can go on with it."""

    page: CrawlPage
    loaded: bool = False
    queue: collections.deque[_Item] = field(default_factory=collections.deque)
    seen: set[Control] = field(default_factory=set)
    tried: collections.Counter[tuple[str, ...]] = field(default_factory=collections.Counter)
    left_out: collections.Counter[str] = field(default_factory=collections.Counter)
    acted: int = 0
    seconds: float = 0.0


class _Unreachable(Exception):
    """A step of a path could not be done again on a fresh load."""


class Crawler:
    """Crawls one app server in one browser context; use :func:`crawl_app`."""

    def __init__(
        self,
        context: Any,
        server: AppServer,
        *,
        label: str,
        budget: CrawlBudget,
        skip: tuple[ControlRule, ...],
        last: tuple[ControlRule, ...],
        screenshots: bool,
    ) -> None:
        self.context = context
        self.server = server
        self.budget = budget
        self.skip = skip
        self.last = last
        self.screenshots = screenshots
        self.report = CrawlReport(label)
        self.watch = PageWatch().attach(context)
        self.page = context.new_page()
        self._groups: dict[tuple[str, str], FailureGroup] = {}
        self._log_offset = 0
        self._watch_mark = 0
        self._boxes_before: set[str] = set()
        self._boxes_now: list[str] = []
        self._deferred: list[tuple[CrawlPage, _Item]] = []
        self._trail: list[Control] = []  # what was done since the last fresh load
        self.missed: str | None = None  # why the last action could not be done (a control not found)
        self._deadline = 0.0
        self._page_keys: set[tuple[str, tuple[str, ...]]] = set()
        self._kinds_arg = [
            {"name": k.name, "css": k.css, "group": k.group, "noop": k.noop, "keep": k.keep, "options": k.options}
            for k in CONTROL_KINDS
        ]

    # -------------------------------------------------------------------------------------- the crawl

    def run(self) -> CrawlReport:
        started = time.monotonic()
        self._deadline = started + self.budget.seconds_total
        self._log_offset = len(self.server.log())
        home = CrawlPage("(first load)", self.server.url, "navigation")
        if self._load(home) is not None:
            self.report.pages = self._navigation()
        for p in self.report.pages:
            self._page_keys.add(self._page_key(p.url))
        states: list[_PageState] = []
        while len(states) < len(self.report.pages) and self.server.alive():  # a click may add pages
            state = _PageState(self.report.pages[len(states)])
            states.append(state)
            left = len(self.report.pages) - len(states) + 1
            share = min(self.budget.seconds_per_page, (self._deadline - time.monotonic()) / left)
            self._crawl_page(state, share)
        # Time the quick pages left over goes to the pages whose queue the budget cut short.
        while self.server.alive():
            unfinished = [st for st in states if st.queue and st.acted < self.budget.max_actions_per_page]
            if not unfinished or self._deadline - time.monotonic() < 2:
                break
            sizes = [len(st.queue) for st in unfinished]
            for k, st in enumerate(unfinished):
                self._crawl_page(st, (self._deadline - time.monotonic()) / (len(unfinished) - k))
            if sizes == [len(st.queue) for st in unfinished]:
                break  # nothing moved: what is left cannot be done
        for st in states:
            self._page_notes(st)
        for page, item in self._deferred:
            if not self.server.alive():
                break
            self._run_deferred(page, item)
        self.report.seconds = time.monotonic() - started
        return self.report

    def _navigation(self) -> list[CrawlPage]:
        """The pages of the app, from its navigation links (sidebar or top); just the app when it has none."""
        view_more = self.page.locator('[data-testid="stSidebarNavViewButton"]')
        if view_more.count():  # more than a few pages: the sidebar hides the rest behind "View more"
            with contextlib.suppress(Exception):
                view_more.first.click()
        links = self.page.evaluate(
            """() => [...document.querySelectorAll(
                    '[data-testid="stSidebarNavLink"], [data-testid="stTopNavLink"], [data-testid="stNavLink"]')]
                .map(a => { const c = a.cloneNode(true);
                    c.querySelectorAll('[data-testid="stIconMaterial"]').forEach(x => x.remove());
                    return [c.textContent.replace(/\\s+/g, ' ').trim(), a.href]; })"""
        )
        pages: list[CrawlPage] = []
        for name, href in links:
            if href and href not in {p.url for p in pages}:
                pages.append(CrawlPage(name or href, href, "navigation"))
        return pages or [CrawlPage("(app)", self.server.url, "navigation")]

    def _crawl_page(self, state: _PageState, seconds: float) -> None:
        """Crawl a page for at most ``seconds`` (from a fresh load, or on from where an earlier turn
        stopped: the rest of its queue)."""
        started = time.monotonic()
        deadline = started + seconds
        page = state.page
        if not state.loaded:
            state.loaded = True
            controls = self._load(page)
            if controls is None:
                return
            state.queue.extend(_Item((), c) for c in _interleave(controls))
            state.seen.update(controls)
            shown: list[Control] = controls
            # The paths whose controls the browser's current state can act on: the one replayed after the
            # last fresh load, and each action done since (none after a crash or a move to another URL).
            at: set[tuple[Control, ...]] = {()}
        else:
            shown, at = [], set()  # the browser is elsewhere now: the next control starts from a fresh load
        queue, seen, tried = state.queue, state.seen, state.tried
        try:
            # At least one action on every page, however late: a page is never only loaded.
            while queue and (time.monotonic() < deadline or not state.acted) and (
                state.acted < self.budget.max_actions_per_page
            ):
                if not self.server.alive():
                    return
                item = queue.popleft()
                control = item.control
                kind = KINDS[control.kind]
                if any(r.matches(page.name, control) for r in self.skip):
                    continue
                if any(r.matches(page.name, control) for r in self.last):
                    self._deferred.append((page, item))
                    continue
                # Stay in the state the browser shows while the control is there (the trail of every
                # finding says what was done since the fresh load); otherwise start from a fresh load.
                live = _find(shown, control) if item.path in at else None
                if live is None:
                    again = self._afresh(page, item)
                    if again is None:
                        at = set()
                        continue
                    (shown, live), at = again, {item.path}
                if live is None:
                    self.report.notes.append(
                        f"{page.name}: {control.describe()} was not there again after "
                        f"{' › '.join(s.describe() for s in item.path) or 'a fresh load'}"
                    )
                    continue
                if kind.options and not live.option:
                    options = self._options(live)
                    fresh = [o for o in (replace(live, option=t, noop=(t == live.value)) for t in options) if o not in seen]
                    fresh.sort(key=lambda o: o.noop)  # the option already chosen changes nothing: last
                    seen.update(fresh)
                    # The first option now, the others after every other widget has had its turn.
                    queue.extend(_Item(item.path, o) for o in fresh[1:])
                    if fresh:
                        queue.appendleft(_Item(item.path, fresh[0]))
                    continue
                if live.noop:
                    continue
                if self._capped(state, live):
                    state.left_out[_widget_name(live)] += 1
                    continue
                tried[_alike_key(live)] += 1
                tried[_widget_key(live)] += 1
                state.acted += 1
                url_before = self.page.url
                drifted = len(self._trail) > len(item.path)  # done more since the load than the path
                problems = self._act(page, live)
                if self.missed and drifted:  # what was done meanwhile may have hidden it: once more, afresh
                    again = self._afresh(page, item)
                    if again is None:
                        at = set()
                        continue
                    (shown, live), at = again, {item.path}
                    if live is None:
                        self.report.notes.append(f"{page.name}: {control.describe()} was not there again")
                        continue
                    url_before = self.page.url
                    problems = self._act(page, live)
                if self.missed:
                    self.report.notes.append(self.missed)
                after = self._discover() if self.server.alive() else []
                moved = self.page.url != url_before
                if moved:
                    self._maybe_add_page(self.page.url, page, item)
                # After a crash the page is in no state to go on from; a request off the machine changes nothing.
                if moved or any(p.category != "external-request" for p in problems):
                    at = set()
                else:
                    at.add((*item.path, control))
                if moved:
                    continue  # another page, or this one with other query parameters: crawled on its own
                # What the action revealed comes next, while the browser still shows it (depth first).
                depth = sum(1 for s in (*item.path, control) if not KINDS[s.kind].free)
                before = set(shown)
                revealed = [c for c in after if c not in before and c not in seen]
                children = _interleave([
                    c
                    for c in revealed[: self.budget.max_revealed_per_action]
                    if depth + (0 if KINDS[c.kind].free else 1) <= self.budget.max_depth
                ])
                seen.update(children)
                now, later = children[: self.budget.max_children_now], children[self.budget.max_children_now :]
                queue.extend(_Item((*item.path, control), c) for c in later)
                queue.extendleft(_Item((*item.path, control), c) for c in reversed(now))
                shown = after
        finally:
            state.seconds += time.monotonic() - started

    def _capped(self, state: _PageState, control: Control) -> bool:
        """Enough options of its widget, or enough controls alike, were tried already."""
        if state.tried[_alike_key(control)] >= self.budget.max_alike:
            return True
        return bool(KINDS[control.kind].group and control.label) and (
            state.tried[_widget_key(control)] >= self.budget.max_options
        )

    def _page_notes(self, state: _PageState) -> None:
        name = state.page.name
        capped = [i for i in state.queue if not self._capped(state, i.control)]
        for i in state.queue:
            if self._capped(state, i.control):
                state.left_out[_widget_name(i.control)] += 1
        if capped:
            left = collections.Counter(_widget_name(i.control) for i in capped)
            self.report.notes.append(
                f"{name}: budget reached after {state.acted} action(s) in {state.seconds:.0f} s; not tried: "
                + "; ".join(f"{w}" + (f" ({n})" if n > 1 else "") for w, n in left.items())
            )
        if state.left_out:
            self.report.notes.append(
                f"{name}: not tried, as {self.budget.max_options} options of the same widget or "
                f"{self.budget.max_alike} controls alike were tried already: "
                + "; ".join(f"{n} more of {w}" for w, n in state.left_out.items())
            )
        self.report.per_page.append({"page": name, "actions": state.acted, "seconds": round(state.seconds, 1)})

    def _run_deferred(self, page: CrawlPage, item: _Item) -> None:
        """A control kept for last (destructive): reached and acted on once every page is done."""
        try:
            shown = self._reach(page, item.path)
        except _Unreachable as exc:
            self.report.notes.append(f"{page.name}: could not get back to {item.control.describe()}: {exc}")
            return
        live = _find(shown, item.control)
        if live is None:
            self.report.notes.append(f"{page.name}: {item.control.describe()} (kept for last) was not there again")
            return
        self._act(page, live)
        if self.missed:
            self.report.notes.append(self.missed)

    def _afresh(self, page: CrawlPage, item: _Item) -> tuple[list[Control], Control | None] | None:
        """Load the page afresh and redo ``item.path``: what is shown then and ``item.control`` found in it
        (``None`` if it is not there), or ``None`` (with a note) when the path cannot be redone."""
        try:
            shown = self._reach(page, item.path)
        except _Unreachable as exc:
            self.report.notes.append(f"{page.name}: could not get back to {item.control.describe()}: {exc}")
            return None
        return shown, _find(shown, item.control)

    def _reach(self, page: CrawlPage, path: tuple[Control, ...]) -> list[Control]:
        """A fresh load of the page (a new session), then the path's actions again; the controls shown."""
        shown = self._load(page)
        if shown is None:
            raise _Unreachable("the page did not load")
        for step in path:
            live = _find(shown, step)
            if live is None:
                raise _Unreachable(f"{step.describe()} was not there again")
            self._act(page, live, replay=True)  # what goes wrong is recorded; the path goes on
            if self.missed:
                raise _Unreachable(self.missed)
            shown = self._discover()
        return shown

    def _maybe_add_page(self, url: str, came_from: CrawlPage, item: _Item) -> None:
        """A click led to another URL of the app (say ``history?run=...``): crawl it as a page of its own,
        once per path and set of query keys, within the budget."""
        if not url.startswith(self.server.url):
            return
        key = self._page_key(url)
        if key in self._page_keys:
            return
        self._page_keys.add(key)
        extra = [p for p in self.report.pages if p.origin != "navigation"]
        trail = " › ".join(c.describe() for c in (*item.path, item.control))
        if len(extra) >= self.budget.max_extra_pages:
            self.report.notes.append(f"not crawled (budget of extra pages): {url} reached from {came_from.name} by {trail}")
            return
        name = "/" + url[len(self.server.url):]
        self.report.pages.append(CrawlPage(name, url, f"from {came_from.name} by {trail}"))

    @staticmethod
    def _page_key(url: str) -> tuple[str, tuple[str, ...]]:
        parts = urllib.parse.urlsplit(url)
        return parts.path.rstrip("/"), tuple(sorted(urllib.parse.parse_qs(parts.query, keep_blank_values=True)))

    # -------------------------------------------------------------------------------------- the browser

    def _discover(self, target: Control | None = None) -> Any:
        args: dict[str, Any] = {"kinds": self._kinds_arg, "nameLike": NAME_LIKE, "target": None}
        if target is not None:
            args["target"] = {
                "kind": target.kind, "scope": target.scope, "label": target.label, "text": target.text,
                "ordinal": target.ordinal,
            }  # fmt: skip
        found = self.page.evaluate(_CONTROLS_JS, args)
        if target is not None:
            return found
        return [
            Control(
                kind=o["kind"], scope=o["scope"], label=o["label"], text=o["text"], ordinal=int(o["ordinal"]),
                key=o["key"], in_form=bool(o["inForm"]), noop=bool(o["noop"]), value=o["value"],
            )  # fmt: skip
            for o in found
        ]

    def _locate(self, control: Control) -> Any:
        if self._discover(control) is None:
            raise _Unreachable(f"{control.describe()} is not on the page")
        return self.page.locator('[data-fx-target="1"]').first

    def _load(self, page: CrawlPage) -> list[Control] | None:
        """Load the page's URL (a fresh Streamlit session), wait for its first run, check it."""
        self._mark(fresh=True)
        self._trail = []
        started = time.monotonic()
        problems: list[Problem] = []
        try:
            open_url(self.page, page.url)
        except Exception as exc:  # noqa: BLE001 - a page that never finishes its first run is a finding
            problems.append(Problem("hang", f"the page did not finish its first run: {_first_line(exc)}"))
        self._note_action(page, (), "(page load)", started, replay=False)
        self._check(page, (), "(page load)", problems)
        if problems and problems[0].category == "hang":
            return None
        return self._discover()

    def _act(self, page: CrawlPage, control: Control, *, replay: bool = False) -> list[Problem]:
        """Do what the control's kind does, wait for the app, check it; return what went wrong."""
        kind = KINDS[control.kind]
        self._mark()
        started = time.monotonic()
        problems: list[Problem] = []
        expect = kind.rerun and not (control.in_form and kind.act != "submit")
        self.missed = None
        try:
            getattr(self, f"_act_{kind.act}")(control, expect, problems)
        except _Unreachable as exc:
            self.missed = f"{page.name}: {exc}"  # the caller notes it, or tries again from a fresh load
        except Exception as exc:  # noqa: BLE001 - the browser side of a failure; the checks say more
            state = self._app_state() if "Timeout" in type(exc).__name__ else None
            if state is not None and state != ("notRunning", "CONNECTED"):
                problems.append(
                    Problem("hang", f"the app was not idle {RUN_TIMEOUT_MS / 1000:.0f} s after the action "
                            f"(script {state[0]}, connection {state[1]})")
                )
            else:
                self.report.notes.append(f"{page.name}: could not {kind.act} {control.describe()}: {_first_line(exc)}")
        trail = tuple(s.describe() for s in self._trail)
        self._trail.append(control)
        self._note_action(page, trail, control.describe(), started, replay=replay)
        self._check(page, trail, control.describe(), problems)
        return problems

    def _app_state(self) -> tuple[str, str] | None:
        """(script state, connection state) of the app's root element, None if it cannot be read."""
        with contextlib.suppress(Exception):
            root = self.page.locator(APP_ROOT).first
            return (
                str(root.get_attribute("data-test-script-state", timeout=2_000)),
                str(root.get_attribute("data-test-connection-state", timeout=2_000) or "CONNECTED"),
            )
        return None

    def _act_click(self, control: Control, expect: bool, problems: list[Problem]) -> None:
        target = self._locate(control)
        settle_after(self.page, lambda: target.click(timeout=10_000), expect_rerun=expect, settled=True)

    def _act_submit(self, control: Control, expect: bool, problems: list[Problem]) -> None:
        self._prefill(self._locate(control))
        target = self._locate(control)  # again: filling a field outside a form reruns the page
        settle_after(self.page, lambda: target.click(timeout=10_000), expect_rerun=expect, settled=True)

    def _act_download(self, control: Control, expect: bool, problems: list[Problem]) -> None:
        target = self._locate(control)

        def download() -> None:
            try:
                with self.page.expect_download(timeout=20_000) as info:
                    target.click(timeout=10_000)
            except Exception as exc:  # noqa: BLE001
                problems.append(Problem("download", f"{control.describe()} started no download ({_first_line(exc)})"))
                return
            failure = info.value.failure()  # waits until the file is complete
            if failure:
                problems.append(Problem("download", f"{control.describe()} failed: {failure}"))

        settle_after(self.page, download, expect_rerun=expect, settled=True)

    def _open_listbox(self, control: Control) -> Any:
        box = self._locate(control)
        box.scroll_into_view_if_needed()
        box.click()
        listbox = self.page.locator('[role="listbox"]').last
        listbox.wait_for(state="visible", timeout=10_000)
        return listbox

    def _options(self, control: Control) -> list[str]:
        try:
            listbox = self._open_listbox(control)
            texts = listbox.locator('[role="option"]').evaluate_all(
                "(els) => els.map(e => e.textContent.replace(/\\s+/g, ' ').trim())"
            )
        except Exception as exc:  # noqa: BLE001
            self.report.notes.append(f"could not list the options of {control.describe()}: {_first_line(exc)}")
            texts = []
        with contextlib.suppress(Exception):
            self.page.keyboard.press("Escape")
        return [t for t in texts if t]

    def _act_choose(self, control: Control, expect: bool, problems: list[Problem]) -> None:
        listbox = self._open_listbox(control)
        words = r"\s+".join(re.escape(w) for w in control.option.split())
        option = listbox.locator('[role="option"]').filter(has_text=re.compile(rf"^\s*{words}\s*$")).first
        if not option.count():  # a long list renders a window of its options: narrow it down by typing
            self._locate(control).fill(control.option[:40])
            with contextlib.suppress(Exception):
                option.wait_for(state="visible", timeout=3_000)
        if not option.count():
            self.page.keyboard.press("Escape")
            raise _Unreachable(f"no option {control.option!r} in {control.describe()}")
        settle_after(self.page, lambda: option.click(timeout=10_000), expect_rerun=expect, settled=True)

    def _act_fill_name(self, control: Control, expect: bool, problems: list[Problem]) -> None:
        target = self._locate(control)
        target.fill(CRAWLER_NAME)
        settle_after(self.page, lambda: target.press("Enter"), expect_rerun=True, settled=True)

    def _prefill(self, target: Any) -> None:
        """Fill what a submit needs: empty name fields with a name, other empty non-optional fields of the
        same form with a word. Fields inside a form do not rerun; one outside reruns on Enter."""
        plan = target.evaluate(_PREFILL_JS, {"nameLike": NAME_LIKE, "optionalLike": OPTIONAL_LIKE})
        for i, f in enumerate(plan["fields"]):
            box = self.page.locator(f'[data-fx-fill="{i}"]').first
            box.fill(CRAWLER_NAME if f["name"] else FILLER_WORD)
            if not plan["inForm"]:
                settle_after(self.page, lambda b=box: b.press("Enter"), expect_rerun=True)

    # -------------------------------------------------------------------------------------- the checks

    def _mark(self, *, fresh: bool = False) -> None:
        self._log_offset = len(self.server.log())
        self._watch_mark = self.watch.mark()
        # The boxes the last check saw are still the page's: nothing ran since.
        self._boxes_before = set() if fresh else set(self._boxes_now)

    def _safe_boxes(self) -> list[str]:
        try:
            return exception_boxes(self.page)
        except Exception:  # noqa: BLE001 - a page between documents
            return []

    def _check(self, page: CrawlPage, trail: tuple[str, ...], control: str, problems: list[Problem]) -> None:
        """Collect what went wrong since the last mark (into ``problems``) and record it."""
        log = self.server.log()
        tracebacks = server_tracebacks(log[self._log_offset :])
        self._log_offset = len(log)
        self._boxes_now = self._safe_boxes()
        boxes = [b for b in self._boxes_now if b not in self._boxes_before]
        if boxes or tracebacks:
            summary = " / ".join(tracebacks) if tracebacks else boxes[0][:300]
            category = "exception" if boxes else "server-traceback"
            problems.append(Problem(category, summary, detail=" / ".join(boxes)))
        for event in self.watch.since(self._watch_mark):
            summary = event.detail.split("?")[0] if event.kind == "external-request" else event.detail
            problems.append(Problem(event.kind, summary, detail=event.detail))
        self._watch_mark = self.watch.mark()
        if not self.server.alive():
            problems.append(Problem("server-exit", f"the app server exited with code {self.server.process.returncode}"))
        occurrence = Occurrence(page.name, trail, control)
        for p in problems:
            self._record(p, occurrence)

    def _record(self, problem: Problem, occurrence: Occurrence) -> None:
        key = (problem.category, problem.summary)
        group = self._groups.get(key)
        if group is not None:
            group.seen += 1
            if len(group.more) < 20 and occurrence not in group.more and occurrence != group.first:
                group.more.append(occurrence)
            return
        group = FailureGroup(problem.category, problem.summary, problem.detail, occurrence)
        self._groups[key] = group
        self.report.failures.append(group)
        if self.screenshots:
            n = len(self.report.failures)
            with contextlib.suppress(Exception):
                group.screenshot = screenshot(self.page, f"crawl-{self.report.label}-{n:02d}-{problem.category}")

    def _note_action(self, page: CrawlPage, trail: tuple[str, ...], control: str, started: float, *, replay: bool) -> None:
        self.report.actions.append(
            {
                "page": page.name, "trail": list(trail), "control": control, "replay": replay,
                "seconds": round(time.monotonic() - started, 2),
            }
        )  # fmt: skip


def _alike_key(control: Control) -> tuple[str, ...]:
    return ("alike", control.kind, control.scope, control.label, control.text, control.option)


def _widget_key(control: Control) -> tuple[str, ...]:
    return ("widget", control.kind, control.scope, control.label)


def _widget_name(control: Control) -> str:
    """The control's widget for a note: its kind and label, or its text when it has no label."""
    name = f"{control.kind} {control.label!r}" if control.label else f"{control.kind} {control.text!r}"
    return name + (f" (in the {control.scope})" if control.scope != "main" else "")


def _interleave(controls: list[Control]) -> list[Control]:
    """Controls in document order, but one of each widget (and of each set of alike controls) before the
    second of any: when the budget runs out, it has run out on repeats."""
    rank: collections.Counter[tuple[str, ...]] = collections.Counter()
    keyed = []
    for i, c in enumerate(controls):
        group = (c.kind, c.scope, c.label) if c.label else (c.kind, c.scope, c.text)
        keyed.append((rank[group], i, c))
        rank[group] += 1
    return [c for _, _, c in sorted(keyed)]


def _find(shown: list[Control], control: Control) -> Control | None:
    """The control as the page shows it now (its current value and state), or None when it is not there.
    A drop-down's option is looked up through the drop-down."""
    for c in shown:
        if c == replace(control, option=""):
            if control.option:
                return replace(c, option=control.option, noop=(control.option == c.value))
            return c
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def open_url(page: Any, url: str, timeout: float = RUN_TIMEOUT_MS) -> None:
    """Load an absolute URL of the app and wait for its first run to end (see :func:`open_app`)."""
    page.goto(url, wait_until="domcontentloaded", timeout=timeout)
    idle = f'{APP_ROOT}[data-test-script-state="notRunning"]'
    page.wait_for_selector(
        f'{idle} [data-testid="stMain"] [data-testid="stElementContainer"]', state="attached", timeout=timeout
    )
    wait_for_settled(page, timeout)


def crawl_app(
    browser: Any,
    server: AppServer,
    *,
    label: str,
    budget: CrawlBudget | None = None,
    skip: tuple[ControlRule, ...] = (),
    last: tuple[ControlRule, ...] = (),
    screenshots: bool = True,
) -> CrawlReport:
    """Crawl the app ``server`` serves in a browser context of its own (requests off the machine are
    aborted and reported) and return the report; ``report.failures`` empty means nothing went wrong."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, accept_downloads=True, proxy=local_only_proxy(),
        reduced_motion="reduce",
    )
    context.set_default_timeout(RUN_TIMEOUT_MS)
    context.add_init_script(script=_WATCH_JS)
    context.add_init_script(script=_WIRE_JS)
    try:
        crawler = Crawler(
            context, server, label=label, budget=budget or CrawlBudget(), skip=skip, last=last,
            screenshots=screenshots,
        )  # fmt: skip
        return crawler.run()
    finally:
        context.close()

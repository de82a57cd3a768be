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
        votes = app_server.votes()                 # storage.queries.all_votes on the app's own database

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
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
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
        """Every vote the app stored (``storage.queries.all_votes``), oldest first."""
        from storage.queries import all_votes

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


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh context and page (a new Streamlit session); a screenshot is kept if the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(RUN_TIMEOUT_MS)
    context.add_init_script(script=_WATCH_JS)
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
    result = action()
    try:
        page.wait_for_function("(n) => window.__fxRunWatch.runs > n", arg=before, timeout=timeout)
    except Exception as exc:
        log = page.evaluate("() => window.__fxRunWatch.log.slice(-10)")
        state = page.locator(APP_ROOT).first.get_attribute("data-test-script-state")
        raise AssertionError(f"no rerun started after the action (state {state!r}; last changes {log})") from exc
    wait_for_idle(page, timeout)
    return result


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
    rerun_after(page, choice.click)


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
    rerun_after(page, button.click)


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


def open_tab(page: Any, name: str) -> Any:
    """Select the ``st.tabs`` tab called ``name`` (client-side, no rerun) and return :func:`tab_panel`."""
    page.get_by_role("tab", name=name, exact=True).first.click()
    panel = tab_panel(page, name)
    panel.wait_for(state="visible")
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

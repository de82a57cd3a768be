"""Speed budgets in a real browser: Playwright driving Debian's Chromium against the app on a database of
5,000 runs and 15,000 votes (bench/make_big_db.py), each action timed from the click (or the navigation)
until the page is idle and the content it was for is visible.

    .venv/bin/python bench/browser_speed.py [--db data/bench-5000.db] [--repeats 5] [--no-profile]
                                            [--only cold,scenario,vote,permalink,annotate,results]
                                            [--out bench/results/browser_speed.md]

``--db`` is a SQLite file made by make_big_db.py (made there first when missing: about 3 minutes); the
benchmark never writes to it, every server gets a fresh copy (the votes it casts stay in the copy).

What is timed (median, min and max of ``--repeats``, after one untimed warm-up of the same action on the
same server, unless the row says cold):

- ``cold_first_page``: a new server process, then its first page (the gallery) in a new browser: from the
  process start, and from the first request once ``/_stcore/health`` answers ok. One server per repeat.
- ``scenario_open``: a gallery card's "Open" button to the blind pair and its vote form; a different
  votable scenario each time, in one session, each scenario's run already saved on the server.
  ``scenario_first_open`` is the same click on a scenario nobody has opened on this server (its offline
  pick, fusion and attribution are computed and saved then).
- ``vote``: "A is better" in the blind view of a scenario to the labelled view (summary and attribution).
- ``permalink_history`` / ``permalink_explore``: ``history?run=<id>`` and ``?run=<id>`` of a stored run
  with 8 candidates, opened in a new tab of a browser that has used the app before (its HTTP cache warm)
  and, as ``..._new_browser``, in a browser that never has (a fresh context: empty cache).
- ``annotate_first`` (Enter in the name field to the first item) and ``annotate_next`` ("A is better" to
  the next run's prompt), in one session.
- ``results``: the sidebar link to Results from Explore (the statistics cached for these votes);
  ``results_new_tab``: ``results`` opened in a new tab; ``results_after_vote``: the sidebar link after one
  more vote was stored (what a team sees while others annotate: the statistics are computed afresh).

For each action the page itself records (an init script) when script runs started and ended, long tasks,
and the bytes the server sent over the websocket; Chromium's own counters (CDP ``Performance.getMetrics``)
give the renderer's main-thread time, split into JavaScript and layout/style; ``/proc`` gives the server
process's CPU time. Unless ``--no-profile``, every action is repeated on a second server started through
bench/timed_entry.py, which records (bench/app_timing.py) where each script run spent its time: imports,
each storage query, the engine, the HTML and figure builders, the Streamlit calls that serialise them.
The budget figures come from the first, unwrapped server only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import math
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from browser_support import AppServer, chromium_available, launch_chromium, start_app  # noqa: E402

DEFAULT_DB = ROOT / "data" / "bench-5000.db"
TIMEOUT_MS = 180_000  # the Results page computed afresh takes tens of seconds here
VIEWPORT = {"width": 1400, "height": 1000}
PREFERRED_SCENARIOS = ("bones-adult-newborn", "first-marathon", "escape-html-bug", "translate-de-train",
                       "postgres-move-checklist", "berlin-move-es")  # fmt: skip

# item -> (budget in seconds or None, what the row measures)
ITEMS: dict[str, tuple[float | None, str]] = {
    "cold_first_page": (5.0, "first page of a cold server (gallery), from the process start"),
    "cold_first_page_after_health": (5.0, "the same, from the first request after health is ok"),
    "scenario_open": (1.0, "opening a scenario (its run saved): Open to the blind pair"),
    "scenario_first_open": (1.0, "opening a scenario nobody opened on this server (computed and saved)"),
    "vote": (0.5, "casting a vote: A is better to the labelled view"),
    "permalink_history": (1.5, "permalink history?run=<id>, new tab"),
    "permalink_history_new_browser": (1.5, "permalink history?run=<id>, a browser new to the app"),
    "permalink_explore": (1.5, "permalink ?run=<id> (Explore), new tab"),
    "permalink_explore_new_browser": (1.5, "permalink ?run=<id> (Explore), a browser new to the app"),
    "annotate_first": (0.7, "Annotate: the name typed (Enter) to the first item"),
    "annotate_next": (0.7, "the next Annotate item: A is better to the next run's prompt"),
    "results": (1.5, "Results from the sidebar (statistics cached for these votes)"),
    "results_new_tab": (1.5, "Results opened in a new tab (statistics cached)"),
    "results_after_vote": (1.5, "Results from the sidebar after one more vote was stored"),
}
FLOWS = ("cold", "scenario", "vote", "permalink", "annotate", "results")


# ------------------------------------------------------------------------------------------ in the page

# Installed in every page before any of its scripts: a log of script-state changes with their times,
# the long tasks, and the bytes of every websocket message received.
WATCH_JS = r"""
(() => {
    if (window.__fxBench) return;
    const w = {log: [], long: [], wsIn: 0, wsTimes: []};
    window.__fxBench = w;
    const attr = 'data-test-script-state';
    // A callback may bring several changes of one element (a quick run: running, then notRunning); the
    // value a record set is the next record's oldValue, the last one's is the attribute now.
    new MutationObserver((records) => {
        const now = performance.now();
        records.forEach((r, i) => {
            const later = records.slice(i + 1).find((x) => x.target === r.target);
            w.log.push([now, later ? later.oldValue : r.target.getAttribute(attr), r.oldValue]);
        });
    }).observe(document, {attributes: true, attributeOldValue: true, subtree: true, attributeFilter: [attr]});
    try {
        new PerformanceObserver((list) => {
            for (const e of list.getEntries()) w.long.push([e.startTime, e.duration]);
        }).observe({type: 'longtask', buffered: true});
    } catch (e) {}
    const Native = window.WebSocket;
    window.WebSocket = function (...args) {
        const ws = new Native(...args);
        ws.addEventListener('message', (ev) => {
            const d = ev.data;
            w.wsTimes.push(performance.now());
            w.wsIn += typeof d === 'string' ? d.length : (d.byteLength !== undefined ? d.byteLength : (d.size || 0));
        });
        return ws;
    };
    window.WebSocket.prototype = Native.prototype;
    Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
})();
"""

# True (the page's time) once the app is idle, a script run has started since ``mark`` and the content
# ``kind`` names is visible.
READY_JS = r"""
(spec) => {
    const app = document.querySelector('[data-testid="stApp"]');
    const w = window.__fxBench;
    if (!app || !w) return false;
    if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    const conn = app.getAttribute('data-test-connection-state');
    if (conn !== null && conn !== 'CONNECTED') return false;
    // A run shows as data-test-script-state "running" unless it was so quick that React drew its start
    // and its end in one render: then the messages it sent are the sign that it happened.
    if (!w.log.some(([t, s]) => t >= spec.mark && s === 'running') && !w.wsTimes.some((t) => t >= spec.mark)) {
        return false;
    }
    const vis = (el) => !!el && el.getClientRects().length > 0;  // cheap: this runs on every frame
    const all = (sel) => [...document.querySelectorAll(sel)].filter(vis);
    const buttons = (text) => all('button').filter((b) => b.innerText.trim().startsWith(text));
    const texts = (sel) => all(sel).map((e) => e.innerText);
    let ok = false;
    switch (spec.kind) {
        case 'gallery':
            ok = buttons('Open').length >= spec.arg;
            break;
        case 'blind':
            ok = all('.fx-response').length === 2 && buttons('A is better').length === 1;
            break;
        case 'labelled':
            ok = all('.fx-summary').length > 0 && all('.fx-attr').length > 0;
            break;
        case 'run_page':
            ok = texts('h1').some((t) => t.includes('Run ' + spec.arg)) && all('.fx-response').length === 2;
            break;
        case 'annotate_name':
            ok = all('input[aria-label="Annotating as (your name)"]').length === 1;
            break;
        case 'annotate_item': {
            const shown = texts('[data-testid="stCaptionContainer"]').join('\n').match(/Run (\S+) ·/);
            ok = !!shown && shown[1] !== spec.arg && all('.fx-response').length === 2;
            break;
        }
        case 'results':
            ok = texts('[data-testid="stMetricLabel"]').some((t) => t.includes('Fusion-of-N win rate'))
                && texts('h2').some((t) => t.includes('Attribution'));
            break;
    }
    return ok ? performance.now() : false;
}
"""

# The page complete: no placeholder of a lazily loaded element left (Streamlit draws a skeleton until an
# element's code has loaded: plotly charts, download buttons) and every visible plotly chart drawn.
COMPLETE_JS = r"""
() => {
    const vis = (el) => el.getClientRects().length > 0;
    if ([...document.querySelectorAll('[data-testid="stSkeleton"]')].some(vis)) return false;
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].filter(vis);
    if (!charts.every((c) => c.querySelector('.main-svg'))) return false;
    return {at: performance.now(), n: charts.length};
}
"""

CHROME_METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


@dataclass
class Sample:
    """One timed action, as the user saw it (``total_ms``) and as the page, Chromium and the server did."""

    total_ms: float
    first_run_ms: float | None  # from the action to the first script run starting
    running_ms: float  # time with a script run in flight (the server working, as the page saw it)
    tail_ms: float | None  # from the last script run's end to the content being visible
    runs: int  # script runs started
    ws_kb: float  # websocket messages from the server
    downloaded_kb: float | None  # HTTP bodies transferred (navigations only; 0 when all came from cache)
    renderer: dict[str, float]  # CDP main-thread time (ms): TaskDuration, ScriptDuration, Layout, RecalcStyle
    long_tasks_ms: float
    long_tasks: int
    server_cpu_ms: float
    complete_ms: float  # from the action until no placeholder was left and every visible chart was drawn
    charts: int  # visible plotly charts then
    wall: tuple[float, float]  # epoch seconds of the action's start and end, to find the server's records
    js: dict[str, dict[str, float]] | None = None  # the profiled pass: JS self time by script file, function
    note: str = ""


@dataclass
class Row:
    item: str
    samples: list[Sample] = field(default_factory=list)
    server: list[dict[str, list[float]]] = field(default_factory=list)  # per sample: name -> [incl, self, n, bytes]
    profiled_totals: list[float] = field(default_factory=list)
    js: list[dict[str, dict[str, float]]] = field(default_factory=list)  # per sample: JS self time by file, function
    notes: list[str] = field(default_factory=list)


def _cpu_ms(pid: int) -> float:
    """User + system CPU time of a process so far (its threads included), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) * 1000.0 / ticks


class Probe:
    """Times actions in one page: its CDP session, and the server whose CPU time is counted."""

    def __init__(self, page: Any, server: AppServer, *, js_profile: bool = False) -> None:
        self.page = page
        self.server = server
        self.js_profile = js_profile
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Performance.enable", {"timeDomain": "timeTicks"})
        if js_profile:
            self.cdp.send("Profiler.enable")
            self.cdp.send("Profiler.setSamplingInterval", {"interval": 200})  # microseconds

    def _metrics(self) -> dict[str, float]:
        got = self.cdp.send("Performance.getMetrics")["metrics"]
        return {m["name"]: float(m["value"]) * 1000.0 for m in got if m["name"] in CHROME_METRICS}

    def _page_time(self) -> float:
        try:
            return float(self.page.evaluate("() => performance.now()"))
        except Exception:  # noqa: BLE001 - about:blank before the first navigation
            return 0.0

    def measure(self, action: Callable[[], Any], kind: str, arg: Any = None, *, navigation: bool = False) -> Sample:
        page = self.page
        mark = 0.0 if navigation else self._page_time()
        before = self._metrics()
        ws_before = 0 if navigation else float(page.evaluate("() => window.__fxBench.wsIn"))
        cpu_before = _cpu_ms(self.server.process.pid)
        if self.js_profile:
            self.cdp.send("Profiler.start")
        wall0 = time.time()
        t0 = time.perf_counter()
        action()
        note = ""
        if not navigation and not started_run(page, mark):
            # Seen rarely on this loaded machine: a click that reached the button while React replaced
            # it started nothing. Time a second click afresh rather than report a 15 s wait.
            note = "the first click started no run; timed again"
            mark = self._page_time()
            before = self._metrics()
            ws_before = float(page.evaluate("() => window.__fxBench.wsIn"))
            cpu_before = _cpu_ms(self.server.process.pid)
            wall0 = time.time()
            t0 = time.perf_counter()
            action()
        try:
            handle = page.wait_for_function(READY_JS, arg={"mark": mark, "kind": kind, "arg": arg}, timeout=TIMEOUT_MS)
        except Exception as exc:
            shot = self.server.workdir / f"not-ready-{kind}.png"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(shot), full_page=True)
            raise RuntimeError(
                f"the page never showed {kind!r} (screenshot {shot}); the server's log ends:\n{self.server.log()[-3000:]}"
            ) from exc
        t1 = time.perf_counter()
        ready_at = float(handle.json_value())
        wall1 = time.time()
        cpu_after = _cpu_ms(self.server.process.pid)
        after = self._metrics()
        # Lazily loaded elements and plotly charts may be drawn after the content the budget is about.
        try:
            drawn = page.wait_for_function(COMPLETE_JS, polling=50, timeout=60_000).json_value()
            n_charts = int(drawn["n"])
            complete_ms = (time.perf_counter() - t0) * 1000 if drawn["at"] > ready_at else (t1 - t0) * 1000
        except Exception:  # noqa: BLE001 - a chart that never draws is reported, not fatal
            complete_ms, n_charts = float("nan"), -1
        info = page.evaluate(
            """([mark, end]) => {
                const w = window.__fxBench;
                const log = w.log.filter(([t]) => t >= mark && t <= end + 1);
                let running = 0, start = null, first = null, lastEnd = null, runs = 0;
                for (const [t, s] of log) {
                    if (s === 'running' && start === null) { start = t; runs += 1; if (first === null) first = t; }
                    if (s !== 'running' && start !== null) { running += t - start; start = null; lastEnd = t; }
                }
                const long = w.long.filter(([t]) => t >= mark && t <= end);
                const res = performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'));
                return {running, first, lastEnd, runs, ws: w.wsIn,
                        longMs: long.reduce((a, [, d]) => a + d, 0), longN: long.length,
                        transferred: res.reduce((a, r) => a + (r.transferSize || 0), 0)};
            }""",
            [mark, ready_at],
        )
        js = js_self_times(self.cdp.send("Profiler.stop")["profile"]) if self.js_profile else None
        renderer = {}
        for name in CHROME_METRICS:
            delta = after.get(name, 0.0) - before.get(name, 0.0)
            renderer[name] = after.get(name, 0.0) if (navigation or delta < 0) else delta
        return Sample(
            total_ms=(t1 - t0) * 1000,
            first_run_ms=None if info["first"] is None else info["first"] - mark,
            running_ms=float(info["running"]),
            tail_ms=None if info["lastEnd"] is None else ready_at - info["lastEnd"],
            runs=int(info["runs"]),
            ws_kb=(float(info["ws"]) - ws_before) / 1024,
            downloaded_kb=float(info["transferred"]) / 1024 if navigation else None,
            renderer=renderer,
            long_tasks_ms=float(info["longMs"]),
            long_tasks=int(info["longN"]),
            server_cpu_ms=cpu_after - cpu_before,
            complete_ms=complete_ms,
            charts=n_charts,
            wall=(wall0, wall1),
            js=js,
            note=note,
        )


_HASHED = re.compile(r"\.[A-Za-z0-9_-]{8}(?=\.js$)")


def js_self_times(profile: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Self time (ms) by script file and by function of a CDP CPU profile; '(program)' is the browser's
    own work outside JavaScript (parsing HTML, style, layout, paint), '(idle)' is left out."""
    nodes = {n["id"]: n["callFrame"] for n in profile.get("nodes", [])}
    per_node: dict[int, float] = defaultdict(float)
    for node_id, delta in zip(profile.get("samples", []), profile.get("timeDeltas", [])):
        per_node[node_id] += delta / 1000.0
    files: dict[str, float] = defaultdict(float)
    functions: dict[str, float] = defaultdict(float)
    for node_id, ms in per_node.items():
        frame = nodes.get(node_id, {})
        fn = frame.get("functionName") or "(anonymous)"
        if fn == "(idle)":
            continue
        url = frame.get("url") or ""
        name = _HASHED.sub("", url.rsplit("/", 1)[-1]) if url else (fn if fn.startswith("(") else "(native)")
        files[name] += ms
        functions[f"{fn} {name}" if url else fn] += ms
    return {"files": dict(files), "functions": dict(functions)}


def navigate(page: Any, url: str) -> Callable[[], Any]:
    """The action of opening ``url`` in ``page`` (returns once the HTML is parsed; the timing goes on)."""
    return functools.partial(page.goto, url, wait_until="domcontentloaded")


def wait_idle(page: Any, mark: float = 0.0, kind: str = "", arg: Any = None) -> None:
    """Untimed: wait as :meth:`Probe.measure` does (kind '' = idle after a run since ``mark`` only)."""
    if kind:
        page.wait_for_function(READY_JS, arg={"mark": mark, "kind": kind, "arg": arg}, timeout=TIMEOUT_MS)
        return
    page.wait_for_function(
        """(mark) => { const app = document.querySelector('[data-testid="stApp"]'); const w = window.__fxBench;
            return !!app && !!w && app.getAttribute('data-test-script-state') === 'notRunning'
                && (w.log.some(([t, s]) => t >= mark && s === 'running') || w.wsTimes.some((t) => t >= mark)); }""",
        arg=mark,
        timeout=TIMEOUT_MS,
    )


def started_run(page: Any, mark: float, timeout_ms: float = 15_000) -> bool:
    """Whether a script run starts (or has started) after ``mark`` within ``timeout_ms``: the page shows it
    running, or the server sent messages (a run too quick to show as running still sends them)."""
    try:
        page.wait_for_function(
            """(mark) => window.__fxBench.log.some(([t, s]) => t >= mark && s === 'running')
                || window.__fxBench.wsTimes.some((t) => t >= mark)""",
            arg=mark,
            timeout=timeout_ms,
        )
        return True
    except Exception:  # noqa: BLE001 - Playwright's TimeoutError
        return False


def rerun(page: Any, action: Callable[[], Any], kind: str = "", arg: Any = None) -> None:
    """Untimed: do ``action`` and wait for the run it starts (and for ``kind`` content, if given); an
    action that started no run is done once more."""
    mark = float(page.evaluate("() => performance.now()"))
    action()
    if not started_run(page, mark):
        mark = float(page.evaluate("() => performance.now()"))
        action()
    wait_idle(page, mark, kind, arg)


# ------------------------------------------------------------------------------------------ the data


@dataclass(frozen=True)
class Fixture:
    """What the flows need from the database and the scenarios."""

    scenarios: list[str]  # votable scenario ids, preferred first
    titles: dict[str, str]
    n_scenarios: int
    run_id: str  # a stored votable run with 8 candidates (the permalink)
    run_n: int
    runs: int
    votes: int


def ensure_db(path: Path) -> None:
    if path.exists():
        return
    import make_big_db

    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"making {path} with bench/make_big_db.py (5,000 runs, 15,000 votes) ...", flush=True)
    make_big_db.build(f"sqlite:///{path}")


def copy_db(src: Path, dst: Path) -> Path:
    """A consistent copy (the SQLite backup API, so a WAL file beside ``src`` is included)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    source, target = sqlite3.connect(f"file:{src}?mode=ro", uri=True), sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return dst


def fixture(db: Path) -> Fixture:
    from fusion.pipeline import run_supplied
    from fusion.scenarios import load_scenarios
    from fusion.types import Prompt
    from storage import listing
    from storage import runs as runs_db
    from storage import votes as votes_db
    from storage.db import make_engine

    votable, titles = [], {}
    all_scenarios = load_scenarios()
    for s in all_scenarios:
        titles[s.id] = s.title
        run = run_supplied(Prompt(s.prompt, system=s.system), list(s.candidates), labels=list(s.candidate_labels))
        if run.bon_text is not None and run.fused is not None and run.bon_text.strip() != run.fused.text.strip():
            votable.append(s.id)
    votable.sort(key=lambda i: PREFERRED_SCENARIOS.index(i) if i in PREFERRED_SCENARIOS else len(PREFERRED_SCENARIOS))
    engine = make_engine(f"sqlite:///{db}")
    try:
        run_id, run_n = None, 0
        for n in (8, 7, 6, 5):
            for summary in listing.list_runs(engine, n=n, limit=40):
                run = runs_db.load_run(engine, summary.id)
                if run is not None and run.bon_text and run.fused and run.bon_text.strip() != run.fused.text.strip():
                    run_id, run_n = run.id, len(run.candidates)
                    break
            if run_id:
                break
        if run_id is None:
            raise SystemExit(f"{db} holds no votable run with 5 to 8 candidates; is it a make_big_db.py database?")
        runs, votes = listing.count_runs(engine), len(votes_db.all_votes(engine))
    finally:
        engine.dispose()
    return Fixture(votable, titles, len(all_scenarios), run_id, run_n, runs, votes)


SCRIPT_THREAD = "ScriptRunner.scriptThread"


def read_server_costs(path: Path, wall: tuple[float, float]) -> dict[str, list[float]]:
    """The timed server's records (bench/app_timing.py) that ended inside ``wall`` (epoch seconds), summed
    by name: ``name -> [inclusive ms, self ms, calls, bytes]``. Names from threads other than the script's
    get an ``[other thread]`` prefix; ``(server total)`` sums the outermost calls of the script thread (the
    script run and the widget callbacks Streamlit runs before it), not the other threads, whose work the
    script thread waits for (the engine's) or that runs beside it (the event loop's serialisation)."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    if not path.exists():
        return {}
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if not (wall[0] <= rec["t"] <= wall[1] + 0.05):  # written just before the browser hears of it
            continue
        other = rec["thread"] != SCRIPT_THREAD
        if not other:
            root = rec["calls"][-1]  # a record's outermost call is written last
            out["(server total)"][0] += root[1]
            out["(server total)"][2] += 1
        for name, incl, own, size in rec["calls"]:
            acc = out["[other thread] " + name if other else name]
            acc[0] += incl
            acc[1] += own
            acc[2] += 1
            if name == "script":
                acc[3] = max(acc[3], size or 0)  # the script record's 4th field: 1 if litellm was loaded
            else:
                acc[3] += size or 0
    return dict(out)


# ------------------------------------------------------------------------------------------ flows


class Bench:
    def __init__(self, pw: Any, db: Path, fx: Fixture, work: Path, repeats: int, only: set[str]) -> None:
        self.pw = pw
        self.db = db
        self.fx = fx
        self.work = work
        self.repeats = repeats
        self.only = only
        self.browser = launch_chromium(pw)
        self.rows: dict[str, Row] = {}
        self.loads: dict[str, tuple[float, float, float]] = {}
        self.server: AppServer | None = None
        self.timings: Path | None = None
        self.profiled = False

    # -- plumbing

    def row(self, item: str) -> Row:
        return self.rows.setdefault(item, Row(item))

    def context(self) -> Any:
        ctx = self.browser.new_context(viewport=VIEWPORT)
        ctx.set_default_timeout(TIMEOUT_MS)
        ctx.add_init_script(script=WATCH_JS)
        return ctx

    def start(self, name: str, *, entry: str = "app/main.py") -> AppServer:
        copy = copy_db(self.db, self.work / name / "bench.db")
        self.timings = self.work / name / "timings.jsonl"
        self.timings.unlink(missing_ok=True)
        env = {"FUSION_DB_PATH": str(copy), "FUSION_BENCH_TIMINGS": str(self.timings)}
        return start_app(self.work / name / "server", entry=entry, extra_env=env, timeout=180)

    def discard(self, server: AppServer) -> None:
        """Remove a stopped server's copy of the database (100 MB each); its timings are read by then."""
        folder = server.workdir.parent
        for suffix in ("", "-wal", "-shm"):
            Path(str(folder / "bench.db") + suffix).unlink(missing_ok=True)

    def record(self, item: str, sample: Sample) -> None:
        row = self.row(item)
        if self.profiled:
            row.server.append(self.server_costs(sample.wall))
            row.profiled_totals.append(sample.total_ms)
            if sample.js is not None:
                row.js.append(sample.js)
        else:
            row.samples.append(sample)

    def server_costs(self, wall: tuple[float, float]) -> dict[str, list[float]]:
        return read_server_costs(self.timings, wall) if self.timings is not None else {}

    def wanted(self, flow: str) -> bool:
        return not self.only or flow in self.only

    def note_load(self, flow: str) -> None:
        key = flow + (" (profiled)" if self.profiled else "")
        self.loads[key] = os.getloadavg()

    def open_gallery(self, page: Any, server: AppServer) -> None:
        page.goto(server.url, wait_until="domcontentloaded")
        wait_idle(page, 0.0, "gallery", self.fx.n_scenarios)

    def card_button(self, page: Any, scenario_id: str) -> Any:
        title = self.fx.titles[scenario_id]
        card = page.locator('[data-testid="stVerticalBlock"]').filter(
            has=page.get_by_text(title, exact=True)
        ).filter(has=page.get_by_role("button", name="Open", exact=True)).last
        return card.get_by_role("button", name="Open", exact=True)

    def back_to_gallery(self, page: Any) -> None:
        rerun(page, page.get_by_role("button", name="All scenarios").click, "gallery", self.fx.n_scenarios)

    # -- cold

    def cold(self) -> None:
        """A new server per repeat; its first page in a new browser context."""
        self.note_load("cold")
        for i in range(self.repeats):
            t_spawn = time.perf_counter()
            server = self.start(f"cold{i}{'-profiled' if self.profiled else ''}",
                                entry="bench/timed_entry.py" if self.profiled else "app/main.py")
            health_ms = (time.perf_counter() - t_spawn) * 1000
            ctx = self.context()
            try:
                page = ctx.new_page()
                probe = Probe(page, server, js_profile=self.profiled)
                sample = probe.measure(navigate(page, server.url), "gallery", self.fx.n_scenarios, navigation=True)
            finally:
                ctx.close()
                server.stop()
                self.discard(server)
            after_health = sample
            from_start = Sample(**{**sample.__dict__, "total_ms": sample.total_ms + health_ms,
                                   "complete_ms": sample.complete_ms + health_ms,
                                   "note": f"health ok after {health_ms:.0f} ms"})
            self.record("cold_first_page", from_start)
            self.record("cold_first_page_after_health", after_health)

    # -- warm flows, on one server

    def scenario_flows(self, server: AppServer) -> None:
        fx = self.fx
        if self.wanted("scenario") or self.wanted("vote"):
            # Warm-up, and the first opens: every votable scenario once, in a session of its own.
            self.note_load("scenario")
            ctx = self.context()
            page = ctx.new_page()
            probe = Probe(page, server, js_profile=self.profiled)
            self.open_gallery(page, server)
            for sid in fx.scenarios:
                sample = probe.measure(self.card_button(page, sid).click, "blind")
                sample.note = sid + (f" ({sample.note})" if sample.note else "")
                self.record("scenario_first_open", sample)
                self.back_to_gallery(page)
            ctx.close()
        if self.wanted("scenario"):
            ctx = self.context()
            page = ctx.new_page()
            probe = Probe(page, server, js_profile=self.profiled)
            self.open_gallery(page, server)
            order = [fx.scenarios[-1]] + fx.scenarios  # the first one is the warm-up of this action
            for k, sid in enumerate(order[: self.repeats + 1]):
                sample = probe.measure(self.card_button(page, sid).click, "blind")
                sample.note = sid + (f" ({sample.note})" if sample.note else "")
                if k:
                    self.record("scenario_open", sample)
                self.back_to_gallery(page)
            ctx.close()
        if self.wanted("vote"):
            self.note_load("vote")
            ctx = self.context()
            page = ctx.new_page()
            probe = Probe(page, server, js_profile=self.profiled)
            self.open_gallery(page, server)
            name = f"bench-vote-{uuid.uuid4().hex[:6]}"
            order = (fx.scenarios * 2)[: self.repeats + 1]
            seen: set[str] = set()
            for k, sid in enumerate(order):
                if sid in seen:  # a scenario this session has voted on opens labelled: no blind vote left
                    break
                seen.add(sid)
                rerun(page, self.card_button(page, sid).click, "blind")
                form = page.locator('[data-testid="stForm"]').first
                name_box = form.locator('input[aria-label="Your name (annotator)"]')
                if name_box.input_value() != name:
                    name_box.fill(name)
                button = form.get_by_role("button", name="A is better")
                sample = probe.measure(button.click, "labelled")
                sample.note = sid + (f" ({sample.note})" if sample.note else "")
                if k:
                    self.record("vote", sample)
                self.back_to_gallery(page)
            if len(seen) <= self.repeats:
                self.row("vote").notes.append(
                    f"only {len(seen) - 1} votable scenarios after the warm-up: {len(seen) - 1} samples")
            ctx.close()

    def permalink_flows(self, server: AppServer) -> None:
        fx = self.fx
        self.note_load("permalink")
        shared = self.context()  # a browser that has used the app: its HTTP cache holds the app's scripts
        warm = shared.new_page()
        self.open_gallery(warm, server)
        for item, path, kind, arg in (
            ("permalink_history", f"history?run={fx.run_id}", "run_page", fx.run_id),
            ("permalink_explore", f"?run={fx.run_id}", "blind", None),
        ):
            for k in range(self.repeats + 1):
                page = shared.new_page()
                probe = Probe(page, server, js_profile=self.profiled)
                sample = probe.measure(navigate(page, server.url + path), kind, arg, navigation=True)
                page.close()
                if k:
                    self.record(item, sample)
            for k in range(self.repeats):  # warmed up by the rows above
                ctx = self.context()
                page = ctx.new_page()
                probe = Probe(page, server, js_profile=self.profiled)
                sample = probe.measure(navigate(page, server.url + path), kind, arg, navigation=True)
                ctx.close()
                self.record(item + "_new_browser", sample)
        shared.close()

    def annotate_flows(self, server: AppServer) -> None:
        self.note_load("annotate")
        ctx = self.context()
        page = ctx.new_page()
        probe = Probe(page, server, js_profile=self.profiled)
        for k in range(self.repeats + 1):
            page.goto(server.url + "annotate", wait_until="domcontentloaded")
            wait_idle(page, 0.0, "annotate_name")
            box = page.locator('input[aria-label="Annotating as (your name)"]')
            box.fill(f"bench-annotate-{uuid.uuid4().hex[:6]}")
            sample = probe.measure(functools.partial(box.press, "Enter"), "annotate_item", "")
            if k:
                self.record("annotate_first", sample)
        # The session now has a name and a queue of 4,000+ runs; vote through it.
        for k in range(self.repeats + 1):
            caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="left in your queue").first
            current = caption.inner_text().split("Run ", 1)[1].split(" ·", 1)[0]
            button = page.locator('[data-testid="stForm"]').first.get_by_role("button", name="A is better")
            sample = probe.measure(button.click, "annotate_item", current)
            sample.note = current + (f" ({sample.note})" if sample.note else "")
            if k:
                self.record("annotate_next", sample)
        ctx.close()

    def results_flows(self, server: AppServer, db: Path) -> None:
        from storage import votes as votes_db
        from storage.db import make_engine

        self.note_load("results")
        ctx = self.context()
        page = ctx.new_page()
        probe = Probe(page, server, js_profile=self.profiled)
        self.open_gallery(page, server)
        nav = page.locator('[data-testid="stSidebarNav"] a')

        def go(title: str) -> Callable[[], None]:
            return lambda: nav.filter(has_text=title).first.click()

        for k in range(self.repeats + 1):  # the first visit computes the statistics: the warm-up
            sample = probe.measure(go("Results"), "results")
            if k:
                self.record("results", sample)
            else:
                where = " on the timed server" if self.profiled else ""
                self.row("results").notes.append(
                    f"the warm-up visit{where} (statistics computed): {sample.total_ms / 1000:.1f} s")
            rerun(page, go("Explore"), "gallery", self.fx.n_scenarios)
        for k in range(self.repeats):
            tab = ctx.new_page()
            tprobe = Probe(tab, server, js_profile=self.profiled)
            sample = tprobe.measure(navigate(tab, server.url + "results"), "results", navigation=True)
            tab.close()
            self.record("results_new_tab", sample)
        engine = make_engine(f"sqlite:///{db}")
        try:
            queue = votes_db.annotation_queue(engine, "bench-results", limit=self.repeats + 1)
            for k in range(self.repeats):
                votes_db.record_vote(engine, run_id=queue[k], annotator="bench-results", choice="A", a_is="fused",
                              client_token=uuid.uuid4().hex)
                sample = probe.measure(go("Results"), "results")
                self.record("results_after_vote", sample)
                rerun(page, go("Explore"), "gallery", self.fx.n_scenarios)
        finally:
            engine.dispose()
        ctx.close()

    def warm(self) -> None:
        name = "warm-profiled" if self.profiled else "warm"
        server = self.start(name, entry="bench/timed_entry.py" if self.profiled else "app/main.py")
        try:
            # The server's own warm-up: one page load, so imports are not charged to the first action.
            ctx = self.context()
            page = ctx.new_page()
            self.open_gallery(page, server)
            ctx.close()
            if self.wanted("scenario") or self.wanted("vote"):
                self.scenario_flows(server)
            if self.wanted("permalink"):
                self.permalink_flows(server)
            if self.wanted("annotate"):
                self.annotate_flows(server)
            if self.wanted("results"):
                self.results_flows(server, self.work / name / "bench.db")
        finally:
            server.stop()
            self.discard(server)

    def run(self, profile: bool) -> None:
        for profiled in (False, True) if profile else (False,):
            self.profiled = profiled
            if self.wanted("cold"):
                self.cold()
            if any(self.wanted(f) for f in FLOWS[1:]):
                self.warm()

    def close(self) -> None:
        self.browser.close()


# ------------------------------------------------------------------------------------------ report


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_s(ms: float) -> str:
    return "n/a" if math.isnan(ms) else f"{ms / 1000:.2f} s"


def category(name: str) -> str:
    if name.startswith("import "):
        return "imports"
    if name.startswith(("storage.runs.", "storage.listing.", "storage.votes.", "storage.stats_reads.")):
        return "database"
    if name.startswith("fusion.") or name == "app.run_view.derived":
        return "engine"
    if name.startswith("components.figures."):
        return "plotly figures"
    if name.startswith("components."):
        return "HTML and Markdown"
    if name.startswith("st."):
        return "Streamlit calls"
    return "other page and Streamlit code"


def server_table(row: Row) -> list[str]:
    """Median self time per wrapped function over the profiled samples, with its share of the server's time
    (the script run and the widget callbacks before it; other threads' work is listed but not added: the
    engine's worker threads run while the script thread waits for them, and the event loop's serialisation
    of the messages runs beside the script)."""
    if not row.server:
        return []

    def get(sample: dict[str, list[float]], name: str, i: int) -> float:
        return sample.get(name, [0.0, 0.0, 0.0, 0.0])[i]

    names = sorted({n for s in row.server for n in s} - {"(server total)"})
    total = med([get(s, "(server total)", 0) for s in row.server])
    script = med([get(s, "script", 0) for s in row.server])
    by_name = [
        (n, med([get(s, n, 1) for s in row.server]), med([get(s, n, 0) for s in row.server]),
         med([get(s, n, 2) for s in row.server]), med([get(s, n, 3) for s in row.server]))
        for n in names
    ]  # fmt: skip
    # Summed by kind within each sample, then the median over samples (medians of parts do not add up).
    per_sample: list[dict[str, float]] = []
    for sample in row.server:
        kinds: dict[str, float] = defaultdict(float)
        for n, acc in sample.items():
            if n == "(server total)" or n.startswith("[other thread]"):
                continue  # other threads: inside the script thread's waits, or the event loop's own work
            kinds["other page and Streamlit code" if n == "script" else category(n)] += acc[1]
        per_sample.append(kinds)
    cats = {k: med([d.get(k, 0.0) for d in per_sample]) for k in {k for d in per_sample for k in d}}
    litellm = any(get(s, "script", 3) for s in row.server)
    lines = [
        f"Server {total:.0f} ms, of which the script run {script:.0f} ms and the widget callbacks before it "
        f"{max(total - script, 0):.0f} ms (medians of {len(row.server)} on the timed server, whose wall figure "
        f"was {fmt_s(med(row.profiled_totals))}); litellm loaded: {'yes' if litellm else 'no'}. By kind (each "
        "summed within a sample, then the median): "
        + ", ".join(f"{c} {v:.0f} ms ({v / total:.0%})" for c, v in sorted(cats.items(), key=lambda kv: -kv[1])
                    if total and v >= 0.5) + ".",
    ]
    ser = "[other thread] streamlit.serialize_forward_msg"
    if any(ser in s for s in row.server):
        lines[0] += (
            f" Messages to the browser: {med([get(s, ser, 2) for s in row.server]):.0f}, serialised (protobuf, on "
            f"the event loop) in {med([get(s, ser, 0) for s in row.server]):.1f} ms, "
            f"{med([get(s, ser, 3) for s in row.server]) / 1024:.0f} KB."
        )
    lines += [
        "",
        "| function | calls | self ms | incl. ms | share (self) | bytes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for n, own, incl, calls, size in sorted(by_name, key=lambda t: -t[1])[:14]:
        if n == "script" or own < 0.5:
            continue
        share = f"{own / total:.0%}" if total else ""
        lines.append(f"| `{n}` | {calls:.0f} | {own:.0f} | {incl:.0f} | {share} | {f'{size / 1024:.0f} KB' if size else ''} |")
    if row.js:
        by_file = {f: med([j["files"].get(f, 0.0) for j in row.js]) for f in {f for j in row.js for f in j["files"]}}
        by_fn = {f: med([j["functions"].get(f, 0.0) for j in row.js]) for f in {f for j in row.js for f in j["functions"]}}
        busy = med([sum(j["files"].values()) for j in row.js])
        lines += [
            "",
            f"Browser main thread, sampled by Chromium's profiler during the action: {busy:.0f} ms busy (median). "
            "By script: " + ", ".join(f"{f} {v:.0f} ms" for f, v in sorted(by_file.items(), key=lambda kv: -kv[1])[:6]
                                      if v >= 1) + ". Top functions (self): "
            + ", ".join(f"`{f}` {v:.0f} ms" for f, v in sorted(by_fn.items(), key=lambda kv: -kv[1])[:8] if v >= 1) + ".",
        ]
    return lines


def budget_table(bench: Bench) -> list[str]:
    out = [
        "| action | budget | median | min | max | n | result | complete (median) |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for item, (budget, what) in ITEMS.items():
        row = bench.rows.get(item)
        if row is None or not row.samples:
            continue
        totals = [x.total_ms for x in row.samples]
        median = med(totals)
        if budget is None:
            verdict = ""
        elif median <= budget * 1000:
            verdict = "pass"
        else:
            verdict = f"**fail** ({median / 1000 / budget:.1f}x)"
        limit = "" if budget is None else f"< {budget:g} s"
        complete = med([x.complete_ms for x in row.samples])
        out.append(
            f"| {what} (`{item}`) | {limit} | {fmt_s(median)} | {fmt_s(min(totals))} | {fmt_s(max(totals))} | "
            f"{len(totals)} | {verdict} | {fmt_s(complete)} |"
        )
    return out


def browser_table(bench: Bench) -> list[str]:
    out = [
        (
            "| action | total | first run | running | tail | runs | renderer | JS | layout+style | long tasks | "
            "server CPU | websocket | downloaded | charts |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for item in ITEMS:
        row = bench.rows.get(item)
        if row is None or not row.samples:
            continue
        samples = row.samples

        def m(get: Callable[[Sample], float | None], samples: list[Sample] = samples) -> float:
            values = [v for v in (get(x) for x in samples) if v is not None and not math.isnan(v)]
            return med(values) if values else float("nan")

        def ms(v: float) -> str:
            return "" if math.isnan(v) else f"{v:.0f} ms"

        layout = m(lambda x: x.renderer.get("LayoutDuration", 0) + x.renderer.get("RecalcStyleDuration", 0))
        downloaded = m(lambda x: x.downloaded_kb)
        n_charts = max(x.charts for x in samples)
        cells = [
            f"`{item}`",
            ms(m(lambda x: x.total_ms)),
            ms(m(lambda x: x.first_run_ms)),
            ms(m(lambda x: x.running_ms)),
            ms(m(lambda x: x.tail_ms)),
            f"{m(lambda x: x.runs):.0f}",
            ms(m(lambda x: x.renderer.get("TaskDuration"))),
            ms(m(lambda x: x.renderer.get("ScriptDuration"))),
            ms(layout),
            f"{ms(m(lambda x: x.long_tasks_ms))} ({m(lambda x: x.long_tasks):.0f})",
            ms(m(lambda x: x.server_cpu_ms)),
            f"{m(lambda x: x.ws_kb):.0f} KB",
            "" if math.isnan(downloaded) else f"{downloaded:.0f} KB",
            str(n_charts) if n_charts > 0 else "",
        ]
        out.append("| " + " | ".join(cells) + " |")
    return out


def notes_section(bench: Bench) -> list[str]:
    notes = [f"- `{item}`: {n}" for item in ITEMS if item in bench.rows for n in bench.rows[item].notes]
    grouped: dict[str, list[str]] = defaultdict(list)
    for item in ITEMS:
        for x in bench.rows[item].samples if item in bench.rows else []:
            if x.note:
                grouped[item].append(f"{x.note} {x.total_ms / 1000:.2f} s")
    if not notes and not grouped:
        return []
    return ["", "Notes and the samples one by one:", "", *notes,
            *(f"- `{item}`: " + ", ".join(v) for item, v in grouped.items())]  # fmt: skip


BROWSER_TEXT = (
    "Medians. *first run*: from the action until a script run started (for a navigation: loading the page, "
    "its scripts and the websocket); *running*: a script run in flight, as the page saw it (the server "
    "working, and the browser drawing what arrives meanwhile); *tail*: from the last run's end until the "
    "content was visible; *renderer*: Chromium's main-thread time during the action (CDP TaskDuration), of "
    "which JavaScript and layout + style; *server CPU*: the server process's CPU time (all its threads); "
    "*websocket*: what the server sent; *downloaded*: HTTP bodies transferred (0 = from the browser's cache); "
    "*charts*: visible plotly charts."
)
SERVER_TEXT = (
    "The same actions on a second server started through bench/timed_entry.py (bench/app_timing.py wraps the "
    "storage queries, the engine, the HTML and figure builders, the Streamlit calls that serialise them, the "
    "protobuf serialisation of the messages, and first-time imports). *self*: time in the function itself, "
    "not in another wrapped function it called; *incl.*: with them; medians over the samples; *bytes*: the "
    "size of what an `st.html` call was given. *Other page and Streamlit code* is the script's time outside "
    "every wrapped function (widgets, layout, Streamlit's own work, page code). In the browser profile "
    "(Chromium's sampling profiler over the same actions), *(program)* is Chromium's own work outside "
    "JavaScript (style, layout, paint, parsing); `vis` and `requestAnimationFrame` are this benchmark's "
    "polling of the page."
)


def report(bench: Bench, args: argparse.Namespace, fx: Fixture, started: float, revision: str) -> str:
    import streamlit

    command = "LITELLM_OFFLINE_MODE=true .venv/bin/python bench/browser_speed.py " + " ".join(args.raw)
    chromium = subprocess.run(
        ["/usr/bin/chromium", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    loads = "; ".join(f"{k} {a:.1f} / {b:.1f} / {c:.1f}" for k, (a, b, c) in bench.loads.items())
    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    out = [
        "# Speed budgets in a real browser",
        "",
        f"Command: `{command.strip()}`",
        "",
        (
            f"Revision {revision}, {when}, {(time.time() - started) / 60:.0f} min. Machine: {platform.platform()}, "
            f"Python {platform.python_version()}, {os.cpu_count()} cores shared with other work; Streamlit "
            f"{streamlit.__version__}, {chromium} (headless, Playwright). Database: a copy of `{bench.db.name}` "
            f"from bench/make_big_db.py: {fx.runs:,} runs, {fx.votes:,} votes. Permalink run `{fx.run_id}` "
            f"({fx.run_n} candidates); scenarios: {', '.join(fx.scenarios)}."
        ),
        "",
        f"Load average (1, 5, 15 min) when each part started: {loads}.",
        "",
        (
            "Time from the action (a click, or the navigation) until the app is idle and the content is "
            f"visible; median of {args.repeats} after one untimed warm-up of the same action (cold rows: a new "
            "server each time). The budgets are those of the issue; the unwrapped server only. *Complete*: until "
            "no placeholder of a lazily loaded element (plotly charts, download buttons) was left and every "
            "visible chart was drawn, which can come after the content itself."
        ),
        "",
        *budget_table(bench),
        "",
        "## Where the time goes, as the browser saw it",
        "",
        BROWSER_TEXT,
        "",
        *browser_table(bench),
        *notes_section(bench),
    ]
    if any(row.server for row in bench.rows.values()):
        out += ["", "## Where the server's time goes (timed server)", "", SERVER_TEXT]
        for item in ITEMS:
            row = bench.rows.get(item)
            if row is not None and row.server:
                out += ["", f"### `{item}`", "", *server_table(row)]
    return "\n".join(out) + "\n"


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "app", "components", "fusion", "storage"],
                               cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
        return rev + (" (app code modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="a make_big_db.py SQLite file (made if missing)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-profile", action="store_true", help="skip the timed server's pass")
    parser.add_argument("--only", default="", help="comma-separated flows: " + ",".join(FLOWS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "browser_speed.md")
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    args.raw = raw
    if not chromium_available():
        print("no Chromium at /usr/bin/chromium (apt-get install chromium; never `playwright install`)", file=sys.stderr)
        return 2
    only = {f.strip() for f in args.only.split(",") if f.strip()}
    unknown = only - set(FLOWS)
    if unknown:
        parser.error(f"unknown flows: {', '.join(sorted(unknown))}")
    ensure_db(args.db)
    started = time.time()
    fx = fixture(args.db)
    print(f"database {args.db}: {fx.runs} runs, {fx.votes} votes; permalink {fx.run_id}", flush=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="browser-speed-") as tmp, sync_playwright() as pw:
        bench = Bench(pw, args.db, fx, Path(tmp), args.repeats, only)
        try:
            bench.run(profile=not args.no_profile)
        finally:
            bench.close()
        text = report(bench, args, fx, started, git_revision())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

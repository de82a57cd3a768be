"""The Results page in a real browser (Debian's Chromium through Playwright) on a big database: the page as
it is now against a baseline commit of the page, both served at once from the same database copy, loads
interleaved so both see the same machine load.

Measured per load: seconds from the request to the moment the script run has ended and every visible chart
is drawn. A third server with an empty database shows what any page load costs on the machine at that moment
(Streamlit's session start, the navigation, the page's "nothing yet" text): the floor under the other two. "first" is the first load after the server started (the statistics are computed); "warm" loads
are reloads in the same browser tab (the HTTP cache holds the JavaScript; the statistics are cached), the
case of someone coming back to the page. Also timed: flipping the blind toggle (the current page only).

    .venv/bin/python bench/results_page.py [--db DB | --population] [--runs 5000 --votes 15000]
        [--baseline 844602b] [--repeats 5] [--out bench/results/results_page.md]

Without ``--db`` a database is built first with bench/results_db.py (about 30 s); ``--population`` uses the
tests' small project instead (a handful of votes, where the fixed costs of the page show). ``--baseline`` is any
commit of this repository; its tree is unpacked with ``git archive`` into a temporary folder.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "tests", ROOT / "bench"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from browser_support import launch_chromium, start_app  # noqa: E402

TIMEOUT_MS = 180_000
READY_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    if (!document.querySelector('[data-testid="stMain"] [data-testid="stMetric"]')) return false;
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
        .filter(e => e.offsetParent !== null);
    return charts.length > 0 && charts.every(e => e.querySelector('.main-svg'));
}"""


def _wait_ready(page: Any) -> None:
    page.wait_for_function(READY_JS, timeout=TIMEOUT_MS, polling=20)


EMPTY_READY = '[data-testid="stApp"][data-test-script-state="notRunning"] [data-testid="stMain"] [data-testid="stAlert"]'


def load_seconds(page: Any, url: str | None, *, empty: bool = False) -> float:
    """Seconds until the page is ready: ``url`` given: navigate there; else reload the tab. ``empty``: the
    page of an empty database, ready once its notice is shown."""
    t0 = time.perf_counter()
    if url is None:
        page.reload(wait_until="commit", timeout=TIMEOUT_MS)
    else:
        page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
    if empty:
        page.wait_for_selector(EMPTY_READY, timeout=TIMEOUT_MS)
    else:
        _wait_ready(page)
    return time.perf_counter() - t0


def toggle_seconds(page: Any) -> float:
    """Seconds from a click on the blind toggle until the rerun it starts has ended and charts are drawn;
    nan when there is no toggle to click (a page without it, or no non-blind vote: it is disabled)."""
    box = page.get_by_label("Include non-blind votes")
    if box.count() == 0 or box.first.is_disabled():
        return float("nan")
    return _timed_rerun(page, lambda: page.get_by_text("Include non-blind votes", exact=True).first.click())


def tag_seconds(page: Any, option: str | None) -> float:
    """Seconds from choosing ``option`` in the Tag box (``None``: the first tag after "All runs") until the
    whole page has rerun and drawn its charts."""
    box = page.locator('[data-testid="stSelectbox"]').first
    box.locator("input").first.click()
    options = page.get_by_role("listbox").get_by_role("option")
    choice = options.nth(1) if option is None else options.filter(has_text=option).first
    choice.wait_for(state="visible", timeout=TIMEOUT_MS)
    return _timed_rerun(page, choice.click)


def _timed_rerun(page: Any, action: Any) -> float:
    before = page.evaluate("() => window.__fxRunWatch.runs")
    t0 = time.perf_counter()
    action()
    page.wait_for_function("(n) => window.__fxRunWatch.runs > n", arg=before, timeout=TIMEOUT_MS)
    _wait_ready(page)
    return time.perf_counter() - t0


def server_breakdown(db: Path, repeats: int) -> dict[str, float]:
    """CPU seconds (median of ``repeats``) of the current page's warm script run, run through AppTest in
    this process, and what the page's two storage reads cost on a cache miss (a warm run makes neither)."""
    import os

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from storage.db import make_engine
    from storage.stats_sql import attribution_columns, vote_columns

    os.environ["FUSION_DB_PATH"] = str(db)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=300).run()
    at.switch_page("results.py").run()  # the first run computes and caches the statistics
    engine = make_engine(f"sqlite:///{db}")
    parts: dict[str, list[float]] = {"page": [], "vote_columns": [], "attribution_columns": []}
    for _ in range(repeats):
        t0 = time.process_time()
        at.run()
        parts["page"].append(time.process_time() - t0)
        t0 = time.process_time()
        vote_columns(engine)
        parts["vote_columns"].append(time.process_time() - t0)
        t0 = time.process_time()
        attribution_columns(engine)
        parts["attribution_columns"].append(time.process_time() - t0)
    engine.dispose()
    return {k: statistics.median(v) for k, v in parts.items()}


def unpack(commit: str, into: Path) -> Path:
    """The repository tree at ``commit``, extracted into ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", type=Path, help="a database made by bench/results_db.py (else one is built)")
    p.add_argument(
        "--population", action="store_true",
        help="use the tests' small project instead (tests/results_population.py: 9 scenario runs, 23 votes)",
    )  # fmt: skip
    p.add_argument("--runs", type=int, default=5000)
    p.add_argument("--votes", type=int, default=15000)
    p.add_argument("--baseline", default="844602b", help="commit of the baseline page")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path)
    p.add_argument("--label", help="what the database holds, for the report (default: the --runs/--votes it was built with)")
    a = p.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from browser_support import _WATCH_JS

    work = Path(tempfile.mkdtemp(prefix="results-page-"))
    servers: dict[str, Any] = {}
    try:
        db = a.db
        if a.population:
            from results_population import PLAN, populate
            from storage.migrations import init_db

            db = work / "population.db"
            engine = init_db(f"sqlite:///{db}")
            populate(engine)
            engine.dispose()
            a.label = a.label or (
                f"the tests' population: 9 scenario runs, {sum(len(v) for v in PLAN.values())} votes by 4 annotators"
            )
        elif db is None:
            from results_db import build

            db = work / "bench.db"
            print(f"building {db} ...", flush=True)
            print(build(db, runs=a.runs, votes=a.votes), flush=True)
        baseline_root = unpack(a.baseline, work / "baseline")
        for name, entry in (("baseline", baseline_root / "app" / "main.py"), ("current", ROOT / "app" / "main.py")):
            srv = start_app(work / f"srv-{name}", entry=str(entry))
            shutil.copy(db, srv.db_path)
            servers[name] = srv
        db_copy = work / "breakdown.db"
        shutil.copy(db, db_copy)
        servers["empty"] = start_app(work / "srv-empty")
        times: dict[str, dict[str, list[float]]] = {n: {"first": [], "warm": [], "tag": [], "toggle": []} for n in servers}
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            tabs = {}
            for name, srv in servers.items():
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                ctx.add_init_script(script=_WATCH_JS)
                tabs[name] = ctx.new_page()
                times[name]["first"].append(load_seconds(tabs[name], srv.url + "results", empty=name == "empty"))
                print(f"{name}: first load {times[name]['first'][0]:.2f} s", flush=True)
            for r in range(a.repeats):
                for name in servers:
                    times[name]["warm"].append(load_seconds(tabs[name], None, empty=name == "empty"))
                for name in ("baseline", "current"):
                    # A tag, then back to all runs: two whole-page reruns with new data each.
                    times[name]["tag"].append(tag_seconds(tabs[name], None))
                    times[name]["tag"].append(tag_seconds(tabs[name], "All runs"))
                times["current"]["toggle"].append(toggle_seconds(tabs["current"]))
                print(f"repeat {r + 1}: " + ", ".join(f"{n} {times[n]['warm'][-1]:.2f} s" for n in servers), flush=True)
            browser.close()
        for srv in servers.values():
            srv.stop()
        # After the servers are gone, so that only this process uses the machine's share of the cores.
        parts = server_breakdown(db_copy, a.repeats)
    finally:
        for srv in servers.values():
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)

    med = {n: statistics.median(t["warm"]) for n, t in times.items()}
    toggles = [x for x in times["current"]["toggle"] if x == x]
    lines = [
        "# The Results page in a real browser, before and after",
        "",
        "Command: `.venv/bin/python bench/results_page.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`",
        "",
        f"Database: {a.label or f'{a.runs:,} runs and {a.votes:,} votes by 6 annotators (bench/results_db.py)'}. Baseline: the page at commit `{a.baseline}`. Chromium {platform.machine()}, window "
        f"1400 px wide, Python {platform.python_version()}. The servers run at once on the same 2 shared cores and "
        "their loads are interleaved, so the ratio is the figure to trust; absolute times move with the machine's "
        "load.",
        "",
        "| page | first load (s, statistics computed) | warm reload, median (s) | warm reloads (s) | tag change, median (s) |",
        "|---|---|---|---|---|",
    ]
    tag_med = {n: statistics.median(t["tag"]) if t["tag"] else float("nan") for n, t in times.items()}
    for n, t in times.items():
        lines.append(
            f"| {n} | {t['first'][0]:.2f} | {med[n]:.2f} | {', '.join(f'{x:.2f}' for x in t['warm'])} | "
            + ("-" if n == "empty" else f"{tag_med[n]:.2f}")
            + " |"
        )
    lines += [
        "",
        f"Baseline / current: warm reload **{med['baseline'] / med['current']:.2f}x**, first load "
        f"**{times['baseline']['first'][0] / times['current']['first'][0]:.2f}x**, tag change "
        f"**{tag_med['baseline'] / tag_med['current']:.2f}x** (the first change to a tag computes its statistics).",
        f"Above the empty page's floor ({med['empty']:.2f} s): baseline +{med['baseline'] - med['empty']:.2f} s, "
        f"current +{med['current'] - med['empty']:.2f} s per warm reload.",
    ]
    if toggles:
        lines.append(
            f"Blind toggle on the current page (the fragment alone reruns), median of {len(toggles)}: "
            f"{statistics.median(toggles):.2f} s."
        )
    else:
        lines.append("Blind toggle: not timed (no non-blind vote in this database, so the toggle is disabled).")
    lines += [
        "",
        f"Server side of a warm run of the current page (AppTest in one process, CPU seconds, median of {a.repeats}): "
        f"{parts['page']:.2f} s (cached statistics, figures, tables, AppTest's own polling; no vote or attribution "
        f"is read while the fingerprint is unchanged). On a cache miss the page reads the votes "
        f"(`storage.stats_sql.vote_columns`, {parts['vote_columns']:.2f} s) and the attribution "
        f"(`attribution_columns`, {parts['attribution_columns']:.2f} s).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

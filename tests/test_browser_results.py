"""The Results page in a real browser (Debian's Chromium through Playwright), at 1400 and 800 px wide, on a
populated database (tests/results_population.py) and then on an empty one.

This module starts its own app server (its database must hold exactly the population, which the shared
server's does not). Screenshots go to test-artifacts/results-*.png.

Run: ``.venv/bin/pytest tests/test_browser_results.py -q``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from browser_support import (  # noqa: F401  (browser is a pytest fixture)
    AppServer,
    browser,
    off_loop,
    open_app,
    screenshot,
    start_app,
    tab_panel,
    wait_for_idle,
)
from results_population import ALL_BON, ALL_BOTH_BAD, PLAN, populate

pytestmark = pytest.mark.browser

WIDTHS = (1400, 800)

# Text that is cut (ellipsis or hidden overflow) has a scroll width beyond its box.
CUT_JS = """(selector) => [...document.querySelectorAll(selector)]
    .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
    .map(e => e.innerText)"""
# A plotly title, axis title, text label or annotation reaching past its chart is cut at the chart's edge.
CHART_TEXT_CUT_JS = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
    .filter(e => e.offsetParent !== null)
    .flatMap(e => {
        const svg = e.querySelector('.main-svg').getBoundingClientRect();
        const plot = e.querySelector('.nsewdrag');
        const area = plot ? plot.getBoundingClientRect() : svg;
        return [...e.querySelectorAll('.gtitle, .xtitle, .ytitle, .textpoint text, .annotation-text')]
            .filter(t => {
                const r = t.getBoundingClientRect();
                // Text under a clip path (a trace clipped to the axes) is cut at the plot area, other text
                // at the edge of the chart.
                const box = t.closest('[clip-path]') ? area : svg;
                return r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1);
            })
            .map(t => t.textContent);
    })"""
PLOTS_DRAWN_JS = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
    .filter(e => e.offsetParent !== null).every(e => e.querySelector('.main-svg'))"""


@pytest.fixture(scope="module")
def results_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    from storage.migrations import init_db

    workdir = tmp_path_factory.mktemp("results-app")
    engine = init_db(f"sqlite:///{workdir / 'fusion.db'}")  # the file start_app points the app at
    try:
        off_loop(populate, engine)  # the browser may be up already: its loop would refuse asyncio.run
    finally:
        engine.dispose()
    server = start_app(workdir)
    yield server
    server.stop()


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.page_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


def no_error_box(page: Any) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert "encountered an error" not in page.locator('[data-testid="stMain"]').inner_text()


def svg_texts(locator: Any) -> list[str]:
    """What plotly drew (SVG elements have no innerText), for the texts actually on screen inside their
    chart: a text placed outside the plot exists in the DOM but is not drawn."""
    return locator.evaluate_all(
        """els => els.filter(e => {
            const r = e.getBoundingClientRect();
            const box = e.closest('.main-svg').getBoundingClientRect();
            return r.width > 0 && r.left >= box.left && r.right <= box.right + 1 && getComputedStyle(e).opacity !== '0';
        }).map(e => e.textContent.trim())"""
    )


def open_lazy_tab(page: Any, name: str) -> Any:
    """Select a tab whose content is drawn on demand (``on_change="rerun"``) and wait for that content: a
    fragment rerun this quick can start and end between two looks at the page's run state, so the wait is
    for what the tab shows, not for the run."""
    page.get_by_role("tab", name=name, exact=True).first.click()
    panel = tab_panel(page, name)
    panel.locator('[role="img"], [data-testid="stDataFrame"], [data-testid="stCaptionContainer"]').first.wait_for(
        state="visible"
    )
    wait_for_idle(page)
    page.wait_for_function(PLOTS_DRAWN_JS)
    return panel


def html_chart(page: Any, title: str) -> Any:
    """A chart of components.html_charts by its title (its aria-label)."""
    return page.locator(f'[role="img"][aria-label^="{title}"]').first


def test_populated_results_page_at_two_widths(results_server: AppServer, tab: Any) -> None:
    open_app(tab, results_server, "results")
    tab.wait_for_function(PLOTS_DRAWN_JS)
    no_error_box(tab)
    main = tab.locator('[data-testid="stMain"]')
    assert "Fusion-of-N against Best-of-N" in main.inner_text()
    n_votes = sum(len(v) for v in PLAN.values())
    assert f"All {n_votes} votes were cast blind" in main.inner_text()

    # By model: the scenarios, never their personas; every bar labelled, the 0% bar included.
    model_chart = html_chart(tab, "Fusion-of-N win rate by model")
    rows = model_chart.locator(".fx-rate-row")
    names = rows.evaluate_all("els => els.map(e => e.dataset.label)")
    assert f"scenario:{ALL_BON}" in names and not any(t in names for t in ("scenario:coach", "scenario:literal"))
    assert f"scenario:{ALL_BOTH_BAD}" not in names  # no rate: in the table only
    labels = [t.strip() for t in model_chart.locator(".fx-rate-text").all_inner_texts()]
    assert len(labels) == len(names)
    assert "0% (n=2, no CI)" in labels and "100% (n=1, no CI)" in labels
    screenshot(tab, "results-by-model-1400", full_page=False)

    # One vote by dee: a rate, n=1, no interval.
    panel = open_lazy_tab(tab, "By annotator")
    assert "100% (n=1, no CI)" in [t.strip() for t in panel.locator(".fx-rate-text").all_inner_texts()]

    # The contributors histogram counts candidates: one bin per whole number, integer ticks only.
    open_lazy_tab(tab, "Candidates contributing")
    bins = html_chart(tab, "Candidates contributing").locator(".fx-hist-bin")
    ticks = bins.evaluate_all("els => els.map(e => e.dataset.bin)")
    assert ticks and all(re.fullmatch(r"\d+", t) for t in ticks), ticks

    # The plotly chart of the win rate against N is drawn in its tab only.
    assert tab.locator('[data-testid="stPlotlyChart"]').count() == 0
    open_lazy_tab(tab, "By N")
    tab.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(state="visible")

    for width in WIDTHS:
        tab.set_viewport_size({"width": width, "height": 1000})
        tab.wait_for_function(PLOTS_DRAWN_JS)
        cut_metrics = tab.evaluate(
            CUT_JS, '[data-testid="stMetricValue"], [data-testid="stMetricValue"] *, '
            '[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] *',
        )  # fmt: skip
        assert cut_metrics == [], f"metrics cut at {width} px: {cut_metrics}"
        cut_buttons = tab.evaluate(CUT_JS, '[data-testid="stDownloadButton"] button, [data-testid="stDownloadButton"] button *')
        assert cut_buttons == [], f"export buttons cut at {width} px: {cut_buttons}"
        assert tab.locator('[data-testid="stDownloadButton"]').count() == 5
        cut_texts = tab.evaluate(CHART_TEXT_CUT_JS)
        assert cut_texts == [], f"chart texts cut at {width} px: {cut_texts}"
        cut_labels = tab.evaluate(CUT_JS, ".fx-rate-text, .fx-rate-row > div:first-child")
        assert cut_labels == [], f"bar labels cut at {width} px: {cut_labels}"
        screenshot(tab, f"results-populated-{width}")
    no_error_box(tab)
    assert tab.page_errors == []


def test_empty_results_page(results_server: AppServer, tab: Any) -> None:
    from storage.listing import list_runs
    from storage.runs import delete_run

    engine = results_server.engine()
    for run in list_runs(engine, limit=None):
        delete_run(engine, run.id)
    for width in WIDTHS:
        tab.set_viewport_size({"width": width, "height": 900})
        open_app(tab, results_server, "results")
        no_error_box(tab)
        assert "Nothing to show yet" in tab.locator('[data-testid="stMain"]').inner_text()
        screenshot(tab, f"results-empty-{width}")
    assert tab.page_errors == []

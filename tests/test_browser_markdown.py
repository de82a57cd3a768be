"""The Markdown view in a real browser (Debian's Chromium): a throw-away page (tests/markdown_page.py)
shows attributed Markdown through st.html as the app will. Checks what a reader gets: rendered constructs,
coloured spans with tooltips, highlight, kept/dropped marks, headings smaller than the page title, hostile
payloads that run nothing and fetch nothing, safe links. A screenshot goes to test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from browser_support import (  # noqa: F401  (pytest fixtures)
    AppServer,
    browser,
    open_app,
    page,
    screenshot,
    start_app,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def markdown_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(tmp_path_factory.mktemp("markdown-page"), entry="tests/markdown_page.py")
    try:
        yield server
    finally:
        server.stop()


def test_markdown_view_in_the_browser(markdown_server: AppServer, page: Any) -> None:
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_app(page, markdown_server)
    attributed = page.locator("#md-attributed .fx-attr .fx-attr-text")
    attributed.wait_for(state="visible")
    for sel in ("#md-code .fx-span", "#md-highlighted .fx-span", "#md-units .fx-unit", "#md-cjk p", "#md-hostile p"):
        page.locator(sel).first.wait_for(state="visible")

    # Constructs are rendered, not shown as typed.
    assert attributed.locator("h4").count() == 1  # "## A plan ..."
    assert attributed.locator("li").count() >= 4 and attributed.locator("table td").count() >= 14
    assert attributed.locator("strong").count() >= 4
    text = attributed.inner_text()
    assert "**" not in text and "| Day |" not in text and "## " not in text
    code = page.locator("#md-code pre code").first
    assert "escape_html" in code.inner_text()
    assert page.evaluate("getComputedStyle(document.querySelector('#md-code pre')).whiteSpace") == "pre"

    # An answer's biggest heading is smaller than the page title and bigger than its text.
    sizes = page.evaluate(
        """() => ({title: parseFloat(getComputedStyle(document.querySelector('h1')).fontSize),
                   head: parseFloat(getComputedStyle(document.querySelector('#md-attributed h4')).fontSize),
                   body: parseFloat(getComputedStyle(document.querySelector('#md-attributed p')).fontSize)})"""
    )
    assert sizes["body"] < sizes["head"] < sizes["title"] * 0.6, sizes

    # Attribution spans: coloured, with tooltips naming candidates; inside list items, cells and emphasis.
    info = attributed.locator(".fx-span").evaluate_all(
        """els => els.map(e => ({kind: e.dataset.kind, title: e.title,
            bg: getComputedStyle(e).backgroundColor, image: getComputedStyle(e).backgroundImage,
            where: e.closest('li') ? 'li' : e.closest('td,th') ? 'cell' : e.closest('strong') ? 'strong' : 'p'}))"""
    )
    assert {s["where"] for s in info} >= {"li", "cell", "strong", "p"}
    assert any(s["kind"] == "novel" for s in info) and any(s["kind"] == "single" for s in info)
    for s in info:
        if s["kind"] == "single":
            assert s["bg"] not in ("rgba(0, 0, 0, 0)", "transparent") and s["title"].startswith("from Candidate")
        elif s["kind"] == "novel":
            assert s["title"] == "new text, in no candidate"

    # Highlight: candidate 2's spans bold, the others faded.
    hl = page.locator("#md-highlighted .fx-span").evaluate_all(
        """els => els.map(e => ({lit: e.dataset.hl === '1', sources: e.dataset.sources,
            weight: getComputedStyle(e).fontWeight, opacity: parseFloat(getComputedStyle(e).opacity)}))"""
    )
    assert any(s["lit"] for s in hl) and any(not s["lit"] for s in hl)
    for s in hl:
        assert s["lit"] == ("1" in s["sources"].split(","))
        assert (s["weight"] == "700") if s["lit"] else (s["opacity"] < 1)

    # Kept / edited / dropped.
    units = page.locator("#md-units .fx-unit").evaluate_all(
        """els => els.map(e => ({status: e.dataset.status, deco: getComputedStyle(e).textDecorationLine,
            opacity: parseFloat(getComputedStyle(e).opacity)}))"""
    )
    assert {u["status"] for u in units} == {"kept", "edited", "dropped"}
    for u in units:
        if u["status"] == "dropped":
            assert "line-through" in u["deco"] and u["opacity"] < 1
        if u["status"] == "kept":
            assert u["opacity"] == 1

    # CJK reads as written.
    assert "木曜日のミーティング" in page.locator("#md-cjk").inner_text()

    # Hostile text is shown, runs nothing, loads nothing; the one http(s) link opens safely.
    hostile = page.locator("#md-hostile")
    shown = hostile.inner_text()
    assert "<script>window.__pwned = 1</script>" in shown and "[click](javascript:window.__pwned=4)" in shown
    assert "[image: pixel]" in shown
    assert page.evaluate("window.__pwned === undefined") and not dialogs
    assert hostile.locator("script, img, svg, iframe").count() == 0
    assert not [u for u in requests if "tracker.invalid" in u]
    links = hostile.locator("a")
    assert links.count() == 1
    assert links.first.get_attribute("href") == "https://example.com/page"
    assert links.first.get_attribute("target") == "_blank"
    assert set((links.first.get_attribute("rel") or "").split()) >= {"noopener", "noreferrer"}

    path = screenshot(page, "markdown-view")
    assert Path(path).stat().st_size > 10_000


def test_markdown_view_in_a_standalone_report_page(page: Any) -> None:
    """The report is one self-contained file whose Content-Security-Policy forbids scripts and fetches but
    allows inline styles: the rendering keeps its look there and still runs and loads nothing."""
    from components.markdown_view import attributed_markdown_html, markdown_html
    from fusion.attribution import attribute
    from fusion.scenarios import get_scenario

    s = get_scenario("escape-html-bug")
    cands = list(s.candidates)
    fused = cands[1] + "\n\n![pixel](https://tracker.invalid/p.gif) <img src=https://tracker.invalid/i.gif>"
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
    doc = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
        f'content="{csp}"><title>report</title></head><body><h1>Run report</h1>'
        f'<div id="fused">{attributed_markdown_html(fused, attribute(fused, cands), [])}</div>'
        f'<div id="cand">{markdown_html(cands[0])}</div></body></html>'
    )
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_content(doc)
    assert page.locator("#fused pre code").count() == 2 and page.locator("#cand li").count() == 3
    assert page.evaluate("getComputedStyle(document.querySelector('#fused pre')).whiteSpace") == "pre"
    spans = page.locator("#fused .fx-span[data-kind=single]")
    assert spans.count() > 0
    assert spans.first.evaluate("e => getComputedStyle(e).backgroundColor") not in ("rgba(0, 0, 0, 0)", "transparent")
    assert page.locator("img, script").count() == 0 and not [u for u in requests if "tracker" in u]

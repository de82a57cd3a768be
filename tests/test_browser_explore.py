"""The Explore page in a real browser, used the way a person uses it: a scenario opened from its card, the
blind vote cast with a click and with the keyboard, changed, and reported truly; the labelled view with its
attribution, legend and chart; hostile candidate text shown as text; a double click; state that survives
a trip to another page and a reload; the layout at 800 px.

Run: ``.venv/bin/pytest tests/test_browser_explore.py -q`` (one app server and one Chromium for the module).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from browser_support import (  # noqa: F401  (app_server, browser and page are pytest fixtures)
    AppServer,
    app_server,
    browser,
    fill_text,
    off_loop,
    open_app,
    open_tab,
    page,
    press,
    rerun_after,
    screenshot,
    segment,
    show_as_typed,
    wait_for_idle,
    watched_context,
)

pytestmark = pytest.mark.browser

HOSTILE = [
    "# heading",
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "**bold** [link](javascript:alert(1))",
    '"><svg onload="window.__pwned=3">',
    "![pic](https://example.com/x.png) [ok](https://example.com/page)",
]


@dataclass(frozen=True)
class Expected:
    """What the engine, run in this process, says the page must show for a scenario."""

    scenario_id: str
    title: str
    prompt: str
    n: int
    bon_index: int
    bon_text: str
    fused_text: str
    sources: frozenset[int]  # candidates the attribution credits with at least one span


def votable_scenarios() -> list[Expected]:
    """Built-in scenarios whose fused text differs from the Best-of-N pick (only those are voted on).

    Computed at test time because the offline fusor changes: which scenarios qualify is not fixed.
    """
    from fusion.pipeline import run_supplied
    from fusion.scenarios import load_scenarios
    from fusion.types import Prompt

    found = []
    for s in load_scenarios():
        prompt = Prompt(s.prompt, system=s.system)
        run = run_supplied(prompt, list(s.candidates), labels=list(s.candidate_labels))
        if run.bon_text is None or run.fused is None or run.attribution is None:
            continue
        if run.bon_text.strip() == run.fused.text.strip():
            continue
        found.append(
            Expected(
                scenario_id=s.id,
                title=s.title,
                prompt=s.prompt,
                n=len(s.candidates),
                bon_index=int(run.bon.index),
                bon_text=run.bon_text,
                fused_text=run.fused.text,
                sources=frozenset(i for sp in run.attribution.spans for i in sp.candidates),
            )
        )
    return found


@pytest.fixture(scope="module")
def scenarios() -> list[Expected]:
    found = off_loop(votable_scenarios)
    assert len(found) >= 3, "fewer than 3 built-in scenarios give a fused text different from the pick"
    return found


def annotator_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def open_scenario_card(page: Any, app_server: AppServer, title: str) -> None:
    """Open a scenario the way a person does: the Open button on its card in the gallery."""
    open_app(page, app_server)
    segment(page, "Scenario gallery")
    card = page.locator('[data-testid="stVerticalBlockBorderWrapper"], [data-testid="stVerticalBlock"]').filter(
        has=page.get_by_text(title, exact=True)
    ).filter(has=page.get_by_role("button", name="Open", exact=True)).last
    rerun_after(page, press(card.get_by_role("button", name="Open", exact=True)))
    page.locator(".fx-response, .fx-attr").first.wait_for(state="visible")


def vote_rows(app_server: AppServer, annotator: str) -> list[sqlite3.Row]:
    """The raw rows of the votes table for one annotator, read with sqlite3 (not the app's own queries)."""
    con = sqlite3.connect(app_server.db_path)
    con.row_factory = sqlite3.Row
    try:
        return con.execute("SELECT * FROM votes WHERE annotator = ?", (annotator,)).fetchall()
    finally:
        con.close()


def vote_form(page: Any) -> Any:
    """The vote form; after the reveal it is folded under "Change your vote" / "Vote on this run"."""
    form = page.locator('[data-testid="stForm"]').filter(has=page.get_by_role("button", name=re.compile("^Tie")))
    folded = page.locator('[data-testid="stExpander"] summary').filter(
        has_text=re.compile("Change your vote|Vote on this run")
    )
    form.first.or_(folded.first).first.wait_for(state="visible")
    if not form.first.is_visible():
        folded.first.click()
    form.first.wait_for(state="visible")
    return form.first


def cast_vote(page: Any, annotator: str | None, button: str, *, double: bool = False) -> None:
    """Fill the annotator name (when given) and click (or double-click) one vote button."""
    form = vote_form(page)
    if annotator is not None:
        fill_text(page, "Your name (annotator)", annotator, scope=form)
    target = form.get_by_role("button", name=re.compile(rf"^{re.escape(button)}"))
    rerun_after(page, target.dblclick if double else press(target))


def response_texts(page: Any) -> tuple[str, str]:
    boxes = page.locator(".fx-response .fx-response-text")
    return boxes.nth(0).inner_text(), boxes.nth(1).inner_text()


# ------------------------------------------------------------------------------------------ tests


def test_card_opens_blind_then_vote_reveals_attribution_and_change_is_reported(
    app_server: AppServer, page: Any, scenarios: list[Expected]
) -> None:
    from storage.runs import load_run

    expected = scenarios[0]
    open_scenario_card(page, app_server, expected.title)
    assert f"scenario={expected.scenario_id}" in page.url
    # Blind: two responses, rendered as Markdown, no labels, no attribution, no cards.
    assert page.locator(".fx-response .fx-md").count() == 2
    assert "**" not in " ".join(response_texts(page))
    show_as_typed(page)
    shown_a, shown_b = response_texts(page)
    assert {shown_a.strip(), shown_b.strip()} == {expected.bon_text.strip(), expected.fused_text.strip()}
    assert page.locator(".fx-attr, .fx-card, .fx-legend").count() == 0
    assert page.locator(".fx-pick, .fx-summary").count() == 0
    assert page.get_by_text("chosen by", exact=False).count() == 0
    screenshot(page, "explore-blind")

    annotator = annotator_name("browser-vote")
    cast_vote(page, annotator, "Tie")
    page.get_by_text(re.compile(r"^Vote saved: a tie\. Response A was")).wait_for(state="visible")
    page.get_by_text(re.compile(rf"You \({re.escape(annotator)}\) voted a tie")).wait_for(state="visible")
    (row,) = vote_rows(app_server, annotator)
    assert (row["choice"], row["winner"], bool(row["blind"])) == ("tie", "tie", True)

    # The labelled view: attribution over exactly the fused text, legend, chart.
    compare = open_tab(page, "Fusion vs Best-of-N")
    text = compare.locator(".fx-attr .fx-attr-text")
    assert text.text_content() == expected.fused_text
    info = text.locator(".fx-span").evaluate_all(
        """els => els.map(e => ({kind: e.dataset.kind, sources: e.dataset.sources, title: e.title,
                                  bg: getComputedStyle(e).backgroundColor,
                                  image: getComputedStyle(e).backgroundImage}))"""
    )
    assert info and {s["kind"] for s in info} <= {"single", "shared", "novel"}
    shown_sources: set[int] = set()
    for s in info:
        ids = [int(x) for x in s["sources"].split(",") if x]
        assert (s["kind"] == "novel") == (not ids) and (s["kind"] == "shared") == (len(ids) > 1)
        shown_sources.update(ids)
        if s["kind"] == "single":
            assert s["bg"] not in ("rgba(0, 0, 0, 0)", "transparent")
        elif s["kind"] == "shared":
            assert "gradient" in s["image"]
        for i in ids:
            assert f"Candidate {i + 1}" in s["title"]
    assert shown_sources == set(expected.sources)
    legend = compare.locator(".fx-legend")
    parts = [float(x) for x in legend.locator(".fx-legend-item").evaluate_all("els => els.map(e => e.dataset.share)")]
    assert abs(sum(parts) - 1.0) < 0.01  # every character once: the legend adds up
    assert legend.locator(".fx-legend-item[data-candidate]").count() == expected.n
    bar = compare.locator(".fx-bar .fx-bar-part")
    assert abs(sum(float(x) for x in bar.evaluate_all("els => els.map(e => e.dataset.share)")) - 1.0) < 0.01
    assert compare.get_by_text(f"Candidate {expected.bon_index + 1} (", exact=False).first.is_visible()

    # Change the vote: the page says so, the new button is the highlighted one, the database agrees.
    cast_vote(page, None, "Both are bad")
    page.get_by_text("Vote changed from a tie to both bad.").wait_for(state="visible")
    page.get_by_text(re.compile(rf"You \({re.escape(annotator)}\) voted both bad")).wait_for(state="visible")
    form = vote_form(page)
    assert form.get_by_role("button", name=re.compile("^Both are bad")).get_attribute("kind") == "primary" or (
        "primary" in (form.get_by_role("button", name=re.compile("^Both are bad")).get_attribute("data-testid") or "")
    )
    (row,) = vote_rows(app_server, annotator)
    assert (row["choice"], row["winner"], bool(row["blind"])) == ("both_bad", "both_bad", False)
    run = load_run(app_server.engine(), row["run_id"])
    assert run.source == f"scenario:{expected.scenario_id}" and run.fused.text == expected.fused_text
    screenshot(page, "explore-voted")


def test_keyboard_votes_and_never_fires_while_typing(
    app_server: AppServer, page: Any, scenarios: list[Expected]
) -> None:
    expected = scenarios[1]
    open_scenario_card(page, app_server, expected.title)
    annotator = annotator_name("browser-keys")
    form = vote_form(page)
    fill_text(page, "Your name (annotator)", annotator, scope=form)
    comment = form.locator("textarea").first
    comment.click()
    comment.type("1234 typed, not votes")
    wait_for_idle(page)
    assert vote_rows(app_server, annotator) == []
    page.evaluate("() => document.activeElement.blur()")
    rerun_after(page, lambda: page.keyboard.press("3"))
    page.get_by_text(re.compile(r"^Vote saved: a tie\.")).wait_for(state="visible")
    (row,) = vote_rows(app_server, annotator)
    assert row["choice"] == "tie" and row["comment"] == "1234 typed, not votes"


def test_state_survives_another_page_and_a_reload(
    app_server: AppServer, page: Any, scenarios: list[Expected]
) -> None:
    expected = scenarios[2]
    open_scenario_card(page, app_server, expected.title)
    blind_texts = response_texts(page)
    # A page switch is not always seen as a rerun by the run watcher (the page's root is replaced), so
    # these wait for what the next page shows instead.
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Annotate", exact=True).click()
    page.get_by_role("heading", name="Annotate").first.wait_for(state="visible")
    wait_for_idle(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Explore", exact=True).click()
    page.locator(".fx-response").first.wait_for(state="visible")
    wait_for_idle(page)
    checked = page.locator('[data-testid="stButtonGroup"] button[aria-checked="true"]').all_inner_texts()
    assert "Scenario gallery" in checked
    assert f"scenario={expected.scenario_id}" in page.url
    assert response_texts(page) == blind_texts  # the same run, the same A/B order
    page.reload(wait_until="domcontentloaded")
    page.locator(".fx-response").first.wait_for(state="visible")
    wait_for_idle(page)
    assert set(response_texts(page)) == set(blind_texts)  # the same run (a new session may swap A and B)


def test_hostile_candidate_text_is_shown_as_text(app_server: AppServer, page: Any) -> None:
    from fusion.pipeline import run_supplied

    prompt = "Show the markup <b>as typed</b> please"
    shared = "\n".join(HOSTILE)
    texts = [
        shared + "\nThe first answer adds a short closing note about testing.",
        shared + "\nA second answer ends with a different remark on escaping.",
        shared + "\nThird: sanitising output is the renderer's job.",
    ]
    # Precondition on the engine, so a failure below is about the page: the fusion keeps every hostile line.
    expected = off_loop(run_supplied, prompt, texts)
    assert expected.fused is not None
    assert all(h in expected.fused.text for h in HOSTILE), expected.fused.text

    open_app(page, app_server)
    show_as_typed(page)
    segment(page, "Your own candidates")
    for label, value in [("Prompt", prompt)] + [(f"Candidate {i + 1}", t) for i, t in enumerate(texts)]:
        fill_text(page, label, value)
    rerun_after(page, press(page.get_by_role("button", name="Fuse these candidates")))
    page.locator(".fx-attr .fx-span").first.wait_for(state="visible")  # own candidates: labelled at once

    compare = open_tab(page, "Fusion vs Best-of-N")
    fused_view = compare.locator(".fx-attr-text")
    assert fused_view.text_content() == expected.fused.text
    for h in HOSTILE:
        assert h in fused_view.inner_text()
    bon_box = compare.locator(".fx-text").filter(has_text="<script>")
    assert bon_box.count() >= 1
    cards_panel = open_tab(page, "Candidates: kept and dropped")
    cards = cards_panel.locator(".fx-card")
    cards.first.wait_for(state="visible")
    assert cards.count() == len(texts)
    for i in range(len(texts)):
        card_text = cards.nth(i).locator(".fx-card-text").inner_text()
        for h in HOSTILE:
            assert h in card_text
    assert page.locator('[data-testid="stExpander"] .fx-text').filter(has_text="<b>as typed</b>").count() == 1

    # Nothing ran, nothing became markup.
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator('a[href^="javascript:"]').count() == 0
    markup = "script, img, a, h1, strong, b, em, code"
    assert fused_view.locator(markup).count() == 0
    assert cards_panel.locator(".fx-card-text").locator(markup).count() == 0
    screenshot(page, "explore-hostile-candidates")

    # Rendered as Markdown: the Markdown takes effect, the HTML and the script links stay inert.
    show_as_typed(page, on=False)
    compare = open_tab(page, "Fusion vs Best-of-N")
    rendered = compare.locator(".fx-attr-text")
    rendered.locator("strong").first.wait_for(state="visible")
    assert rendered.locator("h3, h4").count() >= 1  # "# heading", shifted below the page's own headings
    assert "<script>window.__pwned=1</script>" in rendered.inner_text()  # raw HTML shown as text
    assert "[image: pic]" in rendered.inner_text()  # images are never loaded
    links = rendered.locator("a")
    hrefs = links.evaluate_all("els => els.map(a => [a.getAttribute('href'), a.rel, a.target])")
    assert hrefs and all(h == "https://example.com/page" for h, _, _ in hrefs), hrefs
    assert all("noopener" in rel and "noreferrer" in rel and target == "_blank" for _, rel, target in hrefs)
    assert page.locator('[data-testid="stMain"] img, .fx-md svg, [onload], [onerror]').count() == 0
    assert page.locator('a[href^="javascript:"]').count() == 0
    screenshot(page, "explore-hostile-rendered")
    wait_for_idle(page)
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.page_errors == []


def test_hostile_annotator_name_is_shown_as_typed(
    app_server: AppServer, page: Any, scenarios: list[Expected]
) -> None:
    open_scenario_card(page, app_server, scenarios[0].title)
    name = f"**bold** [x](javascript:alert(1)) :red[y] {uuid.uuid4().hex[:6]}"
    cast_vote(page, name, "A is better")
    caption = page.get_by_text("voted", exact=False).filter(has_text="**bold**").first
    caption.wait_for(state="visible")
    assert "[x](javascript:alert(1)) :red[y]" in caption.inner_text()
    assert page.locator('a[href^="javascript:"]').count() == 0
    assert caption.locator("strong, a").count() == 0


def test_double_click_on_a_vote_button_records_one_vote(
    app_server: AppServer, page: Any, scenarios: list[Expected]
) -> None:
    open_scenario_card(page, app_server, scenarios[1].title)
    annotator = annotator_name("browser-dblclick")
    cast_vote(page, annotator, "Tie", double=True)
    wait_for_idle(page)
    page.get_by_text(re.compile(rf"You \({re.escape(annotator)}\) voted a tie")).wait_for(state="visible")
    rows = vote_rows(app_server, annotator)
    assert len(rows) == 1
    assert (rows[0]["choice"], rows[0]["winner"]) == ("tie", "tie")
    assert rows[0]["run_id"].startswith("sce-")


def test_narrow_window_wraps_figures_and_highlight_options(app_server: AppServer, browser: Any) -> None:
    """Defects 11 and 15: at 800 px the figures were cut and the highlight control hid candidates."""
    from fusion.pipeline import run_supplied
    from storage.migrations import init_db
    from storage.runs import save_run

    texts = [f"Step {i}: water the basil when the top inch is dry, and give it {i + 4} hours of sun." for i in range(16)]
    run = off_loop(run_supplied, "How do I keep basil alive?", texts, run_id=f"wide-{uuid.uuid4().hex[:8]}")
    engine = init_db(f"sqlite:///{app_server.db_path}")
    try:
        save_run(engine, run)
    finally:
        engine.dispose()
    context = watched_context(browser, 800)
    try:
        pg = context.new_page()
        pg.goto(app_server.url + f"?run={run.id}", wait_until="domcontentloaded")
        reveal = pg.get_by_role("button", name="Show the labels without voting")
        reveal.or_(pg.locator(".fx-summary")).first.wait_for(state="visible")
        wait_for_idle(pg)
        if reveal.count():  # votable: blind first; an identical pair opens labelled
            rerun_after(pg, reveal.click)
        pg.locator(".fx-summary").wait_for(state="visible")
        wait_for_idle(pg)
        width = pg.evaluate("() => document.documentElement.clientWidth")
        for value in pg.locator(".fx-figure-value").all():
            box = value.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width + 1
            assert value.evaluate("e => e.scrollWidth <= e.clientWidth + 1")  # nothing cut
        group = pg.locator('[data-testid="stButtonGroup"]').filter(has_text="Candidate 16")
        buttons = group.locator("button")
        group.first.scroll_into_view_if_needed()
        screenshot(pg, "explore-800px-labelled", full_page=False)
        names = [b.inner_text().strip() for b in buttons.all()]
        assert [n for n in names if n.startswith("Candidate")] == [f"Candidate {i}" for i in range(1, 17)], names
        for i in range(buttons.count()):
            box = buttons.nth(i).bounding_box()
            assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= width + 1
        rerun_after(pg, press(buttons.nth(16)))
        assert pg.locator('.fx-span[data-hl="1"]').count() >= 1
        screenshot(pg, "explore-800px")
    finally:
        context.close()

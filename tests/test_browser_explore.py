"""The Explore page in a real browser: a scenario taken through Best-of-N and Fusion-of-N with its
attribution, chart and blind vote; hostile candidate text shown as text; a double click on a vote button.

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
    choose_option,
    fill_text,
    off_loop,
    open_app,
    open_tab,
    page,
    rerun_after,
    screenshot,
    segment,
    wait_for_idle,
)

pytestmark = pytest.mark.browser

HOSTILE = [
    "# heading",
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "**bold** [link](javascript:alert(1))",
]


@dataclass(frozen=True)
class Expected:
    """What the engine, run in this process, says the page must show for a scenario."""

    scenario_id: str
    title: str
    prompt: str
    n: int
    bon_index: int
    fused_text: str
    sources: frozenset[int]  # candidates the attribution credits with at least one span


def votable_scenarios() -> list[Expected]:
    """Built-in scenarios whose fused text differs from the Best-of-N pick (only those get vote buttons).

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
                fused_text=run.fused.text,
                sources=frozenset(i for sp in run.attribution.spans for i in sp.candidates),
            )
        )
    return found


@pytest.fixture(scope="module")
def scenarios() -> list[Expected]:
    found = off_loop(votable_scenarios)
    assert found, "no built-in scenario gives a fused text different from the Best-of-N pick"
    return found


def annotator_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def open_scenario(page: Any, app_server: AppServer, expected: Expected) -> None:
    open_app(page, app_server)
    # Offline, the gallery is the default mode; click it anyway so the test does not depend on that.
    segment(page, "Scenario gallery")
    choose_option(page, "Scenario", expected.title)
    page.locator(".fx-attr .fx-span").first.wait_for(state="visible")


def vote_rows(app_server: AppServer, annotator: str) -> list[sqlite3.Row]:
    """The raw rows of the votes table for one annotator, read with sqlite3 (not the app's own queries)."""
    con = sqlite3.connect(app_server.db_path)
    con.row_factory = sqlite3.Row
    try:
        return con.execute("SELECT * FROM votes WHERE annotator = ?", (annotator,)).fetchall()
    finally:
        con.close()


def token_count(app_server: AppServer, run_id: str, annotator: str) -> int:
    con = sqlite3.connect(app_server.db_path)
    try:
        (count,) = con.execute(
            "SELECT COUNT(*) FROM vote_tokens WHERE run_id = ? AND annotator = ?", (run_id, annotator)
        ).fetchone()
        return int(count)
    finally:
        con.close()


def cast_vote(page: Any, annotator: str, button: str, *, double: bool = False) -> Any:
    """Fill the annotator name in the Blind vote tab and click (or double-click) one vote button."""
    panel = open_tab(page, "Blind vote")
    form = panel.locator('[data-testid="stForm"]')
    form.wait_for(state="visible")
    fill_text(page, "Your name (annotator)", annotator, scope=form)
    target = form.get_by_role("button", name=button, exact=True)
    rerun_after(page, target.dblclick if double else target.click)
    return panel


# ------------------------------------------------------------------------------------------ tests


def test_scenario_attribution_chart_and_vote(
    app_server: AppServer, page: Any, scenarios: list[Expected]
) -> None:
    from storage.queries import load_run

    expected = scenarios[0]
    open_scenario(page, app_server, expected)

    compare = open_tab(page, "Fusion vs Best-of-N")
    text = compare.locator(".fx-attr .fx-attr-text")
    # The coloured view is exactly the fused text, every character in one span.
    assert text.text_content() == expected.fused_text

    spans = text.locator(".fx-span")
    info = spans.evaluate_all(
        """els => els.map(e => ({kind: e.dataset.kind, sources: e.dataset.sources, title: e.title,
                                  bg: getComputedStyle(e).backgroundColor,
                                  image: getComputedStyle(e).backgroundImage}))"""
    )
    assert info, "no attributed span"
    kinds = {s["kind"] for s in info}
    assert kinds <= {"single", "shared", "novel"}
    assert kinds & {"single", "shared"}, "nothing in the fused text was attributed to a candidate"
    shown_sources: set[int] = set()
    for s in info:
        ids = [int(x) for x in s["sources"].split(",") if x]
        assert all(0 <= i < expected.n for i in ids)
        assert (s["kind"] == "novel") == (not ids)
        assert (s["kind"] == "shared") == (len(ids) > 1)
        shown_sources.update(ids)
        if ids:
            # Coloured: a single-source span has a solid background, a shared one stripes of colours.
            if s["kind"] == "single":
                assert s["bg"] not in ("rgba(0, 0, 0, 0)", "transparent")
            else:
                assert "gradient" in s["image"]
            # The tooltip names the candidate(s) it came from, 1-based as in the rest of the UI.
            for i in ids:
                assert f"Candidate {i + 1}" in s["title"]
        else:
            assert s["title"] == "new text, in no candidate"
    assert shown_sources == set(expected.sources)
    # Two different candidates get two different colours.
    singles = {}
    for s in info:
        if s["kind"] == "single":
            singles.setdefault(s["sources"], s["bg"])
    if len(singles) > 1:
        assert len(set(singles.values())) == len(singles)

    legend = compare.locator(".fx-legend")
    assert legend.is_visible()
    items = legend.locator(".fx-legend-item[data-candidate]")
    assert items.count() == expected.n
    for i in range(expected.n):
        assert f"Candidate {i + 1}" in items.nth(i).inner_text()
    assert legend.locator('.fx-legend-item[data-kind="shared"]').count() == 1
    assert legend.locator('.fx-legend-item[data-kind="novel"]').count() == 1

    # Best-of-N side shows the pick named in the caption.
    assert compare.get_by_text(f"Candidate {expected.bon_index + 1} (", exact=False).first.is_visible()

    chart = compare.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
    chart.first.wait_for(state="visible")
    # plotly drew something: its SVG layer holds at least one bar or trace.
    page.wait_for_function(
        "() => document.querySelectorAll("
        "'.js-plotly-plot .main-svg .trace, .js-plotly-plot .main-svg .point').length > 0"
    )

    annotator = annotator_name("browser-vote")
    panel = cast_vote(page, annotator, "A is better")
    saved = panel.get_by_text(re.compile(r"^Vote saved: "))
    saved.wait_for(state="visible")
    # The identities are revealed after the vote.
    reveal = panel.get_by_text(re.compile(r"Response A was the (Fusion-of-N answer|Best-of-N pick)"))
    assert reveal.first.is_visible()
    screenshot(page, "explore-scenario-voted")

    votes = [v for v in app_server.votes() if v.annotator == annotator]
    assert len(votes) == 1
    vote = votes[0]
    assert vote.choice == "A"
    assert vote.winner == vote.a_is  # "A is better" means the side shown as A won
    assert vote.source == f"scenario:{expected.scenario_id}"
    winner_text = "the fused output" if vote.winner == "fused" else "the Best-of-N pick"
    assert saved.inner_text() == f"Vote saved: {winner_text}."
    run = load_run(app_server.engine(), vote.run_id)
    assert run is not None
    assert run.prompt.text == expected.prompt
    assert run.fused is not None and run.fused.text == expected.fused_text
    assert run.bon is not None and run.bon.index == expected.bon_index


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
    segment(page, "Your own candidates")
    form = page.locator('[data-testid="stForm"]').first
    form.wait_for(state="visible")
    fill_text(page, "Prompt", prompt, scope=form)
    for i, t in enumerate(texts):
        fill_text(page, f"Candidate {i + 1}", t, scope=form)
    rerun_after(page, form.get_by_role("button", name="Fuse these candidates").click)
    page.locator(".fx-attr .fx-span").first.wait_for(state="visible")

    compare = open_tab(page, "Fusion vs Best-of-N")
    fused_view = compare.locator(".fx-attr-text")
    assert fused_view.text_content() == expected.fused.text
    fused_visible = fused_view.inner_text()
    for h in HOSTILE:
        assert h in fused_visible
    # The Best-of-N box shows the picked candidate, also as text.
    bon_box = compare.locator(".fx-text").filter(has_text="<script>")
    assert bon_box.count() >= 1
    for h in HOSTILE:
        assert h in bon_box.first.inner_text()

    cards_panel = open_tab(page, "Candidates")
    cards = cards_panel.locator(".fx-card")
    assert cards.count() == len(texts)
    for i in range(len(texts)):
        card_text = cards.nth(i).locator(".fx-card-text").inner_text()
        for h in HOSTILE:
            assert h in card_text
    prompt_box = page.locator('[data-testid="stExpander"] .fx-text').filter(has_text="<b>as typed</b>")
    assert prompt_box.count() == 1

    # Nothing ran, nothing became markup.
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator('a[href^="javascript:"]').count() == 0
    assert page.evaluate(
        "() => [...document.scripts].filter(s => s.textContent.includes('__pwned')).length"
    ) == 0
    markup = "script, img, a, h1, strong, b, em, code"
    assert fused_view.locator(markup).count() == 0
    assert cards_panel.locator(".fx-card-text").locator(markup).count() == 0
    screenshot(page, "explore-hostile-candidates")
    # Tabs switch client-side; a final check that the page is not mid-run with an error on screen.
    wait_for_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.page_errors == []


def test_double_click_on_a_vote_button_records_one_vote(
    app_server: AppServer, page: Any, scenarios: list[Expected]
) -> None:
    expected = scenarios[1] if len(scenarios) > 1 else scenarios[0]
    open_scenario(page, app_server, expected)
    annotator = annotator_name("browser-dblclick")
    cast_vote(page, annotator, "Tie", double=True)
    wait_for_idle(page)
    saved = re.compile(r"^Vote saved: a tie\.$")
    page.get_by_text(saved).first.wait_for(state="attached")
    # Now and then (about 1 double click in 5 here) the page comes back with the first tab selected, so
    # the tab is opened again rather than assumed open; a single click keeps it (see the first test).
    open_tab(page, "Blind vote").get_by_text(saved).wait_for(state="visible")

    rows = vote_rows(app_server, annotator)
    assert len(rows) == 1
    row = rows[0]
    assert (row["choice"], row["winner"]) == ("tie", "tie")
    assert row["run_id"].startswith("sce-")
    from storage.queries import votes_for_run

    mine = [v for v in votes_for_run(app_server.engine(), row["run_id"]) if v.annotator == annotator]
    assert len(mine) == 1
    # The second click may land after the first submission finished; it then replaces the vote with the
    # same choice (a second form token, updated_at moves) but never adds a row. Two clicks, two at most.
    assert 1 <= token_count(app_server, row["run_id"], annotator) <= 2
    assert row["created_at"] <= row["updated_at"]

"""Render-only UI components: escaping of untrusted model text, exact text round-trips, highlight, legend,
figures, the HTML report, and (through AppTest) the vote panel and the candidate grid."""

from __future__ import annotations

import html
import itertools
import re
import textwrap
from html.parser import HTMLParser

import plotly.graph_objects as go
import pytest

from components import palette
from components.attribution_view import attribution_html, legend_html, span_tooltip, tile
from components.candidate_cards import candidate_card_html, per_row_for
from components.figures import win_rate_vs_n_figure
from components.report import run_report_html
from components.vote_panel import reveal_text
from fusion.types import (
    Attribution,
    BestOfN,
    Candidate,
    FusedOutput,
    ModelSpec,
    Prompt,
    Run,
    SourceRef,
    Span,
)

EVIL = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '" onmouseover="x',
    "**bold**",
    "[link](javascript:alert(1))",
    "# h",
]
# Tags that would mean model text became markup.
FORBIDDEN_TAGS = {"script", "img", "a", "strong", "em", "h1", "iframe", "svg", "object", "embed"}


class Collector(HTMLParser):
    """Records every start tag with its attributes, and the text of attribution spans in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.spans: list[dict] = []
        self._stack: list[dict | None] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "span" and "fx-span" in (a.get("class") or ""):
            rec = {"attrs": a, "text": ""}
            self.spans.append(rec)
            self._stack.append(rec)
        else:
            self._stack.append(None)

    def handle_endtag(self, tag: str) -> None:
        if self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        self.text += data
        for rec in reversed(self._stack):
            if rec is not None:
                rec["text"] += data
                break


def parse(doc: str) -> Collector:
    c = Collector()
    c.feed(doc)
    c.close()
    return c


def assert_no_markup_from(doc: str, *, own: frozenset[str] = frozenset()) -> Collector:
    """``own``: tags the component itself writes (the report's single <h1>), allowed once each."""
    c = parse(doc)
    tags = [t for t, _ in c.tags]
    assert not (set(tags) & (FORBIDDEN_TAGS - own)), set(tags) & FORBIDDEN_TAGS
    for t in own:
        assert tags.count(t) <= 1
    for _, attrs in c.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), f"event handler attribute {name}"
            assert name not in {"href", "src"}
    return c


def make_case() -> tuple[str, Attribution, list[str]]:
    """Fused text with newlines, blank lines, indentation, CJK, emoji and hostile text, tiled by spans."""
    pieces = [
        ("# Title\n\n", [0]),
        ("**bold** <script>alert(1)</script>\n", [1]),
        ("   indented line\n   \n", []),  # whitespace-only line inside novel text
        ("東京は日本の首都です。", [0, 2]),
        ("🎉 emoji 👩‍👩‍👧 ", [2]),
        ('" onmouseover="x <img src=x onerror=alert(1)>', []),
        ("\n[link](javascript:alert(1))\r\nend", [1, 0]),
    ]
    fused, spans, pos = "", [], 0
    for text, sources in pieces:
        refs = tuple(SourceRef(c, 0, len(text)) for c in sources)
        spans.append(Span(pos, pos + len(text), refs))
        fused += text
        pos += len(text)
    attribution = Attribution(spans=spans, shares=[0.41, 0.3, 0.2], copied_fraction=0.8)
    labels = ["Candidate 1", 'Model "x" <b>', "Candidate 3"]
    return fused, attribution, labels


def attribution_text(doc: str) -> str:
    """The fused text as the reader sees it: the text container's content, tags stripped, unescaped."""
    m = re.search(r'<div class="fx-attr-text"[^>]*>(.*?)</div>', doc, re.S)
    assert m
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(1)))


# --- palette ----------------------------------------------------------------------------------------------


def test_palette_has_32_distinct_readable_colours() -> None:
    bgs = [palette.candidate_color(i) for i in range(32)]
    assert len(set(bgs)) == 32
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in bgs)
    for c in bgs:
        assert palette.contrast_ratio(c, palette.TEXT_ON_COLOR) >= 7.0
    # Borders are darker than their backgrounds and readable as lines on white.
    for i in range(32):
        b = palette.candidate_border(i)
        assert palette.relative_luminance(b) < palette.relative_luminance(bgs[i])
        assert palette.contrast_ratio(b, "#ffffff") >= 4.5
    # Distinct also under simulated protanopia/deuteranopia; the first eight (Tol's light scheme) clearly so.
    assert min(palette.perceived_distance(a, b) for a, b in itertools.combinations(bgs, 2)) > 0.02
    assert min(palette.perceived_distance(a, b) for a, b in itertools.combinations(bgs[:8], 2)) > 0.04
    assert palette.candidate_color(32) == palette.candidate_color(0)


def test_candidate_style_sets_background_and_text_colour() -> None:
    style = palette.candidate_style(3)
    assert f"background-color:{palette.candidate_color(3)}" in style
    assert f"color:{palette.TEXT_ON_COLOR}" in style
    assert palette.contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)


# --- attribution view -------------------------------------------------------------------------------------


def test_attribution_text_round_trips_exactly() -> None:
    fused, attribution, labels = make_case()
    doc = attribution_html(fused, attribution, labels)
    assert attribution_text(doc) == fused
    c = parse(doc)
    assert "".join(s["text"] for s in c.spans) == fused
    assert len(c.spans) == len(attribution.spans)


def test_attribution_escapes_hostile_text_and_labels() -> None:
    fused, attribution, labels = make_case()
    doc = attribution_html(fused, attribution, labels, highlight=1)
    c = assert_no_markup_from(doc)
    assert "<script>" not in doc and "<img" not in doc
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in doc
    # Markdown stays literal text.
    for raw in ("**bold**", "# Title", "[link](javascript:alert(1))"):
        assert raw in attribution_text(doc)
    # The label with quotes and a tag ends up only inside attribute values, decoded back exactly.
    tips = [s["attrs"]["title"] for s in c.spans]
    assert 'from Model "x" <b>' in tips
    assert all(s["attrs"]["title"] == s["attrs"]["data-tip"] for s in c.spans)
    assert set(itertools.chain.from_iterable(a for _, a in c.tags)) <= {
        "class", "dir", "style", "title", "data-tip", "data-kind", "data-sources", "data-hl", "data-highlight"
    }


def test_attribution_survives_st_html_cleaning_and_has_no_raw_newlines() -> None:
    fused, attribution, labels = make_case()
    doc = attribution_html(fused, attribution, labels)
    # st.html runs textwrap.dedent(...).strip() on its body; the markup must come through unchanged.
    assert textwrap.dedent(doc).strip() == doc
    assert "\n" not in doc and "\r" not in doc
    assert "white-space:pre-wrap" in doc


def test_span_kinds_and_tooltips() -> None:
    fused, attribution, labels = make_case()
    c = parse(attribution_html(fused, attribution, labels))
    kinds = [s["attrs"]["data-kind"] for s in c.spans]
    assert kinds == ["single", "single", "novel", "shared", "single", "novel", "shared"]
    assert c.spans[3]["attrs"]["title"] == "from Candidate 1 and Candidate 3"
    assert c.spans[2]["attrs"]["title"] == "new text, in no candidate"
    assert c.spans[3]["attrs"]["data-sources"] == "0,2"
    shared_style = c.spans[3]["attrs"]["style"]
    assert "repeating-linear-gradient" in shared_style and "dashed" in shared_style
    assert palette.candidate_color(0) in shared_style and palette.candidate_color(2) in shared_style
    assert palette.candidate_color(1) in c.spans[1]["attrs"]["style"]
    assert "dotted" in c.spans[2]["attrs"]["style"] and "background" not in c.spans[2]["attrs"]["style"]
    assert span_tooltip([0, 1, 4], []) == "from Candidate 1, Candidate 2 and Candidate 5"


@pytest.mark.parametrize("target", [0, 1, 2])
def test_highlight_marks_exactly_that_candidates_spans(target: int) -> None:
    fused, attribution, labels = make_case()
    c = parse(attribution_html(fused, attribution, labels, highlight=target))
    for span, rec in zip(attribution.spans, c.spans):
        mine = target in span.candidates
        assert (rec["attrs"].get("data-hl") == "1") == mine
        style = rec["attrs"]["style"]
        assert ("font-weight:700" in style) == mine
        assert ("opacity:" in style) == (not mine)
    c_none = parse(attribution_html(fused, attribution, labels))
    assert not any("data-hl" in s["attrs"] or "opacity:" in s["attrs"]["style"] for s in c_none.spans)


def test_view_tolerates_spans_that_do_not_tile() -> None:
    fused = "abcdefghij"
    spans = [Span(2, 5, (SourceRef(0, 0, 3),)), Span(4, 8, (SourceRef(1, 0, 4),)), Span(9, 30, ())]
    pieces = tile(fused, spans)
    assert [(s, e) for s, e, _ in pieces] == [(0, 2), (2, 5), (5, 8), (8, 9), (9, 10)]
    doc = attribution_html(fused, Attribution(spans, [0.3, 0.3], 0.6), ["a", "b"])
    assert attribution_text(doc) == fused
    assert attribution_text(attribution_html("", Attribution([], [], 0.0), [])) == ""


def test_legend_shows_parts_that_add_up_and_special_swatches() -> None:
    from fusion.attribution import SharePartition

    parts = SharePartition(only=[0.5, 0.2, 0.0], shared=0.12, novel=0.18)
    doc = legend_html(["Candidate 1", "<i>two</i>", "Candidate 3"], parts, shares=[0.6, 0.3, 0.02], highlight=1)
    c = assert_no_markup_from(doc)
    items = [a for t, a in c.tags if "fx-legend-item" in (a.get("class") or "")]
    assert [a.get("data-candidate") for a in items] == ["0", "1", "2", None, None]
    assert [a.get("data-share") for a in items[:3]] == ["0.5000", "0.2000", "0.0000"]
    assert items[3]["data-kind"] == "shared" and items[3]["data-share"] == "0.1200"
    assert items[4]["data-kind"] == "novel" and items[4]["data-share"] == "0.1800"
    assert abs(sum(float(a["data-share"]) for a in items) - 1.0) < 1e-9
    # the overlapping share (shared passages counted for each source) is in the tooltip, said to overlap
    assert "60% including passages it shares" in items[0]["title"]
    text = c.text
    assert "50%" in text and "20%" in text and "new text" in text and "18%" in text and "shared" in text
    assert "add up to 100%" in text
    assert "<i>two</i>" in text  # the label as literal text
    assert "font-weight:700" in items[1]["style"] and "opacity" in items[0]["style"]


# --- candidate cards ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("evil", EVIL)
def test_card_escapes_text_error_and_note(evil: str) -> None:
    cand = Candidate(index=2, text=evil + "\nsecond line", model="m<" + evil, latency_s=1.5, completion_tokens=1234)
    doc = candidate_card_html(cand, status="done", score=0.5, note=evil)
    c = assert_no_markup_from(doc)
    assert evil + "\nsecond line" in c.text and "1.5 s" in c.text
    assert "1,234 tokens" in c.text
    failed = Candidate(index=0, text="", error=evil)
    cf = assert_no_markup_from(candidate_card_html(failed, status="failed"))
    assert evil in cf.text and "Error:" in cf.text


def test_card_status_pick_and_score() -> None:
    cand = Candidate(index=1, text="hello", model="openai/x")
    doc = candidate_card_html(cand, status="done", score=0.73456, is_pick=True)
    c = parse(doc)
    root = c.tags[0][1]
    assert root["data-pick"] == "1" and root["data-status"] == "done" and root["data-candidate"] == "1"
    assert "Best-of-N pick" in c.text and "score 0.735" in c.text and "Candidate 2" in c.text
    assert palette.candidate_border(1) in root["style"] and "3px" in root["style"]
    plain = parse(candidate_card_html(cand, status="streaming", text="hel"))
    assert "Best-of-N pick" not in plain.text and "score" not in plain.text and "hel" in plain.text
    assert "data-pick" not in plain.tags[0][1]
    waiting = parse(candidate_card_html(Candidate(index=0, text=""), status="waiting"))
    assert "waiting" in waiting.text
    with pytest.raises(ValueError):
        candidate_card_html(cand, status="bogus")


def test_per_row_is_two_to_four() -> None:
    assert {per_row_for(n) for n in range(1, 33)} <= {2, 3, 4}
    assert per_row_for(4) == 2 and per_row_for(6) == 3 and per_row_for(8) == 4


# --- figures -------------------------------------------------------------------------------------------------


def test_win_rate_against_n_figure() -> None:
    pts = [
        {"n": 5, "win_rate": 0.6, "ci_low": 0.5, "ci_high": 0.7, "series": "judge"},
        {"n": 2, "win_rate": 0.52, "series": "judge"},
        {"n": 2, "win_rate": 0.5, "series": "human", "count": 9},
    ]
    f = win_rate_vs_n_figure(pts)
    assert [t.name for t in f.data] == ["judge", "human"]
    assert list(f.data[0].x) == [2, 5] and list(f.data[0].y) == [0.52, 0.6]
    assert list(f.data[0].error_y.array) == pytest.approx([0.0, 0.1])
    assert any(s.y0 == 0.5 for s in f.layout.shapes)


def test_partition_bar_segments_add_up_and_labels_are_escaped() -> None:
    from components.attribution_view import partition_bar_html
    from fusion.attribution import SharePartition

    doc = partition_bar_html(["Candidate 1", "<b>two</b>"], SharePartition(only=[0.5, 0.0], shared=0.3, novel=0.2))
    c = assert_no_markup_from(doc)
    parts = [a for _, a in c.tags if "fx-bar-part" in (a.get("class") or "")]
    assert [p["data-part"] for p in parts] == ["0", "shared", "novel"]  # an empty part draws nothing
    assert sum(float(p["data-share"]) for p in parts) == pytest.approx(1.0)


# --- report ----------------------------------------------------------------------------------------------------


def make_run() -> Run:
    fused, attribution, _ = make_case()
    cands = [
        Candidate(index=0, text="# h\n**bold** answer", model="openai/a", latency_s=0.5, completion_tokens=20),
        Candidate(index=1, text="<script>alert(1)</script> [link](javascript:alert(1))", model="openai/b"),
        Candidate(index=2, text="", model="openai/c", error='<img src=x onerror=alert(1)> " onmouseover="x'),
    ]
    return Run(
        prompt=Prompt(text="Explain <script>alert(1)</script> **now**", system="Be <b>brief</b>"),
        candidates=cands,
        pool=[ModelSpec("openai/a", 2, api_key="sk-SECRET-123")],
        bon=BestOfN(index=1, scores=[0.2, 0.9, None], method="consensus", notes=[None, "<i>best</i>", "failed"]),
        fused=FusedOutput(text=fused, method="llm:openai/f", model="openai/f", order=[2, 0, 1]),
        attribution=attribution,
        tags=["demo", "<tag>"],
    )


def test_report_is_self_contained_and_escaped() -> None:
    run = make_run()
    votes = [
        {"annotator": "<b>ann</b>", "choice": "A", "a_is": "fused", "comment": "[link](javascript:alert(1))", "created_at": 1.7e9},
        {"annotator": "bo", "choice": "B", "a_is": "fused", "winner": "bon"},
        {"annotator": "cy", "choice": "tie", "a_is": "bon"},
    ]
    doc = run_report_html(run, votes, markdown=False)  # as typed: every raw string must show verbatim
    assert doc.startswith("<!DOCTYPE html>") and doc.rstrip().endswith("</html>")
    assert "<head>" in doc and "<body>" in doc and '<meta charset="utf-8">' in doc
    assert "<script" not in doc.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", doc)
    assert "sk-SECRET-123" not in doc
    c = assert_no_markup_from(doc, own=frozenset({"h1"}))
    text = c.text
    for raw in ("Explain <script>alert(1)</script> **now**", "Be <b>brief</b>", "<b>ann</b>", "[link](javascript:alert(1))"):
        assert raw in text
    assert "<img src=x onerror=alert(1)>" in text  # the failed candidate's error, as text
    assert "Best-of-N pick" in text and "score 0.900" in text and "Fusion-of-N" in text
    assert "3 votes." in text
    # The fused text is present exactly, with attribution spans and a legend.
    assert attribution_text(doc) == run.fused.text
    assert any("fx-legend" in (a.get("class") or "") for _, a in c.tags)
    picks = [a for t, a in c.tags if a.get("data-pick") == "1"]
    assert len(picks) == 1 and picks[0]["data-candidate"] == "1"


def test_report_renders_markdown_safely_with_kept_marks_and_the_diff() -> None:
    from html.parser import HTMLParser

    run = make_run()
    doc = run_report_html(run, [{"annotator": "a", "choice": "A", "a_is": "fused"}])
    assert "<script" not in doc.lower() and "sk-SECRET-123" not in doc
    assert not re.search(r"""(src|href)\s*=\s*["']?(javascript:|data:|//)""", doc, re.I)

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[tuple[str, dict]] = []

        def handle_starttag(self, tag, attrs):  # noqa: ANN001
            self.tags.append((tag, dict(attrs)))

    p = Tags()
    p.feed(doc)
    names = {t for t, _ in p.tags}
    assert "strong" in names and "h3" in names  # "# h" and "**bold**" rendered, the heading shifted down
    assert not names & {"script", "img", "iframe", "svg", "object"}
    assert all(not k.startswith("on") for _, a in p.tags for k in a)
    assert any(a.get("data-status") in ("kept", "edited", "dropped") for _, a in p.tags)  # kept marks
    assert any("fx-diff" in (a.get("class") or "") for _, a in p.tags)  # the sentence diff
    assert "Best-of-N pick against the fusion" in doc


def test_report_without_fusion_or_votes() -> None:
    run = Run(prompt=Prompt("q"), candidates=[Candidate(0, "a"), Candidate(1, "b")])
    doc = run_report_html(run)
    assert "No fusion in this run." in doc and "No votes yet." in doc and "<script" not in doc


# --- vote panel and grid through AppTest ---------------------------------------------------------------------------


def test_reveal_text() -> None:
    assert reveal_text("fused", "A").endswith("You preferred the Fusion-of-N answer.")
    assert reveal_text("fused", "B").endswith("You preferred the Best-of-N pick.")
    assert reveal_text("bon", "B").startswith("Response A was the Best-of-N pick; Response B was the Fusion-of-N answer.")
    assert "tie" in reveal_text("bon", "tie")
    with pytest.raises(ValueError):
        reveal_text("x", "A")
    with pytest.raises(ValueError):
        reveal_text("fused", "C")


def test_button_labels_name_the_sides_once_known() -> None:
    from components.vote_panel import button_label

    assert button_label("A") == "A is better" and button_label("tie", "fused") == "Tie"
    assert button_label("A", "fused") == "A is better (Fusion-of-N)"
    assert button_label("B", "fused") == "B is better (Best-of-N)"


def _vote_script() -> None:
    import streamlit as st

    from components.vote_panel import render_pair, render_vote_form

    def on_vote(choice: str) -> None:
        name = st.session_state.get("pair1__annotator", "")
        comment = st.session_state.get("pair1__comment", "")
        st.session_state.setdefault("calls", []).append((choice, name, comment))

    render_pair("<script>alert(1)</script>\n\n**A**", "<img src=x onerror=alert(1)>")
    render_vote_form(key="pair1", on_vote=on_vote, current_choice="tie")


@pytest.fixture
def vote_app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_vote_script, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def test_vote_panel_shows_escaped_responses_and_four_buttons_with_keys(vote_app) -> None:
    at = vote_app
    keys = [b.key for b in at.button]
    assert keys == ["pair1__vote_A", "pair1__vote_B", "pair1__vote_tie", "pair1__vote_both_bad"]
    assert [b.label for b in at.button] == ["A is better", "B is better", "Tie", "Both are bad"]
    assert [b.proto.shortcut for b in at.button] == ["1", "2", "3", "4"]
    # The earlier vote ("tie") is the one button drawn as primary.
    assert [b.proto.type for b in at.button] == ["secondary", "secondary", "primary", "secondary"]
    bodies = [h.value for h in at.get("html")]
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;&#10;&#10;**A**" in b for b in bodies)
    assert any("&lt;img src=x onerror=alert(1)&gt;" in b for b in bodies)
    assert all("<script" not in b and "<img" not in b for b in bodies)
    assert "calls" not in at.session_state


def test_vote_panel_calls_back_with_the_form_values_once_per_click(vote_app) -> None:
    at = vote_app
    at.text_input(key="pair1__annotator").input("  Ada  ")
    at.text_area(key="pair1__comment").input("B rambles")
    at.button(key="pair1__vote_both_bad").click().run()
    assert not at.exception
    assert at.session_state["calls"] == [("both_bad", "  Ada  ", "B rambles")]
    at.run()  # an unrelated rerun: no new call
    assert len(at.session_state["calls"]) == 1
    at.button(key="pair1__vote_A").click().run()
    assert [c[0] for c in at.session_state["calls"]] == ["both_bad", "A"]


def _grid_script() -> None:
    import streamlit as st

    from components.candidate_cards import render_candidate_card, render_candidate_grid
    from fusion.types import Candidate

    cands = [Candidate(i, f"answer {i} <script>x</script>", model="m") for i in range(5)]
    cands[3].error = "rate limited <b>429</b>"
    phs = render_candidate_grid(cands, scores=[0.1, 0.9, None, None, 0.3], pick=1, statuses={4: "streaming"})
    render_candidate_card(phs[4], cands[4], status="done", text="answer 4 final")
    st.session_state["n_placeholders"] = len(phs)


def test_candidate_grid_renders_cards_and_live_update() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_grid_script, default_timeout=60)
    at.run()
    assert not at.exception
    assert at.session_state["n_placeholders"] == 5
    bodies = [h.value for h in at.get("html")]
    assert len(bodies) == 5
    assert sum('data-pick="1"' in b for b in bodies) == 1
    assert any('data-status="failed"' in b and "rate limited &lt;b&gt;429&lt;/b&gt;" in b for b in bodies)
    last = next(b for b in bodies if 'data-candidate="4"' in b)
    assert 'data-status="done"' in last and "answer 4 final" in last  # the placeholder was rewritten
    assert all("<script" not in b for b in bodies)

"""The Explore page through Streamlit's AppTest: the gallery's cards, the blind vote and its changes, one
method setting for every mode, the identical case, state that survives page switches and links, errors
that keep the result, provider errors and a live run against the local OpenAI-compatible server.

These open scenarios the way a user does: by the card's Open button."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app" / "main.py")


def new_app(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if query:
        at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


def engine():
    from storage.db import make_engine

    return make_engine()


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; have {[b.label for b in at.button]}"
    return matches[0]


def plain(markdown: str) -> str:
    """What a Markdown source with backslash escapes shows (the app escapes everything users typed)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def errors(at: AppTest) -> str:
    return " ".join(plain(e.value) for e in at.error)


def no_errors(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def htmls(at: AppTest) -> list[str]:
    return [h.proto.body for h in at.get("html")]


def shown_run(at: AppTest):
    shown = at.session_state["explore_shown"]
    return shown[1]


def open_run_tab(at: AppTest, name: str) -> AppTest:
    """Open a tab of the labelled view (only the open one is drawn)."""
    at.session_state["explore_tabs"] = name
    return at.run()


def open_card(at: AppTest, scenario_id: str) -> AppTest:
    at.button(key=f"open_{scenario_id}").click().run()
    return at


def vote(at: AppTest, choice: str, name: str | None = None, comment: str | None = None) -> AppTest:
    if name is not None:
        at.text_input(key="explore_vote__annotator").input(name)
    if comment is not None:
        at.text_area(key="explore_vote__comment").input(comment)
    return at.button(key=f"explore_vote__vote_{choice}").click().run()


def is_blind(at: AppTest) -> bool:
    """Response A/B on screen and nothing that tells which is which."""
    body = " ".join(htmls(at))
    return (
        "fx-response" in body
        and "fx-attr" not in body
        and "fx-card" not in body
        and not any("Best-of-N pick" in h for h in htmls(at))
    )


def fill_own(at: AppTest, prompt: str, texts: list[str]) -> AppTest:
    at.segmented_control(key="keep.explore_mode").set_value("Your own candidates").run()
    at.number_input(key="keep.own_count").set_value(len(texts)).run()
    at.text_area(key="keep.own_prompt").input(prompt).run()
    for i, t in enumerate(texts):
        at.text_area(key=f"keep.own_cand_{i}").input(t).run()
    return button(at, "Fuse these candidates").click().run()


def votes_of(run_id: str):
    from storage.votes import votes_for_run

    return votes_for_run(engine(), run_id)


DIFFERING = [
    "Boil water first. Add the pasta and salt the water generously. Cook for nine minutes, stirring now and then.",
    "Bring a large pot of water to a boil and salt it. Add the pasta. Stir in the first minute so it does not stick.",
    "Salt the boiling water well. Cook the pasta until al dente, about nine minutes. Save a cup of pasta water for the sauce.",
    "Boil salted water, add pasta, and cook it for about nine minutes. Drain it and toss with sauce right away.",
]


# ------------------------------------------------------------------------------------------ gallery


def test_offline_banner_and_gallery_of_cards(app_env: Path) -> None:
    from fusion.scenarios import load_scenarios

    at = new_app()
    assert any("Offline mode" in i.value for i in at.info)
    assert at.segmented_control(key="keep.explore_mode").value == "Scenario gallery"
    opens = [b for b in at.button if b.label == "Open"]
    assert len(opens) == len(load_scenarios())


def test_every_card_opens_its_scenario_blind(app_env: Path) -> None:
    """Defect 1: Open on a card raised StreamlitWidgetAlreadyInstantiatedError, on all nine cards."""
    from fusion.scenarios import load_scenarios

    for s in load_scenarios():
        at = new_app()
        open_card(at, s.id)
        no_errors(at)
        assert at.query_params.get("scenario") == s.id
        run = shown_run(at)
        assert run.source == f"scenario:{s.id}"
        assert run.bon.method == "consensus" and run.fused.method == "extractive"
        identical = run.bon_text.strip() == run.fused.text.strip()
        # votable runs open blind; identical ones have nothing to vote on and say so
        assert is_blind(at) != identical, s.id
        from storage.runs import load_run

        assert load_run(engine(), run.id) is not None


def test_vote_then_change_is_reported_truly(app_env: Path) -> None:
    """Defect 2: a second vote was reported as the first, with the first still highlighted."""
    at = open_card(new_app(), "first-marathon")
    run = shown_run(at)
    vote(at, "tie", name="alice")
    no_errors(at)
    assert [s.value for s in at.success][0].startswith("Vote saved: a tie.")
    captions = " ".join(c.value for c in at.caption)
    assert "voted a tie" in captions and "alice" in captions
    assert at.button(key="explore_vote__vote_tie").proto.type == "primary"
    first = votes_of(run.id)
    assert [(v.winner, v.blind) for v in first] == [("tie", True)]

    vote(at, "both_bad")
    no_errors(at)
    assert [s.value for s in at.success] == ["Vote changed from a tie to both bad."]
    captions = " ".join(c.value for c in at.caption)
    assert "voted both bad" in captions and "voted a tie" not in captions
    assert at.button(key="explore_vote__vote_both_bad").proto.type == "primary"
    assert at.button(key="explore_vote__vote_tie").proto.type == "secondary"
    stored = votes_of(run.id)
    assert [(v.winner, v.annotator, v.blind) for v in stored] == [("both_bad", "alice", False)]


def test_blind_vote_reveals_after_voting(app_env: Path) -> None:
    """Defect 4: labels, scores and attribution stay hidden until this person votes."""
    at = open_card(new_app(), "bones-adult-newborn")
    assert is_blind(at)
    assert not [t for t in at.tabs if t.label.startswith("Candidates")]
    vote(at, "A", name="bea", comment="A reads better")
    no_errors(at)
    assert not is_blind(at)
    body = " ".join(htmls(at))
    assert 'data-kind="' in body and "fx-legend" in body and "fx-bar" in body
    assert "fx-card" not in body  # only the open tab is drawn
    open_run_tab(at, "Candidates: kept and dropped")
    assert "fx-card" in " ".join(htmls(at))
    run = shown_run(at)
    (v,) = votes_of(run.id)
    a_is = at.session_state[f"ab_{run.id}"]
    assert v.a_is == a_is and v.winner == a_is and v.comment == "A reads better" and v.blind


def test_show_labels_without_voting_makes_a_later_vote_not_blind(app_env: Path) -> None:
    at = open_card(new_app(), "bones-adult-newborn")
    button(at, "Show the labels without voting").click().run()
    no_errors(at)
    assert not is_blind(at)
    vote(at, "B", name="cy")
    (v,) = votes_of(shown_run(at).id)
    assert v.blind is False


def test_a_person_who_voted_sees_the_labels_in_a_new_session(app_env: Path) -> None:
    at = open_card(new_app(), "bones-adult-newborn")
    vote(at, "tie", name="dee")
    again = new_app({"scenario": "bones-adult-newborn"})
    assert is_blind(again)  # a new session does not know who it is yet
    again.session_state["annotator"] = "dee"
    again.run()
    assert not is_blind(again)


def test_identical_fusion_says_so_where_the_texts_are_and_offers_the_llm_fusor(app_env: Path) -> None:
    """Defect 5: only the vote tab said so; the legend's shares added up to 136%."""
    at = open_card(new_app(), "library-fines-summary")
    no_errors(at)
    run = shown_run(at)
    assert run.bon_text.strip() == run.fused.text.strip()
    notes = " ".join(i.value for i in at.info)
    assert f"Candidate {run.bon.index + 1} word for word" in notes and "nothing to vote on" in notes
    figures = " ".join(h for h in htmls(at) if "fx-summary" in h)
    assert "verbatim" in figures and "Found in" in figures
    legend = next(h for h in htmls(at) if "fx-legend" in h)
    parts = [float(x) for x in re.findall(r'data-share="([0-9.]+)"', legend)]
    assert abs(sum(parts) - 1.0) < 0.01, parts
    # Offline the LLM fusor could only fail, so it is not offered; with a server URL it is.
    assert not [b for b in at.button if b.label == "Fuse with the LLM fusor instead"]
    at.sidebar.text_input(key="keep.api_base").input("http://127.0.0.1:9/v1").run()  # nothing listens there
    button(at, "Fuse with the LLM fusor instead").click().run()
    assert at.radio(key="keep.m_fusor").value == "llm"
    assert not at.exception and errors(at)  # the server is not there: said, with a way back
    button(at, "Use the offline method instead").click().run()
    no_errors(at)
    assert at.radio(key="keep.m_fusor").value == "extractive"
    assert shown_run(at).fused.method == "extractive"


def test_a_vote_under_a_judges_name_is_refused_with_a_message(app_env: Path) -> None:
    at = open_card(new_app(), "first-marathon")
    run_id = at.session_state["explore_shown"][1].id
    vote(at, "A", name="judge:openai/gpt-4o")
    assert not at.exception
    assert any("kept for the pairwise judge" in e.value for e in at.error)
    assert votes_of(run_id) == []
    assert is_blind(at)  # nothing was revealed either
    vote(at, "A", name="mara")
    assert [v.annotator for v in votes_of(run_id)] == ["mara"]


def test_a_vote_cast_on_explore_is_not_reported_on_annotate_as_interrupted(app_env: Path) -> None:
    at = open_card(new_app(), "first-marathon")
    vote(at, "A", name="mara")
    at.switch_page("annotate.py").run()
    assert not at.exception
    said = [m.value for m in [*at.info, *at.success, *at.caption]]
    assert not any("server restarted" in t for t in said), said
    assert any(plain(t).startswith("Your last vote (run") for t in said), said


def test_scenario_keeps_its_created_time_when_reopened(app_env: Path) -> None:
    """Defect 10: reopening a scenario re-saved it and moved it in History and the Annotate queue."""
    from storage.runs import load_run

    at = open_card(new_app(), "first-marathon")
    run_id = shown_run(at).id
    created = load_run(engine(), run_id).created_at
    at2 = open_card(new_app(), "first-marathon")
    assert shown_run(at2).id == run_id
    assert load_run(engine(), run_id).created_at == created


def test_system_message_is_shown(app_env: Path) -> None:
    """Defect 8: the Japanese email's system message was shown on Annotate and in the report only."""
    from fusion.scenarios import get_scenario

    system = get_scenario("translate-ja-email").system
    assert system
    at = open_card(new_app(), "translate-ja-email")
    assert any(system in h for h in htmls(at))


# ------------------------------------------------------------------------------------------ state


def test_scenario_survives_a_trip_to_annotate_and_a_link(app_env: Path) -> None:
    """Defect 7: Explore, then Annotate, then Explore lost the scenario and its result; so did a reload."""
    at = open_card(new_app(), "escape-html-bug")
    run_id = shown_run(at).id
    at.switch_page("annotate.py").run()
    assert not at.exception
    at.switch_page("explore.py").run()
    no_errors(at)
    assert at.query_params.get("scenario") == "escape-html-bug"
    assert shown_run(at).id == run_id
    # the URL alone reopens it (a reload or a shared link is a new session)
    fresh = new_app({"scenario": "escape-html-bug"})
    no_errors(fresh)
    assert shown_run(fresh).id == run_id
    by_run = new_app({"run": run_id})
    no_errors(by_run)
    assert shown_run(by_run).id == run_id
    assert by_run.segmented_control(key="keep.explore_mode").value == "Scenario gallery"


def test_pasted_text_survives_a_mode_switch_and_the_run_has_a_url(app_env: Path) -> None:
    at = new_app()
    at.segmented_control(key="keep.explore_mode").set_value("Your own candidates").run()
    at.text_area(key="keep.own_prompt").input("How do I cook pasta?").run()
    at.text_area(key="keep.own_cand_0").input(DIFFERING[0]).run()
    at.segmented_control(key="keep.explore_mode").set_value("Scenario gallery").run()
    at.switch_page("results.py").run()
    at.switch_page("explore.py").run()
    at.segmented_control(key="keep.explore_mode").set_value("Your own candidates").run()
    assert at.text_area(key="keep.own_prompt").value == "How do I cook pasta?"
    assert at.text_area(key="keep.own_cand_0").value == DIFFERING[0]
    for i, t in enumerate(DIFFERING[1:3], start=1):
        at.text_area(key=f"keep.own_cand_{i}").input(t).run()
    button(at, "Fuse these candidates").click().run()
    no_errors(at)
    run = shown_run(at)
    assert at.query_params.get("run") == run.id
    link = new_app({"run": run.id})
    no_errors(link)
    assert link.segmented_control(key="keep.explore_mode").value == "Your own candidates"
    assert shown_run(link).id == run.id


def test_an_unknown_link_says_so(app_env: Path) -> None:
    at = new_app({"run": "no-such-run"})
    assert not at.exception
    at2 = new_app({"scenario": "no-such-scenario"})
    assert "no built-in scenario" in errors(at2)


# ------------------------------------------------------------------------------------------ own candidates


def test_bring_your_own_candidates_opens_labelled_and_votes_not_blind(app_env: Path) -> None:
    from fusion.scenarios import get_scenario

    s = get_scenario("bones-adult-newborn")
    at = fill_own(new_app(), s.prompt, list(s.candidates))
    no_errors(at)
    run = shown_run(at)
    assert [c.text for c in run.candidates] == list(s.candidates) and run.source == "supplied"
    assert not is_blind(at)  # the person typed the candidates in
    vote(at, "B", name="ada")
    (v,) = votes_of(run.id)
    assert v.blind is False and v.choice == "B"


def test_bring_your_own_rejects_bad_input(app_env: Path) -> None:
    at = fill_own(new_app(), "   ", ["a", "b"])
    assert "prompt is empty" in errors(at)
    at = fill_own(at, "Q?", ["only one", "  "])
    assert "At least 2 non-empty" in errors(at)
    assert not at.exception


def test_upload_jsonl_reports_bad_lines_and_fuses_a_record(app_env: Path) -> None:
    at = new_app()
    at.segmented_control(key="keep.explore_mode").set_value("Your own candidates").run()
    lines = [
        json.dumps({"id": "pasta", "prompt": "How do I cook pasta?", "candidates": DIFFERING}),
        "{broken",
        json.dumps({"id": "one", "prompt": "Q", "candidates": ["just one"]}),
    ]
    at.file_uploader(key="own_upload").upload("in.jsonl", "\n".join(lines).encode("utf-8"), "application/jsonl").run()
    no_errors(at)
    warning = " ".join(plain(w.value) for w in at.warning)
    assert "line 2: not valid JSON" in warning and "line 3: At least 2" in warning
    button(at, "Fuse this record").click().run()
    no_errors(at)
    run = shown_run(at)
    assert run.prompt.text == "How do I cook pasta?" and len(run.candidates) == 4


def test_upload_that_is_not_utf8(app_env: Path) -> None:
    at = new_app()
    at.segmented_control(key="keep.explore_mode").set_value("Your own candidates").run()
    at.file_uploader(key="own_upload").upload("in.jsonl", b"\xff\xfe\x00bad", "application/jsonl").run()
    assert "not UTF-8" in errors(at)
    assert not at.exception


# ------------------------------------------------------------------------------------------ errors


def test_an_error_keeps_the_result_on_screen(app_env: Path) -> None:
    """Defect 12: choosing the LLM judge without a key showed the error and took the result away."""
    at = open_card(new_app(), "first-marathon")
    vote(at, "A", name="eve")  # labelled view
    before = shown_run(at).id
    at.radio(key="keep.m_selector").set_value("judge").run()
    assert not at.exception
    assert "OPENAI_API_KEY" in errors(at)
    assert shown_run(at).id == before
    assert any("fx-attr" in h for h in htmls(at))  # the last result that worked is still there
    # the failed attempt is not retried on every rerun, and going back to consensus recovers
    at.radio(key="keep.m_selector").set_value("consensus").run()
    no_errors(at)


def test_unexpected_error_is_a_clear_message_not_a_traceback(app_env: Path, monkeypatch) -> None:
    import fusion.scenarios

    def broken() -> list:
        raise RuntimeError("scenario files unreadable")

    monkeypatch.setattr(fusion.scenarios, "load_scenarios", broken)
    at = new_app()
    assert not at.exception
    assert "Something went wrong on this page (RuntimeError)" in errors(at)


def test_user_text_is_shown_as_typed_in_captions(app_env: Path) -> None:
    """Defect 9: annotator names rendered as Markdown (bold, links, colours)."""
    at = open_card(new_app(), "first-marathon")
    vote(at, "tie", name="**bold** [x](javascript:alert(1)) :red[y]")
    caption = next(c.value for c in at.caption if "voted a tie" in c.value)
    assert r"\*\*bold\*\*" in caption and r"\[x\]\(javascript\:alert\(1\)\)" in caption and r"\:red\[y\]" in caption


# ------------------------------------------------------------------------------------------ method


@pytest.mark.server
def test_server_url_and_llm_method_work_in_every_mode(app_env: Path, openai_server) -> None:
    """Defect 3: the server URL lived under Generate live; scenarios and pastes then said "No API key"."""
    at = new_app()
    at.sidebar.text_input(key="keep.api_base").input(openai_server.url).run()
    at.radio(key="keep.m_fusor").set_value("llm").run()
    at.text_input(key="keep.m_fusor_model").input("openai/fusor").run()
    assert not any("Offline mode" in i.value for i in at.info)
    assert any(openai_server.url in plain(c.value) for c in at.caption)
    open_card(at, "first-marathon")
    no_errors(at)
    run = shown_run(at)
    assert run.fused.method == "llm:openai/fusor"
    assert at.query_params.get("run") == run.id  # an LLM run is named by its id, not the scenario
    at = fill_own(at, "How do I cook pasta?", DIFFERING)
    no_errors(at)
    assert shown_run(at).fused.method == "llm:openai/fusor"


# ------------------------------------------------------------------------------------------ live


def go_live(at: AppTest, url: str, *, models: str, n: int, prompt: str = "Why is the sky blue?") -> AppTest:
    at.segmented_control(key="keep.explore_mode").set_value("Generate live").run()
    if url:
        at.sidebar.text_input(key="keep.api_base").input(url).run()
    at.text_area(key="keep.live_prompt").input(prompt).run()
    at.text_input(key="keep.live_models").input(models).run()
    at.number_input(key="keep.live_n").set_value(n).run()
    return button(at, "Generate and fuse").click().run()


@pytest.mark.server
def test_live_run_against_local_server_then_vote(app_env: Path, openai_server) -> None:
    at = new_app()
    at.radio(key="keep.m_fusor").set_value("llm").run()
    at.text_input(key="keep.m_fusor_model").input("openai/fusor").run()
    at = go_live(at, openai_server.url, models="openai/ok", n=4)
    no_errors(at)
    run = shown_run(at)
    assert len(run.candidates) == 4 and all(c.ok for c in run.candidates)
    assert run.fused.method == "llm:openai/fusor"
    assert run.attribution.copied_fraction > 0.5
    assert sum(1 for r in openai_server.requests if r["model"] == "ok") == 4
    assert at.query_params.get("run") == run.id
    vote(at, "A", name="grace")
    no_errors(at)
    # a second click (a double click, or a rerun) must not add a second vote
    vote(at, "A")
    votes = votes_of(run.id)
    assert len(votes) == 1 and votes[0].annotator == "grace" and votes[0].choice == "A"
    assert votes[0].blind is False  # the person watched the run being made
    vote(at, "tie")
    votes = votes_of(run.id)
    assert len(votes) == 1 and votes[0].winner == "tie"


@pytest.mark.server
@pytest.mark.parametrize("n", [17, 1, 0, -3])
def test_live_n_out_of_range_is_refused_with_a_message_and_sends_nothing(app_env: Path, openai_server, n: int) -> None:
    at = go_live(new_app(), openai_server.url, models="openai/ok", n=n)
    assert not at.exception
    assert any(f"N must be from 2 to 16; got {n}." in plain(e.value) for e in at.error)
    assert openai_server.requests == []
    assert at.query_params.get("run") is None


@pytest.mark.parametrize(
    "url, words",
    [
        ("localhost:8000/v1", "must start with http:// or https://"),
        ("http://ana:s3cretpw@127.0.0.1:9/v1", "must not carry a name or password"),
        ("http://[::1:8712/v1", "is not a valid URL"),
    ],
)
def test_a_malformed_server_url_is_named_in_the_sidebar_and_by_the_run(app_env: Path, url: str, words: str) -> None:
    at = go_live(new_app(), url, models="openai/ok", n=2)
    assert not at.exception
    assert any(words in plain(e.value) for e in at.sidebar.error)
    assert any("Available: no server (the URL in the sidebar is not one)" in plain(c.value) for c in at.caption)
    shown = " ".join(plain(e.value) for e in [*at.error, *at.sidebar.error, *at.caption, *at.markdown])
    assert "s3cretpw" not in shown  # a password typed into the URL is never repeated on the page
    # Generating says the same, once, before any candidate is drawn; nothing was sent anywhere.
    assert words in errors(at)
    assert "HTTP 500" not in errors(at) and "candidates are usable" not in errors(at)


@pytest.mark.server
def test_live_provider_error_is_shown_not_as_traceback(app_env: Path, openai_server) -> None:
    at = go_live(new_app(), openai_server.url, models="openai/auth", n=2)
    assert not at.exception
    shown = errors(at)
    assert "Only 0 of 2 candidates are usable" in shown and "Traceback" not in shown
    assert "failed" in " ".join(htmls(at)).lower()


@pytest.mark.server
def test_live_partial_failure_goes_on(app_env: Path, openai_server) -> None:
    at = go_live(new_app(), openai_server.url, models="openai/ok, openai/notfound, openai/ok", n=3)
    no_errors(at)
    run = shown_run(at)
    assert [c.ok for c in run.candidates] == [True, False, True]
    assert run.candidates[1].error


def test_live_bad_input_messages(app_env: Path) -> None:
    at = go_live(new_app(), "", models="openai/gpt-4o-mini", n=3, prompt="")
    assert "prompt is empty" in errors(at)
    at = go_live(at, "", models="openai/gpt-4o-mini", n=3)
    assert "OPENAI_API_KEY" in errors(at)
    at = go_live(at, "", models="", n=3)
    assert "Give at least one candidate model." in errors(at)
    assert not at.exception


# ------------------------------------------------------------------------------------------ reading


def test_labelled_view_renders_markdown_marks_kept_and_dropped_and_diffs_the_pick(app_env: Path) -> None:
    at = open_card(new_app(), "first-marathon")
    vote(at, "B", name="ivo")
    body = " ".join(htmls(at))
    # Markdown rendered (the scenario's answers use **bold** and "- " lists), attribution drawn over it
    assert "fx-attr-md" in body and "<strong" in body and "<li" in body
    assert "**Keep most runs easy.**" not in body
    # what the fusion kept and dropped, per candidate, with a count in words
    cards = " ".join(htmls(open_run_tab(at, "Candidates: kept and dropped")))
    assert re.search(r'class="fx-unit fx-unit-(kept|edited|dropped)"', cards)
    assert 'data-status="dropped"' in cards and "Fusion kept " in cards
    # the pick against the fusion, sentence by sentence
    assert any(t.label == "What changed" for t in at.tabs)
    diff = " ".join(htmls(open_run_tab(at, "What changed")))
    assert "fx-diff" in diff and 'data-op="added"' in diff
    # "show as typed" keeps the raw view everywhere
    at.sidebar.toggle(key="keep.as_typed").set_value(True).run()
    no_errors(at)
    for tab in ("Fusion vs Best-of-N", "Candidates: kept and dropped", "What changed"):
        raw = " ".join(htmls(open_run_tab(at, tab)))
        assert "fx-md" not in raw and "<strong" not in raw, tab
    assert "**Keep most runs easy.**" in raw

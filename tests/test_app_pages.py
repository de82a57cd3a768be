"""AppTest tests of the Annotate, History and Results pages, each against its own temporary database.

The app runs through ``app/main.py`` (so the pages are reached as ``st.navigation`` registers them) with
``FUSION_DB_PATH`` pointing into ``tmp_path``; runs are built offline with ``fusion.pipeline.run_supplied``
and saved with ``save_run``, votes stored with ``record_vote``, and every check reads the database back.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import pytest

from annotate_support import annotate_vote_key, looked_at

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")

BASIL = [
    "Water basil when the top inch of soil is dry. Give it six hours of sun. Pinch off flower buds.",
    "Basil needs lots of sun, at least six hours. Water when the soil surface is dry. Use a pot with drainage holes.",
    "Keep basil warm, above 10 C. Pinch off flower buds so it keeps making leaves. Water when the soil surface is dry.",
]
SAME = [
    "Paris is the capital of France.",
    "Paris is the capital of France.",
    "Paris is the capital of France.",
]


# ------------------------------------------------------------------------------------------ fixtures


def make_run(
    engine: Any,
    run_id: str,
    prompt: str,
    texts: list[str] | None = None,
    *,
    tags: tuple[str, ...] = (),
    created_at: float | None = None,
    source: str = "batch",
) -> Any:
    from fusion.pipeline import run_supplied
    from storage.runs import save_run

    run = run_supplied(prompt, texts or BASIL, tags=tags, run_id=run_id, source=source)
    if created_at is not None:
        run.created_at = created_at
    save_run(engine, run)
    return run


def open_page(page: str) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def html_text(at: Any) -> str:
    return "\n".join(h.proto.body for h in at.get("html"))


def texts_of(elements: Any) -> list[str]:
    return [e.value for e in elements]


def response_box(at: Any, title: str) -> str:
    found = [h.proto.body for h in at.get("html") if f">{title}</div>" in h.proto.body]
    assert len(found) == 1, f"{len(found)} boxes titled {title!r}"
    return found[0]


def progress_text(at: Any) -> str:
    bars = at.get("progress")
    assert len(bars) == 1
    return bars[0].proto.text


# ------------------------------------------------------------------------------------------ Annotate


def start_annotating(name: str) -> Any:
    at = open_page("annotate.py")
    at.text_input(key="annotate_name").input(name).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_run_id(at: Any) -> str | None:
    """The run whose vote buttons are on screen (None when the queue is done)."""
    current = at.session_state["annotate_current"] if "annotate_current" in at.session_state else None
    if current is None or not [b for b in at.button if b.key == annotate_vote_key(current, "A")]:
        return None
    return current


def vote(at: Any, run_id: str, choice: str) -> Any:
    assert shown_run_id(at) == run_id
    looked_at(at)
    at.button(key=annotate_vote_key(run_id, choice)).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def skip(at: Any) -> Any:
    """Press Skip on the run on screen once it has been read (the button is greyed out with the votes)."""
    looked_at(at)
    at.button(key=f"annotate_skip_{shown_run_id(at)}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def undo(at: Any, run_id: str) -> Any:
    """Press Undo for the vote on ``run_id`` once the run on screen has been read (Undo is greyed out with
    the votes of a run just drawn)."""
    if shown_run_id(at) is not None:
        looked_at(at)
    at.button(key=f"annotate_undo_{run_id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_annotate_asks_for_a_name_first(engine: Any) -> None:
    make_run(engine, "r1", "How do I keep basil alive?")
    at = open_page("annotate.py")
    assert any("Type your name" in t for t in texts_of(at.info))
    assert shown_run_id(at) is None
    assert not at.get("progress")


def test_annotate_vote_records_side_and_moves_to_next(engine: Any) -> None:
    from storage.runs import load_run
    from storage.votes import all_votes, winner_of

    for i in range(3):
        make_run(engine, f"r{i}", f"Basil question number {i}", created_at=1_000 + i)
    at = start_annotating("alice")
    at.session_state["keep.as_typed"] = True  # the raw view, to compare the boxes with the texts exactly
    at.run()
    assert progress_text(at) == "0 of 3 done"
    assert shown_run_id(at) == "r0"
    assert "Basil question number 0" in html_text(at)
    # The side drawn for this run, and what the page shows as Response A.
    a_is = at.session_state["ab_r0"]
    run = load_run(engine, "r0")
    shown_a, shown_b = (run.bon_text, run.fused.text) if a_is == "bon" else (run.fused.text, run.bon_text)
    assert shown_a != shown_b
    assert response_box(at, "Response A").endswith(html.escape(shown_a) + "</div></div>")
    assert response_box(at, "Response B").endswith(html.escape(shown_b) + "</div></div>")

    vote(at, "r0", "A")
    votes = all_votes(engine)
    assert [(v.run_id, v.annotator, v.choice, v.a_is) for v in votes] == [("r0", "alice", "A", a_is)]
    assert votes[0].winner == winner_of("A", a_is)
    assert votes[0].ranking is None
    # The next run is on screen, the reveal of the previous one above it.
    assert shown_run_id(at) == "r1"
    assert progress_text(at) == "1 of 3 done"
    assert any(t.startswith("Saved:") and "Response A was" in t for t in texts_of(at.success))

    vote(at, "r1", "tie")
    assert shown_run_id(at) == "r2"
    vote(at, "r2", "both_bad")
    assert shown_run_id(at) is None
    assert progress_text(at) == "3 of 3 done"
    assert any("Nothing left to annotate" in t for t in texts_of(at.success))
    assert sorted((v.run_id, v.choice) for v in all_votes(engine)) == [
        ("r0", "A"),
        ("r1", "tie"),
        ("r2", "both_bad"),
    ]
    # A rerun shows no voted run again.
    at.run()
    assert shown_run_id(at) is None


def test_annotate_a_key_pressed_twice_votes_once_and_never_on_the_next_run(engine: Any) -> None:
    from storage.votes import all_votes

    for i in range(2):
        make_run(engine, f"r{i}", f"Basil question number {i}", created_at=1_000 + i)
    at = start_annotating("alice")
    looked_at(at)
    at.text_area(key="annotate_r0__comment").input("r0 was hard to read")
    at.button(key=annotate_vote_key("r0", "A")).click().run()
    assert [(v.run_id, v.comment) for v in all_votes(engine)] == [("r0", "r0 was hard to read")]
    assert shown_run_id(at) == "r1"
    # The same key again at once: the run now on screen, which nobody has had time to read, cannot take it,
    # because its buttons are greyed out until the page's timer draws them again.
    assert at.text_area(key="annotate_r1__comment").value == ""  # the comment stayed with its run
    assert all(at.button(key=annotate_vote_key("r1", c)).disabled for c in ("A", "B", "tie", "both_bad"))
    # A press that reaches the server that soon anyway (from a browser that had the buttons enabled) is
    # refused there too.
    looked_at(at)
    at.session_state["annotate_r1__shown_at"] = time.monotonic()
    at.button(key=annotate_vote_key("r1", "A")).click().run()
    assert not at.exception
    assert [v.run_id for v in all_votes(engine)] == ["r0"]
    assert shown_run_id(at) == "r1"
    assert any("was not counted" in t for t in texts_of(at.warning))
    # Once read, it counts.
    vote(at, "r1", "B")
    assert sorted((v.run_id, v.choice) for v in all_votes(engine)) == [("r0", "A"), ("r1", "B")]


@pytest.mark.parametrize("name", ["judge:openai/x", "Judge:openai/x"])
def test_annotate_refuses_a_judges_name(engine: Any, name: str) -> None:
    from storage.votes import all_votes

    make_run(engine, "r0", "Basil question")
    at = start_annotating(name)
    assert any("kept for the pairwise judge" in e.value for e in at.error)
    assert shown_run_id(at) is None and all_votes(engine) == []
    at.text_input(key="annotate_name").input("mara").run()
    assert shown_run_id(at) == "r0"


def test_annotate_skip_keeps_the_run_for_later(engine: Any) -> None:
    from storage.votes import all_votes

    for i in range(3):
        make_run(engine, f"s{i}", f"Skip question {i}", created_at=2_000 + i)
    at = start_annotating("bea")
    assert shown_run_id(at) == "s0"
    skip(at)
    assert shown_run_id(at) == "s1"
    assert any("1 skipped for later" in t for t in texts_of(at.caption))
    assert all_votes(engine) == []
    assert progress_text(at) == "0 of 3 done"
    vote(at, "s1", "B")
    assert shown_run_id(at) == "s2"
    vote(at, "s2", "A")
    assert any(t.startswith("Saved: ") for t in texts_of(at.success))
    # Only the skipped run is left, so it comes back. A skip says so; the vote before is no longer news.
    skip(at)
    assert not any(t.startswith("Saved: ") for t in texts_of(at.success))
    assert any(t.startswith("Skipped: ") for t in texts_of(at.info))
    assert any(t.startswith("Saved: ") for t in texts_of(at.caption))  # still there, with its Undo
    assert shown_run_id(at) == "s0"
    vote(at, "s0", "tie")
    assert [v.run_id for v in all_votes(engine)] == ["s1", "s2", "s0"]


def test_annotate_optional_ranking_is_stored_with_the_vote(engine: Any) -> None:
    from storage.votes import all_votes, get_vote

    make_run(engine, "k0", "Rank question 0", created_at=3_000)
    make_run(engine, "k1", "Rank question 1", created_at=3_001)
    at = start_annotating("carl")
    at.toggle(key="keep.annotate_rank_on").set_value(True).run()
    vote(at, "k0", "B")
    first = get_vote(engine, "k0", "carl")
    assert first is not None and first.ranking is None
    # The ranking step: candidates shown now that the vote is cast, nothing else advanced yet.
    assert any("Rank the candidates" in s.value for s in at.subheader)
    # Inside a form: the picks are sent with the submit click.
    at.multiselect(key="annotate_ranking_k0").select(2).select(0)
    at.button(key="annotate_rank_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    stored = get_vote(engine, "k0", "carl")
    assert stored.ranking == [2, 0]
    assert (stored.choice, stored.a_is, stored.winner) == (first.choice, first.a_is, first.winner)
    assert len(all_votes(engine)) == 1
    assert shown_run_id(at) == "k1"
    assert any("Ranking saved: Candidate 3, Candidate 1" in t for t in texts_of(at.success))

    vote(at, "k1", "A")
    at.button(key="annotate_rank_skip").click().run()
    assert get_vote(engine, "k1", "carl").ranking is None
    assert shown_run_id(at) is None


def test_annotate_leaves_out_identical_pairs(engine: Any) -> None:
    from storage.runs import is_identical

    same = make_run(engine, "same", "What is the capital of France?", SAME, created_at=4_000)
    assert is_identical(same)
    make_run(engine, "diff", "Basil?", created_at=4_001)
    at = start_annotating("dora")
    assert shown_run_id(at) == "diff"
    assert progress_text(at) == "0 of 1 done"
    assert any("1 run is not in the queue" in t and "word for word" in t for t in texts_of(at.caption))
    vote(at, "diff", "A")
    assert shown_run_id(at) is None
    assert any("Nothing left to annotate" in t for t in texts_of(at.success))


def test_annotate_tag_filter(engine: Any) -> None:
    make_run(engine, "t-de", "German basil?", tags=("de",), created_at=5_000)
    make_run(engine, "t-ja", "Japanese basil?", tags=("ja",), created_at=5_001)
    at = start_annotating("emil")
    assert progress_text(at) == "0 of 2 done"
    at.selectbox(key="keep.annotate_tag").select("ja").run()
    assert shown_run_id(at) == "t-ja"
    assert progress_text(at) == "0 of 1 done"
    vote(at, "t-ja", "B")
    assert shown_run_id(at) is None
    at.selectbox(key="keep.annotate_tag").select("All runs").run()
    assert shown_run_id(at) == "t-de"
    assert progress_text(at) == "1 of 2 done"


def test_annotate_two_annotators_share_a_database(engine: Any) -> None:
    from storage.votes import all_votes

    make_run(engine, "m0", "Shared question 0", created_at=6_000)
    make_run(engine, "m1", "Shared question 1", created_at=6_001)
    alice = start_annotating("alice")
    bob = start_annotating("bob")
    assert shown_run_id(alice) == shown_run_id(bob) == "m0"
    vote(alice, "m0", "A")
    # Bob's queue is his own: m0 is still there for him.
    bob.run()
    assert shown_run_id(bob) == "m0"
    vote(bob, "m0", "B")
    assert shown_run_id(bob) == "m1"
    # A second session of alice does not see the run she voted on.
    alice_again = start_annotating("alice")
    assert shown_run_id(alice_again) == "m1"
    assert progress_text(alice_again) == "1 of 2 done"
    assert sorted((v.run_id, v.annotator) for v in all_votes(engine)) == [("m0", "alice"), ("m0", "bob")]


def test_annotate_empty_queue_says_so(engine: Any) -> None:
    at = start_annotating("fay")
    assert any("no saved runs" in t for t in texts_of(at.info))
    assert any("python -m fusion batch" in m.value for m in at.markdown)
    assert not at.get("progress")  # no "0 of 0 done" with a full bar


def test_annotate_only_identical_runs_says_there_is_nothing_to_vote_on(engine: Any) -> None:
    make_run(engine, "same-only", "What is the capital of France?", SAME)
    at = start_annotating("fay")
    assert any("nothing to vote on yet: the saved run has a fused answer" in t and "word for word" in t
               for t in texts_of(at.info))
    assert not at.get("progress")
    make_run(engine, "same-two", "What is the capital of Spain?", [t.replace("Paris", "Madrid").replace("France", "Spain") for t in SAME])
    at.run()
    assert any("nothing to vote on yet: all 2 saved runs have a fused answer" in t for t in texts_of(at.info))


def test_annotate_total_does_not_shrink_as_identical_runs_come_up(engine: Any) -> None:
    """Defect 6: "0 of 31" became "3 of 26" because identical runs were found only when they came up."""
    for i in range(6):
        texts = SAME if i % 2 else BASIL
        make_run(engine, f"q{i}", f"Queue question {i}", texts, created_at=8_000 + i)
    at = start_annotating("gil")
    totals = [progress_text(at)]
    while shown_run_id(at) is not None:
        vote(at, shown_run_id(at), "A")
        if at.get("progress"):
            totals.append(progress_text(at))
    assert totals == ["0 of 3 done", "1 of 3 done", "2 of 3 done", "3 of 3 done"]


def test_annotate_undo_brings_the_run_back_and_the_new_vote_is_not_blind(engine: Any) -> None:
    from storage.votes import all_votes

    make_run(engine, "u0", "Undo question 0", created_at=9_000)
    make_run(engine, "u1", "Undo question 1", created_at=9_001)
    at = start_annotating("hal")
    vote(at, "u0", "A")
    assert shown_run_id(at) == "u1" and [v.run_id for v in all_votes(engine)] == ["u0"]
    assert all_votes(engine)[0].blind is True
    undo(at, "u0")
    assert all_votes(engine) == []
    assert shown_run_id(at) == "u0"
    assert progress_text(at) == "0 of 2 done"
    assert any("back on screen" in t for t in texts_of(at.info))
    vote(at, "u0", "B")
    (v,) = all_votes(engine)
    assert (v.run_id, v.choice, v.blind) == ("u0", "B", False)
    assert shown_run_id(at) == "u1"


def test_annotate_name_is_shared_with_the_session(engine: Any) -> None:
    make_run(engine, "n0", "Name question")
    at = open_page("annotate.py")
    at.session_state["annotator"] = "gus"
    at.run()
    assert at.text_input(key="annotate_name").value == "gus"
    assert shown_run_id(at) == "n0"
    at.text_input(key="annotate_name").input("hana").run()
    assert at.session_state["annotator"] == "hana"


# ------------------------------------------------------------------------------------------ History


def table_ids(at: Any) -> list[str]:
    frames = [d for d in at.dataframe if "id" in d.value.columns]
    assert len(frames) == 1
    return list(frames[0].value["id"])


def test_history_lists_and_filters_runs(engine: Any) -> None:
    import datetime as dt

    day = dt.datetime(2024, 3, 5, 12, 0).timestamp()
    make_run(engine, "h-tomato", "How do I grow tomatoes?", tags=("garden",), created_at=day)
    make_run(engine, "h-basil", "How do I keep basil alive?", tags=("herbs",), created_at=day + 86_400 * 10)
    make_run(
        engine, "h-two", "Two candidates only", BASIL[:2], created_at=day + 86_400 * 20, source="scenario:x"
    )
    at = open_page("history.py")
    assert table_ids(at) == ["h-two", "h-basil", "h-tomato"]

    at.text_input(key="keep.history_text").input("TOMATO").run()
    assert table_ids(at) == ["h-tomato"]
    at.text_input(key="keep.history_text").input("no such words").run()
    assert any("No run matches" in t for t in texts_of(at.warning))
    at.text_input(key="keep.history_text").input("").run()

    at.selectbox(key="keep.history_tag").select("herbs").run()
    assert table_ids(at) == ["h-basil"]
    at.selectbox(key="keep.history_tag").select("Any").run()

    at.selectbox(key="keep.history_n").select(2).run()
    assert table_ids(at) == ["h-two"]
    at.selectbox(key="keep.history_n").select("Any").run()

    at.selectbox(key="keep.history_source").select("scenario").run()
    assert table_ids(at) == ["h-two"]
    at.selectbox(key="keep.history_source").select("Any").run()

    at.date_input(key="keep.history_dates").set_value((dt.date(2024, 3, 1), dt.date(2024, 3, 10))).run()
    assert table_ids(at) == ["h-tomato"]


def test_history_pages_through_many_runs(engine: Any) -> None:
    for i in range(23):
        make_run(engine, f"p{i:02d}", f"Paged question {i}", created_at=10_000 + i)
    at = open_page("history.py")
    assert len(table_ids(at)) == 20
    at.get("pagination")[0].select(2).run()
    assert table_ids(at) == ["p02", "p01", "p00"]


def test_history_open_from_table_selection(engine: Any) -> None:
    make_run(engine, "sel-a", "First", created_at=1)
    make_run(engine, "sel-b", "Second", created_at=2)
    at = open_page("history.py")
    at.session_state["history_table_1"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert at.query_params.get("run") == "sel-a"
    assert [t.value for t in at.title] == [r"Run sel\-a"]


def test_history_permalink_opens_the_run(engine: Any) -> None:
    from streamlit.testing.v1 import AppTest

    run = make_run(engine, "perma-1", "Permalink prompt about basil", tags=("demo",))
    at = open_page("history.py")
    at.query_params["run"] = "perma-1"
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == [r"Run perma\-1"]
    assert 'href="?run=perma-1"' in html_text(at)
    assert "Permalink prompt about basil" in html_text(at)
    assert run.fused.text.split(".")[0] in html_text(at)
    # Blind: the report would name the sides and list the others' votes, so it waits for the vote.
    (report,) = at.get("download_button")
    assert report.label == "Download HTML report" and report.proto.disabled
    assert any("can be downloaded after your vote" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "Show the labels without voting").click().run()
    (report,) = at.get("download_button")
    assert not report.proto.disabled
    assert not any("can be downloaded after your vote" in c.value for c in at.caption)

    # A new session given only the URL's query string lands on the same view.
    fresh = AppTest.from_file(MAIN, default_timeout=60)
    fresh.query_params["run"] = "perma-1"
    fresh.run()
    fresh.switch_page("history.py")
    fresh.query_params["run"] = "perma-1"
    fresh.run()
    assert [t.value for t in fresh.title] == [r"Run perma\-1"]
    assert "Permalink prompt about basil" in html_text(fresh)

    fresh.button(key="history_back").click().run()
    assert "run" not in fresh.query_params
    assert [t.value for t in fresh.title] == ["History"]


def test_history_unknown_run_id(engine: Any) -> None:
    make_run(engine, "exists", "A run")
    at = open_page("history.py")
    at.query_params["run"] = "gone<b>"
    at.run()
    assert not at.exception
    errors = texts_of(at.error)
    assert len(errors) == 1 and "no run with the id `goneb`" in errors[0]


def test_history_delete_needs_confirmation(engine: Any) -> None:
    from storage.runs import load_run
    from storage.votes import all_votes, record_vote

    make_run(engine, "del-me", "Delete me")
    make_run(engine, "keep-me", "Keep me")
    record_vote(engine, run_id="del-me", annotator="ivy", choice="A", a_is="fused")
    at = open_page("history.py")
    at.query_params["run"] = "del-me"
    at.run()
    at.button(key="history_delete").click().run()
    assert any("1 vote?" in w for w in texts_of(at.warning))
    at.button(key="history_delete_no").click().run()
    assert load_run(engine, "del-me") is not None

    at.button(key="history_delete").click().run()
    at.button(key="history_delete_yes").click().run()
    assert not at.exception
    assert load_run(engine, "del-me") is None
    assert all_votes(engine) == []
    assert load_run(engine, "keep-me") is not None
    assert "run" not in at.query_params
    assert any(r"del\-me was deleted" in s for s in texts_of(at.success))
    assert table_ids(at) == ["keep-me"]


def test_history_empty_database(engine: Any) -> None:
    at = open_page("history.py")
    assert any("No runs saved yet" in t for t in texts_of(at.info))
    assert not at.exception


# ------------------------------------------------------------------------------------------ Results


def metric(at: Any, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return found[0]


def seed_votes(engine: Any) -> None:
    from storage.votes import record_vote

    plan = {
        # run id: (N, tags, {annotator: (choice, a_is)})
        "v0": (3, ("de",), {"ann": ("A", "fused"), "ben": ("A", "fused"), "cy": ("B", "fused")}),
        "v1": (3, ("de",), {"ann": ("B", "bon"), "ben": ("tie", "bon")}),
        "v2": (2, ("ja",), {"ann": ("A", "bon"), "ben": ("A", "bon")}),
        "v3": (2, ("ja", "de"), {"ann": ("both_bad", "fused"), "ben": ("B", "fused")}),
        "v4": (3, ("ja",), {"ann": ("B", "fused"), "cy": ("B", "fused")}),
    }
    for i, (run_id, (n, tags, votes)) in enumerate(plan.items()):
        make_run(engine, run_id, f"Results question {i}", BASIL[:n], tags=tags, created_at=7_000 + i)
        for annotator, (choice, a_is) in votes.items():
            record_vote(engine, run_id=run_id, annotator=annotator, choice=choice, a_is=a_is)


def test_results_empty_database(engine: Any) -> None:
    at = open_page("results.py")
    assert not at.exception
    assert any("Nothing to show yet" in t for t in texts_of(at.info))
    assert not at.get("plotly_chart")


def test_results_numbers_match_the_statistics(engine: Any) -> None:

    from fusion import stats
    from storage.votes import all_votes

    seed_votes(engine)
    votes = all_votes(engine)
    expected = stats.win_rate(votes)
    at = open_page("results.py")
    assert not at.exception, [e.value for e in at.exception]
    assert metric(at, "Fusion-of-N win rate") == f"{expected.rate:.1%}"
    assert metric(at, "Votes (runs)") == f"{expected.n_votes} ({expected.n_runs})"
    assert metric(at, "Both bad") == f"{expected.both_bad} of {expected.n_votes}"
    intervals = [m.value for m in at.metric if m.label == "95% interval"]
    assert intervals[0] == f"{expected.low:.1%}–{expected.high:.1%}"

    position = stats.position_bias(votes)
    assert metric(at, "Left response (A) wins") == f"{position.rate:.1%}"
    assert intervals[1] == f"{position.low:.1%}–{position.high:.1%}"
    assert metric(at, "Decisive votes") == str(position.decisive)

    # The split tables hold exactly fusion.stats' numbers. Only the open tab is drawn: open each in turn.
    frames = {tuple(d.value.columns)[0]: d.value for d in at.dataframe}
    for split in ("By N", "By tag", "By annotator"):
        at.session_state["results_split"] = split
        at.run()
        frames |= {tuple(d.value.columns)[0]: d.value for d in at.dataframe}
    by_annotator = stats.win_rate_by(votes, key=lambda v: v.annotator)
    table = frames["annotator"].set_index("annotator")
    for name, w in by_annotator.items():
        assert table.loc[name, "win rate"] == f"{w.rate:.1%}"
        shown = table.loc[name, "95% CI"]
        assert shown == (f"{w.low:.1%}–{w.high:.1%}" if w.has_interval else "—"), shown
        assert table.loc[name, "votes"] == w.n_votes
    by_n = stats.win_rate_by(votes, key=lambda v: str(v.n))
    n_table = frames["N"].set_index("N")
    assert set(n_table.index) == {"2", "3"}
    for label, w in by_n.items():
        assert n_table.loc[label, "win rate"] == f"{w.rate:.1%}"
    by_tag = stats.win_rate_by(votes, key=lambda v: v.tags)
    tag_table = frames["tag"].set_index("tag")
    assert tag_table.loc["de", "votes"] == by_tag["de"].n_votes == 7  # v0, v1 and v3

    # Agreement: Cohen's kappa per pair and Krippendorff's alpha overall.
    kappa_rows = stats.pairwise_kappa(votes)
    kt = frames["annotator A"]
    assert [(r["annotator A"], r["annotator B"], r["shared runs"]) for _, r in kt.iterrows()] == [
        (k.annotator_a, k.annotator_b, k.n_shared) for k in kappa_rows
    ]
    for (_, row), k in zip(kt.iterrows(), kappa_rows):
        # no kappa below the minimum overlap (as no interval below 5 runs), three decimals otherwise
        if k.kappa is None or k.n_shared < 5:
            assert row["Cohen's kappa"] == "—" and row["note"]
        else:
            assert row["Cohen's kappa"] == f"{k.kappa:.3f}"
    alpha = stats.krippendorff_alpha(stats.annotator_units(votes))
    assert metric(at, "Krippendorff's alpha (all annotators)") == f"{alpha:.3f}"
    assert any("too little overlap" in w for w in texts_of(at.warning))

    # Charts: the open split and the open attribution histogram as plain HTML (no plotly on first paint);
    # the plotly chart of the win rate against N (two Ns exist) in the "By N" tab.
    body = html_text(at)
    assert body.count('class="fx-rate-chart"') == 1 and body.count('class="fx-hist"') == 1
    assert not at.get("plotly_chart")
    at.session_state["results_split"] = "By N"
    at.run()
    assert len(at.get("plotly_chart")) == 1
    labels = [d.label for d in at.get("download_button")]
    assert labels == [
        "Votes (CSV)",
        "Votes (JSON Lines)",
        "DPO pairs (JSON Lines)",
        "SFT, completion (JSON Lines)",
        "SFT, chat messages (JSON Lines)",
    ]


def test_results_tag_filter(engine: Any) -> None:
    from fusion import stats
    from storage.votes import all_votes

    seed_votes(engine)
    at = open_page("results.py")
    at.selectbox(key="results_tag").select("ja").run()
    expected = stats.win_rate(all_votes(engine, tag="ja"))
    assert metric(at, "Fusion-of-N win rate") == f"{expected.rate:.1%}"
    assert metric(at, "Votes (runs)") == f"{expected.n_votes} ({expected.n_runs})"
    assert metric(at, "Runs") == "3"


def test_results_with_runs_but_no_votes(engine: Any) -> None:
    from storage.stats_reads import attribution_rows

    make_run(engine, "nv0", "No votes yet")
    at = open_page("results.py")
    assert not at.exception
    assert any("No votes yet" in t for t in texts_of(at.info))
    assert metric(at, "Runs") == "1"
    copied = attribution_rows(engine)[0].copied_fraction
    assert metric(at, "Median copied fraction") == f"{copied:.0%}"
    assert len(at.get("download_button")) == 5


def test_results_single_annotator_has_no_agreement(engine: Any) -> None:
    from storage.votes import record_vote

    make_run(engine, "one", "One annotator", created_at=1)
    record_vote(engine, run_id="one", annotator="solo", choice="A", a_is="fused")
    at = open_page("results.py")
    assert any("at least two annotators" in t and "only solo" in t for t in texts_of(at.info))
    assert metric(at, "Fusion-of-N win rate") == "100.0%"
    # One N only: no win-rate-against-N chart.
    assert not any(s.value == "Win rate against N" for s in at.subheader)


def test_results_no_shared_runs_says_too_little_overlap(engine: Any) -> None:
    from storage.votes import record_vote

    make_run(engine, "x1", "First", created_at=1)
    make_run(engine, "x2", "Second", created_at=2)
    record_vote(engine, run_id="x1", annotator="a", choice="A", a_is="fused")
    record_vote(engine, run_id="x2", annotator="b", choice="B", a_is="fused")
    at = open_page("results.py")
    assert any("too little overlap" in t for t in texts_of(at.info))


def test_history_keeps_filters_after_opening_a_run(engine: Any) -> None:
    make_run(engine, "f-tomato", "How do I grow tomatoes?", created_at=1)
    make_run(engine, "f-basil", "How do I keep basil alive?", created_at=2)
    at = open_page("history.py")
    at.text_input(key="keep.history_text").input("tomato").run()
    at.selectbox(key="history_open_choice_1").select("f-tomato").run()
    at.button(key="history_open").click().run()
    assert [t.value for t in at.title] == [r"Run f\-tomato"]
    at.button(key="history_back").click().run()
    assert at.text_input(key="keep.history_text").value == "tomato"
    assert table_ids(at) == ["f-tomato"]


def test_results_only_both_bad_votes(engine: Any) -> None:
    from storage.votes import record_vote

    make_run(engine, "bb", "Both bad", created_at=1)
    record_vote(engine, run_id="bb", annotator="a", choice="both_bad", a_is="fused")
    at = open_page("results.py")
    assert not at.exception, [e.value for e in at.exception]
    assert metric(at, "Fusion-of-N win rate") == "n/a"
    assert metric(at, "Both bad") == "1 of 1"
    infos = texts_of(at.info)
    assert any("both answers are bad" in t for t in infos)
    assert any("No vote has chosen A or B" in t for t in infos)


def test_annotate_undo_is_greyed_out_with_the_votes_and_names_its_vote(engine: Any) -> None:
    """U pressed right after a vote, or twice, must not undo: Undo waits with the vote buttons of the run just
    drawn, and each Undo button is its vote's, so a press of one drawn for a vote already undone is a press
    of a widget that is gone."""
    from storage.votes import all_votes

    for i in range(3):
        make_run(engine, f"g{i}", f"Grey undo question {i}", created_at=9_200 + i)
    at = start_annotating("gus")
    vote(at, "g0", "A")
    vote(at, "g1", "B")
    assert at.button(key="annotate_undo_g1").disabled
    assert at.button(key=annotate_vote_key("g2", "A")).disabled and at.button(key="annotate_skip_g2").disabled
    looked_at(at)
    assert not at.button(key="annotate_undo_g1").disabled and not at.button(key="annotate_skip_g2").disabled
    at.button(key="annotate_undo_g1").click().run()
    assert [v.run_id for v in all_votes(engine)] == ["g0"] and shown_run_id(at) == "g1"
    # The vote before is offered now, under its own key, and greyed out until the run back on screen is read.
    assert not [b for b in at.button if b.key == "annotate_undo_g1"]
    assert at.button(key="annotate_undo_g0").disabled


def test_annotate_a_skip_for_a_run_no_longer_on_screen_does_nothing(engine: Any) -> None:
    from storage.votes import all_votes

    for i in range(2):
        make_run(engine, f"k{i}", f"Stale skip question {i}", created_at=9_300 + i)
    at = start_annotating("kim")
    looked_at(at)
    # What a second S reads when it reaches the server after the page moved on: another run is current.
    at.session_state["annotate_current"] = "k1"
    at.button(key="annotate_skip_k0").click().run()
    assert not at.exception
    assert any("That press was for what was on screen before" in t for t in texts_of(at.warning))
    assert at.session_state["annotate_skipped"] == [] and all_votes(engine) == []


def test_annotate_the_ranking_step_can_undo_its_vote(engine: Any) -> None:
    from storage.votes import all_votes

    make_run(engine, "rk0", "Rank undo question 0", created_at=9_400)
    make_run(engine, "rk1", "Rank undo question 1", created_at=9_401)
    at = start_annotating("rex")
    at.toggle(key="keep.annotate_rank_on").set_value(True).run()
    vote(at, "rk0", "tie")
    assert any("Rank the candidates" in s.value for s in at.subheader)
    at.button(key="annotate_rank_undo_rk0").click().run()
    assert not at.exception
    assert all_votes(engine) == [] and shown_run_id(at) == "rk0"
    assert not any("Rank the candidates" in s.value for s in at.subheader)
    assert any("back on screen" in t for t in texts_of(at.info))
    vote(at, "rk0", "B")
    (v,) = all_votes(engine)
    assert (v.run_id, v.choice, v.blind) == ("rk0", "B", False)


def test_annotate_undo_works_after_a_reload(engine: Any) -> None:
    from storage.votes import all_votes

    make_run(engine, "ur0", "Undo after reload 0", created_at=9_500)
    make_run(engine, "ur1", "Undo after reload 1", created_at=9_501)
    vote(start_annotating("ida"), "ur0", "tie")
    fresh = start_annotating("ida")  # a reload: a new session with nothing remembered
    # Just cast: reported as kept across the reload (its acknowledgement may never have been seen).
    assert any("was saved before the page was reloaded" in c and "a tie" in c for c in texts_of(fresh.info))
    undo(fresh, "ur0")
    assert all_votes(engine) == [] and shown_run_id(fresh) == "ur0"


def test_annotate_says_how_many_runs_cannot_be_voted_on(engine: Any) -> None:
    from fusion.types import BestOfN
    from storage.runs import save_run
    from storage.votes import count_unpaired

    make_run(engine, "ok-run", "A votable run", created_at=9_700)
    broken = make_run(engine, "no-pick", "The judge failed here", created_at=9_701)
    broken.bon = BestOfN(index=None, scores=[None] * len(broken.candidates), method="judge:m", error="no score")
    save_run(engine, broken)
    assert count_unpaired(engine) == 1
    at = start_annotating("jo")
    assert progress_text(at) == "0 of 1 done"
    assert any("1 run has no Best-of-N pick or no fused answer" in c for c in texts_of(at.caption))


def test_annotate_reports_a_vote_saved_just_before_an_interruption(engine: Any) -> None:
    """A vote stored while the page was cut off (server killed after the commit, before the answer) is not
    silently gone from the queue: a new session of that annotator is told it was kept, with its Undo."""
    import time

    from sqlalchemy import update

    from storage.sql import votes as votes_table
    from storage.votes import record_vote

    for i in range(2):
        make_run(engine, f"r{i}", f"Basil question number {i}", created_at=1_000 + i)
    record_vote(engine, run_id="r0", annotator="alice", choice="A", a_is="fused")
    at = start_annotating("alice")  # a fresh session: what a reload after a restart gives
    assert any("was saved before the page was reloaded or the server restarted" in t and "r0" in t
               for t in texts_of(at.info))
    assert shown_run_id(at) == "r1"
    assert any(b.label == "Undo my last vote" for b in at.button)

    # An old vote is mentioned quietly, as before.
    with engine.begin() as conn:
        conn.execute(update(votes_table).values(updated_at=time.time() - 3600))
    at = start_annotating("alice")
    assert not any("saved before the page" in t for t in texts_of(at.info))
    assert any("Your last vote" in c.value and "r0" in c.value for c in at.caption)

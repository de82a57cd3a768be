"""The Explore page through Streamlit's AppTest: offline scenarios, bring-your-own candidates, uploads,
votes, the identical case, provider errors and a live run against the local OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app" / "main.py")


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh database and no provider key: the app must start in offline mode."""
    import os

    for name in list(os.environ):
        if name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("FUSION_API_BASE", raising=False)
    db = tmp_path / "app.db"
    monkeypatch.setenv("FUSION_DB_PATH", str(db))
    # st.cache_resource would otherwise hand this test the engine of an earlier test's database.
    import streamlit as st

    st.cache_resource.clear()
    yield db
    st.cache_resource.clear()


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
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


def no_errors(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def fill_own(at: AppTest, prompt: str, texts: list[str]) -> AppTest:
    at.segmented_control(key="explore_mode").set_value("Your own candidates").run()
    at.number_input(key="own_count").set_value(len(texts)).run()
    at.text_area(key="own_prompt").input(prompt)
    for i, t in enumerate(texts):
        at.text_area(key=f"own_cand_{i}").input(t)
    return button(at, "Fuse these candidates").click().run()


DIFFERING = [
    "Boil water first. Add the pasta and salt the water generously. Cook for nine minutes, stirring now and then.",
    "Bring a large pot of water to a boil and salt it. Add the pasta. Stir in the first minute so it does not stick.",
    "Salt the boiling water well. Cook the pasta until al dente, about nine minutes. Save a cup of pasta water for the sauce.",
    "Boil salted water, add pasta, and cook it for about nine minutes. Drain it and toss with sauce right away.",
]


def test_offline_mode_banner_and_scenario_gallery(app_env: Path) -> None:
    at = new_app()
    assert any("Offline mode" in i.value for i in at.info)
    assert at.segmented_control(key="explore_mode").value == "Scenario gallery"
    at.selectbox(key="scenario_choice").select("bones-adult-newborn").run()
    no_errors(at)
    run = at.session_state["explore_run"]
    assert run.source == "scenario:bones-adult-newborn"
    assert run.bon.method == "consensus" and run.fused.method == "extractive"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Best-of-N pick"] == f"Candidate {run.bon.index + 1}"
    assert metrics["Copied from candidates"] == f"{run.attribution.copied_fraction:.0%}"
    # the fused output is rendered with its attribution, the legend and the share chart
    htmls = [h.proto.body for h in at.get("html")]
    assert any('data-kind="' in h for h in htmls)
    assert any("new text" in h or "Candidate" in h for h in htmls)
    assert len(at.get("plotly_chart")) == 1
    # the run is in the database
    from storage.queries import load_run

    stored = load_run(engine(), run.id)
    assert stored is not None and stored.fused.text == run.fused.text


def test_every_scenario_opens_without_error(app_env: Path) -> None:
    from fusion.scenarios import load_scenarios

    at = new_app()
    for s in load_scenarios():
        at.selectbox(key="scenario_choice").select(s.id).run()
        no_errors(at)
        assert at.session_state["explore_run"].source == f"scenario:{s.id}"


def test_bring_your_own_candidates_and_vote(app_env: Path) -> None:
    from fusion.scenarios import get_scenario

    # Pasted by hand: the bones scenario's texts, where the extractive fusion adds to the consensus pick.
    s = get_scenario("bones-adult-newborn")
    at = new_app()
    at = fill_own(at, s.prompt, list(s.candidates))
    no_errors(at)
    run = at.session_state["explore_run"]
    assert [c.text for c in run.candidates] == list(s.candidates)
    assert run.source == "supplied"
    assert run.bon_text.strip() != run.fused.text.strip()
    key = f"explore_vote_{run.id}"
    at.text_input(key=f"{key}__annotator").input("ada")
    at.text_area(key=f"{key}__comment").input("B reads better")
    at.button(key=f"{key}__vote_B").click().run()
    no_errors(at)
    assert any("Vote saved" in s.value for s in at.success)
    from storage.queries import votes_for_run

    votes = votes_for_run(engine(), run.id)
    assert len(votes) == 1
    a_is = at.session_state[f"explore_a_is_{run.id}"]
    assert votes[0].a_is == a_is
    assert votes[0].winner == ("fused" if a_is == "bon" else "bon")
    assert votes[0].comment == "B reads better"


def test_identical_pick_and_fusion_says_so(app_env: Path) -> None:
    at = new_app()
    same = "The answer is 42, as computed by Deep Thought."
    at = fill_own(at, "What is the answer?", [same, same, same])
    no_errors(at)
    assert any("identical" in i.value for i in at.info)
    key = f"explore_vote_{at.session_state['explore_run'].id}"
    assert not [b for b in at.button if b.key and b.key.startswith(key)]


def test_bring_your_own_rejects_bad_input(app_env: Path) -> None:
    at = new_app()
    at = fill_own(at, "   ", ["a", "b"])
    assert any("prompt is empty" in e.value for e in at.error)
    at = fill_own(at, "Q?", ["only one", "  "])
    assert any("At least 2 non-empty" in e.value for e in at.error)
    assert not at.exception


def test_upload_jsonl_reports_bad_lines_and_fuses_a_record(app_env: Path) -> None:
    at = new_app()
    at.segmented_control(key="explore_mode").set_value("Your own candidates").run()
    lines = [
        json.dumps({"id": "pasta", "prompt": "How do I cook pasta?", "candidates": DIFFERING}),
        "{broken",
        json.dumps({"id": "one", "prompt": "Q", "candidates": ["just one"]}),
    ]
    at.file_uploader(key="own_upload").upload(
        "in.jsonl", "\n".join(lines).encode("utf-8"), "application/jsonl"
    ).run()
    no_errors(at)
    warning = " ".join(w.value for w in at.warning)
    assert "line 2: not valid JSON" in warning and "line 3: At least 2" in warning
    button(at, "Fuse this record").click().run()
    no_errors(at)
    run = at.session_state["explore_run"]
    assert run.prompt.text == "How do I cook pasta?" and len(run.candidates) == 4


def test_upload_that_is_not_utf8(app_env: Path) -> None:
    at = new_app()
    at.segmented_control(key="explore_mode").set_value("Your own candidates").run()
    at.file_uploader(key="own_upload").upload("in.jsonl", b"\xff\xfe\x00bad", "application/jsonl").run()
    assert any("not UTF-8" in e.value for e in at.error)
    assert not at.exception


# ------------------------------------------------------------------------------------------------ live


def go_live(at: AppTest, url: str, *, models: str, n: int, prompt: str = "Why is the sky blue?") -> AppTest:
    at.segmented_control(key="explore_mode").set_value("Generate live").run()
    at.text_area(key="live_prompt").input(prompt)
    at.text_input(key="live_models").input(models)
    at.number_input(key="live_n").set_value(n)
    at.text_input(key="live_api_base").input(url)
    return button(at, "Generate and fuse").click().run()


@pytest.mark.server
def test_live_run_against_local_server_then_vote(app_env: Path, openai_server, monkeypatch) -> None:
    at = new_app()
    at.radio(key="m_fusor").set_value("llm").run()
    at.text_input(key="m_fusor_model").input("openai/fusor").run()
    at = go_live(at, openai_server.url, models="openai/ok", n=4)
    no_errors(at)
    run = at.session_state["explore_run"]
    assert len(run.candidates) == 4 and all(c.ok for c in run.candidates)
    assert run.fused.method == "llm:openai/fusor"
    assert run.attribution.copied_fraction > 0.5
    assert sum(1 for r in openai_server.requests if r["model"] == "ok") == 4
    assert run.bon_text.strip() != run.fused.text.strip()
    key = f"explore_vote_{run.id}"
    at.text_input(key=f"{key}__annotator").input("grace")
    at.button(key=f"{key}__vote_A").click().run()
    no_errors(at)
    # a second click (a double click, or a rerun) must not add a second vote
    at.button(key=f"{key}__vote_A").click().run()
    from storage.queries import votes_for_run

    votes = votes_for_run(engine(), run.id)
    assert len(votes) == 1 and votes[0].annotator == "grace" and votes[0].choice == "A"
    # voting again with another choice changes the vote
    at.button(key=f"{key}__vote_tie").click().run()
    votes = votes_for_run(engine(), run.id)
    assert len(votes) == 1 and votes[0].winner == "tie"


@pytest.mark.server
def test_live_provider_error_is_shown_in_cards_not_as_traceback(app_env: Path, openai_server) -> None:
    at = new_app()
    at = go_live(at, openai_server.url, models="openai/auth", n=2)
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "Only 0 of 2 candidates are usable" in errors
    assert "Traceback" not in errors
    htmls = " ".join(h.proto.body for h in at.get("html"))
    assert "failed" in htmls.lower()


@pytest.mark.server
def test_live_partial_failure_goes_on(app_env: Path, openai_server) -> None:
    at = new_app()
    at = go_live(at, openai_server.url, models="openai/ok, openai/notfound, openai/ok", n=3)
    no_errors(at)
    run = at.session_state["explore_run"]
    assert [c.ok for c in run.candidates] == [True, False, True]
    assert run.candidates[1].error


def test_live_bad_input_messages(app_env: Path) -> None:
    at = new_app()
    at = go_live(at, "", models="openai/gpt-4o-mini", n=3, prompt="")
    assert any("prompt is empty" in e.value for e in at.error)
    at = go_live(at, "", models="openai/gpt-4o-mini", n=3)
    assert any("OPENAI_API_KEY" in e.value for e in at.error)
    at = go_live(at, "", models="", n=3)
    assert any("Give at least one candidate model." in e.value for e in at.error)
    assert not at.exception

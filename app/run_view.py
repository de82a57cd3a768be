"""The view of one finished run, shared by the Explore and History pages (and permalinks): summary,
Best-of-N next to the fused output with its attribution, the candidates, and the blind vote.

Wiring only: every figure shown comes from the run (computed by the engine) or from storage."""

from __future__ import annotations

import html
import random
import uuid
from typing import Any

import streamlit as st

from components.attribution_view import attribution_html, legend_html
from components.candidate_cards import render_candidate_grid
from components.figures import shares_figure
from components.palette import candidate_border
from components.vote_panel import render_reveal, render_vote_panel
from fusion.types import Run

WINNER_TEXT = {
    "fused": "the fused output",
    "bon": "the Best-of-N pick",
    "tie": "a tie",
    "both_bad": "both bad",
}


def text_block(text: str, *, border: str | None = None) -> None:
    """Untrusted text, shown exactly as written: escaped, no markdown, newlines kept."""
    style = "white-space:pre-wrap;word-wrap:break-word;line-height:1.55;padding:0.75rem 1rem;border-radius:8px;"
    style += f"border:2px solid {border};" if border else "border:1px solid rgba(128,128,128,0.35);"
    st.html(f'<div class="fx-text" dir="auto" style="{style}">{html.escape(text, quote=True)}</div>')


def labels_for(run: Run) -> list[str]:
    return [c.label for c in run.candidates]


def show_summary(run: Run) -> None:
    cols = st.columns(4)
    usable = len(run.usable)
    cols[0].metric("Candidates", f"{usable} of {len(run.candidates)}" if usable != len(run.candidates) else usable)
    if run.bon and run.bon.index is not None:
        cols[1].metric("Best-of-N pick", f"Candidate {run.bon.index + 1}", help=f"Selector: {run.bon.method}")
    else:
        cols[1].metric("Best-of-N pick", "none")
    if run.attribution:
        contributing = sum(1 for s in run.attribution.shares if s > 0)
        cols[2].metric(
            "Copied from candidates",
            f"{run.attribution.copied_fraction:.0%}",
            help="Share of the fused text's characters found in at least one candidate (lightly edited copies count).",
        )
        cols[3].metric("Candidates used by the fusion", contributing)
    else:
        cols[2].metric("Copied from candidates", "n/a")
        cols[3].metric("Candidates used by the fusion", "n/a")


def show_compare(run: Run, *, key: str) -> None:
    labels = labels_for(run)
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Best-of-N")
        if run.bon is None or run.bon.index is None:
            st.warning(f"No pick: {run.bon.error if run.bon else 'no selector ran'}")
        else:
            idx = run.bon.index
            score = run.bon.scores[idx] if idx < len(run.bon.scores) else None
            score_txt = f", score {score:.3g}" if isinstance(score, (int, float)) else ""
            st.caption(f"Candidate {idx + 1} ({run.candidates[idx].model}), chosen by {run.bon.method}{score_txt}")
            text_block(run.candidates[idx].text, border=candidate_border(idx))
    with right:
        st.subheader("Fusion-of-N")
        if run.fused is None:
            st.warning("No fused output.")
            return
        if run.fused.error:
            st.error(f"The fusor failed: {run.fused.error}")
            return
        st.caption(f"Written by {run.fused.method}" + (f" (template: {run.fused.template})" if run.fused.template else ""))
        if run.attribution is None:
            text_block(run.fused.text)
            return
        options = ["None"] + labels
        choice = st.segmented_control(
            "Highlight a candidate's spans",
            options,
            default="None",
            key=f"{key}_highlight",
            help="Keep one candidate's spans coloured and fade the rest.",
        )
        highlight = labels.index(choice) if choice and choice != "None" else None
        st.html(attribution_html(run.fused.text, run.attribution, labels, highlight=highlight))
        st.html(
            legend_html(
                labels, run.attribution.shares, copied_fraction=run.attribution.copied_fraction, highlight=highlight
            )
        )
    if run.attribution is not None:
        st.plotly_chart(shares_figure(run.attribution, labels), key=f"{key}_shares")


def show_candidates(run: Run) -> None:
    scores = run.bon.scores if run.bon else [None] * len(run.candidates)
    notes = run.bon.notes if run.bon and run.bon.notes else [None] * len(run.candidates)
    render_candidate_grid(
        run.candidates,
        scores=scores,
        pick=run.bon.index if run.bon else None,
        notes=notes,
    )


def _ab_order(run: Run, key: str) -> str:
    """Which side is Response A ('bon' or 'fused'): drawn once per run and session, then kept."""
    state_key = f"{key}_a_is_{run.id}"
    if state_key not in st.session_state:
        st.session_state[state_key] = random.choice(["bon", "fused"])
    return st.session_state[state_key]


def _token(run: Run, key: str) -> str:
    state_key = f"{key}_token_{run.id}"
    if state_key not in st.session_state:
        st.session_state[state_key] = uuid.uuid4().hex
    return st.session_state[state_key]


def show_vote(run: Run, *, engine: Any, key: str, on_saved: Any = None, ask_name: bool = True) -> bool:
    """The blind A/B vote. Returns True on the rerun where a vote was saved."""
    from storage.queries import get_vote, record_vote

    bon_text = run.bon_text
    fused_text = run.fused.text if run.fused and not run.fused.error else None
    if bon_text is None or not fused_text:
        st.info("A vote needs both a Best-of-N pick and a fused output.")
        return False
    if bon_text.strip() == fused_text.strip():
        st.info(
            "The Best-of-N pick and the fused output are identical, so there is nothing to choose between: "
            "the fusor copied one candidate."
        )
        return False
    a_is = _ab_order(run, key)
    text_a, text_b = (bon_text, fused_text) if a_is == "bon" else (fused_text, bon_text)
    annotator = st.session_state.get("annotator", "")
    existing = get_vote(engine, run.id, annotator) if annotator else None
    if existing is not None:
        st.caption(
            f"You ({annotator}) already voted on this run: {WINNER_TEXT.get(existing.winner, existing.winner)}. "
            "Voting again replaces that vote."
        )
    submission = render_vote_panel(
        text_a, text_b, key=f"{key}_vote_{run.id}", annotator=annotator,
        existing_choice=(existing.choice if existing and existing.a_is == a_is else None),
        ask_name=ask_name,
    )
    if submission is None:
        return False
    st.session_state["annotator"] = submission.annotator
    try:
        vote = record_vote(
            engine,
            run_id=run.id,
            annotator=submission.annotator,
            choice=submission.choice,
            a_is=a_is,
            comment=submission.comment or None,
            client_token=_token(run, key),
        )
    except Exception as exc:  # noqa: BLE001 - the page must say what went wrong, never show a traceback
        st.error(f"The vote was not saved: {exc}")
        return False
    # A fresh token for the next vote on this run, so changing one's mind is recorded, not ignored.
    st.session_state[f"{key}_token_{run.id}"] = uuid.uuid4().hex
    st.success(f"Vote saved: {WINNER_TEXT.get(vote.winner, vote.winner)}.")
    render_reveal(a_is, submission.choice)
    if on_saved:
        on_saved(vote)
    return True


def show_run(run: Run, *, engine: Any, key: str, vote_first: bool = False) -> None:
    """The whole view of a run."""
    with st.expander("Prompt", expanded=True):
        text_block(run.prompt.text)
    show_summary(run)
    names = ["Fusion vs Best-of-N", "Candidates", "Blind vote"]
    if vote_first:
        names = ["Blind vote", "Fusion vs Best-of-N", "Candidates"]
    # Keyed, so the open tab survives a rerun that shifts the page above it (the fusing status disappears).
    tabs = dict(zip(names, st.tabs(names, key=f"{key}_tabs")))
    with tabs["Fusion vs Best-of-N"]:
        show_compare(run, key=key)
    with tabs["Candidates"]:
        show_candidates(run)
    with tabs["Blind vote"]:
        st.caption(
            "The Best-of-N pick and the fused output as Response A and Response B, in a random order. "
            "Which is the better answer to the prompt? Identities are revealed after you vote."
        )
        show_vote(run, engine=engine, key=key)

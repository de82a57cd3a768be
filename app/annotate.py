"""Annotate: saved runs this annotator has not voted on, one at a time, as the same blind A/B vote as on
Explore; Skip, progress, an optional ranking of the individual candidates after the vote.

Several annotators may work on one database at once: storage keeps one vote per (run, annotator), and the
queue is re-read from the database on every rerun, so a run this annotator voted on never comes back.
"""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

from app import deps
from app.run_view import WINNER_TEXT, show_candidates, show_vote, text_block
from components.vote_panel import reveal_text
from fusion.types import Run

KEY = "annotate"
NAME_KEY = "annotate_name"  # the widget; "annotator" is the session-wide name Explore shares
TAG_KEY = "annotate_tag"
RANK_ON_KEY = "annotate_rank_on"
SKIPPED = "annotate_skipped"  # run ids skipped in this session, in the order they were skipped
IDENTICAL = "annotate_identical"  # run ids whose two texts turned out identical (nothing to vote on)
CURRENT = "annotate_current"  # the run on screen, kept across reruns so a click lands on the run it was for
PENDING_RANK = "annotate_pending_rank"  # the vote just cast, waiting for an optional ranking
LAST = "annotate_last"  # what to say about the previous vote once the next run is on screen
ALL_TAGS = "All runs"


def _sync_name() -> None:
    st.session_state["annotator"] = (st.session_state.get(NAME_KEY) or "").strip()
    _reset_queue_position()
    st.session_state[SKIPPED] = []  # skips were this annotator's; the next one starts afresh


def _reset_queue_position() -> None:
    for k in (CURRENT, PENDING_RANK, LAST):
        st.session_state.pop(k, None)


def _session_list(name: str) -> list[str]:
    if name not in st.session_state:
        st.session_state[name] = []
    return st.session_state[name]


def _ordered_queue(queue: list[str]) -> list[str]:
    """Unskipped runs first (oldest first, as storage orders them), then the skipped ones in skip order."""
    skipped = [r for r in _session_list(SKIPPED) if r in set(queue)]
    skipped_set = set(skipped)
    return [r for r in queue if r not in skipped_set] + skipped


def _next_run(engine: Any, queue: list[str]) -> Run | None:
    """The run to show: the current one while it is still to do, else the first votable run in the queue.

    Runs whose Best-of-N pick and fused text are identical are set aside here (and counted), because
    there is nothing to choose between them.
    """
    from storage.queries import is_identical, load_run

    identical = _session_list(IDENTICAL)
    current = st.session_state.get(CURRENT)
    order = _ordered_queue(queue)
    if current in queue and current not in identical:
        order = [current] + [r for r in order if r != current]
    for run_id in order:
        if run_id in identical:
            continue
        run = load_run(engine, run_id)
        if run is None:  # deleted by someone else between the two reads
            continue
        if is_identical(run):
            identical.append(run_id)
            continue
        st.session_state[CURRENT] = run_id
        return run
    st.session_state.pop(CURRENT, None)
    return None


def _empty_queue(total: int, tag: str | None) -> None:
    where = f" tagged **{tag}**" if tag else ""
    if total == 0:
        st.info(
            f"There are no saved runs{where} to annotate yet. Runs appear here once they are saved with a "
            "Best-of-N pick and a fused answer."
        )
    else:
        st.success(f"Nothing left to annotate{where}: you have voted on every run there is. Thank you!")
    st.markdown(
        "Make more runs on the Explore page, or many at once from the command line: "
        "`python -m fusion batch prompts.jsonl --output runs.jsonl`."
    )
    try:
        st.page_link("explore.py", label="Open Explore", icon=":material/science:")
    except Exception:  # noqa: BLE001 - the link needs st.navigation; the page still works without it
        pass


def _on_voted(vote: Any) -> None:
    # The reveal is shown above the next run; with ranking on, the ranking step comes first.
    message = f"Saved: {WINNER_TEXT.get(vote.winner, vote.winner)}. {reveal_text(vote.a_is, vote.choice)}"
    if st.session_state.get(RANK_ON_KEY):
        st.session_state[PENDING_RANK] = {
            "run_id": vote.run_id,
            "annotator": vote.annotator,
            "choice": vote.choice,
            "a_is": vote.a_is,
            "comment": vote.comment,
            "message": message,
        }
    else:
        st.session_state[LAST] = message
    st.session_state.pop(CURRENT, None)


def _ranking_step(engine: Any, pending: dict[str, Any]) -> None:
    """After the vote, identities are known, so the candidates can be shown and ranked without unblinding."""
    from storage.queries import load_run, record_vote

    run = load_run(engine, pending["run_id"])
    st.success(pending["message"], icon=":material/check_circle:")
    if run is None:
        st.session_state.pop(PENDING_RANK, None)
        st.rerun()
    st.subheader("Rank the candidates (optional)")
    with st.expander("Prompt", expanded=False):
        text_block(run.prompt.text)
    show_candidates(run)
    usable = [c.index for c in run.usable]
    with st.form(f"{KEY}_rank_form_{run.id}", enter_to_submit=False):
        order = st.multiselect(
            "Candidates from best to worst (pick them in order; leaving some out is fine)",
            usable,
            format_func=lambda i: f"Candidate {i + 1}",
            key=f"{KEY}_ranking_{run.id}",
        )
        cols = st.columns(2)
        save = cols[0].form_submit_button("Save ranking and continue", type="primary", key=f"{KEY}_rank_save")
        skip = cols[1].form_submit_button("Continue without ranking", key=f"{KEY}_rank_skip")
    if save and order:
        try:
            record_vote(
                engine,
                run_id=run.id,
                annotator=pending["annotator"],
                choice=pending["choice"],
                a_is=pending["a_is"],
                comment=pending["comment"],
                ranking=[int(i) for i in order],
                client_token=uuid.uuid4().hex,
            )
        except Exception as exc:  # noqa: BLE001 - say what went wrong, keep the step open
            st.error(f"The ranking was not saved: {exc}")
            return
        st.session_state[LAST] = "Ranking saved: " + ", ".join(f"Candidate {i + 1}" for i in order) + "."
    elif save:
        st.warning("Pick at least one candidate, or continue without ranking.")
        return
    if save or skip:
        st.session_state.pop(PENDING_RANK, None)
        st.rerun()


def page() -> None:
    from storage.queries import all_tags, annotation_queue, queue_progress

    engine = deps.get_engine()
    st.title("Annotate")
    st.caption(
        "Saved runs you have not voted on, one at a time. Response A and Response B are the Best-of-N pick and "
        "the Fusion-of-N answer in a random order; which is which is revealed after your vote."
    )

    # Seed the widget from the session-wide name every run: Explore may have changed it.
    st.session_state[NAME_KEY] = st.session_state.get("annotator", "")
    top = st.columns([2, 2, 1])
    top[0].text_input("Annotating as (your name)", key=NAME_KEY, on_change=_sync_name, max_chars=80)
    tags = all_tags(engine)
    tag_choice = top[1].selectbox(
        "Tag",
        [ALL_TAGS, *tags],
        key=TAG_KEY,
        on_change=_reset_queue_position,
        help="Annotate only the runs with this tag.",
    )
    tag = None if tag_choice in (None, ALL_TAGS) else tag_choice
    top[2].toggle(
        "Rank candidates too",
        key=RANK_ON_KEY,
        help="After each vote, optionally order the individual candidates from best to worst.",
    )
    annotator = (st.session_state.get("annotator") or "").strip()
    if not annotator:
        st.info("Type your name to start. Each annotator has their own queue and votes once per run.")
        return

    pending = st.session_state.get(PENDING_RANK)
    if pending and pending.get("annotator") == annotator:
        _ranking_step(engine, pending)
        return

    done, total = queue_progress(engine, annotator, tag)
    queue = annotation_queue(engine, annotator, tag=tag, limit=None)
    run = _next_run(engine, queue)
    identical = set(_session_list(IDENTICAL))
    n_identical = sum(1 for r in queue if r in identical)
    to_do = max(total - n_identical, 0)
    st.progress(done / to_do if to_do else 1.0, text=f"{done} of {to_do} done")
    if n_identical:
        st.caption(
            f"{n_identical} run(s) left out: the fused answer is the Best-of-N pick verbatim, so there is "
            "nothing to choose between them."
        )
    last = st.session_state.pop(LAST, None)
    if last:
        st.success(last, icon=":material/check_circle:")
    if run is None:
        _empty_queue(total, tag)
        return

    skipped = [r for r in _session_list(SKIPPED) if r in set(queue)]
    remaining = len([r for r in queue if r not in identical])
    st.caption(
        f"Run `{run.id}` · {remaining} left in your queue"
        + (f" ({len(skipped)} skipped for later)" if skipped else "")
        + (f" · tags: {', '.join(run.tags)}" if run.tags else "")
    )
    st.subheader("Prompt")
    if run.prompt.system:
        with st.expander("System message"):
            text_block(run.prompt.system)
    text_block(run.prompt.text)
    st.subheader("Which response is better?")
    saved = show_vote(run, engine=engine, key=KEY, on_saved=_on_voted, ask_name=False)
    if saved:
        st.rerun()
    if st.button(
        "Skip for now",
        key=f"{KEY}_skip",
        icon=":material/skip_next:",
        help="Move on without voting; skipped runs come back after the rest of the queue.",
    ):
        skipped_list = _session_list(SKIPPED)
        if run.id in skipped_list:
            skipped_list.remove(run.id)
        skipped_list.append(run.id)
        st.session_state.pop(CURRENT, None)
        st.rerun()


page()

"""Annotate: saved runs this annotator has not voted on, one at a time, as the same blind A/B vote as on
Explore; Skip, Undo, progress, an optional ranking of the individual candidates after the vote.

Several annotators may work on one database at once: storage keeps one vote per (run, annotator), and the
queue is re-read from the database on every rerun, so a run this annotator voted on never comes back. Runs
whose fused answer is the Best-of-N pick word for word are known to be unvotable when they are saved, so
the queue's total is right from the start and does not shrink as they come up.

Keys: 1 to 4 vote, S skips, U undoes the last vote, N continues past the ranking step (never while a text
field has the focus; ``components.keyboard_guard`` drops held and mashed keys in the browser). Each run has
its own vote form, whose buttons, with Skip and Undo, stay greyed out for ``QUICK_VOTE_S`` after the run
appears (and a vote that comes sooner anyway is refused); Skip and Undo are keyed by the run and the vote
they act on, so a press read after the page moved on does nothing: a key pressed twice acts once, never on
the next run unseen.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import streamlit as st

from app import auth, deps
from app.run_view import (
    ANNOTATOR,
    WINNER_TEXT,
    cast_here,
    enable_votes_later,
    mark_seen,
    show_blind_vote,
    show_candidates,
    shown_at_key,
    text_block,
    vote_wait,
)
from app.state import keep
from components.text import md_escape, md_list
from components.vote_panel import CONTINUE_KEY, SKIP_KEY, UNDO_KEY, reveal_text
from fusion.text import plural
from fusion.types import Run

KEY = "annotate"
NAME_KEY = "annotate_name"  # the widget; ANNOTATOR is the session-wide name Explore shares
TAG_KEY = "keep.annotate_tag"
RANK_ON_KEY = "keep.annotate_rank_on"
SKIPPED = "annotate_skipped"  # run ids skipped in this session, in the order they were skipped
CURRENT = "annotate_current"  # the run on screen, kept across reruns so a click lands on the run it was for
PENDING_RANK = "annotate_pending_rank"  # the vote just cast, waiting for an optional ranking
LAST = "annotate_last"  # the previous vote: what to say about it, and what Undo removes
# A stored vote this recent, met by a session that did not cast it, is reported as saved before an
# interruption (a reload, a lost connection, a server restart) rather than quietly.
RECENT_VOTE_S = 15 * 60
NOTICE = "annotate_notice"
STALE_PRESS = ("That press was for what was on screen before (a key pressed twice?), so it did nothing. "
               "Look at what is on screen now, then press again.")
ALL_TAGS = "All runs"


def vote_key(run_id: str) -> str:
    """The widget key of the vote form for this run."""
    return f"{KEY}_{run_id}"


def undo_key(run_id: str, step: str = "") -> str:
    """The widget key of the Undo button for the vote on ``run_id`` (``step``: "rank" on the ranking step)."""
    return f"{KEY}_{step + '_' if step else ''}undo_{run_id}"


def skip_key(run_id: str) -> str:
    """The widget key of the Skip button of ``run_id``."""
    return f"{KEY}_skip_{run_id}"


def _sync_name() -> None:
    st.session_state[ANNOTATOR] = (st.session_state.get(NAME_KEY) or "").strip()
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
    queued = set(queue)
    skipped = [r for r in _session_list(SKIPPED) if r in queued]
    skipped_set = set(skipped)
    return [r for r in queue if r not in skipped_set] + skipped


def _voted(engine: Any, run_id: str, annotator: str) -> bool:
    from storage.votes import get_vote

    return get_vote(engine, run_id, annotator) is not None


def _next_run(engine: Any, queue: list[str]) -> Run | None:
    """The run to show: the current one while it is still to do, else the first one in the queue."""
    from storage.runs import load_run

    current = st.session_state.get(CURRENT)
    order = _ordered_queue(queue)
    if current in queue:
        order = [current] + [r for r in order if r != current]
    for run_id in order:
        run = load_run(engine, run_id)
        if run is None:  # deleted by someone else between the two reads
            continue
        st.session_state[CURRENT] = run_id
        return run
    st.session_state.pop(CURRENT, None)
    return None


def _how_to_make_runs() -> None:
    st.markdown(
        "Make runs on the **Explore** page (a built-in scenario works offline), or many at once from the "
        "command line: `python -m fusion batch prompts.jsonl --output runs.jsonl --model <model>` "
        "(or `--offline` for lines that already carry their candidates)."
    )
    try:
        st.page_link("explore.py", label="Open Explore", icon="🔬")
    except Exception:  # noqa: BLE001 - the link needs st.navigation; the page still works without it
        pass


def _on_voted(vote: Any) -> None:
    # The reveal is shown above the next run; with ranking on, the ranking step comes first.
    message = f"Saved: {WINNER_TEXT.get(vote.winner, vote.winner)}. {reveal_text(vote.a_is, vote.choice)}"
    last = {"run_id": vote.run_id, "annotator": vote.annotator, "message": message}
    if st.session_state.get(RANK_ON_KEY):
        st.session_state[PENDING_RANK] = {
            "run_id": vote.run_id,
            "annotator": vote.annotator,
            "choice": vote.choice,
            "a_is": vote.a_is,
            "comment": vote.comment,
            "blind": getattr(vote, "blind", True),
            "message": message,
        }
    st.session_state[LAST] = last
    st.session_state.pop(CURRENT, None)
    st.session_state.pop(shown_at_key(vote_key(vote.run_id)), None)


def _on_refused(message: str) -> None:
    # Said at the top, where the eye goes after a key press. The "Saved" of the vote before stays as it
    # was: that vote counts, and only this press did not.
    st.session_state[NOTICE] = ("warning", message)


def _undo(run_id: str | None = None) -> None:
    """Remove the vote on ``run_id``, the one the pressed button named. A press of a button drawn for a vote
    already undone (U pressed twice, the second read after the page moved on) is refused: it would undo the
    vote before, which the person never saw offered."""
    from storage.votes import delete_vote

    last = st.session_state.get(LAST)
    if not last:
        return
    if run_id is not None and last["run_id"] != run_id:
        st.session_state[NOTICE] = ("warning", STALE_PRESS)
        return
    st.session_state.pop(LAST, None)
    try:
        removed = delete_vote(deps.get_engine(), last["run_id"], last["annotator"])
    except Exception as exc:  # noqa: BLE001 - say so, keep the vote
        st.session_state[LAST] = last
        st.session_state[NOTICE] = ("error", f"The vote could not be removed: {type(exc).__name__}.")
        return
    st.session_state.pop(PENDING_RANK, None)
    mark_seen(last["run_id"], "reveal")  # its reveal was shown: a new vote on it cannot be blind
    st.session_state.pop(shown_at_key(vote_key(last["run_id"])), None)  # drawn anew: a moment before votes count
    st.session_state[CURRENT] = last["run_id"]
    st.session_state[NOTICE] = (
        "info",
        "Your last vote was removed and its run is back on screen. You have seen which response was which, "
        "so a new vote on it is stored as not blind."
        if removed
        else "That vote was already gone.",
    )


def _skip(run_id: str) -> None:
    if st.session_state.get(CURRENT) != run_id:  # a press for a run already gone (S pressed twice)
        st.session_state[NOTICE] = ("warning", STALE_PRESS)
        return
    skipped_list = _session_list(SKIPPED)
    if run_id in skipped_list:
        skipped_list.remove(run_id)
    skipped_list.append(run_id)
    st.session_state.pop(CURRENT, None)
    # The green "Saved: ..." of the vote before would otherwise read as news about the run skipped now.
    last = st.session_state.get(LAST)
    if last:
        last["quiet"] = True
    st.session_state[NOTICE] = ("info", "Skipped: that run comes back after the others.")


def _ranking_step(engine: Any, pending: dict[str, Any]) -> None:
    """After the vote, identities are known, so the candidates can be shown and ranked without unblinding."""
    from storage.runs import load_run
    from storage.votes import record_vote

    run = load_run(engine, pending["run_id"])
    cols = st.columns([4, 1], vertical_alignment="center")
    cols[0].success(pending["message"])
    cols[1].button(
        "Undo this vote", key=undo_key(pending["run_id"], "rank"), on_click=_undo, args=(pending["run_id"],), shortcut=UNDO_KEY,
        width="stretch", wrap=True, help="Remove the vote just cast and show its run again.",
    )
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
        skip = cols[1].form_submit_button("Continue without ranking", key=f"{KEY}_rank_skip", shortcut=CONTINUE_KEY)
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
                blind=pending.get("blind", True),
            )
        except Exception as exc:  # noqa: BLE001 - say what went wrong, keep the step open
            st.error(f"The ranking was not saved: {md_escape(exc)}")
            return
        st.session_state[NOTICE] = ("success", "Ranking saved: " + ", ".join(f"Candidate {i + 1}" for i in order) + ".")
    elif save:
        st.warning("Pick at least one candidate, or continue without ranking.")
        return
    if save or skip:
        st.session_state.pop(PENDING_RANK, None)
        st.rerun()


def _show_last(engine: Any, annotator: str, tag: str | None, *, wait: float = 0.0) -> None:
    """The previous vote with an Undo button: the one just cast (with its reveal), or after a reload the
    annotator's most recent vote as stored. ``wait``: the run below was drawn that long ago less than
    QUICK_VOTE_S, and Undo stays greyed out with its vote buttons (U pressed right after a vote, or twice)."""
    from storage.votes import last_vote

    notice = st.session_state.pop(NOTICE, None)
    if notice:
        kind, text = notice
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(text)
    last = st.session_state.get(LAST)
    if not (last and last.get("annotator") == annotator):
        stored = last_vote(engine, annotator, tag=tag)
        if stored is None:
            return
        said = f"run {md_escape(stored.run_id)}\\): {WINNER_TEXT.get(stored.winner, stored.winner)}."
        # Cast in this session (on Explore, say): not news, and nothing was interrupted.
        recent = time.time() - stored.updated_at < RECENT_VOTE_S and (stored.run_id, annotator) not in cast_here()
        last = {
            "run_id": stored.run_id,
            "annotator": stored.annotator,
            # A vote saved just before a reload or a server restart may never have been acknowledged on
            # screen, and its run is no longer in the queue: say plainly that it was kept.
            "message": (
                f"Your vote of {dt.datetime.fromtimestamp(stored.updated_at).strftime('%H:%M')} (server time) was saved before "
                f"the page was reloaded or the server restarted \\({said} Undo it if that was not your choice."
                if recent
                else f"Your last vote \\({said}"
            ),
            "quiet": not recent,
            "kind": "info" if recent else None,
        }
        st.session_state[LAST] = last
    # At [5, 1] the label was cut to "Undo my las..."; next to the sidebar even [4, 1] cut it, hence the wrap.
    cols = st.columns([4, 1], vertical_alignment="center")
    show = cols[0].caption if last.get("quiet") else cols[0].info if last.get("kind") == "info" else cols[0].success
    show(last["message"])
    # Keyed by the vote it undoes: a press of the button drawn for a vote already undone, read after the
    # page has moved on, belongs to a widget that no longer exists and does nothing.
    cols[1].button(
        "Undo my last vote", key=undo_key(last["run_id"]), on_click=_undo, args=(last["run_id"],),
        shortcut=UNDO_KEY, width="stretch", wrap=True, disabled=wait > 0,
    )


def page() -> None:
    from storage.listing import all_tags
    from storage.votes import (
        MAX_ANNOTATOR_CHARS,
        RESERVED_NAME_MESSAGE,
        annotation_queue,
        count_unpaired,
        is_reserved_name,
        queue_counts,
    )

    engine = deps.get_engine()
    st.title("Annotate")
    st.caption(
        "Saved runs you have not voted on, one at a time. Response A and Response B are the Best-of-N pick and "
        "the Fusion-of-N answer in a random order; which is which is revealed after your vote. Keys: 1-4 vote, "
        "S skips, U undoes your last vote."
    )

    # Seed the widget from the session-wide name every run: Explore may have changed it.
    login = auth.current().name
    if login:  # team mode: the queue and the votes are the logged-in person's
        st.session_state[ANNOTATOR] = login
    st.session_state[NAME_KEY] = st.session_state.get(ANNOTATOR, "")
    top = st.columns(2)
    top[0].text_input(
        "Annotating as (your name)", key=NAME_KEY, on_change=_sync_name, disabled=bool(login),
        help="The name you logged in with." if login else None,
    )
    tags = all_tags(engine)
    keep(TAG_KEY, ALL_TAGS)
    if st.session_state[TAG_KEY] not in (ALL_TAGS, *tags):
        st.session_state[TAG_KEY] = ALL_TAGS  # the tag it named is gone (its runs were deleted)
    tag_choice = top[1].selectbox(
        "Tag",
        [ALL_TAGS, *tags],
        key=TAG_KEY,
        on_change=_reset_queue_position,
        help="Annotate only the runs with this tag.",
    )
    tag = None if tag_choice in (None, ALL_TAGS) else tag_choice
    st.toggle(  # its own row: beside the two fields its label was cut at 800 px
        "Rank candidates too",
        key=keep(RANK_ON_KEY, False),
        help="After each vote, optionally order the individual candidates from best to worst.",
    )
    annotator = (st.session_state.get(ANNOTATOR) or "").strip()
    if not annotator:
        st.info("Type your name to start. Each annotator has their own queue and votes once per run.")
        return
    # No max_chars on the field: Streamlit drops a paste that would go past it, and the field stays empty
    # without a word. Said here instead.
    if len(annotator) > MAX_ANNOTATOR_CHARS:
        st.error(f"A name is at most {MAX_ANNOTATOR_CHARS} characters; this one has {len(annotator):,}. Shorten it to start.")
        return
    if is_reserved_name(annotator):
        st.error(md_escape(RESERVED_NAME_MESSAGE))
        return

    pending = st.session_state.get(PENDING_RANK)
    if pending and pending.get("annotator") == annotator:
        _ranking_step(engine, pending)
        return

    counts = queue_counts(engine, annotator, tag)
    where = f" tagged {md_escape(tag)}" if tag else ""
    if counts.total == 0:
        _show_last(engine, annotator, tag)
        if counts.identical:
            st.info(
                f"There is nothing to vote on{where} yet: {'the saved run has' if counts.identical == 1 else f'all {counts.identical:,} saved runs have'} a fused "
                "answer that is the Best-of-N pick word for word."
            )
        else:
            st.info(f"There are no saved runs{where} to annotate yet.")
        _how_to_make_runs()
        return

    st.progress(counts.done / counts.total, text=f"{counts.done} of {counts.total} done")
    left_out = []
    if counts.identical:
        left_out.append(
            f"{plural(counts.identical, 'run')}{where} {'is' if counts.identical == 1 else 'are'} not in the queue: their fused answer is the Best-of-N pick "
            "word for word, so there is nothing to choose between."
        )
    unpaired = count_unpaired(engine, tag)
    if unpaired:
        left_out.append(
            f"{plural(unpaired, 'run has', 'runs have')} no Best-of-N pick or no fused answer (the judge or the fusor failed) and "
            "cannot be voted on; History shows them."
        )
    if left_out:
        st.caption(" ".join(left_out))
    # The next few are enough to pick one from (skipped runs go last, the current one first); reading every
    # id of a 5,000-run queue on each rerun was half of this page's server time.
    skipped_now = len(_session_list(SKIPPED))
    queue = annotation_queue(engine, annotator, tag=tag, limit=skipped_now + 25)
    current = st.session_state.get(CURRENT)
    if current and current not in queue and not _voted(engine, current, annotator):
        queue.append(current)  # further down the queue, but still to do (e.g. brought back by Undo)
    run = _next_run(engine, queue)
    if run is None:
        _show_last(engine, annotator, tag)
        st.success(f"Nothing left to annotate{where}: you have voted on every run there is. Thank you!")
        _how_to_make_runs()
        return
    _show_last(engine, annotator, tag, wait=vote_wait(vote_key(run.id)))

    skipped = [r for r in _session_list(SKIPPED) if r in set(queue)]
    caption = f"Run {md_escape(run.id)} · {counts.remaining} left in your queue"
    if skipped:
        caption += f" \\({len(skipped)} skipped for later\\)"
    if run.tags:
        caption += " · tags: " + md_list(run.tags)
    st.caption(caption)
    st.subheader("Prompt")
    if run.prompt.system:
        with st.expander("System message"):
            text_block(run.prompt.system)
    text_block(run.prompt.text)
    st.subheader("Which response is better?")
    # One form per run: a second press of a key that voted on the run before lands on that run's form (or
    # nowhere), never on this one, and the comment typed for that run does not come along.
    wait = show_blind_vote(
        run, key=vote_key(run.id), ask_name=False, on_saved=_on_voted, offer_reveal=False, refuse_quick=True,
        on_refused=_on_refused,
    )
    st.button(  # keyed by its run, like Undo: a press read after the run has gone does nothing
        "Skip for now",
        key=skip_key(run.id),
        help="Move on without voting; skipped runs come back after the rest of the queue.",
        on_click=_skip,
        args=(run.id,),
        shortcut=SKIP_KEY,
        disabled=wait > 0,  # like the vote buttons: S pressed right after a vote must not skip the next run unread
    )
    enable_votes_later(wait)  # the vote buttons of a run just drawn are greyed out for a moment


page()

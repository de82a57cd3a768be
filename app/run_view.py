"""The view of one finished run, shared by Explore and History (and their permalinks), and the blind vote
that Annotate uses too.

Blind first, as in Chatbot Arena: a person who has not voted on a run sees the prompt and Response A and B
only. Labels, scores, attribution and the candidates appear after that person's vote, or when they ask to
see them without voting (a vote cast after that is stored as not blind). Who a person is: the annotator
name of the session. Which runs a session has seen the labels of: ``SEEN`` in session state.

Votes are recorded in the buttons' callbacks, which Streamlit runs before the script, so everything drawn
after a click (caption, highlighted button, reveal) already reflects the vote just cast.

Wiring only: every figure shown comes from the run (computed by the engine) or from storage.
"""

from __future__ import annotations

import hashlib
import html
import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from app import deps
from components.attribution_view import attribution_html, legend_html, partition_bar_html
from components.candidate_cards import render_candidate_grid
from components.diff_view import diff_html
from components.markdown_view import attributed_markdown_html, markdown_html
from components.palette import candidate_border
from components.summary import Figure, summary_html
from components.text import md_escape
from components.vote_panel import (
    SIDE_SHORT,
    comment_key,
    name_key,
    render_pair,
    render_vote_form,
    reveal_text,
)
from fusion.attribution import SharePartition, partition, verbatim_source
from fusion.types import Run

log = logging.getLogger("fusion.app")

WINNER_TEXT = {
    "fused": "the fused output",
    "bon": "the Best-of-N pick",
    "tie": "a tie",
    "both_bad": "both bad",
}
SEEN = "seen_runs"  # run ids whose labels this session has seen
ANNOTATOR = "annotator"  # the session's annotator name, shared by every page
CONTRIBUTOR_MIN_SHARE = 0.05
# A vote this soon after its run appeared is a repeated key press or a double click that arrived after the
# next run was drawn, not a judgement of two responses nobody had time to read: it is not counted. A bounce
# or a double press is at most about 0.25 s; the buttons turn on a page redraw (0.15-0.3 s) after this, so
# a reader sees them grey for about 0.7 s (at 0.6 s here the audit measured 0.8-1.3 s, and a press at
# 1.0 s found them still grey).
QUICK_VOTE_S = 0.45


AS_TYPED = "keep.as_typed"  # the sidebar toggle: show model text as typed instead of rendered Markdown


def markdown_on() -> bool:
    return not st.session_state.get(AS_TYPED, False)


def text_block(text: str, *, border: str | None = None, markdown: bool | None = None) -> None:
    """Untrusted text, escaped: rendered as Markdown (safely), or exactly as written with newlines kept."""
    markdown = markdown_on() if markdown is None else markdown
    style = "word-wrap:break-word;line-height:1.55;padding:0.75rem 1rem;border-radius:8px;"
    style += f"border:2px solid {border};" if border else "border:1px solid rgba(128,128,128,0.35);"
    if markdown and text.strip():
        st.html(f'<div class="fx-text fx-text-md" style="{style}">{markdown_html(text)}</div>')
    else:
        style = "white-space:pre-wrap;" + style
        st.html(f'<div class="fx-text" dir="auto" style="{style}">{html.escape(text, quote=True)}</div>')


@dataclass(frozen=True)
class Derived:
    """What the labelled view shows beyond the run itself, computed by the engine once per run content."""

    parts: SharePartition | None
    kept: list[Any] | None  # fusion.kept.KeptReport per candidate (None for a failed one)
    diff: Any  # fusion.diff.SentenceDiff, or None without a pick and a fusion


_DERIVED: OrderedDict[str, tuple[Derived, int]] = OrderedDict()  # value and the run's size in characters
_DERIVED_LOCK = threading.Lock()  # module state is shared by every session of the server
_DERIVED_MAX = 64
# The cache also stops at this many characters of runs in all: reports of 8 pasted candidates of 150,000
# characters would otherwise stay in the server's memory long after their visitor left. A run larger
# than this is not kept at all.
_DERIVED_MAX_CHARS = 2_000_000


def _fingerprint(run: Run) -> str:
    h = hashlib.sha256(run.id.encode())
    for text in [run.fused.text if run.fused else "", str(run.bon.index if run.bon else None)]:
        h.update(b"\x00" + text.encode("utf-8", "surrogatepass"))
    for c in run.candidates:
        h.update(b"\x01" + c.text.encode("utf-8", "surrogatepass") + (b"!" if c.ok else b""))
    return h.hexdigest()


def derived(run: Run) -> Derived:
    """Partition, kept/dropped reports and the pick-against-fusion diff of ``run``, from a small
    process-wide cache: a rerun (a click on the highlight control, a vote) does not recompute them."""
    from fusion.diff import run_diff
    from fusion.kept import run_kept

    key = _fingerprint(run)
    with _DERIVED_LOCK:
        hit = _DERIVED.get(key)
        if hit is not None:
            _DERIVED.move_to_end(key)
            return hit[0]
    parts = None
    if run.fused is not None and not run.fused.error and run.attribution is not None:
        parts = partition(run.fused.text, run.attribution, len(run.candidates))
    try:
        kept = run_kept(run)
    except Exception:  # noqa: BLE001 - the view goes on without the kept marks; the log says why
        log.exception("kept reports of run %s failed", run.id)
        kept = None
    diff = run_diff(run)
    value = Derived(parts=parts, kept=kept, diff=diff)
    size = sum(len(c.text) for c in run.candidates) + (len(run.fused.text) if run.fused else 0)
    if size > _DERIVED_MAX_CHARS:
        return value
    with _DERIVED_LOCK:
        _DERIVED[key] = (value, size)
        while len(_DERIVED) > _DERIVED_MAX or sum(n for _, n in _DERIVED.values()) > _DERIVED_MAX_CHARS:
            _DERIVED.popitem(last=False)
    return value


def labels_for(run: Run) -> list[str]:
    return [c.label for c in run.candidates]


def person() -> str:
    from app.auth import current

    return current().name or str(st.session_state.get(ANNOTATOR) or "").strip()


# Why a session knows which response is which, said on the vote box of a run it has not voted on.
SEEN_REASONS = {
    "labels": "You asked to see the labels before voting",
    "supplied": "You typed these candidates in, so you can tell the Best-of-N pick (one of them) from the fusion",
    "live": "You watched these candidates and the fusion being generated",
    "reveal": "You saw which response was which after an earlier vote",
}


def seen_runs() -> dict[str, str]:
    """Run id -> why this session knows its labels (a key of SEEN_REASONS)."""
    if SEEN not in st.session_state:
        st.session_state[SEEN] = {}
    return st.session_state[SEEN]


def mark_seen(run_id: str, reason: str = "labels") -> None:
    seen_runs().setdefault(run_id, reason)


# ------------------------------------------------------------------------------------------ the pair


def vote_pair(run: Run) -> tuple[str, str] | None:
    """(Best-of-N text, fused text) when the run has both, else None."""
    bon = run.bon_text
    fused = run.fused.text if run.fused and not run.fused.error else None
    if bon is None or not fused or not fused.strip():
        return None
    return bon, fused


def is_votable(run: Run) -> bool:
    pair = vote_pair(run)
    return pair is not None and pair[0].strip() != pair[1].strip()


def ab_order(run_id: str, stored_a_is: str | None = None) -> str:
    """Which side is Response A ('bon' or 'fused'): the side of this person's stored vote if there is one,
    else drawn once per run and session and then kept, so a rerun never reshuffles."""
    state_key = f"ab_{run_id}"
    if stored_a_is in ("bon", "fused"):
        st.session_state[state_key] = stored_a_is
    elif state_key not in st.session_state:
        st.session_state[state_key] = random.choice(["bon", "fused"])
    return st.session_state[state_key]


def _token(run_id: str) -> str:
    state_key = f"vote_token_{run_id}"
    if state_key not in st.session_state:
        st.session_state[state_key] = uuid.uuid4().hex
    return st.session_state[state_key]


def _flash(key: str, kind: str, message: str) -> None:
    st.session_state[f"{key}__flash"] = (kind, message)


CAST = "votes_cast_here"  # (run id, annotator) of every vote this session cast, on any page


def cast_here() -> set[tuple[str, str]]:
    """The votes this browser session cast (so a page does not report one of them as news)."""
    if CAST not in st.session_state:
        st.session_state[CAST] = set()
    return st.session_state[CAST]


def shown_at_key(key: str) -> str:
    """Where the time the vote form of ``key`` was first drawn is kept (``time.monotonic()``)."""
    return f"{key}__shown_at"


def vote_wait(key: str) -> float:
    """Seconds until a vote on the form of ``key`` counts; the form counts as drawn from the first call."""
    shown = st.session_state.setdefault(shown_at_key(key), time.monotonic())
    return max(0.0, QUICK_VOTE_S - (time.monotonic() - shown))


def show_flash(key: str) -> None:
    item = st.session_state.pop(f"{key}__flash", None)
    if item:
        kind, message = item
        {"success": st.success, "warning": st.warning, "error": st.error}.get(kind, st.info)(message)


def _previous_name(key: str) -> str:
    return str(st.session_state.get(f"{key}__voted_as") or "")


def _name_for_vote(key: str, ask_name: bool) -> str:
    from app.auth import current

    login = current().name
    if login:  # team mode: the vote is cast under who logged in, whatever a field says
        return login
    raw = st.session_state.get(name_key(key)) if ask_name else st.session_state.get(ANNOTATOR)
    return str(raw or "").strip()


def cast_vote(
    run_id: str,
    choice: str,
    *,
    key: str,
    a_is: str,
    ask_name: bool,
    on_saved: Callable[[Any], None] | None = None,
    refuse_quick: bool = False,
    on_refused: Callable[[str], None] | None = None,
) -> None:
    """Record a vote (a button callback). Messages go to the flash slot of ``key`` (or, for a refused quick
    vote, to ``on_refused``); nothing is raised.

    ``refuse_quick``: a vote less than :data:`QUICK_VOTE_S` after the form of ``key`` was first drawn is
    refused, because it cannot be about what is on screen; so is one on a form no longer on screen (its
    time is dropped when it is voted on), which is a key pressed again before the next run was drawn."""
    from fusion.errors import InputError
    from storage.votes import get_vote, record_vote

    if refuse_quick:
        shown = st.session_state.get(shown_at_key(key))
        if shown is None:  # the run this form was for has been voted on and left: the first vote stands
            return
        if time.monotonic() - shown < QUICK_VOTE_S:
            message = ("That vote came before this run was on screen long enough to read (a repeated key press "
                       "or a double click?), so it was not counted. Read both responses, then vote.")
            if on_refused is not None:
                on_refused(message)
            else:
                _flash(key, "warning", message)
            return
    name = _name_for_vote(key, ask_name)
    if not name:
        _flash(key, "warning", "Type your name before voting, so your vote can be told apart from other annotators'.")
        return
    st.session_state[f"{key}__voted_as"] = person()  # who the box showed before this click
    st.session_state[ANNOTATOR] = name
    comment = str(st.session_state.get(comment_key(key)) or "").strip()
    engine = deps.get_engine()
    try:
        before = get_vote(engine, run_id, name)
        # Blind only when nothing told this person which response is which: no earlier vote (its reveal),
        # no "show the labels", no watching the run being made.
        blind = before is None and run_id not in seen_runs()
        vote = record_vote(
            engine,
            run_id=run_id,
            annotator=name,
            choice=choice,
            a_is=a_is,
            comment=comment or None,
            client_token=_token(run_id),
            blind=blind,
        )
    except InputError as exc:
        _flash(key, "error", f"The vote was not saved: {exc}")
        return
    except Exception as exc:  # noqa: BLE001 - the page says what went wrong; the log keeps the traceback
        log.exception("saving a vote failed")
        _flash(key, "error", f"The vote was not saved ({type(exc).__name__}). Try again; if it keeps failing, "
               "the server log has the details.")
        return
    # A fresh token for the next vote on this run, so a changed mind is recorded, not taken for a replay.
    st.session_state[f"vote_token_{run_id}"] = uuid.uuid4().hex
    cast_here().add((run_id, name))
    st.session_state[comment_key(key)] = ""
    mark_seen(run_id, "reveal")
    verdict = WINNER_TEXT.get(vote.winner, vote.winner)
    if before is not None and before.winner != vote.winner:
        message = f"Vote changed from {WINNER_TEXT.get(before.winner, before.winner)} to {verdict}."
    elif before is not None:
        message = f"Vote saved again: {verdict}."
    else:
        message = f"Vote saved: {verdict}. {reveal_text(vote.a_is, vote.choice)}"
    earlier = _previous_name(key)
    if earlier and earlier != name and get_vote(engine, run_id, earlier) is not None:
        # The name field was changed: this is another person's vote, not a change of the shown one.
        message += f" It is {md_escape(name)}'s vote; {md_escape(earlier)}'s vote is unchanged."
    if on_saved is not None:
        on_saved(vote)  # the page says what happened, in its own place
    else:
        _flash(key, "success", message)


def show_blind_vote(
    run: Run,
    *,
    key: str,
    ask_name: bool = True,
    on_saved: Callable[[Any], None] | None = None,
    offer_reveal: bool = True,
    refuse_quick: bool = False,
    on_refused: Callable[[str], None] | None = None,
) -> float:
    """Response A and B and the vote form; nothing that tells which is which. ``refuse_quick``: see
    :func:`cast_vote` (``key`` then names one run's form, as Annotate's do).

    Returns the seconds until a vote counts (0 when it does now). With ``refuse_quick`` the buttons are drawn
    greyed out until then, and the page must draw itself again after that long (:func:`enable_votes_later`).
    The browser can only send a press to buttons the server has enabled, and the server enables them only
    ``QUICK_VOTE_S`` after it drew the run, so a key pressed again right after a vote cannot reach the next
    run however slow the server or the connection is; the time check in :func:`cast_vote` alone could not
    tell a late-arriving second press from a considered vote."""
    pair = vote_pair(run)
    if pair is None:
        st.info("A vote needs both a Best-of-N pick and a fused output.")
        return 0.0
    bon_text, fused_text = pair
    from app.auth import current

    if current().name:
        ask_name = False  # logged in: the name is the login's, there is nothing to type
    a_is = ab_order(run.id)
    text_a, text_b = (bon_text, fused_text) if a_is == "bon" else (fused_text, bon_text)
    if ask_name and name_key(key) not in st.session_state:
        st.session_state[name_key(key)] = person()
    wait = vote_wait(key) if refuse_quick else 0.0
    render_pair(text_a, text_b, markdown=markdown_on())
    show_flash(key)  # next to the buttons that caused it (e.g. "type your name")
    render_vote_form(
        key=key,
        ask_name=ask_name,
        disabled=wait > 0,
        on_vote=lambda choice: cast_vote(
            run.id, choice, key=key, a_is=a_is, ask_name=ask_name, on_saved=on_saved, refuse_quick=refuse_quick,
            on_refused=on_refused,
        ),
    )
    if offer_reveal:
        st.button(
            "Show the labels without voting",
            key=f"{key}__reveal",
            on_click=mark_seen,
            args=(run.id,),
            help="Shows which response is which, the scores, the attribution and the candidates. A vote cast "
            "after that is stored as not blind.",
        )
    return wait


def enable_votes_later(wait: float) -> None:
    """Draw the page again once ``wait`` seconds (from :func:`show_blind_vote`) have passed, so that the vote
    buttons are enabled.

    A timed fragment rather than a sleep: the run ends first, so the previous run's form (kept on screen,
    faded, until the run that replaces it ends) is gone while the buttons are grey, and the timer is the
    browser's, which only reruns the page after it has shown this one."""
    if wait <= 0:
        return
    due = time.monotonic() + wait

    @st.fragment(run_every=wait)
    def _enable_when_due() -> None:
        if time.monotonic() >= due:
            st.rerun()  # the whole page, with the buttons enabled; this timer is not set again

    _enable_when_due()


def _vote_box(run: Run, *, engine: Any, key: str, ask_name: bool) -> None:
    """After the reveal: this person's vote (or that they have none) and buttons to cast or change it."""
    from storage.votes import get_vote

    name = person()
    existing = get_vote(engine, run.id, name) if name else None
    a_is = ab_order(run.id, existing.a_is if existing else None)
    with st.container(border=True):
        st.markdown("**Your vote**")
        show_flash(key)
        if existing is not None:
            how = "cast blind" if getattr(existing, "blind", True) else "cast after seeing the labels"
            st.caption(
                f"You \\({md_escape(name)}\\) voted {md_escape(WINNER_TEXT.get(existing.winner, existing.winner))} "
                f"\\({how}\\). Response A was {SIDE_SHORT[a_is]}. Voting again replaces your vote, and the new one "
                "is stored as not blind."
            )
        else:
            reason = SEEN_REASONS.get(seen_runs().get(run.id, "labels"), SEEN_REASONS["labels"])
            st.caption(
                f"You have not voted on this run. {reason}, so a vote now is stored as not blind; for a blind "
                f"vote, share this page's link with someone else or use Annotate. Response A is {SIDE_SHORT[a_is]}."
            )
        if ask_name and name_key(key) not in st.session_state:
            st.session_state[name_key(key)] = name
        # Folded: once the labels are shown the result is what the reader came for, not the form.
        with st.expander("Change your vote" if existing is not None else "Vote on this run", expanded=False):
            render_vote_form(
                key=key,
                ask_name=ask_name,
                current_choice=existing.choice if existing else None,
                a_is=a_is,
                on_vote=lambda choice: cast_vote(run.id, choice, key=key, a_is=a_is, ask_name=ask_name),
            )


# ------------------------------------------------------------------------------------------ labelled view


def summary_figures(run: Run) -> list[Figure]:
    usable = len(run.usable)
    out = [
        Figure(
            "Candidates",
            f"{usable} of {len(run.candidates)} usable" if usable != len(run.candidates) else str(usable),
            key="candidates",
        )
    ]
    if run.bon and run.bon.index is not None:
        out.append(Figure("Best-of-N pick", f"Candidate {run.bon.index + 1}", f"Selector: {run.bon.method}", "pick"))
    else:
        out.append(Figure("Best-of-N pick", "none", run.bon.error if run.bon else None, "pick"))
    if run.fused is not None and not run.fused.error and run.attribution is not None:
        a = run.attribution
        verbatim = verbatim_source(run.fused.text, [c.text if c.ok else None for c in run.candidates])
        if verbatim is not None:
            out.append(
                Figure(
                    "Fused text",
                    f"Candidate {verbatim + 1} verbatim",
                    "The fusor copied one candidate whole (other candidates may hold the same passages: see "
                    "the legend's shared part).",
                    "fused",
                )
            )
        else:
            out.append(
                Figure(
                    "Fused text",
                    f"{a.copied_fraction:.0%} copied, {1 - a.copied_fraction:.0%} new",
                    "Share of the fused text's characters found in at least one candidate (lightly edited copies "
                    "count).",
                    "fused",
                )
            )
        # The same count for both cases, so the tile never contradicts the legend: a verbatim copy of a
        # passage every candidate holds is found in all of them.
        k = sum(1 for s in a.shares if s >= CONTRIBUTOR_MIN_SHARE)
        out.append(
            Figure(
                "Found in",
                f"{k} candidate{'s' if k != 1 else ''}",
                f"Candidates holding at least {CONTRIBUTOR_MIN_SHARE:.0%} of the fused text (a passage several "
                "candidates share counts for each).",
                "draws",
            )
        )
    return out


def show_prompt(run: Run) -> None:
    with st.expander("Prompt", expanded=True):
        if run.prompt.system:
            st.caption("System message")
            text_block(run.prompt.system)
            st.caption("Prompt")
        text_block(run.prompt.text)


@st.fragment
def show_compare(run: Run, key: str) -> None:
    """Best-of-N next to the fused text with its attribution. A fragment: the highlight control reruns only
    this part of the page."""
    labels = labels_for(run)
    attributed = run.fused is not None and not run.fused.error and run.attribution is not None
    highlight = None
    if attributed:
        # Above the two columns, full width: inside a narrow column its options would not wrap.
        choice = st.pills(
            "Highlight a candidate's spans",
            ["None", *labels],
            default="None",
            key=f"{key}_highlight",
            help="Keep one candidate's spans coloured and fade the rest.",
        )
        highlight = labels.index(choice) if choice and choice in labels else None
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Best-of-N")
        if run.bon is None or run.bon.index is None:
            st.warning(f"No pick: {md_escape(run.bon.error) if run.bon and run.bon.error else 'no selector ran'}")
        else:
            idx = run.bon.index
            score = run.bon.scores[idx] if idx < len(run.bon.scores) else None
            score_txt = f", score {score:.3g}" if isinstance(score, (int, float)) else ""
            st.caption(
                f"Candidate {idx + 1} \\({md_escape(run.candidates[idx].model)}\\), chosen by "
                f"{md_escape(run.bon.method)}{score_txt}"
            )
            text_block(run.candidates[idx].text, border=candidate_border(idx))
    with right:
        st.subheader("Fusion-of-N")
        if run.fused is None:
            st.warning("No fused output.")
            return
        if run.fused.error:
            st.error(f"The fusor failed: {md_escape(run.fused.error)}")
            return
        how = f"Written by {md_escape(run.fused.method)}"
        if run.fused.template:
            how += f" \\(template: {md_escape(run.fused.template)}\\)"
        st.caption(how)
        from fusion.degenerate import run_warnings

        for warning in run_warnings(run):  # shown beside the text, never instead of it
            st.warning(md_escape(warning.message) + " The text is shown as the fusor wrote it.", icon="⚠️")
        if run.attribution is None:
            text_block(run.fused.text)
            return
        render = attributed_markdown_html if markdown_on() else attribution_html
        st.html(render(run.fused.text, run.attribution, labels, highlight=highlight))
        parts = derived(run).parts or partition(run.fused.text, run.attribution, len(labels))
        st.html(legend_html(labels, parts, shares=run.attribution.shares, highlight=highlight))
        st.html(partition_bar_html(labels, parts))


def show_candidates(run: Run, *, kept: bool = True) -> None:
    """The candidate cards; with ``kept``, each marks what the fusion kept, edited and dropped of it."""
    scores = run.bon.scores if run.bon else [None] * len(run.candidates)
    notes = run.bon.notes if run.bon and run.bon.notes else [None] * len(run.candidates)
    reports = derived(run).kept if kept else None
    units = summaries = None
    if reports:
        units = {r.index: r.units for r in reports if r is not None}
        summaries = {r.index: r.summary() for r in reports if r is not None}
        st.caption(
            "Each card marks what the fused answer did with that candidate's sentences and list items: kept "
            "as they are, edited (dashed underline), or dropped (faded and struck through)."
        )
    render_candidate_grid(
        run.candidates,
        scores=scores,
        pick=run.bon.index if run.bon else None,
        notes=notes,
        markdown=markdown_on(),
        units=units,
        kept_summaries=summaries,
    )


def show_diff(run: Run) -> None:
    diff = derived(run).diff
    pair = vote_pair(run)
    if diff is None or pair is None:
        st.info("The comparison needs both a Best-of-N pick and a fused answer.")
        return
    st.caption(
        "The Best-of-N pick against the fused answer, sentence by sentence: what the fusion kept (=), added "
        "(+, green), dropped (−, red, struck through) and changed a little (~, with the pick's wording under it)."
    )
    st.html(diff_html(pair[0], pair[1], diff, markdown=markdown_on()))


def show_identical_notice(run: Run, on_try_llm: Callable[[], None] | None) -> None:
    verbatim = verbatim_source(run.fused.text if run.fused else "", [c.text if c.ok else None for c in run.candidates])
    which = f"Candidate {verbatim + 1}" if verbatim is not None else "the picked candidate"
    method = run.fused.method if run.fused else "the fusor"
    st.info(
        f"The fused answer is {which} word for word, and that is also the Best-of-N pick: {md_escape(method)} "
        "found nothing to add or drop, so the two answers below are the same and there is nothing to vote on."
    )
    if on_try_llm is not None and run.fused is not None and not run.fused.method.startswith("llm"):
        st.button(
            "Fuse with the LLM fusor instead",
            key=f"try_llm_{run.id}",
            on_click=on_try_llm,
            help="Switches the sidebar's fusor to the LLM fusor (it needs a model: a provider key or a server URL).",
        )


def shown_blind(run: Run, engine: Any) -> bool:
    """Whether this person sees ``run`` blind: it is votable, they have not voted on it, and it has not been
    revealed to them (labels shown, their own candidates, a live run) in this session. Whatever names the
    sides (the labelled view, the HTML report) waits until this is False."""
    if not is_votable(run) or run.id in seen_runs():
        return False
    from storage.votes import get_vote

    name = person()
    return not (name and get_vote(engine, run.id, name) is not None)


def show_run(
    run: Run,
    *,
    engine: Any,
    key: str,
    note: str | None = None,
    on_try_llm: Callable[[], None] | None = None,
    blind: bool | None = None,
) -> None:
    """The whole view of a run: blind until this person votes or asks to see the labels. ``blind`` is
    :func:`shown_blind` when the caller has already asked it (it costs a vote lookup)."""
    show_prompt(run)
    votable = is_votable(run)
    if shown_blind(run, engine) if blind is None else blind:
        st.subheader("Which answer is better?")
        st.caption(
            "Response A and Response B are the Best-of-N pick and the Fusion-of-N answer, in a random order. "
            "Vote first: which is which, the scores, the attribution and the candidates are shown after "
            "your vote. Keys 1 to 4 vote when no text field has the focus."
        )
        show_blind_vote(run, key=f"{key}_vote")
        return
    if votable:
        _vote_box(run, engine=engine, key=f"{key}_vote", ask_name=True)
    elif vote_pair(run) is not None:
        show_identical_notice(run, on_try_llm)
    if note:
        st.info(f"What to look for: {md_escape(note)}")
    st.html(summary_html(summary_figures(run)))
    show_tabs(run, key)


TABS = ("Fusion vs Best-of-N", "What changed", "Candidates: kept and dropped")


@st.fragment
def show_tabs(run: Run, key: str) -> None:
    """The labelled views, one tab each. Only the open tab is drawn (a tab click reruns this fragment
    alone): drawing all three on every vote made the browser do three times the work."""
    # Keyed, so the open tab survives a rerun that shifts the page above it.
    tabs = dict(zip(TABS, st.tabs(list(TABS), key=f"{key}_tabs", on_change="rerun")))
    if tabs[TABS[0]].open:
        with tabs[TABS[0]]:
            show_compare(run, key)
    if tabs[TABS[1]].open:
        with tabs[TABS[1]]:
            show_diff(run)
    if tabs[TABS[2]].open:
        with tabs[TABS[2]]:
            show_candidates(run)

"""The blind A/B vote: two responses side by side and four buttons in one ``st.form``.

Render-only: the panel returns what was clicked and stores nothing; the page records the vote (and keeps
which side was the fusion, so a rerun never reshuffles). A form batches the annotator name and comment with
the click, so typing does not rerun the script; Enter in the name field does not submit, because that would
silently cast the first button's vote.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from components.attribution_view import esc

CHOICES = ("A", "B", "tie", "both_bad")
BUTTON_LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both are bad"}
SIDE_NAMES = {"fused": "the Fusion-of-N answer", "bon": "the Best-of-N pick"}


def _new_token() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class VoteSubmission:
    choice: str  # "A", "B", "tie" or "both_bad"
    comment: str
    annotator: str
    # Fresh per submitted vote; pass it to storage as the idempotency token so a replayed submit is a no-op.
    client_token: str = field(default_factory=_new_token)

    def __post_init__(self) -> None:
        if self.choice not in CHOICES:
            raise ValueError(f"choice must be one of {', '.join(CHOICES)}; got {self.choice!r}")


def button_key(key: str, choice: str) -> str:
    return f"{key}__vote_{choice}"


def response_html(title: str, text: str) -> str:
    """One response box: escaped, newlines kept, markdown shown as typed."""
    body = esc(text) if text.strip() else "<i>(empty response)</i>"
    return (
        '<div class="fx-response" style="border:1px solid rgba(128,128,128,0.45);border-radius:8px;'
        'overflow:hidden;height:100%;">'
        f'<div style="font-weight:700;padding:0.35em 0.7em;border-bottom:1px solid rgba(128,128,128,0.45);">'
        f"{esc(title)}</div>"
        '<div class="fx-response-text" dir="auto" style="white-space:pre-wrap;overflow-wrap:anywhere;padding:0.5em 0.7em;'
        f'max-height:32em;overflow-y:auto;line-height:1.55;">{body}</div></div>'
    )


def render_vote_panel(
    text_a: str,
    text_b: str,
    *,
    key: str,
    annotator: str = "",
    existing_choice: str | None = None,
    ask_name: bool = True,
) -> VoteSubmission | None:
    """Show Response A and B and the vote form; return the submission on the rerun a button was clicked.

    Returns None when nothing was clicked, or when the annotator name is empty (a warning is shown then).
    ``existing_choice`` (this annotator's earlier vote on this pair) is marked by drawing its button as the
    primary one; the page says in words that a new vote replaces it. With ``ask_name=False`` the page
    already asked for the name elsewhere and passes it as ``annotator``.
    """
    import streamlit as st

    col_a, col_b = st.columns(2)
    with col_a:
        st.html(response_html("Response A", text_a))
    with col_b:
        st.html(response_html("Response B", text_b))

    token_key = f"{key}__token"
    if token_key not in st.session_state:
        st.session_state[token_key] = _new_token()

    clicked: str | None = None
    with st.form(key=f"{key}__form", border=True, enter_to_submit=False):
        name = (
            st.text_input("Your name (annotator)", value=annotator, key=f"{key}__annotator", max_chars=80)
            if ask_name
            else annotator
        )
        comment = st.text_area(
            "Comment (optional)", key=f"{key}__comment", max_chars=2000, placeholder="Why? (optional)"
        )
        cols = st.columns(len(CHOICES))
        for col, choice in zip(cols, CHOICES):
            with col:
                if st.form_submit_button(
                    BUTTON_LABELS[choice],
                    key=button_key(key, choice),
                    type="primary" if choice == existing_choice else "secondary",
                    width="stretch",
                ):
                    clicked = choice

    if clicked is None:
        return None
    name = (name or "").strip()
    if not name:
        st.warning("Type your name before voting, so your vote can be told apart from other annotators'.")
        return None
    token = st.session_state[token_key]
    # The next vote from this panel (a changed mind) is a new submission, not a replay of this one.
    st.session_state[token_key] = _new_token()
    return VoteSubmission(choice=clicked, comment=(comment or "").strip(), annotator=name, client_token=token)


def reveal_text(a_is: str, choice: str) -> str:
    """Plain-text sentence saying which side was which and what the vote means."""
    if a_is not in SIDE_NAMES:
        raise ValueError(f"a_is must be 'fused' or 'bon'; got {a_is!r}")
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {', '.join(CHOICES)}; got {choice!r}")
    b_is = "bon" if a_is == "fused" else "fused"
    sides = f"Response A was {SIDE_NAMES[a_is]}; Response B was {SIDE_NAMES[b_is]}."
    if choice in ("A", "B"):
        winner = a_is if choice == "A" else b_is
        verdict = "You preferred the Fusion-of-N answer." if winner == "fused" else "You preferred the Best-of-N pick."
    elif choice == "tie":
        verdict = "You called it a tie."
    else:
        verdict = "You found both bad."
    return f"{sides} {verdict}"


def render_reveal(a_is: str, choice: str) -> None:
    """After the vote: show which response was the fusion and which the Best-of-N pick."""
    import streamlit as st

    text = reveal_text(a_is, choice)
    if choice in ("A", "B"):
        winner = a_is if choice == "A" else ("bon" if a_is == "fused" else "fused")
        (st.success if winner == "fused" else st.info)(text, icon="🔍")
    else:
        st.info(text, icon="🔍")

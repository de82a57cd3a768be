"""The A/B vote: two responses side by side and four buttons in one ``st.form``.

Render-only: the panel draws the responses and the form and calls the page's ``on_vote(choice)`` from the
buttons' ``on_click`` callbacks. Streamlit runs those callbacks before the script reruns, so the page that
follows a click already reads the stored vote: the caption, the highlighted button and the reveal always
describe the vote just cast, never the one before it.

A form batches the annotator name and comment with the click, so typing does not rerun the script; Enter in
the name field does not submit, because that would silently cast a vote. The responses are rendered as
Markdown (safely) unless the page asks for them as typed. Each button has a keyboard
shortcut (1 to 4), shown on the button; Streamlit does not fire shortcuts while focus is in a text field.
"""

from __future__ import annotations

from collections.abc import Callable

from components.attribution_view import esc

CHOICES = ("A", "B", "tie", "both_bad")
BUTTON_LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both are bad"}
SHORTCUTS = {"A": "1", "B": "2", "tie": "3", "both_bad": "4"}
# Annotate's other keys; with SHORTCUTS, the keys components.keyboard_guard stands in front of.
SKIP_KEY, UNDO_KEY, CONTINUE_KEY = "S", "U", "N"
SIDE_NAMES = {"fused": "the Fusion-of-N answer", "bon": "the Best-of-N pick"}
SIDE_SHORT = {"fused": "Fusion-of-N", "bon": "Best-of-N"}


def other_side(a_is: str) -> str:
    return "bon" if a_is == "fused" else "fused"


def button_key(key: str, choice: str) -> str:
    return f"{key}__vote_{choice}"


def name_key(key: str) -> str:
    return f"{key}__annotator"


def comment_key(key: str) -> str:
    return f"{key}__comment"


def button_label(choice: str, a_is: str | None = None) -> str:
    """``A is better``; once the sides are known (``a_is`` given), ``A is better (Fusion-of-N)``."""
    label = BUTTON_LABELS[choice]
    if a_is is None or choice not in ("A", "B"):
        return label
    side = a_is if choice == "A" else other_side(a_is)
    return f"{label} ({SIDE_SHORT[side]})"


def response_html(title: str, text: str, *, markdown: bool = False) -> str:
    """One response box, escaped: rendered as Markdown (safely) or shown as typed. It grows with its text
    rather than scrolling inside, so the end of a long answer is never hidden."""
    wrap = "" if markdown else "white-space:pre-wrap;"
    if not text.strip():
        body = "<i>(empty response)</i>"
    elif markdown:
        from components.markdown_view import markdown_html

        body = markdown_html(text)
    else:
        body = esc(text)
    return (
        '<div class="fx-response" style="border:1px solid rgba(128,128,128,0.45);border-radius:8px;'
        'overflow:hidden;height:100%;">'
        f'<div style="font-weight:700;padding:0.35em 0.7em;border-bottom:1px solid rgba(128,128,128,0.45);">'
        f"{esc(title)}</div>"
        f'<div class="fx-response-text" dir="auto" style="{wrap}overflow-wrap:anywhere;'
        f'padding:0.5em 0.7em;line-height:1.55;">{body}</div></div>'
    )


def render_pair(text_a: str, text_b: str, *, markdown: bool = False) -> None:
    """Response A and Response B side by side."""
    import streamlit as st

    col_a, col_b = st.columns(2)
    with col_a:
        st.html(response_html("Response A", text_a, markdown=markdown))
    with col_b:
        st.html(response_html("Response B", text_b, markdown=markdown))


def render_vote_form(
    *,
    key: str,
    on_vote: Callable[[str], None],
    ask_name: bool = True,
    current_choice: str | None = None,
    a_is: str | None = None,
    comment: bool = True,
    disabled: bool = False,
) -> None:
    """The name field (``ask_name``), an optional comment and the four vote buttons.

    ``on_vote(choice)`` runs as the clicked button's callback; it reads the name and comment from
    ``st.session_state[name_key(key)]`` / ``[comment_key(key)]``. ``current_choice`` (this annotator's stored
    vote) is drawn as the primary button. ``a_is`` names the sides on the buttons, for a voter who already
    knows which response is which. ``disabled`` greys the buttons out (and so their shortcuts), for a page
    that lets votes count only once the responses have been on screen a moment.
    """
    import streamlit as st

    with st.form(key=f"{key}__form", border=True, enter_to_submit=False):
        if ask_name:
            st.text_input("Your name (annotator)", key=name_key(key))
        if comment:
            st.text_area(
                "Comment (optional)", key=comment_key(key), placeholder="Why? (optional)", height=68
            )
        cols = st.columns(len(CHOICES))
        for col, choice in zip(cols, CHOICES):
            with col:
                st.form_submit_button(
                    button_label(choice, a_is),
                    key=button_key(key, choice),
                    type="primary" if choice == current_choice else "secondary",
                    width="stretch",
                    shortcut=SHORTCUTS[choice],
                    disabled=disabled,
                    wrap=True,  # at 800 px "A is better (Fusion-of-N)" would be cut to "A is bet..."
                    on_click=on_vote,
                    args=(choice,),
                )


def reveal_text(a_is: str, choice: str) -> str:
    """Plain-text sentence saying which side was which and what the vote means."""
    if a_is not in SIDE_NAMES:
        raise ValueError(f"a_is must be 'fused' or 'bon'; got {a_is!r}")
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {', '.join(CHOICES)}; got {choice!r}")
    b_is = other_side(a_is)
    sides = f"Response A was {SIDE_NAMES[a_is]}; Response B was {SIDE_NAMES[b_is]}."
    if choice in ("A", "B"):
        winner = a_is if choice == "A" else b_is
        verdict = "You preferred the Fusion-of-N answer." if winner == "fused" else "You preferred the Best-of-N pick."
    elif choice == "tie":
        verdict = "You called it a tie."
    else:
        verdict = "You found both bad."
    return f"{sides} {verdict}"

"""State that survives a trip to another page.

Streamlit drops the state of every widget a run does not draw, so Explore's pasted candidates or sidebar
method would be gone after a visit to Annotate. Widgets whose key starts with ``keep.`` get their value back:
``main.py`` copies each such value into a plain session-state shadow at the top of every run
(:func:`remember`), and the page gives a widget its value through :func:`keep` just before drawing it.

Two things that look simpler do not work:
- re-assigning every widget key at the top of each run (Streamlit's documented pattern) pushes the server's
  value to the browser, which overwrites what the person is typing into another field while a rerun is
  under way (seen: pasted candidates lost when typed one after another);
- restoring every dropped key at the top of each run, on whatever page: a value restored during a run on
  another page is old news by the time its widget is drawn again, so the browser is never told and shows
  the widget empty while the server holds the value (seen: no mode highlighted after Annotate, Explore).
Restoring in the run that draws the widget avoids both.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

KEEP_PREFIX = "keep."
SHADOW_PREFIX = "_kept."


def remember() -> None:
    """Copy the value of every ``keep.`` widget to its shadow (reading never touches the browser)."""
    state = st.session_state
    for key in list(state.keys()):
        if isinstance(key, str) and key.startswith(KEEP_PREFIX):
            state[SHADOW_PREFIX + key] = state[key]


def keep(key: str, default: Any) -> str:
    """Give the widget ``key`` its kept value (or ``default`` the first time) if it has none, and return
    ``key`` for the widget call. Widgets using it must not pass ``value=``/``index=``/``default=``."""
    if not key.startswith(KEEP_PREFIX):
        raise ValueError(f"kept widget keys start with {KEEP_PREFIX!r}; got {key!r}")
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(SHADOW_PREFIX + key, default)
    return key


def forget(key: str) -> None:
    """Drop a kept value and its shadow (a value that no longer names anything)."""
    st.session_state.pop(key, None)
    st.session_state.pop(SHADOW_PREFIX + key, None)

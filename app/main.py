"""Streamlit entry: ``streamlit run app/main.py``. Sets up the page and routes to one file per page.

Two things every page gets from here:
- State that survives a trip to another page. Streamlit drops the state of widgets a run does not draw, so
  Explore's pasted candidates or sidebar method would be gone after a visit to Annotate. The value of every
  widget whose key starts with ``keep.`` is copied to a plain session-state shadow at the top of each run,
  and a widget whose state was dropped gets its value back from the shadow. Streamlit's documented pattern
  (re-assigning every widget key at the top of each run) is not used on purpose: re-assigning pushes the
  server's value to the browser, which overwrites what the person is typing into another field while a
  rerun is under way (seen: pasted candidates lost when typed one after another).
- A page-level boundary: an unexpected error shows a clear message and is logged with its traceback, never
  Streamlit's redacted "This app has encountered an error" box.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # streamlit puts app/ on the path, the engine lives next to it
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import streamlit as st  # noqa: E402

KEEP_PREFIX = "keep."
SHADOW_PREFIX = "_kept."
log = logging.getLogger("fusion.app")

# Emoji, not ":material/...:" icons: a Material page icon becomes a favicon fetched from fonts.gstatic.com,
# and nothing the app shows may reach outside the machine.
st.set_page_config(page_title="Fusion Explorer", page_icon="🔀", layout="wide")

HERE = Path(__file__).resolve().parent
PAGES = [
    ("explore.py", "Explore", "🔬"),
    ("annotate.py", "Annotate", "🗳️"),
    ("history.py", "History", "🕘"),
    ("results.py", "Results", "📊"),
]


def keep_state() -> None:
    state = st.session_state
    keys = [k for k in list(state.keys()) if isinstance(k, str)]
    present = set(keys)
    for key in keys:
        if key.startswith(KEEP_PREFIX):
            state[SHADOW_PREFIX + key] = state[key]  # reading a widget's value never touches the browser
    for key in keys:
        if key.startswith(SHADOW_PREFIX):
            real = key[len(SHADOW_PREFIX) :]
            if real not in present:
                state[real] = state[key]  # dropped with its page: back, before its widget is drawn


def main() -> None:
    keep_state()
    pages = [
        st.Page(HERE / file, title=title, icon=icon, default=(i == 0))
        for i, (file, title, icon) in enumerate(PAGES)
        if (HERE / file).exists()
    ]
    page = st.navigation(pages)
    try:
        page.run()
    except Exception as exc:  # noqa: BLE001 - st.rerun/st.stop are BaseExceptions and pass through
        log.exception("page %s failed", page.title)
        st.error(
            f"Something went wrong on this page ({type(exc).__name__}). Reload the page to start it afresh; your "
            "votes and saved runs are in the database and are not affected. If it happens again, the server's "
            "log has the details."
        )


main()

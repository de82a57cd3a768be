"""Streamlit entry: ``streamlit run app/main.py``. Sets up the page and routes to one file per page.

Two things every page gets from here:
- State that survives a trip to another page (``app.state``: widgets whose key starts with ``keep.``).
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


def main() -> None:
    from app.state import keep, remember

    remember()
    from app import auth

    who = auth.visitor()  # may show the login screen and stop here
    st.session_state["auth.visitor"] = who
    pages = [
        st.Page(HERE / file, title=title, icon=icon, default=(i == 0))
        for i, (file, title, icon) in enumerate(PAGES)
        if (HERE / file).exists()
    ]
    page = st.navigation(pages)
    auth.sidebar(who)
    st.sidebar.toggle(
        "Show answers as typed",
        key=keep("keep.as_typed", False),
        help="Model answers are Markdown and are shown rendered (headings, lists, tables, code). Turn this on "
        "to see the raw text exactly as the model wrote it.",
    )
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

"""Streamlit entry: ``streamlit run app/main.py``. Sets up the page and routes to one file per page.

Two things every page gets from here:
- State that survives a trip to another page (``app.state``: widgets whose key starts with ``keep.``).
- A page-level boundary: an unexpected error shows a clear message and is logged with its traceback, never
  Streamlit's redacted "This app has encountered an error" box. A database that cannot be reached (server
  down, wrong password, driver missing, SQLite file not writable) is named, without its password, with what
  to do (``storage.db.explain_failure``).
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
# Pages that are nothing without the database; Explore works without one until a run is saved.
NEEDS_DATABASE = {"Annotate", "History", "Results"}


def _database_fault(exc: BaseException) -> str | None:
    """The message for a database that cannot be opened or reached, or None for any other error."""
    from storage.db import database_url, explain_failure

    try:
        url = os.environ.get("DATABASE_URL", "").strip() or database_url()
    except OSError:  # the default data folder cannot be made: the fault explains itself below
        url = f"sqlite:///{os.environ.get('FUSION_DB_PATH', '').strip() or 'data/fusion.db'}"
    explained = explain_failure(exc, url)
    return None if explained is None else str(explained)


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
    from components.keyboard_guard import keyboard_guard_html
    from components.vote_panel import CONTINUE_KEY, SHORTCUTS, SKIP_KEY, UNDO_KEY

    # Held keys, double presses and typing that lost its field never reach the shortcuts (see the module).
    st.sidebar.html(
        keyboard_guard_html([*SHORTCUTS.values(), SKIP_KEY, UNDO_KEY, CONTINUE_KEY]), unsafe_allow_javascript=True
    )
    st.sidebar.toggle(
        "Show answers as typed",
        key=keep("keep.as_typed", False),
        help="Model answers are Markdown and are shown rendered (headings, lists, tables, code). Turn this on "
        "to see the raw text exactly as the model wrote it.",
    )
    try:
        if page.title in NEEDS_DATABASE:
            # Opened here, before the page, so a page's own error boundary cannot turn a database that is
            # down into a vague "unexpected error" (the engine is cached once it opens).
            from app.deps import get_engine

            get_engine()
        page.run()
    except Exception as exc:  # noqa: BLE001 - st.rerun/st.stop are BaseExceptions and pass through
        fault = _database_fault(exc)
        if fault is not None:
            log.warning("page %s: the database is unavailable: %s", page.title, fault)
            from components.text import md_escape

            st.error(
                f"**The database could not be opened, so this page cannot be shown.** {md_escape(fault)} "
                "Then reload the page.",
                icon="🗄️",
            )
            st.stop()
        log.exception("page %s failed", page.title)
        st.error(
            f"Something went wrong on this page ({type(exc).__name__}). Reload the page to start it afresh; your "
            "votes and saved runs are in the database and are not affected. If it happens again, the server's "
            "log has the details."
        )


main()

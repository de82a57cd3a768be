"""Whether the person who started a run is still waiting for it (for :func:`fusion.cancel.until_stopped`).

Two things end the wait: the browser session is gone (tab closed, connection lost), or Streamlit was asked
to rerun or stop the script (a click started another run, or the page was left). Streamlit delivers the
second only at the script's next Streamlit call, which a run blocked on a hanging server never makes, so it
is read from the script's request queue directly. That queue's state is not public API; if a Streamlit
release renames it, the check falls back to the session test alone.
"""

from __future__ import annotations

from typing import Callable


def session_gone() -> Callable[[], bool]:
    """A check, made for the current script run, that is true once nobody waits for this run."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return lambda: False  # outside a server (AppTest, scripts): nothing to watch
    session_id = ctx.session_id
    requests = ctx.script_requests

    def check() -> bool:
        if not runtime.get_instance().is_active_session(session_id):
            return True
        state = getattr(requests, "_state", None)
        return state is not None and getattr(state, "name", "") in ("STOP", "RERUN")

    return check

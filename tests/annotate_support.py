"""What AppTest tests of the Annotate page share: its vote buttons' keys, and reading time.

Annotate draws one vote form per run with its buttons greyed out for ``QUICK_VOTE_S`` after the run appears
(and refuses a vote that comes sooner anyway), so a test that votes first says the annotator has read the
run.
"""

from __future__ import annotations

from typing import Any


def annotate_vote_key(run_id: str, choice: str) -> str:
    return f"annotate_{run_id}__vote_{choice}"


def looked_at(at: Any, seconds: float = 5.0) -> None:
    """As if the annotator had read the run on screen for ``seconds``: its vote buttons, greyed out when it
    was drawn, are drawn again enabled (in a browser the page's timer does that; AppTest runs no timers)."""
    key = f"annotate_{at.session_state['annotate_current']}__shown_at"
    at.session_state[key] = at.session_state[key] - seconds
    at.run()

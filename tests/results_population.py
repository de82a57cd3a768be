"""A small annotation project for the Results page tests: the built-in scenarios taken through the offline
method (``fusion.pipeline.run_supplied``) and voted on by a few annotators through ``record_vote``.

What it holds, so tests can name the groups they check:

* every scenario as a run ``sc-<scenario id>`` with source ``scenario:<id>`` and candidates named after the
  scenario's personas (``scenario:<label>``), tagged with its category and "scenario";
* annotators ann, ben and cy voting on most runs (PLAN below), so agreement has shared runs;
* ONE_VOTE: a scenario run with a single vote (and annotator "dee" who cast only that one vote);
* ALL_BOTH_BAD: a scenario run whose every vote says both answers are bad (no rate);
* ALL_BON: a scenario run whose every vote went to Best-of-N (a 0% bar).
"""

from __future__ import annotations

from typing import Any

ONE_VOTE = "library-fines-summary"
ALL_BOTH_BAD = "escape-html-bug"
ALL_BON = "lighthouse-story"

# scenario id -> {annotator: (choice, a_is)}; choice is the button clicked, a_is the side shown as A.
PLAN: dict[str, dict[str, tuple[str, str]]] = {
    "berlin-move-es": {"ann": ("A", "fused"), "ben": ("A", "fused"), "cy": ("B", "fused")},
    "bones-adult-newborn": {"ann": ("B", "bon"), "ben": ("tie", "bon"), "cy": ("B", "bon")},
    ALL_BOTH_BAD: {"ann": ("both_bad", "fused"), "ben": ("both_bad", "bon"), "cy": ("both_bad", "fused")},
    "first-marathon": {"ann": ("A", "fused"), "ben": ("B", "bon"), "cy": ("A", "bon")},
    ONE_VOTE: {"dee": ("A", "fused")},
    ALL_BON: {"ann": ("A", "bon"), "ben": ("B", "fused")},
    "postgres-move-checklist": {"ann": ("A", "fused"), "ben": ("A", "fused"), "cy": ("A", "fused")},
    "translate-de-train": {"ann": ("tie", "fused"), "ben": ("A", "bon"), "cy": ("B", "bon")},
    "translate-ja-email": {"ann": ("B", "bon"), "ben": ("B", "bon")},
}


def populate(engine: Any) -> dict[str, Any]:
    """Save the scenario runs and cast the votes of :data:`PLAN`; return {"runs": [...], "votes": [...]}."""
    from fusion.pipeline import run_supplied
    from fusion.scenarios import load_scenarios
    from fusion.types import Prompt
    from storage.runs import save_run
    from storage.votes import record_vote

    runs, votes = [], []
    for i, s in enumerate(load_scenarios()):
        run = run_supplied(
            Prompt(text=s.prompt, system=s.system),
            list(s.candidates),
            labels=[f"scenario:{label}" for label in s.candidate_labels],
            tags=[s.category, "scenario"],
            source=f"scenario:{s.id}",
            run_id=f"sc-{s.id}",
        )
        run.created_at = 1_000 + i
        save_run(engine, run)
        runs.append(run)
        for annotator, (choice, a_is) in PLAN.get(s.id, {}).items():
            votes.append(record_vote(engine, run_id=run.id, annotator=annotator, choice=choice, a_is=a_is))
    return {"runs": runs, "votes": votes}

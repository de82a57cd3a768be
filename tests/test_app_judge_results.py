"""The Results page with a pairwise judge and an N-scaling experiment: the judge apart from the people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fusion.cli import main
from fusion.pairwise import OrderVerdict, combine

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
# Scenarios whose offline fusion differs from the pick at N = 3 and 5 (at N = 2 it equals the pick).
SCENARIOS = ("first-marathon", "escape-html-bug", "bones-adult-newborn", "postgres-move-checklist")


def verdict(winner: str, consistent: bool = True):
    side = {"fused": ("A", "B"), "bon": ("B", "A"), "tie": ("tie", "tie")}[winner]
    if not consistent:
        side = ("A", "A")
    return combine("openai/pj", [OrderVerdict("fused", side[0], "reason one", ""), OrderVerdict("bon", side[1], "reason two", "")])


def test_judge_and_scaling_sections(engine: Any, tmp_path: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from storage.listing import list_runs
    from storage.runs import load_run
    from storage.votes import record_judge_verdict, record_vote

    from fusion.scenarios import load_scenarios

    path = tmp_path / "p.jsonl"
    rows = [{"id": s.id, "prompt": s.prompt, "candidates": list(s.candidates)}
            for s in load_scenarios() if s.id in SCENARIOS]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["scale", str(path), "--n", "2,3,5", "--experiment", "demo", "-q"]) == 0
    runs = [load_run(engine, s.id) for s in list_runs(engine, limit=None)]
    pairs = [r for r in runs if r.fused.text.strip() != r.bon_text.strip()]
    assert len(pairs) == 8  # N = 3 and 5 of each scenario
    for i, run in enumerate(pairs):
        record_judge_verdict(engine, run.id, verdict("fused", consistent=(i != 0)))
        record_vote(engine, run_id=run.id, annotator="ana", choice="B", a_is="fused")  # ana: the pick

    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.switch_page("results.py").run()
    assert not at.exception, [e.value for e in at.exception]
    headers = [h.value for h in at.header]
    assert "Pairwise judge" in headers and "N-scaling experiments" in headers
    # The people's win rate is ana's alone: 0%, whatever the judge said.
    metrics = {m.label: m.value for m in at.metric}
    assert metrics.get("Fusion-of-N win rate", "").startswith("0"), metrics
    judges = next(df.value for df in at.dataframe if "judge" in df.value.columns)
    row = judges.iloc[0]
    assert row["judge"] == "openai/pj" and row["runs judged"] == len(pairs)
    assert row["people's win rate, same runs"] == "0.0%"
    consistent = (len(pairs) - 1) / len(pairs)
    assert row["position-consistent"] == f"{consistent:.1%}"
    scaling = next(df.value for df in at.dataframe if "votes by" in df.value.columns)
    assert set(scaling["votes by"]) == {"people", "judge:openai/pj"}
    assert sorted(set(scaling["N"])) == [2, 3, 5]
    assert at.get("plotly_chart")

"""A populated database for the Results page benchmarks: thousands of runs and votes, saved and voted
through the real storage functions (``save_run``, ``record_vote``).

Base runs are real: AlpacaEval instructions answered by 8 models (../shared/data/alpaca_eval_judged8.jsonl),
taken through the offline method (consensus Best-of-N, extractive fusion, attribution) with N of 2, 3, 5
and 8 of those models, plus the built-in scenarios. Without the data folder only the scenarios are used
(and a message says so). Every saved run is a copy of a base run under a new id, with tags from a small
set, so the database has the size of a real annotation project without computing thousands of fusions.

    .venv/bin/python bench/results_db.py OUT.db [--runs 5000] [--votes 15000] [--annotators 6]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# ../shared/data next to the project; from a worktree under wt/ it is one level further up.
DATA = next(
    (d for d in (ROOT.parent / "shared" / "data", ROOT.parent.parent / "shared" / "data") if d.is_dir()),
    ROOT.parent / "shared" / "data",
)
ALPACA = DATA / "alpaca_eval_judged8.jsonl"
N_CHOICES = (2, 3, 5, 8)
TAG_SETS = (["pilot"], ["pilot", "long"], ["round-2"], ["round-2", "long"], [])
# How annotators split their verdicts: fusion wins somewhat more often than Best-of-N, as in the paper.
CHOICE_WEIGHTS = {"A": 0.4, "B": 0.4, "tie": 0.12, "both_bad": 0.08}


def base_runs(*, alpaca_items: int = 50, seed: int = 0) -> list[Any]:
    """Runs computed by the offline method: AlpacaEval answers of several models, and the scenarios."""
    from fusion.pipeline import run_supplied
    from fusion.scenarios import load_scenarios

    rng = random.Random(seed)
    out: list[Any] = []
    if ALPACA.exists():
        with ALPACA.open(encoding="utf-8") as fh:
            items = [json.loads(line) for line in fh if line.strip()][:alpaca_items]
        for k, item in enumerate(items):
            models = list(item["outputs"])
            n = N_CHOICES[k % len(N_CHOICES)]
            chosen = rng.sample(models, n)
            out.append(
                run_supplied(item["instruction"], [item["outputs"][m] for m in chosen], labels=chosen, source="batch")
            )
    else:
        print(f"note: {ALPACA} not found; the runs are built from the built-in scenarios only", file=sys.stderr)
    for s in load_scenarios():
        out.append(
            run_supplied(
                s.prompt,
                list(s.candidates),
                labels=[f"scenario:{label}" for label in s.candidate_labels],
                source=f"scenario:{s.id}",
            )
        )
    return out


def build(
    db_path: Path, *, runs: int = 5000, votes: int = 15000, annotators: int = 6, seed: int = 0
) -> dict[str, Any]:
    """Fill a new SQLite database at ``db_path``; return what was made and how long it took."""
    from storage.migrations import init_db
    from storage.runs import save_run
    from storage.votes import record_vote

    if db_path.exists():
        raise SystemExit(f"{db_path} exists; choose a new file")
    if annotators < 1 or runs < 1:
        raise SystemExit("need at least one run and one annotator")
    t0 = time.perf_counter()
    bases = base_runs(seed=seed)
    t_base = time.perf_counter() - t0
    engine = init_db(f"sqlite:///{db_path}")
    rng = random.Random(seed)
    names = [f"annotator-{i + 1}" for i in range(annotators)]
    t1 = time.perf_counter()
    ids: list[str] = []
    for i in range(runs):
        base = bases[i % len(bases)]
        run = replace(base, id=f"bench-{i:05d}", tags=list(TAG_SETS[i % len(TAG_SETS)]), created_at=1_700_000_000 + i)
        ids.append(save_run(engine, run))
    t_runs = time.perf_counter() - t1
    t2 = time.perf_counter()
    per_run, extra = divmod(votes, runs)
    choices, weights = list(CHOICE_WEIGHTS), list(CHOICE_WEIGHTS.values())
    made = 0
    for i, run_id in enumerate(ids):
        k = min(annotators, per_run + (1 if i < extra else 0))
        for name in rng.sample(names, k):
            record_vote(
                engine,
                run_id=run_id,
                annotator=name,
                choice=rng.choices(choices, weights)[0],
                a_is=rng.choice(("bon", "fused")),
            )
            made += 1
    t_votes = time.perf_counter() - t2
    engine.dispose()
    return {
        "runs": runs,
        "votes": made,
        "annotators": annotators,
        "base_runs": len(bases),
        "seconds": {"base runs": t_base, "save runs": t_runs, "record votes": t_votes},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--runs", type=int, default=5000)
    p.add_argument("--votes", type=int, default=15000)
    p.add_argument("--annotators", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    print(json.dumps(build(a.out, runs=a.runs, votes=a.votes, annotators=a.annotators, seed=a.seed), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

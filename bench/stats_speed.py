"""The Results page's vote statistics: the pure-Python module of commit 844602b (bench/stats_baseline.py)
against the numpy one (fusion.stats), in the same run, on synthetic votes.

Votes: storage.votes.VoteRecord objects, by default 15,000 over 5,000 runs from 6 annotators (3 per
run), runs with N of 2 to 8 candidates from a pool of real model names (a fifth of them scenario runs, whose
candidates are personas), tags from a small set, and one vote in ten cast non-blind. What is timed is what
the page computes on a cache miss:

* baseline: win_rate + win_rate_by for model / N / tag / annotator + position_bias + pairwise_kappa +
  krippendorff_alpha(annotator_units), 2,000 bootstrap resamples each (the page's old ``compute``);
* current: vote_table + summarize (the same statistics, blind votes only as the page shows by default,
  and with non-blind votes included, as after the toggle).

(The page no longer hashes the vote set: storage's fingerprint keys its cache, and it reads votes as
columns; bench/stats_scale.py times that whole path on a database.)

Both sides run on the same votes, interleaved, ``--repeats`` times; CPU time of the process (numpy may use
a second thread for a matrix product; that time counts too). The numbers are checked to agree: counts and
rates exactly, intervals within 0.01 (two bootstraps with different random draws), kappa and alpha to 1e-9.

    .venv/bin/python bench/stats_speed.py [--votes 15000 --runs 5000 --annotators 6] [--repeats 3]
        [--out bench/results/stats_speed.md]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "bench"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import numpy as np  # noqa: E402

import stats_baseline as old  # noqa: E402
from fusion import stats as new  # noqa: E402
from storage.votes import VoteRecord  # noqa: E402

MODELS = [
    "openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-3-5-haiku-latest", "cohere/command-r",
    "gemini/gemini-1.5-flash", "mistral/mistral-small-latest", "ollama/llama3.1", "openai/qwen2.5-7b",
]  # fmt: skip
PERSONAS = ["scenario:concise", "scenario:verbose", "scenario:coach", "scenario:skeptic", "scenario:literal"]
SCENARIOS = ["berlin-move-es", "first-marathon", "translate-de-train", "lighthouse-story"]
TAGS = (["pilot"], ["pilot", "long"], ["round-2"], ["round-2", "de"], [])
WINNER_WEIGHTS = {"fused": 0.42, "bon": 0.36, "tie": 0.14, "both_bad": 0.08}


def synthetic_votes(n_votes: int, n_runs: int, n_annotators: int, seed: int = 0) -> list[VoteRecord]:
    rng = random.Random(seed)
    names = [f"annotator-{i + 1}" for i in range(n_annotators)]
    winners, weights = list(WINNER_WEIGHTS), list(WINNER_WEIGHTS.values())
    per_run, extra = divmod(n_votes, n_runs)
    votes: list[VoteRecord] = []
    for r in range(n_runs):
        n = rng.choice((2, 3, 5, 8))
        if r % 5 == 0:
            source, models = f"scenario:{SCENARIOS[r % len(SCENARIOS)]}", rng.sample(PERSONAS, min(n, len(PERSONAS)))
        else:
            source, models = "batch", rng.sample(MODELS, min(n, len(MODELS)))
        tags = list(TAGS[r % len(TAGS)])
        for annotator in rng.sample(names, min(n_annotators, per_run + (1 if r < extra else 0))):
            winner = rng.choices(winners, weights)[0]
            a_is = rng.choice(("bon", "fused"))
            choice = winner if winner in ("tie", "both_bad") else ("A" if winner == a_is else "B")
            t = 1_700_000_000.0 + len(votes)
            votes.append(
                VoteRecord(
                    id=len(votes) + 1, run_id=f"run-{r:05d}", annotator=annotator, choice=choice, a_is=a_is,
                    winner=winner, comment=None, ranking=None, client_token=None, created_at=t, updated_at=t,
                    n=n, models=models, tags=tags, source=source, blind=rng.random() >= 0.1,
                )
            )  # fmt: skip
    return votes


def baseline_page(votes: list[Any]) -> dict[str, Any]:
    """What the page computed before (app/results.py ``compute`` at 844602b; by model: raw model names)."""
    return {
        "overall": old.win_rate(votes),
        "by": {
            "Model": old.win_rate_by(votes, key=lambda v: v.models),
            "N": old.win_rate_by(votes, key=lambda v: str(v.n)),
            "Tag": old.win_rate_by(votes, key=lambda v: v.tags),
            "Annotator": old.win_rate_by(votes, key=lambda v: v.annotator),
        },
        "position": old.position_bias(votes),
        "kappa": old.pairwise_kappa(votes),
        "alpha": old.krippendorff_alpha(old.annotator_units(votes)),
    }


def cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def check_agreement(base: dict[str, Any], cur: Any) -> list[str]:
    """Differences between the baseline's figures and the current summary over the same (all) votes."""
    problems: list[str] = []

    def same(label: str, a: Any, b: Any) -> None:
        for f in ("n_runs", "n_votes", "wins", "losses", "ties", "both_bad"):
            if getattr(a, f) != getattr(b, f):
                problems.append(f"{label}: {f} {getattr(a, f)} != {getattr(b, f)}")
        if (a.rate is None) != (b.rate is None) or (a.rate is not None and abs(a.rate - b.rate) > 1e-12):
            problems.append(f"{label}: rate {a.rate} != {b.rate}")
        if b.has_interval and (abs(a.low - b.low) > 0.01 or abs(a.high - b.high) > 0.01):
            problems.append(f"{label}: interval {a.low:.4f}-{a.high:.4f} vs {b.low:.4f}-{b.high:.4f}")

    same("overall", base["overall"], cur.overall)
    same("position", base["position"], cur.position)
    for split in ("N", "Tag", "Annotator"):
        if list(base["by"][split]) != list(cur.by[split]):
            problems.append(f"{split}: groups differ")
            continue
        for label in base["by"][split]:
            same(f"{split} {label}", base["by"][split][label], cur.by[split][label])
    for a, b in zip(base["kappa"], cur.kappa, strict=True):
        if (a.annotator_a, a.annotator_b, a.n_shared) != (b.annotator_a, b.annotator_b, b.n_shared) or abs(
            a.kappa - b.kappa
        ) > 1e-9:
            problems.append(f"kappa {a} != {b}")
    if abs(base["alpha"] - cur.alpha) > 1e-9:
        problems.append(f"alpha {base['alpha']} != {cur.alpha}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--votes", type=int, default=15_000)
    p.add_argument("--runs", type=int, default=5_000)
    p.add_argument("--annotators", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)

    votes = synthetic_votes(a.votes, a.runs, a.annotators)
    t: dict[str, list[float]] = {k: [] for k in ("old", "new_blind", "new_all", "table")}
    base = cur_all = None
    for r in range(a.repeats):
        dt, base = cpu(lambda: baseline_page(votes))
        t["old"].append(dt)
        dt, table = cpu(lambda: new.vote_table(votes))
        t["table"].append(dt)
        dt, _ = cpu(lambda: new.summarize(table))
        t["new_blind"].append(dt + t["table"][-1])
        dt, cur_all = cpu(lambda: new.summarize(table, include_non_blind=True))
        t["new_all"].append(dt)
        print(f"repeat {r + 1}: old {t['old'][-1]:.2f} s, new {t['new_blind'][-1]:.3f} s", flush=True)
    problems = check_agreement(base, cur_all)
    med = {k: statistics.median(v) for k, v in t.items()}
    non_blind = sum(1 for v in votes if not v.blind)
    lines = [
        "# Results statistics: pure Python (844602b) against numpy",
        "",
        "Command: `.venv/bin/python bench/stats_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`",
        "",
        f"Votes: {len(votes):,} synthetic VoteRecords over {a.runs:,} runs from {a.annotators} annotators "
        f"({non_blind:,} non-blind). Machine: {platform.machine()}, Python {platform.python_version()}, numpy "
        f"{np.__version__}. CPU time of the process, median of {a.repeats} interleaved repeats; the 2 cores are "
        "shared with other jobs, so the ratio is the figure to trust.",
        "",
        "| what | baseline (s) | current (s) | ratio |",
        "|---|---|---|---|",
        f"| every statistic of the page (cache miss), blind votes only | {med['old']:.2f} | {med['new_blind']:.3f} | "
        f"**{med['old'] / med['new_blind']:.0f}x** |",
        f"| the same with non-blind votes included (toggle; vote table reused) | {med['old']:.2f} | "
        f"{med['new_all']:.3f} | {med['old'] / med['new_all']:.0f}x |",
        f"| of which: reading the votes into arrays (vote_table) | - | {med['table']:.3f} | - |",
        "",
        "All runs: " + ", ".join(f"{k} " + "/".join(f"{x:.3f}" for x in v) for k, v in t.items()) + ".",
        "",
        "Agreement, current with non-blind votes included against the baseline on the same votes (by model is "
        "left out: the current split groups scenario runs under their scenario by design): "
        + ("counts and rates identical, intervals within 0.01, kappa and alpha within 1e-9." if not problems
           else "DIFFERENCES: " + "; ".join(problems[:10])),
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text, encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

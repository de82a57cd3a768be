"""Fill a database with a team's worth of annotation work: 5,000 runs and 15,000 votes by default.

Offline and deterministic for a given ``--seed``. Runs are made from real model answers when
``shared/data/alpaca_eval_judged8.jsonl`` is there (100 AlpacaEval instructions, each answered by 8
models: N candidates are N of those answers, a few hundred words each), from made-up text otherwise.

Taking every run through the real engine (consensus Best-of-N, extractive fusion, span attribution:
``fusion.pipeline.run_supplied``) costs about 0.1-0.5 s per run here, 20+ minutes for 5,000 runs on these
2 cores, so ``--real-runs`` runs (default 300) go through the engine and the rest reuse one of them under
a new id, tags, source and date: the texts, attribution JSON and identical pairs are real, only repeated.
On these inputs the extractive fusor returns the pick verbatim for about 40% of runs (mostly small N);
an LLM fusor rarely does, so reused runs are drawn to make about 10% identical pairs.

The 9 built-in scenarios are saved once each (source ``scenario:<id>``, persona "models"). Votes come
from 6 annotators on overlapping runs; about one in ten is marked as cast after the reveal (not blind).
Everything is written through storage.runs.save_run and storage.votes.record_vote, so the data has the
shape the app writes.

    .venv/bin/python bench/make_big_db.py [--url URL] [--runs 5000] [--votes 15000] [--seed 7]

``--url`` defaults to a SQLite file data/bench-<runs>.db; the database must hold no runs (this never adds
to someone's real data).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.types import ModelSpec, Run  # noqa: E402

ANNOTATORS = ("ana", "bo", "chidi", "dana", "emre", "fumiko")
BATCH_TAGS = tuple(f"batch-{k:02d}" for k in range(1, 11))
NOT_BLIND_RATE = 0.1
IDENTICAL_RATE = 0.1
MIN_N, MAX_N = 2, 8
DAYS = 60


def data_dir(explicit: Path | None = None) -> Path | None:
    """shared/data beside the project (main checkout) or beside the worktree folder, if present."""
    candidates = [explicit] if explicit else [ROOT.parent / "shared" / "data", ROOT.parents[1] / "shared" / "data"]
    for folder in candidates:
        if folder is not None and (folder / "alpaca_eval_judged8.jsonl").exists():
            return folder
    return None


@dataclass
class Source:
    """Where the candidates of a run come from: (prompt, answers by model, dataset name) per instruction."""

    items: list[tuple[str, dict[str, str], str]]
    description: str


def alpaca_source(folder: Path) -> Source:
    rows = [json.loads(line) for line in (folder / "alpaca_eval_judged8.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    items = [(r["instruction"], dict(r["outputs"]), r.get("dataset") or "alpaca_eval") for r in rows]
    return Source(items, f"{folder / 'alpaca_eval_judged8.jsonl'} ({len(items)} instructions x 8 models)")


def synthetic_source(seed: int) -> Source:
    """Made-up instructions and answers (Zipf-distributed words in sentences), 8 'models' each."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ren", "to", "sa", "vel", "qu", "dor", "in", "es", "ar", "pe", "ul"]
    vocabulary = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(3000)]
    weights = [1 / (k + 1) for k in range(len(vocabulary))]

    def sentence() -> str:
        words = rng.choices(vocabulary, weights, k=rng.randint(8, 22))
        return " ".join(words).capitalize() + "."

    items = []
    for i in range(100):
        shared = [sentence() for _ in range(6)]  # what several answers agree on
        outputs = {}
        for m in range(8):
            body = [s for s in shared if rng.random() < 0.6] + [sentence() for _ in range(rng.randint(6, 14))]
            rng.shuffle(body)
            outputs[f"synthetic/model-{m}"] = " ".join(body)
        items.append((f"Synthetic instruction {i}: " + sentence(), outputs, "synthetic"))
    return Source(items, "synthetic text (shared/data/alpaca_eval_judged8.jsonl not found)")


def _engine_run(prompt: str, texts: Sequence[str], labels: Sequence[str], *, source: str, run_id: str) -> Run:
    from fusion.pipeline import run_supplied

    return run_supplied(prompt, texts, labels=labels, source=source, run_id=run_id)


def real_runs(source: Source, count: int, rng: random.Random, progress: Callable[[str], None]) -> list[Run]:
    """``count`` runs through the real engine: N (2-8) of an instruction's answers, models as labels."""
    out: list[Run] = []
    started = time.perf_counter()
    for k in range(count):
        prompt, outputs, _dataset = source.items[k % len(source.items)]
        n = rng.randint(MIN_N, MAX_N)
        models = rng.sample(sorted(outputs), n)
        run = _engine_run(prompt, [outputs[m] for m in models], models, source="batch", run_id=f"real{k:05d}")
        run.pool = [ModelSpec(model=m, samples=1) for m in models]
        out.append(run)
        if (k + 1) % 50 == 0:
            progress(f"  engine: {k + 1}/{count} runs, {time.perf_counter() - started:.0f} s")
    return out


def scenario_runs() -> list[Run]:
    from fusion.scenarios import load_scenarios, scenario_to_candidates

    out = []
    for s in load_scenarios():
        labels = [c.model for c in scenario_to_candidates(s)]
        run = _engine_run(s.prompt, list(s.candidates), labels, source=f"scenario:{s.id}", run_id=f"scenario-{s.id}")
        run.tags = ["scenario", s.category]
        out.append(run)
    return out


@dataclass
class EngineRuns:
    """Runs taken through the real engine, to be saved (and reused) into one or more databases."""

    pool: list[Run]
    scenarios: list[Run]
    source: str
    seconds: float


def make_engine_runs(
    *, real: int = 300, seed: int = 7, data: Path | None = None, progress: Callable[[str], None] = print
) -> EngineRuns:
    rng = random.Random(seed)
    folder = data_dir(data)
    source = alpaca_source(folder) if folder else synthetic_source(seed)
    progress(f"source: {source.description}")
    t0 = time.perf_counter()
    pool = real_runs(source, real, rng, progress)
    for run in pool:  # the dataset an instruction came from becomes a tag, as a batch file would carry it
        run.tags = [next((d for p, _o, d in source.items if p == run.prompt.text), "misc")]
    return EngineRuns(pool, scenario_runs(), source.description, time.perf_counter() - t0)


@dataclass
class Built:
    runs: int
    votes: int
    identical: int
    not_blind: int
    engine_runs: int
    engine_seconds: float
    save_seconds: float
    vote_seconds: float
    source: str


def build(
    url: str,
    *,
    runs: int = 5000,
    votes: int = 15000,
    seed: int = 7,
    real: int = 300,
    data: Path | None = None,
    progress: Callable[[str], None] = print,
    made: EngineRuns | None = None,
) -> Built:
    """Fill the (empty) database at ``url``; the same arguments give the same database. ``made`` reuses
    engine runs already made (by :func:`make_engine_runs` with the same ``real``, ``seed`` and ``data``)."""
    from storage import listing
    from storage import runs as runs_db
    from storage import votes as votes_db
    from storage.migrations import init_db

    engine = init_db(url)
    try:
        if listing.count_runs(engine):
            raise SystemExit(f"{url} already holds runs; make_big_db only fills an empty database.")
        made = made or make_engine_runs(real=real, seed=seed, data=data, progress=progress)
        rng = random.Random(seed + 1)
        pool, scenarios = made.pool[:runs], made.scenarios
        from storage.runs import is_identical

        identical_pool = [r for r in pool if is_identical(r)]
        differing_pool = [r for r in pool if not is_identical(r)] or identical_pool

        t0 = time.perf_counter()
        start = 1_780_000_000.0  # a fixed date, so the same seed gives the same database
        n_plain = max(0, runs - len(scenarios))
        for k in range(n_plain):
            if k < len(pool):
                base = pool[k]  # every engine run once, then reuse
            elif identical_pool and rng.random() < IDENTICAL_RATE:
                base = rng.choice(identical_pool)
            else:
                base = rng.choice(differing_pool)
            tags = [rng.choice(BATCH_TAGS), *base.tags]
            if rng.random() < 0.15:
                tags.append("pilot")
            run = replace(
                base,
                id=f"run{k:05d}",
                tags=tags,
                source="batch" if rng.random() < 0.85 else "live",
                created_at=start + rng.uniform(0, DAYS * 86400),
            )
            runs_db.save_run(engine, run)
            if (k + 1) % 1000 == 0:
                progress(f"  saved {k + 1}/{n_plain} runs, {time.perf_counter() - t0:.0f} s")
        for run in scenarios[: max(0, runs - n_plain)]:
            runs_db.save_run(engine, replace(run, created_at=start + rng.uniform(0, DAYS * 86400)))
        save_seconds = time.perf_counter() - t0

        counts = votes_db.queue_counts(engine, ANNOTATORS[0])
        votable = votes_db.annotation_queue(engine, ANNOTATORS[0], limit=None)
        t0 = time.perf_counter()
        per_annotator = [votes // len(ANNOTATORS) + (1 if i < votes % len(ANNOTATORS) else 0)
                         for i in range(len(ANNOTATORS))]
        cast = not_blind = 0
        for name, quota in zip(ANNOTATORS, per_annotator):
            for run_id in rng.sample(votable, min(quota, len(votable))):
                blind = rng.random() >= NOT_BLIND_RATE
                choice = rng.choices(("A", "B", "tie", "both_bad"), (0.42, 0.42, 0.1, 0.06))[0]
                votes_db.record_vote(engine, run_id=run_id, annotator=name, choice=choice, a_is=rng.choice(("bon", "fused")),
                              comment="too long" if rng.random() < 0.03 else None, blind=blind,
                              client_token=f"{name}:{run_id}")
                cast += 1
                not_blind += not blind
            progress(f"  votes by {name}: {min(quota, len(votable))}, {time.perf_counter() - t0:.0f} s")
        vote_seconds = time.perf_counter() - t0
        return Built(
            runs=listing.count_runs(engine), votes=cast, identical=counts.identical, not_blind=not_blind,
            engine_runs=len(pool) + len(scenarios), engine_seconds=made.seconds, save_seconds=save_seconds,
            vote_seconds=vote_seconds, source=made.source,
        )
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="SQLAlchemy URL (default: DATABASE_URL, else data/bench-<runs>.db)")
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--votes", type=int, default=15000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--real-runs", type=int, default=300, help="runs taken through the engine; others reuse them")
    parser.add_argument("--data", type=Path, help="folder with alpaca_eval_judged8.jsonl (default: shared/data)")
    args = parser.parse_args(argv)
    import os

    url = args.url or os.environ.get("DATABASE_URL") or f"sqlite:///{ROOT / 'data' / f'bench-{args.runs}.db'}"
    built = build(url, runs=args.runs, votes=args.votes, seed=args.seed, real=args.real_runs, data=args.data)
    print(json.dumps({"url": url, **built.__dict__}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

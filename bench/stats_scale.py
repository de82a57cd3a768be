"""The Results page's statistics on a cache miss, on a team-sized database (5,000 runs, 15,000 votes): the
page's own code at a baseline commit against the page now, in the same run.

What is timed is what the page does when its cache key (the storage fingerprint) has changed: the
fingerprint, the vote statistics it shows first (``app.results.vote_summary``, blind votes only), the
attribution statistics (``app.results.attribution_values`` and a ``distribution`` of each), and then the
blind toggle (``vote_summary`` with the non-blind votes included). Streamlit's caches are cleared before
every repeat, so each repeat is a cache miss.

Each side runs in its own process with its tree on ``sys.path`` (the baseline unpacked with ``git archive``),
importing the page module as the server would, one warm-up call, then ``--inner`` timed calls; the
processes alternate ``--repeats`` times so both see the same machine load. Times are wall and CPU seconds
of the process (SQLite runs inside it). A third side, "python", is the pure-Python statistics of 844602b
(bench/stats_baseline.py, the page before numpy) on the votes as ``all_votes`` reads them: the figure the
issue quoted (21.7 s).

    .venv/bin/python bench/stats_scale.py [--db data/bench-5000.db] [--baseline 00d8b87] [--repeats 3]
        [--inner 3] [--no-python] [--out bench/results/stats_scale.md]

``--db`` defaults to data/bench-5000.db, made first with bench/make_big_db.py if missing (copied to a
temporary file before use: WAL files are written beside the database).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKER_ENV = "FUSION_STATS_SCALE_TREE"


# ------------------------------------------------------------------------------------------ worker side


def _worker(db: str, inner: int, which: str) -> dict[str, Any]:
    """Run in a child process whose sys.path starts with the tree under test."""
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)  # "No runtime found" warnings of cache_data
    import streamlit as st

    import app.results as page
    from storage.db import make_engine

    engine = make_engine(f"sqlite:///{db}")

    def page_path() -> dict[str, float]:
        st.cache_data.clear()
        st.cache_resource.clear()
        marks = {}
        t0, c0 = time.perf_counter(), time.process_time()
        summary = page.vote_summary(engine, None, False)
        if hasattr(page, "split_groups"):  # splits computed when their tab opens: the first tab is open
            page.split_groups(engine, None, False, "Model")
        marks["votes"] = (time.perf_counter() - t0, time.process_time() - c0)
        t1, c1 = time.perf_counter(), time.process_time()
        values = page.attribution_values(engine, None)
        from fusion.stats import distribution

        for v in values.values():
            distribution(v)
        marks["attribution"] = (time.perf_counter() - t1, time.process_time() - c1)
        t2, c2 = time.perf_counter(), time.process_time()
        everything = page.vote_summary(engine, None, True)
        if hasattr(page, "split_groups"):
            page.split_groups(engine, None, True, "Model")
        marks["toggle"] = (time.perf_counter() - t2, time.process_time() - c2)
        assert summary is not None and everything is not None
        out = {f"{k}_wall": w for k, (w, _) in marks.items()} | {f"{k}_cpu": c for k, (_, c) in marks.items()}
        out["n_votes"] = everything.n_used
        out["overall"] = [summary.overall.rate, summary.overall.low, summary.overall.high]
        return out

    def python_path() -> dict[str, float]:
        sys.path.insert(0, str(ROOT / "bench"))
        import stats_speed  # its baseline_page: the 844602b page's statistics

        try:  # the tree under test: storage.votes since the split of storage.queries
            from storage.votes import all_votes
        except ImportError:
            from storage.queries import all_votes

        t0, c0 = time.perf_counter(), time.process_time()
        votes = all_votes(engine)
        base = stats_speed.baseline_page(votes)
        out = {"votes_wall": time.perf_counter() - t0, "votes_cpu": time.process_time() - c0}
        out["overall"] = [base["overall"].rate, base["overall"].low, base["overall"].high]
        return out

    run = python_path if which == "python" else page_path
    run()  # warm-up: imports, statement compilation, first-call costs a running server has paid already
    samples = [run() for _ in range(inner)]
    engine.dispose()
    return {"samples": samples}


# ------------------------------------------------------------------------------------------ driver side


def unpack(commit: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_side(tree: Path, db: Path, inner: int, which: str) -> list[dict[str, Any]]:
    env = dict(os.environ, LITELLM_OFFLINE_MODE="true", PYTHONPATH=str(tree), **{WORKER_ENV: str(tree)})
    env.pop("DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "stats_scale.py"), "--worker", which, "--db", str(db), "--inner", str(inner)],
        cwd=tree, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"the {which} side failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["samples"]


def med(samples: list[dict[str, Any]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", type=Path, default=ROOT / "data" / "bench-5000.db")
    p.add_argument("--baseline", default="00d8b87")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--inner", type=int, default=3)
    p.add_argument("--no-python", action="store_true", help="leave out the pure-Python statistics (about 12 s a call)")
    p.add_argument("--out", type=Path)
    p.add_argument("--worker", choices=["page", "python"], help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    if a.worker:
        print(json.dumps(_worker(str(a.db), a.inner, a.worker)))
        return 0

    if not a.db.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_big_db.py"), "--url", f"sqlite:///{a.db}"], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="stats_scale_"))
    try:
        db = tmp / "big.db"
        shutil.copy(a.db, db)
        base_tree = unpack(a.baseline, tmp / "baseline")
        sides = {"baseline": (base_tree, "page"), "current": (ROOT, "page")}
        if not a.no_python:
            sides["python"] = (ROOT, "python")
        samples: dict[str, list[dict[str, Any]]] = {k: [] for k in sides}
        for r in range(a.repeats):
            for name, (tree, which) in sides.items():
                samples[name] += run_side(tree, db, 1 if which == "python" else a.inner, which)
                print(f"repeat {r + 1} {name}: votes {samples[name][-1]['votes_wall']:.3f} s", flush=True)
        import sqlite3

        with sqlite3.connect(db) as conn:
            n_runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
            n_votes = conn.execute("SELECT count(*) FROM votes").fetchone()[0]
            n_non_blind = conn.execute("SELECT count(*) FROM votes WHERE NOT blind").fetchone()[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(a, argv, samples, n_runs, n_votes, n_non_blind)
    print(text)
    if a.out:
        a.out.write_text(text, encoding="utf-8")
    return 0


def report(a: Any, argv: list[str] | None, samples: dict[str, list[dict[str, Any]]], n_runs: int, n_votes: int,
           n_non_blind: int) -> str:  # fmt: skip
    b, c = samples["baseline"], samples["current"]
    rows = []
    for part, label in (
        ("votes", "vote statistics, blind votes only (`vote_summary`: fingerprint, read, statistics)"),
        ("attribution", "attribution statistics (`attribution_values` + distributions)"),
        ("toggle", "blind toggle: the statistics with non-blind votes included"),
    ):
        for kind in ("wall", "cpu"):
            bb, cc = med(b, f"{part}_{kind}"), med(c, f"{part}_{kind}")
            rows.append(f"| {label} | {kind} | {bb:.3f} | {cc:.3f} | **{bb / cc:.1f}x** |")
    total = {k: [s["votes_wall"] + s["attribution_wall"] for s in v] for k, v in (("b", b), ("c", c))}
    tb, tc = statistics.median(total["b"]), statistics.median(total["c"])
    cpu_tb = statistics.median(s["votes_cpu"] + s["attribution_cpu"] for s in b)
    cpu_tc = statistics.median(s["votes_cpu"] + s["attribution_cpu"] for s in c)
    rows.append(f"| **the page's statistics on a cache miss** (the two above) | wall | {tb:.3f} | {tc:.3f} | **{tb / tc:.1f}x** |")
    rows.append(f"| | cpu | {cpu_tb:.3f} | {cpu_tc:.3f} | **{cpu_tb / cpu_tc:.1f}x** |")
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    import numpy

    lines = [
        f"# The Results page's statistics at team scale: {a.baseline} against the current page",
        "",
        "Command: `.venv/bin/python bench/stats_scale.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`",
        "",
        f"Database: {n_runs:,} runs and {n_votes:,} votes ({n_non_blind:,} non-blind) by 6 annotators, made by "
        "`bench/make_big_db.py` (its defaults), SQLite. Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average at the end "
        f"{load[0]:.1f}), Python {platform.python_version()}, numpy {numpy.__version__}. Each side in its own "
        f"process, {a.repeats} alternating repeats of {a.inner} timed calls after a warm-up; medians. The "
        "ratio is the figure to trust: absolute times move with the machine's load.",
        "",
        f"| what | time | baseline {a.baseline} (s) | current (s) | baseline / current |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
    if "python" in samples:
        py = samples["python"]
        pw, pc = med(py, "votes_wall"), med(py, "votes_cpu")
        lines += [
            "The page before numpy (the pure-Python statistics of 844602b, bench/stats_baseline.py, on the votes "
            f"`all_votes` reads; attribution not included): **{pw:.2f} s** wall, {pc:.2f} s CPU, median of "
            f"{len(py)}: {pw / tc:.0f}x the current page's whole statistics.",
            "",
        ]
        ob, oc, op = b[-1]["overall"], c[-1]["overall"], py[-1]["overall"]
        lines += [
            f"Same numbers: overall win rate {oc[0]:.4f} on every side; its 95% interval {oc[1]:.4f}-{oc[2]:.4f} "
            f"(baseline {ob[1]:.4f}-{ob[2]:.4f}, pure Python {op[1]:.4f}-{op[2]:.4f}: a different random "
            "draw, within Monte-Carlo error; tests/test_stats_baseline.py checks every group at 1,500 votes).",
            "",
        ]
    lines += [
        "Where the time goes (cProfile of one cache miss of the vote statistics, same database): before, "
        "`storage.queries.all_votes` built a `VoteRecord` per vote (the run's prompt, parsed models JSON and "
        "tags for each; about half the time) and `fusion.stats.vote_table` read their fields back one Python "
        "call at a time. Now `storage.stats_sql.vote_columns` reads five columns per vote and the voted runs' "
        "labels from the `run_model_groups` and `run_tags` index tables, `fusion.stats.vote_table_from_columns` "
        "turns them into arrays with numpy (together about a third of the time), and what is left is the "
        "bootstrap (about 60%): 2,000 resamples for each of the 39 groups with an interval, each drawn as a "
        "multinomial over the group's distinct run outcomes (about 50 binomial draws per resample),"
        " unchanged, so its numbers are the same as before "
        "to the last digit. The attribution side reads copied fraction, shares and the pick's index "
        "(`storage.stats_sql.attribution_columns`) instead of records with tags and models.",
        "",
        "All samples (wall s): "
        + "; ".join(
            f"{name} " + ", ".join(f"{s['votes_wall']:.3f}" + (f"+{s['attribution_wall']:.3f}" if "attribution_wall" in s else "") for s in v)
            for name, v in samples.items()
        )
        + ".",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if os.environ.get(WORKER_ENV):
        sys.path.insert(0, os.environ[WORKER_ENV])
    sys.exit(main())

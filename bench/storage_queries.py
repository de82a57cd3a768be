"""How long the storage queries that the pages call on every rerun take on a team-sized database.

Two databases are filled by bench/make_big_db.py with the same seed: the baseline, 500 runs and 1,500
votes, and the big one, 5,000 runs and 15,000 votes (10x). Each query runs on both, interleaved, and the
median of ``--repeats`` is reported with the ratio big / baseline in the same run: a lookup that an index
serves stays near 1x, a query that reads every run grows about 10x. Queries whose result is every vote or
every run (all_votes, attribution_rows) grow with their result by nature; for those the question is the
cost per row.

For every query the bench also records how many SQL statements one call runs (N+1 patterns show as a
count that grows with the data) and the tables the database reads in full (``EXPLAIN QUERY PLAN``
"SCAN" on SQLite, "Seq Scan" on PostgreSQL). The hot spots this work changed are also timed against their
previous implementation ("before", kept below) on the big database.

With ``--pg`` the same is done on a throw-away PostgreSQL cluster (tests/pg_support.py starts it).

    .venv/bin/python bench/storage_queries.py [--pg] [--repeats 7] [--out bench/results/storage_queries.md]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import Engine, event, exists, func, select, text  # noqa: E402

import make_big_db  # noqa: E402
from storage import export  # noqa: E402
from storage import listing, stats_reads  # noqa: E402
from storage import runs as runs_db  # noqa: E402
from storage import sql as store_sql  # noqa: E402
from storage import votes as votes_db  # noqa: E402
from storage.migrations import init_db  # noqa: E402

VOTES_PER_RUN = 3
ANNOTATOR = make_big_db.ANNOTATORS[0]


# ----------------------------------------------------------------------------------------------------------
# The previous implementations of the hot spots changed here, as baselines ("before").


def before_all_models(engine: Engine) -> list[str]:
    """Parse every distinct runs.models JSON (what all_models did, without the persona grouping)."""
    with store_sql.reading(engine) as conn:
        raw = conn.execute(select(store_sql.runs.c.models).distinct()).scalars().all()
    names: set[str] = set()
    for value in raw:
        names.update(json.loads(value))
    return sorted(names)


def before_model_filter_count(engine: Engine, model: str) -> int:
    """count_runs(model=...) as a LIKE over the models JSON of every run."""
    with store_sql.reading(engine) as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(store_sql.runs).where(store_sql.runs.c.models.contains(json.dumps(model), autoescape=True))
            ).scalar_one()
        )


def before_attribution_shares(engine: Engine) -> list[list[float]]:
    """The shares of every attributed run, parsed out of the full attribution JSON (spans included)."""
    stmt = (
        select(store_sql.fusions.c.attribution)
        .select_from(store_sql.runs.join(store_sql.fusions, store_sql.fusions.c.run_id == store_sql.runs.c.id))
        .where(store_sql.fusions.c.error.is_(None), store_sql.fusions.c.attribution.is_not(None))
        .order_by(store_sql.runs.c.created_at, store_sql.runs.c.id)
    )
    with store_sql.reading(engine) as conn:
        return [[float(x) for x in json.loads(raw).get("shares", [])] for raw in conn.execute(stmt).scalars()]


def before_queue_progress(engine: Engine, annotator: str) -> tuple[int, int]:
    """Two counts over every run with a pair, identical pairs included, the pair decided from the texts
    (the old queue_progress)."""
    runs, picks, fusions, votes = store_sql.runs, store_sql.picks, store_sql.fusions, store_sql.votes
    voted = exists(select(votes.c.id).where(votes.c.run_id == runs.c.id, votes.c.annotator == annotator))
    base = (
        select(func.count())
        .select_from(runs.join(picks, picks.c.run_id == runs.c.id).join(fusions, fusions.c.run_id == runs.c.id))
        .where(picks.c.idx.is_not(None), fusions.c.error.is_(None), func.trim(fusions.c.text) != "")
    )
    with store_sql.reading(engine) as conn:
        return int(conn.execute(base.where(voted)).scalar_one()), int(conn.execute(base).scalar_one())


def before_all_votes(engine: Engine) -> list[votes_db.VoteRecord]:
    """all_votes as it was: rows as mappings, every models list parsed per vote, fusion columns from the
    table row (on SQLite behind the fused text and spans)."""
    runs, picks, fusions, votes = store_sql.runs, store_sql.picks, store_sql.fusions, store_sql.votes
    stmt = (
        select(votes, runs.c.n, runs.c.models, runs.c.source, runs.c.prompt, picks.c.idx.label("bon_index"),
               picks.c.method.label("bon_method"), fusions.c.method.label("fused_method"),
               fusions.c.copied_fraction)
        .select_from(votes.join(runs, runs.c.id == votes.c.run_id))
        .outerjoin(picks, picks.c.run_id == votes.c.run_id)
        .outerjoin(fusions, fusions.c.run_id == votes.c.run_id)
        .order_by(votes.c.created_at, votes.c.id)
    )
    with store_sql.reading(engine) as conn:
        if engine.dialect.name == "sqlite":
            # The primary-key lookup of the old schema, not the covering index 0003 added.
            sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
            sql = sql.replace("LEFT OUTER JOIN fusions ON", "LEFT OUTER JOIN fusions INDEXED BY sqlite_autoindex_fusions_1 ON")
            assert "INDEXED BY" in sql
            rows = conn.exec_driver_sql(sql).mappings().all()
        else:
            rows = conn.execute(stmt).mappings().all()
        tags = store_sql.tags_by_run(conn, subquery=select(votes.c.run_id))
    return [
        votes_db.VoteRecord(
            id=r["id"], run_id=r["run_id"], annotator=r["annotator"], choice=r["choice"], a_is=r["a_is"],
            winner=r["winner"], comment=r["comment"], ranking=store_sql.loads(r["ranking"]), client_token=r["client_token"],
            created_at=r["created_at"], updated_at=r["updated_at"], n=r["n"], models=store_sql.loads(r["models"], []),
            tags=tags.get(r["run_id"], []), source=r["source"], prompt=r["prompt"], bon_index=r["bon_index"],
            bon_method=r["bon_method"], fused_method=r["fused_method"], copied_fraction=r["copied_fraction"],
            blind=bool(r["blind"]),
        )
        for r in rows
    ]


def before_votes_signature(engine: Engine) -> str:
    """What the Results page did on every rerun to know whether its statistics were still valid: load every
    vote and hash it (app/results.py ``_signature``)."""
    digest = hashlib.sha256(b"")
    for v in votes_db.all_votes(engine):
        digest.update(f"{v.id}|{v.updated_at!r}|{v.winner}|{v.choice}|{v.run_id}|{v.annotator}\n".encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    call: Callable[[Engine], Any]
    note: str = ""


def cases(tag: str, model: str, run_id: str) -> list[Case]:
    """What the pages call on a rerun (Annotate, History, Results), then the write path of a vote."""

    def vote_and_undo(engine: Engine) -> None:
        votes_db.record_vote(engine, run_id=run_id, annotator="bench", choice="A", a_is="fused", blind=False)
        votes_db.delete_vote(engine, run_id, "bench")

    return [
        Case("queue_counts(annotator)", lambda e: votes_db.queue_counts(e, ANNOTATOR), "Annotate"),
        Case("queue_counts(annotator, tag)", lambda e: votes_db.queue_counts(e, ANNOTATOR, tag), "Annotate"),
        Case("annotation_queue(annotator, limit=None)", lambda e: votes_db.annotation_queue(e, ANNOTATOR, limit=None),
             "Annotate"),
        Case("annotation_queue(annotator, limit=50)", lambda e: votes_db.annotation_queue(e, ANNOTATOR), "Annotate"),
        Case("last_vote(annotator)", lambda e: votes_db.last_vote(e, ANNOTATOR), "Annotate (undo)"),
        Case("get_vote(run, annotator)", lambda e: votes_db.get_vote(e, run_id, ANNOTATOR), "Annotate, History"),
        Case("load_run(run)", lambda e: runs_db.load_run(e, run_id), "Annotate, History"),
        Case("run_exists(run)", lambda e: runs_db.run_exists(e, run_id), "Explore"),
        Case("all_tags()", listing.all_tags, "every page"),
        Case("all_models()", listing.all_models, "History"),
        Case("list_runs() (50 newest)", lambda e: listing.list_runs(e), "History"),
        Case("list_runs(tag)", lambda e: listing.list_runs(e, tag=tag), "History"),
        Case("list_runs(model)", lambda e: listing.list_runs(e, model=model), "History"),
        Case("list_runs(text)", lambda e: listing.list_runs(e, text="retinoid"), "History: substring search"),
        Case("count_runs()", lambda e: listing.count_runs(e), "History, Results"),
        Case("count_runs(tag)", lambda e: listing.count_runs(e, tag=tag), "History"),
        Case("count_runs(model)", lambda e: listing.count_runs(e, model=model), "History"),
        Case("all_votes()", lambda e: votes_db.all_votes(e), "Results"),
        Case("all_votes(tag)", lambda e: votes_db.all_votes(e, tag=tag), "Results"),
        Case("votes_signature()", lambda e: stats_reads.votes_signature(e), "Results: cache key for the vote statistics"),
        Case("runs_signature()", lambda e: stats_reads.runs_signature(e), "Results: cache key for attribution_rows"),
        Case("attribution_rows()", lambda e: stats_reads.attribution_rows(e), "Results"),
        Case("attribution_rows(tag)", lambda e: stats_reads.attribution_rows(e, tag=tag), "Results"),
        Case("record_vote + delete_vote", vote_and_undo, "write path"),
        Case("export_votes_csv", lambda e: export.export_votes_csv(e, io.StringIO()), "Results: download"),
    ]


def before_after(model: str) -> list[tuple[str, Case, Case]]:
    return [
        ("all_models", Case("before", before_all_models), Case("after", listing.all_models)),
        ("count_runs(model)", Case("before", lambda e: before_model_filter_count(e, model)),
         Case("after", lambda e: listing.count_runs(e, model=model))),
        ("attribution shares", Case("before", before_attribution_shares), Case("after", stats_reads.attribution_rows)),
        ("queue counts", Case("before", lambda e: before_queue_progress(e, ANNOTATOR)),
         Case("after", lambda e: votes_db.queue_counts(e, ANNOTATOR))),
        ("all_votes", Case("before", before_all_votes), Case("after", votes_db.all_votes)),
        ("is the vote cache still valid?", Case("before", before_votes_signature),
         Case("after", stats_reads.votes_signature)),
    ]


@dataclass
class Captured:
    statements: list[tuple[str, Any]] = field(default_factory=list)


def capture(engine: Engine, call: Callable[[Engine], Any]) -> Captured:
    """The SQL statements one call runs (transaction control and pragmas left out)."""
    seen = Captured()

    def hook(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if head not in ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "SAVEPOINT", "RELEASE"):
            seen.statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", hook)
    try:
        call(engine)
    finally:
        event.remove(engine, "before_cursor_execute", hook)
    return seen


def full_scans(engine: Engine, captured: Captured) -> list[str]:
    """Tables read in full by the SELECTs of a call, from the database's own query plan."""
    found: list[str] = []
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        for statement, params in captured.statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            cursor = raw.cursor()
            try:
                if engine.dialect.name == "sqlite":
                    cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
                    lines = [row[-1] for row in cursor.fetchall()]
                    # "SCAN t USING COVERING INDEX" reads an index only; "SCAN t" reads the table.
                    found += [ln for ln in lines if ln.startswith("SCAN") and "COVERING INDEX" not in ln]
                else:
                    cursor.execute("EXPLAIN " + statement, params)
                    found += [
                        re.sub(r"\s+\(cost=.*", "", row[0].strip(" ->"))
                        for row in cursor.fetchall()
                        if "Seq Scan" in row[0]
                    ]
            finally:
                cursor.close()
        raw.rollback()
    return sorted(set(found))


def timed(engine: Engine, call: Callable[[Engine], Any]) -> float:
    start = time.perf_counter()
    call(engine)
    return time.perf_counter() - start


def measure(engines: dict[str, Engine], all_cases: list[Case], repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds per case and database, runs interleaved so both see the same machine load."""
    samples: dict[str, dict[str, list[float]]] = {c.name: {k: [] for k in engines} for c in all_cases}
    for case in all_cases:
        for engine in engines.values():
            case.call(engine)  # warm: caches, compiled statements
        for _ in range(repeats):
            for key, engine in engines.items():
                samples[case.name][key].append(timed(engine, case.call))
    return {name: {k: statistics.median(v) for k, v in per.items()} for name, per in samples.items()}


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def bench_backend(label: str, urls: dict[str, str], made: make_big_db.EngineRuns, repeats: int,
                  log: Callable[[str], None], sizes: dict[str, int]) -> list[str]:
    built = {}
    for key, runs in sizes.items():
        votes = VOTES_PER_RUN * runs
        engine = init_db(urls[key])
        stored = listing.count_runs(engine), len(votes_db.all_votes(engine))
        engine.dispose()
        if stored == (runs, votes):  # kept from an earlier run with --workdir
            log(f"[{label}] reusing {key}: {runs} runs, {votes} votes")
            built[key] = make_big_db.Built(runs, votes, -1, -1, 0, 0.0, 0.0, 0.0, made.source)
            continue
        log(f"[{label}] filling {key}: {runs} runs, {votes} votes")
        built[key] = make_big_db.build(urls[key], runs=runs, votes=votes, made=made, progress=log)
    engines = {k: init_db(u) for k, u in urls.items()}
    for key, engine in engines.items():
        if built[key].identical < 0:
            built[key].identical = votes_db.queue_counts(engine, ANNOTATOR).identical
            built[key].not_blind = sum(not v.blind for v in votes_db.all_votes(engine))
    try:
        if engines["big"].dialect.name == "postgresql":
            with engines["big"].connect() as conn:  # what autovacuum does soon after a bulk load
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
            with engines["base"].connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        else:
            for engine in engines.values():
                with engine.connect() as conn:
                    conn.execute(text("ANALYZE"))
                    conn.commit()
        tag, model = "pilot", "gpt4_1106_preview"
        if not listing.list_runs(engines["big"], model=model, limit=1):
            model = listing.all_models(engines["big"])[0]
        # A run both databases hold (the first engine runs are saved into each under the same ids).
        run_id = votes_db.annotation_queue(engines["base"], ANNOTATOR, limit=1)[0]
        assert runs_db.run_exists(engines["big"], run_id)
        all_cases = cases(tag, model, run_id)
        log(f"[{label}] timing {len(all_cases)} queries x {repeats}")
        medians = measure(engines, all_cases, repeats)
        lines = [
            f"### {label}",
            "",
            f"Baseline: {built['base'].runs} runs, {built['base'].votes} votes; big: {built['big'].runs} runs, "
            f"{built['big'].votes} votes ({built['big'].identical} identical pairs, {built['big'].not_blind} votes "
            "not blind). Median of "
            f"{repeats}; ms.",
            "",
            "| query | page | SQL statements (base / big) | base | big | big / base | tables read in full (big) |",
            "|---|---|---|---|---|---|---|",
        ]
        for case in all_cases:
            n_base = len(capture(engines["base"], case.call).statements)
            cap = capture(engines["big"], case.call)
            scans = full_scans(engines["big"], cap) if case.name != "record_vote + delete_vote" else []
            m = medians[case.name]
            lines.append(
                f"| `{case.name}` | {case.note} | {n_base} / {len(cap.statements)} | {fmt_ms(m['base'])} | "
                f"{fmt_ms(m['big'])} | {m['big'] / m['base']:.2f}x | {'; '.join(scans) or 'none'} |"
            )
        lines += ["", f"Before / after on the big database ({label}):", "",
                  "| hot spot | before | after | after / before |", "|---|---|---|---|"]
        for name, before, after in before_after(model):
            pair = measure({"big": engines["big"]}, [before, after], repeats)
            b, a = pair["before"]["big"], pair["after"]["big"]
            lines.append(f"| {name} | {fmt_ms(b)} | {fmt_ms(a)} | {a / b:.2f}x |")
        lines.append("")
        return lines
    finally:
        for engine in engines.values():
            engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pg", action="store_true", help="also on a throw-away PostgreSQL cluster")
    parser.add_argument("--out", type=Path, help="write the results (markdown) here")
    parser.add_argument("--data", type=Path, help="folder with alpaca_eval_judged8.jsonl (default: shared/data)")
    parser.add_argument("--workdir", type=Path, help="keep the SQLite databases here and reuse them next time")
    parser.add_argument("--base-runs", type=int, default=500, help="runs of the baseline database (3 votes each)")
    parser.add_argument("--big-runs", type=int, default=5000, help="runs of the big database (3 votes each)")
    args = parser.parse_args(argv)
    sizes = {"base": args.base_runs, "big": args.big_runs}

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    made = make_big_db.make_engine_runs(real=min(300, args.big_runs), data=args.data, progress=log)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fusion-bench-db-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sections: list[str] = []
    try:
        sqlite_urls = {k: f"sqlite:///{workdir / f'{k}.db'}" for k in ("base", "big")}
        sections += bench_backend("SQLite", sqlite_urls, made, args.repeats, log, sizes)
        if args.pg:
            sys.path.insert(0, str(ROOT / "tests"))
            from pg_support import start_cluster

            cluster, pg_root = start_cluster()
            try:
                pg_urls = {k: cluster.new_database() for k in ("base", "big")}
                sections += bench_backend("PostgreSQL", pg_urls, made, args.repeats, log, sizes)
            finally:
                cluster.stop()
                shutil.rmtree(pg_root, ignore_errors=True)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    command = "python bench/storage_queries.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = [
        "# Storage queries on a team-sized database",
        "",
        f"Command: `.venv/bin/{command.strip()}`",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, 2 shared cores (other work running).",
        f"Data: {made.source}; {len(made.pool)} runs through the engine, reused (see bench/make_big_db.py).",
        f"Wall time of the whole benchmark: {time.perf_counter() - started:.0f} s.",
        "",
    ]
    report = "\n".join(header + sections)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Votes under concurrency: many threads and many processes voting on shared runs.

Invariants: exactly one row per (run, annotator); no vote lost (each annotator's final row holds the last
value it wrote); no write fails. Each test runs on SQLite and on PostgreSQL (``db_url``, tests/pg_support.py):
SQLite serialises writers with BEGIN IMMEDIATE, PostgreSQL's READ COMMITTED relies on the row locks
(SELECT ... FOR UPDATE / FOR SHARE) and the unique-race retry in storage.votes.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import sys
import threading
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from storage import runs as runs_db  # noqa: E402
from storage import votes as votes_db  # noqa: E402
from storage.migrations import init_db  # noqa: E402
from test_storage import make_run  # noqa: E402

CHOICES = ("A", "B", "tie", "both_bad")


def _pairs(engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT run_id, annotator, count(*) FROM votes GROUP BY run_id, annotator ORDER BY 1, 2")
            )
        ]


def _seed(engine, k: int) -> list[str]:
    ids = []
    for i in range(k):
        run = make_run(run_id=f"shared{i}", created_at=float(i))
        runs_db.save_run(engine, run)
        ids.append(run.id)
    return ids


def test_threads_each_last_write_wins(db_url):
    engine = init_db(db_url)
    run_ids = _seed(engine, 3)
    last: dict[tuple[str, str], tuple[str, str]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def annotate(name: str, seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        try:
            for i in range(20):
                run_id = run_ids[i % len(run_ids)]
                choice, a_is = rng.choice(CHOICES), rng.choice(("bon", "fused"))
                token = f"{name}-{i}" if i % 3 else None
                vote = votes_db.record_vote(engine, run_id=run_id, annotator=name, choice=choice, a_is=a_is,
                                     client_token=token)
                assert (vote.choice, vote.a_is, vote.annotator) == (choice, a_is, name)
                last[(run_id, name)] = (choice, a_is)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=annotate, args=(f"t{k}", k)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _pairs(engine) == [(r, f"t{k}", 1) for r in run_ids for k in range(6)]
    for (run_id, name), (choice, a_is) in last.items():
        stored = votes_db.get_vote(engine, run_id, name)
        assert (stored.choice, stored.a_is, stored.winner) == (choice, a_is, votes_db.winner_of(choice, a_is))
    engine.dispose()


def test_threads_racing_on_the_same_first_vote(db_url):
    """Several threads cast the first vote of one annotator at once: one row, holding the last commit."""
    engine = init_db(db_url)
    (run_id,) = _seed(engine, 1)
    start = threading.Barrier(8)
    results: list[votes_db.VoteRecord] = []
    errors: list[BaseException] = []

    def vote(k: int) -> None:
        start.wait()
        try:
            results.append(votes_db.record_vote(engine, run_id=run_id, annotator="same", choice=CHOICES[k % 4],
                                         a_is="fused", comment=f"thread {k}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=vote, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 8
    assert _pairs(engine) == [(run_id, "same", 1)]
    assert len({r.id for r in results}) == 1
    assert len({r.updated_at for r in results}) == 8  # every write was a distinct, ordered commit
    final = votes_db.get_vote(engine, run_id, "same")
    newest = max(results, key=lambda r: r.updated_at)
    assert (final.comment, final.choice, final.updated_at) == (newest.comment, newest.choice, newest.updated_at)
    assert final.created_at == min(r.created_at for r in results)
    engine.dispose()


def _run_processes(target, arg_lists: list[tuple]) -> list:
    """Start one spawned process per argument tuple, release them together, return their results in order."""
    ctx = mp.get_context("spawn")  # a fresh interpreter per process: no engine or lock inherited
    barrier = ctx.Barrier(len(arg_lists))
    results = ctx.Queue()
    procs = [ctx.Process(target=_entry, args=(target, k, barrier, results, args)) for k, args in enumerate(arg_lists)]
    for p in procs:
        p.start()
    collected = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    failures = {k: v for k, v in collected.items() if isinstance(v, str) and v.startswith("ERROR")}
    assert failures == {}
    return [collected[k] for k in range(len(arg_lists))]


def _entry(target, k: int, barrier, results, args: tuple) -> None:
    try:
        # Imports and engine set-up happen before the barrier, so the work itself overlaps.
        results.put((k, target(*args, barrier=barrier)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        results.put((k, f"ERROR {type(exc).__name__}: {exc}"))


def _process_worker(url: str, name: str, run_ids: list[str], rounds: int, seed: int, *, barrier) -> dict:
    """Runs in a child process: its own engine, votes as ``name`` and also as the shared annotator."""
    engine = init_db(url)
    barrier.wait(timeout=60)
    rng = random.Random(seed)
    own: dict[str, tuple[str, str, str | None]] = {}
    shared: list[tuple[float, str, str]] = []
    for i in range(rounds):
        run_id = run_ids[i % len(run_ids)]
        choice, a_is = rng.choice(CHOICES), rng.choice(("bon", "fused"))
        comment = f"{name} round {i}"
        token = f"{name}:{i}"
        votes_db.record_vote(engine, run_id=run_id, annotator=name, choice=choice, a_is=a_is, comment=comment,
                      client_token=token)
        # A resubmission of the same form must change nothing.
        votes_db.record_vote(engine, run_id=run_id, annotator=name, choice="both_bad", a_is="bon", client_token=token)
        own[run_id] = (choice, a_is, comment)
        vote = votes_db.record_vote(engine, run_id=run_ids[0], annotator="everyone", choice=choice, a_is=a_is,
                             comment=comment)
        shared.append((vote.updated_at, vote.choice, vote.comment))
    engine.dispose()
    return {"own": own, "shared": shared}


def test_processes_no_lost_and_no_duplicated_votes(db_url):
    url = db_url
    engine = init_db(url)
    run_ids = _seed(engine, 3)
    names = [f"p{k}" for k in range(4)]
    outcomes = _run_processes(_process_worker, [(url, n, run_ids, 25, k) for k, n in enumerate(names)])
    expected_pairs = sorted([(r, n, 1) for r in run_ids for n in names] + [(run_ids[0], "everyone", 1)])
    assert _pairs(engine) == expected_pairs
    for name, outcome in zip(names, outcomes):
        for run_id, (choice, a_is, comment) in outcome["own"].items():
            stored = votes_db.get_vote(engine, run_id, name)
            assert (stored.choice, stored.a_is, stored.comment) == (choice, a_is, comment)
    # The shared annotator's row holds whichever write committed last across all processes.
    writes = [w for outcome in outcomes for w in outcome["shared"]]
    assert len(writes) == 4 * 25 and len({w[0] for w in writes}) == len(writes)
    newest = max(writes)
    final = votes_db.get_vote(engine, run_ids[0], "everyone")
    assert (final.updated_at, final.choice, final.comment) == newest
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("SELECT count(*) FROM vote_tokens")).scalar_one() == 4 * 25
    engine.dispose()


def _migrate_worker(url: str, *, barrier) -> list[str]:
    from storage.migrations import applied_migrations

    barrier.wait(timeout=60)
    engine = init_db(url)
    ids = applied_migrations(engine)
    engine.dispose()
    return ids


def test_processes_starting_at_once_migrate_once(db_url):
    url = db_url  # a new, empty database
    results = _run_processes(_migrate_worker, [(url,)] * 4)
    from storage.migrations import MIGRATIONS

    expected = [m.id for m in MIGRATIONS]
    assert results == [expected] * 4
    engine = init_db(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM schema_migrations")).scalar_one() == len(expected)
    engine.dispose()


# ----------------------------------------------------------------------------------------------------------
# Read-then-write races made deterministic: one writer is held inside its transaction while another runs.


class _HeldClock:
    """Stands in for the ``time`` module in storage.votes: the first ``time()`` call in the thread named
    ``held`` waits (up to ``hold_s``) for ``release``. Everything else is the real module."""

    def __init__(self, release: threading.Event, hold_s: float) -> None:
        self.release, self.hold_s, self.held_once = release, hold_s, False

    def time(self) -> float:
        import time as real

        now = real.time()
        if threading.current_thread().name == "held" and not self.held_once:
            self.held_once = True
            self.release.wait(self.hold_s)
        return now

    def __getattr__(self, name: str):
        import time as real

        return getattr(real, name)


def test_a_replacement_held_mid_transaction_is_not_overtaken(db_url, monkeypatch):
    """Vote A has read the stored vote and taken its timestamp when vote B arrives. B must wait for A (the row
    lock; on SQLite the write lock) and commit after it, stamped later; without the lock, B would commit
    first and A would overwrite it with an older timestamp than the one B returned."""
    engine = init_db(db_url)
    (run_id,) = _seed(engine, 1)
    votes_db.record_vote(engine, run_id=run_id, annotator="ann", choice="tie", a_is="fused")
    b_done = threading.Event()
    monkeypatch.setattr(votes_db, "time", _HeldClock(b_done, hold_s=1.5))
    out: dict[str, votes_db.VoteRecord] = {}
    errors: list[BaseException] = []

    def vote(label: str, choice: str) -> None:
        try:
            out[label] = votes_db.record_vote(engine, run_id=run_id, annotator="ann", choice=choice, a_is="fused")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        if label == "B":
            b_done.set()

    a = threading.Thread(target=vote, args=("A", "A"), name="held")
    a.start()
    while not votes_db.time.held_once:  # A is inside its transaction, holding its timestamp
        threading.Event().wait(0.005)
    b = threading.Thread(target=vote, args=("B", "B"), name="other")
    b.start()
    a.join()
    b.join()
    assert errors == []
    final = votes_db.get_vote(engine, run_id, "ann")
    assert out["B"].updated_at > out["A"].updated_at
    assert (final.choice, final.updated_at) == ("B", out["B"].updated_at)
    engine.dispose()


def test_a_vote_held_mid_transaction_cannot_miss_a_new_pair(db_url, monkeypatch):
    """A vote has checked the run's pair when the run is re-saved with another fused text. The re-save must
    wait for the vote and then remove it (it judged texts that are gone); without the run lock it would
    replace the pair first and the vote would be stored against texts its voter never saw."""
    engine = init_db(db_url)
    (run_id,) = _seed(engine, 1)
    saved = threading.Event()
    monkeypatch.setattr(votes_db, "time", _HeldClock(saved, hold_s=1.5))
    errors: list[BaseException] = []

    def vote() -> None:
        try:
            votes_db.record_vote(engine, run_id=run_id, annotator="ann", choice="A", a_is="fused")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def resave() -> None:
        try:
            run = runs_db.load_run(engine, run_id)
            run.fused.text = "A rewritten fused answer."
            runs_db.save_run(engine, run)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        saved.set()

    a = threading.Thread(target=vote, name="held")
    a.start()
    while not votes_db.time.held_once:
        threading.Event().wait(0.005)
    b = threading.Thread(target=resave, name="other")
    b.start()
    a.join()
    b.join()
    assert errors == []
    assert runs_db.load_run(engine, run_id).fused.text == "A rewritten fused answer."
    assert votes_db.votes_for_run(engine, run_id) == []
    engine.dispose()

"""Issue 10, defects 1 and 2, on SQLite and on PostgreSQL (``db_url``, tests/pg_support.py).

1. NUL: PostgreSQL text cannot hold it. Every text is stored with NUL as U+FFFD on both databases
   (``storage.sql.valid_text``), so a batch line or a comment with NUL saves, and a re-run of the
   batch finds its runs instead of failing the same way forever.
2. A vote's ``updated_at`` never goes backwards: under READ COMMITTED the new stamp must come from the row
   as locked (``SELECT ... FOR UPDATE`` in ``storage.votes._find_vote``). A trigger logs every update of
   the vote in the order the updates happened (a serial id taken while the row lock is held); the stamps
   in that order must rise strictly.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion.cli import main  # noqa: E402
from storage import listing, runs, votes  # noqa: E402
from storage.migrations import init_db  # noqa: E402
from test_storage import make_run  # noqa: E402

PARIS = [
    "Paris is the capital of France. It lies on the Seine.",
    "The capital of France is Paris, a city on the Seine river.",
    "Paris is the capital of France. It has about two million inhabitants.",
]


def test_batch_line_with_nul_is_saved_and_a_rerun_finds_it(db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("FUSION_DB_PATH", raising=False)
    src, out = tmp_path / "in.jsonl", tmp_path / "runs.jsonl"
    lines = [
        {"id": "nul1", "prompt": "Capital\u0000 of France?", "candidates": [PARIS[0] + "\u0000", *PARIS[1:]],
         "tags": ["t\u0000ag"]},
        {"id": "plain", "prompt": "Capital of France, again?", "candidates": PARIS},
    ]  # fmt: skip
    src.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")  # \u0000 escapes
    assert "\\u0000" in src.read_text(encoding="utf-8")

    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    engine = init_db(db_url)
    records = {r["input_id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert set(records) == {"nul1", "plain"}
    run = runs.load_run(engine, records["nul1"]["id"])
    assert run is not None and run.prompt.text == "Capital\ufffd of France?"
    assert run.candidates[0].text == PARIS[0] + "\ufffd" and run.tags == ["t\ufffdag"]

    # The advice after an interruption is "run the same command again": it must find the runs, not fail.
    capsys.readouterr()
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    again = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in records.values())  # nothing twice
    assert listing.count_runs(engine) == 2
    engine.dispose()


def test_batch_output_line_matches_the_stored_run_when_the_input_has_nul(tmp_path, monkeypatch):
    db = tmp_path / "fusion.db"
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FUSION_DB_PATH", str(db))
    src, out = tmp_path / "in.jsonl", tmp_path / "runs.jsonl"
    src.write_text(json.dumps({"prompt": "Capital\u0000 of France?", "candidates": PARIS}) + "\n", encoding="utf-8")
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    (line,) = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    engine = init_db(f"sqlite:///{db}")
    try:
        assert line["prompt"]["text"] == runs.load_run(engine, line["id"]).prompt.text
    finally:
        engine.dispose()


def test_vote_comment_and_annotator_with_nul(db_url):
    engine = init_db(db_url)
    run = make_run(run_id="nulvote")
    runs.save_run(engine, run)
    vote = votes.record_vote(engine, run_id=run.id, annotator="a\x00nn", choice="A", a_is="fused", comment="a\x00b")
    assert (vote.annotator, vote.comment) == ("a\ufffdnn", "a\ufffdb")
    stored = votes.get_vote(engine, run.id, "a\ufffdnn")
    assert stored is not None and stored.comment == "a\ufffdb"
    # The voter's own name, typed with the NUL again, finds the same vote (scrubbed the same way).
    replaced = votes.record_vote(engine, run_id=run.id, annotator="a\x00nn", choice="B", a_is="fused", comment="x\x00")
    assert replaced.id == vote.id and replaced.comment == "x\ufffd"
    assert [v.annotator for v in votes.all_votes(engine)] == ["a\ufffdnn"]
    engine.dispose()


def _log_vote_updates(engine) -> None:
    """A table filled by a trigger with (order of the update, the vote's new updated_at) on every update."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("CREATE TABLE vote_log (seq BIGSERIAL PRIMARY KEY, vote_id INTEGER, stamp DOUBLE PRECISION)"))
            conn.execute(text(
                "CREATE FUNCTION log_vote() RETURNS trigger AS $$ BEGIN "
                "INSERT INTO vote_log (vote_id, stamp) VALUES (NEW.id, NEW.updated_at); RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            ))  # fmt: skip
            conn.execute(text("CREATE TRIGGER vote_logged AFTER UPDATE ON votes FOR EACH ROW EXECUTE FUNCTION log_vote()"))
        else:
            conn.execute(text("CREATE TABLE vote_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, vote_id INTEGER, stamp REAL)"))
            conn.execute(text(
                "CREATE TRIGGER vote_logged AFTER UPDATE ON votes BEGIN "
                "INSERT INTO vote_log (vote_id, stamp) VALUES (NEW.id, NEW.updated_at); END"
            ))  # fmt: skip


def test_updated_at_never_goes_backwards_under_racing_replacements(db_url):
    engine = init_db(db_url)
    run = make_run(run_id="race")
    runs.save_run(engine, run)
    first = votes.record_vote(engine, run_id=run.id, annotator="same", choice="A", a_is="fused")
    _log_vote_updates(engine)
    threads_n, rounds = 8, 20
    start = threading.Barrier(threads_n)
    results: list[votes.VoteRecord] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def replace(k: int) -> None:
        start.wait()
        try:
            for i in range(rounds):
                vote = votes.record_vote(engine, run_id=run.id, annotator="same", choice=("A", "B", "tie")[(k + i) % 3],
                                     a_is="fused", comment=f"thread {k} round {i}")  # fmt: skip
                with lock:
                    results.append(vote)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=replace, args=(k,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == threads_n * rounds

    with engine.connect() as conn:
        logged = [row[1] for row in conn.execute(text("SELECT seq, stamp FROM vote_log ORDER BY seq"))]
    assert len(logged) == threads_n * rounds  # every replacement was one update of the one row
    backwards = [(a, b) for a, b in zip(logged, logged[1:]) if not b > a]
    assert backwards == [], f"{len(backwards)} updates stamped no later than the one before"
    assert logged[0] > first.updated_at
    # The stored vote is the last update, and it is no replacement of some earlier state.
    final = votes.get_vote(engine, run.id, "same")
    newest = max(results, key=lambda r: r.updated_at)
    assert final.updated_at == logged[-1] == newest.updated_at and final.comment == newest.comment
    assert final.created_at == first.created_at
    engine.dispose()


def test_the_order_check_can_fail(db_url):
    """The trigger log sees a stamp that goes backwards (written directly, as the old code could)."""
    engine = init_db(db_url)
    run = make_run(run_id="back")
    runs.save_run(engine, run)
    vote = votes.record_vote(engine, run_id=run.id, annotator="x", choice="A", a_is="fused")
    _log_vote_updates(engine)
    with engine.begin() as conn:
        for stamp in (vote.updated_at + 2, vote.updated_at + 1):
            conn.execute(text("UPDATE votes SET updated_at = :s WHERE id = :i"), {"s": stamp, "i": vote.id})
    with engine.connect() as conn:
        logged = [row[0] for row in conn.execute(text("SELECT stamp FROM vote_log ORDER BY seq"))]
    assert logged == pytest.approx([vote.updated_at + 2, vote.updated_at + 1])
    assert not logged[1] > logged[0]
    engine.dispose()

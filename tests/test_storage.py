"""Storage: engine set-up, migrations, run round-trips, filters, deletes, votes (single process).

Tests that take ``engine`` run twice, on SQLite and on PostgreSQL (``db_url`` in tests/pg_support.py);
those about SQLite's own set-up (pragmas, BEGIN IMMEDIATE, the file's bytes) take ``sqlite_engine``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from fusion.errors import InputError
from fusion.types import (
    Attribution,
    BestOfN,
    Candidate,
    FusedOutput,
    ModelSpec,
    Prompt,
    Run,
    SamplingSettings,
    SourceRef,
    Span,
)
from storage import listing
from storage import runs as runs_db
from storage import votes as votes_db
from storage.db import READ_ONLY, database_url, make_engine
from storage.migrations import MIGRATIONS, Migration, applied_migrations, init_db, migrate

# ----------------------------------------------------------------------------------------------------------
# Factories (also imported by test_votes_concurrency and test_export)

_counter = iter(range(1_000_000))


def make_candidates(texts: list[str], models: list[str] | None = None, failed: tuple[int, ...] = ()) -> list[Candidate]:
    models = models or ["m/alpha"] * len(texts)
    return [
        Candidate(
            index=i,
            text="" if i in failed else t,
            model=models[i],
            sample_index=i,
            latency_s=0.25 * (i + 1),
            prompt_tokens=10 + i,
            completion_tokens=None if i in failed else 20 + i,
            error="RateLimitError: slow down" if i in failed else None,
            cached=i % 2 == 1,
        )
        for i, t in enumerate(texts)
    ]


def make_run(
    *,
    prompt: str = "What is the capital of France?",
    system: str | None = None,
    texts: list[str] | None = None,
    models: list[str] | None = None,
    failed: tuple[int, ...] = (),
    bon_index: int | None = 0,
    fused_text: str | None = "Paris is the capital of France.",
    tags: list[str] | None = None,
    source: str = "live",
    created_at: float | None = None,
    run_id: str | None = None,
    api_key: str | None = None,
) -> Run:
    texts = texts if texts is not None else ["Paris.", "It is Paris, on the Seine.", "Lyon."]
    cands = make_candidates(texts, models, failed)
    pool_models = list(dict.fromkeys(c.model for c in cands))
    pool = [ModelSpec(model=m, samples=sum(c.model == m for c in cands), api_key=api_key) for m in pool_models]
    bon = None
    if bon_index is not None or texts:
        bon = BestOfN(
            index=bon_index,
            scores=[0.9 if i == bon_index else 0.1 * i for i in range(len(cands))],
            method="consensus",
            notes=[None if i != 1 else "second" for i in range(len(cands))],
            error=None if bon_index is not None else "no usable candidate",
        )
    fused = attribution = None
    if fused_text is not None:
        fused = FusedOutput(
            text=fused_text, method="llm:m/fusor", model="m/fusor", template="default",
            order=list(reversed(range(len(cands)))), seed=7, latency_s=1.5,
        )
        cut = min(5, len(fused_text))
        attribution = Attribution(
            spans=[Span(0, cut, (SourceRef(0, 0, cut),)), Span(cut, len(fused_text), ())],
            shares=[cut / max(1, len(fused_text))] + [0.0] * (len(cands) - 1),
            copied_fraction=cut / max(1, len(fused_text)),
        )
    n = next(_counter)
    return Run(
        prompt=Prompt(prompt, system),
        candidates=cands,
        pool=pool,
        settings=SamplingSettings(temperature=0.7, seed=3, max_tokens=256),
        bon=bon,
        fused=fused,
        attribution=attribution,
        tags=list(tags or []),
        id=run_id or f"run{n:06d}",
        source=source,
        created_at=created_at if created_at is not None else 1_700_000_000.0 + n,
    )


@pytest.fixture()
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "fusion.db"


@pytest.fixture()
def sqlite_engine(db_path: Path):
    eng = init_db(f"sqlite:///{db_path}")
    yield eng
    eng.dispose()


@pytest.fixture()
def engine(db_url: str):
    eng = init_db(db_url)
    yield eng
    eng.dispose()


# ----------------------------------------------------------------------------------------------------------
# Engine and URL


def test_database_url_prefers_database_url_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("FUSION_DB_PATH", str(tmp_path / "ignored.db"))
    assert database_url() == "postgresql+psycopg://u@h/db"


def test_database_url_uses_fusion_db_path_and_creates_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    target = tmp_path / "a" / "b" / "x.db"
    monkeypatch.setenv("FUSION_DB_PATH", str(target))
    assert database_url() == f"sqlite:///{target.resolve()}"
    assert target.parent.is_dir()


def test_database_url_default_is_repo_data_folder(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("FUSION_DB_PATH", raising=False)
    url = database_url()
    assert url.startswith("sqlite:///") and url.endswith("/data/fusion.db")
    assert Path(url.removeprefix("sqlite:///")).parent == Path(__file__).resolve().parents[1] / "data"


def test_sqlite_pragmas_on_every_connection(sqlite_engine):
    engine = sqlite_engine
    for _ in range(2):  # two pooled connections, each configured on connect (b reads, so a's lock is no bar)
        with engine.connect() as a, engine.connect().execution_options(**{READ_ONLY: True}) as b:
            for conn in (a, b):
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_write_transactions_are_immediate(sqlite_engine, db_path):
    """While an engine transaction is open (even before it writes), another writer cannot start."""
    engine = sqlite_engine
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
        other = sqlite3.connect(db_path, timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()


def test_read_then_write_loses_no_update_under_threads(sqlite_engine):
    # SQLite only: plain read-then-write is safe there because of BEGIN IMMEDIATE; PostgreSQL's READ
    # COMMITTED needs SELECT ... FOR UPDATE, which the vote tests exercise on both databases.
    engine = sqlite_engine
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
    errors: list[BaseException] = []

    def bump(times: int) -> None:
        try:
            for _ in range(times):
                with engine.begin() as conn:
                    v = conn.execute(text("SELECT v FROM counter WHERE id = 1")).scalar_one()
                    conn.execute(text("UPDATE counter SET v = :v WHERE id = 1"), {"v": v + 1})
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(40,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT v FROM counter")).scalar_one() == 160


def test_make_engine_creates_parent_folder(tmp_path):
    path = tmp_path / "deep" / "er" / "db.sqlite"
    eng = make_engine(f"sqlite:///{path}")
    with eng.connect() as conn:
        conn.execute(text("SELECT 1"))
    eng.dispose()
    assert path.exists()


# ----------------------------------------------------------------------------------------------------------
# Migrations


def test_migrations_recorded_once_and_idempotent(engine):
    ids = [m.id for m in MIGRATIONS]
    assert applied_migrations(engine) == ids
    assert migrate(engine) == []
    assert migrate(engine) == []
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, description FROM schema_migrations ORDER BY id")).all()
    assert [r[0] for r in rows] == sorted(ids)
    assert all(r[1] for r in rows)


def test_new_migration_applies_only_itself(engine):
    extra = Migration("9999_test", "add a scratch table", ["CREATE TABLE scratch (x INTEGER)"])
    assert migrate(engine, [*MIGRATIONS, extra]) == ["9999_test"]
    assert migrate(engine, [*MIGRATIONS, extra]) == []
    assert "scratch" in inspect(engine).get_table_names()


def test_failing_migration_leaves_nothing_half_applied(engine):
    bad = [
        Migration("9998_ok", "fine on its own", ["CREATE TABLE half (x INTEGER)"]),
        Migration("9999_bad", "broken", ["CREATE TABLE broken (x INTEGER"]),
    ]
    with pytest.raises(Exception):
        migrate(engine, [*MIGRATIONS, *bad])
    assert "half" not in inspect(engine).get_table_names()
    assert "9998_ok" not in applied_migrations(engine)


def test_duplicate_migration_ids_refused(engine):
    with pytest.raises(ValueError, match="Duplicate"):
        migrate(engine, [*MIGRATIONS, MIGRATIONS[0]])


def _schema(insp, table: str) -> dict:
    cols = {c["name"]: bool(c["nullable"]) for c in insp.get_columns(table)}
    fks = sorted(
        (tuple(f["constrained_columns"]), f["referred_table"], (f.get("options") or {}).get("ondelete"))
        for f in insp.get_foreign_keys(table)
    )
    uniques = sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table))
    indexes = sorted((i["name"], tuple(i["column_names"])) for i in insp.get_indexes(table) if not i.get("unique"))
    return {
        "columns": cols,
        "pk": sorted(insp.get_pk_constraint(table)["constrained_columns"]),
        "fks": fks,
        "uniques": uniques,
        "indexes": indexes,
    }


def test_migrated_schema_matches_sqlmodel_tables(engine, request, tmp_path):
    """The frozen migrations and storage.tables must describe the same schema (on each database)."""
    if engine.dialect.name == "postgresql":
        reference = make_engine(request.getfixturevalue("pg_cluster").new_database())
    else:
        reference = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    SQLModel.metadata.create_all(reference)
    migrated, expected = inspect(engine), inspect(reference)
    assert sorted(migrated.get_table_names()) == sorted(expected.get_table_names())
    for table in expected.get_table_names():
        assert _schema(migrated, table) == _schema(expected, table), table
    reference.dispose()


# ----------------------------------------------------------------------------------------------------------
# Runs


def test_run_round_trip_exact(engine):
    run = make_run(tags=["eval", "fr"], system="Answer briefly.")
    assert runs_db.save_run(engine, run) == run.id
    loaded = runs_db.load_run(engine, run.id)
    assert loaded is not None
    assert loaded.to_dict() == run.to_dict()
    assert isinstance(loaded.candidates[1].cached, bool) and loaded.candidates[1].cached is True


def test_round_trip_with_failed_candidates_and_no_pick(engine):
    run = make_run(texts=["", "", "x"], failed=(0, 1), bon_index=None, fused_text=None)
    runs_db.save_run(engine, run)
    loaded = runs_db.load_run(engine, run.id)
    assert loaded.to_dict() == run.to_dict()
    assert [c.error for c in loaded.candidates][:2] == ["RateLimitError: slow down"] * 2
    assert loaded.bon.index is None and loaded.bon.error == "no usable candidate"
    assert loaded.fused is None and loaded.attribution is None


def test_round_trip_bare_run(engine):
    run = Run(prompt=Prompt("only a prompt"), id="bare")
    runs_db.save_run(engine, run)
    assert runs_db.load_run(engine, "bare").to_dict() == run.to_dict()


def test_round_trip_unicode_and_huge_text(engine):
    huge = "Ünïcødé 東京 🚀 \u200b<script>alert(1)</script> " * 8_000  # ~370k chars
    run = make_run(
        prompt="日本語で答えてください。 «Quel temps?»",
        texts=[huge, "Ελληνικά", "עברית"],
        fused_text=huge[:-7] + "🎉",
        tags=["ünï", "東京"],
    )
    runs_db.save_run(engine, run)
    loaded = runs_db.load_run(engine, run.id)
    assert loaded.to_dict() == run.to_dict()
    assert len(loaded.candidates[0].text) == len(huge)


def test_nul_becomes_replacement_character_on_every_database(engine):
    """PostgreSQL text cannot hold NUL; SQLite could, but both store U+FFFD so a run reads back the same."""
    run = make_run(prompt="a \u0000 null byte", texts=["x\x00y", "b", "c"], fused_text="f\x00", tags=["t\x00"])
    runs_db.save_run(engine, run)
    loaded = runs_db.load_run(engine, run.id)
    assert loaded.prompt.text == "a \ufffd null byte"
    assert loaded.candidates[0].text == "x\ufffdy" and loaded.fused.text == "f\ufffd"
    assert loaded.tags == ["t\ufffd"]
    vote = votes_db.record_vote(engine, run_id=run.id, annotator="n\x00m", choice="A", a_is="fused", comment="c\x00")
    assert (vote.annotator, vote.comment) == ("n\ufffdm", "c\ufffd")
    assert _ids(listing.list_runs(engine, text="\x00")) == [run.id]  # a typed NUL is scrubbed like stored text


def test_lone_surrogate_is_replaced_not_fatal(engine):
    run = make_run(texts=["ok \ud800 broken", "fine", "x"], fused_text="fused \udfff")
    runs_db.save_run(engine, run)
    loaded = runs_db.load_run(engine, run.id)
    assert loaded.candidates[0].text == "ok \ufffd broken"
    assert loaded.fused.text == "fused \ufffd"


def test_nan_score_survives(engine):
    run = make_run()
    run.bon.scores[2] = float("nan")
    runs_db.save_run(engine, run)
    score = runs_db.load_run(engine, run.id).bon.scores[2]
    assert score != score  # NaN


def test_load_missing_run_is_none(engine):
    assert runs_db.load_run(engine, "nope") is None


def test_saving_twice_keeps_one_run_with_new_content(engine):
    run = make_run(tags=["a", "b"])
    runs_db.save_run(engine, run)
    run.tags = ["b", "c"]
    run.candidates = run.candidates[:2]
    run.bon.scores = run.bon.scores[:2]
    runs_db.save_run(engine, run)
    assert listing.count_runs(engine) == 1
    loaded = runs_db.load_run(engine, run.id)
    assert loaded.to_dict() == run.to_dict()
    assert listing.all_tags(engine) == ["b", "c"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM candidates")).scalar_one() == 2


def test_duplicate_tags_stored_once_in_order(engine):
    run = make_run(tags=["z", "a", "z"])
    runs_db.save_run(engine, run)
    assert runs_db.load_run(engine, run.id).tags == ["z", "a"]


def test_save_refuses_empty_id(engine):
    with pytest.raises(InputError):
        runs_db.save_run(engine, make_run(run_id=" "))


def _every_stored_value(engine) -> str:
    """Every row of every table, as text: what a dump of the database would show."""
    out = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            out += [repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{table}"'))]
    return "\n".join(out)


def test_api_key_is_in_no_table(engine):
    secret = "sk-test-SECRET-5d1f0c"
    run = make_run(api_key=secret)
    runs_db.save_run(engine, run)
    votes_db.record_vote(engine, run_id=run.id, annotator="ann", choice="A", a_is="fused")
    dump = _every_stored_value(engine)
    assert run.id in dump and "m/alpha" in dump  # the dump does hold the run
    assert secret not in dump


def test_api_key_is_nowhere_in_the_database(sqlite_engine, db_path):
    engine = sqlite_engine
    secret = "sk-test-SECRET-5d1f0c"
    run = make_run(api_key=secret)
    assert run.pool[0].api_key == secret
    runs_db.save_run(engine, run)
    votes_db.record_vote(engine, run_id=run.id, annotator="ann", choice="A", a_is="fused")
    assert runs_db.load_run(engine, run.id).pool[0].api_key is None
    engine.dispose()
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    assert db_path in files
    for path in files:  # main file, -wal and -shm
        assert secret.encode() not in path.read_bytes()


def _seed(engine) -> dict[str, Run]:
    runs = {
        "old_fr": make_run(prompt="Capital of France?", tags=["geo", "fr"], created_at=1_000.0,
                           models=["openai/gpt-4o", "openai/gpt-4o", "cohere/command-a"]),
        "mid_math": make_run(prompt="What is 17*3?", texts=["51", "51", "52", "50"], tags=["math"],
                             created_at=2_000.0, source="scenario:math-1", models=["m/a", "m/b", "m/a", "m/a"],
                             fused_text="17*3 = 51."),
        "new_cjk": make_run(prompt="東京はどこ？", system="Be brief", tags=["geo"], created_at=3_000.0,
                            source="batch", fused_text="Tokyo is in ÉCOLE 100%_done"),
        "supplied": make_run(prompt="plain", texts=["a", "b"], models=["supplied", "supplied"],
                             created_at=4_000.0, source="supplied", fused_text=None),
    }
    for run_id, run in runs.items():
        runs_db.save_run(engine, run.with_id(run_id))
    return runs


def _ids(summaries) -> list[str]:
    return [s.id for s in summaries]


def test_list_runs_newest_first_with_summary_fields(engine):
    _seed(engine)
    rows = listing.list_runs(engine)
    assert _ids(rows) == ["supplied", "new_cjk", "mid_math", "old_fr"]
    old = rows[-1]
    assert old.models == ["openai/gpt-4o", "cohere/command-a"]
    assert old.tags == ["geo", "fr"] and old.n == 3 and old.bon_index == 0
    assert old.fused_method == "llm:m/fusor" and old.copied_fraction == pytest.approx(5 / 31)
    assert old.has_pick and old.has_fusion and old.n_votes == 0
    assert not rows[0].has_fusion


def test_list_runs_filters(engine):
    _seed(engine)
    assert _ids(listing.list_runs(engine, tag="geo")) == ["new_cjk", "old_fr"]
    assert _ids(listing.list_runs(engine, tag="missing")) == []
    assert _ids(listing.list_runs(engine, model="openai/gpt-4o")) == ["old_fr"]
    assert _ids(listing.list_runs(engine, model="cohere/command-a")) == ["old_fr"]
    assert _ids(listing.list_runs(engine, model="openai/gpt-4")) == []  # whole names only
    # A scenario's run is listed under its scenario, not under the models of its candidates.
    assert _ids(listing.list_runs(engine, model="scenario:math-1")) == ["mid_math"]
    assert _ids(listing.list_runs(engine, model="m/a")) == []
    assert listing.count_runs(engine, model="scenario:math-1") == 1 and listing.count_runs(engine, model="m/alpha") == 1
    assert _ids(listing.list_runs(engine, n=4)) == ["mid_math"]
    assert _ids(listing.list_runs(engine, source="scenario")) == ["mid_math"]
    assert _ids(listing.list_runs(engine, source="scenario:math-1")) == ["mid_math"]
    assert _ids(listing.list_runs(engine, source="scen")) == []
    assert _ids(listing.list_runs(engine, since=2_000.0, until=3_000.0)) == ["new_cjk", "mid_math"]
    since = datetime.fromtimestamp(3_500.0, tz=timezone.utc)
    assert _ids(listing.list_runs(engine, since=since)) == ["supplied"]
    assert _ids(listing.list_runs(engine, tag="geo", since=2_500.0)) == ["new_cjk"]


def test_text_filter_is_case_insensitive_and_literal(engine):
    _seed(engine)
    assert _ids(listing.list_runs(engine, text="capital OF")) == ["old_fr"]
    assert _ids(listing.list_runs(engine, text="東京")) == ["new_cjk"]
    assert _ids(listing.list_runs(engine, text="école")) == ["new_cjk"]  # fused text, non-ASCII case folding
    assert _ids(listing.list_runs(engine, text="be BRIEF")) == ["new_cjk"]  # system message
    assert _ids(listing.list_runs(engine, text="100%_")) == ["new_cjk"]
    assert _ids(listing.list_runs(engine, text="%")) == ["new_cjk"]  # a literal percent sign, not a wildcard
    assert _ids(listing.list_runs(engine, text="_")) == ["new_cjk"]


def test_paging_and_count(engine):
    _seed(engine)
    assert _ids(listing.list_runs(engine, limit=2)) == ["supplied", "new_cjk"]
    assert _ids(listing.list_runs(engine, limit=2, offset=2)) == ["mid_math", "old_fr"]
    assert listing.list_runs(engine, limit=2, offset=4) == []
    assert listing.count_runs(engine) == 4
    assert listing.count_runs(engine, tag="geo") == 2
    assert listing.count_runs(engine, text="zzz") == 0


def test_all_tags_and_models(engine):
    _seed(engine)
    assert listing.all_tags(engine) == ["fr", "geo", "math"]
    assert listing.all_models(engine) == ["cohere/command-a", "m/alpha", "openai/gpt-4o", "scenario:math-1", "supplied"]


def test_delete_cascades_to_every_child_table(engine):
    runs = _seed(engine)
    votes_db.record_vote(engine, run_id="old_fr", annotator="ann", choice="A", a_is="fused", client_token="t1")
    votes_db.record_vote(engine, run_id="mid_math", annotator="ann", choice="B", a_is="fused")
    assert runs_db.delete_run(engine, "old_fr") is True
    assert runs_db.delete_run(engine, "old_fr") is False
    assert runs_db.load_run(engine, "old_fr") is None
    with engine.connect() as conn:
        for table in ("candidates", "picks", "fusions", "run_tags", "run_model_groups", "votes", "vote_tokens"):
            left = conn.execute(text(f"SELECT count(*) FROM {table} WHERE run_id = 'old_fr'")).scalar_one()
            assert left == 0, table
        assert conn.execute(text("SELECT count(*) FROM votes")).scalar_one() == 1
    assert runs_db.load_run(engine, "mid_math").to_dict() == runs["mid_math"].with_id("mid_math").to_dict()
    assert listing.all_tags(engine) == ["geo", "math"]


# ----------------------------------------------------------------------------------------------------------
# Votes


def test_winner_derivation():
    assert votes_db.winner_of("A", "fused") == "fused"
    assert votes_db.winner_of("A", "bon") == "bon"
    assert votes_db.winner_of("B", "fused") == "bon"
    assert votes_db.winner_of("B", "bon") == "fused"
    assert votes_db.winner_of("tie", "bon") == "tie"
    assert votes_db.winner_of("both_bad", "fused") == "both_bad"


def test_record_vote_stores_and_joins_run_facts(engine):
    run = make_run(tags=["geo"])
    runs_db.save_run(engine, run)
    vote = votes_db.record_vote(engine, run_id=run.id, annotator="  alice ", choice="B", a_is="bon",
                         comment=" clearer ", ranking=[1, 0, 2], client_token="tok-1")
    assert (vote.annotator, vote.choice, vote.a_is, vote.winner) == ("alice", "B", "bon", "fused")
    assert vote.comment == "clearer" and vote.ranking == [1, 0, 2] and vote.client_token == "tok-1"
    assert vote.n == 3 and vote.tags == ["geo"] and vote.models == ["m/alpha"] and vote.bon_index == 0
    assert vote.copied_fraction == pytest.approx(5 / 31) and vote.created_at == vote.updated_at
    assert votes_db.get_vote(engine, run.id, "alice") == vote
    assert votes_db.votes_for_run(engine, run.id) == [vote]


def test_second_vote_replaces_first(engine):
    run = make_run()
    runs_db.save_run(engine, run)
    first = votes_db.record_vote(engine, run_id=run.id, annotator="bob", choice="A", a_is="fused", comment="x")
    second = votes_db.record_vote(engine, run_id=run.id, annotator="bob", choice="tie", a_is="bon")
    assert second.id == first.id
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert (second.choice, second.winner, second.comment) == ("tie", "tie", None)
    assert len(votes_db.votes_for_run(engine, run.id)) == 1
    other = votes_db.record_vote(engine, run_id=run.id, annotator="carol", choice="A", a_is="bon")
    assert [v.annotator for v in votes_db.votes_for_run(engine, run.id)] == ["bob", "carol"] and other.winner == "bon"


def test_same_client_token_is_a_no_op(engine):
    run = make_run()
    runs_db.save_run(engine, run)
    first = votes_db.record_vote(engine, run_id=run.id, annotator="dan", choice="A", a_is="fused", client_token="t1")
    again = votes_db.record_vote(engine, run_id=run.id, annotator="dan", choice="B", a_is="fused", client_token="t1")
    assert again == first and again.winner == "fused"
    newer = votes_db.record_vote(engine, run_id=run.id, annotator="dan", choice="B", a_is="fused", client_token="t2")
    assert newer.winner == "bon"
    # A late retry of the first form must not overwrite the newer vote.
    late = votes_db.record_vote(engine, run_id=run.id, annotator="dan", choice="A", a_is="fused", client_token="t1")
    assert late == newer
    assert votes_db.get_vote(engine, run.id, "dan").winner == "bon"
    # The token belongs to (run, annotator): another annotator's form with the same token still counts.
    eve = votes_db.record_vote(engine, run_id=run.id, annotator="eve", choice="A", a_is="fused", client_token="t1")
    assert eve.annotator == "eve" and eve.winner == "fused"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_id": "missing"}, "Unknown run"),
        ({"annotator": "   "}, "annotator"),
        ({"annotator": None}, "annotator"),
        ({"annotator": "x" * 201}, "longer than"),
        ({"choice": "C"}, "must be one of"),
        ({"choice": "a"}, "must be one of"),
        ({"a_is": "left"}, "Response A"),
        ({"ranking": [0, 0]}, "more than once"),
        ({"ranking": [5]}, "candidates 0 to 2"),
        ({"ranking": ["1"]}, "not a candidate index"),
        ({"ranking": "012"}, "list of candidate"),
        ({"comment": "y" * 10_001}, "limit"),
    ],
)
def test_record_vote_validation(engine, kwargs, message):
    run = make_run(run_id="valid")
    runs_db.save_run(engine, run)
    args = {"run_id": "valid", "annotator": "ann", "choice": "A", "a_is": "fused", **kwargs}
    with pytest.raises(InputError, match=message):
        votes_db.record_vote(engine, **args)
    assert votes_db.votes_for_run(engine, "valid") == []


def test_vote_needs_pick_and_fusion(engine):
    runs_db.save_run(engine, make_run(run_id="nofuse", fused_text=None))
    runs_db.save_run(engine, make_run(run_id="nopick", bon_index=None))
    for run_id in ("nofuse", "nopick"):
        with pytest.raises(ValueError, match="nothing|no Best-of-N"):
            votes_db.record_vote(engine, run_id=run_id, annotator="a", choice="A", a_is="fused")


def test_resave_keeps_votes_unless_the_pair_changed(engine):
    run = make_run(tags=["x"])
    runs_db.save_run(engine, run)
    votes_db.record_vote(engine, run_id=run.id, annotator="ann", choice="A", a_is="fused", client_token="t")
    run.tags = ["x", "y"]
    runs_db.save_run(engine, run)  # same texts: the vote still judges what is stored
    assert len(votes_db.votes_for_run(engine, run.id)) == 1
    run.fused.text = "A different fused answer."
    runs_db.save_run(engine, run)
    assert votes_db.votes_for_run(engine, run.id) == []
    again = votes_db.record_vote(engine, run_id=run.id, annotator="ann", choice="B", a_is="fused", client_token="t")
    assert again.winner == "bon"  # the old token went with the old vote


def test_unique_race_is_retried_as_update(engine, monkeypatch):
    """If another writer inserts between our look-up and our insert, the retry updates its row."""
    run = make_run()
    runs_db.save_run(engine, run)
    votes_db.record_vote(engine, run_id=run.id, annotator="race", choice="A", a_is="fused")
    real = votes_db._find_vote
    calls = {"n": 0}

    def blind_once(conn, run_id, annotator):
        calls["n"] += 1
        return None if calls["n"] == 1 else real(conn, run_id, annotator)

    monkeypatch.setattr(votes_db, "_find_vote", blind_once)
    vote = votes_db.record_vote(engine, run_id=run.id, annotator="race", choice="B", a_is="fused")
    assert calls["n"] == 2
    assert vote.winner == "bon"
    assert [v.winner for v in votes_db.votes_for_run(engine, run.id)] == ["bon"]


def test_annotation_queue_and_progress(engine):
    runs_db.save_run(engine, make_run(run_id="r1", created_at=10.0, tags=["t"]))
    runs_db.save_run(engine, make_run(run_id="r2", created_at=30.0))
    runs_db.save_run(engine, make_run(run_id="r3", created_at=20.0, tags=["t"], fused_text="Paris."))  # identical
    runs_db.save_run(engine, make_run(run_id="r4", created_at=5.0, fused_text=None))
    runs_db.save_run(engine, make_run(run_id="r5", created_at=6.0, bon_index=None))
    failed = make_run(run_id="r6", created_at=7.0)
    failed.fused.error = "fusor timed out"
    runs_db.save_run(engine, failed)
    # r3's fused answer is its pick verbatim: out of the queue and out of the total from the start.
    assert votes_db.annotation_queue(engine, "ann") == ["r1", "r2"]
    assert votes_db.annotation_queue(engine, "ann", limit=1) == ["r1"]
    assert votes_db.annotation_queue(engine, "ann", tag="t") == ["r1"]
    assert votes_db.queue_progress(engine, "ann") == (0, 2)
    assert votes_db.queue_counts(engine, "ann") == votes_db.QueueCounts(done=0, total=2, identical=1)
    assert runs_db.is_identical(runs_db.load_run(engine, "r3")) and not runs_db.is_identical(runs_db.load_run(engine, "r1"))
    votes_db.record_vote(engine, run_id="r1", annotator="ann", choice="tie", a_is="bon")
    assert votes_db.annotation_queue(engine, "ann") == ["r2"]
    assert votes_db.annotation_queue(engine, "other") == ["r1", "r2"]
    assert votes_db.queue_progress(engine, "ann") == (1, 2)
    assert votes_db.queue_counts(engine, "ann") == votes_db.QueueCounts(done=1, total=2, identical=1)
    assert votes_db.queue_counts(engine, "ann").remaining == 1
    assert votes_db.queue_counts(engine, "ann", tag="t") == votes_db.QueueCounts(done=1, total=1, identical=1)
    assert votes_db.queue_counts(engine, "other", tag="t") == votes_db.QueueCounts(done=0, total=1, identical=1)
    assert votes_db.queue_counts(engine, "ann", tag="none") == votes_db.QueueCounts(done=0, total=0, identical=0)
    assert votes_db.queue_progress(engine, " ann ") == (1, 2)
    with pytest.raises(InputError):
        votes_db.annotation_queue(engine, "")
    with pytest.raises(InputError):
        votes_db.queue_counts(engine, " ")


def test_all_votes_with_tag_filter(engine):
    runs_db.save_run(engine, make_run(run_id="g1", tags=["geo"], texts=["a", "b", "c", "d"], bon_index=2))
    runs_db.save_run(engine, make_run(run_id="m1", tags=["math"]))
    votes_db.record_vote(engine, run_id="g1", annotator="a1", choice="A", a_is="fused")
    time.sleep(0.001)
    votes_db.record_vote(engine, run_id="m1", annotator="a1", choice="A", a_is="bon")
    votes_db.record_vote(engine, run_id="g1", annotator="a2", choice="both_bad", a_is="bon")
    everything = votes_db.all_votes(engine)
    assert [(v.run_id, v.annotator, v.winner) for v in everything] == [
        ("g1", "a1", "fused"), ("m1", "a1", "bon"), ("g1", "a2", "both_bad"),
    ]
    geo = votes_db.all_votes(engine, tag="geo")
    assert [(v.run_id, v.annotator) for v in geo] == [("g1", "a1"), ("g1", "a2")]
    assert all(v.n == 4 and v.bon_index == 2 and v.tags == ["geo"] for v in geo)
    assert votes_db.all_votes(engine, tag="none") == []
    summary = {s.id: s.n_votes for s in listing.list_runs(engine)}
    assert summary == {"g1": 2, "m1": 1}

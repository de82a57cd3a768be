"""Schema migrations, applied in order at start-up and recorded in ``schema_migrations``.

Each migration is frozen once released: a later schema change is a new entry at the end of
:data:`MIGRATIONS`, never an edit of an old one (``storage.tables`` describes the result of all of them).

All pending migrations run in one transaction that first takes the database's write lock (``BEGIN IMMEDIATE``
on SQLite, an advisory lock on PostgreSQL), so two processes starting at once apply each migration once:
the second waits, then finds everything recorded.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.db import database_url, is_transient, make_engine

T = TypeVar("T")

# Arbitrary constant identifying this application's migration lock among PostgreSQL advisory locks.
_PG_LOCK_KEY = 0x46_55_53_45


@dataclass(frozen=True)
class Migration:
    id: str  # sortable, unique, never reused
    description: str
    apply: Callable[[Connection], None] | Sequence[str]  # a function, or portable SQL statements

    def run(self, conn: Connection) -> None:
        if callable(self.apply):
            self.apply(conn)
        else:
            for statement in self.apply:
                conn.execute(text(statement))


def _fk() -> ForeignKey:
    return ForeignKey("runs.id", ondelete="CASCADE")


# Long on purpose: a migration is the frozen record of one schema step, read (and never edited) as a whole.
def _initial_tables(conn: Connection) -> None:
    """The first schema, written out in full (not taken from ``storage.tables``) so that it never changes."""
    md = MetaData()
    Table(
        "runs",
        md,
        Column("id", String(64), primary_key=True),
        Column("prompt", Text, nullable=False),
        Column("system", Text),
        Column("source", String(200), nullable=False),
        Column("n", Integer, nullable=False),
        Column("models", Text, nullable=False),
        Column("pool", Text, nullable=False),
        Column("settings", Text, nullable=False),
        Column("created_at", Float, nullable=False),
        Column("updated_at", Float, nullable=False),
    )
    Table(
        "run_tags",
        md,
        Column("run_id", String(64), _fk(), nullable=False),
        Column("tag", String(200), nullable=False),
        Column("position", Integer, nullable=False),
        PrimaryKeyConstraint("run_id", "tag"),
    )
    Table(
        "candidates",
        md,
        Column("run_id", String(64), _fk(), nullable=False),
        Column("idx", Integer, nullable=False),
        Column("text", Text, nullable=False),
        Column("model", String(300), nullable=False),
        Column("sample_index", Integer, nullable=False),
        Column("latency_s", Float),
        Column("prompt_tokens", Integer),
        Column("completion_tokens", Integer),
        Column("error", Text),
        Column("cached", Boolean, nullable=False),
        PrimaryKeyConstraint("run_id", "idx"),
    )
    Table(
        "picks",
        md,
        Column("run_id", String(64), _fk(), primary_key=True),
        Column("method", String(300), nullable=False),
        Column("idx", Integer),
        Column("scores", Text, nullable=False),
        Column("notes", Text, nullable=False),
        Column("error", Text),
    )
    Table(
        "fusions",
        md,
        Column("run_id", String(64), _fk(), primary_key=True),
        Column("text", Text, nullable=False),
        Column("method", String(300), nullable=False),
        Column("model", String(300)),
        Column("template", String(200)),
        Column("order", Text, nullable=False),
        Column("seed", Integer),
        Column("latency_s", Float),
        Column("error", Text),
        Column("attribution", Text),
        Column("copied_fraction", Float),
    )
    Table(
        "votes",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(64), _fk(), nullable=False),
        Column("annotator", String(200), nullable=False),
        Column("choice", String(16), nullable=False),
        Column("a_is", String(16), nullable=False),
        Column("winner", String(16), nullable=False),
        Column("comment", Text),
        Column("ranking", Text),
        Column("client_token", String(200)),
        Column("created_at", Float, nullable=False),
        Column("updated_at", Float, nullable=False),
        UniqueConstraint("run_id", "annotator", name="uq_votes_run_annotator"),
    )
    Table(
        "vote_tokens",
        md,
        Column("run_id", String(64), _fk(), nullable=False),
        Column("annotator", String(200), nullable=False),
        Column("client_token", String(200), nullable=False),
        Column("created_at", Float, nullable=False),
        PrimaryKeyConstraint("run_id", "annotator", "client_token"),
    )
    md.create_all(conn)


def _scenario_groups_0003(models: list[str], source: str) -> list[str]:
    """``fusion.types.model_groups`` as it was when 0003 was written (frozen here with the migration)."""
    if source.startswith("scenario:") and len(source) > len("scenario:"):
        return [source]
    return list(dict.fromkeys(m for m in models if m))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Long on purpose, as _initial_tables: one schema step, kept whole.
def _pairs_groups_blind(conn: Connection) -> None:
    """0003: what the annotation queue and the statistics need about a fusion, known at save time
    (``has_pair``, ``same_as_pick``, ``shares``) and readable from one covering index; blind votes; model
    groups.

    The covering index matters on SQLite: a fused text with its spans fills several pages, and a column
    stored after them (every column added here) is reached only by walking the row's overflow pages.

    The backfill reads rows in chunks (a big database's fused texts and spans need not sit in memory at
    once) and writes with plain UPDATE/INSERT statements that SQLite and PostgreSQL both run.
    """
    for statement in (
        "ALTER TABLE fusions ADD COLUMN has_pair BOOLEAN",
        "ALTER TABLE fusions ADD COLUMN same_as_pick BOOLEAN",
        "ALTER TABLE fusions ADD COLUMN shares TEXT",
        "ALTER TABLE votes ADD COLUMN blind BOOLEAN NOT NULL DEFAULT TRUE",
    ):
        conn.execute(text(statement))
    md = MetaData()
    # The table definition written out here (not taken from storage.tables) so that it never changes.
    md_runs = Table("runs", md, Column("id", String(64), primary_key=True))
    Table(
        "run_model_groups",
        md,
        Column("run_id", String(64), ForeignKey(md_runs.c.id, ondelete="CASCADE"), nullable=False),
        Column("label", String(300), nullable=False),
        PrimaryKeyConstraint("run_id", "label"),
        Index("ix_run_model_groups_label", "label"),
    ).create(conn)

    fusion_ids = [r[0] for r in conn.execute(text("SELECT run_id FROM fusions ORDER BY run_id"))]
    for chunk in _chunks(fusion_ids, 200):
        rows = conn.execute(
            text(
                "SELECT f.run_id, f.text, f.error, f.attribution, p.idx, c.text FROM fusions f "
                "LEFT JOIN picks p ON p.run_id = f.run_id "
                "LEFT JOIN candidates c ON c.run_id = f.run_id AND c.idx = p.idx "
                "WHERE f.run_id IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": list(chunk)},
        ).all()
        updates = []
        for run_id, fused, error, attribution, bon_index, bon in rows:
            # record_vote's rule for a pair it accepts, and is_identical's, on the stored texts.
            has_pair = bon_index is not None and bon is not None and error is None and bool(fused.strip())
            same = bon is not None and fused is not None and bon.strip() == fused.strip()
            shares = None
            if attribution and error is None:
                shares = json.dumps([float(x) for x in (json.loads(attribution).get("shares") or [])])
            updates.append({"id": run_id, "pair": has_pair, "same": same, "shares": shares})
        if updates:
            conn.execute(
                text("UPDATE fusions SET has_pair = :pair, same_as_pick = :same, shares = :shares WHERE run_id = :id"),
                updates,
            )
    conn.execute(text("CREATE INDEX ix_runs_updated_at ON runs (updated_at)"))
    conn.execute(
        text(
            "CREATE INDEX ix_fusions_facts ON fusions "
            "(run_id, has_pair, same_as_pick, method, copied_fraction, shares)"
        )
    )

    groups = []
    for run_id, models, source in conn.execute(text("SELECT id, models, source FROM runs")):
        for label in _scenario_groups_0003(json.loads(models or "[]"), source or ""):
            groups.append({"id": run_id, "label": label})
    for chunk in _chunks(groups, 1000):
        conn.execute(text("INSERT INTO run_model_groups (run_id, label) VALUES (:id, :label)"), list(chunk))


MIGRATIONS: list[Migration] = [
    Migration("0001_initial", "runs, tags, candidates, picks, fusions, votes, vote tokens", _initial_tables),
    Migration(
        "0002_filter_indexes",
        "indexes for the history filters and the annotation queue",
        [
            "CREATE INDEX IF NOT EXISTS ix_runs_created_at ON runs (created_at)",
            "CREATE INDEX IF NOT EXISTS ix_runs_source ON runs (source)",
            "CREATE INDEX IF NOT EXISTS ix_runs_n ON runs (n)",
            "CREATE INDEX IF NOT EXISTS ix_run_tags_tag ON run_tags (tag)",
            "CREATE INDEX IF NOT EXISTS ix_votes_annotator ON votes (annotator)",
        ],
    ),
    Migration(
        "0003_pairs_groups_blind",
        "fusions.has_pair, same_as_pick, shares (covering index), votes.blind, run_model_groups, runs.updated_at",
        _pairs_groups_blind,
    ),
    Migration(
        "0004_judge_consistency",
        "votes.consistent: whether a pairwise judge's two orders agreed (NULL for a person's vote)",
        ["ALTER TABLE votes ADD COLUMN consistent BOOLEAN"],
    ),
    Migration(
        "0005_batch_claims",
        "batch_claims: which worker computes which run of a batch job, with a lease",
        [
            "CREATE TABLE IF NOT EXISTS batch_claims (job VARCHAR(64) NOT NULL, run_id VARCHAR(64) NOT NULL, "
            "position INTEGER NOT NULL, worker VARCHAR(300), lease_until FLOAT NOT NULL DEFAULT 0, "
            "done BOOLEAN NOT NULL DEFAULT FALSE, PRIMARY KEY (job, run_id))",
            "CREATE INDEX IF NOT EXISTS ix_batch_claims_free ON batch_claims (job, done, position)",
        ],
    ),
    Migration(
        "0006_batch_claims_input",
        "batch_claims: each run's input id and line, so a job's output can be rebuilt from the database",
        [
            "ALTER TABLE batch_claims ADD COLUMN input_id TEXT",
            "ALTER TABLE batch_claims ADD COLUMN input_line INTEGER",
        ],
    ),
]

_RECORD_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    id VARCHAR(100) NOT NULL PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at FLOAT NOT NULL
)
"""


def applied_migrations(engine: Engine) -> list[str]:
    """Ids recorded in ``schema_migrations``, in the order they were applied (empty on a new database)."""
    with engine.begin() as conn:
        conn.execute(text(_RECORD_TABLE))
        rows = conn.execute(text("SELECT id FROM schema_migrations ORDER BY applied_at, id")).all()
    return [r[0] for r in rows]


def _apply_pending(conn: Connection, migrations: Sequence[Migration]) -> list[str]:
    if conn.dialect.name == "postgresql":
        # Serialises concurrent start-ups; released when this transaction ends.
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    conn.execute(text(_RECORD_TABLE))
    done = {r[0] for r in conn.execute(text("SELECT id FROM schema_migrations")).all()}
    applied: list[str] = []
    for migration in migrations:
        if migration.id in done:
            continue
        migration.run(conn)
        conn.execute(
            text("INSERT INTO schema_migrations (id, description, applied_at) VALUES (:id, :d, :t)"),
            {"id": migration.id, "d": migration.description, "t": time.time()},
        )
        applied.append(migration.id)
    return applied


def migrate(engine: Engine, migrations: Sequence[Migration] | None = None) -> list[str]:
    """Apply every migration not yet recorded, in order; return the ids applied now (empty if none)."""
    migrations = list(MIGRATIONS if migrations is None else migrations)
    ids = [m.id for m in migrations]
    if len(set(ids)) != len(ids):
        raise ValueError(f"Duplicate migration ids in {ids}")
    attempts = 5
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                return _apply_pending(conn, migrations)
        except (IntegrityError, OperationalError) as exc:
            # Another process won a race this database's lock did not cover (e.g. creating
            # schema_migrations itself on PostgreSQL) or the lock wait ran out: look again.
            if attempt == attempts - 1 or not is_transient(exc):
                raise
            time.sleep(0.05 * (attempt + 1))
    return []  # unreachable; keeps type checkers content


# Fewer fusions than this and the query plan hardly matters; more, and SQLite should know the table sizes.
_ANALYZE_FROM_ROWS = 200


def refresh_statistics(engine: Engine) -> bool:
    """SQLite: ANALYZE when the database has grown or shrunk twofold since it was last analysed; True if
    it ran. PostgreSQL's autovacuum keeps its own statistics; nothing is done there.

    Without statistics SQLite looks a fusion up by its primary key and then reads the row, whose small
    columns sit behind the fused text and spans (overflow pages), instead of using the covering index
    ix_fusions_facts: 2x slower on the Results page's queries at 5,000 runs (bench/storage_queries.py).
    ``analysis_limit`` keeps ANALYZE to a few milliseconds on any size.
    """
    if engine.dialect.name != "sqlite":
        return False
    with engine.begin() as conn:
        rows = int(conn.execute(text("SELECT count(*) FROM fusions")).scalar_one())
        if rows < _ANALYZE_FROM_ROWS:
            return False
        has_stats = conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first()
        recorded = None
        if has_stats:
            stat = conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_fusions_facts'")).scalar()
            recorded = int(stat.split()[0]) if stat else None
        if recorded is not None and recorded / 2 <= rows <= recorded * 2:
            return False
        conn.execute(text("PRAGMA analysis_limit=1000"))
        conn.execute(text("ANALYZE"))
    return True


def init_db(url: str | None = None) -> Engine:
    """An engine with the schema up to date: what the app, the CLI and tests start with.

    Also fills in the per-fusion facts of rows that code older than 0003 wrote after this database was
    migrated (``storage.runs.fill_pair_facts``; nothing to do is one index-only query), and refreshes
    SQLite's planner statistics when the database has grown (:func:`refresh_statistics`)."""
    from storage.runs import fill_pair_facts  # runs needs the tables module; imported late on purpose

    engine = make_engine(url)
    migrate(engine)
    fill_pair_facts(engine)
    refresh_statistics(engine)
    return engine


def open_database(url: str | None = None) -> Engine:
    """:func:`init_db`, with a connection fault raised as one :class:`DatabaseUnavailable`
    (whose message is meant for the person at the screen) instead of the driver's traceback. What the CLI
    and the app call to get their engine."""
    from storage.db import DEFAULT_DB_PATH, DatabaseUnavailable, explain_failure

    try:
        url = url or database_url()
    except OSError as exc:  # the default data folder could not be created
        raw = os.environ.get("FUSION_DB_PATH", "").strip() or str(DEFAULT_DB_PATH)
        raise DatabaseUnavailable(
            f"Cannot create the folder of the SQLite database {raw}: {exc.strerror or exc}. Set FUSION_DB_PATH to "
            "a file in a writable folder.",
            url=f"sqlite:///{raw}", kind="sqlite_unwritable",
        ) from exc  # fmt: skip
    try:
        return init_db(url)
    except Exception as exc:
        explained = explain_failure(exc, url)
        if explained is None:
            raise
        raise explained from exc

"""Where the database lives and how connections to it are set up.

SQLite is the default (one file under ``<repo>/data``); any SQLAlchemy URL works through ``DATABASE_URL``.
On SQLite every connection gets WAL (readers never block the writer), a busy timeout (writers queue instead
of failing with "database is locked"), foreign keys (cascading deletes) and ``BEGIN IMMEDIATE`` for write
transactions: pysqlite's default deferred transactions let two read-then-write transactions read the same
state and lose one update, while IMMEDIATE takes the write lock before the read.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB_PATH = REPO_ROOT / "data" / "fusion.db"
BUSY_TIMEOUT_MS = 5000

# Execution option that marks a connection as read-only, so it starts a deferred transaction and does not
# queue behind writers (WAL gives it a consistent snapshot anyway).
READ_ONLY = "fusion_read_only"


def database_url() -> str:
    """``DATABASE_URL`` if set; otherwise a SQLite file at ``FUSION_DB_PATH`` or ``<repo>/data/fusion.db``."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    raw = os.environ.get("FUSION_DB_PATH", "").strip()
    path = Path(raw).expanduser() if raw else DEFAULT_DB_PATH
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _unicode_lower(value: Any) -> Any:
    # SQLite's built-in lower() folds ASCII only; search must match "École" with "école" as PostgreSQL does.
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below instead of pysqlite's implicit BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL needs a lock another process may hold for a moment.
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get(READ_ONLY) else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default: :func:`database_url`). Thread-safe; share one per process."""
    url = url or database_url()
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Streamlit sessions and worker threads share the pool; the connection is never used by two at once.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        _configure_sqlite(engine)
    return engine


def is_transient(exc: BaseException) -> bool:
    """True for errors that a retry of the whole transaction can cure: lock waits that ran out, deadlocks,
    serialisation failures, and unique-key races (the retry sees the winner's row and updates it)."""
    if isinstance(exc, IntegrityError):
        return "unique" in str(exc).lower() or "duplicate" in str(exc).lower()
    if isinstance(exc, OperationalError):
        message = str(exc).lower()
        return any(word in message for word in ("locked", "busy", "deadlock", "could not serialize"))
    return False


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"

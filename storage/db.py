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
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError

from fusion.errors import SetupError

REPO_ROOT = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    # In a checkout (make app, python -m fusion, pip install -e .) the data folder sits next to the code, so
    # the app and the CLI share one database. An installed copy lives in site-packages, no place for data:
    # it uses the folder the command runs in.
    if (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "storage" / "db.py").is_file():
        return REPO_ROOT
    return Path.cwd()


DEFAULT_DB_PATH = _data_root() / "data" / "fusion.db"
BUSY_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_S = 10

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
        if parsed.get_driver_name() in ("psycopg", "psycopg2") and "connect_timeout" not in parsed.query:
            # A server behind a firewall that drops packets would otherwise hang a page or the CLI for
            # minutes (the operating system's TCP timeout); ?connect_timeout=N in the URL overrides it.
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
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


# ----------------------------------------------------------------------------------------------------------
# Connection faults, said once, clearly


class DatabaseUnavailable(SetupError):
    """The database cannot be opened. The message names it (its URL without the password) and says what
    to do; ``kind`` is one of :data:`FAULT_KINDS`."""

    def __init__(self, message: str, *, url: str, kind: str) -> None:
        super().__init__(message)
        self.url = url  # password hidden
        self.kind = kind


FAULT_KINDS = (
    "driver", "url", "auth", "refused", "host", "no_database", "privilege", "sqlite_unwritable", "sqlite_corrupt",
    "other",
)  # fmt: skip
# The modules SQLAlchemy imports for the usual dialects; an ImportError of one of them is a missing driver.
_DRIVER_PACKAGES = {
    "psycopg": "'psycopg[binary]' (or: pip install 'fusion-explorer[postgres]')",
    "psycopg2": "psycopg2-binary",
    "asyncpg": "asyncpg",
    "pg8000": "pg8000",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
}


def safe_url(url: str | URL) -> str:
    """``url`` as text with its password replaced by ``***``: safe for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return "(a DATABASE_URL that is not a valid database URL)"


def _where(url: URL) -> str:
    """host:port of a server URL, with PostgreSQL's default port filled in."""
    port = url.port or (5432 if url.get_backend_name() == "postgresql" else None)
    return f"{url.host or 'localhost'}" + (f":{port}" if port else "")


def explain_failure(exc: BaseException, url: str) -> DatabaseUnavailable | None:
    """The :class:`DatabaseUnavailable` that says why ``exc``, raised while opening ``url``, happened, or
    None when ``exc`` is not a connection fault (a bug: let it through with its traceback)."""
    shown = safe_url(url)
    if isinstance(exc, DatabaseUnavailable):
        return exc
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as bad:
        return DatabaseUnavailable(
            f"DATABASE_URL is not a database URL ({bad}); write it like postgresql+psycopg://user:password@host:5432/db.",
            url=shown, kind="url",
        )  # fmt: skip
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if isinstance(exc, ImportError):
        module = (exc.name or "").split(".")[0]
        if module not in _DRIVER_PACKAGES:
            return None
        return DatabaseUnavailable(
            f"Cannot open the database {shown}: its driver {module} is not installed. "
            f"Install it: pip install {_DRIVER_PACKAGES[module]}",
            url=shown, kind="driver",
        )  # fmt: skip
    if isinstance(exc, NoSuchModuleError):
        return DatabaseUnavailable(
            f"Cannot open the database {shown}: SQLAlchemy has no dialect {parsed.drivername!r}. Use sqlite:///path "
            "or postgresql+psycopg://user:password@host:5432/db in DATABASE_URL.",
            url=shown, kind="url",
        )  # fmt: skip
    if isinstance(exc, OSError) and is_sqlite:  # the data folder could not be made
        return DatabaseUnavailable(
            f"Cannot create the SQLite database {shown}: {exc.strerror or exc}. Make its folder writable, or set "
            "FUSION_DB_PATH to a file in a writable folder.",
            url=shown, kind="sqlite_unwritable",
        )  # fmt: skip
    if not isinstance(exc, DBAPIError):
        return None
    detail = str(exc.orig if exc.orig is not None else exc)
    lower = detail.lower()
    first_line = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
    if is_sqlite:
        if any(w in lower for w in ("unable to open", "readonly", "read-only", "permission denied", "disk i/o")):
            return DatabaseUnavailable(
                f"Cannot write the SQLite database {shown} ({first_line}). Check that the file and its folder are "
                "writable by this user, or set FUSION_DB_PATH to a file in a writable folder.",
                url=shown, kind="sqlite_unwritable",
            )  # fmt: skip
        if "not a database" in lower or "malformed" in lower:
            return DatabaseUnavailable(
                f"The file of {shown} is not a usable SQLite database ({first_line}). Point FUSION_DB_PATH at "
                "another file, or move this one away.",
                url=shown, kind="sqlite_corrupt",
            )  # fmt: skip
        return DatabaseUnavailable(f"Cannot open the SQLite database {shown}: {first_line}.", url=shown, kind="other")
    where = _where(parsed)
    if "password authentication failed" in lower or "no password supplied" in lower or (
        "role" in lower and "does not exist" in lower
    ):
        return DatabaseUnavailable(
            f"The database {shown} refused the login of user {parsed.username!r}: check the user and password in "
            "DATABASE_URL.",
            url=shown, kind="auth",
        )  # fmt: skip
    if "database" in lower and "does not exist" in lower:
        return DatabaseUnavailable(
            f"The database {parsed.database!r} does not exist on {where} ({shown}): create it "
            f"(createdb -h {parsed.host or 'localhost'} {parsed.database}) or fix its name in DATABASE_URL.",
            url=shown, kind="no_database",
        )  # fmt: skip
    if "permission denied" in lower or "must be owner" in lower:
        return DatabaseUnavailable(
            f"User {parsed.username!r} may not create or change the tables of {shown} ({first_line}): let it "
            f"(GRANT CREATE ON SCHEMA public TO {parsed.username}) or connect as the database's owner.",
            url=shown, kind="privilege",
        )  # fmt: skip
    if "resolve host" in lower or "name or service not known" in lower or "translate host name" in lower:
        return DatabaseUnavailable(
            f"Cannot find the database server {parsed.host!r} of {shown}: check the host name in DATABASE_URL.",
            url=shown, kind="host",
        )  # fmt: skip
    if any(w in lower for w in ("connection refused", "is the server running", "timeout expired", "timed out",
                                "server closed the connection", "could not connect", "connection failed")):
        return DatabaseUnavailable(
            f"Cannot reach the database {shown}: is PostgreSQL running on {where} and accepting connections? "
            "Start it, or fix the host and port in DATABASE_URL.",
            url=shown, kind="refused",
        )  # fmt: skip
    if isinstance(exc, OperationalError):
        return DatabaseUnavailable(f"Cannot open the database {shown}: {first_line}.", url=shown, kind="other")
    return None

"""Database faults said in one clear message (storage.migrations.open_database): the driver missing, a wrong
password, a server that refuses connections, an unknown host or database, a SQLite file that cannot be
written. Each names the database without its password and says what to do.

The wrong-password and missing-database cases use the session's PostgreSQL cluster (tests/pg_support.py);
the refused port is a port nothing listens on.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from pathlib import Path

import pytest

from storage.db import FAULT_KINDS, DatabaseUnavailable, explain_failure, safe_url
from storage.migrations import open_database

SECRET = "s3cret-Pw-91"


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nothing listens there


def fault(url: str) -> DatabaseUnavailable:
    with pytest.raises(DatabaseUnavailable) as caught:
        open_database(url)
    err = caught.value
    assert err.kind in FAULT_KINDS
    assert SECRET not in str(err) and SECRET not in err.url
    assert "\n" not in str(err)  # one line for the CLI
    return err


def test_safe_url_hides_the_password() -> None:
    assert safe_url(f"postgresql+psycopg://ann:{SECRET}@db.example:6543/fusion") == (
        "postgresql+psycopg://ann:***@db.example:6543/fusion"
    )
    assert safe_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_refused_port() -> None:
    port = closed_port()
    err = fault(f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{port}/fusion")
    assert err.kind == "refused"
    assert f"is PostgreSQL running on 127.0.0.1:{port}" in str(err)
    assert f"postgresql+psycopg://postgres:***@127.0.0.1:{port}/fusion" in str(err)


def test_unknown_host() -> None:
    err = fault(f"postgresql+psycopg://ann:{SECRET}@no-such-host.invalid/fusion")
    assert err.kind == "host" and "'no-such-host.invalid'" in str(err) and "check the host name" in str(err)


def test_driver_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    # As on a machine without psycopg: importing it fails (None in sys.modules makes `import psycopg` raise).
    monkeypatch.setitem(sys.modules, "psycopg", None)
    err = fault(f"postgresql+psycopg://ann:{SECRET}@127.0.0.1:{closed_port()}/fusion")
    assert err.kind == "driver"
    assert "its driver psycopg is not installed" in str(err) and "pip install 'psycopg[binary]'" in str(err)


def test_an_unrelated_import_error_is_not_called_a_database_fault() -> None:
    exc = ModuleNotFoundError("No module named 'plotly'", name="plotly")
    assert explain_failure(exc, "sqlite:////tmp/x.db") is None
    assert explain_failure(RuntimeError("bug"), "sqlite:////tmp/x.db") is None


def test_unknown_dialect_and_bad_url() -> None:
    assert fault("postgres+nosuchdriver://a@b/c").kind == "url"
    assert fault("this is not a url").kind == "url"


def test_wrong_password(pg_cluster, tmp_path: Path) -> None:
    """A role that must give a password (scram) on the session cluster, whose other roles stay on trust."""
    import psycopg

    role = f"pw_{uuid.uuid4().hex[:8]}"
    hba = pg_cluster.data_dir / "pg_hba.conf"
    admin = f"host=127.0.0.1 port={pg_cluster.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'right-{SECRET}'")
        # pg_hba.conf is read top-down: this role's line goes first. Written in place, so its owner stays.
        original = hba.read_text()
        with hba.open("w") as handle:
            handle.write(f"host all {role} 127.0.0.1/32 scram-sha-256\n{original}")
        conn.execute("SELECT pg_reload_conf()")
    try:
        err = fault(f"postgresql+psycopg://{role}:{SECRET}@127.0.0.1:{pg_cluster.port}/postgres")
        assert err.kind == "auth"
        assert f"refused the login of user '{role}'" in str(err) and "check the user and password" in str(err)
        # The right password logs in: the database of postgres does not let this role create tables ...
        right = f"postgresql+psycopg://{role}:right-{SECRET}@127.0.0.1:{pg_cluster.port}"
        err = fault(f"{right}/postgres")
        assert err.kind == "privilege" and f"GRANT CREATE ON SCHEMA public TO {role}" in str(err)
        # ... and a database of its own opens (the checks above are not just any failure).
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {role} OWNER {role}")
        engine = open_database(f"{right}/{role}")
        engine.dispose()
    finally:
        with hba.open("w") as handle:
            handle.write(original)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")


def test_missing_database(pg_cluster) -> None:
    err = fault(f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{pg_cluster.port}/no_such_db")
    assert err.kind == "no_database" and "'no_such_db' does not exist" in str(err) and "createdb" in str(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_sqlite_folder_not_writable(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        err = fault(f"sqlite:///{locked / 'sub' / 'fusion.db'}")
        assert err.kind == "sqlite_unwritable" and "FUSION_DB_PATH" in str(err)
    finally:
        locked.chmod(0o700)


def test_sqlite_path_that_cannot_exist(tmp_path: Path) -> None:
    # A folder where the database file should be: SQLite cannot open it, whoever runs the test.
    (tmp_path / "fusion.db").mkdir()
    err = fault(f"sqlite:///{tmp_path / 'fusion.db'}")
    assert err.kind == "sqlite_unwritable" and "writable" in str(err)
    # A file in place of the data folder: the folder cannot be created, not even by root.
    (tmp_path / "blocker").write_text("x")
    err = fault(f"sqlite:///{tmp_path / 'blocker' / 'fusion.db'}")
    assert err.kind == "sqlite_unwritable" and "FUSION_DB_PATH" in str(err)


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "fusion.db"
    path.write_bytes(b"this is a text file, not SQLite\n" * 200)
    err = fault(f"sqlite:///{path}")
    assert err.kind == "sqlite_corrupt" and "not a usable SQLite database" in str(err)


def test_default_path_folder_cannot_be_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "blocker").write_text("x")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FUSION_DB_PATH", str(tmp_path / "blocker" / "data" / "fusion.db"))
    with pytest.raises(DatabaseUnavailable, match="Cannot create the folder of the SQLite database") as caught:
        open_database()
    assert caught.value.kind == "sqlite_unwritable"


def test_a_working_database_opens(db_url: str) -> None:
    engine = open_database(db_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()


def test_postgresql_connections_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from storage.db import CONNECT_TIMEOUT_S, make_engine

    seen: list[dict] = []

    def capture(url, **kwargs):
        seen.append(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr("storage.db.create_engine", capture)
    for url in ("postgresql+psycopg://a@h/db", "postgresql+psycopg://a@h/db?connect_timeout=3"):
        with pytest.raises(RuntimeError):
            make_engine(url)
    # A silent server cannot hang the app or the CLI for minutes; the URL's own timeout wins.
    assert seen[0]["connect_args"] == {"connect_timeout": CONNECT_TIMEOUT_S}
    assert "connect_args" not in seen[1]

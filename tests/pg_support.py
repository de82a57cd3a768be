"""A throw-away PostgreSQL cluster for the storage tests, and the engine URL fixture that runs them on both
SQLite and PostgreSQL.

The cluster is started once per test session, on a free port, in a temporary folder (initdb, then pg_ctl),
and removed at the end. Every test that asks for ``db_url`` gets a database of its own. As root, initdb
and the server run as the ``postgres`` user (initdb refuses root). The server is told not to fsync: the
data is thrown away, and durability is not what these tests check.

If PostgreSQL cannot be started the PostgreSQL half of the tests fails loudly, saying why; set
``FUSION_SKIP_PG=1`` to skip it instead (a machine without PostgreSQL). ``make test`` installs it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Iterator

import pytest

SKIP_ENV = "FUSION_SKIP_PG"
BACKENDS = ("sqlite", "postgresql")


class PgUnavailable(RuntimeError):
    """PostgreSQL could not be started; the message says what is missing."""


def _bin_dir() -> Path:
    """Where initdb and pg_ctl are: PATH first, then Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    raise PgUnavailable(
        "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): "
        f"run `make test` (it installs the Debian package postgresql) or set {SKIP_ENV}=1 to skip these tests."
    )


def _utf8_locale() -> str:
    """A UTF-8 locale for the cluster, as a team's server would have: with LC_CTYPE=C, PostgreSQL's lower()
    folds ASCII only and the case-insensitive search would miss "École" for "école"."""
    try:
        names = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        names = []
    for wanted in ("C.utf8", "C.UTF-8", "en_US.utf8", "en_US.UTF-8"):
        if wanted in names:
            return wanted
    utf8 = [n for n in names if n.lower().endswith(("utf8", "utf-8"))]
    if utf8:
        return utf8[0]
    raise PgUnavailable("No UTF-8 locale on this machine (locale -a): PostgreSQL would fold ASCII case only.")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgCluster:
    bin_dir: Path
    data_dir: Path
    port: int
    as_user: list[str]  # the command prefix that runs a server binary as its owner
    _names: Iterator[int] = field(default_factory=lambda: count(1))

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120)

    def new_database(self) -> str:
        """The URL of a new, empty database (each test gets its own; the cluster is dropped at the end)."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")


def start_cluster() -> tuple[PgCluster, Path]:
    """initdb and start a cluster in a new temporary folder; (cluster, folder to remove afterwards)."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PgUnavailable(
            "The PostgreSQL driver is missing: pip install -r requirements.txt (psycopg[binary]) "
            f"or set {SKIP_ENV}=1."
        ) from exc
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="fusion-pg-"))
    data_dir = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PgUnavailable("Running as root without runuser: cannot start PostgreSQL as its own user.")
        as_user = [runuser, "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    cluster = PgCluster(bin_dir=bin_dir, data_dir=data_dir, port=port, as_user=as_user)
    init = cluster._run(
        str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust",
        "--encoding=UTF8", f"--locale={_utf8_locale()}", "--no-sync",
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise PgUnavailable(f"initdb failed ({init.returncode}): {init.stderr.strip() or init.stdout.strip()}")
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200"
    )
    start = cluster._run(
        str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(root / "server.log"), "-w", "start"
    )
    if start.returncode != 0:
        log = (root / "server.log").read_text(errors="replace")[-2000:] if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PgUnavailable(f"pg_ctl start failed ({start.returncode}): {start.stderr.strip()}\n{log}")
    deadline = time.monotonic() + 30
    while True:  # -w waits for the server; a first connection confirms it accepts TCP on our port
        try:
            cluster.new_database()
            break
        except Exception as exc:  # noqa: BLE001 - retried, then reported
            if time.monotonic() > deadline:
                cluster.stop()
                shutil.rmtree(root, ignore_errors=True)
                raise PgUnavailable(f"PostgreSQL started but refuses connections: {exc}") from exc
            time.sleep(0.2)
    return cluster, root


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """The session's PostgreSQL cluster; skipped with FUSION_SKIP_PG=1, a loud error if it cannot start."""
    if os.environ.get(SKIP_ENV, "").strip() in ("1", "true", "yes"):
        pytest.skip(f"PostgreSQL tests skipped ({SKIP_ENV}=1)")
    try:
        cluster, root = start_cluster()
    except PgUnavailable as exc:
        pytest.fail(f"PostgreSQL tests cannot run: {exc}", pytrace=False)
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a new, empty database: a SQLite file, or a database in the session's PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'fusion.db'}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database()

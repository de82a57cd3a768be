"""Claims that let several batch workers share one job: each prompt is worked on by exactly one of them.

Workers given the same input and settings compute the same run ids (``fusion.batch.batch_run_id``), so a
run id is the unit of work. Before computing a run a worker claims its id: a row in ``batch_claims`` with
the worker's name and a lease. A claim is taken only when nobody holds it or its lease has run out, so a
worker killed midway (SIGKILL leaves no chance to let go) loses its prompts to the others once the lease
ends. A worker renews the leases of the runs it is still computing; a finished run stays claimed, with
``done`` set, and is never taken again.

On PostgreSQL the candidate rows are read with ``SELECT ... FOR UPDATE SKIP LOCKED``: two workers asking at
once lock different rows and neither waits for the other. SQLite has one writer at a time anyway, so one
worker per job is enforced there (:func:`hold_job`), with a message that says why.

A worker is named ``<host>:<pid>:<output>`` (``<output>`` a short hash of its output file's path), so a
worker started again on the same host with the same output file knows the runs it finished before as its
own. ``<host>`` is the machine's name, or ``FUSION_WORKER`` when set. When ``<host>`` is this machine's name
and that process is gone, its claims are let go at once (:func:`reap`) instead of when their lease ends:
a batch killed and started again does not wait for its own dead leases.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Collection, Sequence

from sqlalchemy import Engine, and_, delete, insert, or_, select, update

from fusion.errors import InputError
from storage.db import is_sqlite
from storage.tables import BatchClaimRow

JOB_HOLDER = "__job__"  # the run_id of the row that says which worker holds a job on SQLite
LEASE_S = 120.0  # a killed worker's prompts are taken over after this long
claims = BatchClaimRow.__table__


WORKER_ENV = "FUSION_WORKER"


def worker_name(output: str | os.PathLike[str] | None = None) -> str:
    """This process, as other workers and the operator see it: host (or ``FUSION_WORKER``), pid, and a
    hash of the output file it writes (the part that stays the same when the worker is started again)."""
    host = (os.environ.get(WORKER_ENV) or "").strip().replace(":", "_") or socket.gethostname()
    name = f"{host}:{os.getpid()}"
    if output is not None:
        where = os.path.abspath(os.fspath(output))
        name += ":" + hashlib.sha256(where.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return name[:300]


def same_owner(a: str | None, b: str | None) -> bool:
    """Whether two worker names are one worker started twice: same host and output, any pid."""
    if a is None or b is None:
        return False
    pa, pb = a.split(":"), b.split(":")
    if len(pa) != 3 or len(pb) != 3:
        return a == b
    return pa[0] == pb[0] and pa[2] == pb[2]


def _dead_here(worker: str | None) -> bool:
    """A worker of this machine whose process is gone (killed: it had no chance to let go)."""
    if not worker:
        return False
    parts = worker.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


@dataclass(frozen=True)
class ClaimState:
    done: int  # finished by any worker
    held: int  # being computed under a live lease
    free: int  # not yet claimed, or their lease ran out


def _now() -> float:
    return time.time()


def _insert_missing(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Insert rows, leaving those another worker inserted first (ON CONFLICT DO NOTHING on both backends)."""
    if is_sqlite(engine):
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert  # type: ignore[assignment]
    for start in range(0, len(rows), 500):
        with engine.begin() as conn:
            conn.execute(dialect_insert(claims).on_conflict_do_nothing(), rows[start : start + 500])


def register(
    engine: Engine,
    job: str,
    run_ids: Sequence[str],
    *,
    inputs: Sequence[tuple[str | int | None, int]] | None = None,
) -> None:
    """Make sure every run of the job has a claim row (a second worker registering the same ids is a no-op).

    ``inputs`` gives each run's input id and line, so the job's output can be rebuilt from the database
    (``fusion export --format runs``)."""
    rows = []
    for i, rid in enumerate(run_ids):
        input_id, input_line = inputs[i] if inputs is not None else (None, None)
        rows.append({
            "job": job, "run_id": rid, "position": i, "worker": None, "lease_until": 0.0, "done": False,
            "input_id": None if input_id is None else json.dumps(input_id, ensure_ascii=False),
            "input_line": input_line,
        })  # fmt: skip
    if rows:
        _insert_missing(engine, rows)


def claim(
    engine: Engine,
    job: str,
    worker: str,
    *,
    limit: int = 1,
    lease_s: float = LEASE_S,
    exclude: Collection[str] = (),
) -> list[str]:
    """Take up to ``limit`` free runs of the job for ``worker`` (in input order), leaving out ``exclude``
    (the runs it failed on itself); ``[]`` when none is free."""
    now = _now()
    free = and_(claims.c.job == job, claims.c.run_id != JOB_HOLDER, claims.c.done.is_(False), or_(claims.c.worker.is_(None), claims.c.lease_until < now))
    if exclude:
        free = and_(free, claims.c.run_id.not_in(list(exclude)))
    query = select(claims.c.run_id).where(free).order_by(claims.c.position).limit(limit)
    if not is_sqlite(engine):
        query = query.with_for_update(skip_locked=True)
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(query)]
        if ids:
            conn.execute(
                update(claims)
                .where(claims.c.job == job, claims.c.run_id.in_(ids))
                .values(worker=worker, lease_until=now + lease_s)
            )
    return ids


def renew(engine: Engine, job: str, worker: str, run_ids: Sequence[str], *, lease_s: float = LEASE_S) -> int:
    """Extend this worker's leases on runs it still computes; returns how many it still held."""
    if not run_ids:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            update(claims)
            .where(claims.c.job == job, claims.c.worker == worker, claims.c.done.is_(False),
                   claims.c.run_id.in_(list(run_ids)))
            .values(lease_until=_now() + lease_s)
        )
    return int(result.rowcount or 0)


def finish(engine: Engine, job: str, run_id: str | Sequence[str], worker: str) -> None:
    """Mark runs done (saved), by ``worker``: they are never claimed again."""
    ids = [run_id] if isinstance(run_id, str) else list(run_id)
    for start in range(0, len(ids), 500):
        with engine.begin() as conn:
            conn.execute(
                update(claims)
                .where(claims.c.job == job, claims.c.run_id.in_(ids[start : start + 500]))
                .values(done=True, worker=worker)
            )


def reopen(engine: Engine, job: str, run_ids: Sequence[str]) -> None:
    """Make finished runs free again: their saved run is gone (deleted since), so they are to be redone."""
    ids = list(run_ids)
    for start in range(0, len(ids), 500):
        with engine.begin() as conn:
            conn.execute(
                update(claims)
                .where(claims.c.job == job, claims.c.done.is_(True))
                .where(claims.c.run_id.in_(ids[start : start + 500]))
                .values(done=False, worker=None, lease_until=0.0)
            )


def finished_by(engine: Engine, job: str, run_ids: Sequence[str]) -> dict[str, str | None]:
    """The done runs among ``run_ids``, each with the worker that finished it."""
    found: dict[str, str | None] = {}
    ids = list(dict.fromkeys(run_ids))
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(claims.c.run_id, claims.c.worker)
                .where(claims.c.job == job, claims.c.done.is_(True))
                .where(claims.c.run_id.in_(ids[start : start + 500]))
            )
            found.update({r[0]: r[1] for r in rows})
    return found


def held_by_others(engine: Engine, job: str, worker: str) -> int:
    """Runs of the job another worker computes now, under a live lease (wait for them, or their lease)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(claims.c.worker).where(
                claims.c.job == job, claims.c.run_id != JOB_HOLDER, claims.c.done.is_(False),
                claims.c.worker.is_not(None), claims.c.worker != worker, claims.c.lease_until >= _now(),
            )
        ).all()  # fmt: skip
    return len(rows)


def reap(engine: Engine, job: str) -> int:
    """Let go of the claims that dead workers of this machine hold on the job; returns how many."""
    now = _now()
    with engine.connect() as conn:
        workers = {
            r[0]
            for r in conn.execute(
                select(claims.c.worker).distinct().where(
                    claims.c.job == job, claims.c.done.is_(False), claims.c.worker.is_not(None),
                    claims.c.lease_until >= now,
                )
            )
        }  # fmt: skip
    dead = [w for w in workers if _dead_here(w)]
    if not dead:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            update(claims)
            .where(claims.c.job == job, claims.c.done.is_(False), claims.c.worker.in_(dead))
            .values(worker=None, lease_until=0.0)
        )
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class InputRef:
    input_id: str | int | None
    input_line: int | None


def input_refs(engine: Engine, run_ids: Sequence[str], job: str | None = None) -> dict[str, InputRef]:
    """Each run's input id and line as a batch registered them (that job's, or any job's without one)."""
    refs: dict[str, InputRef] = {}
    ids = list(dict.fromkeys(run_ids))
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            query = select(claims.c.run_id, claims.c.input_id, claims.c.input_line).where(
                claims.c.run_id.in_(ids[start : start + 500])
            )
            if job is not None:
                query = query.where(claims.c.job == job)
            for rid, input_id, line in conn.execute(query):
                if rid not in refs or refs[rid].input_line is None:
                    refs[rid] = InputRef(None if input_id is None else json.loads(input_id), line)
    return refs


def job_run_ids(engine: Engine, job: str) -> list[str]:
    """The runs of a job, in input order (empty for a job nobody registered)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(claims.c.run_id)
                .where(claims.c.job == job, claims.c.run_id != JOB_HOLDER)
                .order_by(claims.c.position)
            ).scalars()
        )


def release(engine: Engine, job: str, worker: str, run_ids: Sequence[str]) -> None:
    """Give back runs this worker claimed but did not finish (it failed on them or is stopping)."""
    if not run_ids:
        return
    with engine.begin() as conn:
        conn.execute(
            update(claims)
            .where(claims.c.job == job, claims.c.worker == worker, claims.c.done.is_(False),
                   claims.c.run_id.in_(list(run_ids)))
            .values(worker=None, lease_until=0.0)
        )


def state(engine: Engine, job: str) -> ClaimState:
    now = _now()
    with engine.connect() as conn:
        rows = conn.execute(
            select(claims.c.done, claims.c.worker, claims.c.lease_until)
            .where(claims.c.job == job, claims.c.run_id != JOB_HOLDER)
        ).all()
    done = sum(1 for d, _, _ in rows if d)
    held = sum(1 for d, w, lease in rows if not d and w is not None and lease >= now)
    return ClaimState(done=done, held=held, free=len(rows) - done - held)


def forget(engine: Engine, job: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(claims).where(claims.c.job == job))


def hold_job(engine: Engine, job: str, worker: str, *, lease_s: float = LEASE_S) -> None:
    """On SQLite, refuse a second live worker on the same job, naming the one that runs it.

    The holder renews this lease with :func:`renew_job`; a killed holder's lease runs out and the job can
    be taken again. On other databases several workers are the point, and this does nothing.
    """
    if not is_sqlite(engine):
        return
    now = _now()
    with engine.begin() as conn:
        row = conn.execute(
            select(claims.c.worker, claims.c.lease_until).where(claims.c.job == job, claims.c.run_id == JOB_HOLDER)
        ).first()
        if (row is not None and row.worker not in (None, worker) and row.lease_until >= now
                and not _dead_here(row.worker)):
            wait = row.lease_until - now
            raise InputError(
                f"Another worker ({row.worker}) is running this batch on the same SQLite database. SQLite takes "
                "one worker at a time; use PostgreSQL (DATABASE_URL=postgresql+psycopg://...) for several, or "
                f"wait for it to finish (if it was killed, its claim runs out in {wait:.0f} s)."
            )
        if row is None:
            conn.execute(insert(claims).values(job=job, run_id=JOB_HOLDER, position=-1, worker=worker,
                                               lease_until=now + lease_s, done=False))
        else:
            conn.execute(update(claims).where(claims.c.job == job, claims.c.run_id == JOB_HOLDER)
                         .values(worker=worker, lease_until=now + lease_s))


def renew_job(engine: Engine, job: str, worker: str, *, lease_s: float = LEASE_S) -> None:
    if is_sqlite(engine):
        with engine.begin() as conn:
            conn.execute(update(claims).where(claims.c.job == job, claims.c.run_id == JOB_HOLDER,
                                              claims.c.worker == worker).values(lease_until=_now() + lease_s))


def let_go_job(engine: Engine, job: str, worker: str) -> None:
    if is_sqlite(engine):
        with engine.begin() as conn:
            conn.execute(update(claims).where(claims.c.job == job, claims.c.run_id == JOB_HOLDER,
                                              claims.c.worker == worker).values(worker=None, lease_until=0.0))

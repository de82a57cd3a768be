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
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import Engine, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from fusion.errors import InputError
from storage.db import is_sqlite
from storage.tables import BatchClaimRow

JOB_HOLDER = "__job__"  # the run_id of the row that says which worker holds a job on SQLite
LEASE_S = 120.0  # a killed worker's prompts are taken over after this long
claims = BatchClaimRow.__table__


def worker_name() -> str:
    """This process, as other workers and the operator see it: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ClaimState:
    done: int  # finished by any worker
    held: int  # being computed under a live lease
    free: int  # not yet claimed, or their lease ran out


def _now() -> float:
    return time.time()


def register(engine: Engine, job: str, run_ids: Sequence[str]) -> None:
    """Make sure every run of the job has a claim row (a second worker registering the same ids is a no-op)."""
    with engine.begin() as conn:
        have = {
            r[0]
            for r in conn.execute(
                select(claims.c.run_id).where(claims.c.job == job, claims.c.run_id.in_(bindparam("ids", expanding=True))),
                {"ids": list(run_ids)},
            )
        } if run_ids else set()
        missing = [{"job": job, "run_id": rid, "position": i} for i, rid in enumerate(run_ids) if rid not in have]
    for row in missing:  # one by one: another worker may insert the same row between our read and write
        try:
            with engine.begin() as conn:
                conn.execute(insert(claims).values(worker=None, lease_until=0.0, done=False, **row))
        except IntegrityError:
            pass


def claim(engine: Engine, job: str, worker: str, *, limit: int = 1, lease_s: float = LEASE_S) -> list[str]:
    """Take up to ``limit`` free runs of the job for ``worker`` (in input order); ``[]`` when none is free."""
    now = _now()
    free = and_(claims.c.job == job, claims.c.run_id != JOB_HOLDER, claims.c.done.is_(False), or_(claims.c.worker.is_(None), claims.c.lease_until < now))
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


def finish(engine: Engine, job: str, run_id: str, worker: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(claims).where(claims.c.job == job, claims.c.run_id == run_id).values(done=True, worker=worker)
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
        if row is not None and row.worker not in (None, worker) and row.lease_until >= now:
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

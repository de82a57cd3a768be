"""The database as the batch runner's :class:`fusion.batch.RunSink` and :class:`fusion.batch.ClaimSink`:
the engine decides what to compute, this decides where the finished runs go and which worker computes
which run (:mod:`storage.claims`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Collection, Sequence

from sqlalchemy import Engine, select

from fusion.types import Run
from storage import claims as claims_db
from storage.db import is_sqlite
from storage.runs import existing_run_ids, load_run, save_run
from storage.tables import RunRow, RunTagRow


class DatabaseSink:
    """Runs of a batch stored through :mod:`storage.runs` (text scrubbed as every saved run is)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def done(self, run_ids: Sequence[str]) -> set[str]:
        return existing_run_ids(self.engine, run_ids)

    def load(self, run_id: str) -> Run | None:
        return load_run(self.engine, run_id)

    def save(self, run: Run) -> None:
        save_run(self.engine, run)


class DatabaseClaims:
    """This worker's claims on a batch job, in the ``batch_claims`` table.

    On SQLite the job is held by one worker at a time (:func:`storage.claims.hold_job`): a second one is
    refused at :meth:`start` with an :class:`~fusion.errors.InputError` naming the first.
    """

    def __init__(self, engine: Engine, *, lease_s: float = claims_db.LEASE_S) -> None:
        self.engine = engine
        self.lease_s = float(lease_s)
        self.job = ""
        self.worker = ""
        self._held: set[str] = set()

    @property
    def exclusive(self) -> bool:
        return is_sqlite(self.engine)

    def start(self, job: str, runs: Sequence[tuple[str, Any]], output: str | os.PathLike[str]) -> None:
        self.job = job
        self.worker = claims_db.worker_name(output)
        claims_db.hold_job(self.engine, job, self.worker, lease_s=self.lease_s)
        inputs = [(item.input_id, item.line) for _, item in runs]
        claims_db.register(self.engine, job, [rid for rid, _ in runs], inputs=inputs)
        claims_db.reap(self.engine, job)

    def finished(self, run_ids: Sequence[str]) -> dict[str, bool]:
        """The done runs among ``run_ids``, each with whether this worker (this host and output file, in
        this process or an earlier one) finished it. With one worker per job (SQLite) every run is ours."""
        done = claims_db.finished_by(self.engine, self.job, run_ids)
        if self.exclusive:
            return dict.fromkeys(done, True)
        return {rid: claims_db.same_owner(who, self.worker) for rid, who in done.items()}

    def reopen(self, run_ids: Sequence[str]) -> None:
        claims_db.reopen(self.engine, self.job, run_ids)

    def claim(self, exclude: Collection[str]) -> str | None:
        got = claims_db.claim(
            self.engine, self.job, self.worker, limit=1, lease_s=self.lease_s, exclude=exclude
        )
        if not got:
            return None
        self._held.add(got[0])
        return got[0]

    def holds(self, run_id: str) -> bool:
        return claims_db.renew(self.engine, self.job, self.worker, [run_id], lease_s=self.lease_s) == 1

    def renew(self, run_ids: Collection[str]) -> None:
        claims_db.renew_job(self.engine, self.job, self.worker, lease_s=self.lease_s)
        claims_db.renew(self.engine, self.job, self.worker, list(run_ids), lease_s=self.lease_s)

    def finish(self, run_ids: Sequence[str]) -> None:
        claims_db.finish(self.engine, self.job, list(run_ids), self.worker)
        self._held.difference_update(run_ids)

    def release(self, run_ids: Sequence[str]) -> None:
        claims_db.release(self.engine, self.job, self.worker, list(run_ids))
        self._held.difference_update(run_ids)

    def others_busy(self) -> int:
        claims_db.reap(self.engine, self.job)
        return claims_db.held_by_others(self.engine, self.job, self.worker)

    def stop(self) -> None:
        if not self.job:
            return
        claims_db.release(self.engine, self.job, self.worker, sorted(self._held))
        self._held.clear()
        claims_db.let_go_job(self.engine, self.job, self.worker)


def write_batch_output(
    engine: Engine,
    target: str | os.PathLike[str] | IO[str],
    *,
    job: str | None = None,
    tag: str | None = None,
) -> int:
    """Write stored runs as ``fusion batch`` output lines (the same fields, ``input_id`` and ``input_line``
    from the job's claims): every run of ``job`` in input order, or of ``tag`` (or all runs) in order of
    creation. Several workers each write their own output; this rebuilds one file of all of them."""
    from fusion.batch import run_output_record
    from fusion.jsonl import json_line

    if job is not None:
        ids = claims_db.job_run_ids(engine, job)
        if tag is not None:
            with engine.connect() as conn:
                tagged = set(conn.execute(select(RunTagRow.run_id).where(RunTagRow.tag == tag)).scalars())
            ids = [rid for rid in ids if rid in tagged]
    else:
        query = select(RunRow.id).order_by(RunRow.created_at, RunRow.id)
        if tag is not None:
            query = query.join(RunTagRow, RunTagRow.run_id == RunRow.id).where(RunTagRow.tag == tag)
        with engine.connect() as conn:
            ids = list(conn.execute(query).scalars())
    refs = claims_db.input_refs(engine, ids, job=job)
    count = 0
    handle: IO[str]
    close = False
    if isinstance(target, (str, os.PathLike)):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        handle = open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
        close = True
    else:
        handle = target
    try:
        for rid in ids:
            run = load_run(engine, rid)
            if run is None:  # registered, not computed (yet, or it failed)
                continue
            ref = refs.get(rid, claims_db.InputRef(None, None))
            handle.write(json_line(run_output_record(run, ref.input_id, ref.input_line)))
            count += 1
    finally:
        if close:
            handle.close()
    return count

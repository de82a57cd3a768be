"""Several workers sharing one batch job: the :class:`ClaimSink` protocol and the claims path (claim,
compute, save, finish, append; see the notes of :mod:`fusion.batch`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection, Sequence
from typing import Protocol

from fusion.batch.input import BatchItem
from fusion.batch.output import OutputState
from fusion.batch.steps import _advance, _complete_run, _compute_line, _fail, _Job, _line_failure, _resume
from fusion.errors import FusionError


class ClaimSink(Protocol):
    """Which worker computes which run of a job shared by several (``storage.sink.DatabaseClaims``).
    Every method but :meth:`start` acts for this worker on the job :meth:`start` named."""

    lease_s: float  # a claim not renewed for this long is free again

    def start(self, job: str, runs: Sequence[tuple[str, BatchItem]], output: str | os.PathLike[str]) -> None:
        """Join the job (registering its runs); raise :class:`InputError` when this worker may not."""
        ...

    def finished(self, run_ids: Sequence[str]) -> dict[str, bool]:
        """The finished runs among ``run_ids``: True when this worker (its output file) finished it."""
        ...

    def reopen(self, run_ids: Sequence[str]) -> None:
        """Finished runs whose saved run is gone (deleted): free them to be redone."""
        ...

    def claim(self, exclude: Collection[str]) -> str | None:
        """Take the next free run (input order), not one of ``exclude``; None when none is free now."""
        ...

    def holds(self, run_id: str) -> bool:
        """Whether this worker still holds the run (renewing its lease)."""
        ...

    def renew(self, run_ids: Collection[str]) -> None:
        """Extend the leases of the runs this worker computes (and its hold on the job)."""
        ...

    def finish(self, run_ids: Sequence[str]) -> None:
        """The runs are saved: never claimed again."""
        ...

    def release(self, run_ids: Sequence[str]) -> None:
        """Give back runs this worker did not finish."""
        ...

    def others_busy(self) -> int:
        """How many runs of the job other live workers compute now."""
        ...

    def stop(self) -> None:
        """Let go of everything this worker still holds."""
        ...


async def _run_shared(
    items: Sequence[BatchItem],
    ids: dict[int, str],
    state: OutputState,
    in_db: set[str],
    restored: set[str],
    job: _Job,
    claims: ClaimSink,
    concurrency: int,
    poll_s: float | None,
) -> None:
    """The batch as one of several workers: claim, compute, save, finish, append; see the module notes."""
    by_run = {ids[id(item)]: item for item in items}
    todo = _share_out(items, ids, by_run, state, in_db, restored, job, claims)
    waiting = {ids[id(item)] for item in todo}  # neither in this output nor finished elsewhere, yet
    failed: set[str] = set()  # this worker failed on them: not taken again by it (a re-run retries them)
    computing: set[str] = set()
    poll = poll_s if poll_s is not None else min(2.0, claims.lease_s / 3)

    async def slot() -> None:
        while True:
            rid = claims.claim(failed)
            if rid is None:
                _settle(job, claims, waiting, failed)
                if not claims.others_busy():
                    return
                await asyncio.sleep(poll)  # others compute the rest; if one was killed, its lease runs out
                continue
            item = by_run.get(rid)
            if item is None:  # cannot happen: the job is named by exactly these run ids
                failed.add(rid)
                claims.release([rid])
                continue
            computing.add(rid)
            try:
                if not await _run_claimed(job, claims, item, rid):
                    failed.add(rid)
            finally:
                computing.discard(rid)
                if rid not in failed:
                    waiting.discard(rid)  # finished here, or taken over by another (counted already)

    renewing = asyncio.create_task(_renew_leases(claims, computing))
    try:
        await asyncio.gather(*(slot() for _ in range(max(1, int(concurrency)))))
        _settle(job, claims, waiting, failed)
    except FusionError:
        raise
    except Exception as exc:  # noqa: BLE001 - only the claim calls raise here (a line's failure is caught)
        raise _claims_fault(exc) from exc
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)


def _share_out(
    items: Sequence[BatchItem],
    ids: dict[int, str],
    by_run: dict[str, BatchItem],
    state: OutputState,
    in_db: set[str],
    restored: set[str],
    job: _Job,
    claims: ClaimSink,
) -> list[BatchItem]:
    """Square the claims with the sink and this worker's output, then resume: the lines left to claim."""
    # Finished, yet not in the sink: deleted since. Claims are read first and the sink after, so a run
    # another worker saves and finishes meanwhile is seen in the sink and not redone.
    unsaved = list(claims.finished([rid for rid in by_run if rid not in in_db]))
    if unsaved:
        claims.reopen(sorted(set(unsaved) - job.sink.done(unsaved)))
    mine = [rid for rid in state.by_run if rid in in_db and rid in by_run]
    claims.finish(mine)  # in this worker's output and saved: done (a no-op unless a kill came between)
    only_saved = [rid for rid in by_run if rid in in_db and rid not in state.by_run]
    finished = claims.finished(only_saved)
    theirs = {rid for rid, ours in finished.items() if not ours}
    claim_first = {rid for rid in only_saved if rid not in finished}
    return _resume(items, ids, state, in_db, restored, job, theirs=theirs, claim_first=claim_first)


def _settle(job: _Job, claims: ClaimSink, waiting: set[str], failed: Collection[str]) -> None:
    """Count the waiting runs other workers have finished meanwhile (and stop waiting for them)."""
    if not waiting:
        return
    for rid in claims.finished(sorted(waiting)):
        if rid not in job.finished and rid not in failed:
            waiting.discard(rid)
            job.report.elsewhere += 1
            _advance(job.on_progress, elsewhere=True)


async def _renew_leases(claims: ClaimSink, computing: Collection[str]) -> None:
    """Until cancelled: renew the leases of the runs this worker computes (``computing`` is live)."""
    while True:
        await asyncio.sleep(claims.lease_s / 3)
        try:
            claims.renew(set(computing))
        except Exception:  # noqa: BLE001 - a missed renewal is retried; holds() checks before saving
            pass


def _claims_fault(exc: Exception) -> FusionError:
    detail = " ".join(str(exc).split())[:200]
    return FusionError(
        f"the batch's claims could not be read or written ({type(exc).__name__}: {detail}). Finished "
        "prompts are kept; run the same command again when the database is back."
    )


async def _run_claimed(job: _Job, claims: ClaimSink, item: BatchItem, rid: str) -> bool:
    """One claimed line: its stored run when a worker saved it and stopped before finishing it, else
    computed and saved. False when it failed (reported, and the claim given back)."""
    try:
        if rid in job.sink.done([rid]):
            stored = job.sink.load(rid)
            if stored is not None and _complete_run(stored) is None:
                claims.finish([rid])
                job.append(stored, item)
                job.finished[rid] = None
                job.report.recovered += 1
                _advance(job.on_progress, ok=True)
                return True
        run = await _compute_line(job, item, rid)
        if not claims.holds(rid):
            # This worker's lease ran out (it was stalled) and another took the run: its result is the one.
            job.report.elsewhere += 1
            _advance(job.on_progress, elsewhere=True)
            return True
        # Saved, finished, then appended: a kill between leaves the run in no output file (the export has
        # it), never in two.
        job.sink.save(run)
        claims.finish([rid])
        job.append(run, item)
    except Exception as exc:  # noqa: BLE001 - one line's surprise must not sink the others
        try:
            claims.release([rid])
        except Exception:  # noqa: BLE001 - the database is failing too; the lease runs out by itself
            pass
        _fail(job.report, _line_failure(item, exc), job.on_failure, job.on_progress)
        return False
    job.finished[rid] = None
    job.report.done += 1
    _advance(job.on_progress, ok=True)
    return True

"""Running a batch: :func:`arun_batch` (and :func:`run_batch`, its synchronous face) reads the output file
back, repairs what a kill left half done, then runs the rest, alone or as one of several workers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fusion.batch.input import BatchItem, BatchSettings, LineFailure, batch_job_id, batch_run_id
from fusion.batch.limits import RateLimiter
from fusion.batch.output import OutputState, load_output, output_record
from fusion.batch.steps import BatchReport, RunSink, _complete_run, _drain, _fail, _Job, _resume, _run_one
from fusion.batch.workers import ClaimSink, _claims_fault, _run_shared
from fusion.client import ModelClient, ResponseCache
from fusion.errors import FusionError
from fusion.jsonl import json_line
from fusion.types import Run


async def arun_batch(
    items: Sequence[BatchItem],
    *,
    settings: BatchSettings,
    sink: RunSink,
    output: str | os.PathLike[str],
    selector: Any,
    fusor: Any,
    client: ModelClient | None = None,
    cache: ResponseCache | None = None,
    regenerate: bool = False,
    concurrency: int = 4,
    prompt_rate: RateLimiter | None = None,
    input_failures: Sequence[LineFailure] = (),
    on_progress: Callable[..., Any] | None = None,
    on_failure: Callable[[LineFailure], Any] | None = None,
    claims: ClaimSink | None = None,
    poll_s: float | None = None,
) -> BatchReport:
    """Run every item not finished yet, at most ``concurrency`` prompts at once; see the module notes.

    ``sink`` keeps the runs; ``client`` samples lines without candidates (required for them); the selector
    and fusor hold their own clients. ``on_progress(ok=..., skipped=..., elsewhere=...)`` is called once
    per item (a ``CountBar.advance`` fits); ``on_failure`` once per failed line, input failures included.
    ``claims`` shares the job with other workers; ``poll_s`` is how often a worker whose own share is done
    looks whether the runs others hold are finished (default: a third of the lease, at most 2 s).
    """
    report = BatchReport(total=len(items) + len(input_failures))
    ids = {id(item): batch_run_id(item, settings) for item in items}
    out_path = Path(output)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if claims is not None:
        report.job = batch_job_id(ids.values())
        # Before the output file is touched: a worker refused here (SQLite) leaves everything as it was.
        try:
            claims.start(report.job, [(ids[id(item)], item) for item in items], out_path)
        except FusionError:
            raise
        except Exception as exc:  # noqa: BLE001 - the database behind the claims; one clear line
            raise _claims_fault(exc) from exc
    try:
        return await _run_batch(
            items, ids, report, out_path, settings=settings, sink=sink, selector=selector, fusor=fusor,
            client=client, cache=cache, regenerate=regenerate, concurrency=concurrency,
            prompt_rate=prompt_rate, input_failures=input_failures, on_progress=on_progress,
            on_failure=on_failure, claims=claims, poll_s=poll_s,
        )  # fmt: skip
    finally:
        if claims is not None:
            try:
                claims.stop()
            except Exception:  # noqa: BLE001 - not to hide the error in flight; unrenewed leases run out
                pass


async def _run_batch(
    items: Sequence[BatchItem],
    ids: dict[int, str],
    report: BatchReport,
    out_path: Path,
    *,
    settings: BatchSettings,
    sink: RunSink,
    selector: Any,
    fusor: Any,
    client: ModelClient | None,
    cache: ResponseCache | None,
    regenerate: bool,
    concurrency: int,
    prompt_rate: RateLimiter | None,
    input_failures: Sequence[LineFailure],
    on_progress: Callable[..., Any] | None,
    on_failure: Callable[[LineFailure], Any] | None,
    claims: ClaimSink | None,
    poll_s: float | None,
) -> BatchReport:
    for failure in input_failures:
        _fail(report, failure, on_failure, on_progress)
    state = load_output(out_path)
    report.repaired_tail = state.cut_tail
    in_db, restored = _restore_from_output(items, ids, state, sink)

    # Opened once for the whole batch; each append is one small write, not worth a thread.
    with out_path.open("a", encoding="utf-8", newline="") as out:  # noqa: ASYNC230

        def append(run: Run, item: BatchItem) -> None:
            out.write(json_line(output_record(run, item)))
            out.flush()  # survives a kill of this process (the OS has the bytes)

        job = _Job(
            settings=settings, sink=sink, selector=selector, fusor=fusor, client=client, cache=cache,
            regenerate=regenerate, prompt_rate=prompt_rate, report=report, append=append,
            on_progress=on_progress, on_failure=on_failure,
        )  # fmt: skip
        if claims is None:
            todo = _resume(items, ids, state, in_db, restored, job)
            await _drain(todo, lambda item: _run_one(job, item, ids[id(item)]), concurrency)
        else:
            await _run_shared(items, ids, state, in_db, restored, job, claims, concurrency, poll_s)

    report.run_ids = [ids[id(item)] for item in items if ids[id(item)] in job.finished]
    return report


def _restore_from_output(
    items: Sequence[BatchItem], ids: dict[int, str], state: OutputState, sink: RunSink
) -> tuple[set[str], set[str]]:
    """(run ids the sink holds, those of them saved back now from the output file). An output line whose
    run the sink lacks is saved back, or dropped from the file to redo the work when it is unusable."""
    in_db = sink.done(list(ids.values()))
    unusable: set[str] = set()
    restored: set[str] = set()
    for item in items:
        rid = ids[id(item)]
        if rid in state.by_run and rid not in in_db:
            try:
                run = Run.from_dict(state.by_run[rid])
                if run.id != rid or _complete_run(run) is not None:
                    raise ValueError("incomplete run")
                sink.save(run)
            except Exception:  # noqa: BLE001 - whatever is wrong with that line, recomputing repairs it
                unusable.add(rid)
            else:
                in_db.add(rid)
                restored.add(rid)
    if unusable:
        state.rewrite(unusable)
    return in_db, restored


def run_batch(items: Sequence[BatchItem], **kwargs: Any) -> BatchReport:
    """Synchronous :func:`arun_batch`."""
    return asyncio.run(arun_batch(items, **kwargs))

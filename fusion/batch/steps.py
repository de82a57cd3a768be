"""The steps every line of a batch goes through, one worker or several: what the lines of one batch share
while it runs (:class:`_Job`), the count of what happened (:class:`BatchReport`), where the runs are kept
(:class:`RunSink`), resuming, computing and saving one line, and reporting a failed one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fusion.batch.input import BATCH_SOURCE, BatchItem, BatchSettings, LineFailure
from fusion.batch.limits import RateLimiter
from fusion.batch.output import OutputState
from fusion.client import ModelClient, ResponseCache
from fusion.errors import FusionError, InputError
from fusion.types import Candidate, Run


@dataclass
class BatchReport:
    total: int = 0  # input lines, valid or not (blank lines aside)
    done: int = 0  # runs computed now
    skipped: int = 0  # already finished before this start
    recovered: int = 0  # half-finished (only in the database, or only in the output) and completed now
    failed: int = 0
    failures: list[LineFailure] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)  # every finished run of this input, in input order
    repaired_tail: bool = False
    elsewhere: int = 0  # finished by other workers of the job (in their output files, not in this one)
    job: str | None = None  # the job's id when workers share it (a ClaimSink was given)

    @property
    def ok(self) -> bool:
        return self.failed == 0


def _complete_run(run: Run) -> str | None:
    """Why a computed run is not usable for annotation, or None when it is."""
    if run.bon is None or run.bon.index is None:
        return "no Best-of-N pick: " + ((run.bon.error if run.bon else None) or "the selector chose nothing")
    if run.fused is None or run.fused.error or not run.fused.text.strip():
        return "fusion failed: " + ((run.fused.error if run.fused else None) or "the fused answer is empty")
    return None


def _merge_tags(*groups: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(t for g in groups for t in g))


class RunSink(Protocol):
    """Where a batch keeps its finished runs (``storage.sink.DatabaseSink``: the database). A run is saved
    before its output line is written, so after a kill the sink is what the output is repaired from."""

    def done(self, run_ids: Sequence[str]) -> set[str]:
        """Which of ``run_ids`` are kept already."""
        ...

    def load(self, run_id: str) -> Run | None:
        """The kept run with this id, or None."""
        ...

    def save(self, run: Run) -> None:
        """Keep ``run`` (replacing a kept run with its id)."""
        ...


@dataclass
class _Job:
    """What every line of one batch shares while it runs."""

    settings: BatchSettings
    sink: RunSink
    selector: Any
    fusor: Any
    client: ModelClient | None
    cache: ResponseCache | None
    regenerate: bool
    prompt_rate: RateLimiter | None
    report: BatchReport
    append: Callable[[Run, BatchItem], None]
    on_progress: Callable[..., Any] | None
    on_failure: Callable[[LineFailure], Any] | None
    finished: dict[str, None] = field(default_factory=dict)  # run ids done, in order of finishing


def _resume(
    items: Sequence[BatchItem],
    ids: dict[int, str],
    state: OutputState,
    in_db: set[str],
    restored: set[str],
    job: _Job,
    *,
    theirs: Collection[str] = (),
    claim_first: Collection[str] = (),
) -> list[BatchItem]:
    """Count the lines finished already, complete those half finished (in the sink, not in the output:
    their line is written from the stored run) and return the rest, to compute.

    With other workers: ``theirs`` were finished by another worker (in its output, not to be written to
    this one); ``claim_first`` are in the sink but nobody finished them, so they are returned too (the
    worker that claims one writes its line from the sink)."""
    report, on_progress = job.report, job.on_progress
    todo: list[BatchItem] = []
    for item in items:
        rid = ids[id(item)]
        if rid in theirs:
            report.elsewhere += 1
            _advance(on_progress, elsewhere=True)
        elif rid in claim_first:
            todo.append(item)
        elif rid in state.by_run and rid in in_db:
            job.finished[rid] = None
            if rid in restored:
                report.recovered += 1
                _advance(on_progress, ok=True)
            else:
                report.skipped += 1
                _advance(on_progress, skipped=True)
        elif rid in in_db:
            stored = job.sink.load(rid)
            if stored is not None and _complete_run(stored) is None:
                job.append(stored, item)
                job.finished[rid] = None
                report.recovered += 1
                _advance(on_progress, ok=True)
            else:
                todo.append(item)
        else:
            todo.append(item)
    return todo


async def _compute_line(job: _Job, item: BatchItem, rid: str) -> Run:
    """One line's run, complete and named (raises when it is not usable)."""
    if job.prompt_rate is not None:
        await job.prompt_rate.acquire()
    run = await _compute(
        item,
        job.settings,
        selector=job.selector,
        fusor=job.fusor,
        client=job.client,
        cache=job.cache,
        regenerate=job.regenerate,
    )
    problem = _complete_run(run)
    if problem is not None:
        raise FusionError(problem)
    run.id = rid
    run.source = BATCH_SOURCE
    run.tags = _merge_tags(item.tags, job.settings.tags)
    return run


def _line_failure(item: BatchItem, exc: Exception) -> LineFailure:
    if isinstance(exc, FusionError):
        return LineFailure(item.line, item.input_id, str(exc))
    detail = " ".join(str(exc).split())[:300]
    return LineFailure(item.line, item.input_id, f"{type(exc).__name__}: {detail}")


async def _run_one(job: _Job, item: BatchItem, rid: str) -> None:
    """Compute one line, save it, append its output line; a failure is reported, never raised."""
    try:
        run = await _compute_line(job, item, rid)
        # The sink first, then the output line: a kill in between is repaired from the sink.
        job.sink.save(run)
        job.append(run, item)
    except Exception as exc:  # noqa: BLE001 - one line's surprise must not sink the others
        _fail(job.report, _line_failure(item, exc), job.on_failure, job.on_progress)
    else:
        job.finished[rid] = None
        job.report.done += 1
        _advance(job.on_progress, ok=True)


async def _drain(
    todo: Sequence[BatchItem], one: Callable[[BatchItem], Awaitable[None]], concurrency: int
) -> None:
    """Run ``one`` on every item, at most ``concurrency`` at once, in input order of starting."""
    queue: asyncio.Queue[BatchItem] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)

    async def worker() -> None:
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await one(item)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(int(concurrency), len(todo) or 1)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise


async def _compute(
    item: BatchItem,
    settings: BatchSettings,
    *,
    selector: Any,
    fusor: Any,
    client: ModelClient | None,
    cache: ResponseCache | None,
    regenerate: bool,
) -> Run:
    from fusion.pipeline import acomplete, arun_live

    if item.candidates is not None:
        candidates = [Candidate(index=i, text=t, sample_index=i) for i, t in enumerate(item.candidates)]
        run = Run(prompt=item.prompt, candidates=candidates, source=BATCH_SOURCE)
        return await acomplete(run, selector=selector, fusor=fusor)
    if settings.offline:
        raise InputError("this line has no candidates, and --offline cannot generate them")
    if not settings.pool or client is None:
        raise InputError("this line has no candidates and no --model was given to generate them")
    n = sum(s.samples for s in settings.pool)
    return await arun_live(
        item.prompt,
        list(settings.pool),
        settings.sampling,
        client=client,
        selector=selector,
        fusor=fusor,
        cache=cache,
        regenerate=regenerate,
        concurrency=n,  # a prompt's samples all at once; the batch bounds prompts (and the limiter calls)
        stream=False,
    )


def _advance(callback: Callable[..., Any] | None, **kw: Any) -> None:
    if callback is not None:
        callback(**kw)


def _fail(
    report: BatchReport,
    failure: LineFailure,
    on_failure: Callable[[LineFailure], Any] | None,
    on_progress: Callable[..., Any] | None,
) -> None:
    report.failed += 1
    report.failures.append(failure)
    if on_failure is not None:
        on_failure(failure)
    _advance(on_progress, ok=False)

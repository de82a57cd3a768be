"""Batch runs: many prompts through the whole method, every run stored and written as a JSON line.

Input: JSON Lines ``{"id"?, "prompt", "system"?, "tags"?, "candidates"?}``. A line with candidates is
picked and fused as it is (offline: consensus + extractive); a line without is sampled from the pool first.

Resume. A batch can be killed at any moment and run again with the same command:

* The identity of an input line is its ``id`` when it has one, else a hash of its prompt, system message and
  candidates. The run id is a hash of (identity, settings that shape the result: pool, sampling, selector,
  fusor), so a re-run computes the same run id and can never store the same work twice. Transport settings
  (timeouts, retries, api_base, concurrency) and tags are not part of it.
* A line is finished when its run is both in the database and in the output file. Each run is saved to the
  database first, then appended to the output; when a kill leaves only one half, the next start rebuilds the
  other half from it (no model call): a run in the database gets its output line written from the stored
  run, an output line whose run is missing from the database is saved back.
* A kill in the middle of writing leaves a half line at the end of the output: it is cut off on the next
  start (that run is in the database already, so its line is written again whole).
* Output lines are appended as runs finish, so with concurrency their order is completion order, not
  input order; ``input_id`` and ``input_line`` tie each one back to its input.
* A failed line (malformed input, provider error, not enough usable candidates, no pick or no fusion) is
  not written anywhere: it is reported, and the next run of the command retries it.

Storage: where runs go is a :class:`RunSink` passed in (``storage.sink.DatabaseSink`` is the database);
this module never imports storage.

Several workers. With a :class:`ClaimSink` (``storage.sink.DatabaseClaims``), several processes given the
same input and settings share its prompts. The job is named by its run ids (:func:`batch_job_id`: same
input and settings, same job). Each worker claims a run before computing it, renews the leases of the
runs it computes, marks a run finished right after saving it, then appends it to *its own* output file;
a run another worker holds is left to it, and waited for once the worker's own share is done (if that
worker was killed, its lease runs out and the run is taken over). So every run is computed and saved by
one worker and is in at most one output file; runs finished by other workers are counted as "taken by
other workers" and are in their files (``fusion export --format runs`` writes one file of all of them).
The order save, finish, append means a kill can leave a run saved and finished but in no output file
(never in two): the export has it. On SQLite the claim sink admits one worker per job.

Rate limit: :class:`RateLimiter` spaces out starts evenly; wrap the model client in
:class:`RateLimitedClient` to limit model calls, or pass a limiter as ``prompt_rate`` to limit prompts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fusion.client import Completion, CompletionRequest, ModelClient, ResponseCache, TokenCallback
from fusion.errors import FusionError, InputError
from fusion.jsonl import iter_json_lines, json_line, storable_text
from fusion.types import Candidate, ModelSpec, Prompt, Run, SamplingSettings
from fusion.validate import check_candidate_texts, check_prompt

BATCH_SOURCE = "batch"
RUN_ID_PREFIX = "batch-"
FINGERPRINT_VERSION = 1


# ----------------------------------------------------------------------------------------------------------
# Input


@dataclass
class BatchItem:
    """One valid input line."""

    line: int
    input_id: str | int | None
    prompt: Prompt
    tags: list[str] = field(default_factory=list)
    candidates: list[str] | None = None  # None: sample them from the pool

    @property
    def content_hash(self) -> str:
        blob = json.dumps(
            {"prompt": self.prompt.text, "system": self.prompt.system, "candidates": self.candidates},
            ensure_ascii=False,
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def identity(self) -> str:
        """The input id when given (typed: 1 and "1" differ), else the content hash."""
        if self.input_id is not None:
            return "id:" + json.dumps(self.input_id, ensure_ascii=False)
        return "sha256:" + self.content_hash

    @property
    def label(self) -> str:
        return f"line {self.line}" + (f" (id {self.input_id})" if self.input_id is not None else "")


@dataclass
class LineFailure:
    line: int
    input_id: str | int | None
    message: str

    def __str__(self) -> str:
        ident = f" (id {self.input_id})" if self.input_id is not None else ""
        return f"line {self.line}{ident}: {self.message}"


def parse_item(obj: dict[str, Any], line: int) -> BatchItem:
    """Validate one parsed input line; raises :class:`InputError` naming what is wrong."""
    prompt = obj.get("prompt")
    if not isinstance(prompt, str):
        raise InputError("'prompt' is missing or not a string")
    check_prompt(prompt)
    system = obj.get("system")
    if system is not None and not isinstance(system, str):
        raise InputError("'system' must be a string")
    tags = obj.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        raise InputError("'tags' must be a list of non-empty strings")
    rid = obj.get("id")
    if rid is not None and (not isinstance(rid, (str, int)) or isinstance(rid, bool) or rid == ""):
        raise InputError("'id' must be a non-empty string or a number")
    texts: list[str] | None = None
    if obj.get("candidates") is not None:
        # Two usable candidates at least: with one there is nothing to choose between or fuse.
        texts = check_candidate_texts(obj["candidates"], low=2)
    # As the database will hold them (NUL and lone surrogates made U+FFFD), so that the output line, the
    # stored run and the run id all agree.
    return BatchItem(
        line=line,
        input_id=storable_text(rid) if isinstance(rid, str) else rid,
        prompt=Prompt(storable_text(prompt), system=storable_text(system) if system else None),
        tags=[storable_text(t.strip()) for t in tags],
        candidates=[storable_text(t) for t in texts] if texts is not None else None,
    )


def read_items(lines: Iterable[str] | Iterable[bytes] | Any) -> tuple[list[BatchItem], list[LineFailure]]:
    """Parse a whole input: valid items, and a failure per bad line (malformed JSON, missing prompt, an id
    used twice for different content). A line repeating an earlier one exactly is dropped silently."""
    items: list[BatchItem] = []
    failures: list[LineFailure] = []
    seen: dict[str, BatchItem] = {}
    for lineno, obj, error in iter_json_lines(lines):
        if error is None:
            try:
                item = parse_item(obj or {}, lineno)
            except InputError as exc:
                error = str(exc)
            else:
                first = seen.get(item.identity)
                if first is None:
                    seen[item.identity] = item
                    items.append(item)
                elif first.content_hash != item.content_hash:
                    failures.append(
                        LineFailure(
                            lineno,
                            item.input_id,
                            f"id {item.input_id!r} is already used on line {first.line}",
                        )
                    )
                continue
        rid = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), (str, int)) else None
        failures.append(LineFailure(lineno, rid, error))
    return items, failures


# ----------------------------------------------------------------------------------------------------------
# Settings and run ids


@dataclass(frozen=True)
class BatchSettings:
    """What shapes a batch run's result, hence its run id. ``selector`` is "consensus" or
    "judge:<model>", ``fusor`` "extractive" or "llm:<model>"."""

    selector: str = "consensus"
    fusor: str = "extractive"
    pool: tuple[ModelSpec, ...] = ()
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    preset: str | None = None
    template: str | None = None
    shuffle_seed: int | None = None
    tags: tuple[str, ...] = ()  # added to every run; not part of the identity
    offline: bool = False  # no model calls at all: a line without candidates is an error

    def fingerprint(self, item: BatchItem) -> dict[str, Any]:
        fp: dict[str, Any] = {"v": FINGERPRINT_VERSION, "selector": self.selector, "fusor": self.fusor}
        if self.fusor != "extractive":
            template_hash = hashlib.sha256(self.template.encode()).hexdigest() if self.template else None
            fp.update(preset=self.preset, template=template_hash, shuffle_seed=self.shuffle_seed)
        if item.candidates is None:
            # Only lines sampled from the pool depend on it and on the sampling settings.
            s = self.sampling
            fp["pool"] = [[m.model, m.samples] for m in self.pool]
            fp["sampling"] = [s.temperature, s.top_p, s.max_tokens, s.seed]
        return fp


def batch_run_id(item: BatchItem, settings: BatchSettings) -> str:
    blob = json.dumps([item.identity, settings.fingerprint(item)], sort_keys=True, ensure_ascii=False)
    return RUN_ID_PREFIX + hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:16]


JOB_ID_PREFIX = "job-"


def batch_job_id(run_ids: Iterable[str]) -> str:
    """The job of a batch: a hash of its sorted run ids, so every worker given the same input and settings
    (lines in any order) names the same job."""
    blob = "\n".join(sorted(set(run_ids)))
    return JOB_ID_PREFIX + hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------------
# Rate limiting


class RateLimiter:
    """At most ``rate`` starts per second, evenly spaced (no bursts): start k happens no earlier than
    ``first + k / rate``. ``clock`` and ``sleep`` are injectable for tests."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise InputError(f"The rate limit must be a positive number per second; got {rate!r}.")
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    async def acquire(self) -> float:
        """Wait for the next slot; returns the slot's time on ``clock``."""
        now = self._clock()
        # Reserve before awaiting: the read and the write happen in one step of the event loop, so two
        # tasks never get the same slot.
        slot = now if self._next is None else max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)
        return slot


class RateLimitedClient:
    """A :class:`ModelClient` that waits for ``limiter`` before every call. Cache hits never reach the
    client, so they cost nothing; retries inside the wrapped client are not counted separately."""

    def __init__(self, inner: ModelClient, limiter: RateLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    async def complete(
        self,
        request: CompletionRequest,
        *,
        api_key: str | None = None,
        on_token: TokenCallback | None = None,
    ) -> Completion:
        await self.limiter.acquire()
        return await self.inner.complete(request, api_key=api_key, on_token=on_token)


# ----------------------------------------------------------------------------------------------------------
# Output file


def _finite(value: Any) -> Any:
    """NaN and infinities become null: strict JSON loaders (the datasets library) refuse them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def output_record(run: Run, item: BatchItem) -> dict[str, Any]:
    """The output line of a run: ``Run.to_dict()`` plus ``input_id``, ``input_line``, and ``kept`` and
    ``diff`` as ``fuse`` writes them (see :func:`fusion.readout.readout_fields`)."""
    return run_output_record(run, item.input_id, item.line)


def run_output_record(run: Run, input_id: str | int | None, input_line: int | None) -> dict[str, Any]:
    """:func:`output_record` from the input's id and line (a stored run rebuilt into a batch line)."""
    from fusion.readout import readout_fields

    record = _finite(run.to_dict())
    record.update(_finite(readout_fields(run)))
    record["input_id"] = input_id
    record["input_line"] = input_line
    return record


@dataclass
class OutputState:
    """What an existing output file holds: its valid lines by run id (first one wins), kept raw."""

    path: Path
    lines: list[tuple[str | None, str]] = field(default_factory=list)  # (run id or None, raw line with "\n")
    by_run: dict[str, dict[str, Any]] = field(default_factory=dict)
    cut_tail: bool = False  # a half-written last line was removed
    dropped: int = 0  # unreadable or duplicate lines left out

    def rewrite(self, drop: Iterable[str] = ()) -> None:
        """Replace the file atomically with the kept lines, without the runs in ``drop``."""
        gone = set(drop)
        before = len(self.lines)
        self.lines = [(rid, raw) for rid, raw in self.lines if rid is None or rid not in gone]
        self.dropped += before - len(self.lines)
        for rid in gone:
            self.by_run.pop(rid, None)
        _atomic_write(self.path, "".join(raw for _, raw in self.lines))


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_output(path: str | os.PathLike[str]) -> OutputState:
    """Read an output file for resuming, cutting off a half-written last line and rewriting the file
    without unreadable or duplicate lines (there are none unless the file was edited by hand)."""
    p = Path(path)
    state = OutputState(path=p)
    if not p.exists():
        return state
    data = p.read_bytes()
    if data and not data.endswith(b"\n"):
        # Killed in the middle of a write: everything after the last newline is half a record.
        cut = data.rfind(b"\n") + 1
        with p.open("r+b") as handle:
            handle.truncate(cut)
        data = data[:cut]
        state.cut_tail = True
    bad = 0
    for raw in data.splitlines(keepends=True):
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            obj = None
        rid = obj.get("id") if isinstance(obj, dict) else None
        if not isinstance(rid, str) or rid in state.by_run:
            if raw.strip():
                bad += 1
            continue
        state.by_run[rid] = obj  # type: ignore[assignment]
        state.lines.append((rid, raw.decode("utf-8")))
    if bad:
        state.rewrite()
        state.dropped = bad
    return state


# ----------------------------------------------------------------------------------------------------------
# Running


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
    todo = _resume(items, ids, state, in_db, restored, job, theirs=theirs, claim_first=claim_first)

    waiting = {ids[id(item)] for item in todo}  # neither in this output nor finished elsewhere, yet
    failed: set[str] = set()  # this worker failed on them: not taken again by it (a re-run retries them)
    computing: set[str] = set()
    poll = poll_s if poll_s is not None else min(2.0, claims.lease_s / 3)

    def settle() -> None:
        """Count the waiting runs other workers have finished meanwhile."""
        if not waiting:
            return
        for rid in claims.finished(sorted(waiting)):
            if rid not in job.finished and rid not in failed:
                waiting.discard(rid)
                job.report.elsewhere += 1
                _advance(job.on_progress, elsewhere=True)

    async def renewer() -> None:
        while True:
            await asyncio.sleep(claims.lease_s / 3)
            try:
                claims.renew(set(computing))
            except Exception:  # noqa: BLE001 - a missed renewal is retried; holds() checks before saving
                pass

    async def slot() -> None:
        while True:
            rid = claims.claim(failed)
            if rid is None:
                settle()
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

    renewing = asyncio.create_task(renewer())
    try:
        await asyncio.gather(*(slot() for _ in range(max(1, int(concurrency)))))
        settle()
    except FusionError:
        raise
    except Exception as exc:  # noqa: BLE001 - only the claim calls raise here (a line's failure is caught)
        raise _claims_fault(exc) from exc
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)


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


def run_batch(items: Sequence[BatchItem], **kwargs: Any) -> BatchReport:
    """Synchronous :func:`arun_batch`."""
    return asyncio.run(arun_batch(items, **kwargs))

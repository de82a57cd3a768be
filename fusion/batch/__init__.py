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
this package never imports storage.

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

Modules: :mod:`~fusion.batch.input` (lines, settings, run and job ids), :mod:`~fusion.batch.output` (the
output file), :mod:`~fusion.batch.limits` (rate limits), :mod:`~fusion.batch.steps` (what every line goes
through), :mod:`~fusion.batch.workers` (several workers on one job), :mod:`~fusion.batch.runner`
(:func:`arun_batch`, :func:`run_batch`). Import from here: the names below are the package's face.
"""

from __future__ import annotations

from fusion.batch.input import (
    BATCH_SOURCE,
    FINGERPRINT_VERSION,
    JOB_ID_PREFIX,
    RUN_ID_PREFIX,
    BatchItem,
    BatchSettings,
    LineFailure,
    batch_job_id,
    batch_run_id,
    parse_item,
    read_items,
)
from fusion.batch.limits import RateLimitedClient, RateLimiter
from fusion.batch.output import OutputState, load_output, output_record, run_output_record
from fusion.batch.runner import arun_batch, run_batch
from fusion.batch.steps import BatchReport, RunSink
from fusion.batch.workers import ClaimSink

__all__ = [
    "BATCH_SOURCE",
    "FINGERPRINT_VERSION",
    "JOB_ID_PREFIX",
    "RUN_ID_PREFIX",
    "BatchItem",
    "BatchReport",
    "BatchSettings",
    "ClaimSink",
    "LineFailure",
    "OutputState",
    "RateLimitedClient",
    "RateLimiter",
    "RunSink",
    "arun_batch",
    "batch_job_id",
    "batch_run_id",
    "load_output",
    "output_record",
    "parse_item",
    "read_items",
    "run_batch",
    "run_output_record",
]

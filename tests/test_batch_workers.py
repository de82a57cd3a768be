"""Several ``fusion batch`` workers on one job: on PostgreSQL they share the prompts (each claimed by one
worker, a killed worker's prompts taken over when its lease ends), on SQLite a second one is refused."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fusion.batch import BatchSettings, batch_job_id, batch_run_id, read_items
from fusion.cli import main
from fusion.types import Run
from storage import claims as claims_db
from storage import runs as runs_db
from storage.migrations import init_db
from storage.tables import BatchClaimRow

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("input_id", "input_line", "kept", "diff", "warnings")

CANDIDATES = [
    "Tides rise and fall twice a day because the Moon pulls on the oceans.",
    "The Moon's gravity pulls the oceans, so the tides rise and fall about twice a day.",
    "Tides are caused mostly by the Moon, and a little by the Sun.",
]


def prompts_file(path: Path, count: int) -> Path:
    lines = [
        {"id": f"p{i:02d}", "prompt": f"Question {i}: why are there tides?", "candidates": CANDIDATES}
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(o) + "\n" for o in lines), encoding="utf-8")
    return path


def expected_run_ids(src: Path) -> list[str]:
    items, failures = read_items(src.read_bytes().splitlines(keepends=True))
    assert not failures
    settings = BatchSettings(offline=True)  # what `batch --offline` runs: consensus pick, extractive fusion
    return [batch_run_id(item, settings) for item in items]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("DATABASE_URL", None)
    env.pop("FUSION_DB_PATH", None)
    env.update({"LITELLM_OFFLINE_MODE": "true", "PYTHONPATH": str(ROOT), **extra})
    return env


def batch_cmd(src: Path, out: Path, *opts: str) -> list[str]:
    return [sys.executable, "-m", "fusion", "batch", str(src), "-o", str(out), "--offline", *opts]


def complete_lines(path: Path) -> list[dict[str, Any]]:
    """The whole lines of an output file (a worker killed while writing may leave half a line at the end)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    return [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        assert proc.poll() is None, "the worker ended before it could be interrupted"
        time.sleep(0.02)
    raise AssertionError(f"{path.name} did not reach {count} lines in {timeout} s")


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def claims_of(url: str, job: str, prefix: str, *, done: bool) -> list[str]:
    engine = init_db(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(BatchClaimRow).where(BatchClaimRow.job == job)).all()
    finally:
        engine.dispose()
    return [r.run_id for r in rows if (r.worker or "").startswith(prefix) and r.done is done]


def test_three_workers_share_a_job_and_a_killed_one_is_taken_over(tmp_path: Path, pg_cluster) -> None:
    url = pg_cluster.new_database()
    init_db(url).dispose()  # migrated once up front, so the workers start at the same speed
    src = prompts_file(tmp_path / "in.jsonl", 60)
    expected = expected_run_ids(src)
    job = batch_job_id(expected)
    outs = [tmp_path / f"worker{i}.jsonl" for i in range(3)]
    # Each worker computes at most 6 prompts a second, so 60 take a few seconds and the kill lands midway;
    # a 2 s lease lets the others take the killed worker's prompts over quickly. The workers are named
    # (FUSION_WORKER), not by this host: a dead worker of this host would be let go at once, without its
    # lease running out, and the lease is what this test is about.
    procs = [
        subprocess.Popen(
            batch_cmd(src, out, "--rate-limit", "6", "--lease", "2", "--concurrency", "2"),
            cwd=ROOT,
            env=cli_env(DATABASE_URL=url, FUSION_WORKER=f"w{i}"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i, out in enumerate(outs)
    ]
    try:
        wait_for_lines(outs[0], 4, procs[0])
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait(timeout=10)
        held_when_killed = claims_of(url, job, "w0:", done=False)
        errs = []
        for proc in procs[1:]:
            _, err = proc.communicate(timeout=180)
            errs.append(err.decode())
            assert proc.returncode == 0, err.decode()
    finally:
        stop(*procs)
        for proc in procs:
            if proc.stderr is not None:
                proc.stderr.close()
    assert procs[0].returncode == -signal.SIGKILL

    written = [complete_lines(out) for out in outs]
    assert 4 <= len(written[0]) < 60, "the killed worker was not stopped midway"
    assert all(written[1:]), "each surviving worker did part of the job"
    per_worker = [[r["id"] for r in lines] for lines in written]
    for ids in per_worker:
        assert len(ids) == len(set(ids)), "a run twice in one output file"
    seen = Counter(rid for ids in per_worker for rid in ids)
    assert max(seen.values()) == 1, "a run in two workers' output files"
    assert set(seen) <= set(expected)
    # A kill between finishing a run and appending its line leaves at most that one run in no file.
    assert len(seen) >= len(expected) - 1

    engine = init_db(url)
    try:
        assert runs_db.existing_run_ids(engine, expected) == set(expected), "a prompt was never saved"
        with engine.connect() as conn:
            rows = {
                r.run_id: r
                for r in conn.execute(select(BatchClaimRow).where(BatchClaimRow.job == job)).all()
                if r.run_id != claims_db.JOB_HOLDER
            }
        assert set(rows) == set(expected) and all(r.done for r in rows.values())
        # Each run was finished by the worker whose file holds it: had a second worker computed and saved
        # it again, the finisher would be that one, and the first worker's line would not match it.
        for i, lines in enumerate(written):
            for record in lines:
                finisher = rows[record["id"]].worker
                assert finisher.startswith(f"w{i}:"), (i, record["id"], finisher)
                stored = runs_db.load_run(engine, record["id"])
                assert stored is not None
                assert stored.to_dict() == {k: v for k, v in record.items() if k not in EXTRAS}
        finished_by_killed = sum(1 for r in rows.values() if r.worker.startswith("w0:"))
        assert len(written[0]) <= finished_by_killed <= len(written[0]) + 1
        # The prompts the killed worker held were taken over by the others once its lease ran out.
        assert held_when_killed, "the killed worker held no prompt: nothing was taken over"
        assert all(rows[rid].worker.startswith(("w1:", "w2:")) for rid in held_when_killed)
    finally:
        engine.dispose()
    # The survivors counted what the others did, and said how to get one file of everything.
    for err in errs:
        assert re.search(r"\d+ taken by other workers", err), err
        assert f"--job {job}" in err

    rebuilt = tmp_path / "all.jsonl"
    export = subprocess.run(
        [sys.executable, "-m", "fusion", "export", "--format", "runs", "--job", job, "-o", str(rebuilt)],
        cwd=ROOT, env=cli_env(DATABASE_URL=url), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    assert "Exported 60 runs (runs)" in export.stderr
    lines = complete_lines(rebuilt)
    assert [r["id"] for r in lines] == expected  # every prompt, once, in input order
    assert [(r["input_id"], r["input_line"]) for r in lines] == [(f"p{i:02d}", i + 1) for i in range(60)]
    by_id = {r["id"]: r for r in lines}
    for record in (r for worker_lines in written for r in worker_lines):
        assert by_id[record["id"]] == record  # the rebuilt line is the line the worker wrote
    Run.from_dict(lines[0])  # and reads back as a run


def test_sqlite_takes_one_worker_per_job(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "fusion.db"
    src = prompts_file(tmp_path / "in.jsonl", 20)
    first_out, second_out = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    env = cli_env(FUSION_DB_PATH=str(db))
    first = subprocess.Popen(
        batch_cmd(src, first_out, "--rate-limit", "5", "-q"), cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for_lines(first_out, 1, first)
        second = subprocess.run(
            batch_cmd(src, second_out, "-q"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert first.poll() is None, "the first worker ended before the second one started"
        assert second.returncode == 2, second.stderr
        message = second.stderr.strip()
        assert len(message.splitlines()) == 1 and "Traceback" not in message, message
        assert "SQLite takes one worker at a time" in message and "PostgreSQL" in message
        assert not second_out.exists()  # refused before touching anything
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err.decode()
    finally:
        stop(first)
        if first.stderr is not None:
            first.stderr.close()
    assert len(complete_lines(first_out)) == 20

    # Once the first worker is done the job is free; on SQLite every saved run is this worker's to write.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FUSION_DB_PATH", str(db))
    assert main(["batch", str(src), "-o", str(second_out), "--offline", "-q"]) == 0
    assert {r["id"] for r in complete_lines(second_out)} == {r["id"] for r in complete_lines(first_out)}

    job = batch_job_id(expected_run_ids(src))
    rebuilt = tmp_path / "all.jsonl"
    assert main(["export", "--format", "runs", "--job", job, "-o", str(rebuilt)]) == 0
    by_id = {r["id"]: r for r in complete_lines(first_out)}
    assert [by_id[r["id"]] for r in complete_lines(rebuilt)] == complete_lines(rebuilt)
    assert main(["export", "--format", "runs", "--job", "job-unknown", "-o", str(tmp_path / "x.jsonl")]) == 2
    everything = tmp_path / "everything.jsonl"
    assert main(["export", "--format", "runs", "-o", str(everything)]) == 0  # no --job: every stored run
    assert sorted(r["id"] for r in complete_lines(everything)) == sorted(by_id)
    assert main(["batch", str(src), "-o", str(second_out), "--offline", "--lease", "0"]) == 2
    assert main(["export", "--format", "votes-csv", "--job", job]) == 2  # --job is the runs format's


def test_a_stalled_worker_whose_lease_ran_out_does_not_save_the_run(tmp_path: Path, db_url: str) -> None:
    """A worker that stops renewing (here: its event loop blocked past the lease) loses the run to another;
    when it wakes up it drops its result instead of saving the run a second time."""
    import asyncio
    import threading

    from fusion.batch import arun_batch
    from fusion.fusors import ExtractiveFusor
    from fusion.selectors import ConsensusSelector
    from storage.sink import DatabaseClaims, DatabaseSink

    class StallingSelector(ConsensusSelector):
        async def aselect(self, prompt, candidates):  # type: ignore[no-untyped-def]
            time.sleep(1.5)  # blocks the loop: no lease renewal meanwhile
            return await super().aselect(prompt, candidates)

    engine = init_db(db_url)
    src = prompts_file(tmp_path / "in.jsonl", 1)
    items, _ = read_items(src.read_bytes().splitlines(keepends=True))
    settings = BatchSettings(offline=True)
    reports: dict[str, Any] = {}

    def run(name: str, selector: Any, lease_s: float) -> None:
        reports[name] = asyncio.run(
            arun_batch(
                items, settings=settings, sink=DatabaseSink(engine), output=tmp_path / f"{name}.jsonl",
                selector=selector, fusor=ExtractiveFusor(), claims=DatabaseClaims(engine, lease_s=lease_s),
                poll_s=0.05,
            )
        )  # fmt: skip

    other = threading.Timer(0.7, run, args=("other", ConsensusSelector(), 30.0))
    other.start()
    try:
        run("stalled", StallingSelector(), 0.3)
    finally:
        other.join(timeout=60)
    try:
        stalled, taker = reports["stalled"], reports["other"]
        assert (stalled.done, stalled.elsewhere, stalled.failed) == (0, 1, 0)
        assert (taker.done, taker.elsewhere) == (1, 0)
        assert complete_lines(tmp_path / "stalled.jsonl") == []
        [line] = complete_lines(tmp_path / "other.jsonl")
        stored = runs_db.load_run(engine, line["id"])
        assert stored is not None and stored.to_dict() == {k: v for k, v in line.items() if k not in EXTRAS}
        assert claims_db.finished_by(engine, stalled.job, [line["id"]])[line["id"]].endswith(
            claims_db.worker_name(tmp_path / "other.jsonl").rsplit(":", 1)[1]
        )
    finally:
        engine.dispose()


def test_a_fault_of_the_claims_database_is_one_clear_error(tmp_path: Path) -> None:
    import pytest

    from fusion.batch import run_batch
    from fusion.errors import FusionError
    from fusion.fusors import ExtractiveFusor
    from fusion.selectors import ConsensusSelector
    from storage.sink import DatabaseClaims, DatabaseSink

    class LostConnection(DatabaseClaims):
        def claim(self, exclude):  # type: ignore[no-untyped-def]
            raise RuntimeError("server closed the connection unexpectedly")

    engine = init_db(f"sqlite:///{tmp_path / 'fusion.db'}")
    items, _ = read_items(prompts_file(tmp_path / "in.jsonl", 2).read_bytes().splitlines(keepends=True))
    with pytest.raises(FusionError, match="claims could not be read or written .*server closed the connection"):
        run_batch(
            items, settings=BatchSettings(offline=True), sink=DatabaseSink(engine), output=tmp_path / "out.jsonl",
            selector=ConsensusSelector(), fusor=ExtractiveFusor(), claims=LostConnection(engine),
        )  # fmt: skip
    # The job is let go on the way out: a new worker is not refused.
    claims_db.hold_job(engine, batch_job_id(expected_run_ids(tmp_path / "in.jsonl")), "next-worker")
    engine.dispose()

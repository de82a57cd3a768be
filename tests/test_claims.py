"""Batch claims on SQLite and PostgreSQL: one worker per run, leases that outlive no killed worker."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from fusion.errors import InputError
from storage import claims
from storage.db import is_sqlite
from storage.migrations import init_db

IDS = [f"run-{i:02d}" for i in range(20)]


@pytest.fixture
def store(db_url: str):
    engine = init_db(db_url)
    yield engine
    engine.dispose()


def test_each_run_is_claimed_once_in_input_order(store) -> None:
    claims.register(store, "job1", IDS)
    claims.register(store, "job1", IDS)  # a second worker registering the same job
    first = claims.claim(store, "job1", "w1", limit=3)
    second = claims.claim(store, "job1", "w2", limit=3)
    assert first == IDS[:3] and second == IDS[3:6]
    assert claims.state(store, "job1") == claims.ClaimState(done=0, held=6, free=14)
    claims.finish(store, "job1", IDS[0], "w1")
    claims.release(store, "job1", "w1", IDS[1:3])  # w1 gives back what it did not do
    assert claims.claim(store, "job1", "w3", limit=5) == [IDS[1], IDS[2], *IDS[6:9]]
    assert claims.claim(store, "other-job", "w1") == []


def test_a_lapsed_lease_is_taken_over_and_a_done_run_never_is(store) -> None:
    claims.register(store, "job1", IDS[:2])
    assert claims.claim(store, "job1", "killed", limit=2, lease_s=0.2) == IDS[:2]
    claims.finish(store, "job1", IDS[0], "killed")
    assert claims.claim(store, "job1", "w2", limit=2) == []
    time.sleep(0.3)
    assert claims.claim(store, "job1", "w2", limit=2) == [IDS[1]]
    assert claims.renew(store, "job1", "killed", [IDS[1]]) == 0  # the lease is no longer its own
    assert claims.renew(store, "job1", "w2", [IDS[1]]) == 1


def test_racing_workers_never_share_a_run(store) -> None:
    claims.register(store, "race", IDS)
    taken: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            while True:
                got = claims.claim(store, "race", name, limit=1)
                if not got:
                    return
                with lock:
                    taken.extend(got)
                claims.finish(store, "race", got[0], name)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors and is_sqlite(store):
        # SQLite may report "database is locked" under four writing threads; that is why it gets one worker.
        assert all("locked" in str(e) for e in errors), errors
    else:
        assert not errors, errors
    counts = Counter(taken)
    assert all(n == 1 for n in counts.values()), counts
    if not errors:
        assert sorted(counts) == IDS


def test_sqlite_takes_one_worker_per_job(store) -> None:
    claims.hold_job(store, "job1", "w1")
    if not is_sqlite(store):
        claims.hold_job(store, "job1", "w2")  # several workers are the point on PostgreSQL
        return
    with pytest.raises(InputError, match="SQLite takes one worker at a time"):
        claims.hold_job(store, "job1", "w2")
    claims.hold_job(store, "job1", "w1")  # the holder itself may come back
    claims.let_go_job(store, "job1", "w1")
    claims.hold_job(store, "job1", "w2")


def test_a_killed_holder_lets_the_job_go_when_its_lease_ends(store) -> None:
    if not is_sqlite(store):
        pytest.skip("the one-worker rule is SQLite's")
    claims.hold_job(store, "job1", "killed", lease_s=0.2)
    with pytest.raises(InputError):
        claims.hold_job(store, "job1", "w2")
    time.sleep(0.3)
    claims.hold_job(store, "job1", "w2")
    claims.register(store, "job1", IDS[:3])
    assert claims.state(store, "job1").free == 3  # the holder row is not a run


def test_input_refs_and_the_job_order_are_kept(store) -> None:
    claims.register(store, "job1", IDS[:3], inputs=[("a", 1), (7, 2), (None, 4)])
    assert claims.job_run_ids(store, "job1") == IDS[:3]
    refs = claims.input_refs(store, IDS[:3], job="job1")
    assert refs[IDS[0]] == claims.InputRef("a", 1)
    assert refs[IDS[1]] == claims.InputRef(7, 2)  # a number stays a number
    assert refs[IDS[2]] == claims.InputRef(None, 4)
    assert claims.job_run_ids(store, "nobody") == []


def test_claims_leave_out_excluded_runs_and_reopen_frees_a_finished_one(store) -> None:
    claims.register(store, "job1", IDS[:3])
    assert claims.claim(store, "job1", "w1", limit=3, exclude=[IDS[0]]) == IDS[1:3]
    claims.finish(store, "job1", IDS[1:3], "w1")
    assert claims.finished_by(store, "job1", IDS[:3]) == {IDS[1]: "w1", IDS[2]: "w1"}
    claims.reopen(store, "job1", [IDS[2]])  # its saved run was deleted: to be done again
    assert claims.claim(store, "job1", "w2", limit=3) == [IDS[0], IDS[2]]


def test_claims_of_a_dead_worker_of_this_host_are_let_go_at_once(store) -> None:
    import socket
    import subprocess
    import sys

    code = "import os; print(os.getpid())"
    gone = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dead = f"{socket.gethostname()}:{int(gone.stdout)}:out1"
    claims.register(store, "job1", IDS[:2])
    assert claims.claim(store, "job1", dead, limit=1) == [IDS[0]]
    assert claims.claim(store, "job1", "elsewhere:123:out2", limit=1) == [IDS[1]]  # another host: kept
    assert claims.held_by_others(store, "job1", "me") == 2
    assert claims.reap(store, "job1") == 1
    assert claims.claim(store, "job1", "me", limit=2) == [IDS[0]]


def test_worker_names_tie_a_restarted_worker_to_its_output(monkeypatch) -> None:
    monkeypatch.setenv(claims.WORKER_ENV, "gpu-box")
    name = claims.worker_name("out/a.jsonl")
    host, pid, out = name.split(":")
    assert host == "gpu-box" and pid.isdigit() and len(out) == 10
    assert claims.same_owner(name, f"gpu-box:1:{out}")  # the same worker started again
    assert not claims.same_owner(name, claims.worker_name("out/b.jsonl"))
    assert not claims.same_owner(name, f"other:1:{out}")

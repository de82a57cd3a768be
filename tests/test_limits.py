"""The per-server queue for heavy offline work (fusion.limits) and its wiring in the Explore page."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from fusion import limits
from fusion.limits import WorkQueue, is_heavy, waiting_message


def _hold(queue: WorkQueue, started: threading.Event, release: threading.Event, log: list[Any], name: str) -> None:
    with queue.slot(on_wait=lambda ahead: log.append((name, ahead))):
        started.set()
        release.wait(10)


def test_at_most_limit_at_once_and_the_rest_wait_in_order() -> None:
    queue = WorkQueue(2)
    inside = 0
    most = 0
    order: list[int] = []
    lock = threading.Lock()
    gate = threading.Event()

    def work(i: int) -> None:
        nonlocal inside, most
        with queue.slot():
            with lock:
                inside += 1
                most = max(most, inside)
                order.append(i)
            gate.wait(10)
            time.sleep(0.02)
            with lock:
                inside -= 1

    threads = []
    for i in range(6):
        t = threading.Thread(target=work, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(0.05)  # arrival order 0, 1, 2, ...
    assert queue.working == 2 and queue.waiting == 4
    gate.set()
    for t in threads:
        t.join(10)
    assert most == 2
    assert order[:2] == [0, 1] and sorted(order[2:]) == [2, 3, 4, 5]
    assert order == sorted(order)  # first come, first served
    assert queue.working == 0 and queue.waiting == 0


def test_a_waiter_learns_how_many_are_ahead() -> None:
    queue = WorkQueue(1)
    release = threading.Event()
    started = threading.Event()
    log: list[Any] = []
    first = threading.Thread(target=_hold, args=(queue, started, release, log, "first"))
    first.start()
    assert started.wait(5)
    second_started = threading.Event()
    second = threading.Thread(target=_hold, args=(queue, second_started, threading.Event(), log, "second"))
    second.daemon = True
    second.start()
    third_started = threading.Event()
    third = threading.Thread(target=_hold, args=(queue, third_started, threading.Event(), log, "third"))
    third.daemon = True
    time.sleep(0.1)
    third.start()
    time.sleep(0.2)
    assert ("second", 1) in log  # one run working
    assert ("third", 2) in log  # one working, one queued before it
    assert not second_started.is_set()
    release.set()
    assert second_started.wait(5)
    assert not third_started.is_set()
    assert "first" not in {name for name, _ in log}  # the first never waited


def test_a_waiter_that_gives_up_leaves_the_queue() -> None:
    """A page whose visitor left raises from its wait callback: nobody must wait behind it."""
    queue = WorkQueue(1)
    release = threading.Event()
    started = threading.Event()
    holder = threading.Thread(target=_hold, args=(queue, started, release, [], "holder"))
    holder.start()
    assert started.wait(5)

    class Gone(Exception):
        pass

    def leave(ahead: int) -> None:
        raise Gone

    with pytest.raises(Gone):
        with queue.slot(on_wait=leave):
            pytest.fail("a waiter that gave up must not get a turn")
    assert queue.waiting == 0
    release.set()
    holder.join(5)
    with queue.slot():  # free again, at once
        assert queue.working == 1
    assert queue.working == 0


def test_heavy_means_large_input_only() -> None:
    assert not is_heavy(["word " * 1000] * 8)  # 8 answers of ~1,000 words: no queue
    assert is_heavy(["x" * 150_000] * 8)
    assert is_heavy(["x" * 60_000, "y" * 60_000])
    assert waiting_message(1) == "Waiting for 1 other run with large inputs to finish ..."
    assert waiting_message(3).startswith("Waiting for 3 other runs")


def test_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSION_HEAVY_RUNS", "3")
    assert limits.default_limit() == 3
    monkeypatch.setenv("FUSION_HEAVY_RUNS", "zero")
    assert limits.default_limit() >= 1
    with pytest.raises(ValueError):
        WorkQueue(0)


def test_explore_queues_heavy_offline_runs_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """app/explore.py's offline path: a heavy run waits while the server's slots are taken, its status
    says for how many others; a small run or a model-backed one goes at once."""
    from app import explore
    from fusion.pipeline import MethodConfig, supplied_candidates
    from fusion.types import Prompt, Run

    queue = WorkQueue(1)
    monkeypatch.setattr(limits, "_SHARED", queue)

    class Status:
        def __init__(self) -> None:
            self.labels: list[str] = []

        def update(self, *, label: str, state: str) -> None:
            self.labels.append(label)

    heavy = Run(prompt=Prompt("q"), candidates=supplied_candidates(["a " * 40_000] * 3))
    small = Run(prompt=Prompt("q"), candidates=supplied_candidates(["a short answer.", "another one."]))
    offline = MethodConfig()
    live = MethodConfig(fusor="llm", fusor_model="gpt-4o-mini")

    release = threading.Event()
    started = threading.Event()
    holder = threading.Thread(target=_hold, args=(queue, started, release, [], "holder"))
    holder.start()
    assert started.wait(5)
    for run, config in ((small, offline), (heavy, live)):
        status = Status()
        with explore.offline_slot(run, config, status):
            assert status.labels == []  # no wait, no message
    status = Status()
    entered = threading.Event()

    def fuse_heavy() -> None:
        with explore.offline_slot(heavy, offline, status):
            entered.set()

    waiter = threading.Thread(target=fuse_heavy)
    waiter.start()
    time.sleep(0.3)
    assert not entered.is_set()
    assert status.labels and status.labels[0] == waiting_message(1)
    release.set()
    assert entered.wait(5)
    waiter.join(5)
    holder.join(5)
    assert queue.working == 0 and queue.waiting == 0


def test_the_view_cache_does_not_keep_huge_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from app import run_view
    from fusion.pipeline import supplied_candidates
    from fusion.types import FusedOutput, Prompt, Run

    monkeypatch.setattr(run_view, "_DERIVED", type(run_view._DERIVED)())
    monkeypatch.setattr(run_view, "_DERIVED_MAX_CHARS", 1_000)

    def run_of(text: str, rid: str) -> Run:
        run = Run(prompt=Prompt("q"), candidates=supplied_candidates([text, text + " More."]))
        run.id = rid
        run.fused = FusedOutput(text, method="extractive")
        return run

    run_view.derived(run_of("A sentence. " * 100, "big"))  # 3,600 characters: over the budget
    assert len(run_view._DERIVED) == 0
    for i in range(5):
        run_view.derived(run_of(f"Answer {i}. " * 10, f"r{i}"))  # ~330 characters each
    assert 0 < len(run_view._DERIVED) < 5
    assert sum(n for _, n in run_view._DERIVED.values()) <= 1_000

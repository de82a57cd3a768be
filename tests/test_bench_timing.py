"""The accounting behind bench/browser_speed.py's "where the time goes" tables: the timers of
bench/app_timing.py (inclusive and self time on a per-thread stack, one record per top-level call,
first-time imports), the reading of those records for one action, and the browser profile's self times.

A clock that advances by fixed steps stands in for ``perf_counter``, so the expected times are exact.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import app_timing  # noqa: E402
import browser_speed  # noqa: E402


class StepClock:
    """perf_counter() that stands still until the test moves it on with ``advance``."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> StepClock:
    fake = StepClock()
    monkeypatch.setattr(app_timing.time, "perf_counter", fake)
    monkeypatch.setattr(app_timing, "OUT", str(tmp_path / "timings.jsonl"))
    monkeypatch.setattr(app_timing, "_local", threading.local())
    return fake


def records() -> list[dict[str, Any]]:
    path = Path(app_timing.OUT)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_nested_calls_get_inclusive_and_self_time_and_one_record(clock: StepClock) -> None:
    def leaf() -> str:
        clock.advance(0.030)
        return "leaf"

    inner = app_timing.timed("inner", leaf)

    def body() -> str:
        clock.advance(0.010)
        got = inner()
        clock.advance(0.005)
        inner()
        return got

    outer = app_timing.timed("outer", body)
    assert outer() == "leaf"
    (rec,) = records()  # the inner calls are inside the outer one: a single record
    assert rec["thread"] == threading.current_thread().name
    names = [c[0] for c in rec["calls"]]
    assert names == ["inner", "inner", "outer"]  # the outermost call last
    inner_a, inner_b, out = rec["calls"]
    assert inner_a[1:3] == pytest.approx([30.0, 30.0]) and inner_b[1:3] == pytest.approx([30.0, 30.0])
    assert out[1] == pytest.approx(75.0)  # 10 + 30 + 5 + 30
    assert out[2] == pytest.approx(15.0)  # its own 10 + 5: the inner calls are not counted twice


def test_a_failing_call_is_recorded_and_its_error_passes_through(clock: StepClock) -> None:
    def fail() -> None:
        clock.advance(0.002)
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        app_timing.timed("failing", fail)()
    (rec,) = records()
    assert rec["calls"][0][:2] == ["failing", pytest.approx(2.0)]
    # The stack is empty again: the next call is a record of its own, not a child of the failed one.
    app_timing.timed("next", lambda: clock.advance(0.001))()
    assert [r["calls"][-1][0] for r in records()] == ["failing", "next"]


def test_size_of_the_argument_is_recorded(clock: StepClock) -> None:
    html = app_timing.timed("st.html", lambda self, body: None, size=app_timing._html_size)
    html(object(), "<p>é</p>")
    (rec,) = records()
    assert rec["calls"][0][3] == len("<p>é</p>".encode())


def test_coroutines_are_timed_across_their_awaits(clock: StepClock) -> None:
    async def work() -> int:
        clock.advance(0.004)
        await asyncio.sleep(0)
        clock.advance(0.006)
        return 7

    timed = app_timing.timed_async("engine", work)
    assert asyncio.run(timed()) == 7
    (rec,) = records()
    assert rec["calls"][0][:3] == ["engine", pytest.approx(10.0), pytest.approx(10.0)]


def test_only_first_imports_are_timed(clock: StepClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fx_bench_probe_mod.py").write_text("VALUE = 3\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fx_bench_probe_mod", raising=False)
    first = app_timing._timed_import("fx_bench_probe_mod")
    again = app_timing._timed_import("fx_bench_probe_mod")
    assert first is again and first.VALUE == 3
    assert [r["calls"][-1][0] for r in records()] == ["import fx_bench_probe_mod"]


def test_reading_the_records_of_one_action(tmp_path: Path) -> None:
    path = tmp_path / "timings.jsonl"
    lines = [
        {"t": 9.0, "thread": "ScriptRunner.scriptThread", "calls": [["script", 50.0, 50.0, 0]]},  # before
        {"t": 10.2, "thread": "ScriptRunner.scriptThread", "calls": [["storage.votes.record_vote", 8.0, 8.0, None]]},
        {"t": 10.3, "thread": "asyncio_0", "calls": [["fusion.fusors.ExtractiveFusor.fuse_sync", 20.0, 20.0, None]]},
        {"t": 10.4, "thread": "ScriptRunner.scriptThread", "calls": [
            ["storage.runs.load_run", 4.0, 4.0, None], ["st.html", 1.0, 1.0, 2048],
            ["st.html", 1.0, 1.0, 1024], ["script", 30.0, 24.0, 1]]},
        {"t": 10.45, "thread": "MainThread", "calls": [["streamlit.serialize_forward_msg", 0.1, 0.1, 500]]},
        {"t": 12.0, "thread": "ScriptRunner.scriptThread", "calls": [["script", 70.0, 70.0, 0]]},  # after
    ]  # fmt: skip
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    got = browser_speed.read_server_costs(path, (10.0, 10.5))
    # The callback before the script and the script itself; the other threads are listed apart.
    assert got["(server total)"][:3] == [38.0, 0.0, 2.0]
    assert got["script"] == [30.0, 24.0, 1.0, 1]  # its 4th field says litellm was loaded
    assert got["st.html"] == [2.0, 2.0, 2.0, 3072.0]
    assert got["[other thread] fusion.fusors.ExtractiveFusor.fuse_sync"][:2] == [20.0, 20.0]
    assert got["[other thread] streamlit.serialize_forward_msg"][3] == 500
    assert "fusion.fusors.ExtractiveFusor.fuse_sync" not in got
    assert browser_speed.read_server_costs(tmp_path / "missing.jsonl", (0.0, 1.0)) == {}


def test_browser_profile_self_times_by_file_and_function() -> None:
    profile = {
        "nodes": [
            {"id": 1, "callFrame": {"functionName": "(root)", "url": ""}},
            {"id": 2, "callFrame": {"functionName": "(program)", "url": ""}},
            {"id": 3, "callFrame": {"functionName": "draw", "url": "http://h/static/js/PlotlyChart.AbCd1234.js"}},
            {"id": 4, "callFrame": {"functionName": "", "url": "http://h/static/js/index.DormvYxC.js"}},
            {"id": 5, "callFrame": {"functionName": "(idle)", "url": ""}},
            {"id": 6, "callFrame": {"functionName": "getBoundingClientRect", "url": ""}},
        ],
        "samples": [3, 3, 4, 2, 5, 6],
        "timeDeltas": [1000, 2000, 500, 700, 9000, 300],  # microseconds
    }
    got = browser_speed.js_self_times(profile)
    assert got["files"] == pytest.approx({"PlotlyChart.js": 3.0, "index.js": 0.5, "(program)": 0.7, "(native)": 0.3})
    assert got["functions"] == pytest.approx(
        {"draw PlotlyChart.js": 3.0, "(anonymous) index.js": 0.5, "(program)": 0.7, "getBoundingClientRect": 0.3}
    )


def test_wrapping_a_name_that_is_gone_fails_loudly() -> None:
    import types

    module = types.ModuleType("fake_page")
    module.shown = lambda: "shown"  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="fake_page.renamed"):
        app_timing.wrap_module(module, ["shown", "renamed"])


def test_the_profiled_server_wraps_only_functions_that_exist(tmp_path: Path) -> None:
    """bench/timed_entry.py's set-up, in a process of its own (it rewires the app's modules for good): when a
    page function is renamed, this fails here instead of the profiled benchmark server failing on its
    first page."""
    import os
    import subprocess

    root = BENCH.parent
    env = {**os.environ, "PYTHONPATH": str(root), "FUSION_BENCH_TIMINGS": str(tmp_path / "t.jsonl")}
    done = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, 'bench'); import app_timing; app_timing.install()"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]

"""Issue 12's fault matrix: every fault of the scripted server x every role (candidate, judge, fusor), through
the engine API (fusion.pipeline.arun_live) and the CLI (``python -m fusion run`` as a subprocess).

Each cell asserts a clear one-line message naming what went wrong (no traceback), that the other roles'
results are kept, and that the run ends within its time bound: with a timeout of T per attempt and one
retry, generation takes at most 2T plus a backoff, and the judge and the fusor (which run concurrently)
as much again. The CLI's start is dominated by importing litellm, so its processes all start at once
when the module begins and are read by the tests (each process carries one candidate, one judge and one
fusor fault: nine runs cover the 27 cells).

The same faults through ``batch`` are in test_fault_matrix_batch.py, through the app's live mode in
test_fault_matrix_app.py; what the three share is in fault_support.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Iterator

import pytest
from fault_support import (  # noqa: F401  (server and closed_base are pytest fixtures)
    FAULTS, NAMES, RETRIES, ROLES, ROOT, TIMEOUT, Fault, Server, base_for, bound, closed_base, model_for,
    names_fault, server, Launched,
)

pytestmark = pytest.mark.server
ENGINE_LANES = 5  # engine cells run concurrently, this many at a time

# ------------------------------------------------------------------------------------------ engine API


async def engine_run(fault: Fault, role: str, server: Server, closed: str, lanes: asyncio.Semaphore):
    """One cell: ``fault`` at ``role``, the other roles good. Returns (run, seconds)."""
    from fusion.llm import LiteLLMClient
    from fusion.pipeline import arun_live, make_fusor, make_selector
    from fusion.types import ModelSpec, Prompt, SamplingSettings

    client = LiteLLMClient(backoff_base=0.05, backoff_max=0.1, retry_after_cap=0.1)
    at = {r: (fault if r == role else None) for r in ROLES}
    selector = make_selector(
        "judge", client=client, model=model_for(at["judge"], "judge"),
        api_base=base_for(at["judge"], "judge", server, closed), timeout=TIMEOUT, num_retries=RETRIES,
    )  # fmt: skip
    fusor = make_fusor(
        "llm", client=client, model=model_for(at["fusor"], "fusor"),
        api_base=base_for(at["fusor"], "fusor", server, closed), timeout=TIMEOUT, num_retries=RETRIES,
    )  # fmt: skip
    pool = [
        ModelSpec("openai/ok", 2, api_base=server.url),
        ModelSpec(model_for(at["candidate"], "candidate"), 1, api_base=base_for(at["candidate"], "candidate", server, closed)),
    ]  # fmt: skip
    fused_tokens: list[str] = []
    async with lanes:
        started = time.monotonic()
        run = await arun_live(
            Prompt(f"Engine cell {fault.name} / {role}: why do volcanoes erupt?"), pool,
            SamplingSettings(timeout=TIMEOUT, num_retries=RETRIES), client=client, selector=selector, fusor=fusor,
            on_fused_token=fused_tokens.append,  # the fusor streams, as in the app
        )  # fmt: skip
        return run, time.monotonic() - started


@pytest.fixture(scope="module")
def engine_results(server: Server, closed_base: str) -> dict[tuple[str, str], object]:
    """Every engine cell, run concurrently in one event loop; a cell's value is (run, seconds) or the
    exception it raised."""
    cells = [(f, r) for f in NAMES for r in ROLES]

    async def all_cells() -> list[object]:
        lanes = asyncio.Semaphore(ENGINE_LANES)
        return await asyncio.gather(
            *(engine_run(FAULTS[f], r, server, closed_base, lanes) for f, r in cells), return_exceptions=True
        )

    return dict(zip(cells, asyncio.run(all_cells()), strict=True))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("fault_name", NAMES)
def test_engine(fault_name: str, role: str, engine_results: dict[tuple[str, str], object]) -> None:
    fault = FAULTS[fault_name]
    result = engine_results[(fault_name, role)]
    if isinstance(result, BaseException):
        raise result  # e.g. NotEnoughCandidates: the run did not go on with the two good candidates
    run, elapsed = result  # type: ignore[misc]
    assert elapsed < bound(), f"{elapsed:.1f} s"  # includes waiting for the event loop, shared by all cells
    good = [c for c in run.candidates if c.ok]
    if not fault.says:  # flaky: the retry recovers every role
        assert len(good) == 3 and run.bon.index is not None and not run.fused.error
        return
    if role == "candidate":
        assert len(good) == 2 and run.candidates[2].error
        names_fault(run.candidates[2].error, fault)
        assert run.bon.index in (0, 1) and not run.fused.error and run.fused.text  # the others went on
        assert run.attribution is not None
    elif role == "judge":
        assert len(good) == 3  # candidates kept
        assert run.bon.index is None
        names_fault(run.bon.error, fault)
        assert not run.fused.error and run.fused.text  # the fusor went on
    else:
        assert len(good) == 3 and run.bon.index is not None  # candidates and the pick kept
        assert not run.fused.text
        names_fault(run.fused.error, fault)


# ------------------------------------------------------------------------------------------ CLI


def cli_plan() -> list[dict[str, str | None]]:
    """Runs with one fault per role (None: that role is good), every (fault, role) once: fault i for the
    candidate, i + 3 for the judge, i + 6 for the fusor. ``--api-base`` is one URL for all candidates, so a
    refused candidate means no candidate at all and the run stops before the judge and the fusor: that cell
    runs on its own, and its row keeps good candidates."""
    n = len(NAMES)
    plan: list[dict[str, str | None]] = [
        {"candidate": NAMES[i], "judge": NAMES[(i + 3) % n], "fusor": NAMES[(i + 6) % n]} for i in range(n)
    ]
    for row in plan:
        if row["candidate"] == "refused":
            row["candidate"] = None
    plan.append({"candidate": "refused", "judge": None, "fusor": None})
    return plan


def start_cli(faults: dict[str, str | None], closed: str) -> Launched:
    server = Server()
    at = {role: FAULTS[name] if name else None for role, name in faults.items()}
    cand = at["candidate"]
    models = ["openai/ok", "openai/ok", model_for(cand, "candidate")]
    prompt = "CLI cell " + ", ".join(f"{role} {name or 'good'}" for role, name in faults.items()) + ": volcanoes?"
    args = [
        sys.executable, "-m", "fusion", "run", prompt, "-n", "3",
        *[a for m in models for a in ("--model", m)],
        "--api-base", base_for(cand, "candidate", server, closed),
        "--selector", "judge", "--judge-model", model_for(at["judge"], "judge"),
        "--judge-api-base", base_for(at["judge"], "judge", server, closed),
        "--fusor-model", model_for(at["fusor"], "fusor"),
        "--fusor-api-base", base_for(at["fusor"], "fusor", server, closed),
        "--timeout", str(TIMEOUT), "--retries", str(RETRIES), "--no-cache", "-q",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_OFFLINE_MODE": "true"}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return Launched(faults, server, proc)


# Ten processes importing litellm at once on a small, shared machine: the start alone can take minutes.
# Only a run that never ends fails on this; the time each run may take is checked from its first request.
CLI_LIMIT = 400.0


@pytest.fixture(scope="module")
def cli_runs(closed_base: str) -> Iterator[tuple[list[Launched], float]]:
    runs = [start_cli(faults, closed_base) for faults in cli_plan()]
    yield runs, time.monotonic() + CLI_LIMIT
    for r in runs:
        if r.proc.poll() is None:
            r.proc.kill()
        r.server.stop()


def cli_run_with(cli_runs: tuple[list[Launched], float], fault_name: str, role: str) -> Launched:
    runs, deadline = cli_runs
    [found] = [r for r in runs if r.faults[role] == fault_name]
    return found.wait(deadline)


def only_line(text: str, start: str, r: Launched) -> str:
    """The one line of ``text`` that starts with ``start``; a failure shows what the run printed."""
    found = [x for x in text.splitlines() if x.startswith(start)]
    assert len(found) == 1, f"{len(found)} lines start with {start!r}; exit {r.code}\nout:\n{r.out}\nerr:\n{r.err}"
    return found[0]


def candidate_line(r: Launched, index: int) -> str:
    return only_line(r.out, f"[{index}] ", r)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("fault_name", NAMES)
def test_cli(fault_name: str, role: str, cli_runs: tuple[list[Launched], float]) -> None:
    r = cli_run_with(cli_runs, fault_name, role)
    fault = FAULTS[fault_name]
    assert "Traceback" not in r.out + r.err, r.err
    assert r.code in (0, 1), (r.code, r.err)
    # One clear line per failure on stderr, each an "error:" line (progress is off with -q).
    for line in r.err.splitlines():
        assert line.startswith("error: "), r.err
    if role == "candidate" and fault.refused:
        # The CLI's candidates share one URL: none is usable, the run stops with one error line.
        assert r.code == 1 and r.out == ""
        [line] = r.err.splitlines()
        assert line.startswith("error: Only 0 of 3 candidates")
        names_fault(line, fault)
        return  # nothing reached the server; the refusal itself is immediate
    # A hanging server (30 s) must not hold the run past its timeouts.
    seconds = r.working_seconds()
    assert seconds < bound(), f"{seconds:.1f} s"
    if role == "candidate":
        line = candidate_line(r, 3)
        if fault.says:
            assert "FAILED: " in line
            names_fault(line.split("FAILED: ", 1)[1], fault)
        else:
            assert "FAILED" not in line
        # the two good candidates are kept either way
        assert "FAILED" not in candidate_line(r, 1) + candidate_line(r, 2)
    elif role == "judge":
        assert "FAILED" not in candidate_line(r, 1) + candidate_line(r, 2)
        if fault.says:
            pick = only_line(r.out, "(no pick: ", r)
            names_fault(pick, fault)
        else:
            assert "<- Best-of-N" in r.out
    else:
        if fault.says:
            assert r.code == 1
            line = only_line(r.err, "error: fusion failed: ", r)
            names_fault(line, fault)
            assert "Best-of-N (judge:" in r.out  # the pick section is still printed
        else:
            assert "error: fusion failed" not in r.err
            assert "Fused (llm:openai/flaky-fusor):" in r.out and "(failed:" not in r.out


def test_cli_judge_failing_everywhere_is_a_failed_exit(cli_runs: tuple[list[Launched], float]) -> None:
    # the run whose judge gets HTTP 500 on every candidate: no pick, so a failed run (the same rule as batch)
    r = cli_run_with(cli_runs, "500", "judge")
    assert r.code == 1
    assert any(line.startswith("error: no Best-of-N pick") for line in r.err.splitlines()), r.err

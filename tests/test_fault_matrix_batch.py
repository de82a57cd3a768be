"""Issue 12's fault matrix through ``fusion batch``: every fault x every role, in the command a dataset job
runs, with the same faults, roles and time bound as the engine and ``run`` matrices (fault_support.py).

A batch has one set of models for all its lines, so the faults ride on the prompts: the candidate, judge and
fusor models are the scripted server's ``cued-*`` behaviours, and each line's prompt carries a cue such as
``[[cue judge=hang@120]]`` that only the model of that role obeys (the judge and the fusor see the user's
prompt). One batch then holds every cell as a line of its own, all lines in flight at once, so the whole
batch must end within one run's bound. A refused connection is a URL, not a prompt: those three cells are
batches of their own, with the refused role's ``--*-api-base`` on a port nobody listens on.

What each cell asserts, as batch defines a line's outcome: a candidate's fault leaves a finished line whose
failed candidate names the fault and whose two good candidates, pick and fusion are kept; a judge's or a
fusor's fault fails the line with one ``line N (id ...): ...`` message naming it, and the other lines are
finished regardless; a flaky server recovers. The exit code is 1 when a line failed, and nothing prints a
traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from fault_support import (  # noqa: F401  (closed_base is a pytest fixture)
    FAULTS, NAMES, RETRIES, ROLES, ROOT, TIMEOUT, Launched, Server, bound, closed_base, names_fault, one_line,
)

pytestmark = pytest.mark.server

CUED = [(f, r) for f in NAMES if not FAULTS[f].refused for r in ROLES]
# Starting a batch imports litellm; on a loaded machine that alone took minutes for ten processes at once.
# Only a batch that never ends fails on this; its own time is checked from its first request.
LIMIT = 400.0


def cell_id(fault_name: str, role: str) -> str:
    return f"{fault_name} at the {role}"


def cue(fault_name: str, role: str) -> str:
    return f"[[cue {role}={FAULTS[fault_name].models[role]}]]"


def start_batch(lines: list[dict], tmp: Path, *, faults: dict[str, str | None], api: dict[str, str],
                server: Server) -> Launched:  # fmt: skip
    tmp.mkdir(parents=True)
    source = tmp / "in.jsonl"
    source.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), "utf-8")
    args = [
        sys.executable, "-m", "fusion", "batch", str(source), "-o", str(tmp / "out.jsonl"), "-n", "3",
        "--model", "openai/ok", "--model", "openai/ok", "--model", "openai/cued-candidate",
        "--api-base", api["candidate"],
        "--selector", "judge", "--judge-model", "openai/cued-judge", "--judge-api-base", api["judge"],
        "--fusor", "llm", "--fusor-model", "openai/cued-fusor", "--fusor-api-base", api["fusor"],
        "--timeout", str(TIMEOUT), "--retries", str(RETRIES), "--no-cache", "-q",
        "--concurrency", str(len(lines)),  # every line at once: the batch is bounded like one run
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_OFFLINE_MODE": "true",
           "FUSION_DB_PATH": str(tmp / "runs.db")}  # fmt: skip
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return Launched(faults, server, proc)


class Batches:
    def __init__(self, tmp: Path, closed: str) -> None:
        self.deadline = time.monotonic() + LIMIT
        self.servers: list[Server] = []
        self.tmp = tmp
        server = self._server()
        lines = [
            {"id": cell_id(f, r), "prompt": f"Batch cell {cue(f, r)}: why do volcanoes erupt, and when?"}
            for f, r in CUED
        ]
        self.cued = start_batch(lines, tmp / "cued", faults={}, api=dict.fromkeys(ROLES, server.url), server=server)
        self.refused: dict[str, Launched] = {}
        for role in ROLES:
            server = self._server()
            api = {r: (closed if r == role else server.url) for r in ROLES}
            line = {"id": cell_id("refused", role), "prompt": "Batch cell, refused: why is the sky blue?"}
            self.refused[role] = start_batch([line], tmp / f"refused-{role}", faults={role: "refused"}, api=api,
                                             server=server)  # fmt: skip

    def _server(self) -> Server:
        self.servers.append(Server())
        return self.servers[-1]

    def output(self, launched: Launched) -> dict[str, dict]:
        out = Path(launched.proc.args[launched.proc.args.index("-o") + 1])
        lines = out.read_text("utf-8").splitlines() if out.exists() else []
        return {record["input_id"]: record for record in map(json.loads, lines)}

    def failures(self, launched: Launched) -> dict[str, str]:
        """The failed lines' messages by input id, from ``line N (id X): message`` on stderr."""
        found = {}
        for line in launched.err.splitlines():
            if line.startswith("line ") and " (id " in line:
                ident, _, message = line.split(" (id ", 1)[1].partition("): ")
                found[ident] = message
        return found

    def stop(self) -> None:
        for launched in [self.cued, *self.refused.values()]:
            if launched.proc.poll() is None:
                launched.proc.kill()
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory, closed_base: str) -> Iterator[Batches]:
    b = Batches(tmp_path_factory.mktemp("fault-batch"), closed_base)
    yield b
    b.stop()


def check_stderr(launched: Launched) -> None:
    """Nothing but failed lines and the summary, each one line; never a traceback."""
    assert "Traceback" not in launched.out + launched.err, launched.err
    for line in launched.err.splitlines():
        assert line.startswith(("line ", "batch: ", "Run the same command again")), launched.err
        one_line(line)


def test_the_batch_of_all_cued_cells_ends_within_one_runs_bound(batches: Batches) -> None:
    b = batches.cued.wait(batches.deadline)
    check_stderr(b)
    assert b.code == 1, (b.code, b.err)  # the judge's and the fusor's faults fail their lines
    seconds = b.working_seconds()
    assert seconds < bound(), f"{seconds:.1f} s for {len(CUED)} lines in flight at once"
    [summary] = [x for x in b.err.splitlines() if x.startswith("batch: ")]
    expect_failed = sum(1 for f, r in CUED if r != "candidate" and FAULTS[f].says)
    assert summary.startswith(f"batch: {len(CUED)} lines: {len(CUED) - expect_failed} done, {expect_failed} failed")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("fault_name", NAMES)
def test_batch(fault_name: str, role: str, batches: Batches) -> None:
    fault = FAULTS[fault_name]
    if fault.refused:
        b = batches.refused[role].wait(batches.deadline)
        check_stderr(b)
        assert b.code == 1 and not batches.output(b)
        [message] = batches.failures(b).values()
        names_fault(message, fault)
        if role == "candidate":  # the batch's candidates share one URL: none is usable
            assert message.startswith("Only 0 of 3 candidates")
        else:
            assert message.startswith("no Best-of-N pick: " if role == "judge" else "fusion failed: ")
        return
    b = batches.cued.wait(batches.deadline)
    ident = cell_id(fault_name, role)
    done, failed = batches.output(b), batches.failures(b)
    if not fault.says:  # flaky: the retry recovers every role
        assert ident in done and ident not in failed, failed.get(ident)
        assert all(not c.get("error") for c in done[ident]["candidates"])
        return
    if role == "candidate":
        assert ident in done, failed.get(ident)  # two good candidates are enough: the line is finished
        record = done[ident]
        errors = [c["error"] for c in record["candidates"] if c.get("error")]
        assert len(errors) == 1 and len(record["candidates"]) == 3, errors
        names_fault(errors[0], fault)
        assert record["bon"]["index"] is not None and record["fused"]["text"].strip()
    else:
        assert ident not in done and ident in failed, sorted(failed)
        names_fault(failed[ident], fault)
        assert failed[ident].startswith("no Best-of-N pick: " if role == "judge" else "fusion failed: ")
    # the lines whose faults are only at the candidate are finished, whatever else failed beside them
    assert all(cell_id(f, "candidate") in done for f, _ in CUED)

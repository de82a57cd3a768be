"""``python -m fusion batch``: offline and live batches, resume after interruptions, rate limit, bad lines;
plus the reads a batch resume and the results page use (storage.runs, storage.stats_reads)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fusion.batch import (
    BatchItem,
    BatchSettings,
    RateLimiter,
    batch_run_id,
    load_output,
    read_items,
    run_batch,
)
from fusion.cli import main
from fusion.fusors import ExtractiveFusor
from fusion.pipeline import run_supplied
from fusion.readout import readout_fields
from fusion.selectors import ConsensusSelector
from fusion.types import ModelSpec, Prompt, SamplingSettings
from storage import listing, stats_reads
from storage import runs as runs_db
from storage import votes as votes_db
from storage.migrations import init_db
from storage.sink import DatabaseSink
from kill_support import sigkill_when

ROOT = Path(__file__).resolve().parents[1]

PARIS = [
    "Paris is the capital of France. It lies on the Seine.",
    "The capital of France is Paris, a city on the Seine river.",
    "Paris is the capital of France. It has about two million inhabitants.",
]
COLOURS = [
    "Red is a primary colour. Mixing it with blue gives purple.",
    "Blue is one of the primary colours. Mixing it with red gives purple.",
    "Red, yellow and blue are the primary colours of paint.",
]


def jsonl(*objs: object) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)


def offline_lines(count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        cands = PARIS if i % 2 == 0 else COLOURS
        out.append(
            {
                "id": f"q{i}",
                "prompt": f"Question {i}: tell me something.",
                "candidates": cands,
                "tags": ["geo" if i % 2 == 0 else "art"],
            }
        )
    return out


def read_out(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def db_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "fusion.db"
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FUSION_DB_PATH", str(path))
    return path


def assert_db_and_output_agree(db_path: Path, out: Path, expected: int) -> list[dict[str, Any]]:
    records = read_out(out)
    ids = [r["id"] for r in records]
    assert len(ids) == expected and len(set(ids)) == expected, "a missing or duplicated output line"
    engine = init_db(db_url(db_path))
    stored = {s.id for s in listing.list_runs(engine, limit=None)}
    assert stored == set(ids)
    for record in records:
        run = runs_db.load_run(engine, record["id"])
        assert run is not None
        line = {k: v for k, v in record.items() if k not in ("input_id", "input_line", "kept", "diff", "warnings")}
        assert run.to_dict() == line
        # The reading aids on the line are what the engine computes from the stored run.
        assert {k: record[k] for k in ("kept", "diff", "warnings")} == json.loads(json.dumps(readout_fields(run)))
    return records


# ------------------------------------------------------------------------------------------------ offline


def test_offline_batch_saves_and_writes_every_run(tmp_path: Path, db_path: Path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(jsonl(*offline_lines(4)), encoding="utf-8")
    out = tmp_path / "out" / "runs.jsonl"
    code = main(["batch", str(src), "-o", str(out), "--offline", "--tag", "pilot", "-q"])
    assert code == 0, capsys.readouterr().err
    records = assert_db_and_output_agree(db_path, out, 4)
    assert sorted(r["input_id"] for r in records) == ["q0", "q1", "q2", "q3"]
    first = records[0]
    assert first["source"] == "batch"
    assert first["tags"] == ["geo", "pilot"]  # the line's tags, then --tag
    assert first["bon"]["method"] == "consensus" and first["bon"]["index"] is not None
    assert first["fused"]["method"] == "extractive"
    assert first["attribution"]["copied_fraction"] > 0.5
    assert [c["text"] for c in first["candidates"]] == PARIS
    engine = init_db(db_url(db_path))
    assert {s.id for s in listing.list_runs(engine, tag="pilot", limit=None)} == {r["id"] for r in records}
    assert len(listing.list_runs(engine, tag="art", limit=None)) == 2
    # Runs are ready for the annotation queue; these candidates make the extractive fusor copy the pick
    # verbatim, and such identical pairs are counted apart instead of queued.
    counts = votes_db.queue_counts(engine, "ann")
    assert counts.total + counts.identical == 4
    assert len(votes_db.annotation_queue(engine, "ann", limit=None)) == counts.total
    assert "4 done, 0 failed" in capsys.readouterr().err


def test_rerun_skips_finished_prompts_and_changes_nothing(tmp_path: Path, db_path: Path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(jsonl(*offline_lines(3)), encoding="utf-8")
    out = tmp_path / "runs.jsonl"
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    before = out.read_bytes()
    engine = init_db(db_url(db_path))
    stamps = {s.id: s.updated_at for s in listing.list_runs(engine, limit=None)}
    capsys.readouterr()
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    assert out.read_bytes() == before
    assert {s.id: s.updated_at for s in listing.list_runs(engine, limit=None)} == stamps  # not even re-saved
    assert "0 done, 3 already finished, 0 failed" in capsys.readouterr().err


def test_run_ids_are_deterministic_from_identity_and_settings() -> None:
    item = BatchItem(line=1, input_id="q1", prompt=Prompt("Hi there"), candidates=["a", "b"])
    moved = BatchItem(line=9, input_id="q1", prompt=Prompt("Hi there"), candidates=["a", "b"], tags=["x"])
    offline = BatchSettings()
    assert batch_run_id(item, offline) == batch_run_id(moved, offline)  # line number and tags don't matter
    assert batch_run_id(item, offline) != batch_run_id(item, BatchSettings(fusor="llm:openai/fusor"))
    # Without an id, the content is the identity.
    anon = BatchItem(line=1, input_id=None, prompt=Prompt("Hi there"), candidates=["a", "b"])
    other = BatchItem(line=1, input_id=None, prompt=Prompt("Hi there"), candidates=["a", "c"])
    assert batch_run_id(anon, offline) != batch_run_id(other, offline)
    # For sampled lines the pool and sampling settings count; for lines with candidates they do not.
    gen = BatchItem(line=1, input_id="g", prompt=Prompt("Hi there"))
    live = BatchSettings(
        fusor="llm:m", pool=(ModelSpec("openai/ok", 3),), sampling=SamplingSettings(temperature=0.8)
    )
    hotter = BatchSettings(
        fusor="llm:m", pool=(ModelSpec("openai/ok", 3),), sampling=SamplingSettings(temperature=1.2)
    )
    slower = BatchSettings(
        fusor="llm:m", pool=(ModelSpec("openai/ok", 3),), sampling=SamplingSettings(timeout=5)
    )
    assert batch_run_id(gen, live) != batch_run_id(gen, hotter)
    assert batch_run_id(gen, live) == batch_run_id(gen, slower)  # transport settings are not identity
    assert batch_run_id(item, live) == batch_run_id(item, hotter)
    assert len(batch_run_id(item, live)) <= 64


def test_malformed_lines_are_reported_and_the_others_run(tmp_path: Path, db_path: Path, capsys) -> None:
    good = offline_lines(2)
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        (
            jsonl(good[0])
            + "{not json\n"
            + jsonl({"id": "x1", "candidates": PARIS})  # no prompt
            + jsonl({"id": "x2", "prompt": "p", "candidates": "just one string"})
            + jsonl({"id": "x3", "prompt": "p", "candidates": ["only one", "   "]})
            + jsonl({"id": "x4", "prompt": "needs a model"})  # offline without candidates
            + jsonl({"id": "q0", "prompt": "another prompt", "candidates": COLOURS})  # id used on line 1
            + jsonl(good[0])  # an exact repeat of line 1: dropped without complaint
            + "\n"
        ).encode()
        + b"\xff\xfe\n"
        + jsonl(good[1]).encode()
    )
    out = tmp_path / "runs.jsonl"
    code = main(["batch", str(src), "-o", str(out), "--offline", "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "line 2: not valid JSON" in err
    assert "line 3 (id x1): 'prompt' is missing" in err
    assert "line 4 (id x2): 'candidates' must be a list" in err
    assert "line 5 (id x3): At least 2 non-empty candidates are needed" in err
    assert "line 6 (id x4): this line has no candidates, and --offline cannot generate them" in err
    assert "line 7 (id q0): id 'q0' is already used on line 1" in err
    assert "line 10: not valid UTF-8" in err
    assert "2 done, 7 failed" in err
    records = assert_db_and_output_agree(db_path, out, 2)
    assert sorted(r["input_id"] for r in records) == ["q0", "q1"]


def test_offline_refuses_model_options(tmp_path: Path, db_path: Path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(jsonl(*offline_lines(1)), encoding="utf-8")
    code = main(["batch", str(src), "-o", str(tmp_path / "o.jsonl"), "--offline", "--model", "openai/ok"])
    assert code == 2
    assert "--offline makes no model calls" in capsys.readouterr().err
    code = main(["batch", str(src), "-o", "-", "--offline"])
    assert code == 2


def test_python_api_limits_prompts_per_second_when_offline(tmp_path: Path) -> None:
    now = [0.0]
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    items, failures = read_items([jsonl(line) for line in offline_lines(3)])
    assert failures == []
    kwargs: dict[str, Any] = {
        "settings": BatchSettings(offline=True, tags=("api",)),
        "sink": DatabaseSink(init_db(db_url(tmp_path / "api.db"))),
        "output": tmp_path / "runs.jsonl",
        "selector": ConsensusSelector(),
        "fusor": ExtractiveFusor(),
        "concurrency": 1,
    }
    limiter = RateLimiter(2, clock=lambda: now[0], sleep=fake_sleep)
    report = run_batch(items, prompt_rate=limiter, **kwargs)
    assert (report.done, report.skipped, report.failed, report.total) == (3, 0, 0, 3)
    assert report.ok and len(report.run_ids) == 3
    # 3 prompts at 2 per second: the 2nd and 3rd wait half a second each (the fake clock never moves
    # on its own, so the waits are exactly the spacing).
    assert waits == [0.5, 0.5]
    # Finished prompts take no slot on a re-run.
    again = run_batch(items, prompt_rate=limiter, **kwargs)
    assert (again.done, again.skipped) == (0, 3) and waits == [0.5, 0.5]
    assert again.run_ids == report.run_ids
    assert all(r["tags"][-1] == "api" for r in read_out(tmp_path / "runs.jsonl"))


class MemorySink:
    """A RunSink that is no database: the engine runs a batch against any sink, storage only provides one."""

    def __init__(self) -> None:
        self.runs: dict[str, Any] = {}
        self.saves = 0

    def done(self, run_ids: Any) -> set[str]:
        return {rid for rid in run_ids if rid in self.runs}

    def load(self, run_id: str) -> Any:
        return self.runs.get(run_id)

    def save(self, run: Any) -> None:
        self.saves += 1
        self.runs[run.id] = run


def test_a_batch_runs_against_any_sink_and_resumes_from_it(tmp_path: Path) -> None:
    items, _ = read_items([jsonl(line) for line in offline_lines(3)])
    sink = MemorySink()
    out = tmp_path / "runs.jsonl"
    kwargs: dict[str, Any] = {
        "settings": BatchSettings(offline=True),
        "sink": sink,
        "output": out,
        "selector": ConsensusSelector(),
        "fusor": ExtractiveFusor(),
    }
    report = run_batch(items, **kwargs)
    assert (report.done, report.failed) == (3, 0)
    assert sorted(sink.runs) == sorted(report.run_ids) and sink.saves == 3
    full = out.read_text(encoding="utf-8")
    # The output lost (a kill after the saves): every line comes back from the sink, nothing is computed.
    out.write_text("", encoding="utf-8")
    again = run_batch(items, **kwargs)
    assert (again.done, again.recovered, sink.saves) == (0, 3, 3)
    assert sorted(full.splitlines()) == sorted(out.read_text(encoding="utf-8").splitlines())
    # A run missing from the sink but in the output is saved back from its line, not recomputed.
    del sink.runs[report.run_ids[0]]
    third = run_batch(items, **kwargs)
    assert (third.done, third.recovered, third.skipped, sink.saves) == (0, 1, 2, 4)


def test_read_items_reports_without_stopping() -> None:
    items, failures = read_items(
        [jsonl({"prompt": "a", "candidates": PARIS}), "[1, 2]\n", jsonl({"prompt": "b"})]
    )
    assert [i.prompt.text for i in items] == ["a", "b"]
    assert items[0].candidates == PARIS and items[1].candidates is None
    assert [(f.line, f.message) for f in failures] == [(2, "expected a JSON object, got list")]


# ------------------------------------------------------------------------------------------------ resume


def test_half_written_last_line_is_cut_and_rewritten(tmp_path: Path, db_path: Path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(jsonl(*offline_lines(4)), encoding="utf-8")
    out = tmp_path / "runs.jsonl"
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    full = out.read_bytes()
    lines = full.splitlines(keepends=True)
    # A kill in the middle of writing line 4: its run is already in the database (saved first).
    out.write_bytes(b"".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    capsys.readouterr()
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    err = capsys.readouterr().err
    assert "half-written line" in err
    assert "3 already finished, 1 recovered" in err
    assert_db_and_output_agree(db_path, out, 4)
    assert out.read_bytes() == full  # the recovered line is the same record


def test_half_written_line_of_an_unsaved_run_is_redone(tmp_path: Path, db_path: Path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(jsonl(*offline_lines(3)), encoding="utf-8")
    out = tmp_path / "runs.jsonl"
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    lines = out.read_bytes().splitlines(keepends=True)
    engine = init_db(db_url(db_path))
    last_id = json.loads(lines[2])["id"]
    assert runs_db.delete_run(engine, last_id)
    out.write_bytes(b"".join(lines[:2]) + lines[2][:40])
    capsys.readouterr()
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    assert "1 done, 2 already finished" in capsys.readouterr().err
    assert_db_and_output_agree(db_path, out, 3)


def test_half_finished_runs_are_completed_from_the_other_half(tmp_path: Path, db_path: Path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(jsonl(*offline_lines(4)), encoding="utf-8")
    out = tmp_path / "runs.jsonl"
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    records = read_out(out)
    engine = init_db(db_url(db_path))
    # q1: in the output, missing from the database. q2: in the database, missing from the output.
    # q3: in the output as garbage that is no run, missing from the database -> redone.
    assert runs_db.delete_run(engine, records[1]["id"])
    assert runs_db.delete_run(engine, records[3]["id"])
    broken = {"id": records[3]["id"], "prompt": 42}
    out.write_text(jsonl(records[0], records[1], broken), encoding="utf-8")
    capsys.readouterr()
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    err = capsys.readouterr().err
    assert "1 done, 1 already finished, 2 recovered, 0 failed" in err
    again = {r["id"]: r for r in assert_db_and_output_agree(db_path, out, 4)}
    for old in records[:3]:
        assert again[old["id"]] == old  # recovered exactly
    redone, before = again[records[3]["id"]], records[3]
    assert redone["created_at"] >= before["created_at"]  # computed anew (timings differ), same result
    for key in ("prompt", "candidates", "bon", "attribution", "tags", "input_id"):
        assert redone[key] == before[key]
    assert redone["fused"]["text"] == before["fused"]["text"]


def test_load_output_keeps_foreign_runs_and_drops_unreadable_lines(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    out.write_text(
        '{"id": "a", "x": 1}\nnot json\n{"id": "a", "x": 2}\n{"id": "b"}\n{"id": "c"', encoding="utf-8"
    )
    state = load_output(out)
    assert state.cut_tail and state.dropped == 2
    assert list(state.by_run) == ["a", "b"] and state.by_run["a"]["x"] == 1
    assert out.read_text(encoding="utf-8") == '{"id": "a", "x": 1}\n{"id": "b"}\n'
    assert load_output(tmp_path / "missing.jsonl").by_run == {}


# ------------------------------------------------------------------------------------------------ live


def _prompt_of(request: dict[str, Any]) -> str:
    return [m["content"] for m in request["body"]["messages"] if m["role"] == "user"][-1]


def batch_args(src: Path, out: Path, server: Any, opts: str) -> list[str]:
    """A live batch against the local server: model openai/ok and fusor openai/fusor unless ``opts`` say
    otherwise (a later --model adds to the pool, so pass --model only through ``opts`` when replacing)."""
    base = ["batch", str(src), "-o", str(out), "--api-base", server.url, "--no-cache", "-q"]
    if "--model" not in opts:
        base += ["--model", "openai/ok"]
    if "--fusor-model" not in opts:
        base += ["--fusor-model", "openai/fusor"]
    return base + opts.split()


def test_live_batch_against_a_local_server(tmp_path: Path, db_path: Path, openai_server, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        jsonl(
            {"id": "p1", "prompt": "Explain photosynthesis in green plants", "tags": ["bio"]},
            {"id": "p2", "prompt": "Describe how volcano eruptions happen"},
            {
                "id": "p3",
                "prompt": "Why do cats purr?",
                "candidates": [
                    "Cats purr when content.",
                    "Purring may help healing.",
                    "Cats purr to talk to kittens.",
                ],
            },
        ),
        encoding="utf-8",
    )
    out = tmp_path / "runs.jsonl"
    args = batch_args(src, out, openai_server, "-n 3 --retries 0 --tag live")
    code = main(args)
    assert code == 0, capsys.readouterr().err
    records = assert_db_and_output_agree(db_path, out, 3)
    by_input = {r["input_id"]: r for r in records}
    sampled = by_input["p1"]
    assert [c["model"] for c in sampled["candidates"]] == ["openai/ok"] * 3
    assert len({c["text"] for c in sampled["candidates"]}) > 1  # three different samples
    assert sampled["fused"]["method"] == "llm:openai/fusor"
    assert sampled["attribution"]["copied_fraction"] > 0.5  # the fake fusor copies sentences
    assert sampled["tags"] == ["bio", "live"]
    assert sampled["pool"] == [{"model": "openai/ok", "samples": 3, "api_base": openai_server.url}]
    assert by_input["p3"]["candidates"][0]["text"] == "Cats purr when content."
    # 2 sampled prompts x 3 candidates + 3 fusions; the line with candidates samples nothing.
    assert openai_server.count("ok") == 6 and openai_server.count("fusor") == 3
    # A re-run makes no call at all.
    openai_server.reset()
    assert main(args) == 0
    assert openai_server.count() == 0
    assert_db_and_output_agree(db_path, out, 3)


def test_live_pool_of_teacher_models_with_a_judge(
    tmp_path: Path, db_path: Path, openai_server, capsys
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(jsonl({"prompt": "Summarise the history of printing presses"}), encoding="utf-8")
    out = tmp_path / "runs.jsonl"
    opts = "-n 5 --model openai/ok --model openai/teacher2 --fusor-model openai/fusor --selector judge "
    opts += "--judge-model openai/judge --no-cache -q"
    code = main(["batch", str(src), "-o", str(out), "--api-base", openai_server.url, *opts.split()])
    assert code == 0, capsys.readouterr().err
    (record,) = read_out(out)
    assert [c["model"] for c in record["candidates"]] == ["openai/ok"] * 3 + ["openai/teacher2"] * 2
    assert record["input_id"] is None
    assert record["bon"]["method"] == "judge:openai/judge"
    assert all(isinstance(s, (int, float)) for s in record["bon"]["scores"])
    assert openai_server.count("judge") == 5  # one score per candidate


def test_failed_prompts_are_not_finished_and_a_rerun_retries_them(
    tmp_path: Path, db_path: Path, openai_server, capsys
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        jsonl(
            {"id": "a", "prompt": "Explain tides and the moon"},
            {"id": "b", "prompt": "Explain broken servers"},
            {"id": "c", "prompt": "Explain rainbows after rain"},
        ),
        encoding="utf-8",
    )
    from openai_server import Reply

    def handler(body: dict[str, Any]) -> Any:
        if "broken" in _prompt_of({"body": body}) and body.get("model") == "ok":
            return Reply(status=500, error="server on fire")
        return body.get("model", "ok")

    openai_server.set_handler(handler)
    out = tmp_path / "runs.jsonl"
    args = batch_args(src, out, openai_server, "-n 2 --retries 0")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "line 2 (id b): Only 0 of 2 candidates are usable" in err
    assert "2 done, 1 failed" in err
    records = assert_db_and_output_agree(db_path, out, 2)
    assert sorted(r["input_id"] for r in records) == ["a", "c"]
    openai_server.reset()  # the provider recovered
    assert main(args) == 0
    assert "1 done, 2 already finished, 0 failed" in capsys.readouterr().err
    assert {_prompt_of(r) for r in openai_server.requests if r["model"] == "ok"} == {"Explain broken servers"}
    assert_db_and_output_agree(db_path, out, 3)


def test_concurrency_bounds_prompts_in_flight(tmp_path: Path, db_path: Path, openai_server, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        jsonl(*({"prompt": f"Explain topic number {i} carefully"} for i in range(5))), encoding="utf-8"
    )
    out = tmp_path / "runs.jsonl"
    code = main(
        batch_args(
            src,
            out,
            openai_server,
            "-n 2 --model openai/slow@0.2 --fusor-model openai/fusor@0.2 --concurrency 2",
        )
    )
    assert code == 0, capsys.readouterr().err
    # 2 prompts x 2 samples at most (a prompt's samples go out together).
    assert openai_server.max_in_flight <= 4
    assert openai_server.count() == 5 * 3


# ------------------------------------------------------------------------------------------------ rate limit


def test_rate_limiter_spaces_starts_evenly() -> None:
    now = [100.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(4, clock=lambda: now[0], sleep=fake_sleep)

    async def go() -> list[float]:
        slots = [await limiter.acquire() for _ in range(3)]
        now[0] += 2.0  # idle for a while: no credit is saved up for a burst
        slots.append(await limiter.acquire())
        slots.append(await limiter.acquire())
        return slots

    slots = asyncio.run(go())
    assert slots == [100.0, 100.25, 100.5, 102.5, 102.75]
    assert slept == [0.25, 0.25, 0.25]


def test_rate_limiter_gives_concurrent_waiters_distinct_slots() -> None:
    limiter = RateLimiter(1000)

    async def go() -> list[float]:
        return await asyncio.gather(*(limiter.acquire() for _ in range(20)))

    slots = sorted(asyncio.run(go()))
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) == pytest.approx(0.001)


def test_rate_limit_option_bounds_calls_per_window(
    tmp_path: Path, db_path: Path, openai_server, capsys
) -> None:
    rate = 5
    src = tmp_path / "in.jsonl"
    src.write_text(jsonl(*({"prompt": f"Explain subject {i} in depth"} for i in range(4))), encoding="utf-8")
    out = tmp_path / "runs.jsonl"
    code = main(batch_args(src, out, openai_server, f"-n 2 --concurrency 4 --rate-limit {rate}"))
    assert code == 0, capsys.readouterr().err
    starts = sorted(r["started"] for r in openai_server.requests)
    assert len(starts) == 4 * 3
    # Evenly spaced at 1/rate s: a 1 s window holds at most `rate` starts; one more is allowed for jitter
    # between the limiter's slot and the server seeing the request.
    worst = max(sum(1 for t in starts if s <= t < s + 1.0) for s in starts)
    assert worst <= rate + 1
    # And over 2 s windows, at most 2 * rate (+1).
    assert max(sum(1 for t in starts if s <= t < s + 2.0) for s in starts) <= 2 * rate + 1


# ------------------------------------------------------------------------------------------------ kill -9


def _cli_env(db_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"LITELLM_OFFLINE_MODE": "true", "PYTHONPATH": str(ROOT), "FUSION_DB_PATH": str(db_path)})
    env.pop("DATABASE_URL", None)
    return env


def test_resume_after_sigkill_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, db_path: Path, openai_server
) -> None:
    prompts = [f"Explain subject number {i} to a student" for i in range(6)]
    src = tmp_path / "in.jsonl"
    src.write_text(jsonl(*({"id": f"s{i}", "prompt": p} for i, p in enumerate(prompts))), encoding="utf-8")
    out = tmp_path / "runs.jsonl"
    args = [
        sys.executable,
        "-m",
        "fusion",
        *batch_args(src, out, openai_server, "-n 2 --model openai/slow@0.3 --concurrency 1"),
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, env=_cli_env(db_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    sigkill_when(proc, lambda: out.exists() and out.read_bytes().count(b"\n") >= 2, within=90)
    before = out.read_bytes()
    finished_before = [json.loads(line) for line in before.splitlines() if line.endswith(b"}")]
    assert 2 <= len(finished_before) < len(prompts)
    openai_server.reset()

    again = subprocess.run(
        args, cwd=ROOT, env=_cli_env(db_path), capture_output=True, text=True, timeout=120, check=False
    )
    assert again.returncode == 0, again.stderr
    records = assert_db_and_output_agree(db_path, out, len(prompts))
    assert sorted(r["input_id"] for r in records) == [f"s{i}" for i in range(6)]
    # Finished lines stayed as they were, and their prompts were not sent again.
    complete = before[: before.rfind(b"\n") + 1]
    assert out.read_bytes().startswith(complete)
    resent = {_prompt_of(r) for r in openai_server.requests if r["model"] == "slow@0.3"}
    assert resent.isdisjoint(r["prompt"]["text"] for r in finished_before)
    assert resent  # the unfinished ones were


# ------------------------------------------------------------------------------------------------ queries


def test_attribution_rows_and_existing_run_ids(tmp_path: Path) -> None:
    engine = init_db(db_url(tmp_path / "q.db"))
    a = run_supplied("What is the capital of France?", PARIS, tags=["geo"], run_id="run-a")
    b = run_supplied("Name a primary colour.", COLOURS, run_id="run-b")
    b.created_at = a.created_at + 1
    runs_db.save_run(engine, a)
    runs_db.save_run(engine, b)
    assert runs_db.existing_run_ids(engine, ["run-a", "nope", "run-b", "run-a"]) == {"run-a", "run-b"}
    assert runs_db.existing_run_ids(engine, []) == set()
    rows = stats_reads.attribution_rows(engine)
    assert [r.run_id for r in rows] == ["run-a", "run-b"]
    ra = rows[0]
    assert ra.n == 3 and ra.tags == ["geo"] and ra.models == ["supplied"]
    assert ra.copied_fraction == pytest.approx(a.attribution.copied_fraction)
    assert ra.shares == pytest.approx(a.attribution.shares)
    assert ra.bon_index == a.bon.index
    assert ra.bon_share == pytest.approx(a.attribution.shares[a.bon.index])
    assert ra.contributors(0.0) == sum(1 for s in a.attribution.shares if s >= 0)
    assert ra.contributors(1.01) == 0
    assert [r.run_id for r in stats_reads.attribution_rows(engine, tag="geo")] == ["run-a"]
    assert stats_reads.attribution_rows(engine, tag="none") == []


def test_output_lines_are_valid_utf8_with_what_the_database_stores(tmp_path: Path, db_path: Path) -> None:
    from fusion.jsonl import json_line

    assert json_line({"t": "a\ud800b\x00"}) == '{"t": "a\ufffdb\\u0000"}\n'  # NUL stays escaped
    with pytest.raises(ValueError):
        json_line({"score": float("nan")})
    # A candidate with a lone surrogate (an escape in the input JSON) and a NUL: the output file is still
    # UTF-8, and the run reads back from it as the database stores it.
    src = tmp_path / "in.jsonl"
    odd = [PARIS[0] + " \\ud800", PARIS[1] + " \\u0000", PARIS[2]]
    src.write_text('{"id": "odd", "prompt": "Capital?", "candidates": ["' + '", "'.join(odd) + '"]}\n', encoding="utf-8")
    out = tmp_path / "runs.jsonl"
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    (record,) = [json.loads(line) for line in out.read_bytes().decode("utf-8").splitlines()]
    texts = [c["text"] for c in record["candidates"]]
    # Read as the database holds it (PostgreSQL cannot hold NUL): the file and the stored run agree.
    assert texts[0].endswith(" \ufffd") and texts[1].endswith(" \ufffd")
    stored = runs_db.load_run(init_db(db_url(db_path)), record["id"])
    assert [c.text for c in stored.candidates] == texts

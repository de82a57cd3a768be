"""The CLI as a user runs it: ``python -m fusion`` in a subprocess, JSON Lines in and out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, stdin: str | bytes | None = None, env: dict[str, str] | None = None, timeout: float = 120):
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    full_env.update({"LITELLM_OFFLINE_MODE": "true", "PYTHONPATH": str(ROOT)})
    full_env.update(env or {})
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [sys.executable, "-m", "fusion", *args],
        input=data,
        capture_output=True,
        cwd=ROOT,
        env=full_env,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")


def jsonl(*objs: object) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)


CANDS = [
    "Paris is the capital of France. It lies on the Seine.",
    "The capital of France is Paris, a city on the Seine river.",
    "Paris is the capital of France. It has about two million inhabitants.",
]


def assert_tiles(spans: list[dict], text: str) -> None:
    assert spans[0]["start"] == 0
    assert spans[-1]["end"] == len(text)
    for a, b in zip(spans, spans[1:]):
        assert a["end"] == b["start"]


# ------------------------------------------------------------------------------------------- attribute


def test_attribute_reports_spans_shares_and_copied_fraction() -> None:
    fused = "Paris is the capital of France. It lies on the Seine. Zebras dance quietly tonight."
    code, out, err = cli("attribute", stdin=jsonl({"candidates": CANDS, "fused": fused}))
    assert code == 0, err
    (line,) = out.splitlines()
    rec = json.loads(line)
    assert set(rec) == {"spans", "shares", "copied_fraction", "kept"}
    assert_tiles(rec["spans"], fused)
    assert 0.4 < rec["copied_fraction"] < 0.9  # the last sentence is novel
    assert len(rec["shares"]) == 3 and rec["shares"][0] >= max(rec["shares"][1:])
    assert rec["spans"][-1]["sources"] == []
    first = rec["spans"][0]
    assert 0 in first["sources"]


def test_attribute_bad_lines_are_named_and_others_still_processed(tmp_path: Path) -> None:
    good = {"candidates": ["alpha beta gamma delta"], "fused": "alpha beta gamma delta"}
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        (jsonl(good) + "{not json\n" + jsonl([1, 2]) + jsonl({"fused": "x"}) + "\n").encode() + b"\xff\xfe\n" + jsonl(good).encode()
    )
    code, out, err = cli("attribute", str(path))
    assert code == 1
    assert len(out.splitlines()) == 2
    assert "line 2: not valid JSON" in err
    assert "line 3: expected a JSON object" in err
    assert "line 4: 'candidates' is missing" in err
    assert "line 6: not valid UTF-8" in err
    assert "Traceback" not in err


def test_attribute_missing_file_is_one_clear_line() -> None:
    code, out, err = cli("attribute", "/nonexistent/file.jsonl")
    assert code == 2
    assert err.strip() == "error: Input file not found: /nonexistent/file.jsonl"


# ------------------------------------------------------------------------------------------- fuse


def test_fuse_offline_output_format(tmp_path: Path) -> None:
    out_path = tmp_path / "out.jsonl"
    code, out, err = cli(
        "fuse", "-o", str(out_path),
        stdin=jsonl({"id": "q1", "prompt": "What is the capital of France?", "candidates": CANDS},
                    {"prompt": "Say hi", "candidates": ["Hi there!", "Hello!", "Hi there, friend!"]}),
    )
    assert code == 0, err
    lines = [json.loads(x) for x in out_path.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in lines] == ["q1", 2]
    for rec in lines:
        assert set(rec) >= {"id", "bon", "fused", "attribution"}
        assert rec["bon"]["method"] == "consensus"
        assert len(rec["bon"]["scores"]) == len(rec["attribution"]["shares"])
        assert rec["bon"]["index"] in range(len(rec["bon"]["scores"]))
        assert rec["fused"]["method"] == "extractive"
        assert rec["fused"]["text"].strip()
        assert_tiles(rec["attribution"]["spans"], rec["fused"]["text"])
        for span in rec["attribution"]["spans"]:
            assert set(span) >= {"start", "end", "sources"}


def test_fuse_malformed_lines_do_not_stop_the_rest() -> None:
    lines = (
        jsonl({"id": 1, "prompt": "Q?", "candidates": CANDS})
        + '{"prompt": "Q?", "candidates": "not a list"}\n'
        + jsonl({"id": 3, "prompt": "", "candidates": CANDS})
        + jsonl({"id": 4, "prompt": "Q?", "candidates": [1, 2]})
        + jsonl({"id": 5, "prompt": "Q?", "candidates": CANDS})
    )
    code, out, err = cli("fuse", stdin=lines)
    assert code == 1
    assert [json.loads(x)["id"] for x in out.splitlines()] == [1, 5]
    assert "line 2: 'candidates' must be a list of strings." in err
    assert "line 3: The prompt is empty" in err
    assert "line 4: Candidate 1 is not a string." in err


def test_offline_commands_do_not_import_litellm(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(jsonl({"prompt": "Q?", "candidates": CANDS}), encoding="utf-8")
    probe = (
        "import sys, io, contextlib\n"
        "from fusion.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['fuse', {str(src)!r}]) == 0\n"
        f"    assert main(['attribute', {str(src)!r}]) == 1\n"  # no 'fused' key: a reported error, still offline
        "print('litellm' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------- run


@pytest.mark.server
def test_run_live_against_local_server(openai_server) -> None:
    code, out, err = cli(
        "run", "Explain why the sky is blue.", "-n", "4", "--model", "openai/ok", "--api-base", openai_server.url,
        "--fusor-model", "openai/fusor", "--seed", "7", "--json", "--no-cache",
    )
    assert code == 0, err
    run = json.loads(out)
    assert len(run["candidates"]) == 4
    assert all(c["error"] is None and c["text"] for c in run["candidates"])
    assert len({c["text"] for c in run["candidates"]}) == 4  # four different samples
    assert run["bon"]["method"] == "consensus"
    assert run["fused"]["method"] == "llm:openai/fusor"
    assert run["attribution"]["copied_fraction"] > 0.5  # the fake fusor copies sentences
    # per-candidate progress on stderr
    for i in range(1, 5):
        assert f"candidate {i}/4: done" in err
    # the fusor saw all four candidates
    fusor_requests = [r for r in openai_server.requests if r["model"] == "fusor"]
    assert len(fusor_requests) == 1
    assert fusor_requests[0]["body"]["messages"][-1]["content"].count("<candidate id=") == 4


@pytest.mark.server
def test_run_pool_of_models_and_judge(openai_server) -> None:
    code, out, err = cli(
        "run", "Name three primary colours.", "-n", "4", "--model", "openai/ok", "--model", "openai/echo",
        "--api-base", openai_server.url, "--selector", "judge", "--judge-model", "openai/judge",
        "--fusor", "extractive", "--json", "--no-cache",
    )
    assert code == 0, err
    run = json.loads(out)
    assert [c["model"] for c in run["candidates"]] == ["openai/ok", "openai/ok", "openai/echo", "openai/echo"]
    assert run["bon"]["method"] == "judge:openai/judge"
    assert all(isinstance(s, (int, float)) and 1 <= s <= 10 for s in run["bon"]["scores"])
    assert run["bon"]["index"] == max(range(4), key=lambda i: (run["bon"]["scores"][i], -i))


@pytest.mark.server
def test_run_with_all_candidates_failing_exits_nonzero(openai_server) -> None:
    code, out, err = cli(
        "run", "hello", "-n", "3", "--model", "openai/error500", "--api-base", openai_server.url,
        "--retries", "0", "--fusor", "extractive", "--no-cache",
    )
    assert code == 1
    assert "Only 0 of 3 candidates are usable" in err
    assert err.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "", "--model", "openai/x"], "The prompt is empty"),
        (["run", "hi", "-n", "0", "--model", "openai/x"], "N must be from 1 to 32; got 0."),
        (["run", "hi", "-n", "33", "--model", "openai/x"], "N must be from 1 to 32; got 33."),
        (["run", "hi", "-n", "2", "--model", "a", "--model", "b", "--model", "c"], "smaller than the number of models"),
        (["run", "hi", "--model", "openai/gpt-4o-mini"], "OPENAI_API_KEY"),
        (["run", "x" * 60_000, "--model", "openai/x"], "limit is 50,000"),
    ],
)
def test_run_bad_input_gives_one_clear_line(args: list[str], message: str) -> None:
    code, out, err = cli(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--timeout", "0"], "argument --timeout: must be more than 0 and at most 3600 seconds; got 0"),
        (["--timeout", "-5"], "argument --timeout: must be more than 0 and at most 3600 seconds; got -5"),
        (["--timeout", "nan"], "argument --timeout: must be more than 0"),
        (["--timeout", "soon"], "argument --timeout: a number of seconds, not 'soon'"),
        (["--retries", "-3"], "argument --retries: must be from 0 to 10; got -3"),
        (["--concurrency", "0"], "argument --concurrency: must be from 1 to 256; got 0"),
        (["--max-tokens", "0"], "argument --max-tokens: must be from 1 to 1000000; got 0"),
        (["--temperature", "-1"], "argument --temperature: must be from 0 to 2; got -1"),
        (["--top-p", "5"], "argument --top-p: must be more than 0 and at most 1; got 5"),
        (["--api-base", "localhost:8000/v1"], "'localhost:8000/v1' must start with http:// or https://"),
        (["--api-base", "file:///etc/passwd"], "must start with http:// or https://"),
        (["--api-base", "http://ana:secret@127.0.0.1:9/v1"], "must not carry a name or password"),
        (["--api-base", "http://127.0.0.1:99999/v1"], "needs a host (and a port from 1 to 65535"),
        (["--api-base", "http://[::1:8712/v1"], "'http://[::1:8712/v1' is not a valid URL"),
        (["--judge-api-base", "ana:secret@127.0.0.1:9/v1"], "must not carry a name or password"),
        (["--fusor-api-base", "http://a b/v1"], "has a space or a control character"),
    ],
)
def test_run_refuses_bad_limits_and_server_urls_before_any_call(args: list[str], message: str) -> None:
    code, out, err = cli("run", "hi", "--model", "openai/x", *args, timeout=60)
    assert code == 2 and out == ""
    assert "Traceback" not in err
    assert message in err.strip().splitlines()[-1]
    assert "ana:secret" not in err  # a password put in the URL is not echoed


@pytest.mark.parametrize(
    "command",
    [
        ["batch", "in.jsonl", "--output", "out.jsonl", "--model", "openai/x"],
        ["fuse", "in.jsonl", "--fusor", "llm", "--fusor-model", "openai/x"],
        ["judge", "--model", "openai/x"],
    ],
)
def test_other_commands_refuse_a_zero_timeout_and_a_bad_url(command: list[str]) -> None:
    for extra, message in ((["--timeout", "0"], "must be more than 0"), (["--api-base", "ftp://x/v1"], "must start with http")):
        code, out, err = cli(*command, *extra, timeout=60)
        assert code == 2, (command, extra, err)
        assert message in err.strip().splitlines()[-1] and "Traceback" not in err


@pytest.mark.server
def test_a_server_url_with_spaces_around_it_is_used_as_the_url(openai_server) -> None:
    code, out, err = cli("run", "Why is the sky blue?", "-n", "2", "--model", "openai/ok",
                         "--api-base", f"  {openai_server.url} ", "--fusor", "extractive", "--no-cache", "--json")
    assert code == 0, err
    assert sum(1 for r in openai_server.requests if r["model"] == "ok") == 2


def test_scenarios_command_lists_the_gallery() -> None:
    code, out, err = cli("scenarios", "--jsonl")
    assert code == 0, err
    records = [json.loads(x) for x in out.splitlines()]
    assert len(records) >= 8
    assert all(4 <= len(r["candidates"]) <= 6 and r["prompt"] for r in records)


def test_the_cli_keeps_litellm_offline_unless_told_otherwise(monkeypatch) -> None:
    """The README's commands do not set LITELLM_OFFLINE_MODE; litellm must not reach for GitHub anyway."""
    import os

    from fusion.cli import main

    monkeypatch.delenv("LITELLM_OFFLINE_MODE", raising=False)
    assert main(["scenarios"]) == 0
    assert os.environ["LITELLM_OFFLINE_MODE"] == "true"
    monkeypatch.setenv("LITELLM_OFFLINE_MODE", "false")
    assert main(["scenarios"]) == 0
    assert os.environ["LITELLM_OFFLINE_MODE"] == "false"


@pytest.mark.server
def test_run_without_a_pick_fails_and_is_not_saved(openai_server, tmp_path, monkeypatch) -> None:
    from storage.listing import count_runs
    from storage.migrations import init_db

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FUSION_DB_PATH", str(tmp_path / "fusion.db"))
    code, out, err = cli(
        "run", "Name a colour.", "-n", "3", "--model", "openai/ok", "--api-base", openai_server.url,
        "--selector", "judge", "--judge-model", "openai/error500", "--fusor", "extractive", "--retries", "0",
        "--save", "--no-cache",
    )
    assert code == 1, err  # the same rule as batch: no pick, a failed run
    assert "error: no Best-of-N pick" in err and "not saved" in err and "Traceback" not in err
    assert count_runs(init_db(f"sqlite:///{tmp_path / 'fusion.db'}")) == 0


@pytest.mark.server
def test_run_json_carries_the_warnings_of_a_degenerate_fusion(openai_server) -> None:
    from openai_server import Reply

    def reply(body):
        if "candidate" in body["messages"][-1]["content"]:
            return Reply(text="I'm ready to help. What prompt is this?")
        return Reply(text=None)

    openai_server.set_handler(reply)
    code, out, err = cli(
        "run", "Explain why the sky is blue.", "-n", "3", "--model", "openai/ok", "--api-base", openai_server.url,
        "--fusor-model", "openai/tiny", "--json", "--no-cache",
    )
    assert code == 0, err
    run = json.loads(out)
    assert run["fused"]["text"] == "I'm ready to help. What prompt is this?"  # kept as written
    assert "asks_back" in [w["code"] for w in run["warnings"]]
    assert "warning: The fused answer asks for a task" in err


@pytest.mark.server
def test_run_reads_a_long_prompt_from_a_file_or_stdin(openai_server, tmp_path) -> None:
    # 45,000 characters (within the 50,000 limit) of Japanese: 135 KB of UTF-8, more than an argument holds.
    long_prompt = "要約してください。" + "日本語の文章です。" * 5_000
    path = tmp_path / "prompt.txt"
    path.write_text(long_prompt, encoding="utf-8")
    common = ["-n", "2", "--model", "openai/ok", "--api-base", openai_server.url, "--fusor", "extractive",
              "--no-cache", "--json"]
    code, out, err = cli("run", "--prompt-file", str(path), *common)
    assert code == 0, err
    assert json.loads(out)["prompt"]["text"] == long_prompt
    code, out, err = cli("run", "-", *common, stdin="Why is the sky blue?")
    assert code == 0, err
    assert json.loads(out)["prompt"]["text"] == "Why is the sky blue?"
    code, out, err = cli("run", "x", "--prompt-file", str(path), *common)
    assert code == 2 and "not both" in err
    code, out, err = cli("run", "--prompt-file", str(tmp_path / "absent.txt"), *common)
    assert code == 2 and "Cannot read the prompt file" in err and "Traceback" not in err

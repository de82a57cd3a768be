"""`fusion scale`, `fusion judge` and `fusion users` end to end: the CLI, the database, the scripted server."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from fusion.cli import main
from openai_server import Reply
from storage.migrations import init_db

BASIL = [
    "Water basil when the top inch of soil is dry. Give it six hours of sun. Pinch off flower buds.",
    "Basil needs lots of sun, at least six hours. Water when the soil surface is dry. Use a pot with drainage holes.",
    "Keep basil warm, above 10 C. Pinch off flower buds so it keeps making leaves. Water when the soil surface is dry.",
    "Give basil a sunny window. Water it when the soil is dry to the touch. Harvest the top leaves often.",
    "Basil likes warmth and sun. Do not overwater: let the soil dry between waterings. Pinch the flowers.",
]
BREAD = [
    "Mix flour, water, salt and yeast. Knead for ten minutes. Let it rise for an hour, then bake at 220 C.",
    "Knead the dough until smooth, about ten minutes. Proof it until doubled. Bake at 220 C for 30 minutes.",
    "Use strong flour. Knead well. Let the dough rise twice. Bake in a hot oven with steam for a crisp crust.",
    "Combine flour, yeast, salt and warm water. Rest the dough an hour. Shape it, then bake at 230 C.",
    "Bread needs flour, water, salt and yeast. Knead, rise, shape, rise again, and bake until it sounds hollow.",
]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FUSION_DB_PATH", str(tmp_path / "fusion.db"))
    return init_db(f"sqlite:///{tmp_path / 'fusion.db'}")


def lines(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# Scenarios whose offline fusion differs from the pick at N = 3 and 5, so there is a pair to judge.
PAIRED_SCENARIOS = ("first-marathon", "escape-html-bug", "bones-adult-newborn", "postgres-move-checklist")


def scenario_lines(tmp_path: Path, ids: tuple[str, ...] = PAIRED_SCENARIOS) -> Path:
    from fusion.scenarios import load_scenarios

    return lines(tmp_path, [{"id": s.id, "prompt": s.prompt, "candidates": list(s.candidates)}
                            for s in load_scenarios() if s.id in ids])


def prefers_longer(body: dict[str, Any]) -> Reply:
    """A position-consistent judge: the longer response wins, wherever it is shown."""
    user = body["messages"][-1]["content"]
    a = user.split("<response_a>")[1].split("</response_a>")[0]
    b = user.split("<response_b>")[1].split("</response_b>")[0]
    return Reply(text=json.dumps({"reason": "it covers more", "winner": "A" if len(a) >= len(b) else "B"}))


def test_scale_offline_saves_nested_runs_and_resumes(tmp_path: Path, db: Any, capsys) -> None:
    from storage.listing import list_runs
    from storage.runs import load_run

    path = lines(tmp_path, [{"id": "basil", "prompt": "How do I keep basil alive?", "candidates": BASIL},
                            {"id": "bread", "prompt": "How do I bake bread?", "candidates": BREAD},
                            {"id": "short", "prompt": "Too few?", "candidates": BASIL[:3]}])
    code = main(["scale", str(path), "--n", "1,3,5", "--experiment", "e1", "-q"])
    err = capsys.readouterr().err
    assert code == 1  # the line with three candidates cannot give N = 5
    assert re.search(r"line 3 \(id short\): N = 5 needs 5 candidates; this line has 3", err), err
    runs = list_runs(db, limit=None)
    assert len(runs) == 6
    by_k: dict[str, list[Any]] = {}
    for summary in runs:
        run = load_run(db, summary.id)
        assert "scale:e1" in run.tags
        k = next(t for t in run.tags if t.startswith("scale-k:"))[len("scale-k:"):]
        by_k.setdefault(k, []).append(run)
        assert len(run.candidates) == int(k) and run.bon.index < int(k)
    assert sorted(by_k) == ["1", "3", "5"]
    for run in by_k["3"]:  # the first three of the same draw
        assert [c.text for c in run.candidates] in (BASIL[:3], BREAD[:3])

    code = main(["scale", str(path), "--n", "1,3,5", "--experiment", "e1", "-q"])
    assert code == 1 and len(list_runs(db, limit=None)) == 6  # nothing made twice


def test_judge_judges_once_and_stores_verdicts_apart(tmp_path: Path, db: Any, openai_server, capsys) -> None:
    from storage.votes import all_votes

    path = scenario_lines(tmp_path)
    assert main(["scale", str(path), "--n", "1,5", "--experiment", "e2", "-q"]) == 0
    openai_server.set_handler(prefers_longer)
    args = ["judge", "--model", "openai/pj", "--api-base", openai_server.url, "--tag", "scale:e2", "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    verdicts = [v for v in all_votes(db) if v.annotator == "judge:openai/pj"]
    judged = {v.run_id for v in verdicts}
    # N = 1 runs fuse one candidate into itself: nothing to compare, not judged.
    assert len(judged) == len(PAIRED_SCENARIOS) and all(rid.endswith("-k5") for rid in judged)
    assert all(v.consistent is True and v.winner in ("fused", "bon") and v.blind for v in verdicts)
    assert len(openai_server.requests) == 2 * len(judged)  # both orders, once each
    assert f"Judged {len(judged)} run" in err
    assert "sk-" not in json.dumps([r["headers"] for r in openai_server.requests])

    openai_server.reset()
    assert main(args) == 0
    assert "Nothing to judge" in capsys.readouterr().err
    assert openai_server.requests == []


def test_a_failing_judge_exits_non_zero_and_stores_nothing(tmp_path: Path, db: Any, openai_server, capsys) -> None:
    from storage.votes import all_votes

    path = scenario_lines(tmp_path, PAIRED_SCENARIOS[:1])
    assert main(["scale", str(path), "--n", "5", "--experiment", "e3", "-q"]) == 0
    code = main(["judge", "--model", "openai/error500", "--api-base", openai_server.url, "--retries", "0",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "got no verdict" in err and "Traceback" not in err
    assert all_votes(db) == []


def test_scale_with_a_pairwise_judge_judges_as_it_goes(tmp_path: Path, db: Any, openai_server, capsys) -> None:
    from storage.votes import all_votes

    openai_server.set_handler(prefers_longer)
    path = scenario_lines(tmp_path, PAIRED_SCENARIOS[:2])
    code = main(["scale", str(path), "--n", "2,5", "--experiment", "e4", "--pairwise-judge", "openai/pj",
                 "--api-base", openai_server.url, "-q"])
    assert code == 0, capsys.readouterr().err
    assert len(all_votes(db)) == 2  # the N = 5 runs; at N = 2 the fusion is the pick
    assert {v.annotator for v in all_votes(db)} == {"judge:openai/pj"}
    assert all("scale:e4" in v.tags for v in all_votes(db))


def test_scale_refuses_bad_n(tmp_path: Path, db: Any, capsys) -> None:
    path = lines(tmp_path, [{"prompt": "x?", "candidates": BASIL}])
    assert main(["scale", str(path), "--n", "0,3"]) == 2
    assert "between 1 and" in capsys.readouterr().err


def test_users_are_added_listed_and_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from storage.users import verify

    users = tmp_path / "users.json"
    monkeypatch.setenv("FUSION_USERS_FILE", str(users))
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    assert main(["users", "add", "ana", "--role", "admin", "--password-stdin"]) == 0
    assert verify(users, "ana", "a long password").role == "admin"
    assert main(["users", "list"]) == 0
    assert capsys.readouterr().out == "ana\tadmin\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["users", "add", "ben", "--password-stdin"]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert main(["users", "remove", "ana"]) == 0
    assert main(["users", "remove", "ana"]) == 1
    assert verify(users, "ana", "a long password") is None


def test_version() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0


def test_scale_live_samples_the_largest_n_once(tmp_path: Path, db: Any, openai_server, capsys) -> None:
    from storage.listing import list_runs
    from storage.runs import load_run

    path = lines(tmp_path, [{"id": "sky", "prompt": "Why is the sky blue?"}])
    code = main(["scale", str(path), "--n", "1,3", "--experiment", "live", "--model", "openai/ok",
                 "--fusor-model", "openai/fusor", "--api-base", openai_server.url, "--seed", "3", "--no-cache", "-q"])
    assert code == 0, capsys.readouterr().err
    samples = [r for r in openai_server.requests if r["model"] == "ok"]
    fusions = [r for r in openai_server.requests if r["model"] == "fusor"]
    assert len(samples) == 3 and len(fusions) == 2  # three samples drawn once; one fusion per N
    runs = {s.id[-2:]: load_run(db, s.id) for s in list_runs(db, limit=None)}
    assert sorted(runs) == ["k1", "k3"]
    assert runs["k1"].candidates[0].text == runs["k3"].candidates[0].text  # the same draw, nested
    assert runs["k3"].fused.method == "llm:openai/fusor"


def test_an_unreachable_judge_stops_after_a_few_runs(tmp_path: Path, db: Any, openai_server, capsys) -> None:
    path = scenario_lines(tmp_path)
    assert main(["scale", str(path), "--n", "3,5", "--experiment", "e5", "-q"]) == 0  # 8 runs to judge
    code = main(["judge", "--model", "openai/error500", "--api-base", openai_server.url, "--retries", "0",
                 "--concurrency", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "stopping" in err and "Traceback" not in err
    assert len(openai_server.requests) == 3 * 2  # three runs, both orders each; the other five not tried


def test_scale_says_a_line_that_cannot_reach_the_largest_n_is_not_worth_a_rerun(tmp_path: Path, db: Any, capsys) -> None:
    path = lines(tmp_path, [{"id": "short", "prompt": "Too few?", "candidates": BASIL[:3]}])
    assert main(["scale", str(path), "--n", "1,5", "--experiment", "e6", "-q"]) == 1
    err = capsys.readouterr().err
    assert "lower the largest --n or leave the line out" in err
    assert "1 line could not be used" in err and "run the same command again" not in err

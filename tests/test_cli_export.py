"""``python -m fusion export``: batch runs -> votes -> every export format through the CLI, read back."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_export import epoch_of, load_with_datasets, read_jsonl_like_datasets

from fusion.cli import build_parser, main
from fusion.stats import win_rate
from storage import votes as votes_db
from storage.export import VOTE_FIELDS
from storage.migrations import init_db

ROOT = Path(__file__).resolve().parents[1]

# Each candidate adds an odd sentence of its own to a shared core: extractive fusion keeps the core, so the
# fused text differs from the Best-of-N pick (DPO pairs need two different texts).
RYB = "Red, yellow and blue are the primary colours of paint."
LINES = [
    {
        "id": "geo1",
        "prompt": "What is the capital of France?",
        "tags": ["geo"],
        "candidates": [
            "Paris is the capital of France. It lies on the Seine. The Eiffel Tower is there.",
            "Paris is the capital of France. The Louvre is the largest art museum. It lies on the Seine.",
            "The capital of France is Paris. It lies on the Seine. About two million people live there.",
        ],
    },
    {
        "id": "art1",
        "prompt": "Name the primary colours.",
        "system": "Answer briefly.",
        "tags": ["art"],
        "candidates": [
            f"{RYB} Mixing red and blue gives purple. Artists love them.",
            f"{RYB} Mixing red and blue gives purple. In light they are red, green and blue.",
            f"{RYB} Children learn them early. Mixing red and blue gives purple.",
        ],
    },
    {
        "id": "geo2",
        "prompt": "Which river flows through Vienna?",
        "tags": ["geo"],
        "candidates": [
            "The Danube flows through Vienna. It is a long river. Vienna has many cafes.",
            "The Danube flows through Vienna. It also passes Budapest. It is a long river.",
            "The Danube flows through Vienna. It is a long river. It starts in the Black Forest.",
        ],
    },
]


@pytest.fixture
def voted_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> dict:
    """Three batch runs with votes: geo1 fused won twice, art1 Best-of-N won + a tie, geo2 both bad."""
    db = tmp_path / "fusion.db"
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FUSION_DB_PATH", str(db))
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(line) + "\n" for line in LINES), encoding="utf-8")
    assert main(["batch", str(src), "-o", str(tmp_path / "runs.jsonl"), "--offline", "-q"]) == 0
    capsys.readouterr()
    engine = init_db(f"sqlite:///{db}")
    runs = {json.loads(line)["input_id"]: json.loads(line) for line in (tmp_path / "runs.jsonl").open()}
    ids = {k: v["id"] for k, v in runs.items()}
    for run in runs.values():
        bon = run["candidates"][run["bon"]["index"]]["text"]
        assert bon.strip() != run["fused"]["text"].strip(), "the fixture needs a fused text that differs"
    votes_db.record_vote(engine, run_id=ids["geo1"], annotator="ann", choice="A", a_is="fused")
    votes_db.record_vote(engine, run_id=ids["geo1"], annotator="bob", choice="B", a_is="bon")
    votes_db.record_vote(engine, run_id=ids["art1"], annotator="ann", choice="A", a_is="bon")
    votes_db.record_vote(engine, run_id=ids["art1"], annotator="bob", choice="tie", a_is="fused")
    votes_db.record_vote(engine, run_id=ids["geo2"], annotator="ann", choice="both_bad", a_is="bon")
    return {"engine": engine, "runs": runs, "ids": ids, "db": db}


def export(*args: str) -> int:
    return main(["export", *args])


def test_votes_jsonl_and_csv(voted_db: dict, tmp_path: Path, capsys) -> None:
    path = tmp_path / "votes.jsonl"
    assert export("--format", "votes-jsonl", "-o", str(path)) == 0
    assert "Exported 5 votes (votes-jsonl)" in capsys.readouterr().err
    records = read_jsonl_like_datasets(path)
    assert len(records) == 5 and list(records[0]) == list(VOTE_FIELDS)
    winners = sorted((r["run_id"], r["annotator"], r["winner"]) for r in records)
    ids = voted_db["ids"]
    assert winners == sorted(
        [
            (ids["geo1"], "ann", "fused"),
            (ids["geo1"], "bob", "fused"),
            (ids["art1"], "ann", "bon"),
            (ids["art1"], "bob", "tie"),
            (ids["geo2"], "ann", "both_bad"),
        ]
    )
    # The statistics of the exported file equal those of the database:
    # (1 + 1 + 0 + 0.5) / 4 = 0.625, one both_bad apart.
    from_file, from_db = win_rate(records), win_rate(votes_db.all_votes(voted_db["engine"]))
    assert from_file == from_db
    assert from_file.rate == pytest.approx(0.625) and from_file.both_bad == 1

    csv_path = tmp_path / "votes.csv"
    assert export("--format", "votes-csv", "--tag", "geo", "-o", str(csv_path)) == 0
    assert "Exported 3 votes (votes-csv)" in capsys.readouterr().err
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["run_id"] for r in rows} == {ids["geo1"], ids["geo2"]}
    assert all(json.loads(r["tags"]) == ["geo"] for r in rows)
    # ISO 8601 timestamps, equal to the stored ones; text exact (the page's CSV and datasets read the same)
    stored = {(v.run_id, v.annotator): v for v in votes_db.all_votes(voted_db["engine"])}
    for r in rows:
        assert epoch_of(r["created_at"]) == pytest.approx(stored[(r["run_id"], r["annotator"])].created_at, abs=1e-6)
    loaded = load_with_datasets(csv_path, "csv", keep_default_na=False)
    assert [(r["prompt"], r["created_at"]) for r in loaded] == [(r["prompt"], r["created_at"]) for r in rows]
    assert load_with_datasets(path, "json") == records


def test_dpo_pairs_from_decisive_votes(voted_db: dict, tmp_path: Path, capsys) -> None:
    path = tmp_path / "dpo.jsonl"
    assert export("--format", "dpo", "-o", str(path)) == 0
    assert "Exported 2 preference pairs" in capsys.readouterr().err  # one per run, by majority
    pairs = read_jsonl_like_datasets(path)
    runs = voted_db["runs"]

    def texts(key: str) -> tuple[str, str]:
        run = runs[key]
        return run["fused"]["text"], run["candidates"][run["bon"]["index"]]["text"]

    fused, bon = texts("geo1")
    (geo,) = [p for p in pairs if p["prompt"] == LINES[0]["prompt"]]
    assert (geo["chosen"], geo["rejected"], geo["votes"]) == (fused, bon, {"chosen": 2, "rejected": 0})
    assert export("--format", "dpo", "--per-vote", "-o", str(path)) == 0
    assert "Exported 3 preference pairs" in capsys.readouterr().err
    per_vote = [p for p in read_jsonl_like_datasets(path) if p["prompt"] == LINES[0]["prompt"]]
    assert len(per_vote) == 2 and all((p["chosen"], p["rejected"]) == (fused, bon) for p in per_vote)
    fused, bon = texts("art1")
    (art,) = [p for p in pairs if p["prompt"] == LINES[1]["prompt"]]
    assert (art["chosen"], art["rejected"]) == (bon, fused)  # Best-of-N won this one; the tie is left out


def test_sft_completion_messages_and_only_winning(voted_db: dict, tmp_path: Path, capsys) -> None:
    runs = voted_db["runs"]
    path = tmp_path / "sft.jsonl"
    assert export("--format", "sft", "-o", str(path)) == 0
    sft = read_jsonl_like_datasets(path)
    assert [(r["prompt"], r["completion"]) for r in sft] == [
        (runs[k]["prompt"]["text"], runs[k]["fused"]["text"]) for k in ("geo1", "art1", "geo2")
    ]
    msgs_path = tmp_path / "msgs.jsonl"
    assert export("--format", "sft-messages", "--only-winning", "-o", str(msgs_path)) == 0
    assert "Exported 2 fused answers (sft-messages)" in capsys.readouterr().err.splitlines()[-1]
    msgs = read_jsonl_like_datasets(msgs_path)
    # Fusion won or tied on geo1 and art1; geo2 was "both bad" only.
    assert [m["messages"][-1]["content"] for m in msgs] == [
        runs["geo1"]["fused"]["text"],
        runs["art1"]["fused"]["text"],
    ]
    assert msgs[1]["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert [m["role"] for m in msgs[0]["messages"]] == ["user", "assistant"]


def test_export_usage_errors(voted_db: dict, tmp_path: Path, capsys) -> None:
    assert export("--format", "dpo", "--only-winning", "-o", str(tmp_path / "x.jsonl")) == 2
    assert "--only-winning applies to the sft" in capsys.readouterr().err
    assert export("--format", "sft", "--per-vote", "-o", str(tmp_path / "x.jsonl")) == 2
    assert "apply to the dpo format only" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(SystemExit):
        export("--format", "parquet")


def test_export_to_stdout_in_a_subprocess(voted_db: dict) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        {"PYTHONPATH": str(ROOT), "FUSION_DB_PATH": str(voted_db["db"]), "LITELLM_OFFLINE_MODE": "true"}
    )
    env.pop("DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "fusion", "export", "--format", "votes-jsonl", "--tag", "art"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["annotator"] for r in rows] == ["ann", "bob"]
    assert "Exported 2 votes (votes-jsonl) to stdout." in proc.stderr


def test_export_dpo_format_conflicts_and_excel_safe(voted_db: dict, tmp_path: Path, capsys) -> None:
    ids, runs = voted_db["ids"], voted_db["runs"]
    # geo1: ann and bob chose the fusion; cy now the pick: 2 to 1, the annotators disagree.
    votes_db.record_vote(voted_db["engine"], run_id=ids["geo1"], annotator="cy", choice="A", a_is="bon")
    path = tmp_path / "dpo.jsonl"
    assert export("--format", "dpo", "--dpo-format", "conversational", "-o", str(path)) == 0
    err = capsys.readouterr().err
    assert "Exported 1 preference pair (dpo)" in err and "1 run whose annotators disagree" in err
    (art,) = read_jsonl_like_datasets(path)
    assert art["run_id"] == ids["art1"] and art["conflict"] is False
    assert art["prompt"] == [
        {"role": "system", "content": "Answer briefly."}, {"role": "user", "content": LINES[1]["prompt"]},
    ]
    bon = runs["art1"]["candidates"][runs["art1"]["bon"]["index"]]["text"]
    assert art["chosen"] == [{"role": "assistant", "content": bon}]

    assert export("--format", "dpo", "--keep-conflicts", "-o", str(path)) == 0
    assert "Exported 2 preference pairs (dpo)" in capsys.readouterr().err
    geo = next(p for p in read_jsonl_like_datasets(path) if p["run_id"] == ids["geo1"])
    assert geo["conflict"] is True and geo["chosen"] == runs["geo1"]["fused"]["text"]
    assert geo["votes"] == {"chosen": 2, "rejected": 1} and geo["system"] == ""

    votes_db.record_vote(voted_db["engine"], run_id=ids["geo2"], annotator="bob", choice="tie", a_is="bon",
                  comment="=1+1 looks fine")  # fmt: skip
    for flag, expected in (("--excel-safe", "'=1+1 looks fine"), (None, "=1+1 looks fine")):
        csv_path = tmp_path / f"votes{flag or ''}.csv"
        assert export("--format", "votes-csv", *([flag] if flag else []), "-o", str(csv_path)) == 0
        with csv_path.open(encoding="utf-8", newline="") as handle:
            (row,) = [r for r in csv.DictReader(handle) if r["annotator"] == "bob" and r["run_id"] == ids["geo2"]]
        assert row["comment"] == expected
    assert export("--format", "sft", "--dpo-format", "standard", "-o", str(tmp_path / "x.jsonl")) == 2
    assert "--dpo-format" in capsys.readouterr().err

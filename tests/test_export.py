"""Exports: votes as CSV and JSON Lines, DPO pairs and SFT data, read back and checked.

``datasets`` is not installed; the invariants its JSON loader (pyarrow) relies on are checked instead:
UTF-8, one JSON object per line, the same keys on every line, one JSON type per key (null aside), no
NaN/Infinity tokens. Every test runs on SQLite and on PostgreSQL (``db_url``, tests/pg_support.py).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion.errors import InputError  # noqa: E402
from storage import export as ex  # noqa: E402
from storage import runs as runs_db  # noqa: E402
from storage import votes as votes_db  # noqa: E402
from storage.migrations import init_db  # noqa: E402
from test_storage import make_run  # noqa: E402

SECRET = "sk-export-SECRET-77aa"


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        inner = {_json_type(v) for v in value if v is not None}
        assert len(inner) <= 1, f"mixed list {value!r}"
        return f"list[{inner.pop() if inner else '?'}]"
    if isinstance(value, dict):
        return "dict{" + ",".join(f"{k}:{_json_type(v)}" for k, v in sorted(value.items())) + "}"
    return "null"


def _no_constant(token: str):
    raise AssertionError(f"non-standard JSON constant {token}")


def read_jsonl_like_datasets(path: Path) -> list[dict]:
    raw = path.read_bytes()
    text = raw.decode("utf-8")  # strict: must be valid UTF-8
    assert text == "" or text.endswith("\n")
    lines = text.splitlines()
    records = [json.loads(line, parse_constant=_no_constant) for line in lines]
    assert all(isinstance(r, dict) for r in records)
    if records:
        keys = list(records[0])
        types: dict[str, set[str]] = {k: set() for k in keys}
        for r in records:
            assert list(r) == keys
            for k, v in r.items():
                if v is not None:
                    types[k].add(_json_type(v))
        for k, seen in types.items():
            collapsed = {t for t in seen if "?" not in t} or seen
            assert len(collapsed) <= 1, f"key {k} has types {seen}"
    return records


@pytest.fixture()
def engine(db_url):
    eng = init_db(db_url)
    runs = [
        make_run(run_id="r1", prompt="Capital of France?", texts=["Paris.", "Lyon.", "Nice."],
                 fused_text="Paris, on the Seine.", tags=["geo"], created_at=1.0, api_key=SECRET),
        make_run(run_id="r2", prompt="Schreibe ein Gedicht über Äpfel 🍎", system="Antworte auf Deutsch.",
                 texts=["Äpfel rot", "Äpfel grün"], fused_text="Äpfel rot und grün 🍏", tags=["poem"],
                 created_at=2.0),
        make_run(run_id="r3", prompt="=HYPERLINK(\"http://evil\")", texts=["same", "other"], fused_text="same",
                 tags=["geo"], created_at=3.0),
        make_run(run_id="r4", prompt="no fusion", texts=["a", "b"], fused_text=None, created_at=4.0),
        make_run(run_id="r5", prompt="never voted", texts=["x", "y"], fused_text="xy", created_at=5.0),
    ]
    runs[0].attribution.copied_fraction = float("nan")
    for run in runs:
        runs_db.save_run(eng, run)
    votes_db.record_vote(eng, run_id="r1", annotator="ann", choice="A", a_is="fused", comment="-fused is better",
                  ranking=[0, 2, 1])
    votes_db.record_vote(eng, run_id="r1", annotator="bob", choice="A", a_is="bon")
    votes_db.record_vote(eng, run_id="r2", annotator="ann", choice="tie", a_is="bon", comment="both fine\nreally")
    votes_db.record_vote(eng, run_id="r2", annotator="bob", choice="both_bad", a_is="fused", blind=False)
    votes_db.record_vote(eng, run_id="r3", annotator="ann", choice="B", a_is="bon")  # fused wins, but texts identical
    yield eng
    eng.dispose()


def test_votes_jsonl_round_trip(engine, tmp_path):
    path = tmp_path / "out" / "votes.jsonl"
    assert ex.export_votes_jsonl(engine, path) == 5
    records = read_jsonl_like_datasets(path)
    assert list(records[0]) == list(ex.VOTE_FIELDS)
    by_key = {(r["run_id"], r["annotator"]): r for r in records}
    first = by_key[("r1", "ann")]
    assert first["winner"] == "fused" and first["ranking"] == [0, 2, 1] and first["comment"] == "-fused is better"
    assert first["copied_fraction"] is None  # NaN is not valid JSON
    assert first["models"] == ["m/alpha"] and first["tags"] == ["geo"] and first["n"] == 3
    assert by_key[("r1", "bob")]["winner"] == "bon" and by_key[("r1", "bob")]["ranking"] == []
    assert by_key[("r2", "ann")]["comment"] == "both fine\nreally"
    assert by_key[("r2", "ann")]["prompt"] == "Schreibe ein Gedicht über Äpfel 🍎"
    assert isinstance(by_key[("r2", "ann")]["copied_fraction"], float)
    assert {k: r["blind"] for k, r in by_key.items()} == {
        ("r1", "ann"): True, ("r1", "bob"): True, ("r2", "ann"): True, ("r2", "bob"): False, ("r3", "ann"): True,
    }
    assert "🍎".encode() in path.read_bytes()  # real UTF-8, not \\u escapes
    assert not list(path.parent.glob("*.part"))


def test_votes_jsonl_tag_filter_and_open_file(engine):
    buffer = io.StringIO()
    assert ex.export_votes_jsonl(engine, buffer, tag="geo") == 3
    rows = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert {r["run_id"] for r in rows} == {"r1", "r3"}


def test_votes_csv_round_trip(engine, tmp_path):
    path = tmp_path / "votes.csv"
    assert ex.export_votes_csv(engine, path) == 5
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 and list(rows[0]) == list(ex.VOTE_FIELDS)
    by_key = {(r["run_id"], r["annotator"]): r for r in rows}
    assert by_key[("r2", "ann")]["comment"] == "both fine\nreally"  # quoted multi-line cell survives
    assert json.loads(by_key[("r1", "ann")]["ranking"]) == [0, 2, 1]
    assert json.loads(by_key[("r1", "ann")]["models"]) == ["m/alpha"]
    assert by_key[("r1", "bob")]["winner"] == "bon"
    assert (by_key[("r2", "bob")]["blind"], by_key[("r2", "ann")]["blind"]) == ("False", "True")
    # Cells a spreadsheet would execute are defused by default ...
    assert by_key[("r1", "ann")]["comment"] == "'-fused is better"
    assert by_key[("r3", "ann")]["prompt"] == "'=HYPERLINK(\"http://evil\")"
    assert float(by_key[("r2", "ann")]["created_at"]) > 0


def test_votes_csv_raw_cells_on_request(engine):
    buffer = io.StringIO(newline="")
    ex.export_votes_csv(engine, buffer, tag="geo", safe_for_spreadsheets=False)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue(), newline="")))
    assert len(rows) == 3
    assert {r["prompt"] for r in rows} == {"Capital of France?", "=HYPERLINK(\"http://evil\")"}


def test_dpo_pairs_per_vote_on_request(engine, tmp_path):
    path = tmp_path / "dpo.jsonl"
    assert ex.export_dpo_jsonl(engine, path, per_vote=True) == 2
    records = read_jsonl_like_datasets(path)
    assert records == [
        {"prompt": "Capital of France?", "chosen": "Paris, on the Seine.", "rejected": "Paris.",
         "run_id": "r1", "annotator": "ann", "blind": True},
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Paris, on the Seine.",
         "run_id": "r1", "annotator": "bob", "blind": True},
    ]  # r2: tie and both_bad are excluded; r3: identical texts teach nothing
    assert ex.export_dpo_jsonl(engine, tmp_path / "none.jsonl", tag="poem") == 0
    assert (tmp_path / "none.jsonl").read_bytes() == b""


def test_dpo_pairs_by_default_one_per_run_by_blind_majority(engine, tmp_path):
    from storage.votes import record_vote

    path = tmp_path / "dpo.jsonl"
    # r1: ann prefers the fusion, bob the pick: split evenly, so no pair (contradicting pairs mislead training)
    assert ex.export_dpo_jsonl(engine, path) == 0
    record_vote(engine, run_id="r1", annotator="cy", choice="A", a_is="fused")  # the fusion, 2 to 1
    record_vote(engine, run_id="r1", annotator="dee", choice="A", a_is="bon", blind=False)  # not counted
    assert ex.export_dpo_jsonl(engine, path) == 1
    (record,) = read_jsonl_like_datasets(path)
    assert record == {
        "prompt": "Capital of France?", "chosen": "Paris, on the Seine.", "rejected": "Paris.", "run_id": "r1",
        "votes": {"chosen": 2, "rejected": 1}, "annotators": ["ann", "cy"],
    }
    # with the vote cast after the reveal counted too, it is 2 to 2 again
    assert ex.export_dpo_jsonl(engine, path, include_non_blind=True) == 0


def test_sft_completion_style(engine, tmp_path):
    path = tmp_path / "sft.jsonl"
    assert ex.export_sft_jsonl(engine, path) == 4  # every run with a fused answer, oldest first
    records = read_jsonl_like_datasets(path)
    assert [r["completion"] for r in records] == ["Paris, on the Seine.", "Äpfel rot und grün 🍏", "same", "xy"]
    assert all(set(r) == {"prompt", "completion"} for r in records)


def test_sft_messages_style_and_only_winning(engine, tmp_path):
    path = tmp_path / "sft_msgs.jsonl"
    assert ex.export_sft_jsonl(engine, path, style="messages", only_winning=True) == 3  # r1, r2 (tie), r3
    records = read_jsonl_like_datasets(path)
    assert records[1]["messages"] == [
        {"role": "system", "content": "Antworte auf Deutsch."},
        {"role": "user", "content": "Schreibe ein Gedicht über Äpfel 🍎"},
        {"role": "assistant", "content": "Äpfel rot und grün 🍏"},
    ]
    assert [m["role"] for m in records[0]["messages"]] == ["user", "assistant"]
    assert ex.export_sft_jsonl(engine, tmp_path / "geo.jsonl", tag="geo", only_winning=True) == 2


def test_sft_rejects_unknown_style(engine, tmp_path):
    with pytest.raises(InputError, match="style"):
        ex.export_sft_jsonl(engine, tmp_path / "x.jsonl", style="chat")
    assert not (tmp_path / "x.jsonl").exists()


def test_no_export_contains_a_key(engine, tmp_path):
    outputs = {
        "v.jsonl": ex.export_votes_jsonl, "v.csv": ex.export_votes_csv,
        "d.jsonl": ex.export_dpo_jsonl, "s.jsonl": ex.export_sft_jsonl,
    }
    for name, fn in outputs.items():
        fn(engine, tmp_path / name)
        assert SECRET.encode() not in (tmp_path / name).read_bytes(), name


def test_checker_catches_inconsistent_lines(tmp_path):
    """The format check above must be able to fail."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": "x"}\n', encoding="utf-8")
    with pytest.raises(AssertionError):
        read_jsonl_like_datasets(bad)
    bad.write_text('{"a": NaN}\n', encoding="utf-8")
    with pytest.raises(AssertionError):
        read_jsonl_like_datasets(bad)
    bad.write_text('{"a": 1}\n{"b": 1}\n', encoding="utf-8")
    with pytest.raises(AssertionError):
        read_jsonl_like_datasets(bad)

"""Exports: votes as CSV and JSON Lines, DPO pairs (both TRL formats) and SFT data, read back and checked.

Each file is read twice: by a strict checker of the invariants the ``datasets`` JSON loader (pyarrow)
relies on (UTF-8, one JSON object per line, the same keys on every line, one JSON type per key, no
NaN/Infinity), and by ``datasets.load_dataset("json" | "csv")`` itself. Every test runs on SQLite and on
PostgreSQL (``db_url``, tests/pg_support.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from datetime import datetime
from pathlib import Path

# Local files only: the datasets library must never look for a hub.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion.errors import InputError  # noqa: E402
from storage import export as ex  # noqa: E402
from storage import runs as runs_db  # noqa: E402
from storage import votes as votes_db  # noqa: E402
from storage.migrations import init_db  # noqa: E402
from test_storage import make_run  # noqa: E402

SECRET = "sk-export-SECRET-77aa"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def load_with_datasets(path: Path, kind: str, **kwargs) -> list[dict]:
    """The rows of ``path`` as the Hugging Face ``datasets`` loader gives them (a cache of its own)."""
    datasets = pytest.importorskip("datasets", reason="datasets is in requirements-dev.txt; install it")
    loaded = datasets.load_dataset(
        kind, data_files=str(path), split="train", cache_dir=str(path.parent / f".hf-{path.name}"), **kwargs
    )
    return [dict(row) for row in loaded]


def epoch_of(stamp: str) -> float:
    assert ISO_UTC.match(stamp), stamp
    return datetime.fromisoformat(stamp).timestamp()


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
    # Stored as candidate indices [0, 2, 1]; exported as the page names them: Candidate 1, 3, 2.
    assert first["winner"] == "fused" and first["ranking"] == [1, 3, 2] and first["comment"] == "-fused is better"
    assert first["bon_candidate"] == 1  # the pick is candidate index 0
    assert first["copied_fraction"] is None  # NaN is not valid JSON
    assert first["models"] == ["m/alpha"] and first["tags"] == ["geo"] and first["n"] == 3
    assert by_key[("r1", "bob")]["winner"] == "bon" and by_key[("r1", "bob")]["ranking"] == []
    assert by_key[("r2", "ann")]["comment"] == "both fine\nreally"
    assert by_key[("r2", "ann")]["prompt"] == "Schreibe ein Gedicht über Äpfel 🍎"
    assert by_key[("r2", "ann")]["system"] == "Antworte auf Deutsch." and first["system"] == ""
    assert isinstance(by_key[("r2", "ann")]["copied_fraction"], float)
    assert {k: r["blind"] for k, r in by_key.items()} == {
        ("r1", "ann"): True, ("r1", "bob"): True, ("r2", "ann"): True, ("r2", "bob"): False, ("r3", "ann"): True,
    }
    stored = {(v.run_id, v.annotator): v for v in votes_db.all_votes(engine)}
    for key, r in by_key.items():
        assert epoch_of(r["created_at"]) == pytest.approx(stored[key].created_at, abs=1e-6)
        assert epoch_of(r["updated_at"]) == pytest.approx(stored[key].updated_at, abs=1e-6)
    assert "🍎".encode() in path.read_bytes()  # real UTF-8, not \\u escapes
    assert not list(path.parent.glob("*.part"))
    assert load_with_datasets(path, "json") == records  # the real loader reads the same values


def test_votes_jsonl_tag_filter_and_open_file(engine):
    buffer = io.StringIO()
    assert ex.export_votes_jsonl(engine, buffer, tag="geo") == 3
    rows = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert {r["run_id"] for r in rows} == {"r1", "r3"}


def test_votes_csv_keeps_text_exact(engine, tmp_path):
    path = tmp_path / "votes.csv"
    assert ex.export_votes_csv(engine, path) == 5
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 and list(rows[0]) == list(ex.VOTE_FIELDS)
    by_key = {(r["run_id"], r["annotator"]): r for r in rows}
    assert by_key[("r2", "ann")]["comment"] == "both fine\nreally"  # quoted multi-line cell survives
    assert json.loads(by_key[("r1", "ann")]["ranking"]) == [1, 3, 2]
    assert json.loads(by_key[("r1", "ann")]["models"]) == ["m/alpha"]
    assert by_key[("r1", "bob")]["winner"] == "bon"
    assert (by_key[("r2", "bob")]["blind"], by_key[("r2", "ann")]["blind"]) == ("False", "True")
    assert by_key[("r1", "ann")]["comment"] == "-fused is better"  # exact: no apostrophe by default
    assert by_key[("r3", "ann")]["prompt"] == "=HYPERLINK(\"http://evil\")"
    assert by_key[("r2", "ann")]["system"] == "Antworte auf Deutsch."
    assert all(ISO_UTC.match(r["created_at"]) and ISO_UTC.match(r["updated_at"]) for r in rows)

    # datasets' CSV loader (pandas) reads the same text; keep_default_na keeps the empty comments as "".
    loaded = {(r["run_id"], r["annotator"]): r for r in load_with_datasets(path, "csv", keep_default_na=False)}
    for key, row in by_key.items():
        for column in ("prompt", "comment", "system", "created_at", "annotator", "winner"):
            assert loaded[key][column] == row[column], (key, column)
        assert loaded[key]["blind"] is (row["blind"] == "True")
        assert loaded[key]["bon_candidate"] == 1


def test_votes_csv_excel_safe_on_request(engine):
    buffer = io.StringIO(newline="")
    assert ex.export_votes_csv(engine, buffer, excel_safe=True) == 5
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue(), newline="")))
    by_key = {(r["run_id"], r["annotator"]): r for r in rows}
    # Cells a spreadsheet would execute get a leading apostrophe; the others are unchanged.
    assert by_key[("r1", "ann")]["comment"] == "'-fused is better"
    assert by_key[("r3", "ann")]["prompt"] == "'=HYPERLINK(\"http://evil\")"
    assert by_key[("r1", "bob")]["prompt"] == "Capital of France?"


def test_dpo_pairs_per_vote_on_request(engine, tmp_path):
    path = tmp_path / "dpo.jsonl"
    assert ex.export_dpo_jsonl(engine, path, per_vote=True) == 2
    records = read_jsonl_like_datasets(path)
    assert [epoch_of(r.pop("run_created_at")) for r in records] == pytest.approx([1.0, 1.0])
    assert records == [
        {"prompt": "Capital of France?", "chosen": "Paris, on the Seine.", "rejected": "Paris.", "system": "",
         "run_id": "r1", "conflict": True, "annotator": "ann", "blind": True},
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Paris, on the Seine.", "system": "",
         "run_id": "r1", "conflict": True, "annotator": "bob", "blind": True},
    ]  # r2: tie and both_bad are excluded; r3: identical texts teach nothing
    assert ex.export_dpo_jsonl(engine, tmp_path / "none.jsonl", tag="poem") == 0
    assert (tmp_path / "none.jsonl").read_bytes() == b""


def test_dpo_aggregates_votes_per_run_before_making_pairs(engine, tmp_path):
    from storage.votes import record_vote

    path = tmp_path / "dpo.jsonl"
    # r1: ann prefers the fusion, bob the pick: an even split has no majority, so no pair.
    count = ex.export_dpo_jsonl(engine, path)
    assert (count, count.even_splits, count.conflicts_left_out, count.identical) == (0, 1, 0, 1)  # r3 identical
    votes_db.record_vote(engine, run_id="r1", annotator="cy", choice="A", a_is="fused")  # the fusion, 2 to 1
    votes_db.record_vote(engine, run_id="r1", annotator="dee", choice="A", a_is="bon", blind=False)  # not counted
    runs_db.save_run(engine, make_run(run_id="r6", prompt="Unanimous?", system="Be brief.", texts=["no", "maybe"],
                                fused_text="yes", created_at=6.0))
    for name in ("ann", "bob"):
        votes_db.record_vote(engine, run_id="r6", annotator=name, choice="B", a_is="fused")  # both: the pick

    # By default a run whose annotators disagree is left out, and counted.
    count = ex.export_dpo_jsonl(engine, path)
    assert (count, count.conflicts_left_out, count.even_splits) == (1, 1, 0)
    assert count.summary() == (
        "1 preference pair; left out: 1 run whose annotators disagree (keep them with --keep-conflicts), "
        "1 run whose fused answer is the pick itself"
    )
    (record,) = read_jsonl_like_datasets(path)
    assert epoch_of(record.pop("run_created_at")) == pytest.approx(6.0)
    assert record == {
        "prompt": "Unanimous?", "chosen": "no", "rejected": "yes", "system": "Be brief.", "run_id": "r6",
        "conflict": False, "votes": {"chosen": 2, "rejected": 0}, "annotators": ["ann", "bob"],
    }

    # keep_conflicts writes it by its majority, marked.
    count = ex.export_dpo_jsonl(engine, path, keep_conflicts=True)
    assert (count, count.conflicts_kept, count.conflicts_left_out) == (2, 1, 0)
    assert count.summary() == '2 preference pairs (1 marked "conflict"); left out: 1 run whose fused answer is the pick itself'
    first, second = read_jsonl_like_datasets(path)
    assert (first["run_id"], first["conflict"], first["chosen"]) == ("r1", True, "Paris, on the Seine.")
    assert first["votes"] == {"chosen": 2, "rejected": 1} and first["annotators"] == ["ann", "cy"]
    assert (second["run_id"], second["conflict"]) == ("r6", False)
    assert [r["run_id"] for r in load_with_datasets(path, "json")] == ["r1", "r6"]

    # with the vote cast after the reveal counted too, r1 is 2 to 2: no majority, even when keeping conflicts
    count = ex.export_dpo_jsonl(engine, path, include_non_blind=True, keep_conflicts=True)
    assert (count, count.even_splits) == (1, 1)
    assert "1 run with the decisive votes split evenly" in count.left_out()


def test_dpo_conversational_format_keeps_the_system_message(engine, tmp_path):
    votes_db.record_vote(engine, run_id="r2", annotator="cy", choice="B", a_is="bon")  # the fusion wins r2
    path = tmp_path / "dpo-conv.jsonl"
    assert ex.export_dpo_jsonl(engine, path, dpo_format="conversational", per_vote=True) == 3
    records = read_jsonl_like_datasets(path)
    german = [r for r in records if r["run_id"] == "r2"]
    assert german[0]["prompt"] == [
        {"role": "system", "content": "Antworte auf Deutsch."},
        {"role": "user", "content": "Schreibe ein Gedicht über Äpfel 🍎"},
    ]
    assert german[0]["chosen"] == [{"role": "assistant", "content": "Äpfel rot und grün 🍏"}]
    assert german[0]["rejected"] == [{"role": "assistant", "content": "Äpfel rot"}]
    french = [r for r in records if r["run_id"] == "r1"]
    assert french[0]["prompt"] == [{"role": "user", "content": "Capital of France?"}]  # no system: no message
    assert "system" not in french[0]  # it lives in the prompt
    loaded = load_with_datasets(path, "json")
    assert [row["prompt"] for row in loaded] == [r["prompt"] for r in records]
    assert [row["chosen"][0]["content"] for row in loaded] == [r["chosen"][0]["content"] for r in records]

    # One pair per run by default: r2 is unanimous (cy), r1 an even split.
    count = ex.export_dpo_jsonl(engine, path, dpo_format="conversational")
    assert (count, count.even_splits) == (1, 1)
    assert read_jsonl_like_datasets(path)[0]["prompt"][0] == {"role": "system", "content": "Antworte auf Deutsch."}


def test_dpo_rejects_unknown_format(engine, tmp_path):
    with pytest.raises(InputError, match="dpo_format must be one of standard, conversational"):
        ex.export_dpo_jsonl(engine, tmp_path / "x.jsonl", dpo_format="chatml")
    assert not (tmp_path / "x.jsonl").exists()


def test_sft_completion_style(engine, tmp_path):
    path = tmp_path / "sft.jsonl"
    assert ex.export_sft_jsonl(engine, path) == 4  # every run with a fused answer, oldest first
    records = read_jsonl_like_datasets(path)
    assert [r["completion"] for r in records] == ["Paris, on the Seine.", "Äpfel rot und grün 🍏", "same", "xy"]
    assert all(list(r) == ["prompt", "completion", "system", "run_id", "run_created_at"] for r in records)
    assert [r["system"] for r in records] == ["", "Antworte auf Deutsch.", "", ""]
    assert [epoch_of(r["run_created_at"]) for r in records] == pytest.approx([1.0, 2.0, 3.0, 5.0])
    assert load_with_datasets(path, "json") == records


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
    assert [r["run_id"] for r in records] == ["r1", "r2", "r3"]
    assert [row["messages"] for row in load_with_datasets(path, "json")] == [r["messages"] for r in records]
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


def test_iso_utc():
    assert ex.iso_utc(0) == "1970-01-01T00:00:00.000000Z"
    assert ex.iso_utc(1796163994.125) == "2026-12-01T22:26:34.125000Z"


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

"""The ``kept`` and ``diff`` fields of ``fuse``, ``attribute`` and ``batch`` output lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fakes import FakeModelClient
from fusion.cli import main
from fusion.cli.fuse import fuse_record
from fusion.errors import ProviderError
from fusion.fusors import LLMFusor
from fusion.selectors import ConsensusSelector
from test_cli import CANDS, cli, jsonl

STATUSES = {"kept", "edited", "dropped"}


def check_entry(entry: dict[str, Any], index: int, text: str) -> None:
    """The documented shape, with ranges and units inside the candidate and counts that add up."""
    assert set(entry) == {"index", "ranges", "units", "unit_status"}
    assert entry["index"] == index
    for a, b in entry["ranges"]:
        assert 0 <= a < b <= len(text)
    assert entry["ranges"] == sorted(entry["ranges"])
    counts = entry["units"]
    assert set(counts) == {"kept", "edited", "dropped", "total"}
    assert counts["kept"] + counts["edited"] + counts["dropped"] == counts["total"] == len(entry["unit_status"])
    for start, end, status, kind, coverage in entry["unit_status"]:
        assert 0 <= start < end <= len(text) and status in STATUSES and 0.0 <= coverage <= 1.0
        assert kind in {"sentence", "item", "heading", "code", "table", "quote"}


def test_fuse_lines_carry_kept_per_candidate_and_the_pick_against_fusion_diff() -> None:
    cands = CANDS + ["", "Bananas are yellow and grow in bunches on large plants."]
    code, out, err = cli("fuse", "-q", stdin=jsonl({"id": "q1", "prompt": "What is the capital of France?", "candidates": cands}))
    assert code == 0, err
    rec = json.loads(out)
    fused = rec["fused"]["text"]
    kept = rec["kept"]
    assert len(kept) == len(cands)
    assert kept[3] is None  # the empty candidate failed
    for i, entry in enumerate(kept):
        if entry is not None:
            check_entry(entry, i, cands[i])
    # The banana answer has nothing to do with the question: the fusion drops all of it.
    assert kept[4]["units"] == {"kept": 0, "edited": 0, "dropped": 1, "total": 1} and kept[4]["ranges"] == []
    # Units reported as kept are in the fused text.
    some_kept = False
    for i, entry in enumerate(kept):
        for start, end, status, _, _ in entry["unit_status"] if entry else []:
            if status == "kept":
                some_kept = True
                assert cands[i][start:end].rstrip(".") in fused
    assert some_kept
    # The diff: rows in reading order with ranges into the pick's text and the fused text.
    pick = cands[rec["bon"]["index"]]
    diff = rec["diff"]
    assert set(diff) == {"counts", "rows"}
    assert sum(diff["counts"].values()) == len(diff["rows"])
    for row in diff["rows"]:
        assert row["op"] in {"shared", "edited", "dropped", "added"}
        if row["bon"]:
            assert 0 <= row["bon"][0] < row["bon"][1] <= len(pick)
        if row["fused"]:
            assert 0 <= row["fused"][0] < row["fused"][1] <= len(fused)
    shared = [r for r in diff["rows"] if r["op"] == "shared"]
    assert shared and all(pick[r["bon"][0] : r["bon"][1]] == fused[r["fused"][0] : r["fused"][1]] for r in shared)


def test_attribute_lines_carry_kept_including_cjk_and_a_failed_candidate() -> None:
    ja = "東京は日本の首都です。人口は約千四百万人です。富士山がよく見えます。"
    obj = {"candidates": [ja, "", "Ein völlig anderer Text über Zugverspätungen in Norddeutschland."],
           "fused": "東京は日本の首都です。富士山がよく見えます。"}
    code, out, err = cli("attribute", stdin=jsonl(obj))
    assert code == 0, err
    rec = json.loads(out)
    first, empty, german = rec["kept"]
    check_entry(first, 0, ja)
    assert [u[2] for u in first["unit_status"]] == ["kept", "dropped", "kept"]
    assert empty is None
    assert german["units"]["dropped"] == german["units"]["total"] == 1


def test_an_llm_fusion_that_edits_shows_edited_units() -> None:
    # A fusor that rewrites one sentence lightly and keeps another as is.
    reply = "Paris is the capital city of France. It has about two million inhabitants."
    fusor = LLMFusor(FakeModelClient(default=reply), "openai/fake", api_base="http://127.0.0.1:9/v1", seed=1)
    obj = {"id": 1, "prompt": "Capital of France?", "candidates": CANDS}
    rec = fuse_record(obj, 1, selector=ConsensusSelector(), fusor=fusor)
    assert rec["fused"]["text"] == reply
    third = rec["kept"][2]  # "Paris is the capital of France. It has about two million inhabitants."
    assert [u[2] for u in third["unit_status"]] == ["edited", "kept"]
    assert json.loads(json.dumps(rec)) == rec


def test_a_failed_fusion_has_no_kept_and_no_diff() -> None:
    fusor = LLMFusor(
        FakeModelClient(default=ProviderError("the fusor timed out", kind="timeout")),
        "openai/fake", api_base="http://127.0.0.1:9/v1", num_retries=0,
    )
    rec = fuse_record({"prompt": "Q?", "candidates": CANDS}, 1, selector=ConsensusSelector(), fusor=fusor)
    assert rec["fused"].get("error")
    assert rec["kept"] is None and rec["diff"] is None


def test_offline_batch_lines_carry_kept_and_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FUSION_DB_PATH", str(tmp_path / "fusion.db"))
    src = tmp_path / "in.jsonl"
    src.write_text(jsonl({"id": "a", "prompt": "Capital of France?", "candidates": CANDS}), encoding="utf-8")
    out = tmp_path / "runs.jsonl"
    assert main(["batch", str(src), "-o", str(out), "--offline", "-q"]) == 0
    (line,) = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(line["kept"]) == len(CANDS)
    for i, entry in enumerate(line["kept"]):
        check_entry(entry, i, CANDS[i])
    assert line["diff"]["counts"]["shared"] >= 1

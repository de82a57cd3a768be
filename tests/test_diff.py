"""Best-of-N against the fusion, sentence by sentence (fusion.diff)."""

from __future__ import annotations

import json

import pytest

from fusion.diff import EDITED_MIN_SIMILARITY, DiffRow, SentenceDiff, diff_sentences, run_diff
from fusion.errors import InputError
from fusion.types import BestOfN, Candidate, FusedOutput, Prompt, Run


def ops(d: SentenceDiff) -> list[str]:
    return [r.op for r in d.rows]


def sides(d: SentenceDiff, bon: str, fused: str) -> list[tuple[str, str | None, str | None]]:
    return [
        (r.op, bon[r.bon[0] : r.bon[1]] if r.bon else None, fused[r.fused[0] : r.fused[1]] if r.fused else None)
        for r in d.rows
    ]


def sentence(k: int) -> str:
    """A distinct plain sentence: the number is spelled out so that sentences differ in several words."""
    words = "zero one two three four five six seven eight nine".split()
    return f"Step {words[k % 10]} of group {words[(k // 10) % 10]} in block {words[k // 100]} is done carefully."


def paragraphs(sentences: list[str]) -> str:
    return "\n\n".join(" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4))


def test_identical_texts_are_all_shared() -> None:
    text = "# Plan\n\nFirst we pack. Then we drive north.\n\n- water\n- maps\n\n```sh\nls -la\n```"
    d = diff_sentences(text, text)
    assert ops(d) == ["shared"] * 6
    assert d.identical and d.leading_shared == 6
    assert all(r.bon == r.fused for r in d.rows)
    assert d.counts == {"shared": 6, "edited": 0, "dropped": 0, "added": 0}


def test_empty_texts() -> None:
    assert diff_sentences("", "").rows == []
    assert diff_sentences("", "").identical
    assert ops(diff_sentences("", "One sentence. Another one.")) == ["added", "added"]
    assert ops(diff_sentences("One sentence. Another one.", "")) == ["dropped", "dropped"]
    # Only punctuation and rules: no units on either side.
    assert diff_sentences("---\n\n**", "...").rows == []


def test_long_answers_that_begin_identically_show_what_changed_further_down() -> None:
    head = [sentence(k) for k in range(10)]
    bon = " ".join(head + [
        "Keep the receipts for the tax office until the end of next year at least.",
        "Call the landlord before you move out so the deposit comes back on time.",
        "Ask the neighbours to water the plants.",
    ])
    fused = " ".join(head + [
        "Keep the receipts for the tax office until the end of the next year at least.",
        "Cancel the electricity contract a month ahead.",
        "Ask the neighbours to water the plants.",
    ])
    d = diff_sentences(bon, fused)
    assert d.leading_shared == 10
    assert sides(d, bon, fused)[10:] == [
        ("edited", "Keep the receipts for the tax office until the end of next year at least.",
         "Keep the receipts for the tax office until the end of the next year at least."),
        ("dropped", "Call the landlord before you move out so the deposit comes back on time.", None),
        ("added", None, "Cancel the electricity contract a month ahead."),
        ("shared", "Ask the neighbours to water the plants.", "Ask the neighbours to water the plants."),
    ]
    edited = d.rows[10]
    assert EDITED_MIN_SIMILARITY <= edited.similarity < 1.0
    assert not d.identical


def test_formatting_only_changes_are_shared() -> None:
    bon = "1. **Preheat** the oven to 200 degrees.\n2. Grease the tin well."
    fused = "- Preheat the oven to 200 degrees\n- grease the tin well!"
    assert ops(diff_sentences(bon, fused)) == ["shared", "shared"]


def test_a_rewritten_sentence_is_dropped_and_added_not_edited() -> None:
    bon = "The museum opens at nine on weekdays."
    fused = "Tickets are cheaper if you book them online in advance."
    assert ops(diff_sentences(bon, fused)) == ["dropped", "added"]


def test_cjk_sentences() -> None:
    bon = "富士山は日本で一番高い山です。標高は三千七百七十六メートルです。夏には多くの登山者が訪れます。"
    fused = "富士山は日本で一番高い山です。標高は約三千七百七十六メートルです。冬の登山は危険です。"
    assert sides(diff_sentences(bon, fused), bon, fused) == [
        ("shared", "富士山は日本で一番高い山です。", "富士山は日本で一番高い山です。"),
        ("edited", "標高は三千七百七十六メートルです。", "標高は約三千七百七十六メートルです。"),
        ("dropped", "夏には多くの登山者が訪れます。", None),
        ("added", None, "冬の登山は危険です。"),
    ]


def test_code_block_is_one_unit() -> None:
    bon = "Run this:\n\n```python\nprint('hello')\nprint('world')\n```"
    fused = "Run this:\n\n```python\nprint('hello')\nprint('there')\n```"
    d = diff_sentences(bon, fused)
    assert ops(d) == ["shared", "edited"]
    assert fused[d.rows[1].fused[0] : d.rows[1].fused[1]].startswith("```python")


def test_200_sentences_with_edits_drops_and_additions_give_the_expected_rows() -> None:
    bon_units = [sentence(k) for k in range(200)]
    fused_units: list[str] = []
    expected: list[str] = []
    for k, s in enumerate(bon_units):
        if k >= 100 and k % 7 == 0:
            expected.append("dropped")
            continue
        if k >= 100 and k % 5 == 0:
            s = s.replace("is done carefully", "is done very carefully")
            expected.append("edited")
        else:
            expected.append("shared")
        fused_units.append(s)
        if k >= 100 and k % 9 == 0:
            fused_units.append(f"An extra remark number {k} about the weather.")
            expected.append("added")
    bon, fused = paragraphs(bon_units), paragraphs(fused_units)
    # Inside a changed stretch the pick's dropped units come before the fusion's added ones.
    for i in range(len(expected) - 1):
        if expected[i : i + 2] == ["added", "dropped"]:
            expected[i : i + 2] = ["dropped", "added"]
    d = diff_sentences(bon, fused)
    assert ops(d) == expected
    assert d.counts == {"shared": 169, "edited": 17, "dropped": 14, "added": 9}
    assert d.leading_shared == 100


def test_pairing_inside_a_large_replaced_block_stays_in_order() -> None:
    # 250 sentences each slightly edited: one replaced block of 250 x 250, past the full-search limit,
    # so pairs are searched in a band along the diagonal.
    bon_units = [sentence(k) for k in range(250)]
    fused_units = [s.replace("carefully", "with care") for s in bon_units]
    d = diff_sentences(paragraphs(bon_units), paragraphs(fused_units))
    assert ops(d) == ["edited"] * 250
    assert [r.bon for r in d.rows] == sorted(r.bon for r in d.rows)
    assert [r.fused for r in d.rows] == sorted(r.fused for r in d.rows)


def test_round_trip_and_validation() -> None:
    bon = "Alpha beta gamma delta epsilon zeta. Eta theta."
    fused = "Alpha beta gamma delta epsilon eta. Iota kappa."
    d = diff_sentences(bon, fused)
    data = json.loads(json.dumps(d.to_dict()))
    assert set(data) == {"counts", "rows"}
    assert data["counts"] == d.counts
    assert SentenceDiff.from_dict(data).rows == [
        DiffRow(r.op, r.bon, r.fused, round(r.similarity, 3)) for r in d.rows
    ]
    with pytest.raises(InputError):
        DiffRow.from_dict({"op": "moved", "bon": [0, 1], "fused": None})
    with pytest.raises(InputError):
        diff_sentences("a", "b", edited_min=0.0)


def test_run_diff_needs_a_pick_and_a_fused_text() -> None:
    cands = [Candidate(0, "One answer here. It is short."), Candidate(1, "Another answer here.")]
    run = Run(prompt=Prompt("q"), candidates=cands)
    assert run_diff(run) is None
    run.bon = BestOfN(index=0, scores=[1.0, 0.5], method="consensus")
    assert run_diff(run) is None  # no fused text yet
    run.fused = FusedOutput(text="One answer here. It is long.", method="extractive")
    d = run_diff(run)
    assert d is not None and ops(d) == ["shared", "edited"]
    run.fused = FusedOutput(text="", method="llm:x", error="timeout")
    assert run_diff(run) is None

"""Golden outputs: the offline method (consensus pick, extractive fusion, span attribution) gives exactly
what was recorded in tests/golden/outputs.json (by tests/golden/record.py, see its docstring), for the 9
built-in scenarios and for the generated cases of tests/golden/inputs.json.

A refactoring must leave every one of them unchanged. A change of behaviour that is meant re-records them
(``.venv/bin/python tests/golden/record.py``) and says so in its commit.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.golden.record import OUTPUTS, all_cases, input_digest, outcome, prompt_of

RECORDED: dict[str, Any] = json.loads(OUTPUTS.read_text(encoding="utf-8"))
CASES = all_cases()


def test_every_case_is_recorded_and_every_recording_has_a_case() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(RECORDED)
    # The 9 scenarios and the generated cases are all there.
    assert sum(1 for i in ids if i.startswith("scenario:")) == 9
    assert len(ids) >= 40


def test_the_recording_is_not_trivial() -> None:
    # A golden file where the fusion is always the pick, or nothing is attributed, would pin down little.
    differs = []
    for case in CASES:
        recorded = RECORDED[case["id"]]
        pick = recorded["pick"]["index"]
        if pick is not None and recorded["fused"]["text"] != case["candidates"][pick].strip():
            differs.append(case["id"])
    assert len(differs) >= 15
    assert sum(1 for r in RECORDED.values() if r["attribution"] and len(r["attribution"]["spans"]) > 3) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_output_equals_the_recording(case: dict[str, Any]) -> None:
    recorded = RECORDED[case["id"]]
    prompt = prompt_of(case)
    digest = input_digest(prompt, case["candidates"], case.get("errors"))
    assert digest == recorded["input_sha256"], (
        f"the input of {case['id']} changed since it was recorded (a scenario was edited?): re-record the "
        "golden outputs with tests/golden/record.py on code whose behaviour is trusted"
    )
    got = outcome(prompt, case["candidates"], case.get("errors"))
    # Field by field first, so that a failure names what changed.
    for key in ("pick", "fused", "attribution", "attribution_short", "variants"):
        assert got[key] == recorded[key], f"{case['id']}: {key} differs from the recording"
    assert {k: v for k, v in got.items()} == {k: v for k, v in recorded.items() if k != "input_sha256"}

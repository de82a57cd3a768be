"""Degenerate fusions are flagged (and normal ones are not), from the failures seen with a 135M fusor."""

from __future__ import annotations

import pytest

from fusion.attribution import attribute
from fusion.degenerate import check_fusion, run_warnings
from fusion.fusors import PRESETS
from fusion.pipeline import supplied_candidates
from fusion.types import FusedOutput, Prompt, Run

PROMPT = Prompt("Write a short paragraph about the history of the bicycle.")
CANDIDATES = supplied_candidates([
    "The bicycle began with the draisine of 1817, a running machine without pedals built by Karl Drais. "
    "Pedals on the front wheel came in the 1860s with the velocipede, and the high-wheeler followed. "
    "The safety bicycle of the 1880s, with a chain drive and equal wheels, is the shape we ride today.",
    "Karl Drais built the first two-wheeled running machine in 1817. In the 1860s French makers added "
    "pedals to the front wheel. John Kemp Starley's Rover of 1885 introduced the safety bicycle, and "
    "pneumatic tyres from Dunlop in 1888 made riding comfortable.",
])
GOOD = (
    "The bicycle began in 1817 with Karl Drais's running machine, which had no pedals. In the 1860s French "
    "makers added pedals to the front wheel, and the high-wheeler followed. The safety bicycle of the "
    "1880s, such as Starley's Rover of 1885, brought a chain drive and equal wheels, and Dunlop's "
    "pneumatic tyres of 1888 made riding comfortable."
)


def warnings_for(text: str, prompt: Prompt = PROMPT, candidates=CANDIDATES, template: str | None = PRESETS["fusion"].template):
    fused = FusedOutput(text=text, method="llm:m", template="fusion")
    attribution = attribute(text, [c.text for c in candidates])
    return [w.code for w in check_fusion(prompt, candidates, fused, attribution, template=template)]


def test_a_normal_fusion_gets_no_warning() -> None:
    assert warnings_for(GOOD) == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("I'm ready to help. What prompt is this?", "asks_back"),
        ("How to write it: - Read every candidate critically. Keep the strongest, correct parts of each.",
         "echoes_template"),
        ("Here's another one: the bicycle is old.", "mentions_input"),
        ("Both responses agree that Drais built it. Response 2 adds tyres.", "mentions_input"),
        ("I combined the two answers into one. " + GOOD, "mentions_input"),
        ("Bikes are fun.", "short_and_new"),
    ],
)
def test_degenerate_fusions_are_flagged(text: str, code: str) -> None:
    assert code in warnings_for(text)


def test_phrases_from_the_prompt_or_candidates_are_not_held_against_the_fusion() -> None:
    prompt = Prompt("Compare the two candidates for the job: Ana (10 years of Python) and Ben (2 years).")
    cands = supplied_candidates([
        "Ana is the stronger of the two candidates: ten years of Python against two.",
        "Of the candidates, Ana has far more experience, so she is the better choice for the role.",
    ])
    assert "mentions_input" not in warnings_for("Ana is the stronger of the candidates: she has ten years of Python.",
                                                 prompt, cands)


def test_a_short_fusion_of_short_candidates_is_fine() -> None:
    cands = supplied_candidates(["Paris.", "The capital of France is Paris."])
    assert warnings_for("Paris.", Prompt("Capital of France?"), cands) == []


def test_no_fusion_or_a_failed_one_gets_no_warning_and_run_warnings_finds_the_preset() -> None:
    run = Run(prompt=PROMPT, candidates=CANDIDATES)
    assert run_warnings(run) == []
    run.fused = FusedOutput(text="", method="llm:m", error="timed out")
    assert run_warnings(run) == []
    run.fused = FusedOutput(text="How to write it: - Read every candidate critically. Keep the strongest. Response 2 is",
                            method="llm:m",
                            template="fusion")
    assert "echoes_template" in [w.code for w in run_warnings(run)]
    run.fused.template = "custom"  # not stored with the run: no echo check, the other checks still run
    codes = [w.code for w in run_warnings(run)]
    assert "echoes_template" not in codes and "mentions_input" in codes


def test_the_app_warns_on_the_fused_output_and_keeps_the_text(engine) -> None:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from fusion.pipeline import attribute_fused, run_supplied
    from storage.runs import save_run

    run = run_supplied(PROMPT, [c.text for c in CANDIDATES], run_id="degenerate-1")
    run.fused = FusedOutput(text="I'm ready to help. What prompt is this?", method="llm:tiny", template="fusion")
    run.attribution = attribute_fused(run.fused, run.candidates)
    save_run(engine, run)
    main = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
    at = AppTest.from_file(main, default_timeout=60).run()
    at.switch_page("history.py")
    at.query_params["run"] = "degenerate-1"
    at.run()
    assert not any("asks for a task" in w.value for w in at.warning)  # blind: nothing tells the sides apart
    next(b for b in at.button if b.label == "Show the labels without voting").click().run()
    assert not at.exception
    assert any("asks for a task instead of answering" in w.value for w in at.warning)
    assert any("What prompt is this?" in h.proto.body for h in at.get("html"))


def test_the_cli_puts_warnings_in_its_json(tmp_path) -> None:
    import json

    from fusion.cli import main

    line = {"prompt": PROMPT.text, "candidates": [c.text for c in CANDIDATES]}
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(line) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["fuse", str(src), "-o", str(out)]) == 0
    (record,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert record["warnings"] == []  # an extractive fusion copies: nothing degenerate

"""The built-in scenario gallery: data quality of the hand-written scenarios and the loader's API."""

from __future__ import annotations

import difflib
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fusion.scenarios import (
    MAX_CANDIDATES,
    MIN_CANDIDATES,
    Scenario,
    ScenarioDataError,
    get_scenario,
    load_scenarios,
    parse_scenario,
    scenario_to_candidates,
    scenario_to_run,
)
from fusion.types import Run
from fusion.validate import check_candidate_texts, check_prompt

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "fusion" / "scenarios"

# Candidates answering one chat prompt should share little text; translations of one source paragraph
# naturally share names and words, so they get a looser bound. A near copy scores above both.
CHAT_MAX_OVERLAP = 0.6
TRANSLATION_MAX_OVERLAP = 0.9

SCENARIOS = load_scenarios()


def overlap(a: str, b: str) -> float:
    """Character-level similarity in [0, 1] (difflib's ratio without the junk heuristic)."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def is_translation(s: Scenario) -> bool:
    return s.category == "translation"


def words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", text.casefold())


def by_id() -> dict[str, Scenario]:
    return {s.id: s for s in SCENARIOS}


# --- the gallery as a whole -------------------------------------------------------------------------------


def test_gallery_has_at_least_eight_scenarios_one_file_each() -> None:
    files = sorted(p.name for p in DATA_DIR.glob("*.json"))
    assert len(SCENARIOS) >= 8
    assert len(files) == len(SCENARIOS)
    assert sorted(f"{s.id}.json" for s in SCENARIOS) == files


def test_ids_are_unique_slugs() -> None:
    ids = [s.id for s in SCENARIOS]
    assert len(set(ids)) == len(ids)
    for scenario_id in ids:
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", scenario_id), scenario_id


def test_required_categories_present() -> None:
    kinds = {(s.category, s.output_language) for s in SCENARIOS}
    categories = {s.category for s in SCENARIOS}
    for category in ("advice", "creative", "code", "factual", "summary", "list"):
        assert category in categories, category
    assert ("translation", "de") in kinds
    assert ("translation", "ja") in kinds
    translations = [s for s in SCENARIOS if is_translation(s)]
    assert {s.language for s in translations} >= {"en→de", "en→ja"}


def test_gallery_order_is_stable_and_follows_order_field() -> None:
    orders = {}
    for path in DATA_DIR.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        orders[data["id"]] = data["order"]
    listed = [s.id for s in SCENARIOS]
    assert listed == sorted(listed, key=lambda i: (orders[i], i))
    assert [s.id for s in load_scenarios()] == listed


def test_gallery_is_small() -> None:
    total = sum(p.stat().st_size for p in DATA_DIR.glob("*.json"))
    assert total < 60_000, f"gallery is {total} bytes"


def test_files_are_readable_utf8_with_provenance() -> None:
    for path in DATA_DIR.glob("*.json"):
        raw = path.read_text(encoding="utf-8")
        # ensure_ascii=False: non-ASCII text is stored as itself, so the files stay reviewable by eye.
        assert not re.search(r"\\u[0-9a-fA-F]{4}", raw), path.name
        data = json.loads(raw)
        assert "not real model outputs" in data["provenance"], path.name


# --- each scenario -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("s", SCENARIOS, ids=lambda s: s.id)
def test_scenario_fields(s: Scenario) -> None:
    assert MIN_CANDIDATES <= len(s.candidates) <= MAX_CANDIDATES
    assert 4 <= len(s.candidates) <= 6
    assert len(s.candidate_labels) == len(s.candidates)
    assert len(set(s.candidate_labels)) == len(s.candidate_labels)
    for text in (s.title, s.category, s.language, s.prompt, s.note, *s.candidates, *s.candidate_labels):
        assert text.strip()
    assert "\n" not in s.note, "the demo note is one line"
    assert len(set(s.candidates)) == len(s.candidates)
    check_prompt(s.prompt)
    assert check_candidate_texts(list(s.candidates)) == list(s.candidates)
    if is_translation(s):
        assert s.reference and s.reference not in s.candidates


@pytest.mark.parametrize("s", SCENARIOS, ids=lambda s: s.id)
def test_candidates_differ_substantially(s: Scenario) -> None:
    limit = TRANSLATION_MAX_OVERLAP if is_translation(s) else CHAT_MAX_OVERLAP
    for (i, a), (j, b) in itertools.combinations(enumerate(s.candidates, 1), 2):
        assert overlap(a, b) < limit, f"{s.id}: candidates {i} and {j} are too alike"


def test_overlap_check_catches_a_near_copy() -> None:
    """The bound above must be able to fail: a lightly edited copy of a candidate scores over it."""
    for s in SCENARIOS:
        original = s.candidates[0]
        near_copy = original.replace(".", "!", 2).replace(" the ", " a ", 2) + " Hope this helps."
        limit = TRANSLATION_MAX_OVERLAP if is_translation(s) else CHAT_MAX_OVERLAP
        assert overlap(original, near_copy) >= limit, s.id


@pytest.mark.parametrize("s", [s for s in SCENARIOS if not is_translation(s)], ids=lambda s: s.id)
def test_chat_candidates_have_realistic_length(s: Scenario) -> None:
    for i, text in enumerate(s.candidates, 1):
        n = len(words(text))
        assert 60 <= n <= 300, f"{s.id}: candidate {i} has {n} words"


@pytest.mark.parametrize("s", [s for s in SCENARIOS if is_translation(s)], ids=lambda s: s.id)
def test_translations_are_short(s: Scenario) -> None:
    chat_lengths = [len(t) for x in SCENARIOS if not is_translation(x) for t in x.candidates]
    for text in s.candidates:
        assert len(text) < min(chat_lengths)
        assert len(text) < 2 * len(s.reference or "")


@pytest.mark.parametrize("s", SCENARIOS, ids=lambda s: s.id)
def test_code_fences_are_balanced(s: Scenario) -> None:
    # An unclosed fence would swallow the rest of a rendered candidate.
    for text in (s.prompt, *s.candidates):
        assert text.count("```") % 2 == 0


def test_creative_candidates_respect_the_word_limit_they_were_given() -> None:
    creative = [s for s in SCENARIOS if s.category == "creative"]
    assert creative
    for s in creative:
        limit = int(re.search(r"at most (\d+) words", s.prompt).group(1))
        for text in s.candidates:
            assert len(words(text)) <= limit


GERMAN_WORDS = {"der", "die", "das", "und", "wir", "nach", "ist", "den", "zug", "aber", "nicht", "ein"}
ENGLISH_WORDS = {"the", "and", "we", "was", "our", "which", "but", "is"}


def test_german_translation_is_german() -> None:
    s = next(x for x in SCENARIOS if x.language == "en→de")
    for text in (*s.candidates, s.reference or ""):
        ws = words(text)
        assert re.search(r"[äöüÄÖÜß]", text), text
        assert sum(w in GERMAN_WORDS for w in ws) >= 5, text
        assert sum(w in ENGLISH_WORDS for w in ws) == 0, text


def _script_counts(text: str) -> tuple[int, int, int]:
    kana = sum(1 for c in text if "\u3040" <= c <= "\u30ff")
    kanji = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
    latin = sum(1 for c in text if c.isascii() and c.isalpha())
    return kana, kanji, latin


def test_japanese_translation_is_japanese() -> None:
    s = next(x for x in SCENARIOS if x.language == "en→ja")
    for text in (*s.candidates, s.reference or ""):
        kana, kanji, latin = _script_counts(text)
        assert kana >= 20 and kanji >= 5, text
        assert latin == 0, text
        assert text.endswith("。") or text.endswith("？")


def test_spanish_scenario_is_in_spanish() -> None:
    spanish = [s for s in SCENARIOS if s.output_language == "es"]
    assert spanish
    common = {"el", "la", "de", "que", "y", "en", "los", "las", "para", "con", "es", "un", "una"}
    for s in spanish:
        assert re.search(r"[áéíóúñ¿¡]", s.prompt)
        for text in s.candidates:
            ws = words(text)
            assert sum(w in common for w in ws) >= 10, text
            assert re.search(r"[áéíóúñ¿¡]", text), text
            assert not {"the", "and", "you", "your"} & set(ws), text


def test_some_candidates_carry_markup_that_the_ui_must_escape() -> None:
    texts = [t for s in SCENARIOS for t in s.candidates]
    assert any("<script>" in t for t in texts)
    assert any("onerror=" in t for t in texts)
    # Raw tags in prose (outside inline code and code blocks) are the case a markdown renderer would obey.
    prose = [re.sub(r"```.*?```|`[^`]*`", "", t, flags=re.S) for t in texts]
    assert any(re.search(r"<b>.*</b>", p) for p in prose)
    assert any("<img " in p for p in prose)


def test_factual_candidates_disagree() -> None:
    s = next(x for x in SCENARIOS if x.category == "factual")
    newborn_figures = set()
    for text in s.candidates:
        numbers = {int(n) for n in re.findall(r"\b(\d{3})\b", text)}
        assert 206 in numbers, "every candidate gives the adult figure"
        newborn_figures |= numbers - {206}
    assert len(newborn_figures) >= 3, newborn_figures


# --- the API -----------------------------------------------------------------------------------------------


def test_get_scenario_finds_each_and_rejects_unknown() -> None:
    for s in SCENARIOS:
        assert get_scenario(s.id) == s
    with pytest.raises(KeyError) as info:
        get_scenario("no-such-scenario")
    message = str(info.value)
    assert "no-such-scenario" in message
    assert SCENARIOS[0].id in message


def test_load_scenarios_returns_a_fresh_list() -> None:
    first = load_scenarios()
    first.clear()
    assert len(load_scenarios()) == len(SCENARIOS)


def test_scenario_to_candidates() -> None:
    s = get_scenario("escape-html-bug")
    candidates = scenario_to_candidates(s)
    assert [c.index for c in candidates] == list(range(len(s.candidates)))
    assert [c.text for c in candidates] == list(s.candidates)
    assert [c.model for c in candidates] == [f"scenario:{label}" for label in s.candidate_labels]
    assert all(c.ok and c.sample_index == 0 for c in candidates)


def test_scenario_to_candidates_numbers_repeated_labels() -> None:
    s = Scenario(
        id="x", title="t", category="advice", language="en", prompt="p",
        candidates=("a", "b", "c", "d"), candidate_labels=("sample", "sample", "other", "sample"), note="n",
    )
    candidates = scenario_to_candidates(s)
    assert [c.sample_index for c in candidates] == [0, 1, 0, 2]
    assert [c.model for c in candidates] == ["scenario:sample"] * 2 + ["scenario:other", "scenario:sample"]


def test_scenario_to_run_round_trips() -> None:
    s = get_scenario("library-fines-summary")
    run = scenario_to_run(s)
    assert run.source == "scenario:library-fines-summary"
    assert run.prompt.text == s.prompt and run.prompt.system == s.system
    assert run.prompt.messages()[0]["role"] == "system"
    back = Run.from_dict(json.loads(json.dumps(run.to_dict(), ensure_ascii=False)))
    assert [c.text for c in back.candidates] == list(s.candidates)
    assert back.source == run.source


def test_loads_from_any_working_directory(tmp_path: Path) -> None:
    code = (
        "from fusion.scenarios import load_scenarios, get_scenario\n"
        "print(len(load_scenarios()), get_scenario('translate-ja-email').candidates[0][:3])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, encoding="utf-8", check=True
    )
    count, head = out.stdout.split()
    assert int(count) == len(SCENARIOS)
    assert head == get_scenario("translate-ja-email").candidates[0][:3]


# --- malformed data ----------------------------------------------------------------------------------------


def _valid() -> dict:
    return json.loads((DATA_DIR / f"{SCENARIOS[0].id}.json").read_text(encoding="utf-8"))


def test_parse_scenario_accepts_a_real_file() -> None:
    assert parse_scenario(_valid(), "f.json") == SCENARIOS[0]


@pytest.mark.parametrize(
    "breakage, fragment",
    [
        (lambda d: d.pop("prompt"), "'prompt'"),
        (lambda d: d.update(title="   "), "'title'"),
        (lambda d: d.update(candidates=d["candidates"][:3]), "4 to 6"),
        (lambda d: d.update(candidates=d["candidates"] * 2), "4 to 6"),
        (lambda d: d["candidates"].__setitem__(1, "just text"), "candidate 2"),
        (lambda d: d["candidates"][2].pop("label"), "'label'"),
        (lambda d: d.update(reference=42), "'reference'"),
    ],
)
def test_parse_scenario_rejects_malformed_data(breakage, fragment: str) -> None:
    data = _valid()
    breakage(data)
    with pytest.raises(ScenarioDataError) as info:
        parse_scenario(data, "broken.json")
    assert "broken.json" in str(info.value)
    assert fragment in str(info.value)

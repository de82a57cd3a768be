"""What the fused text kept of each candidate: kept ranges, unit statuses and counts (fusion.kept)."""

from __future__ import annotations

import json

import pytest

from fusion.attribution import attribute
from fusion.errors import InputError
from fusion.kept import (
    REUSED_MIN_COVERAGE,
    KeptReport,
    LocationsUnknown,
    UnitStatus,
    has_locations,
    kept_ranges,
    kept_report,
    kept_reports,
    run_kept,
    unit_statuses,
)
from fusion.pipeline import run_supplied
from fusion.types import Attribution, SourceRef, Span


def statuses(report: KeptReport | None) -> list[str]:
    assert report is not None
    return [u.status for u in report.units]


def unit_texts(report: KeptReport, text: str) -> list[str]:
    return [text[u.start : u.end] for u in report.units]


# --------------------------------------------------------------------------------------------- ranges


def test_kept_ranges_merges_overlapping_and_touching_sources_of_one_candidate() -> None:
    att = Attribution(
        spans=[
            Span(0, 10, (SourceRef(0, 50, 60), SourceRef(1, 0, 10))),
            Span(10, 20, (SourceRef(0, 0, 10),)),
            Span(20, 30, (SourceRef(0, 10, 20),)),  # touches the previous range: one range
            Span(30, 40, ()),
            Span(40, 50, (SourceRef(0, 55, 70),)),  # overlaps the first one
        ],
        shares=[0.8, 0.2],
        copied_fraction=0.8,
    )
    assert kept_ranges(att, 0) == [(0, 20), (50, 70)]
    assert kept_ranges(att, 1) == [(0, 10)]
    assert kept_ranges(att, 2) == []


def test_unknown_locations_are_refused_not_reported_as_dropped() -> None:
    cand = "The Seine flows through Paris on its way to the sea. It is a long river."
    fused = "The Seine flows through Paris on its way to the sea."
    fresh = attribute(fused, [cand])
    # What an old run's JSON looks like: sources by candidate, no "locations".
    old = Attribution.from_dict(
        {
            "spans": [{"start": s.start, "end": s.end, "sources": s.candidates} for s in fresh.spans],
            "shares": fresh.shares,
            "copied_fraction": fresh.copied_fraction,
        }
    )
    assert has_locations(fresh) and not has_locations(old)
    with pytest.raises(LocationsUnknown):
        kept_ranges(old, 0)
    with pytest.raises(LocationsUnknown):
        kept_report(old, fused, cand, 0)
    # With the texts at hand the fused text is attributed again: the same report as a fresh attribution.
    (again,) = kept_reports(fused, [cand], old)
    (direct,) = kept_reports(fused, [cand], fresh)
    assert again == direct
    assert statuses(again) == ["kept", "dropped"]


# --------------------------------------------------------------------------------------------- statuses


def test_verbatim_copy_keeps_every_unit_and_no_reuse_drops_every_unit() -> None:
    copied = (
        "# Packing list\n\nBring a warm jacket for the evenings. The hut has no heating at all.\n\n"
        "- Two litres of water per person\n- A headlamp with spare batteries\n"
    )
    other = "Mountains are dangerous in winter. Stay home and read a book about glaciers instead."
    fused = copied
    reports = kept_reports(fused, [copied, other])
    assert statuses(reports[0]) == ["kept"] * 5
    assert [u.kind for u in reports[0].units] == ["heading", "sentence", "sentence", "item", "item"]
    assert statuses(reports[1]) == ["dropped", "dropped"]
    assert reports[1].ranges == []
    assert reports[0].counts == {"kept": 5, "edited": 0, "dropped": 0, "total": 5}
    assert all(u.coverage == 1.0 for u in reports[0].units)


def test_markdown_list_items_are_kept_or_dropped_one_by_one_and_renumbering_is_no_edit() -> None:
    cand = (
        "Steps to repot a plant:\n\n"
        "1. Water the plant a day before so the root ball holds together.\n"
        "2. Paint the new pot in a bright colour that matches your curtains.\n"
        "3. Loosen the roots gently and set the plant at the same depth as before.\n"
    )
    # The fusion keeps items 1 and 3 (now numbered 1 and 2) and writes its own closing sentence.
    fused = (
        "1. Water the plant a day before so the root ball holds together.\n"
        "2. Loosen the roots gently and set the plant at the same depth as before.\n\n"
        "Then wait a week before feeding it."
    )
    (rep,) = kept_reports(fused, [cand])
    assert unit_texts(rep, cand)[1:] == [
        "1. Water the plant a day before so the root ball holds together.",
        "2. Paint the new pot in a bright colour that matches your curtains.",
        "3. Loosen the roots gently and set the plant at the same depth as before.",
    ]
    assert statuses(rep) == ["dropped", "kept", "dropped", "kept"]
    assert rep.summary() == "kept 2 of 4 parts"
    assert [u.coverage for u in rep.units] == [0.0, 1.0, 0.0, 1.0]


def test_code_fence_is_one_unit_and_kept_whole() -> None:
    cand = (
        "Use a context manager so the file is always closed.\n\n"
        "```python\nwith open(path, encoding='utf-8') as handle:\n    for line in handle:\n        print(line.rstrip())\n```\n\n"
        "This works on every platform that Python supports today."
    )
    fused = (
        "Open the file with a context manager:\n\n"
        "```py\nwith open(path, encoding='utf-8') as handle:\n    for line in handle:\n        print(line.rstrip())\n```"
    )
    (rep,) = kept_reports(fused, [cand])
    kinds = [u.kind for u in rep.units]
    assert kinds == ["sentence", "code", "sentence"]
    # The fence's info string changed (python -> py): only the code inside counts, and it is copied as is.
    assert statuses(rep) == ["dropped", "kept", "dropped"]


def test_cjk_sentences_ending_in_ideographic_full_stops() -> None:
    cand = "富士山は日本で一番高い山です。標高は三千七百七十六メートルです。夏には多くの登山者が訪れます。"
    fused = "富士山は日本で一番高い山です。夏には多くの登山者が訪れます。"
    (rep,) = kept_reports(fused, [cand])
    assert unit_texts(rep, cand) == ["富士山は日本で一番高い山です。", "標高は三千七百七十六メートルです。", "夏には多くの登山者が訪れます。"]
    # The attribution places the first sentence's です at the second sentence's (the longest run of the
    # fused text starts there), so the first sentence is not fully covered: it is still copied as is,
    # and the stray です does not make the second sentence reused.
    assert statuses(rep) == ["kept", "dropped", "kept"]
    assert rep.units[0].coverage < 1.0 and 0 < rep.units[1].coverage < REUSED_MIN_COVERAGE
    assert rep.summary() == "kept 2 of 3 sentences"


def test_cjk_sentence_with_one_character_changed_is_edited() -> None:
    cand = "東京は日本の首都であり、世界でも有数の大都市として知られています。交通網がとても発達しています。"
    fused = "東京は日本の首都であり、世界でも有数の巨大都市として知られています。"
    (rep,) = kept_reports(fused, [cand])
    assert statuses(rep) == ["edited", "dropped"]


def test_lightly_edited_sentence_is_edited_not_kept() -> None:
    cand = (
        "The quick brown fox jumps over the lazy dog near the old river bank every single morning. "
        "Foxes are mostly active at dusk."
    )
    # One word changed inside a long copy: the attribution bridges it, so coverage is full, but the
    # sentence is not there as is.
    fused = "The quick brown fox leaps over the lazy dog near the old river bank every single morning."
    (rep,) = kept_reports(fused, [cand])
    assert statuses(rep) == ["edited", "dropped"]
    assert rep.units[0].coverage == 1.0
    assert rep.summary() == "kept 1 of 2 sentences (1 edited)"


def test_half_reused_sentence_is_edited_and_a_shared_phrase_alone_is_dropped() -> None:
    cand = (
        "Regular exercise improves your mood and helps you sleep better at night, and it also "
        "lowers blood pressure. "
        "Drinking water during long meetings keeps you alert and focused on the discussion."
    )
    # First sentence: its first part reused, its second rewritten. Second sentence: one short phrase.
    fused = (
        "Regular exercise improves your mood and helps you sleep better at night; doctors recommend "
        "thirty minutes a day. Staying alert and focused on the discussion needs breaks."
    )
    (rep,) = kept_reports(fused, [cand])
    first, second = rep.units
    assert first.status == "edited" and REUSED_MIN_COVERAGE <= first.coverage < 1.0
    assert second.status == "dropped" and 0 < second.coverage < REUSED_MIN_COVERAGE


def test_german_compound_changed_makes_the_sentence_edited() -> None:
    cand = (
        "Die Bundesausbildungsförderung wird für Studierende an staatlichen Hochschulen in der Regel "
        "zur Hälfte als Zuschuss gezahlt. Der Antrag dauert lange."
    )
    fused = (
        "Die Ausbildungsförderung wird für Studierende an staatlichen Hochschulen in der Regel "
        "zur Hälfte als Zuschuss gezahlt."
    )
    (rep,) = kept_reports(fused, [cand])
    assert statuses(rep) == ["edited", "dropped"]


def test_punctuation_and_whitespace_only_pieces_are_not_units() -> None:
    cand = "Take the early train.\n\n---\n\n**\n\n...\n\n🙂 🙂\n\n* * *\n\nThe late one is always full."
    (rep,) = kept_reports("Take the early train.", [cand])
    assert unit_texts(rep, cand) == ["Take the early train.", "The late one is always full."]
    assert statuses(rep) == ["kept", "dropped"]


def test_failed_candidates_get_none_and_reports_keep_candidate_indices() -> None:
    a = "Boil the pasta in plenty of salted water for about nine minutes."
    reports = kept_reports(a, [None, "", a])
    assert reports[0] is None and reports[1] is None
    assert reports[2] is not None and reports[2].index == 2 and statuses(reports[2]) == ["kept"]


def test_thresholds_are_checked() -> None:
    with pytest.raises(InputError):
        unit_statuses("A sentence here.", [], "x", reused_min=0.0)
    with pytest.raises(InputError):
        unit_statuses("A sentence here.", [], "x", reused_min=1.5)


def test_report_round_trips_through_json() -> None:
    cand = "Alpha beta gamma delta epsilon. Zeta eta theta iota kappa."
    (rep,) = kept_reports("Alpha beta gamma delta epsilon.", [cand])
    data = json.loads(json.dumps(rep.to_dict()))
    assert set(data) == {"index", "ranges", "units", "unit_status"}
    assert data["units"] == {"kept": 1, "edited": 0, "dropped": 1, "total": 2}
    back = KeptReport.from_dict(data)
    assert back == rep
    with pytest.raises(InputError):
        UnitStatus.from_list([0, 5, "lost", "sentence", 0.0])


def test_run_kept_on_an_offline_run_matches_the_fused_text() -> None:
    texts = [
        "Paris is the capital of France. It lies on the Seine. The city has about two million inhabitants.",
        "The capital of France is Paris. It lies on the Seine. Paris is famous for the Eiffel Tower.",
        "France's capital is Lyon. Lyon sits where two rivers meet.",
    ]
    run = run_supplied("What is the capital of France?", texts)
    reports = run_kept(run)
    assert reports is not None and len(reports) == 3
    fused = run.fused.text
    for rep, text in zip(reports, texts):
        assert rep is not None
        for u in rep.units:
            if u.status == "kept":
                # A kept unit is in the fused text (its words, in order).
                assert text[u.start : u.end].rstrip(".") in fused
    # The fusion reused something from some candidate and nothing of the odd one out (Lyon).
    assert any(r.counts["kept"] for r in reports if r)
    assert statuses(reports[2]) == ["dropped", "dropped"]


def test_every_scenario_candidate_copied_verbatim_is_kept_whole() -> None:
    # The built-in scenarios are Markdown answers in several languages (German, Japanese, Spanish), with
    # lists, headings, code and tables: a fusion that copies one of them has every unit of it kept.
    from fusion.scenarios import load_scenarios

    checked = 0
    for scenario in load_scenarios():
        texts = list(scenario.candidates)
        for i, text in enumerate(texts):
            reports = kept_reports(text, texts)
            mine = reports[i]
            assert mine is not None and mine.units, (scenario.id, i)
            assert statuses(mine) == ["kept"] * len(mine.units), (scenario.id, i)
            checked += 1
    assert checked >= 20


def test_a_short_sentence_repeated_word_for_word_is_kept_though_the_attribution_ignores_it() -> None:
    """Copies under four words are chance overlap to the attribution; a whole short sentence is not."""
    from fusion.kept import kept_reports

    candidates = ["Hello there. Nice day. Goodbye now.", "Nice day. Hello there. See you."]
    fused = "Nice day. Hello there."
    first, second = kept_reports(fused, candidates)
    assert [u.status for u in first.units] == ["kept", "kept", "dropped"]
    assert [u.status for u in second.units] == ["kept", "kept", "dropped"]
    # a one-word unit is too weak to tell a copy from a coincidence
    (one,) = kept_reports("Yes. Water is wet and cold.", ["Yes. The sky is green today, surely."])
    assert [u.status for u in one.units] == ["dropped", "dropped"]


def test_a_short_sentence_whose_words_sit_inside_a_longer_fused_sentence_is_not_kept() -> None:
    """Seen on AlpacaEval: "Add the vanilla." counted as kept because "... add the vanilla extract ..." is in
    the fused text. Three words inside another sentence can be a coincidence; a sentence of their own is not."""
    from fusion.kept import kept_reports

    fused = "Beat the butter until smooth. Then add the vanilla extract and stir well. Bake for 20 minutes."
    (report,) = kept_reports(fused, ["Add the vanilla. Bake for 20 minutes."])
    assert [u.status for u in report.units] == ["dropped", "kept"]
    (again,) = kept_reports("Add the vanilla! " + fused, ["Add the vanilla."])
    assert [u.status for u in again.units] == ["kept"]  # a fused sentence of the same words, up to punctuation


def test_a_short_unit_is_compared_with_its_symbols() -> None:
    """Seen on AlpacaEval: the line "Savings: $1000" counted as kept because a code line of the fusion,
    "savings += 1000", has the same two words."""
    from fusion.kept import kept_reports

    fused = (
        "The loop adds the monthly amount, month after month, until the car is paid:\n\n"
        "```python\nsavings += 1000\n```\n\n**Nice day.**\n\nDrive safely and keep the receipts for the dealer."
    )
    candidate = "Savings: $1000\n\nThe old car loses value every month, which this plan ignores.\n\nNice day!"
    (report,) = kept_reports(fused, [candidate])
    assert [u.coverage for u in report.units] == [0.0, 0.0, 0.0]  # all under the attribution's four words
    assert [u.status for u in report.units] == ["dropped", "dropped", "kept"]

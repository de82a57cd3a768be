"""The N-scaling experiment's engine: nested subsets, tags, and the pick's share of the fused text."""

from __future__ import annotations

import asyncio

import pytest

from fusion.errors import InputError
from fusion.fusors import ExtractiveFusor
from fusion.pipeline import supplied_candidates
from fusion.scaling import ascale, parse_ks, pick_share, run_k, subset_run, tag_k
from fusion.selectors import ConsensusSelector
from fusion.types import Candidate, Prompt, Run

TEXTS = [
    "Water boils at 100 degrees Celsius at sea level. At altitude it boils at a lower temperature.",
    "At sea level water boils at 100 °C. Pressure cooker: higher pressure, so a higher boiling point.",
    "Water boils at 100 degrees Celsius. Salt raises the boiling point only a little.",
    "It boils at 212 degrees Fahrenheit, which is 100 degrees Celsius, at sea level.",
    "Boiling happens at 100 °C under one atmosphere; lower pressure lowers it.",
]


def base_run() -> Run:
    run = Run(prompt=Prompt("At what temperature does water boil?"), candidates=supplied_candidates(TEXTS),
              tags=["physics"], source="supplied")
    return run.with_id("base1")


def test_parse_ks() -> None:
    assert parse_ks("8, 1,2,3,5,5") == [1, 2, 3, 5, 8]
    assert parse_ks([3, 1]) == [1, 3]
    for bad in ("", "1,x", "0", "1,999"):
        with pytest.raises(InputError):
            parse_ks(bad)


def test_subsets_are_nested_prefixes_with_tags_and_stable_ids() -> None:
    base = base_run()
    base.candidates = list(reversed(base.candidates))  # order of arrival is not order of index
    runs = [subset_run(base, k, "exp1") for k in (1, 3, 5)]
    assert [[c.index for c in r.candidates] for r in runs] == [[0], [0, 1, 2], [0, 1, 2, 3, 4]]
    assert runs[1].tags == ["physics", "scale:exp1", "scale-k:3"]
    assert [run_k(r) for r in runs] == [1, 3, 5] and tag_k(runs[2].tags) == "5"
    assert [r.id for r in runs] == ["base1-k1", "base1-k3", "base1-k5"]
    assert subset_run(base, 3, "exp1").id == runs[1].id  # a resumed experiment finds its runs
    runs[1].candidates[0].text = "changed"
    assert base.candidates[-1].text == TEXTS[0]  # subsets copy, never alias, the base candidates
    with pytest.raises(InputError):
        subset_run(base, 6, "exp1")


def test_ascale_picks_and_fuses_within_each_subset() -> None:
    runs = asyncio.run(ascale(base_run(), [1, 2, 5], "exp1", selector=ConsensusSelector(), fusor=ExtractiveFusor()))
    assert [run_k(r) for r in runs] == [1, 2, 5]
    for run in runs:
        k = run_k(run)
        assert run.bon is not None and run.bon.index is not None and run.bon.index < k  # picked from the subset
        assert run.fused is not None and run.fused.text
        assert run.attribution is not None
        assert all(src.candidate < k for s in run.attribution.spans for src in s.sources)
    one = runs[0]
    assert one.fused.text.strip() == TEXTS[0].strip() and pick_share(one).share == pytest.approx(1.0)


def test_a_subset_of_failed_samples_is_skipped() -> None:
    base = base_run()
    base.candidates[0] = Candidate(index=0, text="", model="m", sample_index=0, error="HTTP 500")
    runs = asyncio.run(ascale(base, [1, 3], "exp1", selector=ConsensusSelector(), fusor=ExtractiveFusor()))
    assert [run_k(r) for r in runs] == [3]


def test_pick_share_is_none_without_a_pick_or_fusion() -> None:
    run = subset_run(base_run(), 2, "e")
    assert pick_share(run).share is None and pick_share(run).k == 2

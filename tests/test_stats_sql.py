"""storage.stats_sql on SQLite and PostgreSQL: the columns it reads are the votes all_votes returns, in the
same order, and the statistics computed from them equal those computed from the records."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from fusion import stats
from fusion.pipeline import run_supplied
from storage.migrations import init_db
from storage.runs import save_run
from storage.stats_reads import attribution_rows
from storage.votes import all_votes, delete_vote, record_vote
from storage.stats_sql import MODEL_SPLIT, N_SPLIT, TAG_SPLIT, VoteColumns, attribution_columns, vote_columns

ANNOTATORS = ("ana", "bo", "chidi", "dana")
MODELS = ("openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest", "ollama/llama3.1", "cohere/command-r")
TAGS = ([], ["de"], ["de", "chat"], ["pilot"])


@pytest.fixture
def engine(db_url: str) -> Any:
    eng = init_db(db_url)
    yield eng
    eng.dispose()


def populate(engine: Any, seed: int = 3) -> None:
    """14 runs (two from a built-in scenario, one never voted on) and their votes by four annotators, some
    cast non-blind, one replaced and one undone."""
    rng = random.Random(seed)
    for i in range(14):
        n = 2 + i % 3
        texts = [f"Answer {k} to question {i}: {'first' if k % 2 else 'second'} idea, then detail {k * i}." for k in range(n)]
        scenario = i in (4, 9)
        run = run_supplied(
            f"Question {i}?",
            texts,
            labels=[f"scenario:persona-{k}" for k in range(n)] if scenario else [MODELS[(i + k) % len(MODELS)] for k in range(n)],
            tags=TAGS[i % len(TAGS)],
            source="scenario:demo" if scenario else "batch",
            run_id=f"run-{i:02d}",
        )
        save_run(engine, run)
        if i == 13:
            continue  # a run without votes appears in no column
        for annotator in rng.sample(ANNOTATORS, rng.randint(1, 4)):
            choice = rng.choice(["A", "B", "tie", "both_bad"])
            record_vote(engine, run_id=run.id, annotator=annotator, choice=choice, a_is=rng.choice(["bon", "fused"]),
                        blind=rng.random() > 0.25)  # fmt: skip
    record_vote(engine, run_id="run-00", annotator="ana", choice="B", a_is="fused", blind=False)  # replaces or adds
    first_on_run_1 = next(v for v in all_votes(engine) if v.run_id == "run-01")
    assert delete_vote(engine, "run-01", first_on_run_1.annotator)


def table_of(cols: VoteColumns) -> stats.VoteTable:
    return stats.vote_table_from_columns(cols.run_id, cols.annotator, cols.winner, cols.choice, cols.blind, cols.run_labels)


@pytest.mark.parametrize("tag", [None, "de", "pilot", "no-such-tag"])
def test_the_columns_are_the_votes_all_votes_returns(engine: Any, tag: str | None) -> None:
    populate(engine)
    votes = all_votes(engine, tag=tag)
    cols = vote_columns(engine, tag=tag)
    assert len(cols) == len(votes)
    assert cols.run_id == [v.run_id for v in votes]
    assert cols.annotator == [v.annotator for v in votes]
    assert cols.winner == [v.winner for v in votes]
    assert cols.choice == [v.choice for v in votes]
    assert cols.blind == [v.blind for v in votes] and all(type(b) is bool for b in cols.blind)
    assert set(cols.run_labels) == {MODEL_SPLIT, N_SPLIT, TAG_SPLIT}
    expected = {
        MODEL_SPLIT: {(v.run_id, g) for v in votes for g in v.model_groups},
        N_SPLIT: {(v.run_id, str(v.n)) for v in votes},
        TAG_SPLIT: {(v.run_id, t) for v in votes for t in v.tags},
    }
    for split, pairs in cols.run_labels.items():
        assert len(pairs) == len(set(pairs)), split  # each pair once
        assert set(pairs) == expected[split], split
    if tag == "no-such-tag":
        assert len(cols) == 0
    else:
        assert len(cols) > 0


def test_the_statistics_from_columns_equal_those_from_records(engine: Any) -> None:
    populate(engine)
    votes = all_votes(engine)
    assert any(not v.blind for v in votes) and {"run-13"}.isdisjoint(v.run_id for v in votes)
    from_records = stats.vote_table(votes)
    from_columns = table_of(vote_columns(engine))
    assert from_columns.run_ids == from_records.run_ids and from_columns.annotators == from_records.annotators
    for name in ("run", "annotator", "winner", "choice", "blind"):
        assert np.array_equal(getattr(from_columns, name), getattr(from_records, name)), name
    assert {s: {k: v.tolist() for k, v in g.items()} for s, g in from_columns.groups.items()} == {
        s: {k: v.tolist() for k, v in g.items()} for s, g in from_records.groups.items()
    }
    # Scenario runs count under their scenario, never under a persona.
    assert "scenario:demo" in from_columns.groups["Model"]
    assert not any(label.startswith("scenario:persona") for label in from_columns.groups["Model"])
    for include in (False, True):
        assert stats.summarize(from_columns, include_non_blind=include) == stats.summarize(
            from_records, include_non_blind=include
        )


def test_an_empty_database_gives_empty_columns(engine: Any) -> None:
    cols = vote_columns(engine)
    assert len(cols) == 0 and cols.run_labels == {MODEL_SPLIT: [], N_SPLIT: [], TAG_SPLIT: []}
    assert len(table_of(cols)) == 0


def test_the_split_names_are_fusion_stats_splits() -> None:
    assert {MODEL_SPLIT, N_SPLIT, TAG_SPLIT} | {"Annotator"} == set(stats.SPLITS)


@pytest.mark.parametrize("tag", [None, "de", "no-such-tag"])
def test_attribution_columns_are_the_rows_attribution_rows_returns(engine: Any, tag: str | None) -> None:
    populate(engine)
    rows = attribution_rows(engine, tag=tag)
    cols = attribution_columns(engine, tag=tag)
    # In no particular order: compare as multisets of (copied, shares, pick).
    expected = sorted((r.copied_fraction, tuple(r.shares), r.bon_index) for r in rows)
    got = sorted(zip(cols.copied_fraction, map(tuple, cols.shares), cols.bon_index))
    assert got == expected and len(cols) == len(rows)
    assert (len(cols) == 0) == (tag == "no-such-tag")
    if rows:
        values = stats.attribution_values(cols.copied_fraction, cols.shares, cols.bon_index, min_share=0.05)
        assert sorted(values["contributors"]) == sorted(r.contributors(0.05) for r in rows)
        assert sorted(values["bon_share"], key=repr) == sorted((r.bon_share for r in rows), key=repr)

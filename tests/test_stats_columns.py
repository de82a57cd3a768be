"""fusion.stats.vote_table_from_columns: the vote table from columns (as storage.stats_sql reads them) equals
the one vote_table builds from records, and its groups are the ones worked out by hand."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from fusion.stats import SPLITS, VoteTable, attribution_values, summarize, vote_table, vote_table_from_columns
from fusion.types import model_groups


@dataclass
class V:
    run_id: str
    annotator: str
    winner: str
    choice: str
    n: int
    models: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str = "batch"
    blind: bool = True


def columns_of(votes: list[V]) -> dict:
    """The columns and run-level (run id, label) pairs of ``votes``, each pair once, as SQL would give them."""
    runs = {v.run_id: v for v in votes}
    return {
        "run_id": [v.run_id for v in votes],
        "annotator": [v.annotator for v in votes],
        "winner": [v.winner for v in votes],
        "choice": [v.choice for v in votes],
        "blind": [v.blind for v in votes],
        "run_labels": {
            "Model": [(r, g) for r, v in runs.items() for g in model_groups(v.models, v.source)],
            "N": [(r, str(v.n)) for r, v in runs.items()],
            "Tag": [(r, t) for r, v in runs.items() for t in dict.fromkeys(v.tags)],
        },
    }


def assert_same_table(a: VoteTable, b: VoteTable) -> None:
    assert a.run_ids == b.run_ids and a.annotators == b.annotators
    for name in ("run", "annotator", "winner", "choice", "blind"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert list(a.groups) == list(b.groups)
    for split in a.groups:
        assert list(a.groups[split]) == list(b.groups[split]), split
        for label, members in a.groups[split].items():
            assert members.tolist() == b.groups[split][label].tolist(), (split, label)


def synthetic(n_votes: int, seed: int) -> list[V]:
    rng = random.Random(seed)
    models = ["m-a", "m-b", "m-c", "m-d", "m-e"]
    out = []
    for i in range(n_votes):
        r = rng.randrange(n_votes // 3 + 1)
        run_rng = random.Random(r)  # a run's facts depend on the run only
        scenario = r % 7 == 0
        winner = rng.choice(["fused", "bon", "tie", "both_bad"])
        out.append(
            V(
                run_id=f"r{r}",
                annotator=f"ann{rng.randrange(4)}",
                winner=winner,
                choice=rng.choice(["A", "B"]) if winner in ("fused", "bon") else winner,
                n=run_rng.choice([2, 5, 10]),
                models=["scenario:coach"] if scenario else run_rng.sample(models, 2),
                tags=run_rng.choice([[], ["de"], ["de", "chat"], ["N=10"]]),
                source=f"scenario:s{r % 3}" if scenario else "batch",
                blind=rng.random() > 0.2,
            )
        )
    return out


def test_groups_worked_out_by_hand() -> None:
    table = vote_table_from_columns(
        run_id=["r1", "r2", "r1", "r3"],
        annotator=["bo", "ana", "ana", "bo"],
        winner=["fused", "bon", "tie", "both_bad"],
        choice=["A", "B", "tie", "both_bad"],
        blind=[True, False, True, True],
        run_labels={
            "N": [("r1", "10"), ("r2", "5"), ("r3", "5")],
            # r1 twice under "de" (counts once), a run without votes (ignored), r3 without any tag.
            "Tag": [("r1", "de"), ("r1", "chat"), ("r2", "de"), ("r1", "de"), ("gone", "de"), ("gone", "old")],
        },
    )
    assert list(table.groups) == ["N", "Tag", "Annotator"]  # SPLITS order; no "Model" was given
    assert {k: v.tolist() for k, v in table.groups["N"].items()} == {"5": [1, 3], "10": [0, 2]}
    assert list(table.groups["N"]) == ["5", "10"]  # natural order
    assert {k: v.tolist() for k, v in table.groups["Tag"].items()} == {"chat": [0, 2], "de": [0, 1, 2]}
    assert list(table.groups["Tag"]) == ["chat", "de"]
    assert {k: v.tolist() for k, v in table.groups["Annotator"].items()} == {"ana": [1, 2], "bo": [0, 3]}
    assert table.run.tolist() == [0, 1, 0, 2] and table.run_ids == ["r1", "r2", "r3"]
    assert table.winner.tolist() == [0, 1, 2, 3] and table.blind.tolist() == [True, False, True, True]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_same_table_and_summary_as_from_records(seed: int) -> None:
    votes = synthetic(600, seed)
    a = vote_table(votes)
    b = vote_table_from_columns(**columns_of(votes))
    assert list(b.groups) == list(SPLITS)
    assert_same_table(a, b)
    for include in (False, True):
        assert summarize(a, include_non_blind=include) == summarize(b, include_non_blind=include)


def test_no_votes_and_missing_choices() -> None:
    empty = vote_table_from_columns([], [], [], [], [], {"Model": [], "N": [], "Tag": []})
    assert len(empty) == 0 and all(groups == {} for groups in empty.groups.values())
    table = vote_table_from_columns(["r1"], ["ana"], ["fused"], [None], [True], {})
    assert table.choice is None and list(table.groups) == ["Annotator"]
    assert vote_table_from_columns(["r1"], ["ana"], ["fused"], None, [True], {}).choice is None


def test_bad_columns_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="one entry per vote"):
        vote_table_from_columns(["r1", "r2"], ["ana"], ["fused", "bon"], ["A", "B"], [True, True], {})
    with pytest.raises(ValueError, match="Unknown winner 'fusion'"):
        vote_table_from_columns(["r1"], ["ana"], ["fusion"], ["A"], [True], {})
    with pytest.raises(ValueError, match="Unknown choice 'C'"):
        vote_table_from_columns(["r1"], ["ana"], ["fused"], ["C"], [True], {})


def test_attribution_values_worked_out_by_hand() -> None:
    values = attribution_values(
        [0.9, 0.5, None], [[0.6, 0.3, 0.04], [0.05, 0.0], [0.2]], [1, None, 3], min_share=0.05
    )
    # contributors: 0.6 and 0.3 (0.04 is under the threshold); 0.05 counts (>=); one.
    # pick share: candidate 1 of the first; no pick; an index outside the shares gives none.
    assert values == {"copied": [0.9, 0.5, None], "contributors": [2, 1, 1], "bon_share": [0.3, None, None]}
    with pytest.raises(ValueError, match="one entry per run"):
        attribution_values([0.1], [], [None])

"""Judge verdicts stay apart from people's votes; kappa, consistency and win rate against N."""

from __future__ import annotations

import pytest

from fusion.judge_stats import judge_rows, scaling_points, split_votes
from fusion.stats import win_rate


def vote(run: str, who: str, winner: str, consistent: bool | None = None) -> dict:
    return {"run_id": run, "annotator": who, "winner": winner, "choice": "A", "a_is": "fused", "blind": True,
            "consistent": consistent}


def test_judge_verdicts_never_count_as_people() -> None:
    votes = [vote("r1", "ana", "bon"), vote("r1", "judge:m", "fused", True), vote("r2", "judge:m", "fused", True)]
    people, judges = split_votes(votes)
    assert [v["annotator"] for v in people] == ["ana"] and list(judges) == ["m"]
    assert win_rate(people).rate == 0.0  # the judge's two fused wins are not in it


def test_judge_row_figures() -> None:
    votes = []
    # Six runs: the judge agrees with ana on four, disagrees on two; one verdict is position-inconsistent.
    truth = ["fused", "bon", "fused", "tie", "fused", "bon"]
    said = ["fused", "bon", "fused", "tie", "bon", "fused"]
    for i, (t, s) in enumerate(zip(truth, said)):
        votes.append(vote(f"r{i}", "ana", t))
        votes.append(vote(f"r{i}", "judge:openai/m", s, consistent=(i != 3)))
    votes.append(vote("r9", "judge:openai/m", "fused", True))  # a run no person voted on
    votes.append(vote("r0", "ben", "both_bad"))  # names no side: not an agreement item
    (row,) = judge_rows(votes, n_boot=200)
    assert row.model == "openai/m"
    assert row.rate.n_votes == 7 and row.rate.wins == 4
    assert row.consistency == pytest.approx(6 / 7) and row.n_inconsistent == 1
    assert row.n_shared == 6
    # Hand-computed: p_o = 4/6; judge marginals fused 3, bon 2, tie 1; ana fused 3, bon 2, tie 1;
    # p_e = (9 + 4 + 1) / 36 = 14/36; kappa = (24/36 - 14/36) / (22/36) = 10/22.
    assert row.kappa == pytest.approx(10 / 22)
    assert row.people_rate is not None and row.people_rate.n_votes == 7  # ana's 6 and ben's both_bad


def test_no_judge_no_rows_and_no_people_no_kappa() -> None:
    assert judge_rows([vote("r1", "ana", "fused")]) == []
    (row,) = judge_rows([vote("r1", "judge:m", "fused", True)])
    assert row.kappa is None and row.n_shared == 0 and row.people_rate is None


def test_scaling_points_group_by_k_and_keep_ks_without_votes() -> None:
    shares = {"a-k1": (1, 1.0), "a-k3": (3, 0.5), "b-k1": (1, 1.0), "b-k3": (3, 0.3), "a-k8": (8, None)}
    votes = [vote("a-k1", "judge:m", "tie"), vote("b-k1", "judge:m", "tie"),
             vote("a-k3", "judge:m", "fused"), vote("b-k3", "judge:m", "bon"), vote("other", "judge:m", "fused")]
    points = scaling_points(votes, shares, n_boot=100)
    assert [p.k for p in points] == [1, 3, 8]
    assert points[0].rate.rate == 0.5 and points[0].pick_share == pytest.approx(1.0)
    assert points[1].rate.n_votes == 2 and points[1].pick_share == pytest.approx(0.4)
    assert points[2].rate.n_votes == 0 and points[2].rate.rate is None and points[2].pick_share is None

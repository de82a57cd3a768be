"""fusion.stats against values worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from fusion.stats import (
    KappaRow,
    WinRate,
    annotator_units,
    cohens_kappa,
    distribution,
    krippendorff_alpha,
    pairwise_kappa,
    position_bias,
    quantile,
    win_rate,
    win_rate_by,
)


@dataclass
class V:
    """A vote as fusion.stats sees it (the attributes of storage.votes.VoteRecord it reads)."""

    run_id: str
    winner: str
    annotator: str = "ann"
    choice: str = ""
    a_is: str = "fused"
    n: int = 5
    models: list[str] = field(default_factory=lambda: ["m1"])
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.choice:
            # The button that gives this winner when ``a_is`` was shown as Response A.
            if self.winner in ("tie", "both_bad"):
                self.choice = self.winner
            else:
                self.choice = "A" if self.winner == self.a_is else "B"


def votes_of(winners: list[str], *, per_run: int = 1) -> list[V]:
    return [V(run_id=f"r{i // per_run}", winner=w) for i, w in enumerate(winners)]


# ------------------------------------------------------------------------------------------------ win rate


def test_win_rate_counts_ties_half_and_leaves_both_bad_out() -> None:
    votes = votes_of(["fused", "fused", "fused", "bon", "tie", "both_bad", "both_bad"])
    wr = win_rate(votes)
    # Scored votes: 3 wins + 1 loss + 1 tie = 5; rate = (3 * 1 + 1 * 0 + 1 * 0.5) / 5 = 3.5 / 5 = 0.7.
    # The two both_bad votes are in n_votes (7) and both_bad (2) but not in the rate.
    assert (wr.wins, wr.losses, wr.ties, wr.both_bad) == (3, 1, 1, 2)
    assert wr.n_votes == 7 and wr.n_runs == 7
    assert wr.rate == pytest.approx(0.7)
    assert wr.decisive == 4
    assert wr.both_bad_rate == pytest.approx(2 / 7)
    assert wr.low is not None and wr.high is not None
    assert wr.low <= wr.rate <= wr.high


def test_win_rate_weights_votes_not_runs() -> None:
    # r0 has 3 votes (fused, fused, bon) and r1 one (bon): (1 + 1 + 0 + 0) / 4 = 0.5, whereas averaging the
    # per-run rates would give (2/3 + 0) / 2 = 1/3.
    votes = [V("r0", "fused"), V("r0", "fused"), V("r0", "bon"), V("r1", "bon")]
    wr = win_rate(votes)
    assert wr.rate == pytest.approx(0.5)
    assert wr.n_runs == 2


def test_win_rate_edge_cases() -> None:
    empty = win_rate([])
    assert (empty.rate, empty.low, empty.high, empty.n_votes, empty.n_runs) == (None, None, None, 0, 0)
    only_bad = win_rate([V("r0", "both_bad"), V("r1", "both_bad")])
    assert only_bad.rate is None and only_bad.both_bad == 2 and only_bad.n_runs == 2
    # One run: every bootstrap resample is that run, so a "95% interval" would be the point 2/3: there is a
    # rate but no interval, and the reason is given.
    one = win_rate([V("r0", "fused"), V("r0", "fused"), V("r0", "bon")])
    assert one.rate == pytest.approx(2 / 3)
    assert one.low is None and one.high is None and not one.has_interval
    assert one.no_interval == "1 run; an interval needs at least 5"
    assert (one.scored_runs, one.n_scored) == (1, 3)
    # Even when asked for an interval from one run, the bootstrap shows no spread: still none.
    assert win_rate([V("r0", "fused"), V("r0", "bon")], min_runs=1).low is None
    with pytest.raises(ValueError):
        win_rate([V("r0", "maybe")])
    with pytest.raises(ValueError):
        win_rate([V("r0", "fused")], confidence=1.5)


def test_win_rate_reads_mappings_too() -> None:
    rows = [{"run_id": "a", "winner": "fused"}, {"run_id": "b", "winner": "tie"}]
    # (1 + 0.5) / 2 = 0.75
    assert win_rate(rows).rate == pytest.approx(0.75)


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    votes = votes_of(["fused", "bon", "tie", "fused", "fused", "bon"] * 5)
    a, b = win_rate(votes, seed=7), win_rate(votes, seed=7)
    assert (a.low, a.high) == (b.low, b.high)
    c = win_rate(votes, seed=8)
    assert (a.low, a.high) != (c.low, c.high)


def test_interval_shrinks_with_more_runs() -> None:
    # Same mix (50 % wins, 25 % ties, 25 % losses -> rate 0.625) with 20 and with 200 runs.
    mix = ["fused", "fused", "tie", "bon"]
    small = win_rate(votes_of(mix * 5))
    large = win_rate(votes_of(mix * 50))
    assert small.rate == pytest.approx(0.625) and large.rate == pytest.approx(0.625)
    assert small.low <= 0.625 <= small.high and large.low <= 0.625 <= large.high
    width_small = small.high - small.low
    width_large = large.high - large.low
    # The width goes as 1/sqrt(runs): 10x the runs -> about 1/3.16 of the width.
    assert width_large < width_small / 2


def test_bootstrap_matches_normal_approximation_on_a_large_set() -> None:
    # 400 runs, one vote each: 200 fused, 100 tie, 100 bon.
    # rate = (200 + 50) / 400 = 0.625
    # E[x^2] = (200 * 1 + 100 * 0.25) / 400 = 225 / 400 = 0.5625; var = 0.5625 - 0.625^2 = 0.171875
    # se = sqrt(0.171875 / 400) = 0.0207289; 1.959964 * se = 0.0406279
    # normal 95 % interval: [0.5843721, 0.6656279]
    votes = votes_of(["fused", "fused", "tie", "bon"] * 100)
    wr = win_rate(votes, n_boot=4000)
    assert wr.rate == pytest.approx(0.625)
    assert wr.low == pytest.approx(0.5843721, abs=0.008)
    assert wr.high == pytest.approx(0.6656279, abs=0.008)


def test_bootstrap_resamples_runs_not_votes() -> None:
    # 40 runs with 10 identical votes each (20 runs all fused, 20 all bon): rate 0.5. Resampling runs,
    # each run is one draw of 0 or 1: se = sqrt(0.25 / 40) = 0.0791, half width 1.96 * se = 0.155.
    # Resampling the 400 votes as if independent would give sqrt(0.25 / 400) * 1.96 = 0.049.
    votes = [V(f"r{i}", "fused" if i < 20 else "bon") for i in range(40) for _ in range(10)]
    wr = win_rate(votes, n_boot=3000)
    assert wr.rate == pytest.approx(0.5)
    half = (wr.high - wr.low) / 2
    assert half == pytest.approx(0.155, abs=0.03)


def test_win_rate_by_groups_with_several_keys_and_natural_order() -> None:
    votes = [
        V("r1", "fused", n=5, tags=["de", "chat"]),
        V("r2", "bon", n=10, tags=["de"]),
        V("r3", "tie", n=5, tags=[]),
        V("r4", "fused", n=10, tags=["chat"]),
    ]
    by_n = win_rate_by(votes, key=lambda v: str(v.n))
    assert list(by_n) == ["5", "10"]  # natural, not lexical, order
    # N=5: r1 fused (1) + r3 tie (0.5) -> 0.75; N=10: r2 bon (0) + r4 fused (1) -> 0.5
    assert by_n["5"].rate == pytest.approx(0.75)
    assert by_n["10"].rate == pytest.approx(0.5)
    by_tag = win_rate_by(votes, key=lambda v: v.tags, n_boot=100)
    assert set(by_tag) == {"chat", "de"}  # r3 has no tag, so it is in no group
    # chat: r1 fused + r4 fused -> 1.0; de: r1 fused + r2 bon -> 0.5
    assert by_tag["chat"].rate == pytest.approx(1.0) and by_tag["chat"].n_votes == 2
    assert by_tag["de"].rate == pytest.approx(0.5)
    assert isinstance(by_tag["de"], WinRate)


# ------------------------------------------------------------------------------------------- position bias


def test_position_bias_is_the_share_of_decisive_votes_won_by_response_a() -> None:
    votes = [
        V("r1", "fused", a_is="fused"),  # A
        V("r2", "bon", a_is="bon"),  # A
        V("r3", "fused", a_is="bon"),  # B
        V("r4", "bon", a_is="fused"),  # B
        V("r5", "fused", a_is="fused"),  # A
        V("r6", "tie"),
        V("r7", "both_bad"),
    ]
    assert [v.choice for v in votes] == ["A", "A", "B", "B", "A", "tie", "both_bad"]
    pb = position_bias(votes)
    # Decisive: 3 A + 2 B = 5 -> 3 / 5 = 0.6; the tie and both_bad are counted apart.
    assert pb.rate == pytest.approx(0.6)
    assert (pb.wins, pb.losses, pb.ties, pb.both_bad, pb.n_votes, pb.n_runs) == (3, 2, 1, 1, 7, 7)
    assert pb.low <= 0.6 <= pb.high
    assert position_bias([V("r1", "tie")]).rate is None


# ------------------------------------------------------------------------------------------------ kappa


def _table(rows: list[list[int]], cats: list[str]) -> tuple[list[str], list[str]]:
    a: list[str] = []
    b: list[str] = []
    for i, row in enumerate(rows):
        for j, count in enumerate(row):
            a += [cats[i]] * count
            b += [cats[j]] * count
    return a, b


def test_cohens_kappa_on_a_2x2_table() -> None:
    #             B fused  B bon
    # A fused        20      5     (25)
    # A bon          10     15     (25)
    #               (30)   (20)    50
    # p_o = (20 + 15) / 50 = 0.7
    # p_e = (25 * 30 + 25 * 20) / 50^2 = (750 + 500) / 2500 = 0.5
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    a, b = _table([[20, 5], [10, 15]], ["fused", "bon"])
    assert cohens_kappa(a, b) == pytest.approx(0.4)


def test_cohens_kappa_on_a_3x3_table() -> None:
    #             fused  bon  tie
    # A fused       12    3    1    (16)
    # A bon          2    9    1    (12)
    # A tie          1    2    5    (8)
    #              (15)  (14)  (7)   36
    # p_o = (12 + 9 + 5) / 36 = 26 / 36
    # p_e = (16 * 15 + 12 * 14 + 8 * 7) / 36^2 = (240 + 168 + 56) / 1296 = 464 / 1296
    # kappa = (936 - 464) / (1296 - 464) = 472 / 832 = 59 / 104 = 0.567307...
    a, b = _table([[12, 3, 1], [2, 9, 1], [1, 2, 5]], ["fused", "bon", "tie"])
    assert cohens_kappa(a, b) == pytest.approx(59 / 104)


def test_cohens_kappa_edge_cases() -> None:
    assert cohens_kappa([], []) is None
    # Both always said "fused": p_o = 1 and p_e = 1 -> 0/0, reported as undefined.
    assert cohens_kappa(["fused"] * 4, ["fused"] * 4) is None
    # Perfect agreement with variation: kappa 1.
    assert cohens_kappa(["fused", "bon", "tie"], ["fused", "bon", "tie"]) == pytest.approx(1.0)
    # Systematic disagreement: p_o = 0, p_e = (1 * 1 + 1 * 1) / 4 = 0.5 -> (0 - 0.5) / 0.5 = -1.
    assert cohens_kappa(["fused", "bon"], ["bon", "fused"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        cohens_kappa(["fused"], [])


def test_pairwise_kappa_uses_shared_runs_only() -> None:
    votes = [
        # ann and bea share r1..r4; cy shares r1 only with both of them; dan shares nothing.
        V("r1", "fused", annotator="ann"),
        V("r1", "fused", annotator="bea"),
        V("r1", "bon", annotator="cy"),
        V("r2", "bon", annotator="ann"),
        V("r2", "bon", annotator="bea"),
        V("r3", "tie", annotator="ann"),
        V("r3", "fused", annotator="bea"),
        V("r4", "fused", annotator="ann"),
        V("r4", "fused", annotator="bea"),
        V("r9", "fused", annotator="dan"),
    ]
    rows = pairwise_kappa(votes)
    assert [(r.annotator_a, r.annotator_b, r.n_shared) for r in rows] == [
        ("ann", "bea", 4),
        ("ann", "cy", 1),
        ("bea", "cy", 1),
    ]
    assert all(isinstance(r, KappaRow) for r in rows)
    # ann: fused bon tie fused; bea: fused bon fused fused. p_o = 3/4.
    # ann freq: fused 2, bon 1, tie 1; bea: fused 3, bon 1. p_e = (2 * 3 + 1 * 1 + 1 * 0) / 16 = 7/16.
    # kappa = (12/16 - 7/16) / (9/16) = 5/9
    assert rows[0].kappa == pytest.approx(5 / 9)
    # ann vs cy on r1: fused vs bon. p_o = 0, p_e = 0 -> kappa = 0.
    assert rows[1].kappa == pytest.approx(0.0)


def test_annotator_units_keeps_the_last_vote_per_annotator() -> None:
    votes = [
        V("r1", "fused", annotator="ann"),
        V("r1", "bon", annotator="ann"),
        V("r1", "tie", annotator="bea"),
    ]
    assert annotator_units(votes) == {"r1": {"ann": "bon", "bea": "tie"}}


# ------------------------------------------------------------------------------------------------ alpha


def test_krippendorff_alpha_by_hand_with_missing_values() -> None:
    units = {
        "u1": {"A": "fused", "B": "fused", "C": "fused"},  # m = 3
        "u2": {"A": "bon", "B": "bon"},  # C missing, m = 2
        "u3": {"A": "fused", "B": "bon", "C": "bon"},  # m = 3
        "u4": {"A": "tie", "B": "tie", "C": None},  # None is missing too, m = 2
        "u5": {"A": "fused"},  # one value: not pairable, ignored
    }
    # Coincidences (each ordered pair within a unit adds 1 / (m - 1)):
    # u1: 6 pairs (f,f) / 2 -> o_ff += 3
    # u2: 2 pairs (b,b) / 1 -> o_bb += 2
    # u3: (f,b) x2, (b,f) x2, (b,b) x2, each / 2 -> o_fb += 1, o_bf += 1, o_bb += 1
    # u4: 2 pairs (t,t) / 1 -> o_tt += 2
    # o_ff = 3, o_fb = o_bf = 1, o_bb = 3, o_tt = 2; n_f = 4, n_b = 4, n_t = 2, n = 10
    # observed disagreement sum_{c != k} o_ck = 2
    # expected sum_{c != k} n_c n_k = n^2 - sum n_c^2 = 100 - (16 + 16 + 4) = 64
    # alpha = 1 - (n - 1) * 2 / 64 = 1 - 18 / 64 = 46 / 64 = 0.71875
    assert krippendorff_alpha(units) == pytest.approx(46 / 64)


def test_krippendorff_alpha_matches_the_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the 4 coders x 12 units example
    # with missing values (".") : nominal alpha = 0.743.
    rows = {
        "A": "1 2 3 3 2 1 4 1 2 . . .",
        "B": "1 2 3 3 2 2 4 1 2 5 . 3",
        "C": ". 3 3 3 2 3 4 2 2 5 1 .",
        "D": "1 2 3 3 2 4 4 1 2 5 1 .",
    }
    units: dict[str, dict[str, str]] = {}
    for coder, row in rows.items():
        for i, value in enumerate(row.split()):
            if value != ".":
                units.setdefault(str(i), {})[coder] = value
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=0.0005)


def test_krippendorff_alpha_edge_cases() -> None:
    perfect = {
        "r1": {"a": "fused", "b": "fused"},
        "r2": {"a": "bon", "b": "bon", "c": "bon"},
        "r3": {"a": "tie", "b": "tie"},
    }
    assert krippendorff_alpha(perfect) == pytest.approx(1.0)
    assert krippendorff_alpha({}) is None
    assert krippendorff_alpha({"r1": {"a": "fused"}, "r2": {"b": "bon"}}) is None  # nothing pairable
    # Everyone always said "fused": no variation, expected disagreement 0 -> undefined.
    assert (
        krippendorff_alpha({"r1": {"a": "fused", "b": "fused"}, "r2": {"a": "fused", "b": "fused"}}) is None
    )
    # Two coders disagreeing on every unit: alpha below zero.
    # o_fb = o_bf = 2, n_f = n_b = 2, n = 4: alpha = 1 - 3 * 4 / (16 - 8) = 1 - 12/8 = -0.5
    assert krippendorff_alpha(
        {"r1": {"a": "fused", "b": "bon"}, "r2": {"a": "bon", "b": "fused"}}
    ) == pytest.approx(-0.5)


def test_alpha_from_votes_through_annotator_units() -> None:
    votes = [
        V("r1", "fused", annotator="a"),
        V("r1", "fused", annotator="b"),
        V("r2", "bon", annotator="a"),
        V("r2", "bon", annotator="b"),
    ]
    assert krippendorff_alpha(annotator_units(votes)) == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------- distribution


def test_distribution_summary() -> None:
    # Sorted: 0.1 0.2 0.4 0.8 1.0 (None and nan skipped); mean = 2.5 / 5 = 0.5; median = 0.4
    # p10: position 0.1 * 4 = 0.4 -> 0.1 + 0.4 * (0.2 - 0.1) = 0.14
    # p90: position 0.9 * 4 = 3.6 -> 0.8 + 0.6 * (1.0 - 0.8) = 0.92
    d = distribution([0.8, None, 0.1, 1.0, float("nan"), 0.4, 0.2])
    assert d["n"] == 5
    assert d["mean"] == pytest.approx(0.5)
    assert d["median"] == pytest.approx(0.4)
    assert d["p10"] == pytest.approx(0.14)
    assert d["p90"] == pytest.approx(0.92)
    assert (d["min"], d["max"]) == (0.1, 1.0)
    empty = distribution([])
    assert empty["n"] == 0 and empty["mean"] is None and empty["median"] is None


def test_quantile_interpolates_linearly() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert quantile(values, 0.0) == 1.0 and quantile(values, 1.0) == 4.0
    assert quantile(values, 0.5) == pytest.approx(2.5)  # position 1.5
    assert math.isclose(quantile([7.0], 0.3), 7.0)

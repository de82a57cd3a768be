"""The Results page's rules in fusion.stats: no interval on too little data, blind votes by default, scenario
runs grouped under their scenario, and summarize() agreeing with the single statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from fusion.stats import (
    MIN_RUNS_FOR_INTERVAL,
    SPLITS,
    VoteTable,
    annotator_units,
    bootstrap_ratio,
    is_blind,
    krippendorff_alpha,
    pairwise_kappa,
    position_bias,
    summarize,
    vote_model_groups,
    vote_table,
    win_rate,
    win_rate_by,
)
from fusion.types import model_groups


@dataclass
class V:
    """A vote with every attribute summarize() reads (those of storage.votes.VoteRecord)."""

    run_id: str
    winner: str
    annotator: str = "ann"
    choice: str = ""
    a_is: str = "fused"
    n: int = 3
    models: list[str] = field(default_factory=lambda: ["openai/gpt-4o-mini"])
    tags: list[str] = field(default_factory=list)
    source: str = "batch"
    blind: bool = True

    def __post_init__(self) -> None:
        if not self.choice:
            if self.winner in ("tie", "both_bad"):
                self.choice = self.winner
            else:
                self.choice = "A" if self.winner == self.a_is else "B"

    @property
    def model_groups(self) -> list[str]:
        return model_groups(self.models, self.source)


# ------------------------------------------------------------------------------------------ minimum n


def test_no_interval_below_the_minimum_number_of_runs() -> None:
    assert MIN_RUNS_FOR_INTERVAL == 5
    mix = ["fused", "bon", "tie", "fused", "bon", "fused"]
    four = win_rate([V(f"r{i}", w) for i, w in enumerate(mix[:4])])
    # 4 runs: (1 + 0 + 0.5 + 1) / 4 = 0.625, and no interval.
    assert four.rate == pytest.approx(0.625)
    assert (four.low, four.high) == (None, None)
    assert four.no_interval == "4 runs; an interval needs at least 5"
    five = win_rate([V(f"r{i}", w) for i, w in enumerate(mix[:5])])
    # 5 runs: (1 + 0 + 0.5 + 1 + 0) / 5 = 0.5, with an interval around it.
    assert five.rate == pytest.approx(0.5)
    assert five.has_interval and five.no_interval is None
    assert five.low <= 0.5 <= five.high


def test_the_minimum_counts_runs_with_a_scored_vote_not_votes() -> None:
    # Ten votes on two runs, plus three runs with only "both bad": 5 runs, but 2 that carry the rate.
    votes = [V("a", "fused", annotator=f"x{i}") for i in range(5)] + [V("b", "bon", annotator=f"x{i}") for i in range(5)]
    votes += [V(f"bad{i}", "both_bad") for i in range(3)]
    wr = win_rate(votes)
    assert (wr.n_runs, wr.scored_runs, wr.n_votes, wr.n_scored) == (5, 2, 13, 10)
    assert wr.rate == pytest.approx(0.5) and wr.low is None
    assert wr.no_interval == "2 runs; an interval needs at least 5"


def test_no_interval_when_every_run_gives_the_same_rate() -> None:
    # 12 runs, all fused: the bootstrap resamples only 100% - a zero-width interval claiming certainty.
    all_fused = win_rate([V(f"r{i}", "fused") for i in range(12)])
    assert all_fused.rate == 1.0 and all_fused.low is None
    assert "same rate" in all_fused.no_interval
    # Every run one fused win and one Best-of-N win: each run's rate is 1/2, so again no spread.
    halves = [V(f"r{i}", w, annotator=a) for i in range(8) for w, a in (("fused", "a"), ("bon", "b"))]
    assert win_rate(halves).rate == 0.5 and win_rate(halves).low is None


def test_position_bias_follows_the_same_rules() -> None:
    two = position_bias([V("r1", "fused", a_is="fused"), V("r2", "fused", a_is="bon")])
    assert two.rate == pytest.approx(0.5) and two.low is None and two.scored_runs == 2
    # Ties are counted but not scored in position bias.
    votes = [V(f"r{i}", "fused", a_is="fused" if i % 3 else "bon") for i in range(9)] + [V("t", "tie")]
    pb = position_bias(votes)
    assert (pb.wins, pb.losses, pb.ties, pb.n_scored, pb.scored_runs) == (6, 3, 1, 9, 9)
    assert pb.rate == pytest.approx(6 / 9) and pb.has_interval


# ------------------------------------------------------------------------------------------ the bootstrap


def test_bootstrap_quantiles_are_binomial_quantiles() -> None:
    # 20 runs with one vote each, 10 fused and 10 Best-of-N. A resample of 20 runs has X fused wins with
    # X ~ Binomial(20, 1/2), rate X / 20. P(X <= 5) = 0.0207 and P(X <= 6) = 0.0577, so the 2.5% quantile
    # is 6 / 20 = 0.30; by symmetry the 97.5% quantile is 14 / 20 = 0.70.
    low, high = bootstrap_ratio(np.array([1.0] * 10 + [0.0] * 10), np.ones(20), n_boot=20_000, seed=3)
    assert (low, high) == (pytest.approx(0.30), pytest.approx(0.70))


def test_bootstrap_matches_resampling_runs_directly() -> None:
    # Runs with different numbers of votes and rates; the multinomial draw over distinct (count, sum) pairs
    # must give the same interval as drawing run indices with replacement, up to Monte Carlo error.
    rng = np.random.default_rng(11)
    counts = rng.integers(1, 5, size=60).astype(float)
    sums = np.array([rng.integers(0, 2 * c + 1) / 2 for c in counts])
    low, high = bootstrap_ratio(sums, counts, n_boot=20_000, seed=1)
    idx = rng.integers(0, 60, size=(20_000, 60))
    direct = np.quantile(sums[idx].sum(axis=1) / counts[idx].sum(axis=1), [0.025, 0.975])
    assert low == pytest.approx(direct[0], abs=0.01) and high == pytest.approx(direct[1], abs=0.01)


def test_intervals_are_stable_between_calls() -> None:
    votes = [V(f"r{i}", w) for i, w in enumerate(["fused", "bon", "tie", "fused", "fused", "bon"] * 4)]
    first, again = summarize(votes), summarize(votes)
    assert (first.overall.low, first.overall.high) == (again.overall.low, again.overall.high)
    assert first.overall == win_rate(votes)


# ------------------------------------------------------------------------------------------ blind votes


def test_is_blind_reads_records_mappings_and_csv_text() -> None:
    assert is_blind(V("r", "fused")) and not is_blind(V("r", "fused", blind=False))
    assert is_blind({"run_id": "r"})  # votes from before the flag existed were cast blind
    assert not is_blind({"blind": False}) and is_blind({"blind": True})
    assert [is_blind({"blind": t}) for t in ("False", "false", "0", "no", "True", "1", "")] == [
        False, False, False, False, True, True, True,
    ]  # fmt: skip


def mixed_votes() -> list[V]:
    """Blind votes favour fusion 3 to 1 over 6 runs; four non-blind votes all favour Best-of-N."""
    blind = [
        V("r1", "fused", annotator="ann", a_is="fused"),
        V("r1", "fused", annotator="ben", a_is="bon"),
        V("r2", "fused", annotator="ann", a_is="fused"),
        V("r3", "bon", annotator="ann", a_is="bon"),
        V("r4", "tie", annotator="ben"),
        V("r5", "both_bad", annotator="ben"),
        V("r6", "fused", annotator="ann", a_is="fused"),
    ]
    non_blind = [
        V(f"s{i}", "bon", annotator="cy", a_is="fused", blind=False, n=5, tags=["late"]) for i in range(4)
    ]
    return blind + non_blind


def test_summarize_uses_blind_votes_by_default_and_counts_the_others() -> None:
    votes = mixed_votes()
    s = summarize(votes)
    assert (s.n_blind, s.n_non_blind, s.n_used, s.include_non_blind) == (7, 4, 7, False)
    # Blind: fused 4, bon 1, tie 1 -> (4 + 0.5) / 6 = 0.75; both_bad counted apart.
    assert s.overall.rate == pytest.approx(0.75)
    assert (s.overall.wins, s.overall.losses, s.overall.ties, s.overall.both_bad) == (4, 1, 1, 1)
    assert s.overall == win_rate([v for v in votes if v.blind])
    # The splits, position bias and agreement follow: cy voted only non-blind, N=5 and "late" only there.
    assert set(s.by["Annotator"]) == {"ann", "ben"} and set(s.by["N"]) == {"3"} and s.by["Tag"] == {}
    assert s.annotators == ["ann", "ben"]
    assert s.position == position_bias([v for v in votes if v.blind])
    assert s.kappa == pairwise_kappa([v for v in votes if v.blind])

    everything = summarize(votes, include_non_blind=True)
    assert everything.n_used == 11
    # All: fused 4, bon 5, tie 1 -> 4.5 / 10 = 0.45
    assert everything.overall.rate == pytest.approx(0.45)
    assert everything.overall == win_rate(votes)
    assert everything.by["N"]["5"].n_votes == 4 and everything.by["Tag"]["late"].rate == 0.0
    assert everything.annotators == ["ann", "ben", "cy"]


def test_summarize_with_no_blind_vote() -> None:
    s = summarize([V("r1", "fused", blind=False)])
    assert (s.n_blind, s.n_non_blind) == (0, 1)
    assert s.overall.n_votes == 0 and s.overall.rate is None
    assert all(groups == {} for groups in s.by.values())
    assert s.kappa == [] and s.alpha is None and s.annotators == []


# ------------------------------------------------------------------------------------------ model groups


def test_scenario_runs_are_grouped_under_their_scenario() -> None:
    votes = [
        V("s1", "fused", models=["scenario:coach", "scenario:skeptic"], source="scenario:first-marathon"),
        V("s2", "bon", models=["scenario:coach", "scenario:pedant"], source="scenario:first-marathon"),
        V("s3", "tie", models=["scenario:literal"], source="scenario:translate-de-train"),
        V("b1", "fused", models=["openai/gpt-4o-mini", "cohere/command-r"], source="batch"),
    ]
    by_model = summarize(votes).by["Model"]
    # No persona (scenario:coach ...) is a group of its own.
    assert list(by_model) == [
        "cohere/command-r", "openai/gpt-4o-mini", "scenario:first-marathon", "scenario:translate-de-train",
    ]  # fmt: skip
    # first-marathon: fused + bon -> 0.5 over 2 votes; the real models keep their own groups.
    assert by_model["scenario:first-marathon"].rate == 0.5 and by_model["scenario:first-marathon"].n_votes == 2
    assert by_model["openai/gpt-4o-mini"].n_votes == 1
    assert list(summarize(votes).by) == list(SPLITS)


def test_vote_model_groups_on_export_lines() -> None:
    line = {"models": ["scenario:coach"], "source": "scenario:first-marathon"}
    assert vote_model_groups(line) == ["scenario:first-marathon"]
    assert vote_model_groups({"models": ["a", "b", "a"], "source": "live"}) == ["a", "b"]
    assert vote_model_groups({"models": None}) == []


# ------------------------------------------------------------------------------------------ consistency


def test_summarize_equals_the_single_statistics() -> None:
    rng = np.random.default_rng(5)
    winners = ["fused", "bon", "tie", "both_bad"]
    votes = [
        V(
            f"r{r}",
            winners[int(rng.integers(0, 4))],
            annotator=a,
            a_is=("bon", "fused")[int(rng.integers(0, 2))],
            n=int(rng.choice([2, 5, 10])) if a == "a1" else 5,
            tags=[["de"], ["ja", "chat"], []][r % 3],
        )
        for r in range(40)
        for a in ("a1", "a2", "a3")
        if rng.random() < 0.8
    ]
    s = summarize(votes)
    assert s.overall == win_rate(votes)
    assert s.position == position_bias(votes)
    assert s.by["Annotator"] == win_rate_by(votes, key=lambda v: v.annotator)
    assert s.by["Tag"] == win_rate_by(votes, key=lambda v: v.tags)
    assert s.by["N"] == win_rate_by(votes, key=lambda v: str(v.n))
    assert list(s.by["N"]) == ["2", "5", "10"]
    assert s.kappa == pairwise_kappa(votes)
    assert s.alpha == pytest.approx(krippendorff_alpha(annotator_units(votes)))


def test_agreement_counts_the_last_vote_of_an_annotator_on_a_run() -> None:
    # ann first said fused then bon on r1 (storage keeps one vote; a file may hold both).
    votes = [V("r1", "fused", annotator="ann"), V("r1", "bon", annotator="ann"), V("r1", "bon", annotator="bea"),
             V("r2", "fused", annotator="ann"), V("r2", "fused", annotator="bea")]  # fmt: skip
    table = vote_table(votes)
    assert isinstance(table, VoteTable) and len(table) == 5
    s = summarize(table)
    # With ann's last vote (bon) both agree on both runs, with two categories: kappa 1, alpha 1.
    assert s.kappa[0].kappa == pytest.approx(1.0) and s.kappa[0].n_shared == 2
    assert s.alpha == pytest.approx(1.0)


def test_table_without_choices_still_gives_agreement() -> None:
    rows = [{"run_id": "r1", "annotator": "a", "winner": "fused"}, {"run_id": "r1", "annotator": "b", "winner": "bon"}]
    assert vote_table(rows).choice is None
    # a fused, b bon on the one shared run: p_o = 0, p_e = 0 -> kappa 0.
    assert pairwise_kappa(rows)[0].kappa == pytest.approx(0.0)
    with pytest.raises(ValueError, match="choice"):
        summarize(rows)


def test_alpha_reports_the_runs_it_rests_on() -> None:
    votes = [V("r1", "fused", annotator="a"), V("r1", "fused", annotator="b"), V("r2", "bon", annotator="a"),
             V("r2", "bon", annotator="b"), V("r3", "tie", annotator="a")]  # fmt: skip
    s = summarize(votes)
    # r3 has one annotator: not pairable. r1 and r2 agree across two categories: alpha 1.
    assert s.alpha == pytest.approx(1.0) and s.alpha_runs == 2


def test_bootstrap_ratio_takes_any_scores() -> None:
    # Scores outside halves of 0..1 take the general path: the interval still brackets the ratio.
    sums = np.array([-1.0, 2.5, 0.3, 4.0, -0.7, 1.1])
    counts = np.array([1.0, 2.0, 1.0, 3.0, 1.0, 2.0])
    low, high = bootstrap_ratio(sums, counts, n_boot=4000)
    assert low < sums.sum() / counts.sum() < high
    with pytest.raises(ValueError):
        bootstrap_ratio(np.array([]), np.array([]))


def test_splits_on_demand_equal_the_full_summary() -> None:
    from fusion.stats import split_rates, vote_table

    votes = [V(f"r{i % 7}", ("fused", "bon", "tie", "both_bad")[i % 4], blind=i % 5 != 0) for i in range(60)]
    for include in (False, True):
        full = summarize(votes, include_non_blind=include)
        lean = summarize(votes, include_non_blind=include, splits=())
        assert lean.by == {} and lean.overall == full.overall and lean.position == full.position
        table = vote_table(votes)
        for name, groups in full.by.items():
            assert split_rates(table, name, include_non_blind=include) == groups

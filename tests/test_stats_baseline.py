"""The numpy statistics against the pure-Python module they replaced (bench/stats_baseline.py, fusion/stats.py
at 844602b), on 1,500 votes over 500 runs: counts and rates identical, kappa and alpha equal, and every
bootstrap interval the same within Monte-Carlo error.

The two bootstraps draw differently (the old one picks runs with ``random.choices``; the new one draws how
often each distinct run outcome is picked from a multinomial, the same resampling distribution), so their
endpoints differ by chance only. An endpoint estimated as the 2.5% or 97.5% quantile of B resamples has a
standard error of about sqrt(p (1 - p) / B) / phi(z_p) = 0.06 sigma at B = 2,000 (sigma: the spread of the
resampled rate, (high - low) / 3.92), so the difference of two has 0.085 sigma; the test allows 5 of those.
Both sides are seeded: the outcome is the same on every run of the test.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fusion import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import stats_baseline as old  # noqa: E402

N_BOOT = 2000
TAIL = 0.025
# Standard error of the difference of two independent quantile estimates, in units of sigma.
SE_DIFF = math.sqrt(2 * TAIL * (1 - TAIL) / N_BOOT) / (math.exp(-1.959964**2 / 2) / math.sqrt(2 * math.pi))
ALLOWED = 5 * SE_DIFF


@dataclass
class V:
    run_id: str
    annotator: str
    winner: str
    choice: str
    a_is: str
    n: int
    models: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str = "batch"
    blind: bool = True


def synthetic_votes(n_runs: int = 500, seed: int = 11) -> list[V]:
    """About three votes per run by five annotators; a run's quality sets how often its fusion wins, so runs
    differ (the case a bootstrap over runs is for)."""
    rng = random.Random(seed)
    names = [f"annotator-{i}" for i in range(5)]
    models = ["m-a", "m-b", "m-c", "m-d", "m-e", "m-f"]
    votes = []
    for r in range(n_runs):
        n = rng.choice((2, 3, 5, 8))
        quality = rng.random()
        run_models = rng.sample(models, min(n, len(models)))
        tags = rng.choice(([], ["pilot"], ["pilot", "de"], ["round-2"]))
        for annotator in rng.sample(names, rng.randint(1, 5)):
            x = rng.random()
            winner = "fused" if x < 0.8 * quality else "tie" if x < 0.9 * quality + 0.05 else "both_bad" if x > 0.93 else "bon"
            a_is = rng.choice(("bon", "fused"))
            choice = winner if winner in ("tie", "both_bad") else ("A" if winner == a_is else "B")
            votes.append(V(f"run-{r:04d}", annotator, winner, choice, a_is, n, run_models, tags))
    return votes


@pytest.fixture(scope="module")
def both() -> tuple[dict, stats.ResultsSummary]:
    votes = synthetic_votes()
    base = {
        "overall": old.win_rate(votes, n_boot=N_BOOT),
        "position": old.position_bias(votes, n_boot=N_BOOT),
        "Model": old.win_rate_by(votes, key=lambda v: v.models, n_boot=N_BOOT),
        "N": old.win_rate_by(votes, key=lambda v: str(v.n), n_boot=N_BOOT),
        "Tag": old.win_rate_by(votes, key=lambda v: v.tags, n_boot=N_BOOT),
        "Annotator": old.win_rate_by(votes, key=lambda v: v.annotator, n_boot=N_BOOT),
        "kappa": old.pairwise_kappa(votes),
        "alpha": old.krippendorff_alpha(old.annotator_units(votes)),
    }
    return base, stats.summarize(votes, n_boot=N_BOOT)


def pairs(base: dict, cur: stats.ResultsSummary) -> list[tuple[str, object, stats.WinRate]]:
    out = [("overall", base["overall"], cur.overall), ("position", base["position"], cur.position)]
    for split in stats.SPLITS:
        assert list(base[split]) == list(cur.by[split]), split
        out += [(f"{split} {label}", w, cur.by[split][label]) for label, w in base[split].items()]
    return out


def test_counts_and_rates_are_identical(both: tuple[dict, stats.ResultsSummary]) -> None:
    base, cur = both
    compared = pairs(base, cur)
    assert len(compared) == 2 + 6 + 4 + 3 + 5  # overall, position, models, Ns, tags, annotators
    for label, a, b in compared:
        assert (a.n_runs, a.n_votes, a.wins, a.losses, a.ties, a.both_bad) == (
            b.n_runs, b.n_votes, b.wins, b.losses, b.ties, b.both_bad
        ), label  # fmt: skip
        assert b.rate == pytest.approx(a.rate, abs=1e-12), label


def test_intervals_agree_within_monte_carlo_error(both: tuple[dict, stats.ResultsSummary]) -> None:
    base, cur = both
    worst = 0.0
    checked = 0
    for label, a, b in pairs(base, cur):
        if not b.has_interval:
            continue
        sigma = (b.high - b.low) / (2 * 1.959964)
        assert sigma > 0, label
        for end in ("low", "high"):
            gap = abs(getattr(a, end) - getattr(b, end)) / sigma
            worst = max(worst, gap)
            assert gap <= ALLOWED, f"{label} {end}: {getattr(a, end):.4f} vs {getattr(b, end):.4f} ({gap:.2f} sigma)"
        # The interval holds the rate and has the width the old bootstrap gave, within the same error.
        assert b.low <= b.rate <= b.high, label
        checked += 1
    assert checked == 20  # every group has 100+ runs: each has an interval
    # Two bootstraps that agreed exactly would mean one was not random at all: some gap is expected.
    assert worst > 0


def test_agreement_statistics_are_equal(both: tuple[dict, stats.ResultsSummary]) -> None:
    base, cur = both
    assert [(k.annotator_a, k.annotator_b, k.n_shared) for k in base["kappa"]] == [
        (k.annotator_a, k.annotator_b, k.n_shared) for k in cur.kappa
    ]
    for a, b in zip(base["kappa"], cur.kappa):
        assert b.kappa == pytest.approx(a.kappa, abs=1e-9)
    assert cur.alpha == pytest.approx(base["alpha"], abs=1e-9)


def test_a_seed_gives_the_same_intervals_and_another_seed_agrees_within_error() -> None:
    votes = synthetic_votes(n_runs=200, seed=5)
    first, again, other = stats.summarize(votes), stats.summarize(votes), stats.summarize(votes, seed=1)
    assert first == again
    assert (first.overall.low, first.overall.high) != (other.overall.low, other.overall.high)
    sigma = (first.overall.high - first.overall.low) / (2 * 1.959964)
    assert abs(first.overall.low - other.overall.low) <= ALLOWED * sigma
    assert abs(first.overall.high - other.overall.high) <= ALLOWED * sigma

"""Win rate of Fusion-of-N over Best-of-N, and position bias, each with its counts and a bootstrap interval.

* Win rate: a fused win scores 1, a tie 0.5, a Best-of-N win 0; "both bad" votes say nothing about which is
  better and are left out of the rate (counted apart). The rate is a ratio over votes.
* Position bias: how often the left response (Response A) wins among the decisive votes (A or B); 0.5
  means none.
* No interval is better than a misleading one: below :data:`~fusion.stats.bootstrap.MIN_RUNS_FOR_INTERVAL`
  runs with a scored vote, and when every run gives the same rate (every resample then has that rate,
  whatever the number of runs), ``low`` and ``high`` are ``None`` and ``no_interval`` says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusion.stats.bootstrap import CONFIDENCE, MIN_RUNS_FOR_INTERVAL, N_BOOT, SEED, _check_confidence, bootstrap_ratio
from fusion.stats.votes import CHOICES, WINNERS, VoteTable, _codes, _field, _group_members, _index

# Score of each winner towards the fusion win rate; both_bad is deliberately absent (excluded).
WIN_SCORE = {"fused": 1.0, "tie": 0.5, "bon": 0.0}
# Score of each clicked button towards "the left response wins"; ties and both_bad are left out.
POSITION_SCORE = {"A": 1.0, "B": 0.0}


@dataclass
class WinRate:
    """A rate with its counts and a bootstrap confidence interval.

    For :func:`win_rate`: ``wins`` = fused won, ``losses`` = Best-of-N won, ``ties``, ``both_bad``;
    ``rate`` = (wins + ties / 2) / (wins + losses + ties). For :func:`position_bias`: ``wins`` = Response A
    (left) chosen, ``losses`` = Response B chosen, and ``rate`` = wins / (wins + losses).

    ``n_runs`` counts the runs among the votes (all of them, both_bad-only runs included); ``n_votes`` every
    vote; ``n_scored`` the votes in the rate (win rate: wins + losses + ties; position bias: wins + losses)
    and ``scored_runs`` the runs with at least one of them. ``rate`` is ``None`` when no vote
    counts towards it. ``low`` and ``high`` are ``None`` when there is no interval, and then
    ``no_interval`` says why (no scored vote, too few runs, no spread between runs).
    """

    n_runs: int
    n_votes: int
    wins: int
    losses: int
    ties: int
    both_bad: int
    rate: float | None
    low: float | None
    high: float | None
    scored_runs: int = 0
    n_scored: int = 0
    no_interval: str | None = None

    @property
    def decisive(self) -> int:
        """Votes that named a winner (wins + losses)."""
        return self.wins + self.losses

    @property
    def both_bad_rate(self) -> float | None:
        """Share of all votes that said "both bad"."""
        return self.both_bad / self.n_votes if self.n_votes else None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None



def _scored_rate(
    run: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    score: Mapping[str, float],
    names: tuple[str, str],
    *,
    n_boot: int,
    seed: int,
    confidence: float,
    min_runs: int,
) -> WinRate:
    """Shared core of the win rate and position bias: ``run`` and ``labels`` are per-vote codes; the labels
    in ``score`` are scored, the others counted but left out of the rate; bootstrap over runs. ``names`` are
    the labels reported as ``wins`` and ``losses``."""
    confidence = _check_confidence(confidence)
    counts = np.bincount(labels, minlength=len(label_names)) if len(labels) else np.zeros(len(label_names), int)
    by_name = dict(zip(label_names, (int(c) for c in counts)))
    score_of = np.array([score.get(name, np.nan) for name in label_names], dtype=float)
    scores = score_of[labels] if len(labels) else np.zeros(0)
    scored = ~np.isnan(scores)
    scored_run_ids, inverse = np.unique(run[scored], return_inverse=True)
    k = len(scored_run_ids)
    rate = low = high = None
    reason: str | None = "no vote counts towards the rate"
    if k:
        run_sums = np.bincount(inverse, weights=scores[scored], minlength=k)
        run_counts = np.bincount(inverse, minlength=k)
        rate = float(run_sums.sum() / run_counts.sum())
        run_rates = run_sums / run_counts
        if k < min_runs:
            reason = f"{k} run{'' if k == 1 else 's'}; an interval needs at least {min_runs}"
        elif n_boot < 1:
            reason = "no bootstrap resamples asked for"
        elif np.ptp(run_rates) <= 1e-12:
            # Every resample then has the same ratio: a zero-width "interval" that claims certainty.
            reason = "every run gives the same rate, so a bootstrap over runs shows no spread"
        else:
            low, high = bootstrap_ratio(run_sums, run_counts, n_boot=n_boot, seed=seed, confidence=confidence)
            reason = None
    return WinRate(
        n_runs=int(len(np.unique(run))),
        n_votes=int(len(labels)),
        wins=by_name.get(names[0], 0),
        losses=by_name.get(names[1], 0),
        ties=by_name.get("tie", 0),
        both_bad=by_name.get("both_bad", 0),
        rate=rate,
        low=low,
        high=high,
        scored_runs=int(k),
        n_scored=int(scored.sum()),
        no_interval=reason,
    )


def _win(table: VoteTable, idx: np.ndarray | None, **kw: Any) -> WinRate:
    run = table.run if idx is None else table.run[idx]
    winner = table.winner if idx is None else table.winner[idx]
    return _scored_rate(run, winner, WINNERS, WIN_SCORE, ("fused", "bon"), **kw)


def _position(table: VoteTable, idx: np.ndarray | None, **kw: Any) -> WinRate:
    if table.choice is None:
        raise ValueError("Position bias needs every vote's choice (A, B, tie or both_bad).")
    run = table.run if idx is None else table.run[idx]
    choice = table.choice if idx is None else table.choice[idx]
    return _scored_rate(run, choice, CHOICES, POSITION_SCORE, ("A", "B"), **kw)


def _boot_kw(n_boot: int, seed: int, confidence: float, min_runs: int) -> dict[str, Any]:
    return {"n_boot": int(n_boot), "seed": int(seed), "confidence": confidence, "min_runs": int(min_runs)}

# ----------------------------------------------------------------------------------------------------------
# Win rates


def win_rate(
    votes: Sequence[Any],
    *,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    min_runs: int = MIN_RUNS_FOR_INTERVAL,
) -> WinRate:
    """Win rate of Fusion-of-N over Best-of-N with a ``confidence`` percentile-bootstrap interval over runs.

    Fused win = 1, tie = 0.5, Best-of-N win = 0; "both bad" votes are excluded from the rate and counted in
    ``both_bad``. No scored vote: rate, low and high are ``None``. Fewer than ``min_runs`` runs with a scored
    vote, or no spread between runs: a rate but no interval (``no_interval`` says why).
    """
    votes = list(votes)
    run, _ = _index(str(_field(v, "run_id")) for v in votes)
    winner = _codes((_field(v, "winner") for v in votes), WINNERS, "winner")
    return _scored_rate(
        run, winner, WINNERS, WIN_SCORE, ("fused", "bon"), **_boot_kw(n_boot, seed, confidence, min_runs)
    )


def win_rate_by(
    votes: Sequence[Any], key: Callable[[Any], str | Sequence[str] | None], **kw: Any
) -> dict[str, WinRate]:
    """:func:`win_rate` per group. ``key(vote)`` gives the vote's group, or several (a vote with tags
    ``["de", "chat"]`` counts in both groups), or ``None`` / ``[]`` for none. Groups come in natural order
    ("5" before "10"); ``kw`` goes to :func:`win_rate`."""
    boot = _boot_kw(
        kw.pop("n_boot", N_BOOT), kw.pop("seed", SEED), kw.pop("confidence", CONFIDENCE),
        kw.pop("min_runs", MIN_RUNS_FOR_INTERVAL),
    )  # fmt: skip
    if kw:
        raise TypeError(f"unexpected arguments: {', '.join(kw)}")
    votes = list(votes)
    members = _group_members(votes, key)
    run, _ = _index(str(_field(v, "run_id")) for v in votes)
    winner = _codes((_field(v, "winner") for v in votes), WINNERS, "winner")
    return {
        label: _scored_rate(run[idx], winner[idx], WINNERS, WIN_SCORE, ("fused", "bon"), **boot)
        for label, idx in members.items()
    }


def position_bias(
    votes: Sequence[Any],
    *,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    min_runs: int = MIN_RUNS_FOR_INTERVAL,
) -> WinRate:
    """How often the LEFT response (Response A) wins among decisive votes (A or B), with a bootstrap
    interval over runs. 0.5 means no position bias. ``wins`` = A chosen, ``losses`` = B chosen; ties and
    "both bad" are counted but not part of the rate."""
    votes = list(votes)
    run, _ = _index(str(_field(v, "run_id")) for v in votes)
    choice = _codes((_field(v, "choice") for v in votes), CHOICES, "choice")
    return _scored_rate(
        run, choice, CHOICES, POSITION_SCORE, ("A", "B"), **_boot_kw(n_boot, seed, confidence, min_runs)
    )

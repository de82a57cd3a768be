# fusion/stats.py as it was at commit 844602b (pure Python), kept verbatim below these comments as the
# baseline of bench/stats_speed.py. Not used by the app; do not edit: the benchmark measures against it.
"""Statistics of the annotation results: win rates with bootstrap intervals, position bias, agreement.

Pure Python (no numpy) and deterministic for a given ``seed``, so the Results page and a script compute
the same numbers from the same votes.

A *vote* is any object with the attributes ``run_id``, ``annotator``, ``winner`` (``fused`` | ``bon`` |
``tie`` | ``both_bad``), ``a_is`` (``bon`` | ``fused``: the side shown as Response A), ``choice`` (``A`` |
``B`` | ``tie`` | ``both_bad``), ``n``, ``models`` and ``tags`` - :class:`storage.votes.VoteRecord` - or a
mapping with those keys (a line of the votes JSON Lines export).

Conventions:

* Win rate of Fusion-of-N over Best-of-N: a fused win scores 1, a tie 0.5, a Best-of-N win 0. "Both bad"
  votes say nothing about which is better: they are left out of the rate and counted apart.
* The rate is a ratio over votes (sum of scores / number of scored votes). Votes on the same run are not
  independent (same prompt, same pair of texts), so the interval is a percentile bootstrap over *runs*:
  resample runs with replacement and take all of their votes.
* Undefined statistics are ``None``, never ``nan``: no votes gives no rate; Cohen's kappa and Krippendorff's
  alpha are ``None`` when the data show no variation at all (everyone used one and the same category), where
  both formulas divide zero by zero. Agreement on a single category says nothing about reliability, so we
  refuse to call it perfect (1.0) - the page says "undefined" instead.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

WINNERS = ("fused", "bon", "tie", "both_bad")
# Score of each winner towards the fusion win rate; both_bad is deliberately absent (excluded).
WIN_SCORE = {"fused": 1.0, "tie": 0.5, "bon": 0.0}
CHOICES = ("A", "B", "tie", "both_bad")


@dataclass
class WinRate:
    """A rate with its counts and a bootstrap confidence interval.

    For :func:`win_rate`: ``wins`` = fused won, ``losses`` = Best-of-N won, ``ties``, ``both_bad``;
    ``rate`` = (wins + ties / 2) / (wins + losses + ties). For :func:`position_bias`: ``wins`` = Response A
    (left) chosen, ``losses`` = Response B chosen, and ``rate`` = wins / (wins + losses).

    ``n_runs`` counts the runs among the votes (all of them, both_bad-only runs included); ``n_votes`` every
    vote. ``rate``, ``low`` and ``high`` are ``None`` when no vote counts towards the rate.
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

    @property
    def decisive(self) -> int:
        """Votes that named a winner (wins + losses)."""
        return self.wins + self.losses

    @property
    def both_bad_rate(self) -> float | None:
        """Share of all votes that said "both bad"."""
        return self.both_bad / self.n_votes if self.n_votes else None


@dataclass
class KappaRow:
    """Cohen's kappa of two annotators over the runs both voted on (``None`` when undefined)."""

    annotator_a: str
    annotator_b: str
    n_shared: int
    kappa: float | None


# ----------------------------------------------------------------------------------------------------------
# Helpers


def _field(vote: Any, name: str) -> Any:
    if isinstance(vote, Mapping):
        return vote.get(name)
    return getattr(vote, name)


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive); got {confidence!r}.")
    return float(confidence)


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of already sorted values; ``q`` in [0, 1]."""
    if not sorted_values:
        raise ValueError("quantile of an empty sequence")
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def _bootstrap(
    per_run: Sequence[tuple[float, int]], *, n_boot: int, seed: int, confidence: float
) -> tuple[float | None, float | None, float | None]:
    """(rate, low, high) of sum(score) / sum(count), with a percentile bootstrap over the runs.

    Every entry of ``per_run`` is (sum of scores, number of scored votes) of one run, with count >= 1, so a
    resample never divides by zero.
    """
    if not per_run:
        return None, None, None
    total = sum(s for s, _ in per_run)
    count = sum(c for _, c in per_run)
    rate = total / count
    if len(per_run) == 1 or n_boot < 1:
        # One run: resampling it always gives the same rate - the interval degenerates to a point.
        return rate, rate, rate
    rng = random.Random(seed)
    k = len(per_run)
    replicates: list[float] = []
    for _ in range(int(n_boot)):
        sample = rng.choices(per_run, k=k)
        s = 0.0
        c = 0
        for run_sum, run_count in sample:
            s += run_sum
            c += run_count
        replicates.append(s / c)
    replicates.sort()
    tail = (1.0 - confidence) / 2.0
    return rate, quantile(replicates, tail), quantile(replicates, 1.0 - tail)


def _natural_key(label: str) -> tuple[Any, ...]:
    # "N=10" after "N=5", and numeric group names in numeric order.
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", label))


# ----------------------------------------------------------------------------------------------------------
# Win rates


def _scored_rate(
    votes: Sequence[Any],
    *,
    field: str,
    allowed: Sequence[str],
    score: Mapping[str, float],
    names: tuple[str, str],
    n_boot: int,
    seed: int,
    confidence: float,
) -> WinRate:
    """Shared core of :func:`win_rate` and :func:`position_bias`: count each vote's ``field``, score the
    labels in ``score`` (the others are counted but left out of the rate), bootstrap over runs.
    ``names`` are the labels reported as ``wins`` and ``losses``."""
    confidence = _check_confidence(confidence)
    counts: Counter[str] = Counter()
    per_run: dict[str, list[float]] = {}
    runs: set[str] = set()
    for vote in votes:
        label = _field(vote, field)
        if label not in allowed:
            raise ValueError(f"Unknown {field} {label!r}; expected one of {', '.join(allowed)}.")
        run_id = str(_field(vote, "run_id"))
        runs.add(run_id)
        counts[label] += 1
        if label in score:
            acc = per_run.setdefault(run_id, [0.0, 0])
            acc[0] += score[label]
            acc[1] += 1
    rate, low, high = _bootstrap(
        [(s, int(c)) for s, c in per_run.values()], n_boot=n_boot, seed=seed, confidence=confidence
    )
    return WinRate(
        n_runs=len(runs),
        n_votes=sum(counts.values()),
        wins=counts[names[0]],
        losses=counts[names[1]],
        ties=counts["tie"],
        both_bad=counts["both_bad"],
        rate=rate,
        low=low,
        high=high,
    )


def win_rate(votes: Sequence[Any], *, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> WinRate:
    """Win rate of Fusion-of-N over Best-of-N with a ``confidence`` percentile-bootstrap interval over runs.

    Fused win = 1, tie = 0.5, Best-of-N win = 0; "both bad" votes are excluded from the rate and counted in
    ``both_bad``. No scored vote: rate, low and high are ``None``. One run: low == high == rate.
    """
    return _scored_rate(
        votes, field="winner", allowed=WINNERS, score=WIN_SCORE, names=("fused", "bon"),
        n_boot=n_boot, seed=seed, confidence=confidence,
    )


def win_rate_by(
    votes: Sequence[Any], key: Callable[[Any], str | Sequence[str] | None], **kw: Any
) -> dict[str, WinRate]:
    """:func:`win_rate` per group. ``key(vote)`` gives the vote's group, or several (a vote with tags
    ``["de", "chat"]`` counts in both groups), or ``None`` / ``[]`` for none. Groups come in natural order
    ("5" before "10"); ``kw`` goes to :func:`win_rate`."""
    groups: dict[str, list[Any]] = {}
    for vote in votes:
        found = key(vote)
        if found is None:
            continue
        labels = [found] if isinstance(found, str) else list(found)
        for label in dict.fromkeys(str(x) for x in labels):
            groups.setdefault(label, []).append(vote)
    return {label: win_rate(groups[label], **kw) for label in sorted(groups, key=_natural_key)}


def position_bias(
    votes: Sequence[Any], *, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> WinRate:
    """How often the LEFT response (Response A) wins among decisive votes (A or B), with a bootstrap
    interval over runs. 0.5 means no position bias. ``wins`` = A chosen, ``losses`` = B chosen; ties and
    "both bad" are counted but not part of the rate."""
    return _scored_rate(
        votes, field="choice", allowed=CHOICES, score={"A": 1.0, "B": 0.0}, names=("A", "B"),
        n_boot=n_boot, seed=seed, confidence=confidence,
    )


# ----------------------------------------------------------------------------------------------------------
# Agreement


def cohens_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters who labelled the same items (``a[i]`` and ``b[i]`` are item i's labels).

    kappa = (p_o - p_e) / (1 - p_e), p_o the observed agreement, p_e the agreement expected from each rater's
    own label frequencies. ``None`` for no items, and when p_e = 1 (both raters used one and the same label
    for everything: 0/0, see the module notes).
    """
    if len(a) != len(b):
        raise ValueError(f"Both raters must label the same items; got {len(a)} and {len(b)} labels.")
    n = len(a)
    if n == 0:
        return None
    p_o = sum(1 for x, y in zip(a, b) if x == y) / n
    freq_a, freq_b = Counter(a), Counter(b)
    p_e = sum(freq_a[c] * freq_b[c] for c in freq_a) / (n * n)
    if math.isclose(p_e, 1.0):
        return None
    return (p_o - p_e) / (1.0 - p_e)


def annotator_units(votes: Iterable[Any]) -> dict[str, dict[str, str]]:
    """{run id: {annotator: winner}}: the reliability data of agreement statistics. Should an annotator
    have several votes on a run (storage keeps one), the last in the given order counts."""
    units: dict[str, dict[str, str]] = {}
    for vote in votes:
        winner = _field(vote, "winner")
        if winner not in WINNERS:
            raise ValueError(f"Unknown winner {winner!r}; expected one of {', '.join(WINNERS)}.")
        units.setdefault(str(_field(vote, "run_id")), {})[str(_field(vote, "annotator"))] = winner
    return units


def pairwise_kappa(votes: Sequence[Any]) -> list[KappaRow]:
    """Cohen's kappa over the four ``winner`` categories for every pair of annotators who share at least
    one run, ordered by annotator names. Pairs with no shared run are left out."""
    units = annotator_units(votes)
    by_annotator: dict[str, dict[str, str]] = {}
    for run_id, coders in units.items():
        for annotator, winner in coders.items():
            by_annotator.setdefault(annotator, {})[run_id] = winner
    rows: list[KappaRow] = []
    for x, y in combinations(sorted(by_annotator), 2):
        shared = sorted(set(by_annotator[x]) & set(by_annotator[y]))
        if not shared:
            continue
        kappa = cohens_kappa([by_annotator[x][r] for r in shared], [by_annotator[y][r] for r in shared])
        rows.append(KappaRow(annotator_a=x, annotator_b=y, n_shared=len(shared), kappa=kappa))
    return rows


def krippendorff_alpha(units: Mapping[str, Mapping[str, str | None]]) -> float | None:
    """Krippendorff's alpha for nominal data. ``units`` maps a unit (run) to {coder: value}; a missing value
    is simply absent (or ``None``).

    Only units with at least two values are pairable; alpha = 1 - (n - 1) * sum_{c != k} o_ck /
    sum_{c != k} n_c n_k, where o is the coincidence matrix (each ordered pair of values within a unit of m
    values adds 1 / (m - 1)), n_c its margins and n the number of pairable values. ``None`` with fewer than
    two pairable values or when every pairable value is the same category.
    """
    coincidence: dict[tuple[str, str], float] = {}
    for coders in units.values():
        values = [v for v in coders.values() if v is not None]
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        # Ordered pairs (c, k) from distinct coders: counts[c] * counts[k], minus the self-pairs when c == k.
        for c, nc in counts.items():
            for k, nk in counts.items():
                pairs = nc * (nc - 1) if c == k else nc * nk
                if pairs:
                    coincidence[(c, k)] = coincidence.get((c, k), 0.0) + pairs / (m - 1)
    margins: Counter[str] = Counter()
    for (c, _k), value in coincidence.items():
        margins[c] += value  # type: ignore[assignment]
    n = sum(margins.values())
    if n < 2:
        return None
    observed = sum(v for (c, k), v in coincidence.items() if c != k)
    expected = n * n - sum(v * v for v in margins.values())
    if expected <= 1e-12:
        return None
    return 1.0 - (n - 1) * observed / expected


# ----------------------------------------------------------------------------------------------------------
# Distributions


def distribution(values: Iterable[float | int | None]) -> dict[str, float | int | None]:
    """Summary of numbers: n, mean, median, p10, p90, min and max (linear-interpolation percentiles).
    ``None`` and non-finite values are skipped; with none left every figure but n is ``None``."""
    clean = sorted(float(v) for v in values if v is not None and math.isfinite(float(v)))
    if not clean:
        return {"n": 0, "mean": None, "median": None, "p10": None, "p90": None, "min": None, "max": None}
    return {
        "n": len(clean),
        "mean": math.fsum(clean) / len(clean),
        "median": quantile(clean, 0.5),
        "p10": quantile(clean, 0.1),
        "p90": quantile(clean, 0.9),
        "min": clean[0],
        "max": clean[-1],
    }

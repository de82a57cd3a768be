"""Statistics of the annotation results: win rates with bootstrap intervals, position bias, agreement.

Vectorised with numpy and deterministic for a given ``seed``, so the Results page, a rerun of it and a
script compute the same numbers from the same votes.

A *vote* is any object with the attributes ``run_id``, ``annotator``, ``winner`` (``fused`` | ``bon`` |
``tie`` | ``both_bad``), ``a_is`` (``bon`` | ``fused``: the side shown as Response A), ``choice`` (``A`` |
``B`` | ``tie`` | ``both_bad``), ``n``, ``models``, ``tags``, ``source`` and ``blind`` -
:class:`storage.votes.VoteRecord` - or a mapping with those keys (a line of the votes JSON Lines export).
Only what a statistic uses must be there; a missing ``blind`` counts as blind (``VoteRecord``'s default).

Conventions:

* Win rate of Fusion-of-N over Best-of-N: a fused win scores 1, a tie 0.5, a Best-of-N win 0. "Both bad"
  votes say nothing about which is better: they are left out of the rate and counted apart.
* The rate is a ratio over votes (sum of scores / number of scored votes). Votes on the same run are not
  independent (same prompt, same pair of texts), so the interval is a percentile bootstrap over *runs*:
  resample runs with replacement and take all of their votes.
* No interval is better than a misleading one: below :data:`MIN_RUNS_FOR_INTERVAL` runs with a scored vote,
  and when every run gives the same rate (the bootstrap then returns one point, whatever the number of
  runs), ``low`` and ``high`` are ``None`` and ``no_interval`` says why.
* Undefined statistics are ``None``, never ``nan``: no votes gives no rate; Cohen's kappa and Krippendorff's
  alpha are ``None`` when the data show no variation at all (everyone used one and the same category), where
  both formulas divide zero by zero. Agreement on a single category says nothing about reliability, so we
  refuse to call it perfect (1.0) - the page says "undefined" instead.
* Blind votes: a vote cast after the voter saw which response was which can be swayed by the label.
  :func:`summarize` uses blind votes only unless asked to include the others, and counts both kinds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusion.types import model_groups

WINNERS = ("fused", "bon", "tie", "both_bad")
# Score of each winner towards the fusion win rate; both_bad is deliberately absent (excluded).
WIN_SCORE = {"fused": 1.0, "tie": 0.5, "bon": 0.0}
CHOICES = ("A", "B", "tie", "both_bad")
# Score of each clicked button towards "the left response wins"; ties and both_bad are left out.
POSITION_SCORE = {"A": 1.0, "B": 0.0}

# Below this many runs a percentile bootstrap has too few distinct resamples to mean anything (one run
# always gives a zero-width "interval"); the same threshold the page uses for a meaningful kappa.
MIN_RUNS_FOR_INTERVAL = 5
N_BOOT = 2000
SEED = 0
CONFIDENCE = 0.95

# The splits :func:`summarize` computes, in the order the page shows them.
SPLITS = ("Model", "N", "Tag", "Annotator")


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


@dataclass
class KappaRow:
    """Cohen's kappa of two annotators over the runs both voted on (``None`` when undefined)."""

    annotator_a: str
    annotator_b: str
    n_shared: int
    kappa: float | None


@dataclass
class ResultsSummary:
    """Every vote statistic of the Results page, computed by :func:`summarize` in one pass.

    ``by`` maps a split name of :data:`SPLITS` to its groups in natural order. ``n_blind`` and
    ``n_non_blind`` count all the votes given; the statistics use the blind ones only unless
    ``include_non_blind``. ``n_used`` is the number of votes the statistics use; ``alpha_runs`` the runs
    alpha rests on (those with votes of two or more annotators).
    """

    overall: WinRate
    by: dict[str, dict[str, WinRate]]
    position: WinRate
    kappa: list[KappaRow]
    alpha: float | None
    alpha_runs: int
    annotators: list[str]
    n_blind: int
    n_non_blind: int
    include_non_blind: bool

    @property
    def n_used(self) -> int:
        return self.n_blind + (self.n_non_blind if self.include_non_blind else 0)


# ----------------------------------------------------------------------------------------------------------
# Reading votes


_MAPPING_TYPES: dict[type, bool] = {}


def _field(vote: Any, name: str, default: Any = None) -> Any:
    # isinstance(x, Mapping) is an ABC check, slow when repeated for every field of thousands of votes.
    kind = type(vote)
    is_mapping = _MAPPING_TYPES.get(kind)
    if is_mapping is None:
        is_mapping = _MAPPING_TYPES[kind] = isinstance(vote, Mapping)
    if is_mapping:
        return vote.get(name, default)
    return getattr(vote, name, default)


_FALSE_WORDS = frozenset({"false", "0", "no", "n", "f"})


def is_blind(vote: Any) -> bool:
    """Whether the vote was cast blind. A missing value counts as blind (votes recorded before the flag
    existed were all cast blind); text from a CSV export ("false", "0", "no") is read as a boolean."""
    value = _field(vote, "blind", True)
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip() or value.strip().lower() not in _FALSE_WORDS
    return bool(value)


def vote_model_groups(vote: Any) -> list[str]:
    """The names a vote counts under in the split by model: its run's models, or the run's scenario for a
    built-in scenario (whose candidates carry made-up persona names; see :func:`fusion.types.model_groups`)."""
    groups = _field(vote, "model_groups")
    if groups is not None:
        return list(groups)
    return model_groups(list(_field(vote, "models") or []), str(_field(vote, "source") or ""))


def _split_keys() -> dict[str, Callable[[Any], str | Sequence[str] | None]]:
    return {
        "Model": vote_model_groups,
        "N": lambda v: None if _field(v, "n") is None else str(_field(v, "n")),
        "Tag": lambda v: list(_field(v, "tags") or []),
        "Annotator": lambda v: str(_field(v, "annotator")),
    }


def _codes(values: Iterable[Any], allowed: Sequence[str], what: str) -> np.ndarray:
    index = {label: i for i, label in enumerate(allowed)}
    out: list[int] = []
    for value in values:
        code = index.get(value)
        if code is None:
            raise ValueError(f"Unknown {what} {value!r}; expected one of {', '.join(allowed)}.")
        out.append(code)
    return np.asarray(out, dtype=np.int64)


def _index(labels: Iterable[str]) -> tuple[np.ndarray, list[str]]:
    """Integer codes of ``labels`` and the distinct labels in order of first appearance."""
    seen: dict[str, int] = {}
    codes = [seen.setdefault(label, len(seen)) for label in labels]
    return np.asarray(codes, dtype=np.int64), list(seen)


def _natural_key(label: str) -> tuple[Any, ...]:
    # "N=10" after "N=5", and numeric group names in numeric order.
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", label))


def _group_members(votes: Sequence[Any], key: Callable[[Any], str | Sequence[str] | None]) -> dict[str, np.ndarray]:
    """{group label: indices of its votes} in natural label order. ``key(vote)`` gives one label, several
    (a vote with tags ``["de", "chat"]`` counts in both groups), or ``None`` / ``[]`` for none."""
    members: dict[str, list[int]] = {}
    for i, vote in enumerate(votes):
        found = key(vote)
        if found is None:
            continue
        if isinstance(found, str):
            members.setdefault(found, []).append(i)
            continue
        for label in dict.fromkeys(map(str, found)):
            members.setdefault(label, []).append(i)
    return {label: np.asarray(members[label], dtype=np.int64) for label in sorted(members, key=_natural_key)}


# ----------------------------------------------------------------------------------------------------------
# Bootstrap


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive); got {confidence!r}.")
    return float(confidence)


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of already sorted values; ``q`` in [0, 1]."""
    if len(sorted_values) == 0:
        raise ValueError("quantile of an empty sequence")
    return float(np.quantile(np.asarray(sorted_values, dtype=float), q))


def bootstrap_ratio(
    run_sums: np.ndarray,
    run_counts: np.ndarray,
    *,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of sum(run_sums) / sum(run_counts), resampling runs with replacement.

    Every run has count >= 1, so a resample never divides by zero. The ratio of a resample depends only on
    how many times each distinct (count, sum) pair of runs was drawn, and those counts follow a multinomial
    distribution with the pairs' frequencies: drawing them directly is the same bootstrap, at a cost that
    grows with the number of distinct pairs (a few dozen for votes of a handful of annotators) instead of
    with the number of runs.
    """
    confidence = _check_confidence(confidence)
    k = len(run_sums)
    if k == 0 or n_boot < 1:
        raise ValueError("the bootstrap needs at least one run and one resample")
    counts = np.asarray(run_counts, dtype=float)
    sums = np.asarray(run_sums, dtype=float)
    doubled = 2.0 * sums
    top = 2.0 * counts.max()
    if np.array_equal(doubled, np.round(doubled)) and doubled.min() >= 0 and doubled.max() <= top:
        # Scores in halves from 0 to 1 (win rate, position bias): one integer key per pair, unique because
        # 0 <= 2 * sum <= top, and much faster than a 2-D unique.
        key = counts * (top + 1.0) + doubled
        _, first, freq = np.unique(key, return_index=True, return_counts=True)
        pair_counts, pair_sums = counts[first], sums[first]
    else:
        pairs, freq = np.unique(np.stack([counts, sums]), axis=1, return_counts=True)
        pair_counts, pair_sums = pairs[0], pairs[1]
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(k, freq / k, size=int(n_boot)).astype(float)
    replicates = (draws @ pair_sums) / (draws @ pair_counts)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return float(low), float(high)


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


# ----------------------------------------------------------------------------------------------------------
# The vote table: every vote as array entries, read once


@dataclass
class VoteTable:
    """Votes as parallel arrays (one entry per vote, in the order given) for the vectorised statistics.

    ``run`` and ``annotator`` are codes into ``run_ids`` and ``annotators``; ``winner`` and ``choice``
    codes into :data:`WINNERS` and :data:`CHOICES` (``choice`` is ``None`` when a vote has none: agreement
    and win rates need no choice, position bias does); ``groups`` maps a split name to {group: vote
    indices}.
    """

    run: np.ndarray
    run_ids: list[str]
    annotator: np.ndarray
    annotators: list[str]
    winner: np.ndarray
    choice: np.ndarray | None
    blind: np.ndarray
    groups: dict[str, dict[str, np.ndarray]]

    def __len__(self) -> int:
        return int(len(self.winner))


def vote_table(
    votes: Sequence[Any], splits: Mapping[str, Callable[[Any], str | Sequence[str] | None]] | None = None
) -> VoteTable:
    """Read ``votes`` into a :class:`VoteTable`. ``splits`` maps a split name to its key (as in
    :func:`win_rate_by`); the default is :data:`SPLITS` (model groups, N, tags, annotator)."""
    votes = list(votes)
    run, run_ids = _index(str(_field(v, "run_id")) for v in votes)
    annotator, annotators = _index(str(_field(v, "annotator")) for v in votes)
    keys = _split_keys() if splits is None else dict(splits)
    choices = [_field(v, "choice") for v in votes]
    return VoteTable(
        run=run,
        run_ids=run_ids,
        annotator=annotator,
        annotators=annotators,
        winner=_codes((_field(v, "winner") for v in votes), WINNERS, "winner"),
        choice=_codes(choices, CHOICES, "choice") if all(c is not None for c in choices) else None,
        blind=np.fromiter((is_blind(v) for v in votes), dtype=bool, count=len(votes)),
        groups={name: _group_members(votes, key) for name, key in keys.items()},
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


# ----------------------------------------------------------------------------------------------------------
# Agreement


def _kappa_from_confusion(confusion: np.ndarray) -> float | None:
    n = confusion.sum()
    if n == 0:
        return None
    p_o = np.trace(confusion) / n
    p_e = float(confusion.sum(axis=1) @ confusion.sum(axis=0)) / (n * n)
    if math.isclose(p_e, 1.0):
        return None
    return float((p_o - p_e) / (1.0 - p_e))


def cohens_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters who labelled the same items (``a[i]`` and ``b[i]`` are item i's labels).

    kappa = (p_o - p_e) / (1 - p_e), p_o the observed agreement, p_e the agreement expected from each rater's
    own label frequencies. ``None`` for no items, and when p_e = 1 (both raters used one and the same label
    for everything: 0/0, see the module notes).
    """
    if len(a) != len(b):
        raise ValueError(f"Both raters must label the same items; got {len(a)} and {len(b)} labels.")
    if not a:
        return None
    codes, labels = _index([*map(str, a), *map(str, b)])
    k = len(labels)
    x, y = codes[: len(a)], codes[len(a) :]
    return _kappa_from_confusion(np.bincount(x * k + y, minlength=k * k).reshape(k, k))


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


def _unit_matrix(table: VoteTable, idx: np.ndarray | None) -> np.ndarray:
    """runs x annotators matrix of winner codes, -1 where an annotator did not vote on a run; the last
    vote of an annotator on a run counts (as :func:`annotator_units`)."""
    run = table.run if idx is None else table.run[idx]
    ann = table.annotator if idx is None else table.annotator[idx]
    winner = table.winner if idx is None else table.winner[idx]
    matrix = np.full((len(table.run_ids), len(table.annotators)), -1, dtype=np.int64)
    if len(run):
        # numpy leaves the order of repeated-index assignment undefined: keep each cell's last vote first.
        cell = run * len(table.annotators) + ann
        _, last_from_end = np.unique(cell[::-1], return_index=True)
        keep = len(cell) - 1 - last_from_end
        matrix[run[keep], ann[keep]] = winner[keep]
    return matrix


def _pairwise_kappa(table: VoteTable, idx: np.ndarray | None) -> list[KappaRow]:
    matrix = _unit_matrix(table, idx)
    present = (matrix >= 0).astype(np.int64)
    shared = present.T @ present  # annotators x annotators: runs both voted on
    k = len(WINNERS)
    order = sorted(range(len(table.annotators)), key=lambda i: table.annotators[i])
    rows: list[KappaRow] = []
    for pos, x in enumerate(order):
        for y in order[pos + 1 :]:
            if shared[x, y] == 0:
                continue
            both = (matrix[:, x] >= 0) & (matrix[:, y] >= 0)
            confusion = np.bincount(matrix[both, x] * k + matrix[both, y], minlength=k * k).reshape(k, k)
            rows.append(
                KappaRow(
                    annotator_a=table.annotators[x],
                    annotator_b=table.annotators[y],
                    n_shared=int(shared[x, y]),
                    kappa=_kappa_from_confusion(confusion),
                )
            )
    return rows


def pairwise_kappa(votes: Sequence[Any]) -> list[KappaRow]:
    """Cohen's kappa over the four ``winner`` categories for every pair of annotators who share at least
    one run, ordered by annotator names. Pairs with no shared run are left out."""
    return _pairwise_kappa(vote_table(votes, splits={}), None)


def _alpha_from_counts(counts: np.ndarray) -> float | None:
    """Nominal Krippendorff's alpha from a units x categories matrix of how many coders gave each value."""
    m = counts.sum(axis=1)
    pairable = m >= 2
    c = counts[pairable].astype(float)
    if len(c) == 0:
        return None
    weighted = c / (m[pairable] - 1.0)[:, None]
    # Coincidences: within a unit of m values each ordered pair of values from distinct coders adds
    # 1 / (m - 1); counts[c] * counts[k] pairs, minus the self-pairs on the diagonal.
    coincidence = weighted.T @ c - np.diag(weighted.sum(axis=0))
    margins = coincidence.sum(axis=1)
    n = margins.sum()
    if n < 2:
        return None
    observed = coincidence.sum() - np.trace(coincidence)
    expected = n * n - float(margins @ margins)
    if expected <= 1e-12:
        return None
    return float(1.0 - (n - 1) * observed / expected)


def krippendorff_alpha(units: Mapping[str, Mapping[str, str | None]]) -> float | None:
    """Krippendorff's alpha for nominal data. ``units`` maps a unit (run) to {coder: value}; a missing value
    is simply absent (or ``None``).

    Only units with at least two values are pairable; alpha = 1 - (n - 1) * sum_{c != k} o_ck /
    sum_{c != k} n_c n_k, where o is the coincidence matrix (each ordered pair of values within a unit of m
    values adds 1 / (m - 1)), n_c its margins and n the number of pairable values. ``None`` with fewer than
    two pairable values or when every pairable value is the same category.
    """
    cells: list[tuple[int, str]] = [
        (u, str(v)) for u, coders in enumerate(units.values()) for v in coders.values() if v is not None
    ]
    if not cells:
        return None
    codes, labels = _index(v for _, v in cells)
    unit = np.asarray([u for u, _ in cells], dtype=np.int64)
    k = len(labels)
    counts = np.bincount(unit * k + codes, minlength=len(units) * k).reshape(len(units), k)
    return _alpha_from_counts(counts)


def _alpha(table: VoteTable, idx: np.ndarray | None) -> tuple[float | None, int]:
    """(alpha, number of pairable runs: runs with votes of at least two annotators)."""
    matrix = _unit_matrix(table, idx)
    k = len(WINNERS)
    runs, anns = np.nonzero(matrix >= 0)
    if len(runs) == 0:
        return None, 0
    counts = np.bincount(runs * k + matrix[runs, anns], minlength=matrix.shape[0] * k).reshape(-1, k)
    return _alpha_from_counts(counts), int((counts.sum(axis=1) >= 2).sum())


# ----------------------------------------------------------------------------------------------------------
# Everything the Results page shows


def summarize(
    votes: Sequence[Any] | VoteTable,
    *,
    include_non_blind: bool = False,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    min_runs: int = MIN_RUNS_FOR_INTERVAL,
) -> ResultsSummary:
    """The win rate overall and split by :data:`SPLITS`, position bias, pairwise Cohen's kappa and
    Krippendorff's alpha, over the blind votes only (or all of them with ``include_non_blind``).

    Each figure equals what :func:`win_rate`, :func:`win_rate_by`, :func:`position_bias`,
    :func:`pairwise_kappa` and :func:`krippendorff_alpha` give for the same votes; the votes are read once.
    """
    table = votes if isinstance(votes, VoteTable) else vote_table(votes)
    kw = _boot_kw(n_boot, seed, confidence, min_runs)
    n_blind = int(table.blind.sum())
    used = None if include_non_blind else np.flatnonzero(table.blind)
    by: dict[str, dict[str, WinRate]] = {}
    for name, groups in table.groups.items():
        out: dict[str, WinRate] = {}
        for label, members in groups.items():
            idx = members if used is None else members[table.blind[members]]
            if len(idx):
                out[label] = _win(table, idx, **kw)
        by[name] = out
    used_annotators = table.annotator if used is None else table.annotator[used]
    alpha, alpha_runs = _alpha(table, used)
    return ResultsSummary(
        overall=_win(table, used, **kw),
        by=by,
        position=_position(table, used, **kw),
        kappa=_pairwise_kappa(table, used),
        alpha=alpha,
        alpha_runs=alpha_runs,
        annotators=sorted({table.annotators[i] for i in np.unique(used_annotators)}),
        n_blind=n_blind,
        n_non_blind=len(table) - n_blind,
        include_non_blind=include_non_blind,
    )


# ----------------------------------------------------------------------------------------------------------
# Distributions


def distribution(values: Iterable[float | int | None]) -> dict[str, float | int | None]:
    """Summary of numbers: n, mean, median, p10, p90, min and max (linear-interpolation percentiles).
    ``None`` and non-finite values are skipped; with none left every figure but n is ``None``."""
    arr = np.asarray([float(v) for v in values if v is not None], dtype=float)
    clean = arr[np.isfinite(arr)]
    if len(clean) == 0:
        return {"n": 0, "mean": None, "median": None, "p10": None, "p90": None, "min": None, "max": None}
    p10, median, p90 = (float(x) for x in np.quantile(clean, [0.1, 0.5, 0.9]))
    return {
        "n": int(len(clean)),
        "mean": math.fsum(clean.tolist()) / len(clean),
        "median": median,
        "p10": p10,
        "p90": p90,
        "min": float(clean.min()),
        "max": float(clean.max()),
    }

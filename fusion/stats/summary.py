"""Every vote statistic of the Results page in one pass over a :class:`~fusion.stats.votes.VoteTable`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusion.stats.agreement import KappaRow, _alpha, _pairwise_kappa
from fusion.stats.bootstrap import CONFIDENCE, MIN_RUNS_FOR_INTERVAL, N_BOOT, SEED
from fusion.stats.rates import WinRate, _boot_kw, _position, _win
from fusion.stats.votes import SPLITS, VoteTable, vote_table

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


def summarize(
    votes: Sequence[Any] | VoteTable,
    *,
    include_non_blind: bool = False,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    min_runs: int = MIN_RUNS_FOR_INTERVAL,
    splits: Sequence[str] | None = None,
) -> ResultsSummary:
    """The win rate overall and split by :data:`SPLITS`, position bias, pairwise Cohen's kappa and
    Krippendorff's alpha, over the blind votes only (or all of them with ``include_non_blind``).

    Each figure equals what :func:`win_rate`, :func:`win_rate_by`, :func:`position_bias`,
    :func:`pairwise_kappa` and :func:`krippendorff_alpha` give for the same votes; the votes are read once.
    ``splits`` limits ``by`` to those splits (``()``: none): a bootstrap per group is most of the cost, and
    a page showing one split at a time computes the others only when asked (:func:`split_rates`).
    """
    table = votes if isinstance(votes, VoteTable) else vote_table(votes)
    kw = _boot_kw(n_boot, seed, confidence, min_runs)
    n_blind = int(table.blind.sum())
    used = None if include_non_blind else np.flatnonzero(table.blind)
    by = {
        name: split_rates(table, name, include_non_blind=include_non_blind, **kw)
        for name in table.groups
        if splits is None or name in splits
    }
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


def split_rates(
    table: VoteTable,
    name: str,
    *,
    include_non_blind: bool = False,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    min_runs: int = MIN_RUNS_FOR_INTERVAL,
) -> dict[str, WinRate]:
    """The win rate of every group of one split (a name of :data:`SPLITS`), as :func:`summarize` gives it
    in ``by[name]``; groups without a vote in use are left out."""
    kw = _boot_kw(n_boot, seed, confidence, min_runs)
    out: dict[str, WinRate] = {}
    for label, members in table.groups.get(name, {}).items():
        idx = members if include_non_blind else members[table.blind[members]]
        if len(idx):
            out[label] = _win(table, idx, **kw)
    return out

"""The pairwise judge beside the humans, and win rate against N: the Results page's paper-style figures.

Judge verdicts are stored as votes under the annotator ``judge:<model>`` (see :mod:`fusion.pairwise`), and
they must never be mixed into the people's win rate: :func:`split_votes` separates the two first.

* Judge win rate: :func:`fusion.stats.win_rate` over one judge's verdicts, with the same bootstrap over runs.
* Agreement with people: Cohen's kappa between the judge's verdict and each person's vote on the runs
  both judged, one item per (run, person), over fused / bon / tie ("both bad" votes name no side, so they
  are left out). A single label for everything gives ``None`` (undefined), as everywhere in the stats.
* Position consistency: the share of the judge's verdicts whose two orders named the same system.
* Win rate against N: the votes (people's or one judge's) of an N-scaling experiment grouped by the k of
  their run's ``scale-k:<k>`` tag, each with its interval, beside the mean share of the fused text the
  Best-of-N pick supplied at that k.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from fusion.pairwise import JUDGE_PREFIX, is_judge
from fusion.stats import WinRate, cohens_kappa, win_rate, win_rate_by

_SIDES = ("fused", "bon", "tie")


def _get(vote: Any, name: str, default: Any = None) -> Any:
    if isinstance(vote, Mapping):
        return vote.get(name, default)
    return getattr(vote, name, default)


def split_votes(votes: Iterable[Any]) -> tuple[list[Any], dict[str, list[Any]]]:
    """(people's votes, {judge model: its verdicts})."""
    people: list[Any] = []
    judges: dict[str, list[Any]] = defaultdict(list)
    for vote in votes:
        name = str(_get(vote, "annotator", ""))
        if is_judge(name):
            judges[name[len(JUDGE_PREFIX) :]].append(vote)
        else:
            people.append(vote)
    return people, dict(sorted(judges.items()))


@dataclass
class JudgeRow:
    """One judge's figures on the Results page."""

    model: str
    rate: WinRate  # the judge's win rate of fusion over Best-of-N
    consistency: float | None  # share of its verdicts whose two orders agreed
    n_inconsistent: int
    kappa: float | None  # agreement with the people, over (run, person) items
    n_shared: int  # those items
    people_rate: WinRate | None  # the people's win rate on the same runs, for a like-with-like look


def judge_rows(votes: Iterable[Any], **boot: Any) -> list[JudgeRow]:
    """A row per judge model among ``votes``; ``boot`` goes to :func:`fusion.stats.win_rate`."""
    people, judges = split_votes(votes)
    by_run: dict[str, list[str]] = defaultdict(list)
    for vote in people:
        winner = str(_get(vote, "winner"))
        if winner in _SIDES:
            by_run[str(_get(vote, "run_id"))].append(winner)
    rows = []
    for model, verdicts in judges.items():
        flags = [_get(v, "consistent") for v in verdicts]
        known = [f for f in flags if f is not None]
        judge_labels, people_labels = [], []
        runs = set()
        for v in verdicts:
            run_id = str(_get(v, "run_id"))
            if run_id in by_run:
                runs.add(run_id)
            for label in by_run.get(run_id, ()):
                judge_labels.append(str(_get(v, "winner")))
                people_labels.append(label)
        shared_people = [v for v in people if str(_get(v, "run_id")) in runs]
        rows.append(JudgeRow(
            model=model,
            rate=win_rate(verdicts, **boot),
            consistency=(sum(bool(f) for f in known) / len(known)) if known else None,
            n_inconsistent=sum(1 for f in known if not f),
            kappa=cohens_kappa(judge_labels, people_labels) if judge_labels else None,
            n_shared=len(judge_labels),
            people_rate=win_rate(shared_people, **boot) if shared_people else None,
        ))
    return rows


@dataclass
class ScalePoint:
    """Win rate at one N of an N-scaling experiment."""

    k: int
    rate: WinRate
    pick_share: float | None  # mean share of the fused text supplied by the pick, over the k's runs
    n_runs: int  # runs of this k with a pick share (the votes' runs are in ``rate``)


def scaling_points(
    votes: Sequence[Any], pick_shares: Mapping[str, tuple[int, float | None]], **boot: Any
) -> list[ScalePoint]:
    """Votes of an experiment grouped by k. ``pick_shares`` maps each of its run ids to (k, pick share),
    so that k without votes still show their share. Votes on runs outside ``pick_shares`` are ignored."""
    ours = [v for v in votes if str(_get(v, "run_id")) in pick_shares]
    rates = win_rate_by(ours, lambda v: str(pick_shares[str(_get(v, "run_id"))][0]), **boot)
    shares: dict[int, list[float]] = defaultdict(list)
    ks = set()
    for k, share in pick_shares.values():
        ks.add(k)
        if share is not None:
            shares[k].append(share)
    empty = win_rate([], **boot)
    return [
        ScalePoint(k, rates.get(str(k), empty), float(np.mean(shares[k])) if shares[k] else None, len(shares[k]))
        for k in sorted(ks)
    ]


"""Reading votes: from records (``VoteRecord`` objects or mappings) or from columns read in SQL, into the
:class:`VoteTable` of parallel arrays every other statistic works on.

A vote is counted under a *split* (model, N, tag, annotator) by the labels of its run (or its own
annotator). A vote with several labels (tags ``["de", "chat"]``) counts in each of their groups; groups come
in natural order ("5" before "10").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np

from fusion.types import model_groups

WINNERS = ("fused", "bon", "tie", "both_bad")
CHOICES = ("A", "B", "tie", "both_bad")
# The splits :func:`summarize` computes, in the order the page shows them.
SPLITS = ("Model", "N", "Tag", "Annotator")


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
    # map() runs the lookups in C; the loop in Python cost more than every statistic at 15,000 votes.
    values = values if isinstance(values, list) else list(values)
    codes = list(map(index.get, values))
    if None in codes:
        bad = values[codes.index(None)]
        raise ValueError(f"Unknown {what} {bad!r}; expected one of {', '.join(allowed)}.")
    return np.fromiter(codes, dtype=np.int64, count=len(codes))


def _index(labels: Iterable[str]) -> tuple[np.ndarray, list[str]]:
    """Integer codes of ``labels`` and the distinct labels in order of first appearance."""
    labels = labels if isinstance(labels, list) else list(labels)
    distinct = list(dict.fromkeys(labels))  # first appearance order, in C
    index = {label: i for i, label in enumerate(distinct)}
    return np.fromiter(map(index.__getitem__, labels), dtype=np.int64, count=len(labels)), distinct


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


def _members_by_code(codes: np.ndarray, labels: list[str], pair_of_vote: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """{label: ascending vote indices} in natural label order, from each vote's label code (or, with
    ``pair_of_vote``, from codes of (label, vote) pairs: ``codes[i]`` is the label of vote ``pair_of_vote[i]``)."""
    votes_of = np.arange(len(codes)) if pair_of_vote is None else pair_of_vote
    if len(codes) == 0:
        return {}
    # By label, then by vote: one integer key sorts faster than lexsort's two.
    order = np.argsort(codes * (int(votes_of.max()) + 1) + votes_of)
    sorted_codes, sorted_votes = codes[order], votes_of[order]
    bounds = np.searchsorted(sorted_codes, np.arange(len(labels) + 1))
    return {
        labels[i]: sorted_votes[bounds[i] : bounds[i + 1]]
        for i in sorted(range(len(labels)), key=lambda i: _natural_key(labels[i]))
        if bounds[i + 1] > bounds[i]
    }


def _run_label_members(run: np.ndarray, run_ids: list[str], pairs: Iterable[tuple[str, str]]) -> dict[str, np.ndarray]:
    """{label: indices of the votes on runs with that label} from (run id, label) pairs; pairs of runs
    without votes are ignored, a repeated pair counts once."""
    pairs = list(pairs)
    if not pairs:
        return {}
    code_of = {r: i for i, r in enumerate(run_ids)}
    # itemgetter columns: zip(*pairs) builds an argument tuple of every pair, several times slower.
    runs_of_pairs, labels_of_pairs = map(itemgetter(0), pairs), map(itemgetter(1), pairs)
    # map() with a default runs the lookups in C; -1 marks a run without votes.
    pair_run = np.fromiter(map(code_of.get, map(str, runs_of_pairs), repeat(-1)), dtype=np.int64, count=len(pairs))
    label_codes, labels = _index(list(map(str, labels_of_pairs)))
    known = pair_run >= 0
    pair_key = np.unique(label_codes[known] * len(run_ids) + pair_run[known])
    pair_label, pair_run = np.divmod(pair_key, len(run_ids))
    # Expand each (label, run) pair to the votes on its run: the votes grouped by run (stable, so in vote
    # order), each run's slice found from the vote counts per run.
    by_run = np.argsort(run, kind="stable")
    per_run = np.bincount(run, minlength=len(run_ids))
    start = np.cumsum(per_run) - per_run
    size = per_run[pair_run]
    pair_of = np.repeat(np.arange(len(pair_run)), size)
    offset = np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)
    vote_idx = by_run[start[pair_run][pair_of] + offset]
    return _members_by_code(pair_label[pair_of], labels, vote_idx)


def vote_table_from_columns(
    run_id: Sequence[str],
    annotator: Sequence[str],
    winner: Sequence[str],
    choice: Sequence[str | None] | None,
    blind: Sequence[bool],
    run_labels: Mapping[str, Iterable[tuple[str, str]]],
) -> VoteTable:
    """A :class:`VoteTable` from votes as parallel columns (``storage.stats_sql.vote_columns`` reads them in
    SQL): one entry per vote in each column, ``blind`` as booleans, ``choice`` ``None`` when unknown.

    The run-level splits come as ``(run id, label)`` pairs per split name in ``run_labels`` (a run may have
    several labels, or none); the split by annotator is taken from the ``annotator`` column unless
    ``run_labels`` has one. Splits come in :data:`SPLITS` order, then any others. The table equals what
    :func:`vote_table` makes from the same votes as records, without a Python call per vote and field.
    """
    count = len(run_id)
    if not (len(annotator) == len(winner) == len(blind) == count) or (choice is not None and len(choice) != count):
        raise ValueError("Every vote column must have one entry per vote.")
    run, run_ids = _index(map(str, run_id))
    ann, annotators = _index(map(str, annotator))
    names = [s for s in SPLITS if s == "Annotator" or s in run_labels] + [s for s in run_labels if s not in SPLITS]
    groups: dict[str, dict[str, np.ndarray]] = {}
    for name in names:
        if name == "Annotator" and name not in run_labels:
            groups[name] = _members_by_code(ann, annotators)
        else:
            groups[name] = _run_label_members(run, run_ids, run_labels[name])
    return VoteTable(
        run=run,
        run_ids=run_ids,
        annotator=ann,
        annotators=annotators,
        winner=_codes(winner, WINNERS, "winner"),
        choice=None if choice is None or None in choice else _codes(choice, CHOICES, "choice"),
        blind=np.asarray(blind, dtype=bool).reshape(count),
        groups=groups,
    )

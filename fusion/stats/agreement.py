"""Agreement between annotators on the ``winner`` of the runs they both voted on.

* Cohen's kappa, per pair of annotators: (p_o - p_e) / (1 - p_e), p_o the share of shared runs on which
  they gave the same winner, p_e the agreement expected from each one's own label frequencies.
* Krippendorff's alpha (nominal), over all annotators at once: 1 - observed / expected disagreement, from
  the coincidence matrix of the runs with votes of two or more annotators; it allows any number of
  annotators per run and missing votes.
* Both are ``None`` when the data show no variation at all (everyone used one and the same category),
  where the formulas divide zero by zero: agreement on a single category says nothing about reliability,
  so it is never reported as perfect (1.0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusion.stats.votes import WINNERS, VoteTable, _field, _index, vote_table

@dataclass
class KappaRow:
    """Cohen's kappa of two annotators over the runs both voted on (``None`` when undefined)."""

    annotator_a: str
    annotator_b: str
    n_shared: int
    kappa: float | None


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

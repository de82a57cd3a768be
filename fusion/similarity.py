"""chrF: character n-gram F-score (Popovic 2015), the agreement measure behind consensus Best-of-N and the
extractive fusor.

Definition used here (it matches sacrebleu's default chrF, ``eps_smoothing=False``):

* white space is removed from both texts, then character n-grams of orders 1..n are counted;
* for each order where both texts have at least one n-gram ("effective" orders), precision =
  matches / hypothesis n-grams and recall = matches / reference n-grams, with matches counted with
  multiplicity (the sum of per-n-gram minimum counts);
* precision and recall are each averaged over the effective orders, and the score is the F-beta of those
  two averages, beta = 2 weighing recall twice as much as precision;
* the result is on a 0..1 scale (sacrebleu reports 0..100). Two texts that are both empty after removing
  white space score 1 (identical); one empty text against a non-empty one scores 0.

Counting n-grams is the expensive part, so :class:`NgramProfile` holds them for one text and
:func:`chrf_matrix` builds each profile once, then counts matches once per unordered pair (the match count
is symmetric; only the denominators differ by direction).
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

DEFAULT_ORDER = 6
DEFAULT_BETA = 2.0


class NgramProfile:
    """Character n-gram counts of one text (orders 1..n), white space removed."""

    __slots__ = ("counts", "totals", "keys", "repeated", "n", "length")

    def __init__(self, text: str, n: int = DEFAULT_ORDER) -> None:
        if n < 1:
            raise ValueError(f"chrF order must be at least 1; got {n}")
        chars = "".join(text.split())
        self.n = n
        self.length = len(chars)
        self.counts: list[Counter[str]] = []
        self.totals: list[int] = []
        for order in range(1, n + 1):
            grams = Counter(chars[i : i + order] for i in range(len(chars) - order + 1))
            self.counts.append(grams)
            self.totals.append(max(0, len(chars) - order + 1))
        # Key views are kept so that pairwise intersections run at C speed; ``repeated`` holds the n-grams
        # seen more than once, the only ones whose shared count is not simply 1.
        self.keys = [c.keys() for c in self.counts]
        self.repeated = [{g for g, k in c.items() if k > 1} for c in self.counts]

    @property
    def empty(self) -> bool:
        return self.length == 0


def match_counts(a: NgramProfile, b: NgramProfile) -> list[int]:
    """Per order, the number of n-grams the two texts share (with multiplicity). Symmetric in a and b."""
    out: list[int] = []
    for order in range(min(a.n, b.n)):
        ka, kb = a.keys[order], b.keys[order]
        if not ka or not kb:
            out.append(0)
            continue
        # Every shared n-gram counts at least once; only those repeated in both texts count more. Most
        # n-grams of order 3 and up occur once, so the Python-level loop stays short.
        total = len(ka & kb)
        ra, rb = a.repeated[order], b.repeated[order]
        if ra and rb:
            ca, cb = a.counts[order], b.counts[order]
            for g in ra & rb:
                x, y = ca[g], cb[g]
                total += (x if x < y else y) - 1
        out.append(total)
    return out


def chrf_from_counts(
    hyp: NgramProfile, ref: NgramProfile, matches: Sequence[int], *, beta: float = DEFAULT_BETA
) -> float:
    """chrF of ``hyp`` against ``ref`` given their shared n-gram counts (see :func:`match_counts`)."""
    if hyp.empty and ref.empty:
        return 1.0
    if hyp.empty or ref.empty:
        return 0.0
    prec_sum = rec_sum = 0.0
    effective = 0
    for order, m in enumerate(matches):
        th, tr = hyp.totals[order], ref.totals[order]
        if th == 0 or tr == 0:
            continue
        effective += 1
        prec_sum += m / th
        rec_sum += m / tr
    if effective == 0:
        return 0.0
    prec, rec = prec_sum / effective, rec_sum / effective
    if prec + rec == 0.0:
        return 0.0
    b2 = beta * beta
    score = (1 + b2) * prec * rec / (b2 * prec + rec)
    # Rounding error can put identical texts a hair away from 1.
    return min(1.0, max(0.0, score))


def chrf_profiles(hyp: NgramProfile, ref: NgramProfile, *, beta: float = DEFAULT_BETA) -> float:
    return chrf_from_counts(hyp, ref, match_counts(hyp, ref), beta=beta)


def chrf(hypothesis: str, reference: str, *, n: int = DEFAULT_ORDER, beta: float = DEFAULT_BETA) -> float:
    """chrF of ``hypothesis`` against ``reference`` on a 0..1 scale (1 = identical up to white space)."""
    return chrf_profiles(NgramProfile(hypothesis, n), NgramProfile(reference, n), beta=beta)


def chrf_matrix(
    texts: Sequence[str], *, n: int = DEFAULT_ORDER, beta: float = DEFAULT_BETA
) -> list[list[float]]:
    """``m[i][j] = chrf(texts[i], texts[j])`` (row = hypothesis, column = reference); the diagonal is 1.

    Each text's n-grams are counted once and matches once per unordered pair, so 16 answers of about
    800 words take a fraction of a second.
    """
    profiles = [NgramProfile(t, n) for t in texts]
    k = len(profiles)
    m = [[1.0] * k for _ in range(k)]
    for i in range(k):
        for j in range(i + 1, k):
            shared = match_counts(profiles[i], profiles[j])
            m[i][j] = chrf_from_counts(profiles[i], profiles[j], shared, beta=beta)
            m[j][i] = chrf_from_counts(profiles[j], profiles[i], shared, beta=beta)
    return m

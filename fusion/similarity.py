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

import numpy as np

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
            # The n-grams as slices zipped together: the same strings as chars[i : i + order], built at
            # C speed.
            grams = Counter(map("".join, zip(*(chars[j:] for j in range(order))))) if order > 1 else Counter(chars)
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
            # min(x, y) - 1 per n-gram repeated in both; summed at C speed (long texts repeat most of
            # their short n-grams).
            ca, cb = a.counts[order], b.counts[order]
            both = ra & rb
            total += sum(map(min, map(ca.__getitem__, both), map(cb.__getitem__, both))) - len(both)
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
    800 words take a fraction of a second. Long texts (more than :data:`NUMPY_CHARS` characters in all)
    are counted with numpy instead (:func:`_match_matrix`): the same integer counts, so the same scores,
    in a small part of the time (8 texts of 150,000 characters: about 5 s in Python).
    """
    if n < 1:
        raise ValueError(f"chrF order must be at least 1; got {n}")
    k = len(texts)
    m = [[1.0] * k for _ in range(k)]
    if sum(len(t) for t in texts) > NUMPY_CHARS:
        sizes = [_Sizes("".join(t.split()), n) for t in texts]
        shared = _match_matrix([sz.chars for sz in sizes], n)
        for i in range(k):
            for j in range(i + 1, k):
                counts = [int(shared[o][i, j]) for o in range(n)]
                m[i][j] = chrf_from_counts(sizes[i], sizes[j], counts, beta=beta)  # type: ignore[arg-type]
                m[j][i] = chrf_from_counts(sizes[j], sizes[i], counts, beta=beta)  # type: ignore[arg-type]
        return m
    profiles = [NgramProfile(t, n) for t in texts]
    for i in range(k):
        for j in range(i + 1, k):
            shared_counts = match_counts(profiles[i], profiles[j])
            m[i][j] = chrf_from_counts(profiles[i], profiles[j], shared_counts, beta=beta)
            m[j][i] = chrf_from_counts(profiles[j], profiles[i], shared_counts, beta=beta)
    return m


# Above this many characters in all, :func:`chrf_matrix` counts n-grams with numpy.
NUMPY_CHARS = 50_000


class _Sizes:
    """What :func:`chrf_from_counts` reads of a profile (its n-gram totals), without the n-grams."""

    __slots__ = ("chars", "totals", "length", "n")

    def __init__(self, chars: str, n: int) -> None:
        self.chars = chars
        self.n = n
        self.length = len(chars)
        self.totals = [max(0, len(chars) - order + 1) for order in range(1, n + 1)]

    @property
    def empty(self) -> bool:
        return self.length == 0


def _match_matrix(texts: Sequence[str], n: int) -> list[np.ndarray]:
    """Per order 1..n, the k x k matrix of n-grams shared by each pair of texts (white space already
    removed), with multiplicity: the sum over n-grams of the smaller count, as :func:`match_counts`.

    Every n-gram gets an integer id: an order-o gram is (id of its first o-1 characters, its last
    character), numbered by ``np.unique`` over all texts at once, so that ids are shared between texts
    and never overflow whatever the alphabet. Grams never span two texts."""
    k = len(texts)
    codes = [
        np.frombuffer(t.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64) for t in texts
    ]
    lengths = np.array([len(c) for c in codes], dtype=np.int64)
    flat = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(k, dtype=np.int64), lengths)
    ends = np.repeat(np.cumsum(lengths), lengths)  # one past the last position of each position's text
    base = int(flat.max()) + 1 if flat.size else 1
    out: list[np.ndarray] = []
    ids = flat  # order 1: the character itself
    starts = np.arange(flat.size, dtype=np.int64)  # positions where a gram of the current order fits
    for order in range(1, n + 1):
        if order > 1:
            fits = starts + order <= ends[starts]
            prev_ids, starts = ids[fits], starts[fits]
            ids = prev_ids * base + flat[starts + order - 1]
        gram, ids = np.unique(ids, return_inverse=True)
        per_text = np.bincount(owner[starts] * gram.size + ids, minlength=k * gram.size).reshape(k, gram.size)
        shared = np.zeros((k, k), dtype=np.int64)
        for i in range(k):
            for j in range(i + 1, k):
                shared[i, j] = shared[j, i] = int(np.minimum(per_text[i], per_text[j]).sum())
        out.append(shared)
        del per_text, gram
    return out

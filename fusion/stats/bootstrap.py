"""Percentile-bootstrap intervals over runs.

Votes on the same run are not independent (same prompt, same pair of texts), so an interval resamples
*runs* with replacement and takes all of their votes: the statistic of a resample is sum(run sums) /
sum(run counts) over the drawn runs, and the interval is the central ``confidence`` share of
:data:`N_BOOT` such resamples, drawn from ``numpy.random.default_rng(seed)`` (the same votes and seed give
the same interval on every call and machine).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Below this many runs a percentile bootstrap has too few distinct resamples to mean anything (one run
# always gives a zero-width "interval"); the same threshold the page uses for a meaningful kappa.
MIN_RUNS_FOR_INTERVAL = 5
N_BOOT = 2000
SEED = 0
CONFIDENCE = 0.95


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


"""Summaries of per-run numbers (the attribution statistics: copied fraction, contributing candidates, share
of the pick)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


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


def attribution_values(
    copied_fraction: Sequence[float | None],
    shares: Sequence[Sequence[float]],
    bon_index: Sequence[int | None],
    *,
    min_share: float = 0.05,
) -> dict[str, list[float | int | None]]:
    """Per attributed run (parallel inputs, one entry per run): the copied fraction; how many candidates
    supply at least ``min_share`` of the fused text (a few shared words make every candidate a nominal
    source, hence the threshold); and the share found in the Best-of-N pick (``None`` without a pick, or
    with an index outside the shares). The inputs of :func:`distribution` for the attribution statistics."""
    if not len(copied_fraction) == len(shares) == len(bon_index):
        raise ValueError("Every attribution column must have one entry per run.")
    return {
        "copied": list(copied_fraction),
        "contributors": [sum(1 for s in run if s >= min_share) for run in shares],
        "bon_share": [run[i] if i is not None and 0 <= i < len(run) else None for run, i in zip(shares, bon_index)],
    }

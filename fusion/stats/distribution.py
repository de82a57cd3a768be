"""Summaries of per-run numbers (the attribution statistics: copied fraction, contributing candidates, share
of the pick)."""

from __future__ import annotations

import math
from collections.abc import Iterable

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

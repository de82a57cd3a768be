"""The reading aids of a run as output-line fields: what the fused text kept of each candidate
(:mod:`fusion.kept`) and the Best-of-N pick against the fusion, sentence by sentence (:mod:`fusion.diff`).

``fuse`` and ``batch`` write these fields on every output line, so that a script reading the output can
tell what the fusion kept and dropped without the engine.
"""

from __future__ import annotations

from typing import Any

from fusion.degenerate import run_warnings
from fusion.diff import run_diff
from fusion.kept import run_kept
from fusion.types import Run

__all__ = ["readout_fields"]


def readout_fields(run: Run) -> dict[str, Any]:
    """``{"kept": [...] | None, "diff": {...} | None}`` for a computed run.

    ``kept`` has one entry per candidate, by index: :meth:`fusion.kept.KeptReport.to_dict`, or ``None``
    for a failed candidate; it is ``None`` as a whole when the run has no fused text. ``diff`` is
    :meth:`fusion.diff.SentenceDiff.to_dict`, or ``None`` without a fused text or without a pick.
    ``warnings`` lists signs that the fused answer is not an answer (:mod:`fusion.degenerate`); the text is
    kept as it is.
    """
    reports = run_kept(run)
    diff = run_diff(run)
    return {
        "kept": [r.to_dict() if r else None for r in reports] if reports is not None else None,
        "diff": diff.to_dict() if diff is not None else None,
        "warnings": [w.to_dict() for w in run_warnings(run)],
    }

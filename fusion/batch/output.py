"""A batch's output file: the JSON line of a run, and reading an existing file back for resuming (a
half-written last line cut off, unreadable or duplicate lines dropped, rewrites atomic)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusion.batch.input import BatchItem
from fusion.types import Run


def _finite(value: Any) -> Any:
    """NaN and infinities become null: strict JSON loaders (the datasets library) refuse them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def output_record(run: Run, item: BatchItem) -> dict[str, Any]:
    """The output line of a run: ``Run.to_dict()`` plus ``input_id``, ``input_line``, and ``kept`` and
    ``diff`` as ``fuse`` writes them (see :func:`fusion.readout.readout_fields`)."""
    return run_output_record(run, item.input_id, item.line)


def run_output_record(run: Run, input_id: str | int | None, input_line: int | None) -> dict[str, Any]:
    """:func:`output_record` from the input's id and line (a stored run rebuilt into a batch line)."""
    from fusion.readout import readout_fields

    record = _finite(run.to_dict())
    record.update(_finite(readout_fields(run)))
    record["input_id"] = input_id
    record["input_line"] = input_line
    return record


@dataclass
class OutputState:
    """What an existing output file holds: its valid lines by run id (first one wins), kept raw."""

    path: Path
    lines: list[tuple[str | None, str]] = field(default_factory=list)  # (run id or None, raw line with "\n")
    by_run: dict[str, dict[str, Any]] = field(default_factory=dict)
    cut_tail: bool = False  # a half-written last line was removed
    dropped: int = 0  # unreadable or duplicate lines left out

    def rewrite(self, drop: Iterable[str] = ()) -> None:
        """Replace the file atomically with the kept lines, without the runs in ``drop``."""
        gone = set(drop)
        before = len(self.lines)
        self.lines = [(rid, raw) for rid, raw in self.lines if rid is None or rid not in gone]
        self.dropped += before - len(self.lines)
        for rid in gone:
            self.by_run.pop(rid, None)
        _atomic_write(self.path, "".join(raw for _, raw in self.lines))


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_output(path: str | os.PathLike[str]) -> OutputState:
    """Read an output file for resuming, cutting off a half-written last line and rewriting the file
    without unreadable or duplicate lines (there are none unless the file was edited by hand)."""
    p = Path(path)
    state = OutputState(path=p)
    if not p.exists():
        return state
    data = p.read_bytes()
    if data and not data.endswith(b"\n"):
        # Killed in the middle of a write: everything after the last newline is half a record.
        cut = data.rfind(b"\n") + 1
        with p.open("r+b") as handle:
            handle.truncate(cut)
        data = data[:cut]
        state.cut_tail = True
    bad = 0
    for raw in data.splitlines(keepends=True):
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            obj = None
        rid = obj.get("id") if isinstance(obj, dict) else None
        if not isinstance(rid, str) or rid in state.by_run:
            if raw.strip():
                bad += 1
            continue
        state.by_run[rid] = obj  # type: ignore[assignment]
        state.lines.append((rid, raw.decode("utf-8")))
    if bad:
        state.rewrite()
        state.dropped = bad
    return state

"""Exports of votes and of training data built from them.

JSON Lines files are written for the Hugging Face ``datasets`` JSON loader (pyarrow underneath): UTF-8,
one object per line, the same keys in every line, one JSON type per key (nulls aside), no NaN or
Infinity. Nothing here can leak an API key: none is ever stored.

Each function takes a path (written to a temporary file, then renamed into place, so a failed export never
leaves half a file) or an open text file, and returns the number of records written.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from sqlalchemy import Engine, and_, exists, func, select

from fusion.errors import InputError
from storage.sql import candidates, fusions, picks, reading, run_has_tag, runs, valid_text, votes
from storage.votes import VoteRecord, all_votes

PathOrFile = str | os.PathLike[str] | IO[str]

VOTE_FIELDS = (
    "vote_id",
    "run_id",
    "annotator",
    "choice",
    "a_is",
    "winner",
    "blind",
    "comment",
    "ranking",
    "created_at",
    "updated_at",
    "n",
    "models",
    "tags",
    "source",
    "bon_index",
    "bon_method",
    "fused_method",
    "copied_fraction",
    "prompt",
)
SFT_STYLES = ("completion", "messages")
# A spreadsheet runs a cell that starts with one of these as a formula; model and annotator text is untrusted.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@contextmanager
def _target(path_or_file: PathOrFile, *, newline: str | None = None) -> Iterator[IO[str]]:
    if hasattr(path_or_file, "write"):
        yield path_or_file  # type: ignore[misc]
        return
    path = Path(os.fspath(path_or_file))  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _clean_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _write_jsonl(handle: IO[str], records: Iterable[dict[str, Any]]) -> int:
    count = 0
    for record in records:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False)
        handle.write(valid_text(line) + "\n")
        count += 1
    return count


def _vote_dict(v: VoteRecord) -> dict[str, Any]:
    """A vote with stable types: text is never null (empty instead), lists are never null (empty instead)."""
    return {
        "vote_id": int(v.id),
        "run_id": v.run_id,
        "annotator": v.annotator,
        "choice": v.choice,
        "a_is": v.a_is,
        "winner": v.winner,
        "blind": bool(v.blind),
        "comment": v.comment or "",
        "ranking": [int(i) for i in (v.ranking or [])],
        "created_at": float(v.created_at),
        "updated_at": float(v.updated_at),
        "n": int(v.n),
        "models": list(v.models),
        "tags": list(v.tags),
        "source": v.source,
        "bon_index": None if v.bon_index is None else int(v.bon_index),
        "bon_method": v.bon_method or "",
        "fused_method": v.fused_method or "",
        "copied_fraction": _clean_float(v.copied_fraction),
        "prompt": v.prompt,
    }


def export_votes_jsonl(engine: Engine, path_or_file: PathOrFile, tag: str | None = None) -> int:
    """One JSON object per vote (fields :data:`VOTE_FIELDS`), oldest first."""
    with _target(path_or_file) as handle:
        return _write_jsonl(handle, (_vote_dict(v) for v in all_votes(engine, tag=tag)))


def _csv_cell(value: Any, safe: bool) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        value = valid_text(value)
        if safe and value.startswith(_FORMULA_START):
            return "'" + value
    return value


def export_votes_csv(
    engine: Engine, path_or_file: PathOrFile, tag: str | None = None, *, safe_for_spreadsheets: bool = True
) -> int:
    """One row per vote with a header (:data:`VOTE_FIELDS`); lists as JSON text.

    With ``safe_for_spreadsheets`` a text cell starting with ``= + - @`` gets a leading apostrophe so a
    spreadsheet shows it instead of running it as a formula.
    """
    with _target(path_or_file, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(VOTE_FIELDS)
        count = 0
        for v in all_votes(engine, tag=tag):
            record = _vote_dict(v)
            writer.writerow([_csv_cell(record[k], safe_for_spreadsheets) for k in VOTE_FIELDS])
            count += 1
        return count


def export_dpo_jsonl(
    engine: Engine,
    path_or_file: PathOrFile,
    tag: str | None = None,
    *,
    per_vote: bool = False,
    include_non_blind: bool = False,
) -> int:
    """Preference pairs ``{"prompt", "chosen", "rejected", "run_id", ...}`` from decisive votes.

    By default one pair per run, by the majority of its decisive blind votes: ``"votes": {"chosen": k,
    "rejected": m}`` and the ``"annotators"`` behind them. A run whose decisive votes are split evenly is
    left out (its annotators disagree, so it cannot say which answer is better), and so are votes cast after
    the voter saw the labels unless ``include_non_blind``. With ``per_vote`` every decisive vote gives its
    own pair (``"annotator"``, ``"blind"``), contradictions included, for those who weigh them themselves.
    Ties and "both bad" never make a pair, nor do runs whose two texts are the same (they teach nothing).
    """
    bon_text = candidates.c.text
    stmt = (
        select(
            votes.c.run_id, votes.c.annotator, votes.c.winner, votes.c.blind, runs.c.prompt, bon_text,
            fusions.c.text.label("fused"),
        )
        .select_from(votes.join(runs, runs.c.id == votes.c.run_id))
        .join(picks, picks.c.run_id == votes.c.run_id)
        .join(candidates, and_(candidates.c.run_id == votes.c.run_id, candidates.c.idx == picks.c.idx))
        .join(fusions, fusions.c.run_id == votes.c.run_id)
        .where(votes.c.winner.in_(("fused", "bon")), fusions.c.error.is_(None))
        .order_by(votes.c.created_at, votes.c.id)
    )  # fmt: skip
    if tag:
        stmt = stmt.where(run_has_tag(tag))
    if not include_non_blind and not per_vote:
        stmt = stmt.where(votes.c.blind.is_(True))

    with reading(engine) as conn:
        rows = conn.execute(stmt).all()
    with _target(path_or_file) as handle:
        return _write_jsonl(handle, _per_vote_records(rows) if per_vote else _majority_records(rows))


def _pair(winner: str, bon: str, fused: str) -> tuple[str, str]:
    """(chosen, rejected), from which side won."""
    return (fused, bon) if winner == "fused" else (bon, fused)

def _per_vote_records(rows: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """A DPO pair per decisive vote on a pair that differs."""
    for run_id, annotator, winner, blind, prompt, bon, fused in rows:
        if bon.strip() == fused.strip():
            continue
        chosen, rejected = _pair(winner, bon, fused)
        yield {
            "prompt": prompt, "chosen": chosen, "rejected": rejected, "run_id": run_id,
            "annotator": annotator, "blind": bool(blind),
        }  # fmt: skip

def _majority_records(rows: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """A DPO pair per run whose decisive votes have a majority (a tie gives none)."""
    by_run: dict[str, dict[str, Any]] = {}
    for run_id, annotator, winner, _blind, prompt, bon, fused in rows:
        if bon.strip() == fused.strip():
            continue
        entry = by_run.setdefault(
            run_id, {"prompt": prompt, "bon": bon, "fused": fused, "fused_won": [], "bon_won": []}
        )
        entry["fused_won" if winner == "fused" else "bon_won"].append(annotator)
    for run_id, e in by_run.items():  # in the order of each run's first vote
        n_fused, n_bon = len(e["fused_won"]), len(e["bon_won"])
        if n_fused == n_bon:
            continue
        winner = "fused" if n_fused > n_bon else "bon"
        chosen, rejected = _pair(winner, e["bon"], e["fused"])
        majority = e["fused_won"] if winner == "fused" else e["bon_won"]
        yield {
            "prompt": e["prompt"], "chosen": chosen, "rejected": rejected, "run_id": run_id,
            "votes": {"chosen": len(majority), "rejected": min(n_fused, n_bon)},
            "annotators": sorted(set(majority)),
        }  # fmt: skip


def export_sft_jsonl(
    engine: Engine,
    path_or_file: PathOrFile,
    tag: str | None = None,
    *,
    style: str = "completion",
    only_winning: bool = False,
) -> int:
    """Fused answers as supervised fine-tuning data, one per run with a fused answer, oldest first.

    ``style="completion"`` writes ``{"prompt", "completion"}``; ``style="messages"`` writes ``{"messages":
    [system?, user, assistant]}`` (the system message only where the run had one). ``only_winning`` keeps
    the runs whose fusion won or tied at least one vote.
    """
    if style not in SFT_STYLES:
        raise InputError(f"style must be one of {', '.join(SFT_STYLES)}; got {style!r}.")
    stmt = (
        select(runs.c.prompt, runs.c.system, fusions.c.text)
        .select_from(runs.join(fusions, fusions.c.run_id == runs.c.id))
        .where(fusions.c.error.is_(None), func.trim(fusions.c.text) != "")
        .order_by(runs.c.created_at, runs.c.id)
    )
    if tag:
        stmt = stmt.where(run_has_tag(tag))
    if only_winning:
        stmt = stmt.where(
            exists(select(votes.c.id).where(votes.c.run_id == runs.c.id, votes.c.winner.in_(("fused", "tie"))))
        )

    def records(rows: Iterable[Any]) -> Iterator[dict[str, Any]]:
        for prompt, system, fused in rows:
            if not fused.strip():
                continue
            if style == "completion":
                yield {"prompt": prompt, "completion": fused}
            else:
                messages = [{"role": "system", "content": system}] if system else []
                messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": fused}]
                yield {"messages": messages}

    with reading(engine) as conn:
        rows = conn.execute(stmt).all()
    with _target(path_or_file) as handle:
        return _write_jsonl(handle, records(rows))

"""Exports of votes and of training data built from them.

JSON Lines files are written for the Hugging Face ``datasets`` JSON loader (pyarrow underneath): UTF-8,
one object per line, the same keys in every line, one JSON type per key (nulls aside), no NaN or
Infinity. Nothing here can leak an API key: none is ever stored.

Conventions shared by every file:
- timestamps are ISO 8601 in UTC with a ``Z`` (``2026-12-01T22:26:34.125000Z``), microseconds kept so a
  replaced vote's ``updated_at`` stays visibly later than its ``created_at``;
- candidates are numbered from 1, as the pages name them ("Candidate 1"): a vote's ``ranking`` lists
  candidate numbers, best first, and ``bon_candidate`` is the number of the Best-of-N pick;
- the run's system message is kept wherever the format has room for it (see each function).

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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from sqlalchemy import Engine, and_, exists, func, select

from fusion.errors import InputError
from fusion.pairwise import JUDGE_PREFIX
from fusion.text import plural
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
    "bon_candidate",
    "bon_method",
    "fused_method",
    "copied_fraction",
    "system",
    "prompt",
)
SFT_STYLES = ("completion", "messages")
# TRL's two layouts of a preference dataset: plain strings, or lists of {"role", "content"} messages.
DPO_FORMATS = ("standard", "conversational")
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


def iso_utc(epoch_seconds: float) -> str:
    """``2026-12-01T22:26:34.125000Z``: an epoch timestamp as ISO 8601 in UTC (what every export writes)."""
    stamp = datetime.fromtimestamp(float(epoch_seconds), tz=timezone.utc)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


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


def _systems_of_voted_runs(engine: Engine) -> dict[str, str]:
    # VoteRecord does not carry the run's system message; one extra query reads it for every voted run.
    stmt = select(runs.c.id, runs.c.system).where(runs.c.id.in_(select(votes.c.run_id)), runs.c.system.is_not(None))
    with reading(engine) as conn:
        return {run_id: system for run_id, system in conn.execute(stmt)}


def _vote_dict(v: VoteRecord, system: str) -> dict[str, Any]:
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
        "ranking": [int(i) + 1 for i in (v.ranking or [])],
        "created_at": iso_utc(v.created_at),
        "updated_at": iso_utc(v.updated_at),
        "n": int(v.n),
        "models": list(v.models),
        "tags": list(v.tags),
        "source": v.source,
        "bon_candidate": None if v.bon_index is None else int(v.bon_index) + 1,
        "bon_method": v.bon_method or "",
        "fused_method": v.fused_method or "",
        "copied_fraction": _clean_float(v.copied_fraction),
        "system": system,
        "prompt": v.prompt,
    }


def _vote_dicts(engine: Engine, tag: str | None) -> Iterator[dict[str, Any]]:
    systems = _systems_of_voted_runs(engine)
    for v in all_votes(engine, tag=tag):
        yield _vote_dict(v, systems.get(v.run_id, ""))


def export_votes_jsonl(engine: Engine, path_or_file: PathOrFile, tag: str | None = None) -> int:
    """One JSON object per vote (fields :data:`VOTE_FIELDS`), oldest first; ``system`` is ``""`` for a run
    without a system message."""
    with _target(path_or_file) as handle:
        return _write_jsonl(handle, _vote_dicts(engine, tag))


def _csv_cell(value: Any, excel_safe: bool) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        value = valid_text(value)
        if excel_safe and value.startswith(_FORMULA_START):
            return "'" + value
    return value


def export_votes_csv(
    engine: Engine, path_or_file: PathOrFile, tag: str | None = None, *, excel_safe: bool = False
) -> int:
    """One row per vote with a header (:data:`VOTE_FIELDS`); lists as JSON text, timestamps ISO 8601.

    Text is written exactly as stored, so ``load_dataset("csv", ...)`` or ``pandas.read_csv`` read back
    the same strings (pass ``keep_default_na=False`` to keep an empty comment, or a prompt reading "NA",
    as text rather than a missing value). ``excel_safe`` is for opening the file in a spreadsheet: a text
    cell starting with ``= + - @``, a tab or a carriage return gets a leading apostrophe so the spreadsheet
    shows it instead of running it as a formula; the text is then no longer exact.
    """
    with _target(path_or_file, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(VOTE_FIELDS)
        count = 0
        for record in _vote_dicts(engine, tag):
            writer.writerow([_csv_cell(record[k], excel_safe) for k in VOTE_FIELDS])
            count += 1
        return count


class PairCount(int):
    """The number of preference pairs written (an ``int``, so a caller that prints a count keeps working),
    with the runs left out and why: :meth:`summary` says it in one line."""

    conflicts_left_out: int  # decisive votes on the run disagree; kept instead with keep_conflicts=True
    conflicts_kept: int  # written with "conflict": true (keep_conflicts=True, or per_vote)
    even_splits: int  # as many decisive votes each way: no majority, never a pair
    identical: int  # the fused text is the pick verbatim: nothing to prefer

    def __new__(
        cls, written: int, *, conflicts_left_out: int = 0, conflicts_kept: int = 0, even_splits: int = 0,
        identical: int = 0,
    ) -> "PairCount":  # fmt: skip
        self = super().__new__(cls, written)
        self.conflicts_left_out = conflicts_left_out
        self.conflicts_kept = conflicts_kept
        self.even_splits = even_splits
        self.identical = identical
        return self

    def left_out(self) -> str:
        """What was left out, for a summary line ("" if nothing): "1 run whose annotators disagree (keep
        them with --keep-conflicts), 2 runs with their decisive votes split evenly"."""
        out = []
        if self.conflicts_left_out:
            out.append(
                f"{plural(self.conflicts_left_out, 'run')} whose annotators disagree (keep them with --keep-conflicts)"
            )
        if self.even_splits:
            out.append(f"{plural(self.even_splits, 'run')} with the decisive votes split evenly")
        if self.identical:
            out.append(f"{plural(self.identical, 'run')} whose fused answer is the pick itself")
        return ", ".join(out)

    def summary(self) -> str:
        """The count and what was left out, in one line: "2 preference pairs (1 marked "conflict"); left
        out: 1 run with the decisive votes split evenly"."""
        head = plural(int(self), "preference pair")
        if self.conflicts_kept:
            head += f' ({self.conflicts_kept:,} marked "conflict")'
        rest = self.left_out()
        return f"{head}; left out: {rest}" if rest else head


@dataclass
class _RunVotes:
    """A run's decisive votes, gathered before any pair is made."""

    prompt: str
    system: str
    created_at: float
    bon: str
    fused: str
    fused_won: list[str] = field(default_factory=list)  # annotators, in vote order
    bon_won: list[str] = field(default_factory=list)

    @property
    def conflict(self) -> bool:
        return bool(self.fused_won) and bool(self.bon_won)


def _pair_fields(dpo_format: str, prompt: str, system: str, chosen: str, rejected: str) -> dict[str, Any]:
    if dpo_format == "conversational":
        turns = [{"role": "system", "content": system}] if system else []
        turns.append({"role": "user", "content": prompt})
        return {
            "prompt": turns,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
    # A plain-string prompt has no place for a system message that every chat template would read the same
    # way, so it gets a column of its own ("" when the run had none), which TRL leaves alone.
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "system": system}


def export_dpo_jsonl(
    engine: Engine,
    path_or_file: PathOrFile,
    tag: str | None = None,
    *,
    dpo_format: str = "standard",
    per_vote: bool = False,
    include_non_blind: bool = False,
    keep_conflicts: bool = False,
    include_judges: bool = False,
) -> PairCount:
    """Preference pairs (Best-of-N pick against fused answer) from decisive votes, in one of TRL's
    preference dataset formats, one pair per run by default.

    ``dpo_format="standard"``: ``{"prompt": str, "chosen": str, "rejected": str, "system": str}``; the
    run's system message is in ``system`` ("" for none), for training code to put in front of the prompt
    with its chat template. ``dpo_format="conversational"``: ``"prompt"`` is ``[system?, user]`` messages
    and ``"chosen"`` / ``"rejected"`` are one assistant message each, as TRL's conversational preference
    format has it. Both add ``run_id``, ``run_created_at`` and ``conflict`` (the run's decisive votes do
    not all agree).

    The votes of each run are gathered first (decisive blind votes; the votes cast after the voter saw
    the labels too with ``include_non_blind``) and make one pair by their majority, with ``"votes":
    {"chosen": k, "rejected": m}`` and the ``"annotators"`` of the majority. A run whose annotators
    disagree is left out, unless ``keep_conflicts`` (then it is written by its majority with ``"conflict":
    true``); a run split evenly has no majority and is always left out. With ``per_vote`` every decisive
    vote, blind or not, gives its own pair (``"annotator"``, ``"blind"``), contradictions included and
    marked. Ties and "both bad" never make a pair, nor does a run whose two texts are the same.

    Returns a :class:`PairCount`: the pairs written, and how many runs were left out and why.
    """
    if dpo_format not in DPO_FORMATS:
        raise InputError(f"dpo_format must be one of {', '.join(DPO_FORMATS)}; got {dpo_format!r}.")
    stmt = (
        select(
            votes.c.run_id, votes.c.annotator, votes.c.winner, votes.c.blind, runs.c.prompt, runs.c.system,
            runs.c.created_at, candidates.c.text.label("bon"), fusions.c.text.label("fused"),
        )
        .select_from(votes.join(runs, runs.c.id == votes.c.run_id))
        .join(picks, picks.c.run_id == votes.c.run_id)
        .join(candidates, and_(candidates.c.run_id == votes.c.run_id, candidates.c.idx == picks.c.idx))
        .join(fusions, fusions.c.run_id == votes.c.run_id)
        .where(votes.c.winner.in_(("fused", "bon")), fusions.c.error.is_(None))
        .order_by(votes.c.created_at, votes.c.id)
    )  # fmt: skip
    if not include_judges:
        # A pairwise judge's verdicts are stored as votes of "judge:<model>"; preference data is people's.
        stmt = stmt.where(~votes.c.annotator.startswith(JUDGE_PREFIX, autoescape=True))
    if tag:
        stmt = stmt.where(run_has_tag(tag))
    if not include_non_blind and not per_vote:
        stmt = stmt.where(votes.c.blind.is_(True))
    with reading(engine) as conn:
        rows = conn.execute(stmt).all()

    by_run: dict[str, _RunVotes] = {}  # in the order of each run's first vote
    decisive: list[tuple[str, str, str, bool]] = []  # (run, annotator, winner, blind), in vote order
    identical: set[str] = set()
    for run_id, annotator, winner, blind, prompt, system, created_at, bon, fused in rows:
        if bon.strip() == fused.strip():
            identical.add(run_id)
            continue
        entry = by_run.get(run_id)
        if entry is None:
            entry = by_run[run_id] = _RunVotes(prompt, system or "", float(created_at), bon, fused)
        (entry.fused_won if winner == "fused" else entry.bon_won).append(annotator)
        decisive.append((run_id, annotator, winner, bool(blind)))

    def common(run_id: str, e: _RunVotes, winner: str) -> dict[str, Any]:
        chosen, rejected = (e.fused, e.bon) if winner == "fused" else (e.bon, e.fused)
        return {
            **_pair_fields(dpo_format, e.prompt, e.system, chosen, rejected),
            "run_id": run_id,
            "run_created_at": iso_utc(e.created_at),
            "conflict": e.conflict,
        }

    counts = {"conflicts_left_out": 0, "conflicts_kept": 0, "even_splits": 0}

    def per_vote_records() -> Iterator[dict[str, Any]]:
        for run_id, annotator, winner, blind in decisive:
            e = by_run[run_id]
            counts["conflicts_kept"] += e.conflict
            yield {**common(run_id, e, winner), "annotator": annotator, "blind": blind}

    def majority_records() -> Iterator[dict[str, Any]]:
        for run_id, e in by_run.items():
            n_fused, n_bon = len(e.fused_won), len(e.bon_won)
            if n_fused == n_bon:
                counts["even_splits"] += 1
                continue
            if e.conflict and not keep_conflicts:
                counts["conflicts_left_out"] += 1
                continue
            counts["conflicts_kept"] += e.conflict
            winner = "fused" if n_fused > n_bon else "bon"
            majority = e.fused_won if winner == "fused" else e.bon_won
            yield {
                **common(run_id, e, winner),
                "votes": {"chosen": len(majority), "rejected": min(n_fused, n_bon)},
                "annotators": sorted(set(majority)),
            }

    with _target(path_or_file) as handle:
        written = _write_jsonl(handle, per_vote_records() if per_vote else majority_records())
    return PairCount(written, identical=len(identical), **counts)


def export_sft_jsonl(
    engine: Engine,
    path_or_file: PathOrFile,
    tag: str | None = None,
    *,
    style: str = "completion",
    only_winning: bool = False,
) -> int:
    """Fused answers as supervised fine-tuning data, one per run with a fused answer, oldest first.

    ``style="completion"`` writes TRL's standard prompt-completion format ``{"prompt", "completion"}``
    with the run's system message in ``"system"`` ("" for none); ``style="messages"`` writes its
    conversational language-modelling format ``{"messages": [system?, user, assistant]}``, the system
    message first where the run had one. Both add ``run_id`` and ``run_created_at``. ``only_winning``
    keeps the runs whose fusion won or tied at least one vote.
    """
    if style not in SFT_STYLES:
        raise InputError(f"style must be one of {', '.join(SFT_STYLES)}; got {style!r}.")
    stmt = (
        select(runs.c.id, runs.c.prompt, runs.c.system, runs.c.created_at, fusions.c.text)
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
        for run_id, prompt, system, created_at, fused in rows:
            if not fused.strip():
                continue
            if style == "completion":
                record: dict[str, Any] = {"prompt": prompt, "completion": fused, "system": system or ""}
            else:
                messages = [{"role": "system", "content": system}] if system else []
                messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": fused}]
                record = {"messages": messages}
            yield {**record, "run_id": run_id, "run_created_at": iso_utc(created_at)}

    with reading(engine) as conn:
        rows = conn.execute(stmt).all()
    with _target(path_or_file) as handle:
        return _write_jsonl(handle, records(rows))

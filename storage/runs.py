"""A run in the database: save it (replacing a stored one), load it back, delete it, ask what is stored.

Plain functions taking an Engine; :class:`fusion.types.Run` in and out. Transactions and retries: see
``storage.sql``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import Connection, Engine, and_, delete, insert, select, update

from fusion.errors import InputError
from fusion.types import Run, model_groups
from storage.sql import (
    candidates,
    dumps,
    fusions,
    loads,
    picks,
    reading,
    run_model_groups,
    run_tags,
    runs,
    scrub,
    tags_by_run,
    valid_text,
    vote_tokens,
    votes,
    write,
)

MAX_TAG_CHARS = 200


def _run_models(run: Run) -> list[str]:
    seen: dict[str, None] = {}
    for name in [m.model for m in run.pool] + [c.model for c in run.candidates]:
        if name:
            seen.setdefault(name, None)
    return list(seen)


def _dedupe(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _pair_texts(conn: Connection, run_id: str) -> tuple[str | None, str | None]:
    """The (Best-of-N text, fused text) a stored run would show an annotator."""
    row = conn.execute(
        select(candidates.c.text, fusions.c.text.label("fused"))
        .select_from(runs.outerjoin(picks, picks.c.run_id == runs.c.id))
        .outerjoin(candidates, and_(candidates.c.run_id == runs.c.id, candidates.c.idx == picks.c.idx))
        .outerjoin(fusions, fusions.c.run_id == runs.c.id)
        .where(runs.c.id == run_id)
    ).first()
    if row is None:
        return None, None
    return row[0], row[1]


def _pair_rule(bon_index: int | None, fused_text: str | None, fused_error: str | None) -> bool:
    """What record_vote accepts: a Best-of-N pick, and a fused answer without error that is not blank."""
    return bon_index is not None and fused_text is not None and fused_error is None and bool(fused_text.strip())


def _same_texts(bon: str | None, fused: str | None) -> bool:
    # The rule of is_identical, applied to the texts as stored.
    return bon is not None and fused is not None and bon.strip() == fused.strip()


@dataclass(frozen=True)
class _RunRows:
    """A run as the values of its rows, checked and scrubbed before any transaction starts."""

    run: Run
    data: dict[str, Any]  # Run.to_dict(), scrubbed
    tags: list[str]
    groups: list[str]
    pair: tuple[str | None, str | None]  # (Best-of-N text, fused text) as they will be stored
    has_pair: bool
    run_values: dict[str, Any]


def _run_rows(run: Run) -> _RunRows:
    if not isinstance(run.id, str) or not run.id.strip():
        raise InputError("A run needs a non-empty id to be saved.")
    if len(run.id) > 64:
        raise InputError(f"Run id {run.id[:20]!r}... is longer than 64 characters.")
    data = scrub(run.to_dict())  # the serialised form: ModelSpec.to_dict leaves API keys out
    tags = _dedupe(data["tags"])
    for tag in tags:
        if not isinstance(tag, str) or len(tag) > MAX_TAG_CHARS:
            raise InputError(f"Tags must be strings of at most {MAX_TAG_CHARS} characters; got {tag!r:.60}.")
    bon_text = run.bon_text
    new_pair = (
        valid_text(bon_text) if bon_text is not None else None,
        data["fused"]["text"] if data["fused"] else None,
    )
    has_pair = _pair_rule(
        data["bon"]["index"] if data["bon"] else None,
        new_pair[1],
        data["fused"]["error"] if data["fused"] else None,
    )
    run_values = {
        "prompt": data["prompt"]["text"],
        "system": data["prompt"]["system"],
        "source": data["source"],
        "n": len(run.candidates),
        "models": dumps(scrub(_run_models(run))),
        "pool": dumps(data["pool"]),
        "settings": dumps(data["settings"]),
    }
    groups = model_groups(scrub(_run_models(run)), data["source"])
    return _RunRows(run, data, tags, groups, new_pair, has_pair, run_values)


def save_run(engine: Engine, run: Run) -> str:
    """Insert the run, or replace a stored run with the same id, atomically; return its id.

    Replacing keeps the stored ``created_at`` (only ``updated_at`` moves), so re-saving a run (reopening a
    built-in scenario, a batch that resumes) does not move it in History or in the annotation queue; the
    loaded run then carries the original ``created_at``, whatever ``run.created_at`` said.

    Votes on the run are kept when the pair they judged (Best-of-N text, fused text) is unchanged, and
    deleted otherwise: a vote on texts that no longer exist would pair old judgements with new answers.
    Whether the pair is identical (``same_as_pick``) is stored with the fusion, so the annotation queue
    knows it without loading the run.
    """
    rows = _run_rows(run)

    def work(conn: Connection) -> str:
        now = time.time()
        # FOR UPDATE (PostgreSQL; SQLite's write transaction already holds the lock): a concurrent vote,
        # which reads this row FOR SHARE, waits for the new pair or is seen by the pair check below.
        exists_now = (
            conn.execute(select(runs.c.id).where(runs.c.id == run.id).with_for_update()).first() is not None
        )
        if exists_now:
            if _pair_texts(conn, run.id) != rows.pair:
                conn.execute(delete(vote_tokens).where(vote_tokens.c.run_id == run.id))
                conn.execute(delete(votes).where(votes.c.run_id == run.id))
            for child in (candidates, picks, fusions, run_tags, run_model_groups):
                conn.execute(delete(child).where(child.c.run_id == run.id))
            conn.execute(update(runs).where(runs.c.id == run.id).values(**rows.run_values, updated_at=now))
        else:
            conn.execute(
                insert(runs).values(id=run.id, **rows.run_values, created_at=float(run.created_at), updated_at=now)
            )
        _insert_children(conn, rows)
        return run.id

    return write(engine, work)


def _insert_children(conn: Connection, rows: _RunRows) -> None:
    """The rows that hang off a run: model groups, candidates, tags, then the pick and the fusion."""
    run_id, data = rows.run.id, rows.data
    if rows.groups:
        conn.execute(insert(run_model_groups), [{"run_id": run_id, "label": g} for g in rows.groups])
    if data["candidates"]:
        conn.execute(
            insert(candidates),
            [
                {
                    "run_id": run_id,
                    "idx": c["index"],
                    "text": c["text"],
                    "model": c["model"],
                    "sample_index": c["sample_index"],
                    "latency_s": c["latency_s"],
                    "prompt_tokens": c["prompt_tokens"],
                    "completion_tokens": c["completion_tokens"],
                    "error": c["error"],
                    "cached": bool(c["cached"]),
                }
                for c in data["candidates"]
            ],
        )
    if rows.tags:
        conn.execute(insert(run_tags), [{"run_id": run_id, "tag": t, "position": i} for i, t in enumerate(rows.tags)])
    bon = data["bon"]
    if bon is not None:
        conn.execute(
            insert(picks).values(
                run_id=run_id,
                method=bon["method"],
                idx=bon["index"],
                scores=dumps(bon["scores"]),
                notes=dumps(bon["notes"]),
                error=bon["error"],
            )
        )
    if data["fused"] is not None:
        conn.execute(insert(fusions).values(run_id=run_id, **_fusion_values(rows)))


def _fusion_values(rows: _RunRows) -> dict[str, Any]:
    fused, attribution = rows.data["fused"], rows.data["attribution"]
    return {
        "text": fused["text"],
        "method": fused["method"],
        "model": fused["model"],
        "template": fused["template"],
        "order": dumps(fused["order"]),
        "seed": fused["seed"],
        "latency_s": fused["latency_s"],
        "error": fused["error"],
        "attribution": dumps(attribution) if attribution is not None else None,
        "copied_fraction": attribution["copied_fraction"] if attribution is not None else None,
        "has_pair": rows.has_pair,
        "same_as_pick": _same_texts(*rows.pair),
        "shares": (
            dumps([float(x) for x in attribution["shares"]])
            if attribution is not None and fused["error"] is None
            else None
        ),
    }


def run_exists(engine: Engine, run_id: str) -> bool:
    """Whether a run with this id is stored (one primary-key lookup)."""
    if not isinstance(run_id, str) or not run_id:
        return False
    with reading(engine) as conn:
        return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None


def fill_pair_facts(engine: Engine, *, chunk: int = 200) -> int:
    """Fill ``has_pair``, ``same_as_pick`` and ``shares`` of fusions stored without them (by code older than
    migration 0003, still running somewhere while this code migrated the database); return how many.

    ``init_db`` calls it, so such runs join the queue the next time a process opens the database. Finding
    none is one index-only query.
    """
    todo = []
    with reading(engine) as conn:
        todo = list(conn.execute(select(fusions.c.run_id).where(fusions.c.has_pair.is_(None))).scalars())
    for start in range(0, len(todo), chunk):
        ids = todo[start : start + chunk]

        def work(conn: Connection) -> None:
            rows = conn.execute(
                select(fusions.c.run_id, fusions.c.text, fusions.c.error, fusions.c.attribution, picks.c.idx,
                       candidates.c.text)
                .select_from(fusions.outerjoin(picks, picks.c.run_id == fusions.c.run_id))
                .outerjoin(candidates, and_(candidates.c.run_id == fusions.c.run_id, candidates.c.idx == picks.c.idx))
                .where(fusions.c.run_id.in_(ids), fusions.c.has_pair.is_(None))
                .with_for_update(of=fusions)
            ).all()
            for run_id, fused, error, attribution, bon_index, bon in rows:
                raw_shares = (loads(attribution, {}) or {}).get("shares") if attribution and error is None else None
                conn.execute(
                    update(fusions)
                    .where(fusions.c.run_id == run_id)
                    .values(
                        has_pair=_pair_rule(bon_index if bon is not None else None, fused, error),
                        same_as_pick=_same_texts(bon, fused),
                        shares=None if raw_shares is None else dumps([float(x) for x in raw_shares]),
                    )
                )

        write(engine, work)
    return len(todo)


def load_run(engine: Engine, run_id: str) -> Run | None:
    """The stored run, rebuilt exactly as it was saved (``Run.to_dict`` round-trips), or None."""
    with reading(engine) as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        if row is None:
            return None
        cand_rows = conn.execute(
            select(candidates).where(candidates.c.run_id == run_id).order_by(candidates.c.idx)
        ).mappings().all()
        pick = conn.execute(select(picks).where(picks.c.run_id == run_id)).mappings().first()
        fusion = conn.execute(select(fusions).where(fusions.c.run_id == run_id)).mappings().first()
        tags = tags_by_run(conn, [run_id]).get(run_id, [])
    return Run.from_dict(_stored_run_dict(row, cand_rows, pick, fusion, tags))


def _stored_run_dict(row: Any, cand_rows: Sequence[Any], pick: Any, fusion: Any, tags: list[str]) -> dict[str, Any]:
    """``Run.to_dict()``'s shape, rebuilt from a run's rows."""
    data: dict[str, Any] = {
        "id": row["id"],
        "prompt": {"text": row["prompt"], "system": row["system"]},
        "candidates": [
            {
                "index": c["idx"],
                "text": c["text"],
                "model": c["model"],
                "sample_index": c["sample_index"],
                "latency_s": c["latency_s"],
                "prompt_tokens": c["prompt_tokens"],
                "completion_tokens": c["completion_tokens"],
                "error": c["error"],
                "cached": bool(c["cached"]),
            }
            for c in cand_rows
        ],
        "pool": loads(row["pool"], []),
        "settings": loads(row["settings"], {}),
        "bon": None,
        "fused": None,
        "attribution": None,
        "tags": tags,
        "source": row["source"],
        "created_at": row["created_at"],
    }
    if pick is not None:
        data["bon"] = {
            "index": pick["idx"],
            "scores": loads(pick["scores"], []),
            "method": pick["method"],
            "notes": loads(pick["notes"], []),
            "error": pick["error"],
        }
    if fusion is not None:
        data["fused"] = {
            "text": fusion["text"],
            "method": fusion["method"],
            "model": fusion["model"],
            "template": fusion["template"],
            "order": loads(fusion["order"], []),
            "seed": fusion["seed"],
            "latency_s": fusion["latency_s"],
            "error": fusion["error"],
        }
        data["attribution"] = loads(fusion["attribution"])
    return data


def delete_run(engine: Engine, run_id: str) -> bool:
    """Delete a run with its candidates, pick, fusion, tags and votes. True if it existed."""

    def work(conn: Connection) -> bool:
        return conn.execute(delete(runs).where(runs.c.id == run_id)).rowcount > 0

    return write(engine, work)


def is_identical(run: Run) -> bool:
    """True when the fused answer is the Best-of-N pick verbatim (the UI says "identical" for such pairs)."""
    bon = run.bon_text
    return bon is not None and run.fused is not None and bon.strip() == run.fused.text.strip()


def existing_run_ids(engine: Engine, run_ids: Sequence[str]) -> set[str]:
    """Which of ``run_ids`` are stored (a batch resuming after an interruption asks this)."""
    wanted = list(dict.fromkeys(run_ids))
    found: set[str] = set()
    with reading(engine) as conn:
        # Chunks keep each IN list under SQLite's bound-parameter limit.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found.update(conn.execute(select(runs.c.id).where(runs.c.id.in_(chunk))).scalars())
    return found

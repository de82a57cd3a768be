"""Reading and writing runs and votes. Plain functions taking an Engine; domain objects in and out.

Writes run in one transaction each (``BEGIN IMMEDIATE`` on SQLite, see ``storage.db``) and are retried as a
whole on transient failures: a lock wait that ran out, or a unique-key race lost to a concurrent writer (the
retry then sees the winner's row and updates it). Reads use deferred transactions so they never queue
behind writers.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator, Sequence, TypeVar

from sqlalchemy import (
    Connection,
    ColumnElement,
    Engine,
    Select,
    and_,
    delete,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import SQLModel

from fusion.errors import InputError
from fusion.types import Run, model_groups
from storage.db import READ_ONLY, is_transient
from storage.tables import CHOICES, SIDES  # importing tables also registers them on SQLModel.metadata

T = TypeVar("T")
_SURROGATE = re.compile("[\ud800-\udfff]")

_tables = SQLModel.metadata.tables
runs = _tables["runs"]
run_tags = _tables["run_tags"]
run_model_groups = _tables["run_model_groups"]
candidates = _tables["candidates"]
picks = _tables["picks"]
fusions = _tables["fusions"]
votes = _tables["votes"]
vote_tokens = _tables["vote_tokens"]

MAX_ANNOTATOR_CHARS = 200
MAX_COMMENT_CHARS = 10_000
MAX_TOKEN_CHARS = 200
MAX_TAG_CHARS = 200
WRITE_ATTEMPTS = 10


# ----------------------------------------------------------------------------------------------------------
# Plain records


@dataclass
class RunSummary:
    """One row of the history table: enough to list and filter runs without loading candidates."""

    id: str
    prompt: str
    system: str | None
    source: str
    n: int
    models: list[str]
    tags: list[str]
    created_at: float
    updated_at: float
    n_failed: int = 0  # candidates with an error
    bon_index: int | None = None
    bon_method: str | None = None
    fused_method: str | None = None
    fused_error: str | None = None
    copied_fraction: float | None = None
    n_votes: int = 0
    same_as_pick: bool | None = None  # fused text is the pick verbatim (None: no fusion, or unknown)

    @property
    def model_groups(self) -> list[str]:
        return model_groups(self.models, self.source)

    @property
    def has_pick(self) -> bool:
        return self.bon_index is not None

    @property
    def has_fusion(self) -> bool:
        return self.fused_method is not None and self.fused_error is None


@dataclass
class VoteRecord:
    """A stored vote, joined with what the statistics need from its run."""

    id: int
    run_id: str
    annotator: str
    choice: str  # A | B | tie | both_bad, as clicked
    a_is: str  # bon | fused: the side shown as Response A
    winner: str  # fused | bon | tie | both_bad
    comment: str | None
    ranking: list[int] | None
    client_token: str | None
    created_at: float
    updated_at: float
    n: int
    models: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str = ""
    prompt: str = ""
    bon_index: int | None = None
    bon_method: str | None = None
    fused_method: str | None = None
    copied_fraction: float | None = None
    blind: bool = True  # cast before the voter saw which response was which

    @property
    def model_groups(self) -> list[str]:
        return model_groups(self.models, self.source)


# ----------------------------------------------------------------------------------------------------------
# Helpers


def _dumps(value: Any) -> str:
    # NaN is allowed here (a selector may score NaN) so the stored run round-trips exactly; exports scrub it.
    return json.dumps(value, ensure_ascii=False)


def valid_text(value: str) -> str:
    """``value`` unchanged unless it holds characters a database refuses: a lone surrogate (possible in
    decoded model output), which UTF-8 cannot encode, or NUL, which PostgreSQL text cannot hold. Both
    become U+FFFD, on every database, so a run reads back the same from SQLite and PostgreSQL."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _loads(raw: str | None, default: Any = None) -> Any:
    if raw is None or raw == "":
        return default
    return json.loads(raw)


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        conn = conn.execution_options(**{READ_ONLY: True})
        if conn.dialect.name == "postgresql":
            # One snapshot for every statement of a read (SQLite's WAL read transaction gives one anyway):
            # under READ COMMITTED, a read made of two queries (votes, then their runs) could see a vote
            # whose run another transaction deleted in between. Read-only, so it never fails to serialise.
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def _write(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one committed transaction, retrying the whole transaction on transient errors."""
    for attempt in range(WRITE_ATTEMPTS):
        try:
            with engine.begin() as conn:
                return work(conn)
        except (IntegrityError, OperationalError) as exc:
            if attempt == WRITE_ATTEMPTS - 1 or not is_transient(exc):
                raise
            # Jitter so that writers who collided do not collide again in lock-step.
            time.sleep(random.uniform(0.0, 0.02 * (attempt + 1)))
    raise AssertionError("unreachable")


def _timestamp(value: float | datetime | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


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


def _has_pair() -> ColumnElement[bool]:
    """Runs with a pair record_vote accepts (identical to the pick or not), from the stored flag, which the
    covering index ix_fusions_facts serves. NULL (written by code older than 0003, not yet filled in by
    :func:`fill_pair_facts`) is not counted."""
    return fusions.c.has_pair.is_(True)


def _identical() -> ColumnElement[bool]:
    return fusions.c.same_as_pick.is_(True)


def _votable() -> ColumnElement[bool]:
    """Runs an annotator can judge: a pair as in :func:`_has_pair` whose fused text is not the pick verbatim."""
    return and_(_has_pair(), ~_identical())


# Tag and model filters are written as "id IN (runs with that label)", not as a correlated EXISTS: the
# database then starts from the label's index (a rare label costs almost nothing) instead of probing every
# run (measured in bench/storage_queries.py).


def _tagged(tag: str) -> Select[Any]:
    return select(run_tags.c.run_id).where(run_tags.c.tag == tag)


def _fusion_has_tag(tag: str) -> ColumnElement[bool]:
    return fusions.c.run_id.in_(_tagged(tag))


def _has_tag(tag: str) -> ColumnElement[bool]:
    return runs.c.id.in_(_tagged(tag))


def _tags_by_run(conn: Connection, run_ids: Sequence[str] | None = None, subquery: Any = None) -> dict[str, list[str]]:
    stmt = select(run_tags.c.run_id, run_tags.c.tag).order_by(run_tags.c.run_id, run_tags.c.position)
    if run_ids is not None:
        if not run_ids:
            return {}
        stmt = stmt.where(run_tags.c.run_id.in_(list(run_ids)))
    if subquery is not None:
        stmt = stmt.where(run_tags.c.run_id.in_(subquery))
    out: dict[str, list[str]] = {}
    for run_id, tag in conn.execute(stmt):
        out.setdefault(run_id, []).append(tag)
    return out


# ----------------------------------------------------------------------------------------------------------
# Runs


def _same_texts(bon: str | None, fused: str | None) -> bool:
    # The rule of is_identical, applied to the texts as stored.
    return bon is not None and fused is not None and bon.strip() == fused.strip()


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
    if not isinstance(run.id, str) or not run.id.strip():
        raise InputError("A run needs a non-empty id to be saved.")
    if len(run.id) > 64:
        raise InputError(f"Run id {run.id[:20]!r}... is longer than 64 characters.")
    data = _scrub(run.to_dict())  # the serialised form: ModelSpec.to_dict leaves API keys out
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
        "models": _dumps(_scrub(_run_models(run))),
        "pool": _dumps(data["pool"]),
        "settings": _dumps(data["settings"]),
    }
    groups = model_groups(_scrub(_run_models(run)), data["source"])

    def work(conn: Connection) -> str:
        now = time.time()
        # FOR UPDATE (PostgreSQL; SQLite's write transaction already holds the lock): a concurrent vote,
        # which reads this row FOR SHARE, waits for the new pair or is seen by the pair check below.
        exists_now = (
            conn.execute(select(runs.c.id).where(runs.c.id == run.id).with_for_update()).first() is not None
        )
        if exists_now:
            if _pair_texts(conn, run.id) != new_pair:
                conn.execute(delete(vote_tokens).where(vote_tokens.c.run_id == run.id))
                conn.execute(delete(votes).where(votes.c.run_id == run.id))
            for child in (candidates, picks, fusions, run_tags, run_model_groups):
                conn.execute(delete(child).where(child.c.run_id == run.id))
            conn.execute(update(runs).where(runs.c.id == run.id).values(**run_values, updated_at=now))
        else:
            conn.execute(
                insert(runs).values(id=run.id, **run_values, created_at=float(run.created_at), updated_at=now)
            )
        if groups:
            conn.execute(insert(run_model_groups), [{"run_id": run.id, "label": g} for g in groups])
        if data["candidates"]:
            conn.execute(
                insert(candidates),
                [
                    {
                        "run_id": run.id,
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
        if tags:
            conn.execute(insert(run_tags), [{"run_id": run.id, "tag": t, "position": i} for i, t in enumerate(tags)])
        bon = data["bon"]
        if bon is not None:
            conn.execute(
                insert(picks).values(
                    run_id=run.id,
                    method=bon["method"],
                    idx=bon["index"],
                    scores=_dumps(bon["scores"]),
                    notes=_dumps(bon["notes"]),
                    error=bon["error"],
                )
            )
        fused = data["fused"]
        if fused is not None:
            attribution = data["attribution"]
            conn.execute(
                insert(fusions).values(
                    run_id=run.id,
                    text=fused["text"],
                    method=fused["method"],
                    model=fused["model"],
                    template=fused["template"],
                    order=_dumps(fused["order"]),
                    seed=fused["seed"],
                    latency_s=fused["latency_s"],
                    error=fused["error"],
                    attribution=_dumps(attribution) if attribution is not None else None,
                    copied_fraction=attribution["copied_fraction"] if attribution is not None else None,
                    has_pair=has_pair,
                    same_as_pick=_same_texts(*new_pair),
                    shares=(
                        _dumps([float(x) for x in attribution["shares"]])
                        if attribution is not None and fused["error"] is None
                        else None
                    ),
                )
            )
        return run.id

    return _write(engine, work)


def run_exists(engine: Engine, run_id: str) -> bool:
    """Whether a run with this id is stored (one primary-key lookup)."""
    if not isinstance(run_id, str) or not run_id:
        return False
    with _reading(engine) as conn:
        return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None


def fill_pair_facts(engine: Engine, *, chunk: int = 200) -> int:
    """Fill ``has_pair``, ``same_as_pick`` and ``shares`` of fusions stored without them (by code older than
    migration 0003, still running somewhere while this code migrated the database); return how many.

    ``init_db`` calls it, so such runs join the queue the next time a process opens the database. Finding
    none is one index-only query.
    """
    todo = []
    with _reading(engine) as conn:
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
                raw_shares = (_loads(attribution, {}) or {}).get("shares") if attribution and error is None else None
                conn.execute(
                    update(fusions)
                    .where(fusions.c.run_id == run_id)
                    .values(
                        has_pair=_pair_rule(bon_index if bon is not None else None, fused, error),
                        same_as_pick=_same_texts(bon, fused),
                        shares=None if raw_shares is None else _dumps([float(x) for x in raw_shares]),
                    )
                )

        _write(engine, work)
    return len(todo)


def load_run(engine: Engine, run_id: str) -> Run | None:
    """The stored run, rebuilt exactly as it was saved (``Run.to_dict`` round-trips), or None."""
    with _reading(engine) as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        if row is None:
            return None
        cand_rows = conn.execute(
            select(candidates).where(candidates.c.run_id == run_id).order_by(candidates.c.idx)
        ).mappings().all()
        pick = conn.execute(select(picks).where(picks.c.run_id == run_id)).mappings().first()
        fusion = conn.execute(select(fusions).where(fusions.c.run_id == run_id)).mappings().first()
        tags = _tags_by_run(conn, [run_id]).get(run_id, [])
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
        "pool": _loads(row["pool"], []),
        "settings": _loads(row["settings"], {}),
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
            "scores": _loads(pick["scores"], []),
            "method": pick["method"],
            "notes": _loads(pick["notes"], []),
            "error": pick["error"],
        }
    if fusion is not None:
        data["fused"] = {
            "text": fusion["text"],
            "method": fusion["method"],
            "model": fusion["model"],
            "template": fusion["template"],
            "order": _loads(fusion["order"], []),
            "seed": fusion["seed"],
            "latency_s": fusion["latency_s"],
            "error": fusion["error"],
        }
        data["attribution"] = _loads(fusion["attribution"])
    return Run.from_dict(data)


def _run_conditions(
    *,
    text: str | None,
    model: str | None,
    n: int | None,
    tag: str | None,
    since: float | datetime | None,
    until: float | datetime | None,
    source: str | None,
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    # Filter values are typed by users: the same scrubbing as stored text (PostgreSQL refuses NUL).
    text, model, tag, source = (valid_text(v) if isinstance(v, str) else v for v in (text, model, tag, source))
    needle = (text or "").strip().lower()
    if needle:
        conds.append(
            or_(
                func.lower(runs.c.prompt).contains(needle, autoescape=True),
                func.lower(func.coalesce(runs.c.system, "")).contains(needle, autoescape=True),
                exists(
                    select(fusions.c.run_id)
                    .where(fusions.c.run_id == runs.c.id, func.lower(fusions.c.text).contains(needle, autoescape=True))
                    .correlate_except(fusions)  # list_runs also joins fusions; this subquery has its own
                ),
            )
        )
    if model:
        # A label of all_models: a model, or "scenario:<id>" for the runs of a built-in scenario.
        conds.append(runs.c.id.in_(select(run_model_groups.c.run_id).where(run_model_groups.c.label == model)))
    if n is not None:
        conds.append(runs.c.n == n)
    if tag:
        conds.append(_has_tag(tag))
    lo, hi = _timestamp(since), _timestamp(until)
    if lo is not None:
        conds.append(runs.c.created_at >= lo)
    if hi is not None:
        conds.append(runs.c.created_at <= hi)
    if source:
        # "scenario" also matches "scenario:<id>".
        conds.append(or_(runs.c.source == source, runs.c.source.startswith(source + ":", autoescape=True)))
    return conds


def list_runs(
    engine: Engine,
    *,
    text: str | None = None,
    model: str | None = None,
    n: int | None = None,
    tag: str | None = None,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    source: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> list[RunSummary]:
    """Runs matching every given filter, newest first.

    ``text`` is a case-insensitive substring of the prompt, system message or fused text; ``model`` one of
    the labels :func:`all_models` lists (a candidate or pool model, or ``scenario:<id>``, which matches the
    runs of that built-in scenario; its persona "models" are not labels); ``since``/``until`` bound
    ``created_at`` (inclusive; epoch seconds or datetime); ``source`` matches exactly or as a prefix before
    ":" (``"scenario"`` finds ``"scenario:x"``).
    """
    conds = _run_conditions(text=text, model=model, n=n, tag=tag, since=since, until=until, source=source)
    n_failed = (
        select(func.count())
        .select_from(candidates)
        .where(candidates.c.run_id == runs.c.id, candidates.c.error.is_not(None))
        .scalar_subquery()
    )
    n_votes = select(func.count()).select_from(votes).where(votes.c.run_id == runs.c.id).scalar_subquery()
    stmt = (
        select(
            runs.c.id,
            runs.c.prompt,
            runs.c.system,
            runs.c.source,
            runs.c.n,
            runs.c.models,
            runs.c.created_at,
            runs.c.updated_at,
            picks.c.idx.label("bon_index"),
            picks.c.method.label("bon_method"),
            fusions.c.method.label("fused_method"),
            fusions.c.error.label("fused_error"),
            fusions.c.copied_fraction,
            fusions.c.same_as_pick,
            n_failed.label("n_failed"),
            n_votes.label("n_votes"),
        )
        .select_from(runs)
        .outerjoin(picks, picks.c.run_id == runs.c.id)
        .outerjoin(fusions, fusions.c.run_id == runs.c.id)
        .where(*conds)
        .order_by(runs.c.created_at.desc(), runs.c.id)
        .offset(max(0, int(offset)))
    )
    if limit is not None:
        stmt = stmt.limit(max(0, int(limit)))
    with _reading(engine) as conn:
        rows = conn.execute(stmt).mappings().all()
        tags = _tags_by_run(conn, [r["id"] for r in rows])
    return [
        RunSummary(
            id=r["id"],
            prompt=r["prompt"],
            system=r["system"],
            source=r["source"],
            n=r["n"],
            models=_loads(r["models"], []),
            tags=tags.get(r["id"], []),
            created_at=r["created_at"],
            updated_at=r["updated_at"],
            n_failed=r["n_failed"] or 0,
            bon_index=r["bon_index"],
            bon_method=r["bon_method"],
            fused_method=r["fused_method"],
            fused_error=r["fused_error"],
            copied_fraction=r["copied_fraction"],
            n_votes=r["n_votes"] or 0,
            same_as_pick=None if r["same_as_pick"] is None else bool(r["same_as_pick"]),
        )
        for r in rows
    ]


def count_runs(
    engine: Engine,
    *,
    text: str | None = None,
    model: str | None = None,
    n: int | None = None,
    tag: str | None = None,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    source: str | None = None,
) -> int:
    """How many runs :func:`list_runs` would return with the same filters and no limit."""
    conds = _run_conditions(text=text, model=model, n=n, tag=tag, since=since, until=until, source=source)
    with _reading(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(runs).where(*conds)).scalar_one())


def delete_run(engine: Engine, run_id: str) -> bool:
    """Delete a run with its candidates, pick, fusion, tags and votes. True if it existed."""

    def work(conn: Connection) -> bool:
        return conn.execute(delete(runs).where(runs.c.id == run_id)).rowcount > 0

    return _write(engine, work)


def all_tags(engine: Engine) -> list[str]:
    with _reading(engine) as conn:
        return list(conn.execute(select(run_tags.c.tag).distinct().order_by(run_tags.c.tag)).scalars())


def all_models(engine: Engine) -> list[str]:
    """The labels runs are grouped under by model, sorted: the models of ordinary runs, and one
    ``scenario:<id>`` per built-in scenario in place of its personas (see ``fusion.types.model_groups``)."""
    with _reading(engine) as conn:
        return list(
            conn.execute(select(run_model_groups.c.label).distinct().order_by(run_model_groups.c.label)).scalars()
        )


def is_identical(run: Run) -> bool:
    """True when the fused answer is the Best-of-N pick verbatim (the UI says "identical" for such pairs)."""
    bon = run.bon_text
    return bon is not None and run.fused is not None and bon.strip() == run.fused.text.strip()


# ----------------------------------------------------------------------------------------------------------
# Votes


def winner_of(choice: str, a_is: str) -> str:
    """Which system won, from the button clicked and which system was shown as Response A."""
    if choice in ("tie", "both_bad"):
        return choice
    b_is = "bon" if a_is == "fused" else "fused"
    return a_is if choice == "A" else b_is


def _check_annotator(annotator: object) -> str:
    if not isinstance(annotator, str) or not annotator.strip():
        raise InputError("Enter your name (annotator) before voting.")
    name = annotator.strip()
    if len(name) > MAX_ANNOTATOR_CHARS:
        raise InputError(f"The annotator name is longer than {MAX_ANNOTATOR_CHARS} characters.")
    return name


def _check_ranking(ranking: Sequence[int] | None, n: int) -> list[int] | None:
    if ranking is None:
        return None
    if isinstance(ranking, (str, bytes)) or not isinstance(ranking, Sequence):
        raise InputError("The ranking must be a list of candidate indices, best first.")
    out: list[int] = []
    for item in ranking:
        if isinstance(item, bool) or not isinstance(item, int):
            raise InputError(f"The ranking holds {item!r}, which is not a candidate index.")
        if not 0 <= item < n:
            raise InputError(f"The ranking names candidate index {item}; this run has candidates 0 to {n - 1}.")
        out.append(item)
    if len(set(out)) != len(out):
        raise InputError("The ranking lists a candidate more than once.")
    return out or None


_VOTE_COLUMNS = (
    votes.c.id,
    votes.c.run_id,
    votes.c.annotator,
    votes.c.choice,
    votes.c.a_is,
    votes.c.winner,
    votes.c.comment,
    votes.c.ranking,
    votes.c.client_token,
    votes.c.created_at,
    votes.c.updated_at,
    votes.c.blind,
)


def _run_facts(conn: Connection, run_ids: Any) -> dict[str, tuple[Any, ...]]:
    """(n, models, source, prompt, bon index, bon method, fused method, copied fraction) per run in
    ``run_ids`` (a subquery), each models list parsed once."""
    stmt = (
        select(
            runs.c.id,
            runs.c.n,
            runs.c.models,
            runs.c.source,
            runs.c.prompt,
            picks.c.idx,
            picks.c.method,
            fusions.c.method,
            fusions.c.copied_fraction,
        )
        .select_from(runs.outerjoin(picks, picks.c.run_id == runs.c.id))
        .outerjoin(fusions, fusions.c.run_id == runs.c.id)
        .where(runs.c.id.in_(run_ids))
    )
    models_of: dict[str, list[str]] = {}
    out: dict[str, tuple[Any, ...]] = {}
    for run_id, n, raw_models, source, prompt, bon_index, bon_method, fused_method, copied in conn.execute(stmt):
        models = models_of.get(raw_models)
        if models is None:  # the runs of a batch share one models list
            models = models_of[raw_models] = _loads(raw_models, [])
        out[run_id] = (n, models, source, prompt, bon_index, bon_method, fused_method, copied)
    return out


def _vote_records(conn: Connection, *where: ColumnElement[bool]) -> list[VoteRecord]:
    """Votes matching ``where`` (conditions on the votes table), oldest first, with their runs' facts.

    Three queries whatever the number of votes: the votes, then the facts and the tags of their runs,
    each run read once however many votes it has (15,000 votes are on about 5,000 runs).
    """
    rows = conn.execute(select(*_VOTE_COLUMNS).where(*where).order_by(votes.c.created_at, votes.c.id)).all()
    if not rows:
        return []
    voted_runs = select(votes.c.run_id).where(*where)
    facts = _run_facts(conn, voted_runs)
    tags = _tags_by_run(conn, subquery=voted_runs)
    out: list[VoteRecord] = []
    for vote_id, run_id, annotator, choice, a_is, winner, comment, ranking, token, created, updated, blind in rows:
        fact = facts.get(run_id)
        if fact is None:  # the run was deleted (with its votes) between the two reads
            continue
        n, models, source, prompt, bon_index, bon_method, fused_method, copied = fact
        out.append(
            VoteRecord(
                id=vote_id,
                run_id=run_id,
                annotator=annotator,
                choice=choice,
                a_is=a_is,
                winner=winner,
                comment=comment,
                ranking=None if ranking is None else _loads(ranking),
                client_token=token,
                created_at=created,
                updated_at=updated,
                n=n,
                models=list(models),
                tags=list(tags.get(run_id, ())),
                source=source,
                prompt=prompt,
                bon_index=bon_index,
                bon_method=bon_method,
                fused_method=fused_method,
                copied_fraction=copied,
                blind=bool(blind),
            )
        )
    return out


def _find_vote(conn: Connection, run_id: str, annotator: str) -> Any:
    # FOR UPDATE: under PostgreSQL's READ COMMITTED, two replacements of one vote would otherwise both read
    # the same updated_at and could commit out of order; the second now waits and reads the first's row.
    return conn.execute(
        select(votes.c.id, votes.c.updated_at)
        .where(votes.c.run_id == run_id, votes.c.annotator == annotator)
        .with_for_update()
    ).first()


class VoteWithdrawn(InputError):
    """A form submission whose vote was undone (:func:`delete_vote`) arrived again: nothing is stored.

    Raised instead of bringing the undone vote back; the message is meant for the voter."""


def record_vote(
    engine: Engine,
    *,
    run_id: str,
    annotator: str,
    choice: str,
    a_is: str,
    comment: str | None = None,
    ranking: Sequence[int] | None = None,
    client_token: str | None = None,
    blind: bool = True,
) -> VoteRecord:
    """Store one annotator's verdict on a run (committed before returning) and return it.

    One vote per (run, annotator): voting again replaces the earlier vote (``created_at`` kept,
    ``updated_at`` moves, ``blind`` is the one passed now). ``blind`` says whether the vote was cast before
    the voter saw which response is which (labels, scores, attribution, candidate cards); False marks a
    vote cast after seeing them.

    A ``client_token`` this (run, annotator) already submitted is a no-op that returns the stored vote, so
    a resubmitted form or a late retry changes nothing. If that vote has since been undone
    (:func:`delete_vote`), the replay raises :class:`VoteWithdrawn` and stores nothing: an undo is never
    reversed by a late copy of the submission it undid. A new vote needs a new token.
    """
    if not isinstance(blind, bool):
        raise InputError("blind must be True or False.")
    name = valid_text(_check_annotator(annotator))
    if choice not in CHOICES:
        raise InputError(f"The vote must be one of {', '.join(CHOICES)}; got {choice!r}.")
    if a_is not in SIDES:
        raise InputError(f"Response A must be shown as one of {', '.join(SIDES)}; got {a_is!r}.")
    if comment is not None and not isinstance(comment, str):
        raise InputError("The comment must be text.")
    note = valid_text((comment or "").strip()) or None
    if note is not None and len(note) > MAX_COMMENT_CHARS:
        raise InputError(f"The comment is {len(note):,} characters long; the limit is {MAX_COMMENT_CHARS:,}.")
    token = client_token.strip() if isinstance(client_token, str) else None
    token = token or None
    if token is not None and len(token) > MAX_TOKEN_CHARS:
        raise InputError("The form token is too long.")
    winner = winner_of(choice, a_is)

    def work(conn: Connection) -> int:
        # FOR SHARE OF runs (PostgreSQL): a concurrent save_run, which locks the run FOR UPDATE, cannot
        # replace the pair between this check and the vote's insert.
        row = conn.execute(
            select(runs.c.n, picks.c.idx, fusions.c.text, fusions.c.error)
            .select_from(runs)
            .outerjoin(picks, picks.c.run_id == runs.c.id)
            .outerjoin(fusions, fusions.c.run_id == runs.c.id)
            .where(runs.c.id == run_id)
            .with_for_update(read=True, of=runs)
        ).first()
        if row is None:
            raise InputError(f"Unknown run {run_id!r}: it was deleted or never saved.")
        n, bon_index, fused_text, fused_error = row
        if bon_index is None or fused_text is None or fused_error is not None or not fused_text.strip():
            raise InputError(f"Run {run_id} has no Best-of-N pick and fused answer to compare.")
        checked_ranking = _check_ranking(ranking, n)
        existing = _find_vote(conn, run_id, name)
        seen = False
        if token is not None:
            seen = (
                conn.execute(
                    select(vote_tokens.c.client_token).where(
                        vote_tokens.c.run_id == run_id,
                        vote_tokens.c.annotator == name,
                        vote_tokens.c.client_token == token,
                    )
                ).first()
                is not None
            )
            if seen and existing is not None:
                return int(existing.id)
            if seen:
                raise VoteWithdrawn(
                    "This vote was undone, so this copy of it was not saved. Vote again to record a new one."
                )
        now = time.time()
        values = {
            "choice": choice,
            "a_is": a_is,
            "winner": winner,
            "comment": note,
            "ranking": _dumps(checked_ranking) if checked_ranking is not None else None,
            "client_token": token,
            "blind": blind,
        }
        if existing is not None:
            # Strictly later even when the clock has not ticked, so "was it replaced?" is always visible.
            stamp = max(now, float(existing.updated_at) + 1e-6)
            conn.execute(update(votes).where(votes.c.id == existing.id).values(**values, updated_at=stamp))
            vote_id = int(existing.id)
        else:
            result = conn.execute(
                insert(votes).values(run_id=run_id, annotator=name, **values, created_at=now, updated_at=now)
            )
            vote_id = int(result.inserted_primary_key[0])
        if token is not None and not seen:
            conn.execute(insert(vote_tokens).values(run_id=run_id, annotator=name, client_token=token, created_at=now))
        return vote_id

    def work_and_read(conn: Connection) -> VoteRecord:
        # Read back inside the same transaction: the record returned is the one this call left stored,
        # never a concurrent writer's later vote.
        return _vote_records(conn, votes.c.id == work(conn))[0]

    return _write(engine, work_and_read)


def delete_vote(engine: Engine, run_id: str, annotator: str) -> bool:
    """Undo ``annotator``'s vote on the run (the whole vote: an earlier vote it replaced is not restored).
    True if there was one; False (and nothing changes) otherwise, so a repeated undo is harmless.

    The run goes back into the annotator's queue. The form tokens the annotator submitted for this run are
    kept, so a late replay of the undone submission is refused (:class:`VoteWithdrawn`) instead of
    bringing the vote back.
    """
    name = annotator.strip() if isinstance(annotator, str) else ""
    if not name:
        return False

    def work(conn: Connection) -> bool:
        result = conn.execute(delete(votes).where(votes.c.run_id == run_id, votes.c.annotator == valid_text(name)))
        return result.rowcount > 0

    return _write(engine, work)


def last_vote(engine: Engine, annotator: str, *, tag: str | None = None) -> VoteRecord | None:
    """The vote ``annotator`` cast or changed most recently (on runs with ``tag`` if given), or None: what
    "undo my last vote" undoes when the page no longer remembers it (a reload, another tab)."""
    name = annotator.strip() if isinstance(annotator, str) else ""
    if not name:
        return None
    stmt = select(votes.c.id).where(votes.c.annotator == name)
    if tag:
        stmt = stmt.where(votes.c.run_id.in_(_tagged(tag)))
    stmt = stmt.order_by(votes.c.updated_at.desc(), votes.c.id.desc()).limit(1)
    with _reading(engine) as conn:
        vote_id = conn.execute(stmt).scalar()
        found = _vote_records(conn, votes.c.id == vote_id) if vote_id is not None else []
    return found[0] if found else None


def get_vote(engine: Engine, run_id: str, annotator: str) -> VoteRecord | None:
    name = annotator.strip() if isinstance(annotator, str) else ""
    if not name:
        return None
    with _reading(engine) as conn:
        found = _vote_records(conn, votes.c.run_id == run_id, votes.c.annotator == name)
    return found[0] if found else None


def votes_for_run(engine: Engine, run_id: str) -> list[VoteRecord]:
    with _reading(engine) as conn:
        return _vote_records(conn, votes.c.run_id == run_id)


def all_votes(engine: Engine, *, tag: str | None = None) -> list[VoteRecord]:
    """Every vote (on runs with ``tag`` if given), oldest first, with its run's n, models, tags and pick."""
    with _reading(engine) as conn:
        if tag:
            return _vote_records(conn, votes.c.run_id.in_(_tagged(tag)))
        return _vote_records(conn)


def votes_signature(engine: Engine, *, tag: str | None = None) -> str:
    """A short digest of the votes :func:`all_votes` would return (with the same ``tag``) and of their runs.

    It changes when a vote is cast, replaced or undone (count, ids and ``updated_at`` of the votes) and
    when a voted run is saved again (its ``updated_at``: its tags or models may have changed), so a page
    can cache its statistics under it and call :func:`all_votes` only when it changed. Two aggregate
    queries, no records built. (Every write stamps a later ``updated_at``; a clock that runs backwards
    between two writes could hide one change until the next write.)
    """
    vote_stmt = select(
        func.count(), func.coalesce(func.sum(votes.c.id), 0), func.max(votes.c.updated_at), func.sum(votes.c.updated_at)
    ).select_from(votes)
    run_stmt = select(func.count(), func.max(runs.c.updated_at), func.sum(runs.c.updated_at)).where(
        runs.c.id.in_(select(votes.c.run_id))
    )
    if tag:
        vote_stmt = vote_stmt.where(votes.c.run_id.in_(_tagged(tag)))
        run_stmt = run_stmt.where(_has_tag(tag))
    with _reading(engine) as conn:
        facts = (*conn.execute(vote_stmt).one(), *conn.execute(run_stmt).one())
    return hashlib.sha256(repr((tag or "", *facts)).encode()).hexdigest()


def runs_signature(engine: Engine, *, tag: str | None = None) -> str:
    """Changes whenever a run (with ``tag`` if given) is saved, saved again or deleted: what a page can
    cache :func:`attribution_rows` statistics under. Two index lookups (count and newest ``updated_at``)."""
    stmt = select(func.count(), func.max(runs.c.updated_at)).select_from(runs)
    if tag:
        stmt = stmt.where(_has_tag(tag))
    with _reading(engine) as conn:
        count, newest = conn.execute(stmt).one()
    return f"{tag or ''}|{int(count)}|{newest!r}"


def annotation_queue(engine: Engine, annotator: str, *, tag: str | None = None, limit: int | None = 50) -> list[str]:
    """Ids of runs with a pick and a fused answer that ``annotator`` has not voted on, oldest first.

    Pairs whose fused text is the pick verbatim are left out (nothing to choose between); they are counted
    in :attr:`QueueCounts.identical`.
    """
    name = _check_annotator(annotator)
    voted = exists(select(votes.c.id).where(votes.c.run_id == runs.c.id, votes.c.annotator == name))
    stmt = (
        select(runs.c.id)
        .select_from(runs.join(fusions, fusions.c.run_id == runs.c.id))
        .where(_votable(), ~voted)
        .order_by(runs.c.created_at, runs.c.id)
    )
    if tag:
        stmt = stmt.where(_has_tag(tag))
    if limit is not None:
        stmt = stmt.limit(max(0, int(limit)))
    with _reading(engine) as conn:
        return list(conn.execute(stmt).scalars())


@dataclass(frozen=True)
class QueueCounts:
    """Where an annotator stands, among runs with the tag asked for.

    ``total``: runs there are to vote on (a pick and a fused answer that differ); ``done``: those of them
    this annotator has voted on; ``identical``: runs left out of the queue because the fused answer is the
    pick verbatim. ``total`` is right from the start: identical pairs are known when a run is saved.
    """

    done: int
    total: int
    identical: int

    @property
    def remaining(self) -> int:
        return self.total - self.done


def count_unpaired(engine: Engine, tag: str | None = None) -> int:
    """Runs (with ``tag``) that cannot be voted on at all: no Best-of-N pick or no usable fused answer (a
    failed judge or fusor, a run stopped half way). Annotate says how many, so none vanish unexplained."""
    has_pair = exists(select(fusions.c.run_id).where(fusions.c.run_id == runs.c.id, _has_pair()))
    stmt = select(func.count()).select_from(runs).where(~has_pair)
    if tag:
        stmt = stmt.where(_has_tag(tag))
    with _reading(engine) as conn:
        return int(conn.execute(stmt).scalar_one())


def queue_counts(engine: Engine, annotator: str, tag: str | None = None) -> QueueCounts:
    """The annotator's :class:`QueueCounts`, in one query that reads two indexes: the covering index of
    fusions and the unique (run_id, annotator) index of votes (plus run_tags' with a tag)."""
    name = _check_annotator(annotator)
    mine = votes.alias("mine")
    identical = _identical()
    votable = ~identical  # within _has_pair(); NULL same_as_pick (unknown) counts as votable
    stmt = (
        select(
            func.coalesce(func.sum(case((identical, 1), else_=0)), 0),
            func.coalesce(func.sum(case((identical, 0), else_=1)), 0),
            func.coalesce(func.sum(case((and_(votable, mine.c.id.is_not(None)), 1), else_=0)), 0),
        )
        .select_from(fusions)
        .outerjoin(mine, and_(mine.c.run_id == fusions.c.run_id, mine.c.annotator == name))
        .where(_has_pair())
    )
    if tag:
        stmt = stmt.where(_fusion_has_tag(tag))
    with _reading(engine) as conn:
        n_identical, total, done = conn.execute(stmt).one()
    return QueueCounts(done=int(done), total=int(total), identical=int(n_identical))


def queue_progress(engine: Engine, annotator: str, tag: str | None = None) -> tuple[int, int]:
    """(runs this annotator has voted on, runs there are to vote on), among votable runs with ``tag``;
    identical pairs are in neither. :func:`queue_counts` also says how many were left out."""
    counts = queue_counts(engine, annotator, tag)
    return counts.done, counts.total


# ----------------------------------------------------------------------------------------------------------
# Batch resume and results statistics (appended for issue 4)


def existing_run_ids(engine: Engine, run_ids: Sequence[str]) -> set[str]:
    """Which of ``run_ids`` are stored (a batch resuming after an interruption asks this)."""
    wanted = list(dict.fromkeys(run_ids))
    found: set[str] = set()
    with _reading(engine) as conn:
        # Chunks keep each IN list under SQLite's bound-parameter limit.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found.update(conn.execute(select(runs.c.id).where(runs.c.id.in_(chunk))).scalars())
    return found


@dataclass
class AttributionRow:
    """What the results page needs about one run's attribution: no spans, no texts."""

    run_id: str
    n: int
    tags: list[str]
    models: list[str]
    copied_fraction: float | None
    shares: list[float]  # per candidate index; shared spans count for each source, so they can sum above 1
    bon_index: int | None
    created_at: float
    source: str = ""

    @property
    def model_groups(self) -> list[str]:
        return model_groups(self.models, self.source)

    @property
    def bon_share(self) -> float | None:
        """Share of the fused text found in the Best-of-N pick (None without a pick or attribution)."""
        if self.bon_index is None or not 0 <= self.bon_index < len(self.shares):
            return None
        return self.shares[self.bon_index]

    def contributors(self, min_share: float = 0.05) -> int:
        """How many candidates supply at least ``min_share`` of the fused text (a few shared words make
        every candidate a nominal source, hence the threshold)."""
        return sum(1 for s in self.shares if s >= min_share)


def attribution_rows(engine: Engine, *, tag: str | None = None) -> list[AttributionRow]:
    """One row per run with an attributed fused answer without error (on runs with ``tag`` if given),
    oldest first. Reads the ``shares`` column, never the spans."""
    stmt = (
        select(
            runs.c.id,
            runs.c.n,
            runs.c.models,
            runs.c.source,
            runs.c.created_at,
            picks.c.idx.label("bon_index"),
            fusions.c.copied_fraction,
            fusions.c.shares,
        )
        .select_from(runs.join(fusions, fusions.c.run_id == runs.c.id))
        .outerjoin(picks, picks.c.run_id == runs.c.id)
        # shares is set exactly for attributed fused answers without error (read from the covering index)
        .where(fusions.c.shares.is_not(None))
        .order_by(runs.c.created_at, runs.c.id)
    )
    if tag:
        stmt = stmt.where(_has_tag(tag))
    with _reading(engine) as conn:
        rows = conn.execute(stmt).all()
        ids = select(runs.c.id).select_from(runs.join(fusions, fusions.c.run_id == runs.c.id))
        tags = _tags_by_run(conn, subquery=ids.where(_has_tag(tag)) if tag else ids) if rows else {}
    models_cache: dict[str, list[str]] = {}
    out: list[AttributionRow] = []
    for run_id, n, raw_models, source, created_at, bon_index, copied, raw_shares in rows:
        models = models_cache.get(raw_models)
        if models is None:  # a batch's runs share one models list: parse it once
            models = models_cache[raw_models] = _loads(raw_models, [])
        out.append(
            AttributionRow(
                run_id=run_id,
                n=n,
                tags=list(tags.get(run_id, ())),
                models=list(models),
                copied_fraction=None if copied is None else float(copied),
                shares=[float(x) for x in json.loads(raw_shares)],
                bon_index=bon_index,
                created_at=created_at,
                source=source,
            )
        )
    return out

"""History's reads: run summaries filtered and counted, and the tags and model labels to filter by.

Summaries are read without candidates (one query, plus one for the tags of the page); see ``storage.sql``
for transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import ColumnElement, Engine, Select, exists, func, or_, select

from fusion.types import model_groups
from storage.sql import (
    candidates,
    fusions,
    loads,
    picks,
    reading,
    run_has_tag,
    run_model_groups,
    run_tags,
    runs,
    tags_by_run,
    valid_text,
    votes,
)


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


def _timestamp(value: float | datetime | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


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
        conds.append(run_has_tag(tag))
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
    stmt = _summaries(conds).offset(max(0, int(offset)))
    if limit is not None:
        stmt = stmt.limit(max(0, int(limit)))
    with reading(engine) as conn:
        rows = conn.execute(stmt).mappings().all()
        tags = tags_by_run(conn, [r["id"] for r in rows])
    return [_summary(r, tags.get(r["id"], [])) for r in rows]


def _summaries(conds: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """The summary columns of the runs matching ``conds``, newest first."""
    n_failed = (
        select(func.count())
        .select_from(candidates)
        .where(candidates.c.run_id == runs.c.id, candidates.c.error.is_not(None))
        .scalar_subquery()
    )
    n_votes = select(func.count()).select_from(votes).where(votes.c.run_id == runs.c.id).scalar_subquery()
    return (
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
    )


def _summary(r: Any, tags: list[str]) -> RunSummary:
    return RunSummary(
        id=r["id"],
        prompt=r["prompt"],
        system=r["system"],
        source=r["source"],
        n=r["n"],
        models=loads(r["models"], []),
        tags=tags,
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
    with reading(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(runs).where(*conds)).scalar_one())


def all_tags(engine: Engine) -> list[str]:
    with reading(engine) as conn:
        return list(conn.execute(select(run_tags.c.tag).distinct().order_by(run_tags.c.tag)).scalars())


def all_models(engine: Engine) -> list[str]:
    """The labels runs are grouped under by model, sorted: the models of ordinary runs, and one
    ``scenario:<id>`` per built-in scenario in place of its personas (see ``fusion.types.model_groups``)."""
    with reading(engine) as conn:
        return list(
            conn.execute(select(run_model_groups.c.label).distinct().order_by(run_model_groups.c.label)).scalars()
        )

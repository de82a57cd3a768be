"""What the Results page reads for its statistics: cheap signatures to cache them under, and the
attribution shares of every run (no spans, no texts). The votes themselves: ``storage.votes.all_votes``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from fusion.types import model_groups
from storage.sql import fusions, loads, picks, reading, run_has_tag, runs, tagged_ids, tags_by_run, votes


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
        vote_stmt = vote_stmt.where(votes.c.run_id.in_(tagged_ids(tag)))
        run_stmt = run_stmt.where(run_has_tag(tag))
    with reading(engine) as conn:
        facts = (*conn.execute(vote_stmt).one(), *conn.execute(run_stmt).one())
    return hashlib.sha256(repr((tag or "", *facts)).encode()).hexdigest()


def runs_signature(engine: Engine, *, tag: str | None = None) -> str:
    """Changes whenever a run (with ``tag`` if given) is saved, saved again or deleted: what a page can
    cache :func:`attribution_rows` statistics under. Two index lookups (count and newest ``updated_at``)."""
    stmt = select(func.count(), func.max(runs.c.updated_at)).select_from(runs)
    if tag:
        stmt = stmt.where(run_has_tag(tag))
    with reading(engine) as conn:
        count, newest = conn.execute(stmt).one()
    return f"{tag or ''}|{int(count)}|{newest!r}"


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
        stmt = stmt.where(run_has_tag(tag))
    with reading(engine) as conn:
        rows = conn.execute(stmt).all()
        ids = select(runs.c.id).select_from(runs.join(fusions, fusions.c.run_id == runs.c.id))
        tags = tags_by_run(conn, subquery=ids.where(run_has_tag(tag)) if tag else ids) if rows else {}
    models_cache: dict[str, list[str]] = {}
    out: list[AttributionRow] = []
    for run_id, n, raw_models, source, created_at, bon_index, copied, raw_shares in rows:
        models = models_cache.get(raw_models)
        if models is None:  # a batch's runs share one models list: parse it once
            models = models_cache[raw_models] = loads(raw_models, [])
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

"""Statistics reads: the few columns the Results page's vote statistics use, read in SQL without building records.

Why a separate read: ``storage.votes.all_votes`` returns one :class:`~storage.votes.VoteRecord` per vote
with its run's prompt, parsed models JSON, tags and pick, which is what the exports and the History page
want. The statistics need five short fields per vote and, per voted run, the labels it is split under. At
15,000 votes on 5,000 runs building the records took 0.5-0.9 s (bench/results/stats_scale.md), more than all
the statistics together; this read takes a small fraction of that.

Four statements in one read transaction (a single snapshot on both backends, so the labels always belong
to the votes read):

1. the votes: ``run_id, annotator, winner, choice, blind``, oldest first as
   :func:`storage.votes.all_votes` orders them;
2. ``(id, n)`` of the voted runs: the split by N;
3. ``(run_id, label)`` from ``run_model_groups`` for the voted runs: the labels of the split by model, which
   ``save_run`` writes from ``fusion.types.model_groups`` (so no models JSON is parsed here);
4. ``(run_id, tag)`` from ``run_tags`` for the voted runs.

The split by annotator comes from the votes themselves. The group
counts and the bootstrap stay in numpy (``fusion.stats``): the interval resamples runs, so it needs each
run's votes, which a ``GROUP BY`` of the counts would already have summed away.

:func:`attribution_columns` does the same for the attribution statistics: copied fraction, shares and
the pick's index per attributed run, without the tags, models and records of
``storage.stats_reads.attribution_rows``.

Uses SQLAlchemy core only and the tables of ``storage.tables``; works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from fusion.pairwise import JUDGE_PREFIX
from storage.sql import reading

_tables = SQLModel.metadata.tables
_runs = _tables["runs"]
_run_tags = _tables["run_tags"]
_run_model_groups = _tables["run_model_groups"]
_votes = _tables["votes"]
_fusions = _tables["fusions"]
_picks = _tables["picks"]

# The run-level splits this read provides, named as fusion.stats.SPLITS names them.
MODEL_SPLIT, N_SPLIT, TAG_SPLIT = "Model", "N", "Tag"


@dataclass
class VoteColumns:
    """Votes as parallel lists (one entry per vote, oldest first) and, per run-level split, the
    ``(run_id, label)`` pairs of the voted runs (each pair once; a run may have several labels or none)."""

    run_id: list[str]
    annotator: list[str]
    winner: list[str]
    choice: list[str]
    blind: list[bool]
    run_labels: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.run_id)


def vote_columns(engine: Engine, *, tag: str | None = None, people_only: bool = True) -> VoteColumns:
    """The votes (on runs with ``tag`` if given) as the statistics read them; see the module docstring.

    The same votes, in the same order, as ``storage.votes.all_votes(engine, tag=tag)``, less the pairwise
    judge's verdicts (annotators ``judge:<model>``) unless ``people_only`` is False: the people's win rate
    is never mixed with a judge's.
    """
    where: list[Any] = []
    if people_only:
        where.append(~_votes.c.annotator.startswith(JUDGE_PREFIX, autoescape=True))
    if tag:
        where.append(_votes.c.run_id.in_(select(_run_tags.c.run_id).where(_run_tags.c.tag == tag)))
    vote_stmt = (
        select(_votes.c.run_id, _votes.c.annotator, _votes.c.winner, _votes.c.choice, _votes.c.blind)
        .where(*where)
        .order_by(_votes.c.created_at, _votes.c.id)
    )
    voted_runs = select(_votes.c.run_id).where(*where)
    # n by a query of its own: joining runs to every vote looked the run up once per vote (15,000 index
    # searches into the wide runs table, about twice the time of the votes' own scan on SQLite).
    n_stmt = select(_runs.c.id, _runs.c.n).where(_runs.c.id.in_(voted_runs))
    group_stmt = select(_run_model_groups.c.run_id, _run_model_groups.c.label).where(
        _run_model_groups.c.run_id.in_(voted_runs)
    )
    tag_stmt = select(_run_tags.c.run_id, _run_tags.c.tag).where(_run_tags.c.run_id.in_(voted_runs))
    with reading(engine) as conn:  # one snapshot for the statements of a read (storage.sql)
        rows = conn.execute(vote_stmt).all()
        if not rows:
            return VoteColumns([], [], [], [], [], {MODEL_SPLIT: [], N_SPLIT: [], TAG_SPLIT: []})
        n_pairs = [(run, str(n)) for run, n in conn.execute(n_stmt)]
        model_pairs = [(run, label) for run, label in conn.execute(group_stmt)]
        tag_pairs = [(run, label) for run, label in conn.execute(tag_stmt)]
    # One list per column through itemgetter (in C); zip(*rows) would build an argument tuple of every row.
    run_id, annotator, winner, choice, blind = (list(map(itemgetter(i), rows)) for i in range(5))
    return VoteColumns(
        run_id=run_id,
        annotator=annotator,
        winner=winner,
        choice=choice,
        blind=[bool(b) for b in blind],
        run_labels={
            MODEL_SPLIT: model_pairs,
            N_SPLIT: n_pairs,
            TAG_SPLIT: tag_pairs,
        },
    )


@dataclass
class AttributionColumns:
    """Per run with an attributed fused answer without error: the copied fraction, each candidate's share
    of the fused text (shared spans count for each source) and the Best-of-N pick's index (``None``
    without a pick). Parallel lists, one entry per run, in no particular order."""

    copied_fraction: list[float | None]
    shares: list[list[float]]
    bon_index: list[int | None]

    def __len__(self) -> int:
        return len(self.shares)


def attribution_columns(engine: Engine, *, tag: str | None = None) -> AttributionColumns:
    """What the attribution statistics read (on runs with ``tag`` if given): the runs
    ``storage.stats_reads.attribution_rows`` returns, without their tags, models or dates.

    One statement on the fusions' covering index and the picks; the runs table is read only to filter by
    tag (by run id, through the tags' index)."""
    stmt = (
        select(_fusions.c.copied_fraction, _fusions.c.shares, _picks.c.idx)
        .select_from(_fusions.outerjoin(_picks, _picks.c.run_id == _fusions.c.run_id))
        # shares is set exactly for attributed fused answers without error
        .where(_fusions.c.shares.is_not(None))
    )
    if tag:
        stmt = stmt.where(_fusions.c.run_id.in_(select(_run_tags.c.run_id).where(_run_tags.c.tag == tag)))
    with reading(engine) as conn:  # one snapshot for the statements of a read (storage.sql)
        rows = conn.execute(stmt).all()
    return AttributionColumns(
        copied_fraction=[None if c is None else float(c) for c, _, _ in rows],
        shares=[[float(x) for x in json.loads(raw)] for _, raw, _ in rows],
        bon_index=[i for _, _, i in rows],
    )

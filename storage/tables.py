"""SQLModel tables: the stored shape of runs, candidates, picks, fusions, tags and votes.

These classes describe the *current* schema, which is what queries are written against. The schema in a
database file is built by ``storage.migrations`` (frozen per migration); a test checks that the two agree.

Conventions that keep the SQL portable between SQLite and PostgreSQL:
- timestamps are epoch seconds as floats (``fusion.types.Run.created_at`` is one already);
- JSON is stored as text written by ``storage.sql`` (so NaN in scores survives, and no JSON column type
  with dialect quirks is needed);
- every child row references ``runs.id`` with ``ON DELETE CASCADE`` (SQLite needs ``foreign_keys=ON``,
  which ``storage.db`` turns on for every connection).
"""

from __future__ import annotations

from sqlalchemy import Index, Text, UniqueConstraint, true
from sqlmodel import Field, SQLModel

# Values a vote may take; queries validate against these, the UI offers them.
CHOICES = ("A", "B", "tie", "both_bad")
SIDES = ("bon", "fused")
WINNERS = ("fused", "bon", "tie", "both_bad")


class SchemaMigration(SQLModel, table=True):
    __tablename__ = "schema_migrations"

    id: str = Field(primary_key=True, max_length=100)
    description: str = Field(sa_type=Text)
    applied_at: float


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_created_at", "created_at"),
        Index("ix_runs_source", "source"),
        Index("ix_runs_n", "n"),
        Index("ix_runs_updated_at", "updated_at"),
    )

    id: str = Field(primary_key=True, max_length=64)
    prompt: str = Field(sa_type=Text)
    system: str | None = Field(default=None, sa_type=Text)
    source: str = Field(max_length=200)
    n: int
    # JSON list of the distinct candidate and pool models, searched with LIKE '%"<model>"%'.
    models: str = Field(sa_type=Text)
    pool: str = Field(sa_type=Text)  # JSON list of ModelSpec.to_dict() (never holds a key)
    settings: str = Field(sa_type=Text)  # JSON of SamplingSettings.to_dict()
    created_at: float
    updated_at: float


class RunTagRow(SQLModel, table=True):
    __tablename__ = "run_tags"
    __table_args__ = (Index("ix_run_tags_tag", "tag"),)

    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", primary_key=True, max_length=64)
    tag: str = Field(primary_key=True, max_length=200)
    position: int  # keeps the run's tag order for an exact round-trip


class RunModelGroupRow(SQLModel, table=True):
    """The labels a run is listed under when runs or votes are split by model (``fusion.types.model_groups``):
    its models, or ``scenario:<id>`` for a built-in scenario's run. Kept as rows, like tags, so the model
    filter and the list of models are index lookups instead of a parse of every run's ``models`` JSON."""

    __tablename__ = "run_model_groups"
    __table_args__ = (Index("ix_run_model_groups_label", "label"),)

    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", primary_key=True, max_length=64)
    label: str = Field(primary_key=True, max_length=300)


class CandidateRow(SQLModel, table=True):
    __tablename__ = "candidates"

    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", primary_key=True, max_length=64)
    idx: int = Field(primary_key=True)
    text: str = Field(sa_type=Text)
    model: str = Field(max_length=300)
    sample_index: int
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = Field(default=None, sa_type=Text)
    cached: bool = False


class PickRow(SQLModel, table=True):
    """The Best-of-N verdict of a run (one per run)."""

    __tablename__ = "picks"

    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", primary_key=True, max_length=64)
    method: str = Field(max_length=300)
    idx: int | None = None
    scores: str = Field(sa_type=Text)  # JSON list[float | None]
    notes: str = Field(sa_type=Text)  # JSON list[str | None]
    error: str | None = Field(default=None, sa_type=Text)


class FusionRow(SQLModel, table=True):
    """The fused answer of a run (one per run), with its attribution."""

    __tablename__ = "fusions"
    # Covering index: the queue and the statistics read these without touching the (large) row itself.
    # Only short columns: a PostgreSQL index entry must stay under about 2.7 kB.
    __table_args__ = (
        Index("ix_fusions_facts", "run_id", "has_pair", "same_as_pick", "method", "copied_fraction", "shares"),
    )

    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", primary_key=True, max_length=64)
    text: str = Field(sa_type=Text)
    method: str = Field(max_length=300)
    model: str | None = Field(default=None, max_length=300)
    template: str | None = Field(default=None, max_length=200)
    order: str = Field(sa_type=Text)  # JSON list[int]
    seed: int | None = None
    latency_s: float | None = None
    error: str | None = Field(default=None, sa_type=Text)
    attribution: str | None = Field(default=None, sa_type=Text)  # JSON of Attribution.to_dict()
    copied_fraction: float | None = None
    # The run has what record_vote needs: a pick, and a fused answer without error that is not blank.
    # Written by save_run with the two below; NULL = unknown (written by code older than 0003), filled in
    # by storage.runs.fill_pair_facts when the database is next opened with init_db.
    has_pair: bool | None = None
    # The fused text equals the Best-of-N text after .strip() (``storage.runs.is_identical``): such a pair
    # offers nothing to vote on.
    same_as_pick: bool | None = None
    # JSON list[float]: Attribution.shares on its own, so statistics need not parse every run's spans;
    # set for an attributed fused answer without error, NULL otherwise.
    shares: str | None = Field(default=None, sa_type=Text)


class VoteRow(SQLModel, table=True):
    """One annotator's pairwise judgement of a run: Best-of-N pick against the fused answer."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("run_id", "annotator", name="uq_votes_run_annotator"),
        Index("ix_votes_annotator", "annotator"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", max_length=64)
    annotator: str = Field(max_length=200)
    choice: str = Field(max_length=16)  # A | B | tie | both_bad, as clicked
    a_is: str = Field(max_length=16)  # bon | fused: which side was shown as Response A
    winner: str = Field(max_length=16)  # fused | bon | tie | both_bad, derived from choice and a_is
    comment: str | None = Field(default=None, sa_type=Text)
    ranking: str | None = Field(default=None, sa_type=Text)  # JSON list[int]: candidate indices, best first
    client_token: str | None = Field(default=None, max_length=200)
    created_at: float
    updated_at: float
    # Cast before the voter saw which response was which (labels, scores, attribution, candidate cards).
    # Votes stored before 0003 were all cast on the blind panel, hence the default.
    blind: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    # A pairwise judge's verdict (annotator "judge:<model>", both orders asked): whether the two orders
    # named the same system; a disagreement is stored as a tie. NULL for a person's vote.
    consistent: bool | None = Field(default=None)


class VoteTokenRow(SQLModel, table=True):
    """Every idempotency token a (run, annotator) has submitted, so a late retry of an earlier form
    submission cannot overwrite a newer vote."""

    __tablename__ = "vote_tokens"

    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", primary_key=True, max_length=64)
    annotator: str = Field(primary_key=True, max_length=200)
    client_token: str = Field(primary_key=True, max_length=200)
    created_at: float


class BatchClaimRow(SQLModel, table=True):
    """Which batch worker computes which run of a job (storage.claims): one row per run id, with a lease."""

    __tablename__ = "batch_claims"
    __table_args__ = (Index("ix_batch_claims_free", "job", "done", "position"),)

    job: str = Field(primary_key=True, max_length=64)
    run_id: str = Field(primary_key=True, max_length=64)
    position: int  # the run's place in the input, so workers take runs in input order
    worker: str | None = Field(default=None, max_length=300)
    lease_until: float = 0.0
    done: bool = False
    input_id: str | None = Field(default=None, sa_type=Text)  # JSON of the input line's id (1 and "1" differ)
    input_line: int | None = None


ALL_TABLES = (
    SchemaMigration,
    RunRow,
    RunTagRow,
    RunModelGroupRow,
    CandidateRow,
    PickRow,
    FusionRow,
    VoteRow,
    VoteTokenRow,
    BatchClaimRow,
)

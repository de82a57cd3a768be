"""What storage's modules share: the table handles, transactions, JSON columns, text scrubbing, tag filters.

Writes run in one transaction each (``BEGIN IMMEDIATE`` on SQLite, see ``storage.db``) and are retried as a
whole on transient failures: a lock wait that ran out, or a unique-key race lost to a concurrent writer (the
retry then sees the winner's row and updates it). Reads use deferred transactions so they never queue
behind writers.

The reads and writes themselves live by concern: ``storage.runs`` (save, load, delete a run),
``storage.listing`` (History's filtered lists), ``storage.votes`` (votes and the annotation queue) and
``storage.stats_reads`` (what Results reads for its statistics).
"""

from __future__ import annotations

import json
import random
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence, TypeVar

from sqlalchemy import Connection, ColumnElement, Engine, Select, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import SQLModel

from fusion.jsonl import storable_text
from storage.db import READ_ONLY, is_transient
import storage.tables  # noqa: F401 - importing it registers the tables on SQLModel.metadata

T = TypeVar("T")

_tables = SQLModel.metadata.tables
runs = _tables["runs"]
run_tags = _tables["run_tags"]
run_model_groups = _tables["run_model_groups"]
candidates = _tables["candidates"]
picks = _tables["picks"]
fusions = _tables["fusions"]
votes = _tables["votes"]
vote_tokens = _tables["vote_tokens"]

WRITE_ATTEMPTS = 10


def dumps(value: Any) -> str:
    # NaN is allowed here (a selector may score NaN) so the stored run round-trips exactly; exports scrub it.
    return json.dumps(value, ensure_ascii=False)


valid_text = storable_text  # the rule is the engine's (fusion.jsonl), so batch output lines agree with it


def scrub(value: Any) -> Any:
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def loads(raw: str | None, default: Any = None) -> Any:
    if raw is None or raw == "":
        return default
    return json.loads(raw)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        conn = conn.execution_options(**{READ_ONLY: True})
        if conn.dialect.name == "postgresql":
            # One snapshot for every statement of a read (SQLite's WAL read transaction gives one anyway):
            # under READ COMMITTED, a read made of two queries (votes, then their runs) could see a vote
            # whose run another transaction deleted in between. Read-only, so it never fails to serialise.
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def write(engine: Engine, work: Callable[[Connection], T]) -> T:
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


# Tag and model filters are written as "id IN (runs with that label)", not as a correlated EXISTS: the
# database then starts from the label's index (a rare label costs almost nothing) instead of probing every
# run (measured in bench/storage_queries.py).


def tagged_ids(tag: str) -> Select[Any]:
    return select(run_tags.c.run_id).where(run_tags.c.tag == tag)


def fusion_has_tag(tag: str) -> ColumnElement[bool]:
    return fusions.c.run_id.in_(tagged_ids(tag))


def run_has_tag(tag: str) -> ColumnElement[bool]:
    return runs.c.id.in_(tagged_ids(tag))


def tags_by_run(conn: Connection, run_ids: Sequence[str] | None = None, subquery: Any = None) -> dict[str, list[str]]:
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

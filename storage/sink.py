"""The database as the batch runner's :class:`fusion.batch.RunSink`: the engine decides what to compute,
this decides where the finished runs go."""

from __future__ import annotations

from typing import Sequence

from sqlalchemy import Engine

from fusion.types import Run
from storage.runs import existing_run_ids, load_run, save_run


class DatabaseSink:
    """Runs of a batch stored through :mod:`storage.runs` (text scrubbed as every saved run is)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def done(self, run_ids: Sequence[str]) -> set[str]:
        return existing_run_ids(self.engine, run_ids)

    def load(self, run_id: str) -> Run | None:
        return load_run(self.engine, run_id)

    def save(self, run: Run) -> None:
        save_run(self.engine, run)

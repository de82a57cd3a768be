"""Storage behind Annotate, History and Results: identical pairs known when a run is saved, a stable
``created_at``, blind votes, undo, runs grouped by model (scenarios under their scenario), attribution
shares, and migration 0003's backfill of existing rows. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion.errors import InputError  # noqa: E402
from fusion.types import model_groups  # noqa: E402
from storage import listing, stats_reads  # noqa: E402
from storage import runs as runs_db  # noqa: E402
from storage import votes as votes_db  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrations import MIGRATIONS, applied_migrations, init_db, migrate  # noqa: E402
from test_storage import make_run  # noqa: E402


@pytest.fixture()
def engine(db_url: str):
    eng = init_db(db_url)
    yield eng
    eng.dispose()


def _fusion_column(engine, run_id: str, column: str):
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT {column} FROM fusions WHERE run_id = :r"), {"r": run_id}).scalar_one()


# ----------------------------------------------------------------------------------------------------------
# (a) Identical pairs are known when the run is saved


def test_same_as_pick_is_stored_with_the_fusion(engine):
    runs = [
        make_run(run_id="same", texts=["  Paris.\n", "Lyon.", "Nice."], fused_text="Paris."),  # after .strip()
        make_run(run_id="differs"),
        make_run(run_id="nopick", bon_index=None),
        make_run(run_id="case", texts=["paris.", "b", "c"], fused_text="Paris."),  # case matters
    ]
    for run in runs:
        runs_db.save_run(engine, run)
    stored = {r.id: bool(_fusion_column(engine, r.id, "same_as_pick")) for r in runs}
    assert stored == {"same": True, "differs": False, "nopick": False, "case": False}
    assert stored == {r.id: runs_db.is_identical(r) for r in runs}  # the rule of is_identical, exactly
    assert {s.id: s.same_as_pick for s in listing.list_runs(engine)} == stored
    # A re-save with another fused text updates the flag.
    runs[0].fused.text = "Paris, on the Seine."
    runs_db.save_run(engine, runs[0])
    assert bool(_fusion_column(engine, "same", "same_as_pick")) is False
    runs_db.save_run(engine, make_run(run_id="nofusion", fused_text=None))
    assert {s.id: s.same_as_pick for s in listing.list_runs(engine)}["nofusion"] is None  # no fusion, no pair


def test_queue_total_is_right_from_the_start_and_does_not_shrink(engine):
    for i in range(5):
        fused = "Paris." if i in (1, 3) else "Paris is the capital of France."  # "Paris." is the pick
        runs_db.save_run(engine, make_run(run_id=f"r{i}", created_at=float(i), fused_text=fused))
    assert votes_db.queue_counts(engine, "ann") == votes_db.QueueCounts(done=0, total=3, identical=2)
    queue = votes_db.annotation_queue(engine, "ann", limit=None)
    assert queue == ["r0", "r2", "r4"]
    for k, run_id in enumerate(queue, start=1):
        votes_db.record_vote(engine, run_id=run_id, annotator="ann", choice="A", a_is="fused")
        assert votes_db.queue_counts(engine, "ann") == votes_db.QueueCounts(done=k, total=3, identical=2)
    assert votes_db.annotation_queue(engine, "ann") == []
    assert votes_db.queue_progress(engine, "ann") == (3, 3)


def test_a_vote_on_an_identical_pair_does_not_count_as_done(engine):
    """Such votes exist (cast before identical pairs were known); they are not part of the queue's total."""
    runs_db.save_run(engine, make_run(run_id="ident", fused_text="Paris."))
    runs_db.save_run(engine, make_run(run_id="real"))
    votes_db.record_vote(engine, run_id="ident", annotator="ann", choice="tie", a_is="bon")
    assert votes_db.queue_counts(engine, "ann") == votes_db.QueueCounts(done=0, total=1, identical=1)


def test_unknown_same_as_pick_counts_as_votable(engine):
    """same_as_pick NULL on a pair means unknown: the run stays in the queue (the page sees the texts)."""
    runs_db.save_run(engine, make_run(run_id="old", fused_text="Paris."))
    with engine.begin() as conn:
        conn.execute(text("UPDATE fusions SET same_as_pick = NULL"))
    assert votes_db.annotation_queue(engine, "ann") == ["old"]
    assert votes_db.queue_counts(engine, "ann") == votes_db.QueueCounts(done=0, total=1, identical=0)


def test_rows_written_by_older_code_are_filled_in_when_the_database_is_opened(engine, db_url):
    """Code older than 0003, still running while the database was migrated, writes fusions without
    has_pair, same_as_pick and shares: such runs are out of the queue until init_db fills them in."""
    runs_db.save_run(engine, make_run(run_id="same", fused_text="Paris.", created_at=1.0))
    runs_db.save_run(engine, make_run(run_id="differs", created_at=2.0))
    failed = make_run(run_id="failed", created_at=3.0)
    failed.fused.error = "boom"
    runs_db.save_run(engine, failed)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT run_id, has_pair, same_as_pick, shares FROM fusions ORDER BY run_id")).all()
    with engine.begin() as conn:
        conn.execute(text("UPDATE fusions SET has_pair = NULL, same_as_pick = NULL, shares = NULL"))
    assert votes_db.annotation_queue(engine, "ann") == [] and stats_reads.attribution_rows(engine) == []
    again = init_db(db_url)
    with again.connect() as conn:
        after = conn.execute(text("SELECT run_id, has_pair, same_as_pick, shares FROM fusions ORDER BY run_id")).all()
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
    assert votes_db.queue_counts(again, "ann") == votes_db.QueueCounts(done=0, total=1, identical=1)
    assert runs_db.fill_pair_facts(again) == 0  # nothing left to do
    again.dispose()


# ----------------------------------------------------------------------------------------------------------
# (b) Re-saving keeps created_at


def test_resave_keeps_created_at_and_queue_order(engine):
    runs_db.save_run(engine, make_run(run_id="scenario-run", created_at=1_000.0, source="scenario:first-marathon"))
    runs_db.save_run(engine, make_run(run_id="later", created_at=2_000.0))
    first = {s.id: s for s in listing.list_runs(engine)}
    assert votes_db.annotation_queue(engine, "ann") == ["scenario-run", "later"]
    time.sleep(0.01)
    # Reopening the scenario builds a new Run with the same deterministic id and a new created_at.
    reopened = make_run(run_id="scenario-run", created_at=time.time(), source="scenario:first-marathon")
    runs_db.save_run(engine, reopened)
    after = {s.id: s for s in listing.list_runs(engine)}
    assert after["scenario-run"].created_at == 1_000.0
    assert after["scenario-run"].updated_at > first["scenario-run"].updated_at
    assert runs_db.load_run(engine, "scenario-run").created_at == 1_000.0
    assert [s.id for s in listing.list_runs(engine)] == ["later", "scenario-run"]
    assert votes_db.annotation_queue(engine, "ann") == ["scenario-run", "later"]


def test_run_exists(engine):
    assert runs_db.run_exists(engine, "r") is False
    runs_db.save_run(engine, make_run(run_id="r"))
    assert runs_db.run_exists(engine, "r") is True
    assert runs_db.run_exists(engine, "R") is False and runs_db.run_exists(engine, "") is False
    runs_db.delete_run(engine, "r")
    assert runs_db.run_exists(engine, "r") is False


def test_resave_keeps_votes_only_for_an_unchanged_pair_and_keeps_created_at(engine):
    run = make_run(run_id="v", created_at=50.0)
    runs_db.save_run(engine, run)
    votes_db.record_vote(engine, run_id="v", annotator="ann", choice="A", a_is="fused")
    runs_db.save_run(engine, make_run(run_id="v", created_at=99.0))  # same texts
    assert len(votes_db.votes_for_run(engine, "v")) == 1
    runs_db.save_run(engine, make_run(run_id="v", created_at=99.0, fused_text="Another fused answer."))
    assert votes_db.votes_for_run(engine, "v") == []
    assert runs_db.load_run(engine, "v").created_at == 50.0


# ----------------------------------------------------------------------------------------------------------
# (c) Blind or not, recorded per vote


def test_blind_flag_is_stored_and_replaced_by_a_revote(engine):
    runs_db.save_run(engine, make_run(run_id="r"))
    first = votes_db.record_vote(engine, run_id="r", annotator="ann", choice="A", a_is="fused")
    assert first.blind is True  # the default: cast on the blind panel
    seen = votes_db.record_vote(engine, run_id="r", annotator="ann", choice="B", a_is="fused", blind=False)
    assert seen.id == first.id and seen.blind is False
    assert votes_db.get_vote(engine, "r", "ann").blind is False
    again = votes_db.record_vote(engine, run_id="r", annotator="ann", choice="tie", a_is="fused", blind=True)
    assert again.blind is True
    votes_db.record_vote(engine, run_id="r", annotator="bob", choice="A", a_is="bon", blind=False)
    assert {(v.annotator, v.blind) for v in votes_db.all_votes(engine)} == {("ann", True), ("bob", False)}


def test_a_replayed_token_keeps_the_stored_blind_flag(engine):
    runs_db.save_run(engine, make_run(run_id="r"))
    votes_db.record_vote(engine, run_id="r", annotator="ann", choice="A", a_is="fused", client_token="t", blind=False)
    replay = votes_db.record_vote(engine, run_id="r", annotator="ann", choice="A", a_is="fused", client_token="t")
    assert replay.blind is False


@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_blind_must_be_a_bool(engine, value):
    runs_db.save_run(engine, make_run(run_id="r"))
    with pytest.raises(InputError, match="blind"):
        votes_db.record_vote(engine, run_id="r", annotator="ann", choice="A", a_is="fused", blind=value)
    assert votes_db.votes_for_run(engine, "r") == []


# ----------------------------------------------------------------------------------------------------------
# (d) Undo


def test_undo_removes_the_vote_and_puts_the_run_back_in_the_queue(engine):
    runs_db.save_run(engine, make_run(run_id="r1", created_at=1.0))
    runs_db.save_run(engine, make_run(run_id="r2", created_at=2.0))
    votes_db.record_vote(engine, run_id="r1", annotator="ann", choice="A", a_is="fused", client_token="form-1")
    votes_db.record_vote(engine, run_id="r1", annotator="bob", choice="B", a_is="fused")
    assert votes_db.annotation_queue(engine, "ann") == ["r2"]
    assert votes_db.delete_vote(engine, "r1", " ann ") is True
    assert votes_db.get_vote(engine, "r1", "ann") is None
    assert votes_db.annotation_queue(engine, "ann") == ["r1", "r2"]
    assert votes_db.queue_counts(engine, "ann").done == 0
    assert [v.annotator for v in votes_db.votes_for_run(engine, "r1")] == ["bob"]  # others' votes stay
    assert votes_db.delete_vote(engine, "r1", "ann") is False  # a second undo changes nothing
    assert votes_db.delete_vote(engine, "r1", "") is False and votes_db.delete_vote(engine, "missing", "ann") is False


def test_a_late_replay_of_the_undone_submission_does_not_bring_it_back(engine):
    runs_db.save_run(engine, make_run(run_id="r"))
    votes_db.record_vote(engine, run_id="r", annotator="ann", choice="A", a_is="fused", client_token="form-1")
    votes_db.delete_vote(engine, "r", "ann")
    with pytest.raises(votes_db.VoteWithdrawn, match="undone"):
        votes_db.record_vote(engine, run_id="r", annotator="ann", choice="A", a_is="fused", client_token="form-1")
    assert votes_db.get_vote(engine, "r", "ann") is None
    assert isinstance(votes_db.VoteWithdrawn("x"), InputError)  # pages that show InputError messages show this one
    # A new submission (a new token, or none) is a new vote.
    new = votes_db.record_vote(engine, run_id="r", annotator="ann", choice="B", a_is="fused", client_token="form-2",
                        blind=False)
    assert (new.winner, new.blind, new.created_at == new.updated_at) == ("bon", False, True)
    votes_db.delete_vote(engine, "r", "ann")
    assert votes_db.record_vote(engine, run_id="r", annotator="ann", choice="tie", a_is="bon").winner == "tie"


def test_replay_of_a_replaced_then_undone_vote_is_refused(engine):
    runs_db.save_run(engine, make_run(run_id="r"))
    votes_db.record_vote(engine, run_id="r", annotator="ann", choice="A", a_is="fused", client_token="t1")
    votes_db.record_vote(engine, run_id="r", annotator="ann", choice="B", a_is="fused", client_token="t2")
    votes_db.delete_vote(engine, "r", "ann")
    for token in ("t1", "t2"):
        with pytest.raises(votes_db.VoteWithdrawn):
            votes_db.record_vote(engine, run_id="r", annotator="ann", choice="A", a_is="fused", client_token=token)
    assert votes_db.votes_for_run(engine, "r") == []


def test_last_vote(engine):
    runs_db.save_run(engine, make_run(run_id="r1", tags=["geo"]))
    runs_db.save_run(engine, make_run(run_id="r2"))
    assert votes_db.last_vote(engine, "ann") is None
    votes_db.record_vote(engine, run_id="r1", annotator="ann", choice="A", a_is="fused")
    time.sleep(0.002)
    votes_db.record_vote(engine, run_id="r2", annotator="ann", choice="A", a_is="fused")
    votes_db.record_vote(engine, run_id="r1", annotator="bob", choice="A", a_is="fused")
    assert votes_db.last_vote(engine, "ann").run_id == "r2"
    assert votes_db.last_vote(engine, "ann", tag="geo").run_id == "r1"
    time.sleep(0.002)
    votes_db.record_vote(engine, run_id="r1", annotator="ann", choice="tie", a_is="fused")  # changed: now the latest
    assert votes_db.last_vote(engine, " ann ").run_id == "r1"
    votes_db.delete_vote(engine, "r1", "ann")
    assert votes_db.last_vote(engine, "ann").run_id == "r2"
    assert votes_db.last_vote(engine, "nobody") is None and votes_db.last_vote(engine, "") is None


# ----------------------------------------------------------------------------------------------------------
# (e) Scenario personas grouped under their scenario


def test_model_groups_rule():
    personas = ["scenario:coach", "scenario:doctor", "scenario:coach"]
    assert model_groups(personas, "scenario:first-marathon") == ["scenario:first-marathon"]
    assert model_groups(["b/x", "a/y", "b/x", ""], "live") == ["b/x", "a/y"]
    assert model_groups(["m"], "scenario:") == ["m"]  # no scenario id: not a scenario run
    assert model_groups([], "batch") == []


def test_runs_and_votes_are_grouped_under_their_scenario(engine):
    personas = ["scenario:coach", "scenario:doctor", "scenario:coach"]
    runs_db.save_run(engine, make_run(run_id="s1", source="scenario:first-marathon", models=personas))
    runs_db.save_run(engine, make_run(run_id="s2", source="scenario:lighthouse-story",
                                models=["scenario:poet", "scenario:critic", "scenario:kid"]))
    runs_db.save_run(engine, make_run(run_id="l1", models=["openai/gpt-4o", "cohere/command-r", "openai/gpt-4o"]))
    runs_db.save_run(engine, make_run(run_id="b1", source="batch", models=["openai/gpt-4o"] * 3))
    assert listing.all_models(engine) == [
        "cohere/command-r", "openai/gpt-4o", "scenario:first-marathon", "scenario:lighthouse-story",
    ]
    assert [s.id for s in listing.list_runs(engine, model="scenario:first-marathon")] == ["s1"]
    assert listing.count_runs(engine, model="scenario:lighthouse-story") == 1
    assert listing.list_runs(engine, model="scenario:coach") == []  # a persona is not a label
    assert [s.id for s in listing.list_runs(engine, model="openai/gpt-4o")] == ["b1", "l1"]
    assert listing.count_runs(engine, model="openai/gpt-4o", source="batch") == 1
    groups = {s.id: s.model_groups for s in listing.list_runs(engine)}
    assert groups == {
        "s1": ["scenario:first-marathon"], "s2": ["scenario:lighthouse-story"],
        "l1": ["openai/gpt-4o", "cohere/command-r"], "b1": ["openai/gpt-4o"],
    }
    assert listing.list_runs(engine, model="scenario:first-marathon")[0].models == ["scenario:coach", "scenario:doctor"]
    for run_id in ("s1", "l1"):
        votes_db.record_vote(engine, run_id=run_id, annotator="ann", choice="A", a_is="fused")
    assert {v.run_id: v.model_groups for v in votes_db.all_votes(engine)} == {
        "s1": ["scenario:first-marathon"], "l1": ["openai/gpt-4o", "cohere/command-r"],
    }
    assert {r.run_id: r.model_groups for r in stats_reads.attribution_rows(engine)} == groups
    # Groups follow the run: a re-save under another source regroups it, a delete removes its labels.
    runs_db.save_run(engine, make_run(run_id="s2", source="supplied", models=["supplied"] * 3))
    runs_db.delete_run(engine, "s1")
    assert listing.all_models(engine) == ["cohere/command-r", "openai/gpt-4o", "supplied"]


# ----------------------------------------------------------------------------------------------------------
# Attribution statistics read the shares column


def test_attribution_rows_use_the_shares_column(engine):
    run = make_run(run_id="a", texts=["Paris.", "Lyon.", "Nice."], bon_index=1)
    run.attribution.shares = [0.5, 0.25, 0.0]
    runs_db.save_run(engine, run)
    (row,) = stats_reads.attribution_rows(engine)
    assert (row.shares, row.bon_share, row.contributors(0.2)) == ([0.5, 0.25, 0.0], 0.25, 2)
    assert json.loads(_fusion_column(engine, "a", "shares")) == [0.5, 0.25, 0.0]
    # The column, not the spans, is what is read ...
    with engine.begin() as conn:
        conn.execute(text("UPDATE fusions SET shares = '[0.9, 0.0, 0.0]'"))
    assert stats_reads.attribution_rows(engine)[0].shares == [0.9, 0.0, 0.0]


def test_shares_only_for_fused_answers_without_error(engine):
    failed = make_run(run_id="failed")
    failed.fused.error = "fusor timed out"
    runs_db.save_run(engine, failed)
    runs_db.save_run(engine, make_run(run_id="ok"))
    assert _fusion_column(engine, "failed", "shares") is None
    assert [r.run_id for r in stats_reads.attribution_rows(engine)] == ["ok"]


# ----------------------------------------------------------------------------------------------------------
# Migration 0003 on a database that already holds runs and votes


def _insert_0002_run(conn, run_id: str, *, source: str, models: list[str], bon: str, fused: str | None,
                     bon_index: int | None = 0, shares: list[float] | None = None) -> None:
    conn.execute(
        text(
            "INSERT INTO runs (id, prompt, system, source, n, models, pool, settings, created_at, updated_at) "
            "VALUES (:id, 'p', NULL, :source, 2, :models, '[]', '{}', 1.0, 1.0)"
        ),
        {"id": run_id, "source": source, "models": json.dumps(models)},
    )
    for idx, cand in enumerate([bon, "other"]):
        conn.execute(
            text(
                "INSERT INTO candidates (run_id, idx, text, model, sample_index, cached) "
                "VALUES (:id, :idx, :text, :model, 0, :cached)"
            ),
            {"id": run_id, "idx": idx, "text": cand, "model": models[idx % len(models)], "cached": False},
        )
    conn.execute(
        text("INSERT INTO picks (run_id, method, idx, scores, notes) VALUES (:id, 'consensus', :idx, '[]', '[]')"),
        {"id": run_id, "idx": bon_index},
    )
    if fused is not None:
        attribution = None
        if shares is not None:
            attribution = json.dumps({"spans": [{"start": 0, "end": len(fused), "sources": []}], "shares": shares,
                                      "copied_fraction": 0.0})
        conn.execute(
            text(
                'INSERT INTO fusions (run_id, text, method, "order", attribution, copied_fraction) '
                "VALUES (:id, :text, 'extractive', '[1, 0]', :attribution, 0.0)"
            ),
            {"id": run_id, "text": fused, "attribution": attribution},
        )


def test_migration_0003_backfills_existing_rows(db_url):
    engine = make_engine(db_url)
    assert migrate(engine, MIGRATIONS[:2]) == ["0001_initial", "0002_filter_indexes"]
    with engine.begin() as conn:
        _insert_0002_run(conn, "same", source="scenario:first-marathon", models=["scenario:coach", "scenario:vet"],
                         bon="Run slowly.", fused=" Run slowly.\n", shares=[1.0, 0.0])
        _insert_0002_run(conn, "diff", source="live", models=["m/x", "m/y"], bon="A.", fused="A and B.",
                         shares=[0.25, 0.5])
        _insert_0002_run(conn, "nopick", source="batch", models=["m/x"], bon="A.", fused="A.", bon_index=None)
        _insert_0002_run(conn, "nofusion", source="batch", models=["m/z"], bon="A.", fused=None)
        conn.execute(
            text(
                "INSERT INTO votes (run_id, annotator, choice, a_is, winner, created_at, updated_at) "
                "VALUES ('diff', 'ann', 'A', 'fused', 'fused', 1.0, 1.0)"
            )
        )
    assert migrate(engine, MIGRATIONS[:3]) == ["0003_pairs_groups_blind"]
    assert migrate(engine) == [m.id for m in MIGRATIONS[3:]]
    assert applied_migrations(engine) == [m.id for m in MIGRATIONS]
    with engine.connect() as conn:
        flags = dict(conn.execute(text("SELECT run_id, same_as_pick FROM fusions")).all())
        pairs = dict(conn.execute(text("SELECT run_id, has_pair FROM fusions")).all())
        shares = dict(conn.execute(text("SELECT run_id, shares FROM fusions")).all())
        groups = sorted(tuple(r) for r in conn.execute(text("SELECT run_id, label FROM run_model_groups")))
    assert {k: bool(v) for k, v in flags.items()} == {"same": True, "diff": False, "nopick": False}
    assert {k: bool(v) for k, v in pairs.items()} == {"same": True, "diff": True, "nopick": False}
    assert json.loads(shares["diff"]) == [0.25, 0.5] and json.loads(shares["same"]) == [1.0, 0.0]
    assert shares["nopick"] is None
    assert groups == [
        ("diff", "m/x"), ("diff", "m/y"), ("nofusion", "m/z"), ("nopick", "m/x"), ("same", "scenario:first-marathon"),
    ]
    assert votes_db.get_vote(engine, "diff", "ann").blind is True  # every earlier vote was cast blind
    assert votes_db.queue_counts(engine, "ann") == votes_db.QueueCounts(done=1, total=1, identical=1)
    assert listing.all_models(engine) == ["m/x", "m/y", "m/z", "scenario:first-marathon"]
    assert [r.shares for r in stats_reads.attribution_rows(engine)] == [[0.25, 0.5], [1.0, 0.0]]
    assert runs_db.load_run(engine, "same").fused.text == " Run slowly.\n"
    # New votes after the migration: the default and an explicit non-blind one.
    assert votes_db.record_vote(engine, run_id="diff", annotator="bob", choice="A", a_is="fused", blind=False).blind is False
    engine.dispose()


# ----------------------------------------------------------------------------------------------------------
# A cheap signature of the votes, for caching the Results page's statistics


def test_votes_signature_changes_with_every_vote_write_and_run_resave(engine):
    runs_db.save_run(engine, make_run(run_id="r1", tags=["geo"]))
    runs_db.save_run(engine, make_run(run_id="r2"))
    seen = {stats_reads.votes_signature(engine)}

    def changed(tag=None) -> bool:
        now = stats_reads.votes_signature(engine, tag=tag)
        new = now not in seen
        seen.add(now)
        return new

    assert not changed()  # nothing happened: the same signature
    votes_db.record_vote(engine, run_id="r1", annotator="ann", choice="A", a_is="fused")
    assert changed()
    votes_db.record_vote(engine, run_id="r1", annotator="ann", choice="A", a_is="fused")  # same choice, replaced
    assert changed()
    votes_db.record_vote(engine, run_id="r2", annotator="ann", choice="B", a_is="fused", client_token="t")
    assert changed()
    votes_db.record_vote(engine, run_id="r2", annotator="ann", choice="A", a_is="fused", client_token="t")  # replay
    assert not changed()
    runs_db.save_run(engine, make_run(run_id="r2", tags=["geo"]))  # same pair: votes kept, tags changed
    assert changed()
    assert stats_reads.votes_signature(engine, tag="geo") != stats_reads.votes_signature(engine)
    votes_db.delete_vote(engine, "r1", "ann")
    assert changed()
    assert stats_reads.votes_signature(engine, tag="none") != stats_reads.votes_signature(engine, tag="geo")


def test_runs_signature_changes_when_runs_are_saved_or_deleted(engine):
    empty = stats_reads.runs_signature(engine)
    runs_db.save_run(engine, make_run(run_id="r1", tags=["geo"]))
    one = stats_reads.runs_signature(engine)
    assert one != empty and stats_reads.runs_signature(engine) == one
    time.sleep(0.002)
    runs_db.save_run(engine, make_run(run_id="r1", tags=["geo"]))  # saved again: updated_at moves
    again = stats_reads.runs_signature(engine)
    assert again != one
    geo = stats_reads.runs_signature(engine, tag="geo")
    runs_db.save_run(engine, make_run(run_id="r2"))
    assert stats_reads.runs_signature(engine, tag="geo") == geo  # another tag's runs do not matter
    assert stats_reads.runs_signature(engine) != again
    runs_db.delete_run(engine, "r1")
    assert stats_reads.runs_signature(engine, tag="geo") != geo


def test_sqlite_statistics_are_refreshed_when_the_database_grows(engine, monkeypatch):
    """SQLite plans the Results queries on the covering index only with statistics (see
    storage.migrations.refresh_statistics); PostgreSQL keeps its own."""
    import storage.migrations as migrations

    monkeypatch.setattr(migrations, "_ANALYZE_FROM_ROWS", 3)
    for i in range(2):
        runs_db.save_run(engine, make_run(run_id=f"a{i}"))
    assert migrations.refresh_statistics(engine) is False  # too small to matter
    for i in range(2, 4):
        runs_db.save_run(engine, make_run(run_id=f"a{i}"))
    if engine.dialect.name != "sqlite":
        assert migrations.refresh_statistics(engine) is False
        return
    assert migrations.refresh_statistics(engine) is True
    with engine.connect() as conn:
        stat = conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_fusions_facts'")).scalar_one()
    assert stat.split()[0] == "4"
    assert migrations.refresh_statistics(engine) is False  # unchanged since: nothing to do
    for i in range(4, 9):
        runs_db.save_run(engine, make_run(run_id=f"a{i}"))
    assert migrations.refresh_statistics(engine) is True  # grown more than twofold


def test_count_unpaired_counts_runs_without_a_pick_or_a_fusion(engine):
    runs_db.save_run(engine, make_run(run_id="paired", tags=["t"]))
    runs_db.save_run(engine, make_run(run_id="no-pick", bon_index=None, tags=["t"]))
    runs_db.save_run(engine, make_run(run_id="no-fusion", fused_text=None))
    assert votes_db.count_unpaired(engine) == 2
    assert votes_db.count_unpaired(engine, tag="t") == 1
    assert votes_db.queue_counts(engine, "ann").total == 1

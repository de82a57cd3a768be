"""AppTest tests of the Results page's rules: blind votes by default, scenario runs grouped under their
scenario, no interval on a one-vote group, the all-"both bad" group, errors shown in place, the cache
fingerprint, and model or user text shown literally.

The database is populated by tests/results_population.py (the built-in scenarios through run_supplied,
votes through record_vote). The tests of the blind rule cast some of those votes again with
``blind=False``, so the page reads them from storage as it would any vote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from results_population import ALL_BON, ALL_BOTH_BAD, ONE_VOTE, PLAN, populate

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")


@pytest.fixture
def populated(engine: Any) -> Any:
    populate(engine)
    return engine


def open_results() -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.switch_page("results.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: Any, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return found[0]


def frame(at: Any, first_column: str) -> Any:
    found = [d.value for d in at.dataframe if d.value.columns[0] == first_column]
    assert len(found) == 1, [d.value.columns[0] for d in at.dataframe]
    return found[0].set_index(first_column)


def open_split(at: Any, label: str) -> Any:
    """Open the splits tab ``label`` ("By annotator" ...): only the open tab is drawn."""
    at.session_state["results_split"] = label
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: Any) -> list[str]:
    return [e.value for e in elements]


def recast_non_blind(engine: Any, which: Any) -> list[Any]:
    """Cast again, as non-blind, the stored votes for which ``which(vote)`` holds (same button, same side);
    return every stored vote afterwards."""
    from storage import votes as votes_db

    for v in votes_db.all_votes(engine):
        if which(v):
            votes_db.record_vote(engine, run_id=v.run_id, annotator=v.annotator, choice=v.choice, a_is=v.a_is, blind=False)
    return votes_db.all_votes(engine)


# ------------------------------------------------------------------------------------------ blind votes


def test_blind_votes_only_by_default_and_the_toggle_includes_the_others(populated: Any) -> None:
    from fusion import stats

    # cy's votes become non-blind: 6 of the 23.
    served = recast_non_blind(populated, lambda v: v.annotator == "cy")
    n_non_blind = sum(1 for v in served if not v.blind)
    assert n_non_blind == 6
    at = open_results()
    blind = stats.win_rate([v for v in served if v.blind])
    assert metric(at, "Votes (runs)") == f"{blind.n_votes} ({blind.n_runs})"
    assert metric(at, "Fusion-of-N win rate") == f"{blind.rate:.1%}"
    assert any(f"Blind votes only: {blind.n_votes} votes. 6 non-blind votes" in t for t in texts(at.info))
    # The splits and agreement follow: cy is nowhere.
    assert "cy" not in frame(open_split(at, "By annotator"), "annotator").index
    assert "cy" not in set(frame(at, "annotator A").index) | set(frame(at, "annotator A")["annotator B"])
    toggle = at.toggle(key="results_include_non_blind")
    assert toggle.value is False and not toggle.disabled

    toggle.set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    everything = stats.win_rate(served)
    assert metric(at, "Votes (runs)") == f"{everything.n_votes} ({everything.n_runs})"
    assert metric(at, "Fusion-of-N win rate") == f"{everything.rate:.1%}"
    assert any("Counting 6 non-blind votes of 23" in t for t in texts(at.warning))
    assert "cy" in frame(at, "annotator").index
    position = stats.position_bias(served)
    assert metric(at, "Left response (A) wins") == f"{position.rate:.1%}"
    assert any(
        f"Response A (left) won **{position.wins}** and Response B (right) **{position.losses}** of the "
        f"{position.decisive} decisive votes" in t
        for t in texts(at.markdown)
    )


def test_only_non_blind_votes(populated: Any) -> None:
    recast_non_blind(populated, lambda v: True)
    at = open_results()
    assert any("Every vote here is non-blind" in t for t in texts(at.info))
    assert not any(m.label == "Fusion-of-N win rate" for m in at.metric)
    at.toggle(key="results_include_non_blind").set_value(True).run()
    assert metric(at, "Votes (runs)").startswith("23 ")


def test_all_blind_says_so_and_disables_the_toggle(populated: Any) -> None:
    at = open_results()
    assert any("All 23 votes were cast blind" in t for t in texts(at.caption))
    assert at.toggle(key="results_include_non_blind").disabled


# ------------------------------------------------------------------------------------------ small groups


def test_model_split_groups_scenarios_and_shows_n_without_interval(populated: Any) -> None:
    at = open_results()
    table = frame(at, "model")
    # Every scenario with votes is a group; no persona (scenario:coach ...) is.
    assert set(table.index) == {f"scenario:{s}" for s in PLAN}
    one = table.loc[f"scenario:{ONE_VOTE}"]
    assert one["votes"] == 1 and one["win rate"] == "100.0%"
    assert one["95% CI"] == "—"
    assert one["note"] == "no interval: 1 run; an interval needs at least 5"
    bad = table.loc[f"scenario:{ALL_BOTH_BAD}"]
    assert bad["both bad"] == 3 and bad["win rate"] == "—"  # not a literal "None"
    assert table.loc[f"scenario:{ALL_BON}", "win rate"] == "0.0%"
    assert any('1 group with only "both bad" votes has no rate' in t for t in texts(at.caption))
    # The one-vote annotator dee: rate and n, no interval.
    dee = frame(open_split(at, "By annotator"), "annotator").loc["dee"]
    assert dee["votes"] == 1 and dee["95% CI"] == "—"
    # Overall there are 9 runs with scored votes except the all-both-bad one: an interval.
    assert "–" in [m.value for m in at.metric if m.label == "95% interval"][0]


def test_few_runs_give_no_interval_in_the_headline(engine: Any) -> None:
    from fusion.pipeline import run_supplied
    from storage.runs import save_run
    from storage.votes import record_vote

    for i in range(3):
        save_run(engine, run_supplied(f"Question {i}", ["One answer here.", "Another answer there."], run_id=f"q{i}"))
        record_vote(engine, run_id=f"q{i}", annotator="ann", choice="A", a_is="fused" if i else "bon")
    at = open_results()
    intervals = [m.value for m in at.metric if m.label == "95% interval"]
    assert intervals[0] == "none"
    assert any("no interval (3 runs; an interval needs at least 5)" in t for t in texts(at.markdown))


# ------------------------------------------------------------------------------------------ errors


def test_a_failing_section_shows_a_message_and_the_rest_renders(
    populated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage import stats_sql

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("attribution store <b>unavailable</b>")

    monkeypatch.setattr(stats_sql, "attribution_columns", broken)
    at = open_results()
    assert not at.exception
    assert any("The attribution statistics could not be shown" in t for t in texts(at.error))
    assert "RuntimeError: attribution store <b>unavailable</b>" in texts(at.text)
    assert metric(at, "Fusion-of-N win rate")  # the vote statistics are still there
    assert len(at.get("download_button")) == 5  # and the exports


def test_failing_votes_leave_attribution_and_exports(populated: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage import stats_sql

    monkeypatch.setattr(stats_sql, "vote_columns", lambda *a, **k: (_ for _ in ()).throw(OSError("disk gone")))
    at = open_results()
    assert not at.exception
    assert any("The vote statistics could not be shown" in t for t in texts(at.error))
    assert metric(at, "Runs") == str(len(PLAN))
    assert len(at.get("download_button")) == 5


# ------------------------------------------------------------------------------------------ caching


def test_an_unchanged_fingerprint_skips_reading_the_votes(populated: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage import stats_sql

    state = {"reads": 0, "attribution_reads": 0}
    real_votes, real_rows = stats_sql.vote_columns, stats_sql.attribution_columns

    def counted_votes(*args: Any, **kwargs: Any) -> Any:
        state["reads"] += 1
        return real_votes(*args, **kwargs)

    def counted_rows(*args: Any, **kwargs: Any) -> Any:
        state["attribution_reads"] += 1
        return real_rows(*args, **kwargs)

    monkeypatch.setattr(stats_sql, "vote_columns", counted_votes)
    monkeypatch.setattr(stats_sql, "attribution_columns", counted_rows)
    at = open_results()
    assert (state["reads"], state["attribution_reads"]) == (1, 1)
    first = metric(at, "Fusion-of-N win rate")
    at.run()
    assert (state["reads"], state["attribution_reads"]) == (1, 1)
    assert metric(at, "Fusion-of-N win rate") == first
    # A new vote changes the fingerprint: the page reads again and shows it.
    from storage.votes import record_vote

    record_vote(populated, run_id=f"sc-{ONE_VOTE}", annotator="eve", choice="B", a_is="fused")
    at.run()
    assert (state["reads"], state["attribution_reads"]) == (2, 2)
    assert metric(at, "Votes (runs)") == f"{sum(len(v) for v in PLAN.values()) + 1} (9)"


# ------------------------------------------------------------------------------------------ text


def test_user_text_is_shown_literally() -> None:
    from app.results import md_text

    assert md_text("**bold** [x](javascript:alert(1)) :red[hi] $x$") == (
        r"\*\*bold\*\* \[x\]\(javascript\:alert\(1\)\) \:red\[hi\] \$x\$"
    )
    assert md_text("two\nlines") == "two lines"


def test_a_lone_annotator_name_is_escaped(engine: Any) -> None:
    from fusion.pipeline import run_supplied
    from storage.runs import save_run
    from storage.votes import record_vote

    save_run(engine, run_supplied("Q", ["An answer.", "Another one."], run_id="solo"))
    record_vote(engine, run_id="solo", annotator="**eve** :red[x]", choice="A", a_is="fused")
    at = open_results()
    assert any(r"only \*\*eve\*\* \:red\[x\] has voted." in t for t in texts(at.info))


def test_the_n_beside_a_bar_counts_the_votes_in_the_rate() -> None:
    """A new user saw "0% (n=2, no CI)" for one Best-of-N win and one "both bad": the rate rests on 1 vote."""
    import importlib

    from fusion.stats import win_rate

    results = importlib.import_module("app.results")
    from types import SimpleNamespace as Vote

    votes = [Vote(run_id="r1", annotator="a", winner="bon"), Vote(run_id="r2", annotator="a", winner="both_bad")]
    groups = {"m": win_rate(votes)}
    (row,) = results.figure_rows(groups)
    assert (row["win_rate"], row["n"], row["runs"]) == (0.0, 1, 1)
    assert results.group_table(groups, "model").loc[0, "votes"] == 2  # the table still shows every vote

"""Results: what the votes say. Fusion-of-N against Best-of-N with 95% bootstrap intervals, overall and
split by model, N, tag and annotator; position bias; agreement between annotators; attribution statistics;
and the exports (votes, DPO pairs, SFT data).

Wiring only: every number comes from ``fusion.stats`` over the votes and attribution rows in storage.

Truthful by construction: the statistics use blind votes only unless the reader includes the others (the
page says how many there are); a group with fewer runs than ``fusion.stats.MIN_RUNS_FOR_INTERVAL`` (or no
spread between its runs) shows its rate and n but no interval; scenario runs are grouped under their
scenario, not under their made-up candidate personas. A section that fails shows a message and the rest
of the page still renders: this page never raises.

Speed: the vote statistics (numpy, ``fusion.stats.summarize``) are cached per vote set and blind choice. The
key is storage's vote and run signatures (a few aggregate queries), so neither the votes nor the
attribution rows are read again while nothing changed; on a change the votes are read as columns
(``storage.stats_sql``), not as records. The vote part of the page is an
``st.fragment``, so the blind toggle reruns it alone (not the attribution and export sections).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from app import deps
from fusion.text import plural

if TYPE_CHECKING:  # fusion.stats is imported where it is used: the empty page never needs it
    import pandas as pd

    from fusion.stats import ResultsSummary, VoteTable

KEY = "results"
ALL_TAGS = "All runs"
MIN_SHARED_FOR_KAPPA = 5  # below this many shared runs no kappa is shown: too little overlap
CONTRIBUTOR_MIN_SHARE = 0.05
INCLUDE_NON_BLIND = f"{KEY}_include_non_blind"
SPLIT_TAB = f"{KEY}_split"  # the open tab of the splits: its label ("By model" ...)
DISTRIBUTION_TAB = f"{KEY}_distribution"  # the open tab of the attribution histograms
SPLIT_NAMES = {"Model": "model", "N": "N", "Tag": "tag", "Annotator": "annotator"}

log = logging.getLogger(__name__)
_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character: CommonMark escapes all


# ------------------------------------------------------------------------------------------ formatting


def md_text(value: object) -> str:
    """``value`` as literal text inside Streamlit markdown: annotator names and tags are user input, and
    ``**``, ``[link](...)``, ``:red[...]`` or ``$math$`` in them must show as typed."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}%}"


def ci_text(low: float | None, high: float | None, reason: str | None = None) -> str:
    if low is None or high is None:
        return f"no interval ({reason})" if reason else "no interval"
    return f"95% CI {pct(low)} to {pct(high)}"


def interval(low: float | None, high: float | None) -> str:
    return "none" if low is None or high is None else f"{pct(low)}–{pct(high)}"


def fingerprint(engine: Any, tag: str | None) -> str:
    """A cheap key that changes whenever a vote or run (on runs with ``tag``) does: storage's vote and run
    signatures (a few aggregate queries). While it is unchanged the page reads neither the votes nor the
    attribution rows again."""
    from storage.stats_reads import runs_signature, votes_signature

    # The engine's URL too: two databases (tests, a second deployment) may give the same fingerprint.
    return f"{engine.url!r}|{votes_signature(engine, tag=tag)}|{runs_signature(engine, tag=tag)}"


@st.cache_resource(show_spinner=False, max_entries=4)
def _vote_table(key: str, tag: str | None, _engine: Any) -> VoteTable | None:
    """The votes as arrays (``None`` without votes), shared by the blind-only and the all-votes summaries
    (never mutated). Read as columns in SQL (``storage.stats_sql``): building a record per vote took longer
    than every statistic together (bench/results/stats_scale.md)."""
    from fusion import stats
    from storage.stats_sql import vote_columns

    cols = vote_columns(_engine, tag=tag)
    if not len(cols):
        return None
    return stats.vote_table_from_columns(cols.run_id, cols.annotator, cols.winner, cols.choice, cols.blind, cols.run_labels)


@st.cache_data(show_spinner="Computing statistics ...", max_entries=16)
def _summary_for(key: str, include_non_blind: bool, tag: str | None, _engine: Any) -> ResultsSummary | None:
    from fusion import stats

    table = _vote_table(key, tag, _engine)
    # The splits are computed one at a time, when their tab is opened (_split_for): their bootstraps were
    # most of a cache miss at 15,000 votes (bench/results/stats_scale.md).
    return None if table is None else stats.summarize(table, include_non_blind=include_non_blind, splits=())


@st.cache_data(show_spinner="Computing statistics ...", max_entries=32)
def _split_for(key: str, include_non_blind: bool, tag: str | None, name: str, _engine: Any) -> dict[str, Any]:
    from fusion import stats

    table = _vote_table(key, tag, _engine)
    return {} if table is None else stats.split_rates(table, name, include_non_blind=include_non_blind)


def split_groups(engine: Any, tag: str | None, include_non_blind: bool, name: str) -> dict[str, Any]:
    """The win rates of one split's groups (``ResultsSummary.by[name]``), cached like the summary."""
    return _split_for(fingerprint(engine, tag), include_non_blind, tag, name, engine)


def vote_summary(engine: Any, tag: str | None, include_non_blind: bool) -> ResultsSummary | None:
    """The ``ResultsSummary`` of the votes on runs with ``tag`` (all runs for ``None``), or ``None`` when
    there are no votes; cached per storage fingerprint and blind choice."""
    return _summary_for(fingerprint(engine, tag), include_non_blind, tag, engine)


def _attribution_values(engine: Any, tag: str | None) -> dict[str, list[float | int | None]] | None:
    from fusion import stats
    from storage.stats_sql import attribution_columns

    # Columns, not records: storage.stats_reads.attribution_rows also reads tags, models and dates (4x the time).
    cols = attribution_columns(engine, tag=tag)
    if not len(cols):
        return None
    return stats.attribution_values(cols.copied_fraction, cols.shares, cols.bon_index, min_share=CONTRIBUTOR_MIN_SHARE)


@st.cache_data(show_spinner=False, max_entries=16)
def _attribution_for(key: str, tag: str | None, _engine: Any) -> dict[str, list[float | int | None]] | None:
    return _attribution_values(_engine, tag)


def attribution_values(engine: Any, tag: str | None) -> dict[str, list[float | int | None]] | None:
    """Per attributed run: copied fraction, candidates contributing, share of the pick; ``None`` without
    such runs. Cached per storage fingerprint (attribution rows cost a JSON parse each)."""
    return _attribution_for(fingerprint(engine, tag), tag, engine)


def group_table(groups: dict[str, Any], column: str) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        [
            {
                column: label,
                # Text cells: an empty numeric cell shows as a literal "None" (a group of "both bad" only).
                "win rate": "—" if w.rate is None else f"{w.rate:.1%}",
                "95% CI": interval(w.low, w.high) if w.has_interval else "—",
                "votes": w.n_votes,
                "runs": w.n_runs,
                "fusion wins": w.wins,
                "Best-of-N wins": w.losses,
                "ties": w.ties,
                "both bad": w.both_bad,
                "note": "" if w.has_interval else f"no interval: {w.no_interval}",
            }
            for label, w in groups.items()
        ]
    )


RATE_COLUMNS = {
    "win rate": st.column_config.TextColumn("win rate", help="(fusion wins + ties / 2) / (wins + losses + ties); both bad left out"),
    "note": st.column_config.TextColumn("note", width="large"),
}


def figure_rows(groups: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    return [
        {
            "label": f"{prefix}{label}",
            "win_rate": w.rate,
            "ci_low": w.low,
            "ci_high": w.high,
            # The votes the rate rests on: "both bad" votes are left out of it, so they are not in its n.
            "n": w.n_scored,
            "runs": w.scored_runs,
        }
        for label, w in groups.items()
        if w.rate is not None  # a group of "both bad" votes only has no rate to draw
    ]


def metrics(items: Sequence[tuple[str, str, str | None]]) -> None:
    """A row of metrics that wraps onto the next line when the page is narrow, instead of cutting values."""
    with st.container(horizontal=True, gap="large"):
        for label, value, help_text in items:
            # Sized to its own label and value: a fixed share of the row cuts the longer ones.
            st.metric(label, value, help=help_text, width="content")


def guarded(what: str, section: Callable[..., None], *args: Any) -> None:
    """Run one section; should it fail, say so in place and carry on with the rest of the page."""
    try:
        section(*args)
    except Exception as exc:  # noqa: BLE001 - an unexpected error must not replace the page with an error box
        log.exception("Results page: %s failed", what)
        st.error(f"The {what} could not be shown because of an unexpected error. The rest of the page is not affected.")
        first_line = (str(exc).strip().splitlines() or [""])[0]
        st.text(f"{type(exc).__name__}: {first_line[:300]}")


# ------------------------------------------------------------------------------------------ sections


def blind_note(s: ResultsSummary) -> None:
    if s.n_non_blind == 0:
        st.caption(
            ("The vote was" if s.n_blind == 1 else f"All {s.n_blind:,} votes were")
            + " cast blind (before the voter saw which response was which)."
        )
    elif not s.include_non_blind:
        st.info(
            f"Blind votes only: {plural(s.n_blind, 'vote')}. {plural(s.n_non_blind, 'non-blind vote')} (cast after "
            f"the voter saw which response was the fusion) {'is' if s.n_non_blind == 1 else 'are'} left out of "
            "every number here; turn on "
            "**Include non-blind votes** to count them." + (" The exports hold every vote." if _may_export() else "")
        )
    else:
        st.warning(
            f"Counting {plural(s.n_non_blind, 'non-blind vote')} of {s.n_used:,}: a voter who knew which response "
            "was the fusion may have been swayed by it."
        )


def section_win_rate(s: ResultsSummary, engine: Any, tag: str | None) -> None:
    from fusion.stats import MIN_RUNS_FOR_INTERVAL

    w = s.overall
    st.header("Fusion-of-N against Best-of-N")
    st.caption(
        'Win rate of the fused answer: a fusion win counts 1, a tie 1/2, a Best-of-N win 0. "Both are bad" '
        "votes are left out of the rate and reported apart. The 95% interval is a bootstrap over runs, shown "
        f"from {MIN_RUNS_FOR_INTERVAL} runs on (fewer give an interval that means little)."
    )
    metrics(
        [
            ("Fusion-of-N win rate", pct(w.rate), ci_text(w.low, w.high, w.no_interval)),
            ("95% interval", interval(w.low, w.high), None if w.has_interval else f"No interval: {w.no_interval}."),
            ("Votes (runs)", f"{w.n_votes:,} ({w.n_runs:,})", f"{w.n_scored:,} of the votes are in the rate."),
            ("Both bad", f"{w.both_bad:,} of {w.n_votes:,}", f"{pct(w.both_bad_rate)} of all votes"),
        ]
    )
    st.markdown(
        f"Fusion won **{w.wins:,}**, Best-of-N won **{w.losses:,}**, **{plural(w.ties, 'tie')}**, and **{w.both_bad:,}** "
        f"{'vote' if w.both_bad == 1 else 'votes'} found both bad. Win rate **{pct(w.rate)}** ({ci_text(w.low, w.high, w.no_interval)})."
    )
    if w.rate is None:
        st.info("Every vote so far says both answers are bad, so there is no win rate yet.")

    st.subheader("Split by model, N, tag and annotator")
    split_tabs(s, engine, tag)



def split_label(name: str) -> str:
    return f"By {SPLIT_NAMES.get(name, name.lower())}"


@st.fragment
def split_tabs(s: ResultsSummary, engine: Any, tag: str | None) -> None:
    """One tab per split; only the open tab is drawn (a chart and a table each: drawing all four on every
    load cost the browser more than the rest of the page), and a tab change reruns this fragment alone."""
    from components.html_charts import win_rate_bars_html

    from fusion.stats import SPLITS

    names = list(SPLITS)
    tabs = st.tabs([split_label(n) for n in names], key=SPLIT_TAB, on_change="rerun")
    for name, tab in zip(names, tabs):
        if not tab.open:
            continue
        groups = s.by[name] if name in s.by else split_groups(engine, tag, s.include_non_blind, name)
        column = SPLIT_NAMES.get(name, name.lower())
        with tab:
            if not groups:
                st.caption(f"No vote has a {column}.")
                continue
            rows = figure_rows(groups, prefix="N = " if name == "N" else "")
            if rows:
                st.html(win_rate_bars_html(rows, title=f"Fusion-of-N win rate by {column}"))
            without = len(groups) - len(rows)
            if without:
                st.caption(
                    f"{plural(without, 'group')} with only \"both bad\" votes {'has' if without == 1 else 'have'} no "
                    "rate: see the table."
                )
            st.dataframe(
                group_table(groups, column),
                hide_index=True,
                column_config=RATE_COLUMNS,
                key=f"{KEY}_table_{name}",
            )
            if name == "Model":
                st.caption(
                    "A vote counts for every model in its run's candidate pool. Runs of a built-in scenario "
                    "count under the scenario (scenario:<id>): their candidates are made-up personas, not models."
                )
            if name == "Tag":
                st.caption("A vote counts for every tag of its run.")
            if name == "N":
                win_rate_against_n(groups)


def win_rate_against_n(by_n: dict[str, Any]) -> None:
    """The one interactive plotly figure of the page, drawn only when its tab is opened: plotly.js costs a
    new tab about 1.3 s to load (the bars above are plain HTML for that reason)."""
    from components.figures import win_rate_vs_n_figure

    points = [
        {"n": int(label), "win_rate": w.rate, "ci_low": w.low, "ci_high": w.high, "count": w.n_votes}
        for label, w in by_n.items()
        if w.rate is not None and label.isdigit()
    ]
    if len(points) > 1:
        st.subheader("Win rate against N")
        st.plotly_chart(win_rate_vs_n_figure(points), key=f"{KEY}_vs_n")
        st.caption(
            "n is the number of votes at each N. The paper saw the largest gains for N below 10 and a plateau "
            "past about 7."
        )


def section_position(s: ResultsSummary) -> None:
    p = s.position
    st.header("Position bias")
    st.caption(
        "How often the left response (Response A) wins among votes for A or B. Which system is shown on the left "
        "is random, so without a bias this is about 50%."
    )
    metrics(
        [
            ("Left response (A) wins", pct(p.rate), ci_text(p.low, p.high, p.no_interval)),
            ("95% interval", interval(p.low, p.high), None if p.has_interval else f"No interval: {p.no_interval}."),
            ("Decisive votes", f"{p.decisive:,}", f"Votes for A or B, on {plural(p.scored_runs, 'run')}."),
        ]
    )
    if p.rate is None:
        st.info("No vote has chosen A or B yet.")
        return
    # In words rather than a two-bar chart: the chart said no more than these numbers, and every plotly
    # chart costs the browser about a quarter of a second to draw on these machines (bench/results_page.py).
    both_bad = plural(p.both_bad, '"both bad" vote')
    st.markdown(
        f"Response A (left) won **{p.wins:,}** and Response B (right) **{p.losses:,}** of the {p.decisive:,} decisive "
        f"votes; {plural(p.ties, 'tie')} and {both_bad} are not counted here. "
        + (
            f"The 95% interval {'contains' if p.low <= 0.5 <= p.high else 'excludes'} 50%."
            if p.has_interval
            else f"No interval: {p.no_interval}."
        )
    )


def section_agreement(s: ResultsSummary) -> None:
    import pandas as pd

    st.header("Agreement between annotators")
    st.caption(
        "Cohen's kappa for each pair of annotators over the runs both voted on, and Krippendorff's alpha over "
        "everyone (nominal: fusion, Best-of-N, tie, both bad). 1 is perfect agreement, 0 is chance level."
    )
    annotators = s.annotators
    rows = s.kappa
    if len(annotators) < 2:
        st.info(
            "Agreement needs at least two annotators who voted on the same runs; so far "
            + (f"only {md_text(annotators[0])} has voted." if annotators else "nobody has voted.")
        )
        return
    if not rows:
        st.info(
            "No two annotators have voted on the same run yet, so there is too little overlap to measure agreement."
        )
        return
    alpha = s.alpha
    metrics(
        [
            (
                "Krippendorff's alpha (all annotators)",
                "undefined" if alpha is None else f"{alpha:.3f}",
                "Undefined when every shared vote is the same category: agreement on one category says nothing.",
            ),
            ("Runs with 2+ annotators", f"{s.alpha_runs:,}", "The runs alpha rests on."),
        ]
    )
    table = pd.DataFrame(
        [
            {
                "annotator A": r.annotator_a,
                "annotator B": r.annotator_b,
                "shared runs": r.n_shared,
                # Below the minimum overlap no kappa is shown at all, like no interval below 5 runs.
                "Cohen's kappa": (
                    "—" if r.kappa is None or r.n_shared < MIN_SHARED_FOR_KAPPA else f"{r.kappa:.3f}"
                ),
                "note": (
                    f"too little overlap (< {MIN_SHARED_FOR_KAPPA} runs)"
                    if r.n_shared < MIN_SHARED_FOR_KAPPA
                    else ("undefined: one category only" if r.kappa is None else "")
                ),
            }
            for r in rows
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        key=f"{KEY}_kappa",
        column_config={"note": st.column_config.TextColumn("note", width="large")},
    )
    if all(r.n_shared < MIN_SHARED_FOR_KAPPA for r in rows):
        st.warning(
            f"Every pair shares fewer than {MIN_SHARED_FOR_KAPPA} runs: too little overlap for these numbers to "
            "mean much. Have annotators vote on the same runs (the Annotate queue serves everyone the same order)."
        )


def section_attribution(engine: Any, tag: str | None) -> None:
    from fusion.stats import distribution

    st.header("Attribution")
    st.caption(
        "Where the fused text comes from, over every saved run with an attributed fusion (votes or not): the "
        "share copied from candidates, how many candidates contribute, and how much of it is the Best-of-N pick."
    )
    values = attribution_values(engine, tag)
    if values is None:
        st.info("No run with an attributed fused answer yet.")
        return
    copied, contributors, bon_share = values["copied"], values["contributors"], values["bon_share"]
    d_copied, d_contrib, d_bon = distribution(copied), distribution(contributors), distribution(bon_share)
    metrics(
        [
            ("Runs", f"{len(copied):,}", None),
            ("Median copied fraction", pct(d_copied["median"], 0), f"Over {plural(int(d_copied['n']), 'run')}."),
            (
                "Mean candidates contributing",
                "n/a" if d_contrib["mean"] is None else f"{d_contrib['mean']:.1f}",
                f"Candidates supplying at least {CONTRIBUTOR_MIN_SHARE:.0%} of the fused text.",
            ),
            (
                "Median share of the Best-of-N pick",
                pct(d_bon["median"], 0),
                f"Over the {plural(int(d_bon['n']), 'run')} with a pick.",
            ),
        ]
    )
    distribution_tabs(values)


DISTRIBUTIONS = ("Copied fraction", "Candidates contributing", "Share of the Best-of-N pick")


@st.fragment
def distribution_tabs(values: dict[str, list[float | int | None]]) -> None:
    """The three attribution histograms, one tab each; only the open tab is drawn, and a tab change reruns
    this fragment alone, on the values the page read (no second read of the attribution rows)."""
    from components.html_charts import histogram_bins, histogram_html

    tabs = st.tabs(list(DISTRIBUTIONS), key=DISTRIBUTION_TAB, on_change="rerun")
    copied = [100 * x for x in values["copied"] if x is not None]
    bon_share = [100 * x for x in values["bon_share"] if x is not None]
    contributors = [x for x in values["contributors"] if x is not None]
    for name, tab in zip(DISTRIBUTIONS, tabs):
        if not tab.open:
            continue
        with tab:
            if name == "Copied fraction":
                bins, xlabel, integer = histogram_bins(copied, value_range=(0.0, 100.0)), "copied from candidates (%)", False
            elif name == "Candidates contributing":
                bins, xlabel, integer = histogram_bins(contributors, integer=True), "candidates in the fused text", True
            else:
                bins, xlabel, integer = histogram_bins(bon_share, value_range=(0.0, 100.0)), "fused text found in the pick (%)", False
            st.html(histogram_html(bins, title=f"{name} (n={sum(bins.counts):,})", xlabel=xlabel, integer=integer))


def section_exports(engine: Any, tag: str | None) -> None:
    from storage import export

    st.header("Export")
    from app.auth import current, refuse

    if not current().may("export"):
        st.info(refuse("export") + " Ask one of them for the files.")
        return
    where = f" on runs tagged {md_text(tag)}" if tag else ""
    st.caption(
        f"Files{where} for analysis and training; JSON Lines load directly with the Hugging Face `datasets` JSON "
        "loader. The same exports: `python -m fusion export --format ...`. Every vote is exported, blind or not."
    )

    def text_of(write: Callable[..., int], **kw: Any) -> Callable[[], str]:
        def build() -> str:
            buf = io.StringIO()
            write(engine, buf, tag, **kw)
            return buf.getvalue()

        return build

    suffix = f"-{tag}" if tag else ""
    items = [
        # Downloaded from a browser, a CSV is opened in a spreadsheet: a comment or prompt starting with "="
        # must show as text there, not run as a formula. JSON Lines keeps every text exact.
        ("Votes (CSV)", text_of(export.export_votes_csv, excel_safe=True), f"votes{suffix}.csv", "text/csv", "csv"),
        ("Votes (JSON Lines)", text_of(export.export_votes_jsonl), f"votes{suffix}.jsonl", "application/jsonl", "jsonl"),
        ("DPO pairs (JSON Lines)", text_of(export.export_dpo_jsonl), f"dpo{suffix}.jsonl", "application/jsonl", "dpo"),
        (
            "SFT, completion (JSON Lines)",
            text_of(export.export_sft_jsonl, style="completion"),
            f"sft-completion{suffix}.jsonl",
            "application/jsonl",
            "sft",
        ),
        (
            "SFT, chat messages (JSON Lines)",
            text_of(export.export_sft_jsonl, style="messages"),
            f"sft-messages{suffix}.jsonl",
            "application/jsonl",
            "sft_messages",
        ),
    ]
    # A wrapping row sized to each label: five equal columns cut the longer labels even at 1400 px.
    with st.container(horizontal=True, gap="small"):
        for label, build, name, mime, key in items:
            st.download_button(
                label,
                data=build,
                file_name=name,
                mime=mime,
                key=f"{KEY}_export_{key}",
                on_click="ignore",
                icon=":material/download:",
                width="content",
            )
    st.caption(
        "DPO pairs: one per run, the answer most of its blind decisive votes preferred is chosen (runs whose "
        "annotators split evenly are left out; `python -m fusion export --format dpo --per-vote` gives a pair per "
        "vote). SFT data holds every fused answer. The CSV is made for spreadsheets: a text starting with "
        "`= + - @` gets a leading apostrophe so it is shown rather than run as a formula; the JSON Lines files "
        "keep every text exactly as stored."
    )


def _may_export() -> bool:
    """Whether this visitor gets the export section (annotators are told of no file they cannot have)."""
    from app.auth import current

    return current().may("export")


def empty_database() -> None:
    st.info(
        "Nothing to show yet: there are no saved runs. Results appear once runs are saved and people vote on them."
    )
    st.markdown(
        "1. Make runs on **Explore** (a scenario works offline), or many at once with "
        "`python -m fusion batch prompts.jsonl --output runs.jsonl --model <model>` (or `--offline` for lines "
        "that carry their candidates).\n"
        "2. Vote on them on **Annotate**: the blind A/B vote, Best-of-N against Fusion-of-N.\n"
        "3. Come back here for win rates with confidence intervals, agreement"
        + (" and exports." if _may_export() else ".")
    )
    with st.container(horizontal=True):
        for target, label, icon in [
            ("explore.py", "Open Explore", ":material/science:"),
            ("annotate.py", "Open Annotate", ":material/how_to_vote:"),
        ]:
            try:
                st.page_link(target, label=label, icon=icon)
            except Exception:  # noqa: BLE001 - the links need st.navigation
                pass


@st.fragment
def vote_statistics(engine: Any, tag: str | None) -> None:
    """Win rate, splits, position bias and agreement. A fragment: the blind toggle reruns only this (and
    a fragment's own rerun has no page around it to catch an error, hence the guard inside)."""
    guarded("vote statistics", _vote_statistics, engine, tag)


def _vote_statistics(engine: Any, tag: str | None) -> None:
    # The toggle's value is read before the toggle is drawn: whether it can be used depends on the summary.
    s = vote_summary(engine, tag, bool(st.session_state.get(INCLUDE_NON_BLIND, False)))
    if s is None:
        st.info(
            "No votes yet" + (f" on runs tagged {md_text(tag)}" if tag else "") + ". Vote on the Annotate page (or "
            "on Explore) and the win rate, position bias and agreement appear here. Attribution statistics"
            + (" and the SFT export below need" if _may_export() else " need") + " no votes."
        )
        return
    st.toggle(
        "Include non-blind votes",
        key=INCLUDE_NON_BLIND,
        disabled=s.n_non_blind == 0 and not s.include_non_blind,
        help="Non-blind votes were cast after the voter saw which response was the fusion. Off by default: "
        "the numbers then rest on blind judgements only.",
    )
    blind_note(s)
    if s.n_used == 0:
        st.info("Every vote here is non-blind. Turn on **Include non-blind votes** to see what they say.")
        return
    guarded("win rate", section_win_rate, s, engine, tag)
    guarded("position bias", section_position, s)
    guarded("agreement", section_agreement, s)


@st.cache_data(show_spinner="Reading the judge's verdicts ...", max_entries=8)
def _judge_rows_for(key: str, tag: str | None, _engine: Any) -> list[Any]:
    from fusion.judge_stats import judge_rows
    from storage.votes import judged_votes

    return judge_rows(judged_votes(_engine, tag=tag))


def section_judge(engine: Any, tag: str | None) -> None:
    """The pairwise LLM judge beside the people: its own win rate, never mixed into theirs."""
    rows = _judge_rows_for(fingerprint(engine, tag), tag, engine)
    if not rows:
        return
    st.header("Pairwise judge")
    st.caption(
        "An LLM judge compared the fused answer with the Best-of-N pick twice, once in each order "
        "(`fusion judge`). A verdict counts when both orders agree; when they disagree the pair is a tie, and "
        "the share of such pairs is the judge's position inconsistency. Its verdicts are kept apart from the "
        "people's votes above."
    )
    table = []
    for r in rows:
        people = r.people_rate
        table.append({
            "judge": r.model,
            "runs judged": r.rate.n_votes,
            "judge's win rate": pct(r.rate.rate),
            "95% CI": ci_text(r.rate.low, r.rate.high, r.rate.no_interval),
            "people's win rate, same runs": pct(people.rate) if people is not None else "—",
            "agreement (Cohen's kappa)": "undefined" if r.kappa is None else f"{r.kappa:.2f}",
            "pairs compared with people": r.n_shared,
            "position-consistent": pct(r.consistency),
        })
    import pandas as pd

    st.dataframe(pd.DataFrame(table), hide_index=True, key=f"{KEY}_judges")
    st.caption(
        "Kappa compares the judge's verdict with each person's vote on the same run (fused, Best-of-N or tie; "
        "\"both bad\" votes name no side and are left out). It is undefined without such pairs or when everyone "
        "gave one and the same verdict."
    )


@st.cache_data(show_spinner="Computing win rate against N ...", max_entries=8)
def _scaling_for(key: str, experiment: str, _engine: Any) -> dict[str, list[Any]]:
    from fusion.judge_stats import scaling_points, split_votes
    from fusion.scaling import tag_k
    from storage.stats_reads import attribution_rows
    from storage.votes import all_votes

    shares: dict[str, tuple[int, float | None]] = {}
    for row in attribution_rows(_engine, tag=experiment):
        k = tag_k(row.tags)
        if k is not None and k.isdigit():
            shares[row.run_id] = (int(k), row.bon_share)
    people, judges = split_votes(all_votes(_engine, tag=experiment))
    out = {"people": scaling_points(people, shares)}
    for model, verdicts in judges.items():
        out[f"judge:{model}"] = scaling_points(verdicts, shares)
    return out


def section_scaling(engine: Any, tag: str | None) -> None:
    """Win rate against N for the N-scaling experiments (`fusion scale`), people and judges apart."""
    from storage.listing import all_tags

    experiments = [t for t in all_tags(engine) if t.startswith("scale:")]
    if tag is not None:
        experiments = [t for t in experiments if t == tag] or experiments
    if not experiments:
        return
    st.header("N-scaling experiments")
    st.caption(
        "Runs made by `fusion scale`: for each prompt the largest N was sampled once, and each smaller N picks "
        "and fuses the first N of the same samples. The paper saw the largest gains below N = 10 and a plateau "
        "past about 7."
    )
    experiment = st.selectbox("Experiment", experiments, key=f"{KEY}_experiment") if len(experiments) > 1 else experiments[0]
    series = _scaling_for(fingerprint(engine, experiment), experiment, engine)
    points, table = [], []
    for name, rows in series.items():
        label = "people" if name == "people" else name
        for p in rows:
            table.append({
                "N": p.k, "votes by": label, "win rate": pct(p.rate.rate),
                "95% CI": ci_text(p.rate.low, p.rate.high, p.rate.no_interval), "votes": p.rate.n_scored,
                "fused text from the pick": pct(p.pick_share), "runs": p.n_runs,
            })
            if p.rate.rate is not None:
                points.append({"n": p.k, "win_rate": p.rate.rate, "ci_low": p.rate.low, "ci_high": p.rate.high,
                               "count": p.rate.n_scored, "series": label})
    if len({p["n"] for p in points}) > 1:
        from components.figures import win_rate_vs_n_figure

        st.plotly_chart(win_rate_vs_n_figure(points, title="Win rate against N"), key=f"{KEY}_scaling_fig")
    else:
        st.info("No N of this experiment has votes yet: vote on its runs in Annotate (tag "
                f"{md_text(experiment)}) or run `fusion judge --tag {experiment} --model ...`.")
    import pandas as pd

    st.dataframe(pd.DataFrame(table), hide_index=True, key=f"{KEY}_scaling_table")
    st.caption(
        "At N = 1 the fusion has one candidate to work from and usually repeats it: such runs have nothing to "
        "vote on. \"Fused text from the pick\" is the mean share of the fused answer found in the Best-of-N pick."
    )


def page() -> None:
    from storage.listing import all_tags, count_runs

    engine = deps.get_engine()
    st.title("Results")
    if count_runs(engine) == 0:
        empty_database()
        return
    choice = st.selectbox(
        "Tag", [ALL_TAGS, *all_tags(engine)], key=f"{KEY}_tag", help="Only runs with this tag."
    )
    tag = None if choice in (None, ALL_TAGS) else choice
    vote_statistics(engine, tag)
    guarded("pairwise judge", section_judge, engine, tag)
    guarded("N-scaling experiments", section_scaling, engine, tag)
    guarded("attribution statistics", section_attribution, engine, tag)
    guarded("export section", section_exports, engine, tag)


# st.navigation runs a page file as __main__; importing it (a benchmark timing ``signature``) renders nothing.
if __name__ == "__main__":
    guarded("Results page", page)

"""Results: what the votes say. Fusion-of-N against Best-of-N with 95% bootstrap intervals, overall and
split by model, N, tag and annotator; position bias; agreement between annotators; attribution statistics;
and the exports (votes, DPO pairs, SFT data).

Wiring only: every number comes from ``fusion.stats`` over the votes and attribution rows in storage.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from app import deps

KEY = "results"
ALL_TAGS = "All runs"
MIN_SHARED_FOR_KAPPA = 5  # below this many shared runs a kappa is shown but flagged as too little overlap
CONTRIBUTOR_MIN_SHARE = 0.05


# ------------------------------------------------------------------------------------------ formatting


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}%}"


def ci_text(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "no interval"
    return f"95% CI {pct(low)} to {pct(high)}"


def interval(low: float | None, high: float | None) -> str:
    return "n/a" if low is None or high is None else f"{pct(low)}–{pct(high)}"


def _signature(votes: Sequence[Any], tag: str | None) -> str:
    """Identifies a set of votes exactly, so the bootstrap reruns only when a vote changed."""
    h = hashlib.sha256((tag or "").encode())
    for v in votes:
        h.update(f"{v.id}|{v.updated_at!r}|{v.winner}|{v.choice}|{v.run_id}|{v.annotator}\n".encode())
    return h.hexdigest()


@st.cache_data(show_spinner="Computing statistics ...", max_entries=16)
def compute(signature: str, _votes: Sequence[Any]) -> dict[str, Any]:
    """Every vote statistic the page shows. ``_votes`` is not hashed: ``signature`` stands for it."""
    from fusion import stats

    return {
        "overall": stats.win_rate(_votes),
        "by": {
            "Model": stats.win_rate_by(_votes, key=lambda v: v.models),
            "N": stats.win_rate_by(_votes, key=lambda v: str(v.n)),
            "Tag": stats.win_rate_by(_votes, key=lambda v: v.tags),
            "Annotator": stats.win_rate_by(_votes, key=lambda v: v.annotator),
        },
        "position": stats.position_bias(_votes),
        "kappa": stats.pairwise_kappa(_votes),
        "alpha": stats.krippendorff_alpha(stats.annotator_units(_votes)),
        "annotators": sorted({v.annotator for v in _votes}),
    }


def group_table(groups: dict[str, Any], column: str) -> Any:
    import pandas as pd

    return pd.DataFrame(
        [
            {
                column: label,
                "win rate": w.rate,
                "CI low": w.low,
                "CI high": w.high,
                "fusion wins": w.wins,
                "Best-of-N wins": w.losses,
                "ties": w.ties,
                "both bad": w.both_bad,
                "votes": w.n_votes,
                "runs": w.n_runs,
            }
            for label, w in groups.items()
        ]
    )


RATE_COLUMNS = {
    name: st.column_config.NumberColumn(name, format="percent") for name in ("win rate", "CI low", "CI high")
}


def figure_rows(groups: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    return [
        {"label": f"{prefix}{label}", "win_rate": w.rate, "ci_low": w.low, "ci_high": w.high, "n": w.n_votes}
        for label, w in groups.items()
        if w.rate is not None  # a group of "both bad" votes only has no rate to draw
    ]


# ------------------------------------------------------------------------------------------ sections


def section_win_rate(s: dict[str, Any]) -> None:
    from components.figures import win_rate_figure, win_rate_vs_n_figure

    w = s["overall"]
    st.header("Fusion-of-N against Best-of-N")
    st.caption(
        'Win rate of the fused answer: a fusion win counts 1, a tie 1/2, a Best-of-N win 0. "Both are bad" '
        "votes are left out of the rate and reported apart. The 95% interval is a bootstrap over runs."
    )
    cols = st.columns([1, 1.4, 1, 1])
    cols[0].metric("Fusion-of-N win rate", pct(w.rate), help=ci_text(w.low, w.high))
    cols[1].metric("95% interval", interval(w.low, w.high))
    cols[2].metric("Votes (runs)", f"{w.n_votes} ({w.n_runs})")
    cols[3].metric("Both bad", f"{w.both_bad} of {w.n_votes}", help=f"{pct(w.both_bad_rate)} of all votes")
    st.markdown(
        f"Fusion won **{w.wins}**, Best-of-N won **{w.losses}**, **{w.ties}** tie(s), and **{w.both_bad}** "
        f"vote(s) found both bad. Win rate **{pct(w.rate)}** ({ci_text(w.low, w.high)})."
    )
    if w.rate is None:
        st.info("Every vote so far says both answers are bad, so there is no win rate yet.")

    st.subheader("Split by model, N, tag and annotator")
    names = list(s["by"])
    for name, tab in zip(names, st.tabs([f"By {n.lower()}" if n != "N" else "By N" for n in names])):
        groups = s["by"][name]
        with tab:
            if not groups:
                st.caption(f"No vote has a {name.lower()}.")
                continue
            rows = figure_rows(groups, prefix="N = " if name == "N" else "")
            if rows:
                st.plotly_chart(
                    win_rate_figure(
                        rows, title=f"Fusion-of-N win rate by {name if name == 'N' else name.lower()}"
                    ),
                    key=f"{KEY}_by_{name}",
                )
            st.dataframe(
                group_table(groups, name.lower() if name != "N" else "N"),
                hide_index=True,
                column_config=RATE_COLUMNS,
                key=f"{KEY}_table_{name}",
            )
            if name == "Model":
                st.caption("A vote counts for every model in its run's candidate pool.")
            if name == "Tag":
                st.caption("A vote counts for every tag of its run.")

    by_n = s["by"]["N"]
    points = [
        {"n": int(label), "win_rate": w.rate, "ci_low": w.low, "ci_high": w.high, "count": w.n_votes}
        for label, w in by_n.items()
        if w.rate is not None and label.isdigit()
    ]
    if len(points) > 1:
        st.subheader("Win rate against N")
        st.plotly_chart(win_rate_vs_n_figure(points), key=f"{KEY}_vs_n")
        st.caption("The paper saw the largest gains for N below 10 and a plateau past about 7.")


def section_position(s: dict[str, Any]) -> None:
    from components.figures import position_bias_figure

    p = s["position"]
    st.header("Position bias")
    st.caption(
        "How often the left response (Response A) wins among votes for A or B. Which system is shown on the left "
        "is random, so without a bias this is about 50%."
    )
    cols = st.columns([1, 1.4, 1])
    cols[0].metric("Left response (A) wins", pct(p.rate), help=ci_text(p.low, p.high))
    cols[1].metric("95% interval", interval(p.low, p.high))
    cols[2].metric("Decisive votes", p.decisive)
    if p.rate is None:
        st.info("No vote has chosen A or B yet.")
        return
    rows = [
        {"position": "Response A (left)", "value": p.rate, "ci_low": p.low, "ci_high": p.high, "n": p.wins},
        {
            "position": "Response B (right)",
            "value": 1.0 - p.rate,
            "ci_low": 1.0 - p.high if p.high is not None else None,
            "ci_high": 1.0 - p.low if p.low is not None else None,
            "n": p.losses,
        },
    ]
    st.plotly_chart(
        position_bias_figure(
            rows,
            title="Share of decisive votes won by each side",
            xlabel="side",
            ylabel="share of decisive votes",
            reference=0.5,
        ),
        key=f"{KEY}_position",
    )


def section_agreement(s: dict[str, Any]) -> None:
    import pandas as pd

    st.header("Agreement between annotators")
    st.caption(
        "Cohen's kappa for each pair of annotators over the runs both voted on, and Krippendorff's alpha over "
        "everyone (nominal: fusion, Best-of-N, tie, both bad). 1 is perfect agreement, 0 is chance level."
    )
    annotators = s["annotators"]
    rows = s["kappa"]
    if len(annotators) < 2:
        st.info(
            "Agreement needs at least two annotators who voted on the same runs; so far "
            + (f"only {annotators[0]} has voted." if annotators else "nobody has voted.")
        )
        return
    if not rows:
        st.info(
            "No two annotators have voted on the same run yet, so there is too little overlap to measure agreement."
        )
        return
    alpha = s["alpha"]
    st.metric(
        "Krippendorff's alpha (all annotators)",
        "undefined" if alpha is None else f"{alpha:.3f}",
        help="Undefined when every shared vote is the same category: agreement on one category says nothing.",
    )
    table = pd.DataFrame(
        [
            {
                "annotator A": r.annotator_a,
                "annotator B": r.annotator_b,
                "shared runs": r.n_shared,
                "Cohen's kappa": r.kappa,
                "note": (
                    "undefined: one category only"
                    if r.kappa is None
                    else (
                        f"too little overlap (< {MIN_SHARED_FOR_KAPPA} runs)"
                        if r.n_shared < MIN_SHARED_FOR_KAPPA
                        else ""
                    )
                ),
            }
            for r in rows
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        key=f"{KEY}_kappa",
        column_config={"Cohen's kappa": st.column_config.NumberColumn("Cohen's kappa", format="%.3f")},
    )
    if all(r.n_shared < MIN_SHARED_FOR_KAPPA for r in rows):
        st.warning(
            f"Every pair shares fewer than {MIN_SHARED_FOR_KAPPA} runs: too little overlap for these numbers to "
            "mean much. Have annotators vote on the same runs (the Annotate queue serves everyone the same order)."
        )


def section_attribution(engine: Any, tag: str | None) -> None:
    from components.figures import histogram_figure
    from fusion.stats import distribution
    from storage.queries import attribution_rows

    st.header("Attribution")
    st.caption(
        "Where the fused text comes from, over every saved run with an attributed fusion (votes or not): the "
        "share copied from candidates, how many candidates contribute, and how much of it is the Best-of-N pick."
    )
    rows = attribution_rows(engine, tag=tag)
    if not rows:
        st.info("No run with an attributed fused answer yet.")
        return
    copied = [r.copied_fraction for r in rows]
    contributors = [r.contributors(CONTRIBUTOR_MIN_SHARE) for r in rows]
    bon_share = [r.bon_share for r in rows]
    d_copied, d_contrib, d_bon = distribution(copied), distribution(contributors), distribution(bon_share)
    cols = st.columns(4)
    cols[0].metric("Runs", len(rows))
    cols[1].metric("Median copied fraction", pct(d_copied["median"], 0))
    cols[2].metric(
        "Mean candidates contributing",
        "n/a" if d_contrib["mean"] is None else f"{d_contrib['mean']:.1f}",
        help=f"Candidates supplying at least {CONTRIBUTOR_MIN_SHARE:.0%} of the fused text.",
    )
    cols[3].metric("Median share of the Best-of-N pick", pct(d_bon["median"], 0))
    c1, c2, c3 = st.columns(3)
    with c1:
        st.plotly_chart(
            histogram_figure(
                [100 * x for x in copied if x is not None],
                "Copied fraction",
                "copied from candidates (%)",
                nbins=20,
            ),
            key=f"{KEY}_copied",
        )
    with c2:
        top = max(contributors) if contributors else 1
        st.plotly_chart(
            histogram_figure(
                contributors, "Candidates contributing", "candidates in the fused text", nbins=max(top, 1)
            ),
            key=f"{KEY}_contributors",
        )
    with c3:
        st.plotly_chart(
            histogram_figure(
                [100 * x for x in bon_share if x is not None],
                "Share of the Best-of-N pick",
                "fused text found in the pick (%)",
                nbins=20,
            ),
            key=f"{KEY}_bon_share",
        )


def section_exports(engine: Any, tag: str | None) -> None:
    from storage import export

    st.header("Export")
    where = f" on runs tagged {tag}" if tag else ""
    st.caption(
        f"Files{where} for analysis and training; JSON Lines load directly with the Hugging Face `datasets` JSON "
        "loader. The same exports: `python -m fusion export --format ...`."
    )

    def text_of(write: Callable[..., int], **kw: Any) -> Callable[[], str]:
        def build() -> str:
            buf = io.StringIO()
            write(engine, buf, tag, **kw)
            return buf.getvalue()

        return build

    suffix = f"-{tag}" if tag else ""
    items = [
        ("Votes (CSV)", text_of(export.export_votes_csv), f"votes{suffix}.csv", "text/csv", "csv"),
        (
            "Votes (JSON Lines)",
            text_of(export.export_votes_jsonl),
            f"votes{suffix}.jsonl",
            "application/jsonl",
            "jsonl",
        ),
        (
            "DPO pairs (JSON Lines)",
            text_of(export.export_dpo_jsonl),
            f"dpo{suffix}.jsonl",
            "application/jsonl",
            "dpo",
        ),
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
    cols = st.columns(len(items))
    for col, (label, build, name, mime, key) in zip(cols, items):
        col.download_button(
            label,
            data=build,
            file_name=name,
            mime=mime,
            key=f"{KEY}_export_{key}",
            on_click="ignore",
            icon=":material/download:",
            width="stretch",
        )
    st.caption(
        "DPO pairs come from decisive votes only (the winner is chosen, the loser rejected); SFT data holds every "
        "fused answer."
    )


def empty_database() -> None:
    st.info(
        "Nothing to show yet: there are no saved runs. Results appear once runs are saved and people vote on them."
    )
    st.markdown(
        "1. Make runs on **Explore** (a scenario works offline), or many at once with "
        "`python -m fusion batch prompts.jsonl --output runs.jsonl`.\n"
        "2. Vote on them on **Annotate**: the blind A/B vote, Best-of-N against Fusion-of-N.\n"
        "3. Come back here for win rates with confidence intervals, agreement and exports."
    )
    cols = st.columns(2)
    for col, (target, label, icon) in zip(
        cols,
        [
            ("explore.py", "Open Explore", ":material/science:"),
            ("annotate.py", "Open Annotate", ":material/how_to_vote:"),
        ],
    ):
        try:
            col.page_link(target, label=label, icon=icon)
        except Exception:  # noqa: BLE001 - the links need st.navigation
            pass


def page() -> None:
    from storage.queries import all_tags, all_votes, count_runs

    engine = deps.get_engine()
    st.title("Results")
    if count_runs(engine) == 0:
        empty_database()
        return
    choice = st.selectbox(
        "Tag", [ALL_TAGS, *all_tags(engine)], key=f"{KEY}_tag", help="Only runs with this tag."
    )
    tag = None if choice in (None, ALL_TAGS) else choice
    votes = all_votes(engine, tag=tag)
    if votes:
        s = compute(_signature(votes, tag), votes)
        section_win_rate(s)
        section_position(s)
        section_agreement(s)
    else:
        st.info(
            "No votes yet" + (f" on runs tagged {tag}" if tag else "") + ". Vote on the Annotate page (or on "
            "Explore) and the win rate, position bias and agreement appear here. Attribution statistics and "
            "the SFT export below need no votes."
        )
    section_attribution(engine, tag)
    section_exports(engine, tag)


page()

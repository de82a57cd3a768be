"""History: search and filter saved runs, open one, delete one, download it as an HTML report.

Every run has a permalink, ``?run=<id>`` on this page's URL; opening it (in any browser session) shows that
run's view. The query parameter is the only state of "which run is open", so the back button, a reload
and a pasted link all agree.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from typing import Any

import streamlit as st

from app import deps
from app.auth import current, refuse
from app.run_view import markdown_on, show_run, shown_blind
from app.state import keep
from components.attribution_view import esc
from components.text import md_escape, md_list
from fusion.text import plural

KEY = "history"
PAGE_SIZE = 20
ANY = "Any"
SOURCES = [ANY, "live", "batch", "scenario", "supplied", "upload"]
CONFIRM = "history_confirm_delete"
NOTICE = "history_notice"
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.:\-]")
MAX_ID_CHARS = 64  # storage refuses longer ids, so a longer one cannot name a run


# ------------------------------------------------------------------------------------------ helpers


def permalink(run_id: str) -> str:
    """The URL that reopens this run's view: this page's address in the browser plus ``?run=<id>``."""
    query = "?" + urllib.parse.urlencode({"run": run_id})
    try:
        base = st.context.url
    except Exception:  # noqa: BLE001 - no browser context (bare mode): a relative link still works
        base = None
    return (base or "") + query


def shown_id(raw: str) -> str:
    """An id from the URL, made safe to show (it is user input, and markdown would render it)."""
    cleaned = _SAFE_ID.sub("", raw)[:MAX_ID_CHARS]
    return cleaned or "(empty)"


def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M")


def _open(run_id: str) -> None:
    st.query_params["run"] = run_id


def _close() -> None:
    st.query_params.pop("run", None)
    st.session_state.pop(CONFIRM, None)


def _reset_page() -> None:
    # Popped, not set to 1: a widget given a value through session state warns on every run.
    st.session_state.pop(f"{KEY}_page", None)


def _day_bounds(value: Any) -> tuple[float | None, float | None]:
    """Epoch bounds of a date-range input, inclusive of the whole last day; either side may be open."""
    if not isinstance(value, (tuple, list)):
        value = (value,) if value else ()
    lo = hi = None
    if len(value) >= 1 and value[0]:
        lo = dt.datetime.combine(value[0], dt.time.min).timestamp()
    if len(value) >= 2 and value[1]:
        hi = dt.datetime.combine(value[1], dt.time.max).timestamp()
    elif len(value) == 1 and value[0]:
        hi = dt.datetime.combine(value[0], dt.time.max).timestamp()  # one day picked: that day only
    return lo, hi


# ------------------------------------------------------------------------------------------ one run


def show_one(engine: Any, raw_id: str) -> None:
    from components.report import run_report_html
    from storage.runs import delete_run, load_run
    from storage.votes import votes_for_run

    run = load_run(engine, raw_id) if 0 < len(raw_id) <= MAX_ID_CHARS else None
    st.button("Back to all runs", key=f"{KEY}_back", on_click=_close)
    if run is None:
        st.error(
            f"There is no run with the id `{shown_id(raw_id)}`. It may have been deleted, or the link was cut "
            "short when it was copied."
        )
        return
    st.title("Run " + md_escape(run.id))
    meta = [when(run.created_at), f"source {md_escape(run.source)}", f"N = {len(run.candidates)}"]
    if run.tags:
        meta.append("tags: " + md_list(run.tags))
    st.caption(" · ".join(meta))

    link = permalink(run.id)
    # A plain link, not st.code: the code box's syntax highlighter cost the browser 0.6-0.8 s per permalink
    # (bench/results/browser_speed.md), for a one-line URL.
    st.html(
        '<div class="fx-permalink" style="font-size:0.9rem;margin:0.2em 0 0.6em 0;"><b>Permalink</b> (reopens '
        f'exactly this view, for sharing): <a href="{esc(link)}" style="font-family:monospace;'
        f'overflow-wrap:anywhere;">{esc(link)}</a></div>'
    )

    blind = shown_blind(run, engine)
    who = current()
    actions = st.container(horizontal=True)
    with actions:
        st.download_button(
            "Download HTML report",
            # The report names the pick and the fusion and lists the others' votes: not before a blind vote.
            disabled=blind or not who.may("export"),
            data=lambda: run_report_html(run, votes_for_run(engine, run.id), markdown=markdown_on()),
            file_name=f"fusion-run-{run.id}.html",
            mime="text/html",
            key=f"{KEY}_report",
            on_click="ignore",
            help=(
                refuse("export")
                if not who.may("export")
                else "The report names which response is which: vote below, or show the labels, first."
                if blind
                else "One self-contained file: prompt, candidates, pick, fused output with attribution colours, votes."
            ),
        )
        if st.button(
            "Delete this run", key=f"{KEY}_delete", disabled=not who.may("delete"),
            help=None if who.may("delete") else refuse("delete"),
        ):
            st.session_state[CONFIRM] = run.id
    if blind:
        st.caption("The HTML report can be downloaded after your vote: it names which response is which.")
    if st.session_state.get(CONFIRM) == run.id and who.may("delete"):
        n_votes = len(votes_for_run(engine, run.id))
        with st.container(border=True):
            st.warning(
                f"Delete run {md_escape(run.id)} with its candidates, fusion and {plural(n_votes, 'vote')}? This cannot be undone."
            )
            c1, c2 = st.columns(2)
            if c1.button("Yes, delete it", key=f"{KEY}_delete_yes", type="primary"):
                removed = delete_run(engine, run.id) if current().may("delete") else False
                _close()
                st.session_state[NOTICE] = (
                    f"Run {md_escape(run.id)} was deleted." if removed else f"Run {md_escape(run.id)} was already gone."
                )
                st.rerun()
            if c2.button("Cancel", key=f"{KEY}_delete_no"):
                st.session_state.pop(CONFIRM, None)
                st.rerun()
    show_run(run, engine=engine, key=f"{KEY}_{run.id}", blind=blind)


# ------------------------------------------------------------------------------------------ the list


def filters(engine: Any) -> dict[str, Any]:
    from fusion.types import MAX_N
    from storage.listing import all_models, all_tags

    with st.container(border=True):
        text = st.text_input(
            "Search",
            key=keep("keep.history_text", ""),
            on_change=_reset_page,
            placeholder="Words in the prompt, system message or fused answer",
        )
        c = st.columns(5)
        models = [ANY, *all_models(engine)]
        tags = [ANY, *all_tags(engine)]
        for key, options in (("keep.history_model", models), ("keep.history_tag", tags)):
            keep(key, ANY)
            if st.session_state[key] not in options:
                st.session_state[key] = ANY  # what it named is gone (its runs were deleted)
        model = c[0].selectbox("Model", models, key="keep.history_model", on_change=_reset_page)
        n = c[1].selectbox("N", [ANY, *range(1, MAX_N + 1)], key=keep("keep.history_n", ANY), on_change=_reset_page)
        tag = c[2].selectbox("Tag", tags, key="keep.history_tag", on_change=_reset_page)
        source = c[3].selectbox("Source", SOURCES, key=keep("keep.history_source", ANY), on_change=_reset_page)
        dates = c[4].date_input("Created between", key=keep("keep.history_dates", ()), on_change=_reset_page)
    since, until = _day_bounds(dates)
    return {
        "text": text.strip() or None,
        "model": None if model == ANY else model,
        "n": None if n == ANY else int(n),
        "tag": None if tag == ANY else tag,
        "source": None if source == ANY else source,
        "since": since,
        "until": until,
    }


def show_list(engine: Any) -> None:
    import pandas as pd

    from storage.listing import count_runs, list_runs

    st.title("History")
    st.caption("Every saved run. Select a row to open it; each run has a permalink you can share.")
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.success(notice)
    if count_runs(engine) == 0:
        st.info("No runs saved yet. Runs from Explore and from `python -m fusion batch` are listed here.")
        try:
            st.page_link("explore.py", label="Open Explore", icon="🔬")
        except Exception:  # noqa: BLE001 - the link needs st.navigation
            pass
        return
    f = filters(engine)
    total = count_runs(engine, **f)
    if total == 0:
        st.warning("No run matches these filters.")
        return
    pages = max(1, -(-total // PAGE_SIZE))
    table_box = st.container()
    # The pager is drawn under the table but read first: the page number decides which rows to load.
    page = st.pagination(pages, key=f"{KEY}_page") if pages > 1 else 1
    rows = list_runs(engine, **f, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    first = (page - 1) * PAGE_SIZE + 1
    with table_box:
        st.caption(f"{plural(total, 'run matches', 'runs match')} · showing {first} to {first + len(rows) - 1}")
        table = pd.DataFrame(
            {
                "created": [when(r.created_at) for r in rows],
                "prompt": [" ".join(r.prompt.split())[:140] for r in rows],
                "N": [r.n for r in rows],
                "models": [", ".join(r.models) for r in rows],
                "tags": [", ".join(r.tags) for r in rows],
                "source": [r.source for r in rows],
                "votes": [r.n_votes for r in rows],
                "copied": [r.copied_fraction for r in rows],
                "id": [r.id for r in rows],
            }
        )
        event = st.dataframe(
            table,
            key=f"{KEY}_table_{page}",
            hide_index=True,
            height=35 * (len(rows) + 1) + 3,  # every row of the page at once, no inner scrolling
            on_select="rerun",
            selection_mode="single-row",
            column_config={
                "copied": st.column_config.ProgressColumn(
                    "copied",
                    help="Share of the fused text copied from candidates",
                    format="percent",
                    min_value=0.0,
                    max_value=1.0,
                ),
                "prompt": st.column_config.TextColumn("prompt", width="medium"),
                "models": st.column_config.TextColumn("models", width="small"),
                "tags": st.column_config.TextColumn("tags", width="small"),
                "created": st.column_config.TextColumn("created", width="small"),
            },
        )
    selected = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    if selected and 0 <= selected[0] < len(rows):
        _open(rows[selected[0]].id)
        st.rerun()
    # The same choice without the table, for keyboards and screen readers.
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    chosen = c1.selectbox(
        "Open a run",
        [r.id for r in rows],
        index=None,
        key=f"{KEY}_open_choice_{page}",
        format_func=lambda rid: next(
            f"{when(r.created_at)} · {' '.join(r.prompt.split())[:80]}" for r in rows if r.id == rid
        ),
        placeholder="Choose a run on this page ...",
    )
    if c2.button("Open", key=f"{KEY}_open", disabled=chosen is None) and chosen is not None:
        _open(chosen)
        st.rerun()


def page() -> None:
    engine = deps.get_engine()
    raw = st.query_params.get("run")
    if raw is not None:
        show_one(engine, str(raw))
    else:
        show_list(engine)


page()

"""Timers for bench/browser_speed.py's timed server: ``app/main.py`` runs unchanged (through
bench/timed_entry.py), with timers around the functions that can be slow, and what each script run spent
its time on is written to a file.

    FUSION_BENCH_TIMINGS=/tmp/timings.jsonl streamlit run bench/timed_entry.py

Nothing here changes what the app does: the same functions are called with the same arguments; each is
wrapped (at runtime, in this server process only) to record its inclusive and exclusive (self) time,
kept on a per-thread stack so that nested calls are not counted twice. What is wrapped:

- every public function of ``storage.runs``, ``storage.listing``, ``storage.votes``,
  ``storage.stats_reads`` and ``storage.stats_sql`` (the database: each call is one or a few queries);
- the engine work the views do: kept reports, the sentence diff, the share partition, the statistics, and
  the offline pick, fusion and attribution of a run being made;
- the component builders: Markdown and attribution HTML, candidate cards, diff HTML, plotly figures;
- the Streamlit element calls that serialise big payloads inside the script thread (``st.html`` with the
  size of its body, ``st.plotly_chart``, ``st.dataframe``, ``st.markdown``);
- first-time imports (``builtins.__import__`` of a module not yet in ``sys.modules``), as ``import <top>``;
- the protobuf serialisation of every message to the browser (on the event loop), with its size;
- the whole script run, as ``script``.

Every top-level record (the script run, or a wrapped call with nothing above it: a widget callback, which
Streamlit runs before the script, a fragment's rerun, work in another thread) is one JSON line
``{"t": end (epoch s), "thread": name, "calls": [[name, inclusive ms, self ms, bytes], ...]}``, its
outermost call last; the benchmark reads the lines whose time falls inside the action it timed. The
overhead is two ``perf_counter`` calls and a list append per wrapped call, a dict lookup per ``import``.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

OUT = os.environ.get("FUSION_BENCH_TIMINGS") or str(ROOT / "bench-timings.jsonl")
_local = threading.local()
_write_lock = threading.Lock()


def _stack() -> list[list[Any]]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
        _local.calls = []
    return stack


def _enter(name: str) -> list[Any]:
    frame = [name, time.perf_counter(), 0.0, None]  # name, start, time of wrapped children, bytes
    _stack().append(frame)
    return frame


def _leave(frame: list[Any]) -> None:
    stack = _stack()
    elapsed = time.perf_counter() - frame[1]
    stack.pop()
    _local.calls.append([frame[0], round(elapsed * 1000, 3), round((elapsed - frame[2]) * 1000, 3), frame[3]])
    if stack:
        stack[-1][2] += elapsed
        return
    record = {"t": time.time(), "thread": threading.current_thread().name, "calls": _local.calls}
    _local.calls = []
    with _write_lock, open(OUT, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def timed(name: str, fn: Callable[..., Any], *, size: Callable[..., int | None] | None = None) -> Callable[..., Any]:
    if getattr(fn, "__bench_timed__", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        frame = _enter(name)
        try:
            if size is not None:
                try:
                    frame[3] = size(*args, **kwargs)
                except Exception:  # noqa: BLE001 - a size we cannot read is not a reason to fail the call
                    frame[3] = None
            return fn(*args, **kwargs)
        finally:
            _leave(frame)

    wrapper.__bench_timed__ = True  # type: ignore[attr-defined]
    return wrapper


def timed_async(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`timed` for a coroutine function run by ``asyncio.run`` in the script thread: its time covers
    the waits for the worker threads it hands work to (whose own records are written apart)."""
    if getattr(fn, "__bench_timed__", False):
        return fn

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        frame = _enter(name)
        try:
            return await fn(*args, **kwargs)
        finally:
            _leave(frame)

    wrapper.__bench_timed__ = True  # type: ignore[attr-defined]
    return wrapper


def wrap_module(module: Any, names: list[str] | None = None, *, prefix: str | None = None) -> None:
    """Wrap the named functions (default: every public function defined in ``module``)."""
    prefix = prefix or module.__name__
    if names is None:
        names = [
            n for n, v in vars(module).items()
            if inspect.isfunction(v) and not n.startswith("_") and v.__module__ == module.__name__
        ]  # fmt: skip
    for n in names:
        fn = getattr(module, n, None)
        if not callable(fn):
            # Loudly: a renamed function would otherwise drop out of the profile without a word.
            raise AttributeError(f"{module.__name__}.{n} is not a function to time (renamed or removed?)")
        setattr(module, n, timed(f"{prefix}.{n}", fn))


_real_import = builtins.__import__


def _timed_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    # Only absolute imports of a module not loaded yet are timed; every other import statement is the
    # dict lookup it always was.
    if level or name in sys.modules:
        return _real_import(name, globals, locals, fromlist, level)
    frame = _enter("import " + name.split(".")[0])
    try:
        return _real_import(name, globals, locals, fromlist, level)
    finally:
        _leave(frame)


def _html_size(self_or_body: Any, body: Any = None, *args: Any, **kwargs: Any) -> int | None:
    text = body if body is not None else kwargs.get("body", self_or_body)
    return len(text.encode("utf-8")) if isinstance(text, str) else None


def install() -> None:
    """Wrap everything listed in the module docstring (once per process)."""
    if getattr(builtins, "__bench_installed__", False):
        return
    builtins.__bench_installed__ = True  # type: ignore[attr-defined]
    builtins.__import__ = _timed_import

    import streamlit as st
    from streamlit.delta_generator import DeltaGenerator

    for name in ("html", "plotly_chart", "dataframe", "markdown"):
        size = _html_size if name == "html" else None
        setattr(DeltaGenerator, name, timed(f"st.{name}", getattr(DeltaGenerator, name), size=size))
    main_dg = st._main  # st.html and friends are methods bound to this object at import
    for name in ("html", "plotly_chart", "dataframe", "markdown"):
        setattr(st, name, getattr(main_dg, name))

    # Each message to the browser is serialised (protobuf) on the server's event loop, beside the script.
    from streamlit.web.server.starlette import starlette_websocket

    serialize = starlette_websocket.serialize_forward_msg

    def serialize_timed(msg: Any) -> bytes:
        frame = _enter("streamlit.serialize_forward_msg")
        try:
            out = serialize(msg)
            frame[3] = len(out)
            return out
        finally:
            _leave(frame)

    starlette_websocket.serialize_forward_msg = serialize_timed

    import storage.listing
    import storage.runs
    import storage.stats_reads
    import storage.stats_sql
    import storage.votes

    for module in (storage.runs, storage.listing, storage.votes, storage.stats_reads, storage.stats_sql):
        wrap_module(module)
    import fusion.attribution
    import fusion.diff
    import fusion.fusors
    import fusion.kept
    import fusion.pipeline
    import fusion.selectors
    import fusion.stats

    # The offline pick and fusion of a run being made (Explore's first open of a scenario): the pipeline
    # runs them in worker threads, whose records are top-level records of their own.
    wrap_module(fusion.pipeline, ["attribute_fused"])
    fusion.pipeline.acomplete = timed_async("fusion.pipeline.acomplete", fusion.pipeline.acomplete)
    fusion.selectors.ConsensusSelector.select_sync = timed(
        "fusion.selectors.ConsensusSelector.select_sync", fusion.selectors.ConsensusSelector.select_sync)
    fusion.fusors.ExtractiveFusor.fuse_sync = timed(
        "fusion.fusors.ExtractiveFusor.fuse_sync", fusion.fusors.ExtractiveFusor.fuse_sync)

    wrap_module(fusion.kept, ["run_kept"])
    wrap_module(fusion.diff, ["run_diff"])
    wrap_module(fusion.attribution, ["partition", "verbatim_source"])
    wrap_module(fusion.stats, ["win_rate", "win_rate_by", "position_bias", "pairwise_kappa",
                               "krippendorff_alpha", "annotator_units", "distribution", "summarize",
                               "vote_table_from_columns", "attribution_values"])
    import components.attribution_view
    import components.candidate_cards
    import components.diff_view
    import components.figures
    import components.html_charts
    import components.markdown_view
    import components.report
    import components.summary
    import components.vote_panel

    wrap_module(components.markdown_view, ["markdown_html", "attributed_markdown_html"])
    wrap_module(components.attribution_view, ["attribution_html", "legend_html", "partition_bar_html"])
    wrap_module(components.candidate_cards, ["render_candidate_grid", "candidate_card_html"])
    wrap_module(components.diff_view, ["diff_html"])
    wrap_module(components.figures)
    wrap_module(components.html_charts, ["win_rate_bars_html", "histogram_html"])
    wrap_module(components.summary, ["summary_html"])
    wrap_module(components.vote_panel, ["render_pair", "render_vote_form", "response_html"])
    # app.run_view binds its component and engine imports at import time: it must be imported after the
    # wrapping above (it is, here) for those names to be the timed ones.
    import app.run_view

    wrap_module(app.run_view, ["derived", "show_prompt", "show_candidates", "show_diff", "show_blind_vote",
                               "show_run", "summary_figures"])


def run_app() -> None:
    """Run ``app/main.py`` once, as Streamlit would, inside a ``script`` record."""
    frame = _enter("script")
    try:
        install()
        source = (ROOT / "app" / "main.py").read_text(encoding="utf-8")
        code = compile(source, str(ROOT / "app" / "main.py"), "exec")
        exec(code, {"__name__": "__main__", "__file__": str(ROOT / "app" / "main.py")})  # noqa: S102 - our app
    finally:
        frame[3] = int("litellm" in sys.modules)  # the script record's 4th field: was litellm loaded?
        _leave(frame)

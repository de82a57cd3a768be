"""Explore: a prompt and its candidates (a built-in scenario, your own, or generated live) taken through
Best-of-N and Fusion-of-N, with the fused text attributed span by span, and a blind vote.

What is on screen is named by the URL, so a reload, a shared link or a trip to another page and back
reopens it: ``?scenario=<id>`` for a built-in scenario under the offline method (its run is deterministic),
``?run=<id>`` for any saved run. Each way of bringing candidates (mode) remembers its own last view.
The method (selector, fusor, their models and the server URL) is one sidebar setting that every mode uses.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import streamlit as st

from app import deps
from app.run_view import mark_seen, show_run, text_block
from app.session_watch import session_gone
from app.state import keep
from components.candidate_cards import render_candidate_card
from components.text import md_escape
from fusion.cancel import until_stopped
from fusion.errors import FusionError, InputError, NotEnoughCandidates
from fusion.pipeline import MethodConfig
from fusion.text import plural
from fusion.types import DEFAULT_TIMEOUT_S, Candidate, ModelSpec, Prompt, Run, SamplingSettings
from fusion.validate import check_api_base

log = logging.getLogger("fusion.app")

APP_MAX_N = 16
APP_MIN_N = 2  # a run of one candidate has nothing to pick from, fuse or vote on
MODES = ["Scenario gallery", "Your own candidates", "Generate live"]
MODE_KEY = "keep.explore_mode"
VIEWS = "explore_views"  # mode -> {"scenario": id} or {"run": id}: the last view of each mode
SHOWN = "explore_shown"  # (view as a tuple, Run): the run on screen, so a rerun does not reload or recompute
SHOWN_SIG = "explore_shown_sig"  # the method signature the gallery run on screen was made with
FAILED = "explore_failed"  # (what was attempted, message): a failure shown until something changes
PICK_KEY = "explore_scenario_pick"
DEFAULT_MODEL = "openai/gpt-4o-mini"


def env_model() -> str | None:
    """``FUSION_MODEL`` (``make local-model`` sets it beside ``FUSION_API_BASE``): the default candidate,
    judge and fusor model, ahead of the secrets file's ``[fusion]`` defaults."""
    return os.environ.get("FUSION_MODEL", "").strip() or None


# ------------------------------------------------------------------------------------------ settings


def _init(key: str, value: Any) -> None:
    """Give a kept widget its value (the one it had before a trip to another page, else ``value``)."""
    keep(key, value)


CONCURRENCY_KEY = "keep.m_concurrency"
DEFAULT_CONCURRENCY = 8


def default_concurrency() -> int:
    """``FUSION_CONCURRENCY`` (``make local-model`` sets 1 for its one-request-at-a-time server), else 8."""
    raw = os.environ.get("FUSION_CONCURRENCY", "").strip()
    try:
        return min(32, max(1, int(raw))) if raw else DEFAULT_CONCURRENCY
    except ValueError:
        return DEFAULT_CONCURRENCY


def method_settings() -> MethodConfig:
    """Sidebar: where models run and how Best-of-N picks and the fusion is written. Every mode uses it."""
    from app.auth import current, refuse
    from fusion.fusors import PRESETS

    if not current().may("settings"):
        # Model-backed judges and fusors spend the operator's keys: offline methods only.
        st.sidebar.caption(refuse("settings") + " Runs use the offline methods (consensus and extractive).")
        return MethodConfig(selector="consensus", fusor="extractive")
    defaults = deps.fusion_defaults()
    sb = st.sidebar
    sb.header("Models")
    _init("keep.api_base", deps.default_api_base())
    sb.text_input(
        "OpenAI-compatible server URL (optional)",
        key="keep.api_base",
        placeholder="http://localhost:11434/v1",
        help="Ollama, vLLM, LM Studio or any OpenAI-compatible server. Used by the judge, the fusor and live "
        "generation; model names are then `openai/<name>`.",
    )
    _init("keep.api_key", "")
    # Streamlit's "Show password" button takes the focus on Tab, and a password field left that way never
    # sends what was typed (seen: the server got no key). Without the button, Tab leaves the field and the
    # key is applied as in every other field.
    st.html(
        "<style>.st-key-keep-api_key button[aria-label$='password']{display:none !important;}</style>"
    )
    sb.text_input(
        "Key for this server (optional)",
        key="keep.api_key",
        type="password",
        help="Sent only to the server URL above, and kept only for this browser session. A local server "
        "needs none. The provider keys of this app's operator never go to a URL typed here unless the operator "
        "listed it (FUSION_KEY_BASES or [fusion] key_bases in .streamlit/secrets.toml).",
    )
    api_base = (st.session_state.get("keep.api_base") or "").strip() or None
    try:
        check_api_base(api_base)
    except InputError as exc:  # kept as typed: every call to it then fails with this message, none is sent
        sb.error(md_escape(exc))
    bases, bases_problem = key_bases()
    if bases_problem:
        sb.error(md_escape(bases_problem) + " No provider key is sent to any server URL until it is fixed.")
    keys = deps.provider_key_names()
    if keys:
        sb.caption("Provider keys found: " + md_escape(", ".join(keys)) + ".")
    elif api_base:
        sb.caption("No provider key found; a local server needs none. Name its models `openai/<name>`.")
    else:
        sb.caption("No provider key found (set one in the environment or .streamlit/secrets.toml).")
    if api_base:
        from fusion.keys import is_listed_base

        if is_listed_base(api_base, bases):
            sb.caption("This server is on the operator's list: it gets the provider key (or the key typed above).")
        else:
            sb.caption("This server gets the key typed above, or none: provider keys go only to their "
                       "providers and to servers the operator listed.")
    sb.header("Method")
    _init("keep.m_selector", "consensus")
    selector = sb.radio(
        "Best-of-N selector",
        ["consensus", "judge"],
        format_func=lambda v: {"consensus": "Consensus (offline, MBR with chrF)", "judge": "LLM judge (1-10)"}[v],
        key="keep.m_selector",
        help="Consensus picks the candidate the others agree with most. The judge scores each candidate with a model.",
    )
    _init("keep.m_fusor", "extractive")
    fusor = sb.radio(
        "Fusor",
        ["extractive", "llm"],
        format_func=lambda v: {"extractive": "Extractive (offline, sentence consensus)", "llm": "LLM fusor (the paper's method)"}[v],
        key="keep.m_fusor",
        help="The LLM fusor reads the prompt and all candidates and writes one answer. The extractive fusor "
        "stitches together the sentences several candidates agree on.",
    )
    default_model = str(env_model() or defaults.get("default_fusor_model") or DEFAULT_MODEL)
    judge_model = fusor_model = None
    preset, template = "fusion", None
    if selector == "judge":
        _init("keep.m_judge_model", default_model)
        judge_model = sb.text_input("Judge model", key="keep.m_judge_model")
    if fusor == "llm":
        _init("keep.m_fusor_model", default_model)
        fusor_model = sb.text_input("Fusor model", key="keep.m_fusor_model")
        with sb.expander("Fusor prompt template"):
            _init("keep.m_preset", "fusion")
            preset = st.selectbox("Preset", list(PRESETS), format_func=lambda p: PRESETS[p].title, key="keep.m_preset")
            st.caption(md_escape(PRESETS[preset].description))
            _init(f"keep.m_template_{preset}", PRESETS[preset].template)
            edited = st.text_area(
                "Template ({prompt} and {candidates} are filled in)", height=260, key=f"keep.m_template_{preset}"
            )
            template = None if edited == PRESETS[preset].template else edited
    _init("keep.m_timeout", int(DEFAULT_TIMEOUT_S))
    timeout = sb.number_input(
        "Timeout per call (s)", 1, 600, key="keep.m_timeout",
        help="How long any model call (a candidate, the judge, the fusor) may wait for its answer, or for the "
        "next piece of a streamed one, before it is retried once and then given up.",
    )  # fmt: skip
    _init(CONCURRENCY_KEY, default_concurrency())
    sb.number_input(
        "Model calls at once", 1, 32, key=CONCURRENCY_KEY,
        help="How many candidates are generated at the same time. A local server that answers one request at a "
        "time (llama.cpp, a small Ollama) does best with 1: requests queued behind others only wait.",
    )  # fmt: skip
    typed_key = (st.session_state.get("keep.api_key") or "").strip()
    config = MethodConfig(
        selector=selector,
        fusor=fusor,
        judge_model=judge_model,
        fusor_model=fusor_model,
        preset=preset,
        template=template,
        api_base=api_base,
        api_key=(typed_key or None) if api_base else None,  # the key typed for that URL, for that URL only
        timeout=float(timeout),
    )
    problem = method_problem(config)
    if problem:
        sb.warning(problem)
    return config


def key_bases() -> tuple[tuple[str, ...], str | None]:
    """The base URLs the operator's provider keys may go to (FUSION_KEY_BASES and ``[fusion] key_bases`` in
    .streamlit/secrets.toml), and what is wrong with that setting, if anything (then none is listed)."""
    from fusion.keys import env_key_bases, parse_key_bases

    try:
        listed = env_key_bases() + parse_key_bases(
            deps.fusion_defaults().get("key_bases"), source="[fusion] key_bases in .streamlit/secrets.toml"
        )
    except FusionError as exc:
        return (), str(exc)
    return tuple(dict.fromkeys(listed)), None


def method_problem(config: MethodConfig) -> str | None:
    """Why the configured judge or fusor cannot run (a missing model or key), or None."""
    from fusion.providers import check_keys

    if config.selector == "judge" and not (config.judge_model or "").strip():
        return "The LLM judge needs a judge model."
    if config.fusor == "llm" and not (config.fusor_model or "").strip():
        return "The LLM fusor needs a fusor model."
    try:
        check_keys([ModelSpec(m, api_base=config.api_base, api_key=config.api_key) for m in config.models()],
                   deps.secrets(), allowed=key_bases()[0])
    except FusionError as exc:
        return f"{exc} Or give an OpenAI-compatible server URL above."
    return None


def banner(config: MethodConfig) -> None:
    keys = deps.provider_key_names()
    if config.offline and not keys and not config.api_base:
        st.info(
            "Offline mode: consensus Best-of-N and extractive fusion, no model is called. Scenarios and your "
            "own candidates work fully offline. To use models, set a provider key (e.g. OPENAI_API_KEY) in the "
            "environment or .streamlit/secrets.toml, or give an OpenAI-compatible server URL in the sidebar.",
            icon="📴",
        )
        return
    where = []
    if config.api_base:
        try:
            where.append(f"server {check_api_base(config.api_base)}")
        except InputError:
            where.append("no server (the URL in the sidebar is not one)")
    if keys:
        where.append("keys for " + ", ".join(keys))
    st.caption(
        "Method: " + md_escape(config.describe()) + "." + (" Available: " + md_escape("; ".join(where)) + "." if where else "")
    )


def build(config: MethodConfig) -> tuple[Any, Any]:
    from fusion.pipeline import build_method

    client = None if config.offline else deps.get_client()
    return build_method(config, client=client, secrets=deps.secrets(), allowed=key_bases()[0])


# ------------------------------------------------------------------------------------------ the view


def _views() -> dict[str, dict[str, str]]:
    if VIEWS not in st.session_state:
        st.session_state[VIEWS] = {}
    return st.session_state[VIEWS]


def _url_view() -> dict[str, str] | None:
    qp = st.query_params
    if qp.get("run"):
        return {"run": str(qp.get("run"))}
    if qp.get("scenario"):
        return {"scenario": str(qp.get("scenario"))}
    return None


def set_view(mode: str, view: dict[str, str] | None) -> None:
    """Make ``view`` the one on screen for ``mode``, and the URL say so."""
    views = _views()
    if view is None:
        views.pop(mode, None)
    else:
        views[mode] = dict(view)
    for name in ("run", "scenario"):
        if view is None or name not in view:
            st.query_params.pop(name, None)
    if view is not None:
        for name, value in view.items():
            st.query_params[name] = value
    st.session_state.pop(FAILED, None)


def mode_of_source(source: str) -> str:
    if source.startswith("scenario"):
        return MODES[0]
    if source in ("supplied", "upload"):
        return MODES[1]
    return MODES[2]


def _on_mode_change() -> None:
    mode = st.session_state.get(MODE_KEY) or MODES[0]
    set_view(mode, _views().get(mode))


def resolve_mode(default: str) -> str:
    """The mode to show, and the URL and the mode's view made to agree (the URL wins: it may be a link)."""
    url = _url_view()
    if url is not None:
        mode = st.session_state.get(MODE_KEY)
        if mode is None or _views().get(mode) != url:
            if "scenario" in url:
                mode = MODES[0]
            else:
                run = _load(url["run"])
                mode = mode_of_source(run.source) if run is not None else (mode or default)
                if run is not None:
                    _remember(("run", run.id), run)
            _views()[mode] = url
            st.session_state[MODE_KEY] = mode
    _init(MODE_KEY, default)
    mode = st.session_state[MODE_KEY]
    if url is None and mode in _views():
        set_view(mode, _views()[mode])  # back from another page: the URL names the view again
    return mode


def _load(run_id: str) -> Run | None:
    from storage.runs import load_run

    shown = st.session_state.get(SHOWN)
    if shown and shown[0] == ("run", run_id):
        return shown[1]
    try:
        return load_run(deps.get_engine(), run_id) if 0 < len(run_id) <= 64 else None
    except Exception:  # noqa: BLE001 - an unreadable row is "no such run" to the reader
        log.exception("loading run %s failed", run_id)
        return None


def _remember(view: tuple[str, str], run: Run) -> None:
    st.session_state[SHOWN] = (view, run)


def show(run: Run, *, note: str | None = None, on_try_llm: Any = None) -> None:
    st.divider()
    show_run(run, engine=deps.get_engine(), key="explore", note=note, on_try_llm=on_try_llm)


NOTICE = "explore_notice"  # something to say once about the result just made (e.g. empty boxes left out)


def show_view_run(view: dict[str, str] | None, config: MethodConfig) -> None:
    """The last failure, then the saved run the mode's view names (own candidates and live runs)."""
    has_run = bool(view and "run" in view)
    show_failure(has_result=has_run)
    if not has_run:
        return
    run = _load(view["run"])  # type: ignore[index]
    if run is None:
        st.error(f"There is no saved run with the id {md_escape(view['run'][:64])}. It may have been deleted.")  # type: ignore[index]
        return
    _remember(("run", run.id), run)
    show(run, on_try_llm=llm_fusor_offer(config))


def show_failure(*, has_result: bool = False) -> None:
    """The last failure (and, with an older result still below it, that it is the last one that worked)."""
    failed = st.session_state.get(FAILED)
    if failed:
        st.error(md_escape(failed[1]))
        if has_result:
            st.caption("Below: the last result that worked, not the attempt that failed.")
    notice = st.session_state.pop(NOTICE, None)
    if notice and not failed:
        st.info(notice)


# ------------------------------------------------------------------------------------------ computing


def offline_run_id(kind: str, prompt: Prompt | str, texts: list[str]) -> str:
    """Same candidates, same offline method -> same run, so votes from several people meet on one run."""
    h = hashlib.sha256()
    text, system = (prompt, None) if isinstance(prompt, str) else (prompt.text, prompt.system)
    parts = [kind, text, *texts] + ([f"system:{system}"] if system else [])
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return f"{kind[:3]}-{h.hexdigest()[:12]}"


def stage_reporter(status: Any) -> Any:
    def on_stage(event: Any) -> None:
        if event.message:
            status.update(label=event.message + " ...")

    return on_stage


def fused_streamer(box: Any, caption: str | None = None) -> Any:
    """Show the fused text in ``box`` as the fusor streams it, redrawn at most every 0.15 s (a redraw per
    token would flood the websocket)."""
    parts: list[str] = []
    last = [0.0]

    def on_token(delta: str) -> None:
        parts.append(delta)
        now = time.monotonic()
        if now - last[0] > 0.15:
            last[0] = now
            with box.container():
                if caption:
                    st.caption(caption)
                text_block("".join(parts))

    return on_token


def fused_counter(status: Any) -> Any:
    """Report the fusor's progress as a character count in the status label, without showing the text."""
    count = [0]
    last = [0.0]

    def on_token(delta: str) -> None:
        count[0] += len(delta)
        now = time.monotonic()
        if now - last[0] > 0.3:
            last[0] = now
            status.update(label=f"Fusing ... {count[0]:,} characters written")

    return on_token


def offline_slot(run: Run, config: MethodConfig, status: Any) -> AbstractContextManager[Any]:
    """A turn in the server's queue for heavy offline work (:mod:`fusion.limits`): large pasted or
    uploaded candidates wait, saying for how many others, so that one visitor's input never has every
    core; small runs and model-backed ones go at once."""
    from fusion.limits import is_heavy, shared_queue, waiting_message

    if not config.offline or not is_heavy([c.text for c in run.candidates if c.ok]):
        return nullcontext()

    def on_wait(ahead: int) -> None:
        status.update(label=waiting_message(ahead), state="running")

    return shared_queue().slot(on_wait=on_wait)


def finish(run: Run, config: MethodConfig, *, attempt: tuple[Any, ...], stream_fusion: bool) -> Run | None:
    """Pick, fuse, attribute and save a run whose candidates are known. A failure is remembered under
    ``attempt`` and shown; the previous result stays on screen."""
    from fusion.pipeline import acomplete

    box = st.empty()  # progress while it works, gone once the result is on screen
    try:
        selector, fusor = build(config)
        with box.container():
            with st.status("Choosing and fusing ...", expanded=stream_fusion) as status:
                # A blind run must not show which text is the fusion while it is written: count, don't show.
                on_token = fused_streamer(st.empty()) if stream_fusion else fused_counter(status)
                with offline_slot(run, config, status):
                    asyncio.run(until_stopped(  # a closed tab or a new run ends the calls (fusion.cancel)
                        acomplete(
                            run, selector=selector, fusor=fusor, on_stage=stage_reporter(status), on_fused_token=on_token
                        ),
                        session_gone(),
                    ))
        box.empty()
        # The selector and fusor report their own failures on the run instead of raising; here, with the
        # candidates already known, a run without a pick or a fusion is a failed attempt: say why and keep
        # the last result that worked, rather than saving and showing a half-made run.
        problems = []
        if run.bon is None or run.bon.index is None:
            problems.append(f"The Best-of-N selector failed: {run.bon.error if run.bon else 'it gave no pick'}")
        if run.fused is None or run.fused.error:
            problems.append(f"The fusor failed: {run.fused.error if run.fused else 'it gave no answer'}")
        if problems:
            st.session_state[FAILED] = (attempt, " ".join(problems))
            return None
    except FusionError as exc:
        st.session_state[FAILED] = (attempt, str(exc))
        return None
    except Exception as exc:  # noqa: BLE001 - never a traceback on screen
        log.exception("fusing failed")
        st.session_state[FAILED] = (attempt, f"Something went wrong while fusing: {type(exc).__name__}: {exc}")
        return None
    save(run)
    return run


def save(run: Run) -> None:
    from storage.runs import save_run

    try:
        save_run(deps.get_engine(), run)
    except Exception as exc:  # noqa: BLE001
        log.exception("saving run %s failed", run.id)
        st.warning(f"The run is shown but could not be saved to the database: {md_escape(exc)}")


# ------------------------------------------------------------------------------------------ gallery


def _open_scenario(scenario_id: str) -> None:
    set_view(MODES[0], {"scenario": scenario_id})


def _on_pick() -> None:
    picked = st.session_state.get(PICK_KEY)
    if picked:
        _open_scenario(picked)


def _close_scenario() -> None:
    set_view(MODES[0], None)


def _use_llm_fusor() -> None:
    st.session_state["keep.m_fusor"] = "llm"


def _use_offline_method() -> None:
    st.session_state["keep.m_selector"] = "consensus"
    st.session_state["keep.m_fusor"] = "extractive"
    st.session_state.pop(FAILED, None)


def llm_fusor_offer(config: MethodConfig) -> Any:
    """The "Fuse with the LLM fusor instead" callback, only when the LLM fusor could run (a provider key
    or a server URL): offered offline, it would switch to a method that can only fail."""
    from dataclasses import replace

    from app.auth import current

    if not current().may("settings"):
        return None  # it would spend the operator's keys
    trial = replace(config, fusor="llm", fusor_model=config.fusor_model or str(
        env_model() or deps.fusion_defaults().get("default_fusor_model") or DEFAULT_MODEL))
    return _use_llm_fusor if method_problem(trial) is None else None


def gallery(config: MethodConfig) -> None:
    from fusion.scenarios import load_scenarios

    scenarios = load_scenarios()
    by_id = {s.id: s for s in scenarios}
    view = _views().get(MODES[0])
    scenario_id = None
    run: Run | None = None
    if view and "run" in view:
        run = _load(view["run"])
        if run is None:
            st.error(f"There is no saved run with the id {md_escape(view['run'][:64])}. It may have been deleted.")
        elif run.source.startswith("scenario:"):
            scenario_id = run.source.split(":", 1)[1]
    elif view and "scenario" in view:
        scenario_id = view["scenario"]
        if scenario_id not in by_id:
            st.error(f"There is no built-in scenario called {md_escape(scenario_id[:80])}.")
            scenario_id = None

    if scenario_id is None and run is None:
        st.caption(
            "Built-in scenarios written for this project: each has 4-6 candidates, and different candidates hold "
            "different good parts. Open one to vote blind on the pick against the fusion, then see where every "
            "span came from."
        )
        cols = st.columns(3)
        for i, s in enumerate(scenarios):
            with cols[i % 3].container(border=True):
                st.markdown(f"**{md_escape(s.title)}**")
                st.caption(f"{md_escape(s.category)} · {md_escape(s.language)} · {len(s.candidates)} candidates")
                st.button("Open", key=f"open_{s.id}", on_click=_open_scenario, args=(s.id,))
        return

    top = st.columns([4, 1], vertical_alignment="bottom")
    if scenario_id in by_id:
        st.session_state[PICK_KEY] = scenario_id
        top[0].selectbox(
            "Scenario",
            [s.id for s in scenarios],
            format_func=lambda i: f"{by_id[i].title}  ({by_id[i].category}, {by_id[i].language})",
            key=PICK_KEY,
            on_change=_on_pick,
        )
    top[1].button("All scenarios", key="explore_gallery_back", on_click=_close_scenario)
    scenario = by_id.get(scenario_id) if scenario_id else None

    view_t = next(iter(view.items())) if view else None
    shown = st.session_state.get(SHOWN)
    current: Run | None = shown[1] if shown and view_t and shown[0] == view_t else None
    sig = config.signature()
    if current is None and run is not None:
        current = run  # a link to a saved run: shown as it was made, whatever the sidebar says now
        _remember(view_t, run)
        st.session_state[SHOWN_SIG] = sig
    if scenario is not None:
        attempt = ("scenario", scenario.id, sig)
        failed = st.session_state.get(FAILED)
        if failed and failed[0] != attempt:  # about another scenario or method: no longer true
            st.session_state.pop(FAILED, None)
            failed = None
        stale = current is None or st.session_state.get(SHOWN_SIG) != sig  # opened now, or the method changed
        if stale and not (failed and failed[0] == attempt):  # a failed attempt is not retried on every rerun
            made = scenario_run(scenario, config, attempt)
            if made is not None:
                view_now = {"scenario": scenario.id} if config.offline else {"run": made.id}
                set_view(MODES[0], view_now)
                _remember(next(iter(view_now.items())), made)
                st.session_state[SHOWN_SIG] = sig
                current = made
    run = current
    show_failure(has_result=run is not None)
    if st.session_state.get(FAILED) and not config.offline:
        st.button(
            "Use the offline method instead",
            key="explore_use_offline",
            on_click=_use_offline_method,
            help="Consensus Best-of-N and the extractive fusor: no model needed.",
        )
    if st.session_state.get(FAILED) and run is not None:
        if st.button("Try again", key="explore_retry"):
            st.session_state.pop(FAILED, None)
            st.session_state[SHOWN_SIG] = None
            st.rerun()
    if run is not None:
        show(run, note=scenario.note if scenario else None, on_try_llm=llm_fusor_offer(config))


def scenario_run(scenario: Any, config: MethodConfig, attempt: tuple[Any, ...]) -> Run | None:
    """The scenario's run under ``config``: loaded when the offline run is already saved (its id is
    deterministic), otherwise computed and saved."""
    from fusion.scenarios import scenario_to_run
    from storage.runs import load_run

    run = scenario_to_run(scenario)
    run.tags = [scenario.category, scenario.language, "scenario"]
    if config.offline:
        run.id = offline_run_id(run.source, run.prompt, list(scenario.candidates))
        try:
            stored = load_run(deps.get_engine(), run.id)
        except Exception:  # noqa: BLE001 - recompute instead
            log.exception("loading scenario run %s failed", run.id)
            stored = None
        if stored is not None and stored.fused is not None and not stored.fused.error:
            return stored
    return finish(run, config, attempt=attempt, stream_fusion=False)


# ------------------------------------------------------------------------------------------ own candidates


def _fuse_supplied(prompt: Prompt, texts: list[str], source: str, tags: list[str], config: MethodConfig) -> None:
    from fusion.pipeline import supplied_candidates

    run = Run(prompt=prompt, candidates=supplied_candidates(texts), source=source, tags=tags)
    if config.offline:
        run.id = offline_run_id(source, prompt, texts)
    # Streaming the fused text would show which response is the fusion: only for candidates the person
    # typed in (already not blind), never for an upload, which opens blind.
    stream = source == "supplied" and not config.offline
    made = finish(run, config, attempt=(source, run.id, config.signature()), stream_fusion=stream)
    if made is not None:
        if source == "supplied":
            mark_seen(made.id, "supplied")  # they typed the candidates in; an upload may be someone else's
        set_view(MODES[1], {"run": made.id})
        _remember(("run", made.id), made)
        st.rerun()  # the page above was drawn without a result; draw it again with one


def own(config: MethodConfig) -> None:
    view = _views().get(MODES[1])
    # With a result on screen the inputs fold away (a link to a pasted run opens on the run, not a form);
    # what was typed is kept either way.
    holder = st.expander("Your candidates (paste or upload)", expanded=False) if view else st.container()
    with holder:
        _own_inputs(config)
    show_view_run(view, config)


def _own_inputs(config: MethodConfig) -> None:
    paste, upload = st.tabs(["Paste candidates", "Upload JSON Lines"], key="explore_own_tabs")
    with paste:
        # No form: a form sends its text only on submit, and switching modes before that would lose it.
        _init("keep.own_count", 3)
        count = st.number_input("How many candidates", min_value=2, max_value=APP_MAX_N, key="keep.own_count")
        prompt = st.text_area("Prompt", key=keep("keep.own_prompt", ""), height=100)
        texts = [
            st.text_area(f"Candidate {i + 1}", key=keep(f"keep.own_cand_{i}", ""), height=140) for i in range(int(count))
        ]
        if st.button("Fuse these candidates", type="primary", key="explore_own_go"):
            from fusion.validate import check_candidate_texts, check_prompt

            try:
                check_prompt(prompt)
                kept = [t for t in texts if t.strip()]
                check_candidate_texts(kept, low=2, high=APP_MAX_N)
            except InputError as exc:
                st.error(md_escape(exc))
            else:
                empty = [i + 1 for i, t in enumerate(texts) if not t.strip()]
                if empty:
                    boxes = ", ".join(map(str, empty))
                    st.session_state[NOTICE] = (
                        f"Box {boxes} {'was' if len(empty) == 1 else 'were'} empty and left out: the "
                        f"{len(kept)} candidates are numbered 1 to {len(kept)} in the order of the boxes."
                    )
                _fuse_supplied(Prompt(prompt), kept, "supplied", [], config)
    with upload:
        st.caption(
            'One JSON object per line, as for `python -m fusion fuse`: `{"id": ..., "prompt": "...", '
            '"candidates": ["...", "..."]}` with 2 to 16 candidates.'
        )
        file = st.file_uploader("JSON Lines file", type=["jsonl", "json", "txt"], key="own_upload")
        if file is not None:
            upload_records(file, config)


def upload_records(file: Any, config: MethodConfig) -> None:
    from fusion.jsonl import parse_fuse_text

    try:
        text = file.getvalue().decode("utf-8-sig")
    except UnicodeDecodeError:
        st.error("The file is not UTF-8 text. Save it as UTF-8 JSON Lines and upload it again.")
        return
    records, errors = parse_fuse_text(text, min_candidates=2, max_candidates=APP_MAX_N)
    if errors:
        shown = "\n".join(f"- {md_escape(e)}" for e in errors[:20])
        more = f"\n- ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        st.warning(f"{plural(len(errors), 'line')} could not be used:\n{shown}{more}")
    if not records:
        st.error("No usable line in this file.")
        return
    st.success(f"{plural(len(records), 'usable record')}.")
    pick = st.selectbox(
        "Record",
        range(len(records)),
        format_func=lambda i: f"{records[i].id}: {' '.join(records[i].prompt.split())[:80]}",
        key="own_record",
    )
    if st.button("Fuse this record", type="primary", key="own_upload_go"):
        rec = records[pick]
        _fuse_supplied(Prompt(rec.prompt), rec.candidates, "upload", list(rec.tags), config)


# ------------------------------------------------------------------------------------------ live


def live(config: MethodConfig) -> None:
    from app.auth import current, refuse

    if not current().may("live"):
        st.info(refuse("live") + " You can open the scenarios, bring your own candidates and vote.")
        show_view_run(_views().get(MODES[2]), config)
        return
    defaults = deps.fusion_defaults()
    default_models = [env_model()] if env_model() else defaults.get("default_models") or [DEFAULT_MODEL]
    _init("keep.live_models", ", ".join(default_models))
    _init("keep.live_n", 5)
    _init("keep.live_temperature", 0.8)
    _init("keep.live_max_tokens", 1024)
    _init("keep.live_cache", True)
    _init("keep.live_regen", False)
    view = _views().get(MODES[2])
    # With a result on screen the form folds away (a link to a generated run opens on the run); what was
    # typed is kept either way.
    holder = st.expander("Prompt, models and sampling", expanded=False) if view else st.container()
    with holder:
        go = _live_inputs(config)
    if go is not None:
        run = generate_live(config=config, **go)
        if run is not None:
            mark_seen(run.id, "live")  # the person watched the candidates and the fusion arrive
            set_view(MODES[2], {"run": run.id})
            _remember(("run", run.id), run)
            st.rerun()
    view = _views().get(MODES[2])
    show_view_run(view, config)


def _live_inputs(config: MethodConfig) -> dict[str, Any] | None:
    """The live form; the arguments of :func:`generate_live` on the rerun its button was clicked."""
    prompt = st.text_area("Prompt", key=keep("keep.live_prompt", ""), height=120)
    c1, c2 = st.columns([3, 1])
    models_txt = c1.text_input(
        "Candidate models (comma-separated; several make a pool)",
        key="keep.live_models",
        help="Any litellm model string: openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, "
        "cohere/command-r, ollama/llama3.1, or openai/<name> with the server URL in the sidebar.",
    )
    # No min or max on the widget: the browser would refuse 17 with a red border and the run would go ahead
    # with the N from before. The range is checked on the click, with a message.
    n = c2.number_input(
        "N candidates", step=1, key="keep.live_n", help=f"{APP_MIN_N} to {APP_MAX_N}: a run picks from and fuses at least two."
    )
    c3, c4, c5 = st.columns(3)
    temperature = c3.slider("Temperature", 0.0, 2.0, step=0.05, key="keep.live_temperature")
    max_tokens = c4.number_input("Max tokens", min_value=16, max_value=32768, key="keep.live_max_tokens")
    seed_txt = c5.text_input("Seed (optional)", key=keep("keep.live_seed", ""))
    with st.expander("Cache"):
        use_cache = st.checkbox("Use the response cache", key="keep.live_cache")
        regenerate = st.checkbox("Regenerate (ignore cached answers)", key="keep.live_regen")
    if not deps.provider_key_names() and not config.api_base:
        st.caption(
            "No provider key found: set one (e.g. OPENAI_API_KEY) in the environment or .streamlit/secrets.toml, "
            "or give an OpenAI-compatible server URL in the sidebar."
        )
    if not st.button("Generate and fuse", type="primary", key="explore_live_go"):
        return None
    st.session_state.pop(FAILED, None)
    return dict(
        prompt=prompt or "", models_txt=models_txt or "", n=int(n), temperature=float(temperature),
        max_tokens=int(max_tokens), seed_txt=seed_txt or "", use_cache=bool(use_cache),
        regenerate=bool(regenerate),
    )  # fmt: skip


def generate_live(
    *, prompt: str, models_txt: str, n: int, temperature: float, max_tokens: int, seed_txt: str,
    use_cache: bool, regenerate: bool, config: MethodConfig,
) -> Run | None:  # fmt: skip
    from fusion.providers import key_for
    from fusion.pipeline import arun_live, split_pool
    from fusion.providers import check_keys
    from fusion.validate import check_n, check_prompt

    secrets = deps.secrets()
    api_base = config.api_base
    attempt = ("live", prompt, models_txt, n)
    try:
        check_prompt(prompt)
        check_n(n, low=APP_MIN_N, high=APP_MAX_N)
        check_api_base(api_base)  # said once, before any card is drawn, rather than by every candidate
        models = [x.strip() for x in models_txt.split(",") if x.strip()]
        seed = None
        if seed_txt.strip():
            try:
                seed = int(seed_txt.strip())
            except ValueError:
                raise InputError(f"The seed must be a whole number, not {seed_txt.strip()!r}.") from None
        allowed = key_bases()[0]
        # Each sample carries the key chosen for where it goes: the one typed for the URL, the operator's
        # only for a provider's own endpoint or a listed URL, else a placeholder.
        pool = [
            ModelSpec(s.model, samples=s.samples, api_base=api_base,
                      api_key=key_for(s.model, api_base, typed_key=config.api_key, secrets=secrets, allowed=allowed))
            for s in split_pool(models, n, api_base=api_base)
        ]  # fmt: skip
        check_keys(pool, secrets, allowed=allowed)
        selector, fusor = build(config)
    except FusionError as exc:
        st.session_state[FAILED] = (attempt, str(exc))
        return None
    settings = SamplingSettings(
        temperature=temperature, max_tokens=max_tokens, seed=seed, timeout=config.timeout,
        num_retries=config.num_retries,
    )  # fmt: skip

    st.subheader("Candidates")
    per_row = 4 if n > 6 else 3 if n > 4 else max(n, 2)
    placeholders = []
    for row in range(0, n, per_row):
        cols = st.columns(per_row)
        placeholders += [cols[i].empty() for i in range(min(per_row, n - row))]
    waiting: list[Candidate] = []  # blank cards, one per sample, in pool order
    idx = 0
    for spec in pool:
        for k in range(spec.samples):
            waiting.append(Candidate(index=idx, text="", model=spec.model, sample_index=k))
            idx += 1
    texts = {i: "" for i in range(n)}
    last_draw = {i: 0.0 for i in range(n)}
    for c in waiting:
        render_candidate_card(placeholders[c.index], c, status="waiting")

    def on_event(event: Any) -> None:
        i = event.index
        if event.kind == "start":
            render_candidate_card(placeholders[i], waiting[i], status="streaming", text="")
        elif event.kind == "token":
            texts[i] += event.delta
            now = time.monotonic()
            if now - last_draw[i] > 0.2:  # a redraw per token would flood the websocket
                last_draw[i] = now
                render_candidate_card(placeholders[i], waiting[i], status="streaming", text=texts[i])
        elif event.kind == "done" and event.candidate is not None:
            c = event.candidate
            status = "failed" if c.error else ("cached" if c.cached else "done")
            render_candidate_card(placeholders[i], c, status=status)

    on_fused = fused_streamer(st.empty(), caption="Fusing ...")
    with st.status(f"Sampling {n} candidates ...", expanded=False) as status:
        try:
            concurrency = int(st.session_state.get(CONCURRENCY_KEY) or default_concurrency())
            run = asyncio.run(until_stopped(  # a closed tab or a new run ends the calls (fusion.cancel)
                arun_live(
                    Prompt(prompt), pool, settings, client=deps.get_client(), selector=selector, fusor=fusor,
                    cache=deps.get_cache() if use_cache else None, regenerate=regenerate, concurrency=concurrency,
                    on_candidate_event=on_event, on_stage=stage_reporter(status), on_fused_token=on_fused,
                ),
                session_gone(),
            ))  # fmt: skip
        except NotEnoughCandidates as exc:
            status.update(label="Not enough usable candidates", state="error")
            st.session_state[FAILED] = (attempt, str(exc))
            return None
        except FusionError as exc:
            status.update(label="Failed", state="error")
            st.session_state[FAILED] = (attempt, str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - never a traceback on screen
            log.exception("live run failed")
            status.update(label="Failed", state="error")
            st.session_state[FAILED] = (attempt, f"Unexpected error: {type(exc).__name__}: {exc}")
            return None
        status.update(label="Done", state="complete")
    save(run)
    return run


# ------------------------------------------------------------------------------------------ page


def page() -> None:
    st.title("Fusion Explorer")
    st.caption(
        "Best-of-N keeps the one candidate a scorer likes best. Fusion-of-N has a fusor read all N and write one "
        "answer from their strong parts. Compare them blind, then see where every span of the fusion came from."
    )
    config = method_settings()
    banner(config)
    live_ready = bool(deps.provider_key_names() or config.api_base)
    mode = resolve_mode(MODES[2] if live_ready else MODES[0])
    st.segmented_control("Candidates from", MODES, key=MODE_KEY, required=True, on_change=_on_mode_change)
    if mode == MODES[0]:
        gallery(config)
    elif mode == MODES[1]:
        own(config)
    else:
        live(config)


page()

"""Explore: a prompt and its candidates (a built-in scenario, your own, or generated live) taken through
Best-of-N and Fusion-of-N, with the fused text attributed span by span, and a blind vote."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import streamlit as st

from app import deps
from app.run_view import show_run, text_block
from components.candidate_cards import render_candidate_card
from fusion.errors import FusionError, NotEnoughCandidates
from fusion.jsonl import parse_fuse_text
from fusion.types import Candidate, ModelSpec, Prompt, Run, SamplingSettings

APP_MAX_N = 16
RUN_KEY = "explore_run"
MODES = ["Scenario gallery", "Your own candidates", "Generate live"]


# ------------------------------------------------------------------------------------------ settings


def method_settings(live_ok: bool) -> dict[str, Any]:
    """Sidebar: how Best-of-N picks and how the fusion is written. Offline choices need no model."""
    from fusion.fusors import PRESETS

    defaults = deps.fusion_defaults()
    sb = st.sidebar
    sb.header("Method")
    selector = sb.radio(
        "Best-of-N selector",
        ["consensus", "judge"],
        format_func=lambda v: {"consensus": "Consensus (offline, MBR with chrF)", "judge": "LLM judge (1-10)"}[v],
        key="m_selector",
        help="Consensus picks the candidate the others agree with most. The judge scores each candidate with a model.",
    )
    fusor = sb.radio(
        "Fusor",
        ["extractive", "llm"],
        format_func=lambda v: {"extractive": "Extractive (offline, sentence consensus)", "llm": "LLM fusor (the paper's method)"}[v],
        key="m_fusor",
        help="The LLM fusor reads the prompt and all candidates and writes one answer. The extractive fusor "
        "stitches together the sentences several candidates agree on.",
    )
    out: dict[str, Any] = {"selector": selector, "fusor": fusor}
    needs_model = selector == "judge" or fusor == "llm"
    if needs_model and not live_ok:
        sb.warning("The LLM judge and fusor need a provider key or a local server URL (set it under 'Generate live').")
    default_fusor_model = str(defaults.get("default_fusor_model") or "openai/gpt-4o-mini")
    if selector == "judge":
        out["judge_model"] = sb.text_input("Judge model", value=default_fusor_model, key="m_judge_model")
    if fusor == "llm":
        out["fusor_model"] = sb.text_input("Fusor model", value=default_fusor_model, key="m_fusor_model")
        with sb.expander("Fusor prompt template"):
            preset = st.selectbox(
                "Preset",
                list(PRESETS),
                format_func=lambda p: PRESETS[p].title,
                key="m_preset",
            )
            st.caption(PRESETS[preset].description)
            edited = st.text_area(
                "Template ({prompt} and {candidates} are filled in)",
                value=PRESETS[preset].template,
                height=260,
                key=f"m_template_{preset}",
            )
            out["preset"] = preset
            out["template"] = None if edited == PRESETS[preset].template else edited
    out["api_base"] = st.session_state.get("live_api_base") or deps.default_api_base() or None
    return out


def build_method(m: dict[str, Any]) -> tuple[Any, Any]:
    """The selector and fusor the sidebar asks for (wiring only; the algorithms live in fusion/)."""
    from fusion.pipeline import make_fusor, make_selector

    secrets = deps.secrets()
    api_base = m.get("api_base")
    client = deps.get_client() if m["selector"] == "judge" or m["fusor"] == "llm" else None
    selector = make_selector(
        m["selector"], client=client, model=m.get("judge_model"), api_base=api_base, secrets=secrets
    )
    fusor = make_fusor(
        m["fusor"],
        client=client,
        model=m.get("fusor_model"),
        preset=m.get("preset", "fusion"),
        template=m.get("template"),
        api_base=api_base,
        secrets=secrets,
    )
    return selector, fusor


def is_offline_method(m: dict[str, Any]) -> bool:
    return m["selector"] == "consensus" and m["fusor"] == "extractive"


# ------------------------------------------------------------------------------------------ running


def stage_reporter(status: Any) -> Any:
    """Stage events of the pipeline as the label of an ``st.status`` box."""

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


def finish_run(run: Run, m: dict[str, Any]) -> Run | None:
    """Pick, fuse, attribute and save a run whose candidates are known. Errors are shown, not raised."""
    from fusion.pipeline import acomplete

    try:
        selector, fusor = build_method(m)
        with st.status("Choosing and fusing ...", expanded=not is_offline_method(m)) as status:
            on_token = fused_streamer(st.empty())
            asyncio.run(
                acomplete(run, selector=selector, fusor=fusor, on_stage=stage_reporter(status), on_fused_token=on_token)
            )
            status.update(label="Done", state="complete", expanded=False)
    except FusionError as exc:
        st.error(str(exc))
        return None
    except Exception as exc:  # noqa: BLE001 - never a traceback on screen
        st.error(f"Something went wrong while fusing: {type(exc).__name__}: {exc}")
        return None
    save(run)
    return run


def save(run: Run) -> None:
    from storage.queries import save_run

    try:
        save_run(deps.get_engine(), run)
    except Exception as exc:  # noqa: BLE001
        st.warning(f"The run is shown but could not be saved to the database: {exc}")


def offline_run_id(kind: str, prompt: str, texts: list[str]) -> str:
    """Same candidates, same offline method -> same run, so votes from several people meet on one run."""
    h = hashlib.sha256()
    for part in [kind, prompt, *texts]:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return f"{kind[:3]}-{h.hexdigest()[:12]}"


def supplied_run(prompt: Prompt, texts: list[str], source: str, m: dict[str, Any]) -> Run:
    from fusion.pipeline import supplied_candidates

    run = Run(prompt=prompt, candidates=supplied_candidates(texts), source=source)
    if is_offline_method(m):
        run.id = offline_run_id(source, prompt.text, texts)
    return run


def show_result(run: Run) -> None:
    st.divider()
    show_run(run, engine=deps.get_engine(), key="explore")


# ------------------------------------------------------------------------------------------ modes


def scenario_mode(m: dict[str, Any]) -> None:
    from fusion.scenarios import load_scenarios, scenario_to_run

    scenarios = load_scenarios()
    st.caption(
        "Built-in scenarios written for this project: each has 4-6 candidates, and different candidates hold "
        "different good parts. Pick one to see the pick, the fusion and where every span came from."
    )
    by_id = {s.id: s for s in scenarios}
    chosen = st.selectbox(
        "Scenario",
        [s.id for s in scenarios],
        index=None,
        placeholder="Choose a scenario ...",
        format_func=lambda i: f"{by_id[i].title}  ({by_id[i].category}, {by_id[i].language})",
        key="scenario_choice",
    )
    if chosen is None:
        cols = st.columns(3)
        for i, s in enumerate(scenarios):
            with cols[i % 3].container(border=True):
                st.markdown(f"**{s.title}**")
                st.caption(f"{s.category} · {s.language} · {len(s.candidates)} candidates")
                if st.button("Open", key=f"open_{s.id}"):
                    st.session_state["scenario_choice"] = s.id
                    st.rerun()
        return
    s = by_id[chosen]
    st.info(f"What to look for: {s.note}")
    texts = list(s.candidates)
    run_key = (chosen, repr(sorted(m.items())))
    current: Run | None = st.session_state.get(RUN_KEY)
    if st.session_state.get("explore_run_key") != run_key or current is None:
        run = scenario_to_run(s)
        run.tags = [s.category, s.language, "scenario"]
        if is_offline_method(m):
            run.id = offline_run_id(run.source, s.prompt, texts)
        st.session_state[RUN_KEY] = finish_run(run, m)
        st.session_state["explore_run_key"] = run_key
    if st.session_state.get(RUN_KEY) is not None:
        show_result(st.session_state[RUN_KEY])


def own_mode(m: dict[str, Any]) -> None:
    paste, upload = st.tabs(["Paste candidates", "Upload JSON Lines"])
    with paste:
        count = st.number_input("How many candidates", min_value=2, max_value=APP_MAX_N, value=3, key="own_count")
        with st.form("own_form"):
            prompt = st.text_area("Prompt", key="own_prompt", height=100)
            texts = [
                st.text_area(f"Candidate {i + 1}", key=f"own_cand_{i}", height=140) for i in range(int(count))
            ]
            go = st.form_submit_button("Fuse these candidates", type="primary")
        if go:
            from fusion.errors import InputError
            from fusion.validate import check_candidate_texts, check_prompt

            try:
                check_prompt(prompt)
                kept = [t for t in texts if t.strip()]
                check_candidate_texts(kept, low=2, high=APP_MAX_N)
            except InputError as exc:
                st.error(str(exc))
            else:
                run = supplied_run(Prompt(prompt), kept, "supplied", m)
                st.session_state[RUN_KEY] = finish_run(run, m)
                st.session_state["explore_run_key"] = ("own", run.id)
    with upload:
        st.caption(
            'One JSON object per line, as for `python -m fusion fuse`: `{"id": ..., "prompt": "...", '
            '"candidates": ["...", "..."]}` with 2 to 16 candidates.'
        )
        file = st.file_uploader("JSON Lines file", type=["jsonl", "json", "txt"], key="own_upload")
        if file is not None:
            raw = file.getvalue()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                st.error("The file is not UTF-8 text. Save it as UTF-8 JSON Lines and upload it again.")
                return
            records, errors = parse_fuse_text(text, min_candidates=2, max_candidates=APP_MAX_N)
            if errors:
                shown = "\n".join(f"- {e}" for e in errors[:20])
                more = f"\n- ... and {len(errors) - 20} more" if len(errors) > 20 else ""
                st.warning(f"{len(errors)} line(s) could not be used:\n{shown}{more}")
            if not records:
                st.error("No usable line in this file.")
                return
            st.success(f"{len(records)} usable record(s).")
            pick = st.selectbox(
                "Record",
                range(len(records)),
                format_func=lambda i: f"{records[i].id}: {records[i].prompt[:80]}",
                key="own_record",
            )
            if st.button("Fuse this record", type="primary", key="own_upload_go"):
                rec = records[pick]
                run = supplied_run(Prompt(rec.prompt), rec.candidates, "upload", m)
                run.tags = list(rec.tags)
                st.session_state[RUN_KEY] = finish_run(run, m)
                st.session_state["explore_run_key"] = ("upload", run.id)
    if st.session_state.get(RUN_KEY) is not None and str(st.session_state.get("explore_run_key", ("",))[0]) in ("own", "upload"):
        show_result(st.session_state[RUN_KEY])


def live_mode(m: dict[str, Any], live_ok: bool) -> None:
    defaults = deps.fusion_defaults()
    default_models = defaults.get("default_models") or ["openai/gpt-4o-mini"]
    with st.form("live_form"):
        prompt = st.text_area("Prompt", key="live_prompt", height=120)
        c1, c2 = st.columns([3, 1])
        models_txt = c1.text_input(
            "Candidate models (comma-separated; several make a pool)",
            value=", ".join(default_models),
            key="live_models",
            help="Any litellm model string: openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, "
            "cohere/command-r, ollama/llama3.1, or openai/<name> with a server URL below.",
        )
        n = c2.number_input("N candidates", min_value=1, max_value=APP_MAX_N, value=5, key="live_n")
        c3, c4, c5 = st.columns(3)
        temperature = c3.slider("Temperature", 0.0, 2.0, 0.8, 0.05, key="live_temperature")
        max_tokens = c4.number_input("Max tokens", min_value=16, max_value=32768, value=1024, key="live_max_tokens")
        seed_txt = c5.text_input("Seed (optional)", key="live_seed")
        with st.expander("Server, cache and retries"):
            st.text_input(
                "OpenAI-compatible server URL (Ollama, vLLM, LM Studio ...; optional)",
                key="live_api_base",
                value=deps.default_api_base(),
            )
            use_cache = st.checkbox("Use the response cache", value=True, key="live_cache")
            regenerate = st.checkbox("Regenerate (ignore cached answers)", value=False, key="live_regen")
            timeout = st.number_input("Timeout per call (s)", 5, 600, 120, key="live_timeout")
        go = st.form_submit_button("Generate and fuse", type="primary", disabled=False)
    if not live_ok and not st.session_state.get("live_api_base"):
        st.caption(
            "No provider key found: set one (e.g. OPENAI_API_KEY) in the environment or .streamlit/secrets.toml, "
            "or give a local server URL above."
        )
    if go:
        run = generate_live(
            prompt=prompt, models_txt=models_txt, n=int(n), temperature=float(temperature),
            max_tokens=int(max_tokens), seed_txt=seed_txt, api_base=(st.session_state.get("live_api_base") or None),
            use_cache=use_cache, regenerate=regenerate, timeout=float(timeout), m=m,
        )
        if run is not None:
            st.session_state[RUN_KEY] = run
            st.session_state["explore_run_key"] = ("live", run.id)
            st.rerun()
    if st.session_state.get(RUN_KEY) is not None and st.session_state.get("explore_run_key", ("",))[0] == "live":
        show_result(st.session_state[RUN_KEY])


def generate_live(
    *, prompt: str, models_txt: str, n: int, temperature: float, max_tokens: int, seed_txt: str,
    api_base: str | None, use_cache: bool, regenerate: bool, timeout: float, m: dict[str, Any],
) -> Run | None:
    from fusion.errors import InputError
    from fusion.pipeline import arun_live, split_pool
    from fusion.providers import check_keys, find_api_key
    from fusion.validate import check_n, check_prompt

    secrets = deps.secrets()
    try:
        check_prompt(prompt)
        check_n(n, high=APP_MAX_N)
        models = [x.strip() for x in models_txt.split(",") if x.strip()]
        seed = None
        if seed_txt.strip():
            try:
                seed = int(seed_txt.strip())
            except ValueError:
                raise InputError(f"The seed must be a whole number, not {seed_txt.strip()!r}.") from None
        pool = [
            ModelSpec(s.model, samples=s.samples, api_base=api_base, api_key=find_api_key(s.model, api_base, secrets))
            for s in split_pool(models, n, api_base=api_base)
        ]
        check_keys(pool, secrets)
        m = dict(m, api_base=api_base)
        selector, fusor = build_method(m)
    except FusionError as exc:
        st.error(str(exc))
        return None
    settings = SamplingSettings(temperature=temperature, max_tokens=max_tokens, seed=seed, timeout=timeout)

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
        on_stage = stage_reporter(status)
        try:
            run = asyncio.run(
                arun_live(
                    Prompt(prompt), pool, settings, client=deps.get_client(), selector=selector, fusor=fusor,
                    cache=deps.get_cache() if use_cache else None, regenerate=regenerate, concurrency=8,
                    on_candidate_event=on_event, on_stage=on_stage, on_fused_token=on_fused,
                )
            )
        except NotEnoughCandidates as exc:
            status.update(label="Not enough usable candidates", state="error")
            st.error(str(exc))
            return None
        except FusionError as exc:
            status.update(label="Failed", state="error")
            st.error(str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - never a traceback on screen
            status.update(label="Failed", state="error")
            st.error(f"Unexpected error: {type(exc).__name__}: {exc}")
            return None
        status.update(label="Done", state="complete")
    save(run)
    return run


# ------------------------------------------------------------------------------------------ page

st.title("Fusion Explorer")
st.caption(
    "Best-of-N keeps the one candidate a scorer likes best. Fusion-of-N has a fusor read all N and write one "
    "answer from their strong parts. See both side by side, and where every span of the fusion came from."
)
live_ok = deps.has_live_key() or bool(deps.default_api_base())
if not live_ok:
    st.info(
        "Offline mode: no provider key found. Scenarios and your own candidates work fully offline. "
        "To generate live, set a key such as OPENAI_API_KEY in the environment or .streamlit/secrets.toml "
        "and reload, or use a local OpenAI-compatible server URL under 'Generate live'.",
        icon=":material/cloud_off:",
    )
method = method_settings(live_ok)
mode = st.segmented_control(
    "Candidates from", MODES, default=MODES[2] if live_ok else MODES[0], key="explore_mode", required=True
)
if mode == MODES[0]:
    scenario_mode(method)
elif mode == MODES[1]:
    own_mode(method)
else:
    live_mode(method, live_ok)

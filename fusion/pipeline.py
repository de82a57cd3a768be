"""The whole method in one place: candidates -> Best-of-N pick -> fusion -> span attribution.

The app, the CLI and batch jobs all call these functions, so what a user sees on screen is exactly what a
script would compute. Model-backed steps are async (they run concurrently and stream); the offline path
(consensus + extractive) also has a plain synchronous entry, :func:`run_supplied`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from fusion.attribution import attribute
from fusion.client import ModelClient, ResponseCache, TokenCallback, maybe_await
from fusion.errors import NotEnoughCandidates
from fusion.fusors import ExtractiveFusor, Fusor
from fusion.selectors import ConsensusSelector, Selector
from fusion.types import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    Attribution,
    Candidate,
    FusedOutput,
    ModelSpec,
    Prompt,
    Run,
    SamplingSettings,
)
from fusion.validate import check_candidate_texts, check_pool, check_prompt

# Stages reported through ``on_stage``, in order.
STAGES = ("generate", "select", "fuse", "attribute", "done")


@dataclass
class StageEvent:
    stage: str  # one of STAGES
    message: str = ""


StageCallback = Callable[[StageEvent], Any]


def attribute_fused(fused: FusedOutput | None, candidates: Sequence[Candidate]) -> Attribution | None:
    """Attribute the fused text to the run's candidates; failed candidates contribute nothing."""
    if fused is None or fused.error or not fused.text:
        return None
    return attribute(fused.text, [c.text if c.ok else None for c in candidates])


async def acomplete(
    run: Run,
    *,
    selector: Selector,
    fusor: Fusor,
    on_stage: StageCallback | None = None,
    on_fused_token: TokenCallback | None = None,
) -> Run:
    """Pick, fuse and attribute a run whose candidates are already there.

    The selector and the fusor run concurrently: the paper's fusor sees no scores, so neither waits for
    the other, and with model-backed steps this halves the wait.
    """
    usable = run.usable
    if not usable:
        raise NotEnoughCandidates(_not_enough_message(run.candidates, 1))

    async def _select() -> None:
        await _emit(on_stage, StageEvent("select", f"Best-of-N with {selector.name}"))
        run.bon = await selector.aselect(run.prompt, run.candidates)

    async def _fuse() -> None:
        await _emit(on_stage, StageEvent("fuse", f"Fusing {len(usable)} candidates with {fusor.name}"))
        run.fused = await fusor.afuse(run.prompt, run.candidates, on_token=on_fused_token)

    await asyncio.gather(_select(), _fuse())
    await _emit(on_stage, StageEvent("attribute", "Attributing the fused text"))
    run.attribution = attribute_fused(run.fused, run.candidates)
    await _emit(on_stage, StageEvent("done"))
    return run


async def arun_live(
    prompt: Prompt,
    pool: Sequence[ModelSpec],
    settings: SamplingSettings,
    *,
    client: ModelClient,
    selector: Selector,
    fusor: Fusor,
    cache: ResponseCache | None = None,
    regenerate: bool = False,
    concurrency: int = 8,
    stream: bool = True,
    tags: Sequence[str] = (),
    on_candidate_event: Callable[[Any], Any] | None = None,
    on_stage: StageCallback | None = None,
    on_fused_token: TokenCallback | None = None,
) -> Run:
    """Generate N candidates from the pool, then pick, fuse and attribute.

    Raises :class:`NotEnoughCandidates` (with the partial run attached as ``.run``) when fewer than two
    candidates are usable, or none when only one was asked for.
    """
    from fusion.generate import generate_candidates  # deferred: keeps offline imports light

    check_prompt(prompt.text)
    pool = check_pool(pool)
    run = Run(prompt=prompt, pool=list(pool), settings=settings, tags=list(tags), source="live")
    await _emit(on_stage, StageEvent("generate", f"Sampling {sum(s.samples for s in pool)} candidates"))
    run.candidates = await generate_candidates(
        prompt,
        pool,
        settings,
        client=client,
        cache=cache,
        regenerate=regenerate,
        concurrency=concurrency,
        stream=stream,
        on_event=on_candidate_event,
        min_usable=min(2, sum(s.samples for s in pool)),
    )
    minimum = min(2, len(run.candidates))
    if len(run.usable) < minimum:
        err = NotEnoughCandidates(_not_enough_message(run.candidates, minimum))
        err.run = run  # type: ignore[attr-defined]  # the caller still shows the failed cards
        raise err
    return await acomplete(run, selector=selector, fusor=fusor, on_stage=on_stage, on_fused_token=on_fused_token)


def run_supplied(
    prompt: Prompt | str,
    texts: Sequence[str],
    *,
    selector: Selector | None = None,
    fusor: Fusor | None = None,
    labels: Sequence[str] | None = None,
    tags: Sequence[str] = (),
    source: str = "supplied",
    run_id: str | None = None,
) -> Run:
    """Take candidates someone already has (pasted, uploaded, a scenario) through the method.

    Offline by default: consensus Best-of-N and extractive fusion, no model involved.
    """
    if isinstance(prompt, str):
        prompt = Prompt(prompt)
    check_prompt(prompt.text)
    texts = check_candidate_texts(texts)
    run = Run(prompt=prompt, candidates=supplied_candidates(texts, labels), tags=list(tags), source=source)
    if run_id:
        run.id = run_id
    return asyncio.run(
        acomplete(run, selector=selector or ConsensusSelector(), fusor=fusor or ExtractiveFusor())
    )


def supplied_candidates(texts: Sequence[str], labels: Sequence[str] | None = None) -> list[Candidate]:
    """Candidates someone already has, in order; ``labels`` (when given) name where each came from."""
    return [
        Candidate(index=i, text=t, model=(labels[i] if labels and i < len(labels) else "supplied"), sample_index=i)
        for i, t in enumerate(texts)
    ]


@dataclass(frozen=True)
class MethodConfig:
    """How a run is picked and fused: one setting shared by every way candidates arrive (a scenario, pasted
    or uploaded candidates, live generation), so a judge or fusor that works in one works in all."""

    selector: str = "consensus"  # "consensus" or "judge"
    fusor: str = "extractive"  # "extractive" or "llm"
    judge_model: str | None = None
    fusor_model: str | None = None
    preset: str = "fusion"
    template: str | None = None  # a custom fusor template; None uses the preset's
    api_base: str | None = None  # an OpenAI-compatible server for the judge and the fusor
    # The key given together with ``api_base`` by whoever chose that URL; the operator's keys reach a base
    # only when it is listed (fusion.keys). Out of repr, equality and the signature: it is never stored.
    api_key: str | None = field(default=None, repr=False, compare=False)
    # One time limit per attempt and one retry count for every role: candidates, judge and fusor.
    timeout: float = DEFAULT_TIMEOUT_S
    num_retries: int = DEFAULT_RETRIES

    @property
    def offline(self) -> bool:
        return self.selector == "consensus" and self.fusor == "extractive"

    def models(self) -> list[str]:
        """The models this method calls (none when offline)."""
        out: list[str] = []
        if self.selector == "judge" and self.judge_model:
            out.append(self.judge_model.strip())
        if self.fusor == "llm" and self.fusor_model:
            out.append(self.fusor_model.strip())
        return list(dict.fromkeys(m for m in out if m))

    def signature(self) -> tuple[Any, ...]:
        """What decides the result: two configs with the same signature make the same run from the same
        candidates (up to model sampling). The server URL is part of it; keys never are."""
        return (
            self.selector,
            (self.judge_model or "").strip() if self.selector == "judge" else None,
            self.fusor,
            (self.fusor_model or "").strip() if self.fusor == "llm" else None,
            self.preset if self.fusor == "llm" else None,
            self.template if self.fusor == "llm" else None,
            (self.api_base or None) if not self.offline else None,
        )

    def describe(self) -> str:
        """One line for people: what picks, what fuses, and where the models run."""
        pick = "consensus Best-of-N (offline)" if self.selector == "consensus" else f"judge {self.judge_model}"
        fuse = "extractive fusion (offline)" if self.fusor == "extractive" else f"LLM fusor {self.fusor_model}"
        where = f" on {self.api_base}" if self.api_base and not self.offline else ""
        return f"{pick}, {fuse}{where}"


def build_method(
    config: MethodConfig,
    *,
    client: ModelClient | None,
    secrets: Mapping[str, str] | None = None,
    allowed: Iterable[str] | None = None,
) -> tuple[Selector, Fusor]:
    """The selector and fusor ``config`` names (refusing early, with the variable to set, when a hosted model
    has no key), both bound by ``config.timeout`` and ``config.num_retries``. ``allowed``: the base URLs the
    operator's keys may go to (None reads ``FUSION_KEY_BASES``)."""
    selector = make_selector(
        config.selector, client=client, model=config.judge_model, api_base=config.api_base,
        api_key=config.api_key, secrets=secrets, allowed=allowed, timeout=config.timeout,
        num_retries=config.num_retries,
    )  # fmt: skip
    fusor = make_fusor(
        config.fusor, client=client, model=config.fusor_model, preset=config.preset, template=config.template,
        api_base=config.api_base, api_key=config.api_key, secrets=secrets, allowed=allowed,
        timeout=config.timeout, num_retries=config.num_retries,
    )  # fmt: skip
    return selector, fusor


def make_selector(
    name: str,
    *,
    client: ModelClient | None = None,
    model: str | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    secrets: Mapping[str, str] | None = None,
    allowed: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    num_retries: int = DEFAULT_RETRIES,
) -> Selector:
    """The selector called ``name`` ("consensus" or "judge"). A judge needs a model, and a key for it: the
    one given with ``api_base`` (``api_key``), else the operator's (the environment or ``secrets``) where
    :func:`fusion.providers.key_for` lets it go; a base the operator did not list gets only ``api_key`` or none."""
    from fusion.errors import InputError
    from fusion.selectors import JudgeSelector

    if name == "consensus":
        return ConsensusSelector()
    if name != "judge":
        raise InputError(f"Unknown selector {name!r}; choose consensus or judge.")
    model = (model or "").strip()
    if not model:
        raise InputError("The judge selector needs a judge model.")
    api_key = _key_for(model, api_base, api_key, secrets, allowed)
    if client is None:
        raise InputError("The judge selector needs a model client.")
    return JudgeSelector(client, model, api_base=api_base, api_key=api_key, timeout=timeout, num_retries=num_retries)


def make_fusor(
    name: str,
    *,
    client: ModelClient | None = None,
    model: str | None = None,
    preset: str = "fusion",
    template: str | None = None,
    seed: int | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    secrets: Mapping[str, str] | None = None,
    allowed: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    num_retries: int = DEFAULT_RETRIES,
) -> Fusor:
    """The fusor called ``name`` ("extractive" or "llm"). The LLM fusor needs a model, a known preset or a
    valid template, and a key chosen as for :func:`make_selector`."""
    from fusion.errors import InputError
    from fusion.fusors import PRESETS, LLMFusor

    if name == "extractive":
        return ExtractiveFusor()
    if name != "llm":
        raise InputError(f"Unknown fusor {name!r}; choose llm or extractive.")
    model = (model or "").strip()
    if not model:
        raise InputError("The LLM fusor needs a fusor model.")
    if preset not in PRESETS:
        raise InputError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    api_key = _key_for(model, api_base, api_key, secrets, allowed)
    if client is None:
        raise InputError("The LLM fusor needs a model client.")
    return LLMFusor(
        client, model, preset=preset, template=template, seed=seed, api_base=api_base, api_key=api_key,
        timeout=timeout, num_retries=num_retries,
    )


def _key_for(
    model: str,
    api_base: str | None,
    typed_key: str | None,
    secrets: Mapping[str, str] | None,
    allowed: Iterable[str] | None,
) -> str | None:
    """The key the judge or fusor sends (see :func:`fusion.providers.key_for`); refuses early (MissingKeyError
    naming the variable) when a hosted model has none."""
    from fusion.providers import key_for
    from fusion.providers import check_keys

    allowed = None if allowed is None else tuple(allowed)
    check_keys([ModelSpec(model, api_base=api_base, api_key=typed_key)], secrets, allowed=allowed)
    return key_for(model, api_base, typed_key=typed_key, secrets=secrets, allowed=allowed)


def split_pool(models: Sequence[str], n: int, api_base: str | None = None) -> list[ModelSpec]:
    """Spread N samples over the given models as evenly as possible, earlier models taking the remainder."""
    from fusion.errors import InputError

    models = [m.strip() for m in models if m and m.strip()]
    if not models:
        raise InputError("Give at least one candidate model.")
    if n < len(models):
        raise InputError(f"N={n} is smaller than the number of models ({len(models)}): every model needs a sample.")
    base, extra = divmod(n, len(models))
    return [ModelSpec(model=m, samples=base + (1 if i < extra else 0), api_base=api_base) for i, m in enumerate(models)]


def _not_enough_message(candidates: Sequence[Candidate], minimum: int) -> str:
    usable = sum(1 for c in candidates if c.ok)
    errors = sorted({c.error for c in candidates if c.error})
    empty = sum(1 for c in candidates if c.error is None and not c.text.strip())
    parts = [f"Only {usable} of {len(candidates)} candidates are usable; at least {minimum} are needed."]
    if errors:
        shown = [e.rstrip(".") for e in errors[:3]]
        parts.append("Errors: " + "; ".join(shown) + ("; ..." if len(errors) > 3 else "."))
    if empty:
        parts.append(f"{empty} came back empty.")
    return " ".join(parts)


async def _emit(callback: Callable[[Any], Any] | None, event: Any) -> None:
    if callback is not None:
        await maybe_await(callback(event))

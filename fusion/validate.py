"""Input checks shared by every entry point, so the CLI, the app and batch jobs refuse the same things
with the same words."""

from __future__ import annotations

from typing import Sequence

from fusion.errors import InputError
from fusion.text import plural
from fusion.types import MAX_CANDIDATE_CHARS, MAX_N, MAX_PROMPT_CHARS, MIN_N, ModelSpec


def check_prompt(text: str | None) -> str:
    if text is None or not str(text).strip():
        raise InputError("The prompt is empty: type what you want the models to answer.")
    if len(text) > MAX_PROMPT_CHARS:
        raise InputError(
            f"The prompt is {len(text):,} characters long; the limit is {MAX_PROMPT_CHARS:,}. Shorten it."
        )
    return text


def check_n(n: int, *, low: int = MIN_N, high: int = MAX_N) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise InputError(f"N must be a whole number from {low} to {high}, not {n!r}.")
    if not low <= n <= high:
        raise InputError(f"N must be from {low} to {high}; got {n}.")
    return n


def check_pool(pool: Sequence[ModelSpec], *, high: int = MAX_N) -> list[ModelSpec]:
    if not pool:
        raise InputError("Choose at least one candidate model.")
    for spec in pool:
        if not spec.model or not spec.model.strip():
            raise InputError("A candidate model name is empty.")
        if spec.samples < 1:
            raise InputError(f"Model {spec.model} must give at least one sample; got {spec.samples}.")
    total = sum(s.samples for s in pool)
    check_n(total, high=high)
    return list(pool)


def check_candidate_texts(texts: Sequence[object], *, low: int = 1, high: int = MAX_N) -> list[str]:
    """Validate supplied candidates (pasted, uploaded or read from JSON Lines)."""
    if not isinstance(texts, (list, tuple)):
        raise InputError("'candidates' must be a list of strings.")
    out: list[str] = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InputError(f"Candidate {i + 1} is not a string.")
        if len(t) > MAX_CANDIDATE_CHARS:
            raise InputError(f"Candidate {i + 1} is {len(t):,} characters long; the limit is {MAX_CANDIDATE_CHARS:,}.")
        out.append(t)
    nonempty = [t for t in out if t.strip()]
    if len(nonempty) < low:
        raise InputError(f"At least {plural(low, 'non-empty candidate is', 'non-empty candidates are')} needed; got {len(nonempty)}.")
    if len(out) > high:
        raise InputError(f"At most {high} candidates are allowed; got {len(out)}.")
    return out

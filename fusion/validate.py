"""Input checks shared by every entry point, so the CLI, the app and batch jobs refuse the same things
with the same words."""

from __future__ import annotations

from typing import Sequence

from fusion.errors import InputError
from fusion.text import plural
from fusion.types import MAX_CANDIDATE_CHARS, MAX_N, MAX_PROMPT_CHARS, MIN_N, ModelSpec


def check_api_base(url: str | None) -> str | None:
    """An OpenAI-compatible server URL, stripped (None for none), or InputError saying what is wrong with it.

    A URL litellm cannot use would otherwise fail at the first call as a "server error (HTTP 500)" after
    three attempts, which points at the server rather than at what was typed.
    """
    import re
    from urllib.parse import urlsplit

    from fusion.keys import parse_base

    text = (url or "").strip()
    if not text:
        return None
    example = "such as http://localhost:11434/v1"
    # Whatever comes before an "@" in the host part may be a password: never repeated back.
    if re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*:)?(//)?[^/?#]*@", text):
        raise InputError("The server URL must not carry a name or password (user:password@host): give the key "
                         "in the app's \"Key for this server\" field (for the CLI, list the URL in "
                         "FUSION_KEY_BASES), never in the URL.")
    shown = text if len(text) <= 80 else text[:77] + "..."
    if re.search(r"[\s\x00-\x1f\x7f]", text):
        raise InputError(f"The server URL {shown!r} has a space or a control character in it; give it as one URL, {example}.")
    try:
        parts = urlsplit(text)
    except ValueError:  # an unclosed [IPv6] bracket, say
        raise InputError(f"The server URL {shown!r} is not a valid URL, {example}.") from None
    if parts.scheme.lower() not in ("http", "https") or "//" not in text:
        raise InputError(f"The server URL {shown!r} must start with http:// or https://, {example}.")
    if parse_base(text) is None:
        raise InputError(f"The server URL {shown!r} needs a host (and a port from 1 to 65535, if any), {example}.")
    if parts.fragment:
        raise InputError(f"The server URL {shown!r} has a #fragment, which a server never sees; leave it out.")
    return text


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

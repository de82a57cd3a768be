"""The LLM fusor: the paper's Fusion-of-N, a model writing one answer from the prompt and all candidates.

The fusor prompt is a template (one of :data:`fusion.fusors.PRESETS`, or the user's) with ``{prompt}``,
``{candidates}`` and optionally ``{n}``. Candidates are untrusted text: anything in them that looks like
the template's delimiters is defanged before they are put in their numbered ``<candidate>`` blocks.
"""

from __future__ import annotations

import random
import re
import time
from typing import Sequence

from fusion.client import CompletionRequest, ModelClient, TokenCallback
from fusion.errors import InputError, ProviderError
from fusion.fusors.base import PRESETS, usable_or_raise
from fusion.types import DEFAULT_TIMEOUT_S, Candidate, FusedOutput, Prompt

REQUIRED_PLACEHOLDERS = ("prompt", "candidates")
ALLOWED_PLACEHOLDERS = ("prompt", "candidates", "n")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LOOKALIKE = re.compile(
    r"[<＜﹤〈‹](\s*/?\s*(?:candidates?|prompt))(?![\w-])",
    re.IGNORECASE,
)


def check_template(template: str) -> str:
    """Validate a custom fusor template: it must contain ``{prompt}`` and ``{candidates}``; ``{n}`` is also
    allowed. Any other ``{name}`` is refused, so a typo cannot silently reach the model."""
    if not isinstance(template, str) or not template.strip():
        raise InputError("The fusor template is empty: it must contain {prompt} and {candidates}.")
    names = set(_PLACEHOLDER.findall(template))
    missing = [p for p in REQUIRED_PLACEHOLDERS if p not in names]
    if missing:
        need = " and ".join("{" + p + "}" for p in missing)
        raise InputError(
            f"The fusor template must contain {need}: that is where the prompt and the numbered "
            "candidates go."
        )
    unknown = sorted(names - set(ALLOWED_PLACEHOLDERS))
    if unknown:
        bad = ", ".join("{" + u + "}" for u in unknown)
        raise InputError(
            f"The fusor template has unknown placeholder(s) {bad}; only {{prompt}}, {{candidates}} and {{n}} "
            "are filled in."
        )
    return template


def escape_delimiters(text: str) -> str:
    """Defang anything in untrusted text that looks like our block delimiters (``</candidate>``,
    ``< candidate id="9">``, ``</prompt>``, full-width ``＜``), so a candidate cannot close its block or
    forge another one. Only the opening bracket changes (to ``&lt;``)."""
    return _LOOKALIKE.sub(lambda m: "&lt;" + m.group(1), text)


def render_candidates(candidates_in_order: Sequence[Candidate]) -> str:
    """The candidates numbered 1..n in the order given, each in its ``<candidate id="k">`` block."""
    blocks = []
    for pos, c in enumerate(candidates_in_order, start=1):
        blocks.append(f'<candidate id="{pos}">\n{escape_delimiters(c.text.strip())}\n</candidate>')
    return "\n\n".join(blocks)


def render_prompt_text(prompt: Prompt) -> str:
    """The user's prompt for the fusor, with the system prompt (when there is one) marked as such."""
    text = escape_delimiters(prompt.text.strip())
    if prompt.system and prompt.system.strip():
        return f"[System instructions]\n{escape_delimiters(prompt.system.strip())}\n\n[User]\n{text}"
    return text


def render_fusor_prompt(template: str, prompt: Prompt, candidates_in_order: Sequence[Candidate]) -> str:
    """Fill a fusor template. Candidates are numbered 1..n in the order given, each inside
    ``<candidate id="k">...</candidate>``; look-alike delimiters inside the texts are escaped.

    The placeholders are filled in one pass over the template, so a ``{candidates}`` written inside a
    prompt or a candidate stays literal text.
    """
    check_template(template)
    values = {
        "prompt": render_prompt_text(prompt),
        "candidates": render_candidates(candidates_in_order),
        "n": str(len(candidates_in_order)),
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


class LLMFusor:
    """The paper's Fusion-of-N: a fusor model writes one answer from the prompt and all usable candidates.

    The candidates are shown in an order shuffled with ``random.Random(seed)``; with ``seed=None`` a fresh
    seed is drawn per call and recorded in ``FusedOutput.seed`` so the order can be reproduced. The seed
    only orders the candidates; it is not sent to the model. The model's text is kept as written apart from
    trimming white space. A failed call gives a ``FusedOutput`` with ``error`` set and empty text.
    """

    name = "llm"

    def __init__(
        self,
        client: ModelClient,
        model: str,
        *,
        preset: str = "fusion",
        template: str | None = None,
        seed: int | None = None,
        api_base: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.3,
        max_tokens: int | None = 2048,
        timeout: float = DEFAULT_TIMEOUT_S,
        num_retries: int = 2,
    ) -> None:
        if not model or not model.strip():
            raise InputError("The LLM fusor needs a model name.")
        if template is not None:
            self.template = check_template(template)
            self.template_label = "custom"
        else:
            if preset not in PRESETS:
                raise InputError(f"Unknown fusor preset {preset!r}; choose one of: {', '.join(PRESETS)}.")
            self.template = PRESETS[preset].template
            self.template_label = preset
        self.client = client
        self.model = model
        self.preset = preset
        self.seed = seed
        self.api_base = api_base
        self._api_key = api_key  # passed beside the request, never inside it
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.num_retries = num_retries

    def __repr__(self) -> str:
        return f"LLMFusor(model={self.model!r}, template={self.template_label!r}, api_base={self.api_base!r})"

    @property
    def method(self) -> str:
        return f"llm:{self.model}"

    def shuffled(self, usable: Sequence[Candidate], seed: int) -> list[Candidate]:
        order = list(usable)
        random.Random(seed).shuffle(order)
        return order

    def build_request(self, prompt: Prompt, candidates_in_order: Sequence[Candidate]) -> CompletionRequest:
        content = render_fusor_prompt(self.template, prompt, candidates_in_order)
        return CompletionRequest.from_messages(
            self.model,
            [{"role": "user", "content": content}],
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            api_base=self.api_base,
            timeout=self.timeout,
            num_retries=self.num_retries,
        )

    async def afuse(
        self, prompt: Prompt, candidates: Sequence[Candidate], *, on_token: TokenCallback | None = None
    ) -> FusedOutput:
        usable = usable_or_raise(candidates)
        seed = self.seed if self.seed is not None else random.SystemRandom().randrange(2**32)
        order = self.shuffled(usable, seed)
        request = self.build_request(prompt, order)
        out = FusedOutput(
            text="",
            method=self.method,
            model=self.model,
            template=self.template_label,
            order=[c.index for c in order],
            seed=seed,
        )
        started = time.perf_counter()
        try:
            completion = await self.client.complete(request, api_key=self._api_key, on_token=on_token)
        except ProviderError as exc:
            out.latency_s = time.perf_counter() - started
            out.error = str(exc) or exc.__class__.__name__
            return out
        out.latency_s = completion.latency_s if completion.latency_s else time.perf_counter() - started
        out.text = (completion.text or "").strip()
        if not out.text:
            out.error = "The fusor model returned an empty answer."
        return out

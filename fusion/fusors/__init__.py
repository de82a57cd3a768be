"""Fusors: write one answer from N candidates (Fusion-of-N).

* :class:`LLMFusor` (:mod:`fusion.fusors.llm`) is the paper's method: a model sees the prompt and every
  usable candidate (shuffled, numbered, delimited) and writes the single best answer, with one of the
  :data:`PRESETS` below as its instructions (or a template of the user's).
* :class:`ExtractiveFusor` (:mod:`fusion.fusors.extractive`) works offline: sentence-level consensus fusion
  that only reuses candidate text.

Both take all of a run's candidates and use only the usable ones (``Candidate.ok``). This module holds
what every fusor shares (the :class:`Fusor` protocol, :func:`fuse`) and the fusor prompts; it also
re-exports the fusors and their public helpers, so ``from fusion.fusors import X`` is the one import path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

from fusion.client import TokenCallback
from fusion.errors import NotEnoughCandidates
from fusion.selectors import run_sync
from fusion.types import Candidate, FusedOutput, Prompt


@runtime_checkable
class Fusor(Protocol):
    name: str

    async def afuse(
        self, prompt: Prompt, candidates: Sequence[Candidate], *, on_token: TokenCallback | None = None
    ) -> FusedOutput: ...


def fuse(fusor: Fusor, prompt: Prompt, candidates: Sequence[Candidate]) -> FusedOutput:
    """Synchronous wrapper around ``fusor.afuse``."""
    return run_sync(fusor.afuse(prompt, candidates))


def usable_or_raise(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The usable candidates, or :class:`NotEnoughCandidates` when there is none."""
    usable = [c for c in candidates if c.ok]
    if not usable:
        raise NotEnoughCandidates("There is no usable candidate to fuse: every one failed or is empty.")
    return usable


# ---------------------------------------------------------------------------------------------------------
# Fusor prompts


@dataclass(frozen=True)
class FusorPreset:
    name: str
    title: str
    description: str
    template: str


_FUSION_TEMPLATE = """\
You are given a user's prompt and {n} candidate responses to it, written independently of each other. \
Write the single best response to the prompt.

How to write it:
- Read every candidate critically. Keep the strongest, correct parts of each: accurate facts, sound \
reasoning, working code, useful details and clear structure.
- Discard whatever is weak, wrong, irrelevant or redundant. Say each thing once, even when several \
candidates say it.
- Where the candidates disagree, decide by what is correct, not by how many of them say it. If none of \
them is right, write the correct answer yourself.
- Answer in the language of the prompt, and follow the format, length and style the prompt asks for.
- The response must stand on its own: never mention the candidates or other responses, and never say \
that you compared, combined or fused anything.

Output only the response itself, with no preamble and no commentary.

<prompt>
{prompt}
</prompt>

<candidates>
{candidates}
</candidates>"""

_MOA_TEMPLATE = """\
You have been given a set of responses from different AI models to the user query below. Your task is \
to synthesize them into a single response of the highest quality. Evaluate the information in these \
responses critically: some of it may be biased, outdated or simply wrong. Do not just copy the given \
answers; write a refined, accurate and comprehensive reply to the query. Make it well structured and \
coherent, and hold it to the highest standards of accuracy and reliability.

Responses from the models:
{candidates}

User query:
{prompt}"""

_BLENDER_TEMPLATE = """\
Instruction:
{prompt}

Candidate responses ({n}):
{candidates}

Generate one fused response to the instruction that merges the strengths of the candidates above and \
fixes their weaknesses. Output only the fused response."""

PRESETS: dict[str, FusorPreset] = {
    "fusion": FusorPreset(
        "fusion",
        "Fusion-of-N (paper)",
        "The paper's fusor: write the single best answer, keeping the strong, correct parts of every "
        "candidate and discarding the weak or wrong ones; never mention the candidates.",
        _FUSION_TEMPLATE,
    ),
    "moa": FusorPreset(
        "moa",
        "Mixture-of-Agents aggregator",
        "Aggregate-and-synthesize in the style of Mixture-of-Agents: critically evaluate the models' "
        "responses and synthesize one refined, accurate, comprehensive reply.",
        _MOA_TEMPLATE,
    ),
    "blender": FusorPreset(
        "blender",
        "LLM-Blender GenFuser",
        "In the style of LLM-Blender's GenFuser: a terse instruction plus candidates, asking for one fused "
        "response that merges their strengths and fixes their weaknesses.",
        _BLENDER_TEMPLATE,
    ),
}


# The fusor modules import the names defined above from this package. Importing them here, at the end,
# means those names exist by then, whichever module a caller imports first (any of them loads this
# package first).
from fusion.fusors.extractive import ExtractiveFusor, length_limit  # noqa: E402
from fusion.fusors.llm import (  # noqa: E402
    ALLOWED_PLACEHOLDERS,
    REQUIRED_PLACEHOLDERS,
    LLMFusor,
    check_template,
    escape_delimiters,
    render_candidates,
    render_fusor_prompt,
    render_prompt_text,
)

__all__ = [
    "ALLOWED_PLACEHOLDERS",
    "PRESETS",
    "REQUIRED_PLACEHOLDERS",
    "ExtractiveFusor",
    "Fusor",
    "FusorPreset",
    "LLMFusor",
    "check_template",
    "escape_delimiters",
    "fuse",
    "length_limit",
    "render_candidates",
    "render_fusor_prompt",
    "render_prompt_text",
    "usable_or_raise",
]

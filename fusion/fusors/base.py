"""What every fusor shares: the :class:`Fusor` protocol, :func:`fuse`, the usable-candidate check, and the
fusor prompts (:data:`PRESETS`). A module of its own so that the fusors can import it and the package can
re-export them without an import circle."""

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

"""Cheap signs that a fused answer is not an answer: the fusor talked about its input instead of using it.

Small fusors fail in a few recognisable ways. Seen with a 135M model: "I'm ready to help. What prompt is
this?" (it answered the template, not the prompt), "How to write it: - Read every candidate critically..."
(it echoed the instructions) and "Here's another one:" (it talked about the candidates). Each check here
is a heuristic, so the text is never hidden; the app shows a warning on the fused output and the CLI
puts the warnings in its JSON, and the reader decides.

A phrase counts against the fusion only when neither the prompt nor any candidate has it: a prompt about
job candidates may well be answered with "the candidates", and a candidate that asks a question back
may be fused into one that does too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from fusion.types import Attribution, Candidate, FusedOutput, Prompt, Run

# Talk about the fusor's input: numbered responses, "the candidates", "here's another one", "I combined".
_META = re.compile(
    r"\bcandidate\s+(?:responses?|answers?|texts?|outputs?|\d+)\b"
    r"|\b(?:the|these|those|all|each|every)\s+(?:\w+\s+)?candidates\b"
    r"|\b(?:response|answer|option|output)\s*(?:#|no\.?\s*)?\d\b"
    r"|\b(?:the|these|those|both|all)\s+(?:\w+\s+)?(?:above|given|provided|previous|following|other)\s+"
    r"(?:responses|answers|outputs)\b"
    r"|\b(?:both|all\s+\w+)\s+responses\b"
    r"|\bhere'?s another one\b"
    r"|\b(?:combin|fus|merg|synthesi[sz])(?:ed|ing)\s+(?:the\s+|these\s+|all\s+)?(?:\w+\s+)?"
    r"(?:responses|answers|candidates)\b",
    re.IGNORECASE,
)
# An assistant asking for its task instead of doing it. "How can I help you today?" is left out: it
# closes many a normal chat reply.
_ASKS_BACK = re.compile(
    r"\bwhat (?:prompt|question|task) (?:is this|is it|do you mean|would you like)\b"
    r"|\bplease (?:provide|share|give|send)(?: me)? (?:the|your|a) (?:prompt|question|task|candidates?)\b",
    re.IGNORECASE,
)
# "I'm ready to help" is the whole of a degenerate reply, but a normal phrase inside a long one.
_READY = re.compile(r"\b(?:i'?m|i am) (?:ready|here) to help\b", re.IGNORECASE)
_READY_MAX_CHARS = 200
_WORD = re.compile(r"\w+", re.UNICODE)
_PLACEHOLDER = re.compile(r"\{[A-Za-z_]+\}")
_ECHO_WORDS = 6  # a run of this many template words in the fusion is an echo, not a coincidence
_SHORT_SHARE = 0.25  # "much shorter": under a quarter of the shortest candidate
_MIN_CANDIDATE_CHARS = 200  # below this a short fusion may simply be right
_COPIED_NOTHING = 0.05


@dataclass(frozen=True)
class FusionWarning:
    code: str  # mentions_input | echoes_template | asks_back | short_and_new
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def _shingles(text: str, size: int) -> set[tuple[str, ...]]:
    words = [w.lower() for w in _WORD.findall(text)]
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def _found_elsewhere(phrase: str, others: Sequence[str]) -> bool:
    needle = phrase.lower()
    return any(needle in other.lower() for other in others)


def _first_new(pattern: re.Pattern[str], text: str, others: Sequence[str]) -> str | None:
    for m in pattern.finditer(text):
        if not _found_elsewhere(m.group(0), others):
            return m.group(0)
    return None


def check_fusion(
    prompt: Prompt,
    candidates: Sequence[Candidate],
    fused: FusedOutput | None,
    attribution: Attribution | None = None,
    *,
    template: str | None = None,
) -> list[FusionWarning]:
    """Warnings for a fused answer that looks degenerate; ``[]`` for a normal one or no fusion."""
    if fused is None or fused.error or not fused.text.strip():
        return []
    text = fused.text
    usable = [c.text for c in candidates if c.ok]
    others = [prompt.text, prompt.system or "", *usable]
    warnings: list[FusionWarning] = []

    phrase = _first_new(_META, text, others)
    if phrase:
        warnings.append(FusionWarning(
            "mentions_input", f"The fused answer talks about its input (“{phrase}”) instead of answering."
        ))
    if template:
        instructions = _PLACEHOLDER.sub(" ", template)
        echoed = _shingles(text, _ECHO_WORDS) & _shingles(instructions, _ECHO_WORDS)
        echoed -= set().union(*(_shingles(o, _ECHO_WORDS) for o in others)) if others else set()
        if echoed:
            sample = " ".join(sorted(echoed)[0])
            warnings.append(FusionWarning(
                "echoes_template", f"The fused answer repeats the fusor's instructions (“{sample}…”)."
            ))
    phrase = _first_new(_ASKS_BACK, text, others)
    if phrase is None and len(text.strip()) <= _READY_MAX_CHARS:
        phrase = _first_new(_READY, text, others)
    if phrase:
        warnings.append(FusionWarning(
            "asks_back", f"The fused answer asks for a task instead of answering the prompt (“{phrase}”)."
        ))
    if usable:
        shortest = min(len(t.strip()) for t in usable)
        copied = attribution.copied_fraction if attribution is not None else 0.0
        if (
            shortest >= _MIN_CANDIDATE_CHARS
            and len(text.strip()) < _SHORT_SHARE * shortest
            and copied < _COPIED_NOTHING
        ):
            warnings.append(FusionWarning(
                "short_and_new",
                f"The fused answer ({len(text.strip()):,} characters) is much shorter than every candidate "
                f"(the shortest has {shortest:,}) and copies nothing from them.",
            ))
    return warnings


def run_warnings(run: Run, *, template: str | None = None) -> list[FusionWarning]:
    """:func:`check_fusion` on a run's own parts. ``template`` defaults to the preset the run was fused
    with; a custom template is not stored with the run, so without it the echo check is skipped."""
    if template is None and run.fused is not None and run.fused.template:
        from fusion.fusors import PRESETS  # deferred: the fusors package is heavier than this check

        preset = PRESETS.get(run.fused.template)
        template = preset.template if preset is not None else None
    return check_fusion(run.prompt, run.candidates, run.fused, run.attribution, template=template)
